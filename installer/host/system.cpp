#include "installer/host/system.hpp"

#include "bundle/fs.hpp"
#include "bundle/process.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <fcntl.h>
#include <ifaddrs.h>
#include <memory>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sched.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

std::string read_small(const fs::path& path) {
  return read_text_file(path, 16 << 20).value_or("");
}

// A connected TCP socket, closed on destruction.
struct Socket {
  int fd = -1;
  ~Socket() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

// Connects within `timeout`; false when refused, unreachable or slow.
bool connect_within(Socket& socket, const std::string& address, int port, std::chrono::milliseconds timeout) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) {
    return false;
  }
  socket.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (socket.fd < 0) {
    return false;
  }
  if (::connect(socket.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
    return false;
  }
  pollfd waiting{socket.fd, POLLOUT, 0};
  if (::poll(&waiting, 1, static_cast<int>(timeout.count())) != 1) {
    return false;
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(socket.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
    return false;
  }
  // Blocking again, with the timeout for the TLS exchange that may follow.
  ::fcntl(socket.fd, F_SETFL, ::fcntl(socket.fd, F_GETFL) & ~O_NONBLOCK);
  timeval limit{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(socket.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  return true;
}

void add_listening(const std::string& table, std::set<int>& ports) {
  std::istringstream lines(table);
  std::string line;
  std::getline(lines, line); // the header
  while (std::getline(lines, line)) {
    // "  0: 00000000:0050 00000000:0000 0A ..." : local address:port (hex), remote, state.
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    auto colon = local.rfind(':');
    int port = 0;
    if (state == "0A" && colon != std::string::npos &&
        std::from_chars(local.data() + colon + 1, local.data() + local.size(), port, 16).ec == std::errc()) {
      ports.insert(port);
    }
  }
}

std::string systemctl_show(const std::string& unit, const std::string& property) {
  auto result = run_captured({"systemctl", "show", "--property=" + property, "--value", unit});
  if (!result || result->exit_code != 0) {
    return {};
  }
  auto value = result->output;
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) {
    value.pop_back();
  }
  return value;
}

} // namespace

std::vector<std::string> local_ipv4_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return out;
  }
  for (auto* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
    if (::inet_ntop(AF_INET, &address->sin_addr, text, sizeof text) != nullptr) {
      out.emplace_back(text);
    }
  }
  ::freeifaddrs(list);
  std::ranges::sort(out);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::set<int> listening_tcp_ports() {
  std::set<int> ports;
  add_listening(read_small("/proc/net/tcp"), ports);
  add_listening(read_small("/proc/net/tcp6"), ports);
  return ports;
}

std::string kernel_release() {
  utsname name{};
  return ::uname(&name) == 0 ? name.release : "";
}

std::pair<int, int> kernel_version() {
  auto release = kernel_release();
  int major = 0;
  int minor = 0;
  auto dot = release.find('.');
  std::from_chars(release.data(), release.data() + release.size(), major);
  if (dot != std::string::npos) {
    std::from_chars(release.data() + dot + 1, release.data() + release.size(), minor);
  }
  return {major, minor};
}

int cgroup_version() {
  std::error_code ec;
  return fs::exists("/sys/fs/cgroup/cgroup.controllers", ec) ? 2 : 1;
}

bool module_loaded(const std::string& name) {
  std::error_code ec;
  return fs::exists(fs::path("/sys/module") / name, ec);
}

bool module_available(const std::string& name) {
  auto dir = fs::path("/lib/modules") / kernel_release();
  auto builtin = read_small(dir / "modules.builtin");
  auto dep = read_small(dir / "modules.dep");
  auto wanted = name;
  std::ranges::replace(wanted, '-', '_');
  for (const auto& text : {builtin, dep}) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      auto file = fs::path(line.substr(0, line.find(':'))).filename().string();
      auto stem = file.substr(0, file.find(".ko"));
      std::ranges::replace(stem, '-', '_');
      if (stem == wanted) {
        return true;
      }
    }
  }
  // Built into a kernel without its modules.builtin (a container, a custom kernel): what
  // the module gives is there. A built-in module without parameters has no /sys/module.
  std::error_code ec;
  if (name == "overlay") {
    return read_small("/proc/filesystems").find("\toverlay\n") != std::string::npos;
  }
  if (name == "br_netfilter") {
    return fs::exists("/proc/sys/net/bridge/bridge-nf-call-iptables", ec);
  }
  return false;
}

std::vector<std::string> active_swaps() {
  std::vector<std::string> out;
  std::istringstream lines(read_small("/proc/swaps"));
  std::string line;
  std::getline(lines, line); // the header
  while (std::getline(lines, line)) {
    auto name = line.substr(0, line.find_first_of(" \t"));
    if (!name.empty()) {
      out.push_back(name);
    }
  }
  return out;
}

std::uint64_t memory_mib() {
  std::istringstream lines(read_small("/proc/meminfo"));
  std::string key;
  std::uint64_t kib = 0;
  while (lines >> key >> kib) {
    if (key == "MemTotal:") {
      return kib / 1024;
    }
    lines.ignore(1 << 10, '\n');
  }
  return 0;
}

unsigned cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    return static_cast<unsigned>(CPU_COUNT(&set));
  }
  return static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
}

std::uint64_t free_bytes(const fs::path& path) {
  std::error_code ec;
  auto at = path;
  while (!fs::exists(at, ec) && at.has_parent_path() && at != at.parent_path()) {
    at = at.parent_path();
  }
  struct statvfs info {};
  if (::statvfs(at.c_str(), &info) != 0) {
    return 0;
  }
  return static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
}

