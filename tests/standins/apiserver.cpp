// The kube-apiserver stand-in: checks its flags' files, waits for etcd (over TLS, with its
// client certificate), keeps every object in etcd under /registry/, and serves what kubectl
// apply, get and delete, the kubelets' TLS bootstrap and the controllers use: discovery,
// create, get, list, replace, merge patch and delete of a few resources; authentication by
// client certificate or bootstrap token; authorization by system:masters, the components'
// own users and the ClusterRoleBindings applied to it.
#include "tests/standins/standin.hpp"

#include <atomic>
#include <chrono>

#include <openssl/pem.h>

namespace standin {

namespace {

struct Resource {
  std::string group; // "" for the core group
  std::string name;
  std::string kind;
  bool namespaced;
};

const std::vector<Resource> k_resources = {
    {"", "namespaces", "Namespace", false},
    {"", "nodes", "Node", false},
    {"", "secrets", "Secret", true},
    {"", "configmaps", "ConfigMap", true},
    {"", "serviceaccounts", "ServiceAccount", true},
    {"", "services", "Service", true},
    {"rbac.authorization.k8s.io", "clusterroles", "ClusterRole", false},
    {"rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", false},
    {"rbac.authorization.k8s.io", "roles", "Role", true},
    {"rbac.authorization.k8s.io", "rolebindings", "RoleBinding", true},
    {"certificates.k8s.io", "certificatesigningrequests", "CertificateSigningRequest", false},
    {"apps", "deployments", "Deployment", true},
    {"apps", "daemonsets", "DaemonSet", true},
};

std::string group_version(const std::string& group) {
  return group.empty() ? "v1" : group + "/v1";
}

// etcd through its v3 JSON gateway, over TLS with the apiserver's etcd client certificate.
class Etcd {
public:
  Etcd(std::vector<std::string> servers, ClientAuth auth) : m_servers(std::move(servers)), m_auth(std::move(auth)) {}

  bool healthy(std::string& why) {
    for (const auto& server : m_servers) {
      auto response = https(server, "GET", "/health", "", m_auth, why);
      if (response && response->status == 200 && response->body.find("true") != std::string::npos) {
        return true;
      }
      if (response) {
        why = server + " answered HTTP " + std::to_string(response->status) + ": " + response->body;
      } else {
        why = server + ": " + why;
      }
    }
    return false;
  }

  std::optional<json> call(const std::string& path, const json& body) {
    std::string error;
    for (std::size_t i = 0; i < m_servers.size(); ++i) {
      const auto& server = m_servers[(m_next + i) % m_servers.size()];
      auto response = https(server, "POST", path, body.dump(), m_auth, error);
      if (response && response->status == 200) {
        m_next = (m_next + i) % m_servers.size();
        return json::parse(response->body, nullptr, false);
      }
    }
    note("etcd did not answer " + path + ": " + error);
    return std::nullopt;
  }

  std::optional<json> get(const std::string& key) {
    auto answer = call("/v3/kv/range", {{"key", base64_encode(key)}});
    if (!answer || !answer->contains("kvs")) {
      return std::nullopt;
    }
    return json::parse(*base64_decode((*answer)["kvs"][0]["value"].get<std::string>()), nullptr, false);
  }

  std::vector<json> list(const std::string& prefix) {
    auto end = prefix;
    end.back() = static_cast<char>(end.back() + 1);
    auto answer = call("/v3/kv/range", {{"key", base64_encode(prefix)}, {"range_end", base64_encode(end)}});
    std::vector<json> out;
    if (answer && answer->contains("kvs")) {
      for (const auto& kv : (*answer)["kvs"]) {
        out.push_back(json::parse(*base64_decode(kv["value"].get<std::string>()), nullptr, false));
      }
    }
    return out;
  }

  bool put(const std::string& key, const json& value) {
    return call("/v3/kv/put", {{"key", base64_encode(key)}, {"value", base64_encode(value.dump())}}).has_value();
  }

