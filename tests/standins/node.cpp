// The kubelet and kube-proxy stand-ins. The kubelet does what a node's join depends on: with no
// client certificate yet, it asks the apiservers behind lb.kubexm.local for one with the
// bootstrap token (TLS bootstrap), waits until it is approved and signed, keeps it under
// /var/lib/kubelet/pki, writes its kubeconfig, and registers its Node.
#include "tests/standins/standin.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <ctime>

namespace standin {

namespace {

const char* const k_csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const char* const k_pki = "/var/lib/kubelet/pki";

YAML::Node load_config(const std::string& what, const std::string& path, const std::string& kind) {
  auto text = read_file(path);
  check(text.has_value(), what + ": configuration " + path + " is there", "missing");
  YAML::Node config;
  try {
    config = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    check(false, what + ": " + path + " is YAML", e.what());
  }
  check(config["kind"].as<std::string>("") == kind, what + ": " + path + " is a " + kind);
  return config;
}

bool socket_answers(const std::string& endpoint) {
  auto path = endpoint.substr(endpoint.find("://") == std::string::npos ? 0 : endpoint.find("://") + 3);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// A call retried until the apiserver answers with one of the statuses wanted; each new reason
// for waiting is logged once.
Response until_answered(const std::string& server, const std::string& method, const std::string& path,
                        const std::string& body, const ClientAuth& auth, std::initializer_list<int> wanted,
                        const std::string& what) {
  std::string last;
  while (true) {
    std::string error;
    auto response = https(server, method, path, body, auth, error);
    if (response && std::ranges::find(wanted, response->status) != wanted.end()) {
      return *response;
    }
    auto reason = response ? "HTTP " + std::to_string(response->status) + " " + response->body.substr(0, 200) : error;
    if (reason != last) {
      note("waiting to " + what + ": " + reason);
      last = reason;
    }
    sleep_seconds(2);
  }
}

// The client certificate a previous run got, when it is still good.
bool have_client_certificate(const std::string& kubeconfig, X509* ca) {
  auto pem = read_file(std::string(k_pki) + "/kubelet-client-current.pem");
  if (!read_file(kubeconfig) || !pem) {
    return false;
  }
  auto cert = cert_from_pem(*pem);
  return cert && verify_against(cert.get(), ca).empty() && seconds_left(cert.get()) > 0;
}

std::string bootstrap(const std::string& node, const Kubeconfig& bootstrap_config, X509* ca) {
  auto key = new_key();
  auto csr_name = "node-csr-" + random_hex(8);
  json csr = {{"apiVersion", "certificates.k8s.io/v1"},
              {"kind", "CertificateSigningRequest"},
              {"metadata", {{"name", csr_name}}},
              {"spec",
               {{"request", base64_encode(make_csr(key.get(), "system:node:" + node, "system:nodes"))},
                {"signerName", "kubernetes.io/kube-apiserver-client-kubelet"},
                {"usages", {"digital signature", "client auth"}}}}};
  until_answered(bootstrap_config.server, "POST", k_csrs, csr.dump(), bootstrap_config.auth, {201},
                 "ask " + bootstrap_config.server + " for a client certificate with the bootstrap token");
  note("asked for a client certificate: CSR " + csr_name + " for system:node:" + node);
  std::string certificate;
  while (certificate.empty()) {
    auto response = until_answered(bootstrap_config.server, "GET", std::string(k_csrs) + "/" + csr_name, "",
                                   bootstrap_config.auth, {200}, "read CSR " + csr_name);
    auto object = json::parse(response.body, nullptr, false);
    if (!object.is_discarded() && object.contains("status") && object["status"].contains("certificate")) {
      certificate = base64_decode(object["status"]["certificate"].get<std::string>()).value_or("");
    } else {
      sleep_seconds(1);
    }
  }
  auto cert = cert_from_pem(certificate);
  check(cert && verify_against(cert.get(), ca).empty(), "the signed client certificate verifies against the cluster CA");
  check(key_matches(cert.get(), key.get()), "the signed client certificate is for the kubelet's own key");
  check(common_name(cert.get()) == "system:node:" + node, "the client certificate is system:node:" + node);
  char stamp[32];
  auto now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d-%H-%M-%S", &tm);
  auto file = std::string(k_pki) + "/kubelet-client-" + stamp + ".pem";
  write_file(file, certificate + key_to_pem(key.get()), 0600);
  auto current = std::string(k_pki) + "/kubelet-client-current.pem";
  ::unlink(current.c_str());
  check(::symlink(file.c_str(), current.c_str()) == 0, "kubelet-client-current.pem points at " + file);
  return current;
}

void write_kubeconfig(const std::string& path, const std::string& server, const std::string& ca_pem,
                      const std::string& client) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "apiVersion" << YAML::Value << "v1" << YAML::Key << "kind" << YAML::Value
      << "Config" << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap << YAML::Key << "name"
      << YAML::Value << "default-cluster" << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap << YAML::Key
      << "certificate-authority-data" << YAML::Value << base64_encode(ca_pem) << YAML::Key << "server" << YAML::Value
      << server << YAML::EndMap << YAML::EndMap << YAML::EndSeq << YAML::Key << "users" << YAML::Value
      << YAML::BeginSeq << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "default-auth" << YAML::Key
      << "user" << YAML::Value << YAML::BeginMap << YAML::Key << "client-certificate" << YAML::Value << client
      << YAML::Key << "client-key" << YAML::Value << client << YAML::EndMap << YAML::EndMap << YAML::EndSeq
      << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap << YAML::Key << "name"
      << YAML::Value << "default-context" << YAML::Key << "context" << YAML::Value << YAML::BeginMap << YAML::Key
      << "cluster" << YAML::Value << "default-cluster" << YAML::Key << "user" << YAML::Value << "default-auth"
      << YAML::EndMap << YAML::EndMap << YAML::EndSeq << YAML::Key << "current-context" << YAML::Value
      << "default-context" << YAML::EndMap;
  write_file(path, std::string(out.c_str()) + "\n", 0600);
}

json node_object(const std::string& name, const Flags& flags) {
  json taints = json::array();
  for (const auto& taint : split(flags.get("register-with-taints"))) {
    auto colon = taint.rfind(':');
    auto equals = taint.find('=');
    json one = {{"key", taint.substr(0, std::min(colon, equals))}, {"effect", taint.substr(colon + 1)}};
    if (equals < colon) {
      one["value"] = taint.substr(equals + 1, colon - equals - 1);
    }
    taints.push_back(one);
  }
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}, {"kubernetes.io/os", "linux"}}}}},
          {"spec", {{"taints", taints}}},
          {"status",
           {{"addresses", {{{"type", "InternalIP"}, {"address", flags.get("node-ip")}}, {{"type", "Hostname"}, {"address", name}}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"},
                             {"message", "kubelet stand-in: registered"}}}},
            {"nodeInfo", {{"kubeletVersion", "standin"}}}}}};
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

} // namespace

