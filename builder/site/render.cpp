// Every node's configuration: the templates of templates/ filled in from the site and its
// PKI, laid out under site/nodes/<node>/ as the host's filesystem, with node.yaml saying
// what the installer does there.
#include "builder/site/render.hpp"

#include "bundle/bundle_info.hpp"

#include "builder/data_dir.hpp"
#include "builder/site/pki.hpp"
#include "bundle/fs.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mstch/mstch.hpp>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

const std::string k_health_port = std::to_string(k_lb_health_port); // the load balancers' own /healthz
constexpr const char* k_nodelocaldns = "169.254.25.10";

struct OutFile {
  std::string text;
  unsigned mode = 0644;
};
using Files = std::map<std::string, OutFile>; // path under DIR -> contents

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The templates and the PKI, read once; a missing file is an error naming it.
class Sources {
public:
  Sources(fs::path templates, fs::path pki) : m_templates(std::move(templates)), m_pki(std::move(pki)) {}

  Result<std::string> tmpl(const std::string& name) { return read(m_templates / name, m_template_cache); }
  Result<std::string> pki(const std::string& name) { return read(m_pki / name, m_pki_cache); }
  const fs::path& templates_dir() const { return m_templates; }

private:
  static Result<std::string> read(const fs::path& path, std::map<fs::path, std::string>& cache) {
    if (auto found = cache.find(path); found != cache.end()) {
      return found->second;
    }
    auto text = read_text_file(path, 1 << 20);
    if (!text) {
      return std::unexpected(text.error());
    }
    return cache.emplace(path, std::move(*text)).first->second;
  }

  fs::path m_templates;
  fs::path m_pki;
  std::map<fs::path, std::string> m_template_cache;
  std::map<fs::path, std::string> m_pki_cache;
};

mstch::array flag_list(const Site& site, const std::string& component) {
  mstch::array flags;
  if (auto found = site.extra_args.find(component); found != site.extra_args.end()) {
    for (const auto& [name, value] : found->second) {
      // systemd reads % as a specifier and $ as a variable in ExecStart=; doubled, they
      // reach the program as written.
      std::string unit_value;
      for (char c : value) {
        unit_value += c;
        if (c == '%' || c == '$') {
          unit_value += c;
        }
      }
      flags.emplace_back(mstch::map{{"name", name}, {"value", value}, {"unit_value", unit_value}});
    }
  }
  return flags;
}

mstch::array host_list(const std::vector<const SiteHost*>& hosts) {
  mstch::array list;
  for (const auto* host : hosts) {
    list.emplace_back(mstch::map{{"name", host->name}, {"address", host->address}});
  }
  return list;
}

std::vector<const SiteHost*> etcd_members(const Site& site) {
  return site.etcd_type == "kubeadm" ? site.with_role("master") : site.with_role("etcd");
}

} // namespace

// The port every node reaches the apiservers on through lb.kubexm.local: the load
// balancer's in external mode, the apiservers' own otherwise (load_site keeps internal and
// kube-vip on 6443).
int endpoint_port(const Site& site) {
  return site.loadbalancer.enabled && site.loadbalancer.mode == "external" ? site.loadbalancer.port : 6443;
}

namespace {

// "lb.kubexm.local:6443": the cluster's apiserver endpoint, as an action waits for it.
std::string endpoint_of(const Site& site) {
  return fmt::format("{}:{}", k_control_plane_name, endpoint_port(site));
}

// What lb.kubexm.local means on `host` (docs/site.md#endpoint).
std::string endpoint_address(const Site& site, const SiteHost& host) {
  const auto& lb = site.loadbalancer;
  if (lb.enabled && lb.mode == "external") {
    return lb.vip;
  }
  if (host.has("master")) {
    return host.address; // its own apiserver; kube-vip's first lease needs it
  }
  if (!lb.enabled) {
    return site.with_role("master").front()->address;
  }
  return lb.mode == "internal" ? "127.0.0.1" : lb.vip;
}

std::string cluster_dns(const Site& site) {
  if (site.nodelocaldns) {
    return k_nodelocaldns;
  }
  auto net = parse_ipv4_net(site.service_cidr);
  return ipv4_text(net ? net->address + 10 : 0);
}

// A short stable number from the cluster's name: keepalived's virtual router id.
int router_id(const std::string& name) {
  std::uint32_t hash = 2166136261u;
  for (char c : name) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  }
  return static_cast<int>(hash % 254) + 1;
}

std::string runtime_service(const std::string& runtime) {
  return runtime == "docker" ? "cri-docker" : runtime == "cri-o" ? "crio" : "containerd";
}

std::string cri_socket(const std::string& runtime) {
  return runtime == "docker"  ? "unix:///run/cri-dockerd.sock"
         : runtime == "cri-o" ? "unix:///var/run/crio/crio.sock"
                              : "unix:///run/containerd/containerd.sock";
}

// kubeadm's configuration API for a Kubernetes version: v1beta4 from 1.31 on.
std::string kubeadm_api(const std::string& version) {
  int minor = 0;
  if (auto dot = version.find('.'); dot != std::string::npos) {
    minor = std::atoi(version.c_str() + dot + 1);
  }
  return minor >= 31 ? "kubeadm.k8s.io/v1beta4" : "kubeadm.k8s.io/v1beta3";
}

// The registries images.yaml's images come from, and the server each one's API is at.
const std::vector<std::pair<std::string, std::string>>& upstream_registries() {
  static const std::vector<std::pair<std::string, std::string>> registries = {
      {"docker.io", "https://registry-1.docker.io"},
      {"registry.k8s.io", "https://registry.k8s.io"},
      {"quay.io", "https://quay.io"},
      {"ghcr.io", "https://ghcr.io"}};
  return registries;
}