  bool remove(const std::string& key) { return call("/v3/kv/deleterange", {{"key", base64_encode(key)}}).has_value(); }

private:
  std::vector<std::string> m_servers;
  ClientAuth m_auth;
  std::atomic<std::size_t> m_next = 0;
};

struct Identity {
  std::string user;
  std::vector<std::string> groups;
};

Reply status_reply(int code, const std::string& reason, const std::string& message) {
  json status = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
                 {"message", message}, {"reason", reason}, {"code", code}};
  return {code, status.dump()};
}

// Where a request points: a resource, maybe a namespace, a name and a subresource.
struct Target {
  const Resource* resource = nullptr;
  std::string ns;
  std::string name;
  std::string sub;
  std::string key() const {
    return "/registry/" + resource->name + "/" + (resource->namespaced && !ns.empty() ? ns + "/" : "") + name;
  }
};

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t at = 0;
  while (at < path.size()) {
    auto next = path.find('/', at);
    if (next == std::string::npos) {
      next = path.size();
    }
    if (next > at) {
      parts.push_back(path.substr(at, next - at));
    }
    at = next + 1;
  }
  return parts;
}

std::optional<Target> parse_target(const std::vector<std::string>& parts) {
  std::size_t at = 0;
  std::string group;
  if (parts.size() >= 2 && parts[0] == "api" && parts[1] == "v1") {
    at = 2;
  } else if (parts.size() >= 3 && parts[0] == "apis" && parts[2] == "v1") {
    group = parts[1];
    at = 3;
  } else {
    return std::nullopt;
  }
  Target target;
  if (parts.size() > at + 2 && parts[at] == "namespaces") {
    target.ns = parts[at + 1];
    at += 2;
  } else if (parts.size() == at + 2 && parts[at] == "namespaces" && group.empty()) {
    // GET /api/v1/namespaces/NAME: the namespace itself
  }
  if (at >= parts.size()) {
    return std::nullopt;
  }
  for (const auto& resource : k_resources) {
    if (resource.group == group && resource.name == parts[at]) {
      target.resource = &resource;
    }
  }
  if (!target.resource) {
    return std::nullopt;
  }
  target.name = at + 1 < parts.size() ? parts[at + 1] : "";
  target.sub = at + 2 < parts.size() ? parts[at + 2] : "";
  return target;
}

class Apiserver {
public:
  Apiserver(Etcd& etcd, std::string version) : m_etcd(etcd), m_version(std::move(version)) {}

  Reply handle(const Request& request) {
    if (request.path == "/livez" || request.path == "/healthz" || request.path == "/readyz") {
      std::string why;
      if (request.path != "/livez" && !m_etcd.healthy(why)) {
        return {500, "[-]etcd failed: " + why + "\n", "text/plain"};
      }
      return {200, "ok", "text/plain"};
    }
    if (request.path == "/version") {
      return {200, json{{"major", "1"}, {"minor", minor()}, {"gitVersion", m_version + "-standin"}}.dump()};
    }
    auto identity = authenticate(request);
    if (!identity) {
      return status_reply(401, "Unauthorized", "Unauthorized");
    }
    if (auto discovery = discover(request.path)) {
      return *discovery;
    }
    if (request.path == "/openapi/v2") {
      return {200, "", "application/octet-stream"}; // an empty document: kubectl validates against nothing
    }
    auto target = parse_target(split_path(request.path));
    if (!target) {
      return status_reply(404, "NotFound", "the server could not find the requested resource");
    }
    auto verb = verb_of(request, *target);
    if (auto why = authorize(*identity, verb, *target); !why.empty()) {
      note("forbidden: " + why);
      return status_reply(403, "Forbidden", why);
    }
    return serve(request, *target, *identity);
  }

  void seed_namespaces() {
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      std::string key = std::string("/registry/namespaces/") + name;
      if (!m_etcd.get(key)) {
        m_etcd.put(key, {{"apiVersion", "v1"}, {"kind", "Namespace"},
                         {"metadata", {{"name", name}, {"uid", random_hex(16)}, {"creationTimestamp", utc_now()}}},
                         {"status", {{"phase", "Active"}}}});
      }
    }
  }