int kubelet(const Flags& flags) {
  auto config = load_config("kubelet", flags.get("config"), "KubeletConfiguration");
  check(config["cgroupDriver"].as<std::string>("") == "systemd", "kubelet: the cgroup driver is systemd");
  check(config["rotateCertificates"].as<bool>(false), "kubelet: client certificates are rotated");
  auto ca_file = config["authentication"]["x509"]["clientCAFile"].as<std::string>("");
  auto ca_pem = read_file(ca_file);
  auto ca = ca_pem ? cert_from_pem(*ca_pem) : nullptr;
  check(ca && is_ca(ca.get()), "kubelet: the client CA " + ca_file + " is a CA certificate");
  auto endpoint = flags.get("container-runtime-endpoint", "unix:///run/containerd/containerd.sock");
  for (int round = 0; !socket_answers(endpoint); ++round) {
    if (round % 15 == 0) {
      note("waiting for the container runtime at " + endpoint);
    }
    sleep_seconds(1);
  }
  note("the container runtime answers at " + endpoint);
  auto node = flags.get("hostname-override", host_name());
  auto kubeconfig_path = flags.get("kubeconfig");
  if (!have_client_certificate(kubeconfig_path, ca.get())) {
    auto bootstrap_config = check_kubeconfig("kubelet bootstrap", flags.get("bootstrap-kubeconfig"), "lb.kubexm.local");
    check(!bootstrap_config.auth.token.empty(), "kubelet bootstrap: the bootstrap kubeconfig has a token");
    check(bootstrap_config.auth.ca_pem == *ca_pem, "kubelet bootstrap: its CA is the cluster CA " + ca_file);
    auto client = bootstrap(node, bootstrap_config, ca.get());
    write_kubeconfig(kubeconfig_path, bootstrap_config.server, *ca_pem, client);
    note("TLS bootstrap done: client certificate in " + client + ", kubeconfig " + kubeconfig_path);
  } else {
    note("a client certificate is there already (" + std::string(k_pki) + "/kubelet-client-current.pem)");
  }
  auto kubeconfig = check_kubeconfig("kubelet", kubeconfig_path, "lb.kubexm.local");
  auto created = until_answered(kubeconfig.server, "POST", "/api/v1/nodes", node_object(node, flags).dump(),
                                kubeconfig.auth, {201, 409}, "register node " + node);
  note(created.status == 201 ? "registered node " + node : "node " + node + " was registered before");
  while (true) {
    sleep_seconds(3600);
  }
}

int kube_proxy(const Flags& flags) {
  auto config = load_config("kube-proxy", flags.get("config"), "KubeProxyConfiguration");
  auto path = config["clientConnection"]["kubeconfig"].as<std::string>("");
  auto kubeconfig = check_kubeconfig("kube-proxy", path, "lb.kubexm.local");
  check(kubeconfig.user == "system:kube-proxy", "kube-proxy: the kubeconfig's user is system:kube-proxy",
        "it is " + kubeconfig.user);
  until_answered(kubeconfig.server, "GET", "/api/v1/nodes", "", kubeconfig.auth, {200}, "list the nodes");
  note("reached the apiserver at " + kubeconfig.server + " as system:kube-proxy");
  while (true) {
    sleep_seconds(3600);
  }
}

} // namespace standin