std::string mirror_url(const Site& site) {
  if (site.registry_mirror.empty()) {
    return {};
  }
  return site.registry_mirror.find("://") == std::string::npos ? "https://" + site.registry_mirror
                                                               : site.registry_mirror;
}

// The site's mirror for each upstream registry.
mstch::array mirror_list(const Site& site) {
  mstch::array list;
  if (site.registry_mirror.empty()) {
    return list;
  }
  for (const auto& [upstream, server] : upstream_registries()) {
    list.emplace_back(mstch::map{{"upstream", upstream},
                                 {"upstream_server", server},
                                 {"mirror_url", mirror_url(site)},
                                 {"mirror_host", site.registry_mirror}});
  }
  return list;
}

struct ClusterFacts {
  std::string token;
  std::string ca_hash;
  std::string vrrp_password;
};

mstch::map cluster_context(const Site& site, const RenderInputs& inputs, const ClusterFacts& facts) {
  std::vector<std::string> initial;
  std::vector<std::string> servers;
  for (const auto* member : etcd_members(site)) {
    initial.push_back(fmt::format("{}=https://{}:2380", member->name, member->address));
    servers.push_back(fmt::format("https://{}:2379", member->address));
  }
  auto names = apiserver_names(site);
  mstch::array sans;
  for (const auto& list : {names.dns, names.ips}) {
    for (const auto& name : list) {
      sans.emplace_back(name);
    }
  }
  auto image = [&](const char* name) {
    auto found = inputs.images.find(name);
    return found == inputs.images.end() ? std::string() : found->second;
  };
  const auto& lb = site.loadbalancer;
  // The VIP is on the network of the lb hosts (external) or the masters (kube-vip).
  auto on = site.with_role(lb.mode == "external" ? "lb" : "master");
  int vip_prefix = !on.empty() && on.front()->net ? on.front()->net->prefix : 32;
  return mstch::map{
      {"cluster_name", site.name},
      {"kubernetes_version", site.kubernetes_version},
      {"kubexm", site.kubernetes_type == "kubexm"},
      {"kubeadm_etcd", site.etcd_type == "kubeadm"},
      {"kubeadm_api", kubeadm_api(site.kubernetes_version)},
      {"v1beta4", kubeadm_api(site.kubernetes_version).ends_with("v1beta4")},
      {"service_cidr", site.service_cidr},
      {"pod_cidr", site.pod_cidr},
      {"cluster_domain", site.cluster_domain},
      {"cluster_dns", cluster_dns(site)},
      {"control_plane_endpoint", fmt::format("{}:{}", k_control_plane_name, endpoint_port(site))},
      // Joining nodes find the cluster at the first master itself: a joining master's name
      // for the endpoint is its own apiserver, not up yet, and a worker's internal proxy
      // runs only once its kubelet does.
      {"discovery_endpoint", fmt::format("{}:6443", site.with_role("master").front()->address)},
      {"apiserver_sans", sans},
      {"etcd_initial_cluster", fmt::format("{}", fmt::join(initial, ","))},
      {"etcd_servers", fmt::format("{}", fmt::join(servers, ","))},
      {"etcd_members", host_list(etcd_members(site))},
      {"etcd_data_dir", site.etcd_data_dir},
      {"etcd_backups_kept", std::string("6")},
      {"masters", host_list(site.with_role("master"))},
      {"bootstrap_token", facts.token},
      {"bootstrap_token_id", facts.token.substr(0, 6)},
      {"bootstrap_token_secret", facts.token.substr(7)},
      {"ca_cert_hash", facts.ca_hash},
      {"runtime_service", runtime_service(site.runtime)},
      {"cri_socket", cri_socket(site.runtime)},
      {"sandbox_image", image("pause")},
      {"haproxy_image", image("haproxy")},
      {"nginx_image", image("nginx")},
      {"kube_vip_image", image("kube-vip")},
      {"mirrors", mirror_list(site)},
      {"mirror_url", mirror_url(site)},
      {"strict_arp", std::string(lb.enabled && lb.mode == "kube-vip" ? "true" : "false")},
      {"vip", lb.vip},
      {"vip_prefix", std::to_string(vip_prefix)},
      {"interface", lb.interface},
      {"lb_type", lb.type.empty() ? std::string("none") : lb.type},
      {"lb_port", std::to_string(lb.port)},
      {"lb_health_port", std::string(k_health_port)},
      {"lb_health_bind", std::string("127.0.0.1")},
      {"vrrp_name", "kubexm_" + site.name},
      {"vrrp_router_id", std::to_string(router_id(site.name))},
      {"vrrp_password", facts.vrrp_password},
      {"extra_apiserver", flag_list(site, "apiserver")},
      {"extra_controller_manager", flag_list(site, "controllerManager")},
      {"extra_scheduler", flag_list(site, "scheduler")},
      {"extra_kubelet", flag_list(site, "kubelet")},
      {"extra_kube_proxy", flag_list(site, "kubeProxy")},
  };
}