std::string host_name() {
  utsname name{};
  return ::uname(&name) == 0 ? name.nodename : "";
}

Status set_host_name(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) {
    return fail("cannot set the host name to {}: {}", name, errno_text(errno));
  }
  return {};
}

bool unit_known(const std::string& unit) {
  auto state = systemctl_show(unit, "LoadState");
  return state == "loaded";
}

std::string unit_active_state(const std::string& unit) {
  return systemctl_show(unit, "ActiveState");
}

bool unit_enabled(const std::string& unit) {
  auto state = systemctl_show(unit, "UnitFileState");
  return state == "enabled" || state == "enabled-runtime" || state == "static" || state == "alias";
}

bool time_synchronised() {
  if (systemctl_show("systemd-timedated.service", "LoadState") == "loaded") {
    auto result = run_captured({"timedatectl", "show", "--property=NTPSynchronized", "--value"});
    if (result && result->exit_code == 0 && result->output.starts_with("yes")) {
      return true;
    }
  }
  return std::ranges::any_of(std::vector<std::string>{"chronyd.service", "chrony.service", "ntpd.service", "ntp.service",
                                                      "systemd-timesyncd.service"},
                             [](const std::string& unit) { return unit_active_state(unit) == "active"; });
}

bool tcp_answers(const std::string& address, int port, std::chrono::milliseconds timeout) {
  Socket socket;
  return connect_within(socket, address, port, timeout);
}

namespace {

// Trusts the CA certificates of `pem` only.
bool trust_only(SSL_CTX* context, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  auto* store = SSL_CTX_get_cert_store(context);
  int added = 0;
  while (auto* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    added += X509_STORE_add_cert(store, cert) == 1 ? 1 : 0;
    X509_free(cert);
  }
  ERR_clear_error();
  return added > 0;
}

} // namespace

Result<int> https_status(const std::string& address, int port, const std::string& path,
                         std::chrono::milliseconds timeout, const ApiCredentials* credentials) {
  Socket socket;
  if (!connect_within(socket, address, port, timeout)) {
    return fail("nothing accepts a connection at {}:{}", address, port);
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!context) {
    return fail("cannot set up TLS");
  }
  SSL_CTX_set_verify(context.get(), credentials ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (credentials && !trust_only(context.get(), credentials->ca_pem)) {
    return fail("the kubeconfig's certificate-authority-data holds no certificate");
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> tls(SSL_new(context.get()), SSL_free);
  SSL_set_fd(tls.get(), socket.fd);
  // The name the certificate must carry: without it any certificate of the CA would do.
  if (credentials && (credentials->server_name.empty() || SSL_set1_host(tls.get(), credentials->server_name.c_str()) != 1)) {
    ERR_clear_error();
    return fail("cannot check the server's certificate for the name '{}'", credentials->server_name);
  }
  if (SSL_connect(tls.get()) != 1) {
    ERR_clear_error();
    auto verified = SSL_get_verify_result(tls.get());
    if (credentials && verified != X509_V_OK) {
      return fail_verification("the server at {}:{} does not prove it is {}: its certificate does not verify against "
                               "the CA given ({})",
                               address, port, credentials->server_name, X509_verify_cert_error_string(verified));
    }
    return fail("{}:{} accepts connections but no TLS handshake (a proxy without a server behind it?)", address,
                port);
  }
  auto request = "GET " + path + " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n" +
                 (credentials ? "Authorization: Bearer " + credentials->bearer + "\r\n" : std::string()) + "\r\n";
  if (SSL_write(tls.get(), request.data(), static_cast<int>(request.size())) <= 0) {
    ERR_clear_error();
    return fail("{}:{}: the TLS connection was closed", address, port);
  }
  char head[64] = {};
  auto got = SSL_read(tls.get(), head, sizeof head - 1);
  ERR_clear_error();
  int status = 0;
  std::string_view line(head, got > 0 ? static_cast<std::size_t>(got) : 0);
  if (!line.starts_with("HTTP/") || line.find(' ') == std::string_view::npos ||
      std::from_chars(line.data() + line.find(' ') + 1, line.data() + line.size(), status).ec != std::errc()) {
    return fail("{}:{} answered TLS but not HTTP", address, port);
  }
  return status;
}

namespace {

std::unique_ptr<X509, decltype(&X509_free)> read_certificate(const std::string& path) {
  std::unique_ptr<X509, decltype(&X509_free)> none(nullptr, X509_free);
  auto text = read_text_file(path, 1 << 20);
  if (!text) {
    return none;
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())), BIO_free);
  return {PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free};
}

} // namespace

Result<std::string> certificate_signed_by(const std::string& cert_file, const std::string& ca_file) {
  auto cert = read_certificate(cert_file);
  if (!cert) {
    return fail("{} holds no certificate (yet)", cert_file);
  }
  auto ca = read_certificate(ca_file);
  if (!ca) {
    return fail("{} holds no CA certificate", ca_file);
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ca_key(X509_get_pubkey(ca.get()), EVP_PKEY_free);
  bool signed_by_ca = ca_key && X509_verify(cert.get(), ca_key.get()) == 1;
  ERR_clear_error();
  if (!signed_by_ca) {
    return fail("the certificate in {} is not signed by the CA in {}", cert_file, ca_file);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return fail("the certificate in {} has expired", cert_file);
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME_print_ex(out.get(), X509_get_subject_name(cert.get()), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  auto size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

} // namespace kubexm
