// The controller-manager and scheduler stand-ins. The controller-manager does the part of its
// job a node's join depends on: it approves a kubelet's certificate request when a
// ClusterRoleBinding lets the requester's group have it approved (a bootstrapper's first
// request, a node's renewal), and signs it with the cluster's CA (the csrsigning controller).
#include "tests/standins/standin.hpp"

namespace standin {

namespace {

const char* const k_csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const char* const k_nodeclient = "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
const char* const k_selfnodeclient = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";

std::optional<json> get_json(const Kubeconfig& config, const std::string& path) {
  std::string error;
  auto response = https(config.server, "GET", path, "", config.auth, error);
  if (!response || response->status != 200) {
    return std::nullopt;
  }
  auto parsed = json::parse(response->body, nullptr, false);
  return parsed.is_discarded() ? std::nullopt : std::optional<json>(parsed);
}

// The binding that lets GROUPS have a request approved with ROLE, or "".
std::string approving_binding(const json& bindings, const json& groups, const std::string& role) {
  for (const auto& binding : bindings.value("items", json::array())) {
    if (binding["roleRef"].value("name", "") != role) {
      continue;
    }
    for (const auto& subject : binding.value("subjects", json::array())) {
      if (subject.value("kind", "") == "Group" && std::find(groups.begin(), groups.end(), subject["name"]) != groups.end()) {
        return binding["metadata"].value("name", "");
      }
    }
  }
  return "";
}

struct Signer {
  Cert ca;
  Key key;
  int days;
};

void approve(const Kubeconfig& config, const Signer& signer, json csr, const json& bindings) {
  auto name = csr["metadata"].value("name", "");
  auto username = csr["spec"].value("username", "");
  auto groups = csr["spec"].value("groups", json::array());
  std::string cn;
  std::vector<std::string> orgs;
  auto request = base64_decode(csr["spec"].value("request", ""));
  auto certificate = request ? sign_csr(*request, signer.ca.get(), signer.key.get(), signer.days, cn, orgs) : std::nullopt;
  if (!certificate) {
    note("CSR " + name + ": the request does not parse or its signature is wrong; not approved");
    return;
  }
  bool node_subject = cn.starts_with("system:node:") && orgs == std::vector<std::string>{"system:nodes"} &&
                      csr["spec"].value("signerName", "") == "kubernetes.io/kube-apiserver-client-kubelet";
  // A bootstrapper asks for a node's first certificate; a node renews its own.
  auto binding = std::find(groups.begin(), groups.end(), json("system:bootstrappers")) != groups.end()
                     ? approving_binding(bindings, groups, k_nodeclient)
                     : (username == cn ? approving_binding(bindings, groups, k_selfnodeclient) : "");
  if (!node_subject || binding.empty()) {
    note("CSR " + name + " from " + username + " for " + cn + ": nothing approves it (" +
         (node_subject ? "no ClusterRoleBinding of its groups to the approving roles" : "not a node's client request") +
         ")");
    return;
  }
  csr["status"] = {{"conditions", {{{"type", "Approved"}, {"status", "True"}, {"reason", "AutoApproved"},
                                    {"message", "approved through ClusterRoleBinding " + binding}}}},
                   {"certificate", base64_encode(*certificate)}};
  std::string error;
  auto response = https(config.server, "PUT", std::string(k_csrs) + "/" + name + "/status", csr.dump(), config.auth, error);
  if (response && response->status == 200) {
    note("approved and signed CSR " + name + " from " + username + " for " + cn + " (ClusterRoleBinding " + binding +
         ")");
  }
}

} // namespace

int kube_controller_manager(const Flags& flags) {
  auto config = check_kubeconfig("controller-manager", flags.get("kubeconfig"));
  check_cert_file("cluster signing", flags.get("cluster-signing-cert-file"), flags.get("root-ca-file"),
                  flags.get("cluster-signing-key-file"));
  check(config.user == "system:kube-controller-manager", "the kubeconfig's user is system:kube-controller-manager",
        "it is " + config.user);
  check(read_file(flags.get("service-account-private-key-file")).has_value(), "the service-account key is there");
  auto duration = flags.get("cluster-signing-duration", "8760h");
  Signer signer{cert_from_pem(*read_file(flags.get("cluster-signing-cert-file"))),
                key_from_pem(*read_file(flags.get("cluster-signing-key-file"))),
                std::max(1, std::stoi(duration) / 24)};
  bool reached = false;
  while (true) {
    auto csrs = get_json(config, k_csrs);
    auto bindings = get_json(config, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
    if (csrs && bindings && !reached) {
      note("reached the apiserver at " + config.server);
      reached = true;
    }
    for (const auto& csr : csrs ? (*csrs)["items"] : json::array()) {
      if (!csr.contains("status") || !csr["status"].contains("certificate")) {
        approve(config, signer, csr, *bindings);
      }
    }
    sleep_seconds(1);
  }
}

int kube_scheduler(const Flags& flags) {
  auto config = check_kubeconfig("scheduler", flags.get("kubeconfig"));
  check(config.user == "system:kube-scheduler", "the kubeconfig's user is system:kube-scheduler",
        "it is " + config.user);
  while (true) {
    std::string error;
    auto response = https(config.server, "GET", "/api/v1/nodes", "", config.auth, error);
    if (response && response->status == 200) {
      note("reached the apiserver at " + config.server + " as " + config.user);
      break;
    }
    sleep_seconds(2);
  }
  while (true) {
    sleep_seconds(3600);
  }
}

} // namespace standin