// One kubeconfig (docs/site.md#kubeconfigs): the cluster CA, the server, and a client
// certificate from DIR/pki/kubeconfig/ or the bootstrap token.
Result<std::string> kubeconfig(Sources& sources, const std::string& cluster, const std::string& server,
                               const std::string& user, const std::string& client_file, const std::string& token) {
  auto ca = sources.pki("ca.crt");
  if (!ca) {
    return std::unexpected(ca.error());
  }
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "apiVersion" << YAML::Value << "v1" << YAML::Key << "kind" << YAML::Value
      << "Config";
  out << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap << YAML::Key << "name"
      << YAML::Value << cluster << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap << YAML::Key
      << "certificate-authority-data" << YAML::Value << base64(*ca) << YAML::Key << "server" << YAML::Value << server
      << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::BeginMap << YAML::Key << "name" << YAML::Value
      << user << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
  if (token.empty()) {
    auto cert = sources.pki("kubeconfig/" + client_file + ".crt");
    auto key = sources.pki("kubeconfig/" + client_file + ".key");
    if (!cert || !key) {
      return std::unexpected(cert ? key.error() : cert.error());
    }
    out << YAML::Key << "client-certificate-data" << YAML::Value << base64(*cert) << YAML::Key << "client-key-data"
        << YAML::Value << base64(*key);
  } else {
    out << YAML::Key << "token" << YAML::Value << token;
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  auto context = fmt::format("{}@{}", user, cluster);
  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap << YAML::Key << "name"
      << YAML::Value << context << YAML::Key << "context" << YAML::Value << YAML::BeginMap << YAML::Key << "cluster"
      << YAML::Value << cluster << YAML::Key << "user" << YAML::Value << user << YAML::EndMap << YAML::EndMap
      << YAML::EndSeq;
  out << YAML::Key << "current-context" << YAML::Value << context << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

// The cluster's kubeconfigs, under their /etc/kubernetes names.
Result<std::map<std::string, std::string>> kubeconfigs(const Site& site, Sources& sources, const std::string& token) {
  auto endpoint = fmt::format("https://{}:{}", k_control_plane_name, endpoint_port(site));
  struct Want {
    const char* file;
    const char* client;
    const char* user;
    std::string server;
  };
  // The controller-manager and scheduler talk to the apiserver beside them, as kubeadm's do.
  std::vector<Want> wants = {
      {"admin.conf", "admin", "kubernetes-admin", endpoint},
      {"controller-manager.conf", "controller-manager", "system:kube-controller-manager", "https://127.0.0.1:6443"},
      {"scheduler.conf", "scheduler", "system:kube-scheduler", "https://127.0.0.1:6443"},
      {"kube-proxy.conf", "kube-proxy", "system:kube-proxy", endpoint},
      {"bootstrap-kubelet.conf", "", "kubelet-bootstrap", endpoint}};
  std::map<std::string, std::string> out;
  for (const auto& want : wants) {
    auto text = kubeconfig(sources, site.name, want.server, want.user, want.client,
                           *want.client == '\0' ? token : std::string());
    if (!text) {
      return add_context(text.error(), fmt::format("the kubeconfig {}", want.file));
    }
    out.emplace(want.file, std::move(*text));
  }
  return out;
}

// The phases of an installation (node.yaml `phases`): every node's phase 1 is done before
// any node's phase 2, and so on. Load balancers, then etcd (a member waits for its quorum,
// so all members start in one phase), the first master, the other masters, the workers.
constexpr int k_phase_lb = 1;
constexpr int k_phase_etcd = 2;

int phase_of(const Site& site, const SiteHost& host) {
  if (host.has("master")) {
    return &host == site.with_role("master").front() ? 3 : 4;
  }
  if (host.has("etcd") && site.etcd_type == "kubexm") {
    return k_phase_etcd;
  }
  if (host.has("lb")) {
    return k_phase_lb;
  }
  return 5;
}

// What the installer does in one phase of a node (node.yaml `phases`).
struct Action {
  std::string name;
  std::vector<std::string> run;
  std::string wait_for;
  std::string token_from; // the bootstrap kubeconfig the action joins with
};
using Actions = std::vector<Action>;
struct Phase {
  Actions before;
  std::vector<std::string> services;
  std::vector<std::string> enable;
  std::vector<std::string> disable;
  Actions after;
};

// A master's or worker's OS settings made now: modules-load.d is read at boot, and the bridge
// sysctls need br_netfilter loaded.
const Actions k_os_init_actions = {
    {"load-modules", {"systemctl", "restart", "systemd-modules-load.service"}, {}, {}},
    {"os-init", {"sysctl", "--system"}, {}, {}},
};

void emit_actions(YAML::Emitter& out, const char* key, const Actions& actions) {
  if (actions.empty()) {
    return;
  }
  out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
  for (const auto& action : actions) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << action.name << YAML::Key << "run" << YAML::Value
        << YAML::Flow << action.run;
    if (!action.wait_for.empty()) {
      out << YAML::Key << "wait_for" << YAML::Value << action.wait_for;
    }
    if (!action.token_from.empty()) {
      out << YAML::Key << "token_from" << YAML::Value << action.token_from;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

// node.yaml's `phases:`, in phase order.
void emit_phases(YAML::Emitter& out, const std::map<int, Phase>& phases) {
  out << YAML::Key << "phases" << YAML::Value << YAML::BeginSeq;
  for (const auto& [phase, work] : phases) {
    out << YAML::BeginMap << YAML::Key << "phase" << YAML::Value << phase;
    emit_actions(out, "before", work.before);
    out << YAML::Key << "services" << YAML::Value << YAML::Flow << work.services;
    if (!work.enable.empty()) {
      out << YAML::Key << "enable" << YAML::Value << YAML::Flow << work.enable;
    }
    if (!work.disable.empty()) {
      out << YAML::Key << "disable" << YAML::Value << YAML::Flow << work.disable;
    }
    emit_actions(out, "after", work.after);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

// One node's files and what the installer does with them.
class Node {
public:
  Node(const Site& site, const SiteHost& host, Sources& sources, mstch::map context)
      : m_site(site), m_host(host), m_sources(sources), m_context(std::move(context)), m_phase(phase_of(site, host)) {
    m_context["node_name"] = host.name;
    m_context["node_address"] = host.address;
    m_context["untainted"] = host.has("master") && host.has("worker");
    // kubeadm init and join refuse a non-empty /etc/kubernetes/manifests unless told that
    // the static pods there (kube-vip, the internal proxy) are meant to be.
    const auto& lb = site.loadbalancer;
    m_context["static_pods"] =
        lb.enabled &&
        ((lb.mode == "kube-vip" && host.has("master")) ||
         (lb.mode == "internal" && site.kubernetes_type == "kubeadm" && host.has("worker") && !host.has("master")));
    // A master that is not also a worker keeps ordinary pods off, as kubeadm's taint does.
    m_context["control_plane_taint"] = host.has("master") && !host.has("worker");
  }

  void set(const std::string& key, mstch::node value) { m_context[key] = std::move(value); }

  // templates/`name` rendered to `path` (a host path without its leading /).
  void render(const std::string& name, const std::string& path, unsigned mode = 0644) {
    auto text = m_sources.tmpl(name);
    if (!text) {
      m_errors.push_back(text.error());
      return;
    }
    std::map<std::string, std::string> partials;
    for (const auto& [partial, file] : {std::pair{"node_args", "kubeadm/node_args.yaml"},
                                        {"kube_proxy", "config/kube-proxy-config.yaml"},
                                        {"kubelet", "config/kubelet-config.yaml"}}) {
      if (text->find(std::string("{{> ") + partial + "}}") != std::string::npos) {
        auto body = m_sources.tmpl(file);
        if (!body) {
          m_errors.push_back(body.error());
          return;
        }
        partials.emplace(partial, *body);
      }
    }
    m_files[path] = {mstch::render(*text, m_context, partials), mode};
  }

  // DIR/pki/`from` copied to etc/kubernetes/pki/`to`; keys stay 0600.
  void pki(const std::string& from, const std::string& to = {}) {
    auto text = m_sources.pki(from);
    if (!text) {
      m_errors.push_back(text.error());
      return;
    }
    bool secret = from.ends_with(".key");
    m_files["etc/kubernetes/pki/" + (to.empty() ? from : to)] = {*text, secret ? 0600u : 0644u};
  }

  void pki_pair(const std::string& from, const std::string& to = {}) {
    pki(from + ".crt", (to.empty() ? from : to) + ".crt");
    pki(from + ".key", (to.empty() ? from : to) + ".key");
  }

  void file(const std::string& path, std::string text, unsigned mode) { m_files[path] = {std::move(text), mode}; }

  // A unit of templates/systemd under usr/lib/systemd/system.
  void unit(const std::string& name) { render("systemd/" + name, "usr/lib/systemd/system/" + name); }

  // kubexm's drop-in `conf` for `unit` (its own or the OS package's).
  void dropin(const std::string& unit, const std::string& conf) {
    render("systemd/" + conf, fmt::format("usr/lib/systemd/system/{}.d/{}", unit, conf));
  }

  // A service to enable and start, in the node's own phase or in `phase`.
  void service(const std::string& name, int phase = 0) {
    m_phases[phase == 0 ? m_phase : phase].services.push_back(name);
  }
  // A service only enabled: an action starts it (kubeadm starts the kubelet).
  void enable(const std::string& name) { m_phases[m_phase].enable.push_back(name); }
  // An OS package's service this node must not run: stopped and disabled.
  void disable(const std::string& name) { m_phases[m_phase].disable.push_back(name); }
  // A command of the node's phase: run before its services start (OS settings) or after
  // (kubeadm, applying manifests); `wait_for` ("host:port") is an apiserver it needs up
  // first, which the installer waits for; `token_from`, the bootstrap kubeconfig it joins
  // with, whose token that apiserver must still accept.
  enum class When { before, after };
  void action(When when, std::string name, std::vector<std::string> run, std::string wait_for = {},
              std::string token_from = {}) {
    auto& list = when == When::before ? m_phases[m_phase].before : m_phases[m_phase].after;
    list.push_back({std::move(name), std::move(run), std::move(wait_for), std::move(token_from)});
  }

  const SiteHost& host() const { return m_host; }
  const Site& site() const { return m_site; }
  const std::map<int, Phase>& phases() const { return m_phases; }
  std::vector<Error>& errors() { return m_errors; }

  // Everything this node has, with node.yaml, under nodes/<node>/.
  void emit(const std::string& topology, Files& out) {
    m_files["node.yaml"] = {node_yaml(topology), 0644};
    for (auto& [path, file] : m_files) {
      out[fmt::format("nodes/{}/{}", m_host.name, path)] = std::move(file);
    }
  }

private:
  std::string node_yaml(const std::string& topology) const {
    YAML::Emitter out;
    out << YAML::Comment(fmt::format("What kubexm's installer does on {} (docs/site.md#node-yaml).", m_host.name));
    out << YAML::BeginMap;
    out << YAML::Key << "node" << YAML::Value << m_host.name;
    out << YAML::Key << "address" << YAML::Value << m_host.address;
    out << YAML::Key << "arch" << YAML::Value << m_host.arch;
    out << YAML::Key << "roles" << YAML::Value << YAML::Flow << m_host.roles;
    out << YAML::Key << "cluster" << YAML::Value << m_site.name;
    out << YAML::Key << "deployment" << YAML::Value << topology;
    out << YAML::Key << "hosts" << YAML::Value << YAML::BeginSeq;
    if (m_host.has("master") || m_host.has("worker")) {
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "address" << YAML::Value << endpoint_address(m_site, m_host)
          << YAML::Key << "names" << YAML::Value << YAML::Flow << std::vector<std::string>{k_control_plane_name}
          << YAML::EndMap;
    }
    for (const auto& other : m_site.hosts) {
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "address" << YAML::Value << other.address << YAML::Key
          << "names" << YAML::Value << YAML::Flow
          << std::vector<std::string>{other.name + "." + m_site.cluster_domain, other.name} << YAML::EndMap;
    }
    out << YAML::EndSeq;
    emit_phases(out, m_phases);
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
  }

  const Site& m_site;
  const SiteHost& m_host;
  Sources& m_sources;
  mstch::map m_context;
  Files m_files;

  int m_phase;
  std::map<int, Phase> m_phases;
  std::vector<Error> m_errors;
};

void render_os(Node& node) {
  node.render("os/sysctl.conf", "etc/sysctl.d/99-kubexm.conf");
  node.render("os/modules-load.conf", "etc/modules-load.d/kubexm.conf");
}

void render_runtime(Node& node) {
  const auto& site = node.site();
  if (site.runtime == "cri-o") {
    node.unit("crio.service");
    node.dropin("crio.service", "kubexm-crio.conf");
    node.render("runtime/crio.conf", "etc/crio/crio.conf.d/10-kubexm.conf");
    if (!site.registry_mirror.empty()) {
      node.render("runtime/registries.conf", "etc/containers/registries.conf.d/50-kubexm.conf");
    }
    node.service("crio");
    return;
  }
  // Docker runs on the bundle's containerd, so both runtimes have it.
  node.unit("containerd.service");
  node.dropin("containerd.service", "kubexm-containerd.conf");
  node.render("runtime/containerd-config.toml", "etc/containerd/config.toml");
  if (!site.registry_mirror.empty()) {
    for (const auto& [upstream, server] : upstream_registries()) {
      node.set("upstream", upstream);
      node.set("upstream_server", server);
      node.render("runtime/hosts.toml", fmt::format("etc/containerd/certs.d/{}/hosts.toml", upstream));
    }
  }
  node.service("containerd");
  if (site.runtime == "docker") {
    node.unit("docker.service");
    node.dropin("docker.service", "kubexm-docker.conf");
    node.render("runtime/docker-daemon.json", "etc/docker/daemon.json");
    node.unit("cri-docker.service");
    node.dropin("cri-docker.service", "kubexm-cri-docker.conf");
    node.service("docker");
    node.service("cri-docker");
  }
}

// The internal load balancer of a worker: a static pod in a kubeadm cluster, the OS
// package's service with kubexm's drop-in in a kubexm one.
void render_internal_lb(Node& node) {
  const auto& site = node.site();
  const auto& type = site.loadbalancer.type;
  node.set("lb_role", std::string("internal load balancer"));
  node.set("lb_bind", std::string("127.0.0.1"));
  bool pod = site.kubernetes_type == "kubeadm";
  node.set("nginx_pid", std::string(pod ? "/tmp/nginx.pid" : "/run/nginx.pid"));
  if (type == "haproxy") {
    node.render("lb/haproxy.cfg", "etc/kubexm/haproxy/haproxy.cfg");
  } else {
    node.render("lb/nginx.conf", "etc/kubexm/nginx/nginx.conf");
  }
  if (pod) {
    node.render("pods/" + type + ".yaml", "etc/kubernetes/manifests/kube-" + type + ".yaml");
  } else {
    node.dropin(type + ".service", "kubexm-" + type + ".conf");
    node.service(type);
  }
}

void render_external_lb(Node& node) {
  const auto& site = node.site();
  bool haproxy = site.loadbalancer.type == "kubexm-kh";
  std::string type = haproxy ? "haproxy" : "nginx";
  auto lbs = site.with_role("lb");
  auto self = std::ranges::find(lbs, &node.host()) - lbs.begin();
  node.set("lb_role", std::string("external load balancer"));
  node.set("lb_bind", std::string("0.0.0.0"));
  node.set("lb_type", type);
  node.set("nginx_pid", std::string("/run/nginx.pid"));
  node.set("vrrp_state", std::string(self == 0 ? "MASTER" : "BACKUP"));
  node.set("vrrp_priority", std::to_string(100 - 10 * self));
  std::vector<const SiteHost*> peers;
  std::ranges::copy_if(lbs, std::back_inserter(peers), [&](const SiteHost* h) { return h != &node.host(); });
  node.set("vrrp_peers", host_list(peers));
  if (haproxy) {
    node.render("lb/haproxy.cfg", "etc/kubexm/haproxy/haproxy.cfg");
  } else {
    node.render("lb/nginx.conf", "etc/kubexm/nginx/nginx.conf");
  }
  node.dropin(type + ".service", "kubexm-" + type + ".conf");
  node.render("lb/keepalived.conf", "etc/keepalived/keepalived.conf");
  node.render("scripts/check-apiserver-lb.sh", "etc/keepalived/check-apiserver-lb.sh", 0755);
  node.render("os/sysctl-lb.conf", "etc/sysctl.d/99-kubexm-lb.conf");
  node.action(Node::When::before, "sysctl", {"sysctl", "--system"});
  // The lb role's OS packages bring both proxies; the one this site does not use must not run.
  node.disable(haproxy ? "nginx" : "haproxy");
  node.service(type);
  node.service("keepalived");
}

void render_etcd_member(Node& node) {
  const auto& name = node.host().name;
  node.unit("etcd.service");
  node.dropin("etcd.service", "kubexm-etcd.conf");
  node.pki("etcd/ca.crt");
  node.pki_pair("etcd/server-" + name, "etcd/server");
  node.pki_pair("etcd/peer-" + name, "etcd/peer");
  node.pki_pair("etcd/healthcheck-client");
  node.service("etcd", k_phase_etcd);
}

void render_etcd_backup(Node& node) {
  node.unit("backup-etcd.timer");
  node.unit("backup-etcd.service");
  node.render("scripts/etcd-backup.sh", "usr/local/bin/kube-scripts/etcd-backup.sh", 0755);
  node.service("backup-etcd.timer", node.site().etcd_type == "kubexm" ? k_phase_etcd : 0);
}

void render_kubeadm_master(Node& node, bool first) {
  const auto& site = node.site();
  const auto& name = node.host().name;
  for (const char* pair : {"ca", "front-proxy-ca", "apiserver", "apiserver-kubelet-client", "front-proxy-client",
                           "apiserver-etcd-client"}) {
    node.pki_pair(pair);
  }
  node.pki("sa.key");
  node.pki("sa.pub");
  if (site.etcd_type == "kubeadm") {
    node.pki_pair("etcd/ca");
    node.pki_pair("etcd/server-" + name, "etcd/server");
    node.pki_pair("etcd/peer-" + name, "etcd/peer");
    node.pki_pair("etcd/healthcheck-client");
  } else {
    node.pki("etcd/ca.crt");
  }
  node.set("control_plane", true);
  node.set("join_as", std::string("control plane"));
  node.render(first ? "kubeadm/init.yaml" : "kubeadm/join.yaml", "etc/kubernetes/kubeadm-config.yaml", 0600);
  if (first) {
    node.action(Node::When::after, "kubeadm-init",
                {"kubeadm", "init", "--config", "/etc/kubernetes/kubeadm-config.yaml"});
  } else {
    node.action(Node::When::after, "kubeadm-join",
                {"kubeadm", "join", "--config", "/etc/kubernetes/kubeadm-config.yaml"}, endpoint_of(site));
  }
  if (site.auto_renew_certs) {
    node.unit("k8s-certs-renew.timer");
    node.unit("k8s-certs-renew.service");
    node.render("scripts/k8s-certs-renew.sh", "usr/local/bin/kube-scripts/k8s-certs-renew.sh", 0755);
    node.service("k8s-certs-renew.timer");
  }
}

void render_kubexm_master(Node& node, bool first, const std::map<std::string, std::string>& configs) {
  for (const char* pair :
       {"ca", "apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client"}) {
    node.pki_pair(pair);
  }
  node.pki("front-proxy-ca.crt");
  node.pki("etcd/ca.crt");
  node.pki("sa.key");
  node.pki("sa.pub");
  for (const char* conf : {"admin.conf", "controller-manager.conf", "scheduler.conf"}) {
    node.file(std::string("etc/kubernetes/") + conf, configs.at(conf), 0600);
  }
  for (const char* service : {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}) {
    node.unit(fmt::format("{}.service", service));
    node.dropin(fmt::format("{}.service", service), fmt::format("kubexm-{}.conf", service + 5));
    node.service(service);
  }
  if (first) {
    node.render("addons/kubexm-bootstrap.yaml", "etc/kubernetes/addons/kubexm-bootstrap.yaml", 0600);
    // Through its own apiserver: an external load balancer may not count it up yet.
    node.action(Node::When::after, "apply-bootstrap",
                {"kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--server", "https://127.0.0.1:6443", "apply",
                 "-f", "/etc/kubernetes/addons/kubexm-bootstrap.yaml"},
                "127.0.0.1:6443");
  }
}

// kubelet, and in a kubexm cluster kube-proxy, on a master or worker.
void render_kubelet(Node& node, const std::map<std::string, std::string>& configs) {
  const auto& site = node.site();
  node.unit("kubelet.service");
  if (site.kubernetes_type == "kubeadm") {
    node.dropin("kubelet.service", "10-kubeadm.conf");
    node.enable("kubelet"); // kubeadm init and join start it, once its configuration is there
    return;
  }
  node.dropin("kubelet.service", "kubexm-kubelet.conf");
  node.render("config/kubelet-config.yaml", "var/lib/kubelet/config.yaml");
  node.render("config/kube-proxy-config.yaml", "var/lib/kube-proxy/config.yaml");
  node.unit("kube-proxy.service");
  node.dropin("kube-proxy.service", "kubexm-proxy.conf");
  node.file("etc/kubernetes/bootstrap-kubelet.conf", configs.at("bootstrap-kubelet.conf"), 0600);
  node.file("etc/kubernetes/kube-proxy.conf", configs.at("kube-proxy.conf"), 0600);
  if (!node.host().has("master")) {
    node.pki("ca.crt");
    // A worker's kubelet bootstraps its client certificate from the apiservers behind the
    // endpoint: it starts once they answer, and kube-proxy with it.
    node.enable("kubelet");
    node.enable("kube-proxy");
    node.action(Node::When::after, "kubelet-bootstrap", {"systemctl", "start", "kubelet.service", "kube-proxy.service"},
                endpoint_of(node.site()), "/etc/kubernetes/bootstrap-kubelet.conf");
    return;
  }
  node.service("kubelet");
  node.service("kube-proxy");
}

void render_node(Node& node, const std::map<std::string, std::string>& configs) {
  const auto& site = node.site();
  const auto& host = node.host();
  bool first = host.has("master") && &host == site.with_role("master").front();
  bool kubelet = host.has("master") || host.has("worker");
  if (host.has("lb")) {
    render_external_lb(node);
  }
  if (kubelet) {
    render_os(node);
    for (const auto& action : k_os_init_actions) {
      node.action(Node::When::before, action.name, action.run);
    }
    render_runtime(node);
  }
  if (site.etcd_type == "kubexm" && host.has("etcd")) {
    render_etcd_member(node);
  }
  bool backup_here = site.auto_backup_etcd && ((site.etcd_type == "kubexm" && host.has("etcd")) ||
                                               (site.etcd_type == "kubeadm" && host.has("master")));
  if (backup_here) {
    render_etcd_backup(node);
  }
  // A worker's internal proxy starts before its kubelet, which reaches the apiservers through it.
  if (!host.has("master") && host.has("worker") && site.loadbalancer.enabled && site.loadbalancer.mode == "internal") {
    render_internal_lb(node);
  }
  // A kubexm master's control plane starts before its kubelet, which joins through it;
  // kubeadm starts the kubelet itself and the control plane as its static pods.
  if (host.has("master") && site.kubernetes_type == "kubexm") {
    render_kubexm_master(node, first, configs);
  }
  if (kubelet) {
    render_kubelet(node, configs);
  }
  if (host.has("master")) {
    if (site.kubernetes_type == "kubeadm") {
      render_kubeadm_master(node, first);
    }
    if (site.loadbalancer.enabled && site.loadbalancer.mode == "kube-vip") {
      // kubeadm 1.29+ gives admin.conf its rights only once init has made them; the first
      // master's kube-vip needs the VIP before that, so it starts with super-admin.conf.
      bool super = first && site.kubernetes_type == "kubeadm";
      node.set("kube_vip_kubeconfig",
               std::string(super ? "/etc/kubernetes/super-admin.conf" : "/etc/kubernetes/admin.conf"));
      node.render("pods/kube-vip.yaml", "etc/kubernetes/manifests/kube-vip.yaml");
    }
  } else if (host.has("worker") && site.kubernetes_type == "kubeadm") {
    node.set("control_plane", false);
    node.set("join_as", std::string("worker"));
    node.render("kubeadm/join.yaml", "etc/kubernetes/kubeadm-config.yaml", 0600);
    node.action(Node::When::after, "kubeadm-join",
                {"kubeadm", "join", "--config", "/etc/kubernetes/kubeadm-config.yaml"}, endpoint_of(site));
  }
}

// The directories under `top` that nothing is left in, deepest first (a node that left the
// site), and `top` itself never.
void remove_empty_dirs(const fs::path& top) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(top, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec)) {
      dirs.push_back(it->path());
    }
  }
  std::ranges::sort(dirs, [](const fs::path& a, const fs::path& b) { return a.native().size() > b.native().size(); });
  for (const auto& path : dirs) {
    if (fs::is_empty(path, ec)) {
      fs::remove(path, ec);
    }
  }
}

// Writes `files` under `dir` where they differ, and removes what an earlier rendering left.
Status write_files(const fs::path& dir, const Files& files, RenderReport& report) {
  std::vector<Error> errors;
  for (const auto& [path, file] : files) {
    auto target = dir / path;
    std::error_code ec;
    auto old = read_text_file(target, 16 << 20);
    bool same =
        old && *old == file.text && (static_cast<unsigned>(fs::status(target, ec).permissions()) & 07777) == file.mode;
    if (same) {
      continue;
    }
    if (auto status = make_directories(target.parent_path()); !status) {
      errors.push_back(status.error());
      continue;
    }
    if (auto status = write_file_atomic(target, file.text, file.mode); !status) {
      errors.push_back(status.error());
      continue;
    }
    report.written.push_back(path);
  }
  for (const char* top : {"nodes", "kubeconfigs"}) {
    std::error_code ec;
    if (!fs::exists(dir / top, ec)) {
      continue;
    }
    std::vector<fs::path> stale;
    for (auto it = fs::recursive_directory_iterator(dir / top, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_directory(ec) && !files.contains(fs::relative(it->path(), dir, ec).generic_string())) {
        stale.push_back(it->path());
      }
    }
    for (const auto& path : stale) {
      fs::remove(path, ec);
      report.removed.push_back(fs::relative(path, dir, ec).generic_string());
    }
    remove_empty_dirs(dir / top);
  }
  return join_errors(errors);
}

} // namespace

Status render_preparation(const fs::path& dir, const RenderInputs& inputs) {
  mstch::config::escape = [](const std::string& text) { return text; };
  auto pause = inputs.images.find("pause");
  mstch::map context{
      {"node_name", std::string("this host (prepared without a site)")},
      {"cluster_name", std::string("the cluster it will join")},
      {"prepared", true},
      {"runtime_service", runtime_service("containerd")},
      {"sandbox_image", pause == inputs.images.end() ? std::string() : pause->second},
  };
  Sources sources(inputs.templates_dir, {});
  Files files;
  std::vector<Error> errors;
  auto render = [&](const std::string& name, const std::string& path) {
    auto text = sources.tmpl(name);
    if (!text) {
      errors.push_back(text.error());
      return;
    }
    files[path] = {mstch::render(*text, context), 0644};
  };
  render("os/sysctl.conf", "etc/sysctl.d/99-kubexm.conf");
  render("os/modules-load.conf", "etc/modules-load.d/kubexm.conf");
  render("systemd/containerd.service", "usr/lib/systemd/system/containerd.service");
  render("systemd/kubexm-containerd.conf", "usr/lib/systemd/system/containerd.service.d/kubexm-containerd.conf");
  render("runtime/containerd-config.toml", "etc/containerd/config.toml");
  render("systemd/kubelet.service", "usr/lib/systemd/system/kubelet.service");
  render("systemd/10-kubeadm.conf", "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf");
  if (auto status = join_errors(errors); !status) {
    return add_context(status.error(), fmt::format("preparing hosts with the templates of {}", inputs.templates_dir.string()));
  }
  // The node.yaml a site's worker has, less what needs a cluster: no node, no hosts, no join.
  YAML::Emitter out;
  out << YAML::Comment("What kubexm's installer does on a master's or worker's host from a bundle without a site "
                       "(docs/site.md#node-yaml): the runtime started, the kubelet enabled for kubeadm to start.");
  out << YAML::BeginMap;
  out << YAML::Key << "prepare" << YAML::Value << "kubernetes";
  out << YAML::Key << "roles" << YAML::Value << YAML::Flow << std::vector<std::string>{"master", "worker"};
  emit_phases(out, {{1, Phase{k_os_init_actions, {"containerd"}, {"kubelet"}, {}, {}}}});
  out << YAML::EndMap;
  files["node.yaml"] = {std::string(out.c_str()) + "\n", 0644};
  RenderReport report;
  return write_files(dir, files, report);
}

fs::path default_templates_dir() {
  return data_dir("KUBEXM_TEMPLATES", "templates", "README.md", KUBEXM_SOURCE_TEMPLATES);
}

namespace {

// The role a host is installed with: its node.yaml is performed whole, whichever of its
// roles is named, so the most telling one.
std::string install_role(const SiteHost& host) {
  for (const char* role : {"master", "worker", "etcd", "lb"}) {
    if (host.has(role)) {
      return role;
    }
  }
  return "worker";
}

std::string names_of(const std::vector<const SiteHost*>& hosts, const SiteHost* except = nullptr) {
  std::vector<std::string> names;
  for (const auto* host : hosts) {
    if (host != except) {
      names.push_back(host->name);
    }
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

// What a node's phases wait for on other hosts, in words.
std::string waits_of(const Site& site, const SiteHost& host, const std::map<int, Phase>& phases) {
  std::vector<std::string> waits;
  auto members = site.with_role("etcd");
  for (const auto& [_, phase] : phases) {
    for (const auto& service : phase.services) {
      if (service == "etcd" && members.size() > 1) {
        waits.push_back(fmt::format("its quorum: the other etcd members ({})", names_of(members, &host)));
      }
      if (service == "kube-apiserver" && site.etcd_type == "kubexm") {
        waits.push_back(fmt::format("etcd ({})", names_of(members)));
      }
    }
    for (const auto& action : phase.after) {
      if (!action.wait_for.empty()) {
        waits.push_back(fmt::format("an apiserver at {} ({})", action.wait_for, action.name));
      }
    }
  }
  if (site.kubernetes_type == "kubexm" && (host.has("worker") || host.has("master"))) {
    waits.push_back("its kubelet's client certificate, once the first master applied the bootstrap token");
  }
  return waits.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(waits, "; "));
}

// ORDER.md: which hosts to start, in which phase, and what each waits for.
std::string order_of(const Site& site, const std::vector<std::pair<const SiteHost*, std::map<int, Phase>>>& nodes) {
  std::string text = fmt::format(
      "# Installing {}\n\nCopy the installer to every host and run its line below. The hosts can be "
      "started in any order, or all at once: each waits for what it needs on other hosts (up to "
      "`--wait`, 10 minutes by default) and says what it waits for. In phase order, each host's "
      "wait is shortest.\n\n| phase | host | address | run | waits for |\n|---|---|---|---|---|\n",
      site.name);
  auto sorted = nodes;
  std::ranges::stable_sort(sorted, {}, [](const auto& node) { return node.second.empty() ? 0 : node.second.begin()->first; });
  for (const auto& [host, phases] : sorted) {
    text += fmt::format("| {} | {} | {} | `./install --role={}` | {} |\n", phases.empty() ? 0 : phases.begin()->first,
                        host->name, host->address, install_role(*host), waits_of(site, *host, phases));
  }
  auto first = site.with_role("master").front();
  text += fmt::format("\nThen, on {} once every host is done: `./install finish` waits until every master "
                      "and worker has joined, {} and lists the nodes; `./install kubeconfig --write` gives "
                      "the admin the cluster's kubeconfig.\n",
                      first->name,
                      site.kubernetes_type == "kubexm" ? "deletes the bootstrap token" : "(kubeadm's token expires by itself)");
  return text;
}

} // namespace

Result<RenderReport> render_site(const Site& site, const fs::path& dir, const RenderInputs& inputs) {
  // Nothing here is HTML: values go into configuration files as they are.
  mstch::config::escape = [](const std::string& text) { return text; };
  Sources sources(inputs.templates_dir, dir / "pki");
  auto token = read_bootstrap_token(dir);
  auto hash = ca_cert_hash(dir);
  if (!token || !hash) {
    return add_context(token ? hash.error() : token.error(), "rendering needs the site's PKI (site -o DIR makes it)");
  }
  auto configs = kubeconfigs(site, sources, *token);
  if (!configs) {
    return std::unexpected(configs.error());
  }
  ClusterFacts facts{*token, *hash, hash->substr(7, 8)};
  auto context = cluster_context(site, inputs, facts);
  auto topology = topology_of(site);
  Files files;
  for (const auto& [name, text] : *configs) {
    files["kubeconfigs/" + name] = {text, 0600};
  }
  std::vector<Error> errors;
  RenderReport report;
  std::vector<std::pair<const SiteHost*, std::map<int, Phase>>> order;
  for (const auto& host : site.hosts) {
    Node node(site, host, sources, context);
    render_node(node, *configs);
    if (!node.errors().empty()) {
      errors.push_back(join_errors(node.errors()).error());
      continue;
    }
    node.emit(topology.id, files);
    order.emplace_back(&host, node.phases());
    report.nodes.push_back(host.name);
  }
  files["ORDER.md"] = {order_of(site, order), 0644};
  if (auto status = join_errors(errors); !status) {
    return add_context(status.error(),
                       fmt::format("rendering {} with the templates of {}", site.name, inputs.templates_dir.string()));
  }
  report.files = files.size();
  if (auto status = write_files(dir, files, report); !status) {
    return add_context(status.error(), fmt::format("writing the rendered site under {}", dir.string()));
  }
  return report;
}

} // namespace kubexm
