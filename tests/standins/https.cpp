// HTTPS for the stand-ins: a client that verifies the server by name against a CA and shows a
// client certificate or a bearer token, a server with a thread per connection, and kubeconfigs.
#include "tests/standins/standin.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace standin {

namespace {

struct CtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
using Context = std::unique_ptr<SSL_CTX, CtxFree>;
using Ssl = std::unique_ptr<SSL, SslFree>;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

bool connect_to(Fd& socket, const std::string& address, int port) {
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &target.sin_addr) != 1) {
    return false;
  }
  socket.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{5, 0};
  setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(socket.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return ::connect(socket.fd, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0;
}

bool write_all(SSL* tls, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    int n = SSL_write(tls, data.data() + done, static_cast<int>(data.size() - done));
    if (n <= 0) {
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads the head (up to the blank line) and as much more as came with it.
bool read_head(SSL* tls, std::string& buffer, std::size_t& head_end) {
  char chunk[16384];
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    int n = SSL_read(tls, chunk, sizeof chunk);
    if (n <= 0 || buffer.size() > (1u << 20)) {
      return false;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  head_end += 4;
  return true;
}

std::map<std::string, std::string> parse_headers(const std::string& head) {
  std::map<std::string, std::string> headers;
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    auto end = head.find("\r\n", at + 2);
    auto line = head.substr(at + 2, end - at - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      headers[name] = value;
    }
    at = end;
  }
  return headers;
}

void read_rest(SSL* tls, std::string& body, std::size_t length) {
  char chunk[16384];
  while (body.size() < length) {
    int n = SSL_read(tls, chunk, sizeof chunk);
    if (n <= 0) {
      break;
    }
    body.append(chunk, static_cast<std::size_t>(n));
  }
}

void read_to_end(SSL* tls, std::string& body) {
  char chunk[16384];
  int n = 0;
  while ((n = SSL_read(tls, chunk, sizeof chunk)) > 0) {
    body.append(chunk, static_cast<std::size_t>(n));
  }
}

std::string dechunk(const std::string& raw) {
  std::string out;
  std::size_t at = 0;
  while (at < raw.size()) {
    auto line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) {
      break;
    }
    auto size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    if (size == 0) {
      break;
    }
    out += raw.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return out;
}

bool add_pem_ca(SSL_CTX* context, const std::string& ca_pem) {
  auto ca = cert_from_pem(ca_pem);
  return ca && X509_STORE_add_cert(SSL_CTX_get_cert_store(context), ca.get()) == 1;
}

} // namespace

std::string server_host(const std::string& server) {
  auto start = server.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = server.find_first_of(":/", start);
  return server.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::optional<Response> https(const std::string& server, const std::string& method, const std::string& path,
                              const std::string& body, const ClientAuth& auth, std::string& error,
                              const std::string& content_type) {
  auto host = server_host(server);
  auto colon = server.rfind(':');
  int port = colon != std::string::npos && colon > 6 ? std::stoi(server.substr(colon + 1)) : 443;
  auto address = resolve(host);
  if (!address) {
    error = host + " is not in /etc/hosts";
    return std::nullopt;
  }
  Fd socket;
  if (!connect_to(socket, *address, port)) {
    error = "cannot connect to " + host + " (" + *address + ":" + std::to_string(port) + "): " + std::strerror(errno);
    return std::nullopt;
  }
  Context context(SSL_CTX_new(TLS_client_method()));
  if (!add_pem_ca(context.get(), auth.ca_pem)) {
    error = "no CA to verify " + host + " with";
    return std::nullopt;
  }
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
  if (!auth.cert_pem.empty()) {
    auto cert = cert_from_pem(auth.cert_pem);
    auto key = key_from_pem(auth.key_pem);
    if (!cert || !key || SSL_CTX_use_certificate(context.get(), cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(context.get(), key.get()) != 1) {
      error = "the client certificate or key does not load";
      return std::nullopt;
    }
  }
  Ssl tls(SSL_new(context.get()));
  SSL_set_fd(tls.get(), socket.fd);
  in_addr numeric{};
  if (inet_pton(AF_INET, host.c_str(), &numeric) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls.get()), host.c_str());
  } else {
    SSL_ctrl(tls.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));
    SSL_set1_host(tls.get(), host.c_str());
  }
  if (SSL_connect(tls.get()) != 1) {
    auto verify = SSL_get_verify_result(tls.get());
    const char* why = ERR_reason_error_string(ERR_get_error());
    error = "TLS with " + host + " failed: " +
            (verify != X509_V_OK ? std::string(X509_verify_cert_error_string(verify)) : std::string(why ? why : "handshake"));
    ERR_clear_error();
    return std::nullopt;
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                        "\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: kubexm-standin\r\n";
  if (!auth.token.empty()) {
    request += "Authorization: Bearer " + auth.token + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    request += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  std::string buffer;
  std::size_t head_end = 0;
  if (!write_all(tls.get(), request) || !read_head(tls.get(), buffer, head_end)) {
    error = "the connection to " + host + " closed before an answer";
    return std::nullopt;
  }
  Response response;
  auto space = buffer.find(' ');
  response.status = std::atoi(buffer.c_str() + space + 1);
  auto headers = parse_headers(buffer.substr(0, head_end - 2));
  response.body = buffer.substr(head_end);
  if (headers.contains("content-length")) {
    read_rest(tls.get(), response.body, std::stoul(headers["content-length"]));
  } else {
    read_to_end(tls.get(), response.body);
    if (headers["transfer-encoding"] == "chunked") {
      response.body = dechunk(response.body);
    }
  }
  return response;
}

namespace {

const char* reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

void handle(SSL_CTX* context, int fd, const std::function<Reply(const Request&)>& handler) {
  Fd socket{fd};
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  Ssl tls(SSL_new(context));
  SSL_set_fd(tls.get(), fd);
  if (SSL_accept(tls.get()) != 1) {
    ERR_clear_error();
    return;
  }
  std::string buffer;
  std::size_t head_end = 0;
  if (!read_head(tls.get(), buffer, head_end)) {
    return;
  }
  Request request;
  auto line_end = buffer.find("\r\n");
  auto line = buffer.substr(0, line_end);
  auto first = line.find(' ');
  auto second = line.find(' ', first + 1);
  request.method = line.substr(0, first);
  auto target = line.substr(first + 1, second - first - 1);
  auto question = target.find('?');
  request.path = target.substr(0, question);
  request.query = question == std::string::npos ? "" : target.substr(question + 1);
  request.headers = parse_headers(buffer.substr(0, head_end - 2));
  request.body = buffer.substr(head_end);
  if (request.headers.contains("content-length")) {
    read_rest(tls.get(), request.body, std::stoul(request.headers["content-length"]));
  }
  if (X509* peer = SSL_get0_peer_certificate(tls.get()); peer && SSL_get_verify_result(tls.get()) == X509_V_OK) {
    request.client_cn = common_name(peer);
    request.client_o = organizations(peer);
  }
  auto reply = handler(request);
  std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status) +
                     "\r\nContent-Type: " + reply.type + "\r\nContent-Length: " + std::to_string(reply.body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  write_all(tls.get(), head + reply.body);
  SSL_shutdown(tls.get());
}

} // namespace

bool serve_https(const std::string& address, int port, const std::string& cert_file, const std::string& key_file,
                 const std::string& client_ca_file, std::function<Reply(const Request&)> handler) {
  auto* context = SSL_CTX_new(TLS_server_method()); // lives as long as the program
  if (SSL_CTX_use_certificate_chain_file(context, cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(context, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return false;
  }
  if (!client_ca_file.empty()) {
    SSL_CTX_load_verify_locations(context, client_ca_file.c_str(), nullptr);
    SSL_CTX_set_client_CA_list(context, SSL_load_client_CA_file(client_ca_file.c_str()));
    // A client may come without a certificate (a bootstrap token, a health probe); one that
    // shows a certificate not of the CA is turned away in the handshake.
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  }
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int yes = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &local.sin_addr);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 || ::listen(listener, 128) != 0) {
    ::close(listener);
    return false;
  }
  auto shared = std::make_shared<std::function<Reply(const Request&)>>(std::move(handler));
  std::thread([listener, context, shared] {
    while (true) {
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        std::thread(handle, context, fd, std::cref(*shared)).detach();
      }
    }
  }).detach();
  return true;
}

Kubeconfig check_kubeconfig(const std::string& what, const std::string& path, const std::string& expected_host) {
  auto text = read_file(path);
  check(text.has_value(), what + ": kubeconfig " + path + " is there", "missing");
  YAML::Node config;
  try {
    config = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    check(false, what + ": " + path + " is YAML", e.what());
  }
  Kubeconfig out;
  auto cluster = config["clusters"][0]["cluster"];
  auto user = config["users"][0];
  check(cluster && user, what + ": " + path + " has a cluster and a user");
  out.server = cluster["server"].as<std::string>("");
  out.user = user["name"].as<std::string>("");
  if (!expected_host.empty()) {
    check(server_host(out.server) == expected_host, what + ": " + path + " points at " + expected_host,
          "its server is " + out.server);
  }
  check(out.server.starts_with("https://"), what + ": its server " + out.server + " is HTTPS");
  auto ca = base64_decode(cluster["certificate-authority-data"].as<std::string>(""));
  if (!ca && cluster["certificate-authority"]) {
    ca = read_file(cluster["certificate-authority"].as<std::string>());
  }
  auto ca_cert = ca ? cert_from_pem(*ca) : nullptr;
  check(ca_cert && is_ca(ca_cert.get()), what + ": " + path + " carries a CA certificate");
  check(!cluster["insecure-skip-tls-verify"].as<bool>(false), what + ": " + path + " verifies the server");
  out.auth.ca_pem = *ca;
  auto credentials = user["user"];
  if (credentials["token"]) {
    out.auth.token = credentials["token"].as<std::string>();
    return out;
  }
  std::optional<std::string> cert = base64_decode(credentials["client-certificate-data"].as<std::string>(""));
  std::optional<std::string> key = base64_decode(credentials["client-key-data"].as<std::string>(""));
  if (credentials["client-certificate"]) {
    cert = read_file(credentials["client-certificate"].as<std::string>());
    key = read_file(credentials["client-key"].as<std::string>(credentials["client-certificate"].as<std::string>()));
  }
  auto client = cert ? cert_from_pem(*cert) : nullptr;
  auto client_key = key ? key_from_pem(*key) : nullptr;
  check(client != nullptr, what + ": " + path + " has a client certificate");
  auto why = verify_against(client.get(), ca_cert.get());
  check(why.empty(), what + ": the client certificate " + common_name(client.get()) + " verifies against its CA", why);
  check(client_key && key_matches(client.get(), client_key.get()), what + ": the client key matches its certificate");
  out.auth.cert_pem = *cert;
  out.auth.key_pem = *key;
  return out;
}

} // namespace standin