private:
  std::string minor() const {
    auto dot = m_version.find('.');
    return m_version.substr(dot + 1, m_version.find('.', dot + 1) - dot - 1);
  }

  std::optional<Identity> authenticate(const Request& request) {
    if (request.client_cn) {
      return Identity{*request.client_cn, request.client_o};
    }
    auto header = request.headers.find("authorization");
    if (header == request.headers.end() || !header->second.starts_with("Bearer ")) {
      return std::nullopt;
    }
    auto token = header->second.substr(7);
    auto dot = token.find('.');
    if (dot == std::string::npos) {
      return std::nullopt;
    }
    auto id = token.substr(0, dot);
    auto secret = m_etcd.get("/registry/secrets/kube-system/bootstrap-token-" + id);
    if (!secret) {
      note("a bootstrap token " + id + " with no Secret bootstrap-token-" + id + " (not applied yet, or deleted)");
      return std::nullopt;
    }
    auto field = [&](const char* name) {
      return base64_decode((*secret)["data"].value(name, "")).value_or("");
    };
    if (field("token-secret") != token.substr(dot + 1) || field("usage-bootstrap-authentication") != "true") {
      note("bootstrap token " + id + ": the secret does not match or is not for authentication");
      return std::nullopt;
    }
    Identity identity{"system:bootstrap:" + id, {"system:bootstrappers"}};
    for (auto& group : split(field("auth-extra-groups"))) {
      identity.groups.push_back(std::move(group));
    }
    return identity;
  }

  static std::string verb_of(const Request& request, const Target& target) {
    if (request.method == "GET") {
      return target.name.empty() ? "list" : "get";
    }
    if (request.method == "POST") {
      return "create";
    }
    if (request.method == "DELETE") {
      return "delete";
    }
    return request.method == "PATCH" ? "patch" : "update";
  }

  // "" when allowed, else why not.
  std::string authorize(const Identity& identity, const std::string& verb, const Target& target) {
    auto in = [&](const std::string& group) {
      return std::ranges::find(identity.groups, group) != identity.groups.end();
    };
    const auto& resource = target.resource->name;
    if (in("system:masters") || identity.user == "system:kube-controller-manager" ||
        identity.user == "system:kube-scheduler") {
      return "";
    }
    if (identity.user == "system:kube-proxy" && (verb == "get" || verb == "list") &&
        (resource == "nodes" || resource == "services")) {
      return ""; // the built-in binding system:node-proxier
    }
    if (in("system:nodes") && identity.user.starts_with("system:node:")) {
      auto node = identity.user.substr(12);
      if (resource == "nodes" && (verb == "create" || target.name == node)) {
        return ""; // the Node authorizer: a kubelet reads and writes its own Node
      }
      if (resource == "certificatesigningrequests" && (verb == "create" || verb == "get")) {
        return "";
      }
    }
    for (const auto& binding : m_etcd.list("/registry/clusterrolebindings/")) {
      if (!bound(binding, identity)) {
        continue;
      }
      auto role = binding["roleRef"].value("name", "");
      if (role == "cluster-admin") {
        return "";
      }
      if (role == "system:node-bootstrapper" && resource == "certificatesigningrequests" && verb != "delete" &&
          verb != "update" && verb != "patch") {
        return "";
      }
    }
    return "User \"" + identity.user + "\" cannot " + verb + " resource \"" + resource + "\"" +
           (target.name.empty() ? "" : " \"" + target.name + "\"") +
           ": no ClusterRoleBinding grants it to the user or its groups";
  }

  static bool bound(const json& binding, const Identity& identity) {
    for (const auto& subject : binding.value("subjects", json::array())) {
      auto kind = subject.value("kind", "");
      auto name = subject.value("name", "");
      if ((kind == "User" && name == identity.user) ||
          (kind == "Group" && std::ranges::find(identity.groups, name) != identity.groups.end())) {
        return true;
      }
    }
    return false;
  }

  static std::optional<Reply> discover(const std::string& path) {
    if (path == "/api") {
      return Reply{200, json{{"kind", "APIVersions"}, {"versions", {"v1"}},
                             {"serverAddressByClientCIDRs", json::array()}}.dump()};
    }
    if (path == "/apis") {
      json groups = json::array();
      for (const char* group : {"rbac.authorization.k8s.io", "certificates.k8s.io", "apps"}) {
        json version = {{"groupVersion", std::string(group) + "/v1"}, {"version", "v1"}};
        groups.push_back({{"name", group}, {"versions", {version}}, {"preferredVersion", version}});
      }
      return Reply{200, json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}}.dump()};
    }
    for (const char* group : {"", "rbac.authorization.k8s.io", "certificates.k8s.io", "apps"}) {
      auto gv = group_version(group);
      if (path != (std::string(group).empty() ? "/api/v1" : "/apis/" + gv)) {
        continue;
      }
      json resources = json::array();
      for (const auto& resource : k_resources) {
        if (resource.group == group) {
          resources.push_back({{"name", resource.name}, {"singularName", ""}, {"namespaced", resource.namespaced},
                               {"kind", resource.kind},
                               {"verbs", {"create", "delete", "get", "list", "patch", "update", "watch"}}});
        }
      }
      return Reply{200, json{{"kind", "APIResourceList"}, {"groupVersion", gv}, {"resources", resources}}.dump()};
    }
    return std::nullopt;
  }

  Reply serve(const Request& request, const Target& target, const Identity& identity) {
    if (request.method == "GET" && target.name.empty()) {
      return list(target);
    }
    if (request.method == "POST") {
      return create(request, target, identity);
    }
    auto existing = m_etcd.get(target.key());
    if (!existing) {
      return status_reply(404, "NotFound",
                          target.resource->name + " \"" + target.name + "\" not found");
    }
    if (request.method == "GET") {
      return {200, existing->dump()};
    }
    if (request.method == "DELETE") {
      m_etcd.remove(target.key());
      note("deleted " + target.key() + " for " + identity.user);
      return {200, existing->dump()};
    }
    auto body = json::parse(request.body, nullptr, false);
    if (body.is_discarded()) {
      return status_reply(400, "BadRequest", "the body is not JSON");
    }
    if (request.method == "PATCH") {
      existing->merge_patch(body);
    } else if (target.sub == "status" || target.sub == "approval") {
      (*existing)["status"] = body["status"];
    } else {
      body["metadata"]["uid"] = (*existing)["metadata"]["uid"];
      body["metadata"]["creationTimestamp"] = (*existing)["metadata"]["creationTimestamp"];
      *existing = body;
    }
    (*existing)["metadata"]["resourceVersion"] = next_version();
    m_etcd.put(target.key(), *existing);
    return {200, existing->dump()};
  }

  Reply list(const Target& target) {
    json items = json::array();
    for (auto& item : m_etcd.list(target.key())) {
      items.push_back(std::move(item));
    }
    return {200, json{{"kind", target.resource->kind + "List"}, {"apiVersion", group_version(target.resource->group)},
                      {"metadata", {{"resourceVersion", next_version()}}}, {"items", items}}.dump()};
  }

  Reply create(const Request& request, Target target, const Identity& identity) {
    auto object = json::parse(request.body, nullptr, false);
    if (object.is_discarded() || !object.is_object()) {
      return status_reply(400, "BadRequest", "the body is not a JSON object");
    }
    auto& meta = object["metadata"];
    if (!meta.contains("name") && meta.contains("generateName")) {
      meta["name"] = meta["generateName"].get<std::string>() + random_hex(3).substr(0, 5);
    }
    target.name = meta.value("name", "");
    if (target.name.empty()) {
      return status_reply(400, "BadRequest", "the object has no name");
    }
    if (target.resource->namespaced) {
      meta["namespace"] = target.ns;
    }
    if (m_etcd.get(target.key())) {
      return status_reply(409, "AlreadyExists",
                          target.resource->name + " \"" + target.name + "\" already exists");
    }
    meta["uid"] = random_hex(16);
    meta["creationTimestamp"] = utc_now();
    meta["resourceVersion"] = next_version();
    object["apiVersion"] = group_version(target.resource->group);
    object["kind"] = target.resource->kind;
    if (target.resource->kind == "Secret" && object.contains("stringData")) {
      for (auto& [key, value] : object["stringData"].items()) {
        object["data"][key] = base64_encode(value.get<std::string>());
      }
      object.erase("stringData");
    }
    if (target.resource->kind == "CertificateSigningRequest") {
      object["spec"]["username"] = identity.user; // who asked, for the approver
      object["spec"]["groups"] = identity.groups;
      object["spec"]["groups"].push_back("system:authenticated");
    }
    if (!m_etcd.put(target.key(), object)) {
      return status_reply(500, "InternalError", "etcd did not take the object");
    }
    note("created " + target.key() + " for " + identity.user);
    return {201, object.dump()};
  }

  static std::string next_version() {
    return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  }

  Etcd& m_etcd;
  std::string m_version;
};

void check_files(const Flags& flags) {
  auto ca = flags.get("client-ca-file");
  auto serving = check_cert_file("serving certificate", flags.get("tls-cert-file"), ca, flags.get("tls-private-key-file"));
  for (auto name : {std::string("lb.kubexm.local"), std::string("127.0.0.1"), std::string("kubernetes.default.svc"),
                    flags.get("advertise-address")}) {
    check(has_name(serving.get(), name), "the serving certificate is valid for " + name);
  }
  check_cert_file("etcd client", flags.get("etcd-certfile"), flags.get("etcd-cafile"), flags.get("etcd-keyfile"));
  auto kubelet = check_cert_file("kubelet client", flags.get("kubelet-client-certificate"), ca,
                                 flags.get("kubelet-client-key"));
  auto kubelet_groups = organizations(kubelet.get());
  check(std::ranges::find(kubelet_groups, "kubeadm:cluster-admins") != kubelet_groups.end(),
        "the kubelet client certificate is in kubeadm:cluster-admins");
  auto proxy = check_cert_file("front proxy client", flags.get("proxy-client-cert-file"),
                               flags.get("requestheader-client-ca-file"), flags.get("proxy-client-key-file"));
  check(common_name(proxy.get()) == flags.get("requestheader-allowed-names"),
        "the front proxy client is " + flags.get("requestheader-allowed-names"));
  auto signing = read_file(flags.get("service-account-signing-key-file"));
  auto verifying = read_file(flags.get("service-account-key-file"));
  auto key = signing ? key_from_pem(*signing) : nullptr;
  std::string public_pem;
  if (key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), key.get());
    char* data = nullptr;
    auto size = BIO_get_mem_data(bio.get(), &data);
    public_pem.assign(data, static_cast<std::size_t>(size));
  }
  check(key && verifying && *verifying == public_pem,
        "the service-account key " + flags.get("service-account-key-file") + " is the public half of " +
            flags.get("service-account-signing-key-file"));
}

} // namespace

int kube_apiserver(const Flags& flags) {
  check_files(flags);
  auto list = flags.get("etcd-servers");
  auto servers = split(list);
  check(!servers.empty(), "--etcd-servers names etcd");
  ClientAuth auth{*read_file(flags.get("etcd-cafile")), *read_file(flags.get("etcd-certfile")),
                  *read_file(flags.get("etcd-keyfile")), ""};
  Etcd etcd(servers, auth);
  // Like the real one: no serving before etcd answers; systemd waits for READY=1.
  std::string why;
  for (int round = 0; !etcd.healthy(why); ++round) {
    if (round % 10 == 0) {
      note("waiting for etcd (" + list + "): " + why);
    }
    sleep_seconds(1);
  }
  note("etcd is healthy at " + list);
  Apiserver server(etcd, flags.get("standin-version", "v1.32.10"));
  server.seed_namespaces();
  auto port = std::stoi(flags.get("secure-port", "6443"));
  check(serve_https(flags.get("bind-address", "0.0.0.0"), port, flags.get("tls-cert-file"),
                    flags.get("tls-private-key-file"), flags.get("client-ca-file"),
                    [&server](const Request& request) { return server.handle(request); }),
        "listening on " + flags.get("bind-address", "0.0.0.0") + ":" + std::to_string(port));
  notify_ready();
  while (true) {
    sleep_seconds(3600);
  }
}

} // namespace standin
