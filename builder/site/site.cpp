// The site file: reading it, and checking it against the 21 deployments (docs/site.md)
// (items 9.3 to 9.23) and against itself (names, addresses, networks, roles).
#include "builder/site/site.hpp"

#include "bundle/problems.hpp"
#include "bundle/yaml_fields.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <regex>
#include <set>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

const std::regex k_host_name("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
const std::regex k_site_name("[a-z0-9][a-z0-9._-]*");
const std::regex k_version("[0-9]+\\.[0-9]+\\.[0-9]+");
const std::regex k_word("[A-Za-z0-9][A-Za-z0-9._:/-]*");
constexpr const char* k_roles[] = {"master", "worker", "etcd", "lb"};

std::uint32_t mask_of(int prefix) {
  return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  std::uint32_t out = 0;
  for (int part = 0; part < 4; ++part) {
    auto dot = part < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos || dot == 0 || dot > 3) {
      return std::nullopt;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + dot, value);
    if (ec != std::errc() || end != text.data() + dot || value > 255 || (dot > 1 && text[0] == '0')) {
      return std::nullopt;
    }
    out = (out << 8) | value;
    text.remove_prefix(std::min(text.size(), dot + 1));
  }
  return out;
}

bool read_bool(const YAML::Node& node, const char* key, bool fallback, std::string_view where, Problems& problems) {
  auto value = node[key];
  if (!value) {
    return fallback;
  }
  if (!value.IsScalar() || (value.Scalar() != "true" && value.Scalar() != "false")) {
    problems.add(value, fmt::format("{}{}: expected true or false", where, key));
    return fallback;
  }
  return value.Scalar() == "true";
}

std::string read_choice(const YAML::Node& node, const char* key, const std::string& fallback,
                        std::initializer_list<const char*> choices, std::string_view where, Problems& problems) {
  auto value = node[key];
  if (!value) {
    return fallback;
  }
  auto text = value.IsScalar() ? value.Scalar() : std::string();
  if (std::ranges::none_of(choices, [&](const char* c) { return text == c; })) {
    problems.add(value, fmt::format("{}{}: '{}' is not {}", where, key, text, fmt::join(choices, ", ")));
    return fallback;
  }
  return text;
}

YAML::Node section(const YAML::Node& root, const char* key, Keys allowed, Problems& problems) {
  auto node = root[key];
  if (!node) {
    return node;
  }
  if (!node.IsMap()) {
    problems.add(node, fmt::format("{}: expected a mapping", key));
    return YAML::Node();
  }
  check_keys(node, allowed, fmt::format("{}: ", key), problems);
  return node;
}

void read_kubernetes(const YAML::Node& root, Site& site, Problems& problems) {
  auto node =
      section(root, "kubernetes",
              {"type", "version", "serviceCIDR", "podCIDR", "clusterDomain", "autoRenewCerts", "extraArgs"}, problems);
  if (!node) {
    problems.add(root, "kubernetes: missing (at least its version)");
    return;
  }
  site.kubernetes_type = read_choice(node, "type", "kubeadm", {"kubeadm", "kubexm"}, "kubernetes: ", problems);
  site.kubernetes_version = read_scalar(node, "version", k_version, "a Kubernetes version like 1.32.10", problems);
  if (node["serviceCIDR"]) {
    site.service_cidr = node["serviceCIDR"].as<std::string>("");
  }
  if (node["podCIDR"]) {
    site.pod_cidr = node["podCIDR"].as<std::string>("");
  }
  if (node["clusterDomain"]) {
    static const std::regex domain("[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*");
    site.cluster_domain = read_scalar(node, "clusterDomain", domain, "a DNS domain like cluster.local", problems);
  }
  site.auto_renew_certs = read_bool(node, "autoRenewCerts", true, "kubernetes: ", problems);
  if (auto extra = node["extraArgs"]) {
    static const std::set<std::string> components = {"apiserver", "controllerManager", "scheduler", "kubelet",
                                                     "kubeProxy"};
    if (!extra.IsMap()) {
      problems.add(extra, "kubernetes: extraArgs: expected {component: {flag: value}}");
      return;
    }
    for (const auto& component : extra) {
      auto name = key_of(component);
      if (!components.contains(name) || !component.second.IsMap()) {
        problems.add(component.first, fmt::format("kubernetes: extraArgs: '{}' is not one of {} with {{flag: value}}",
                                                  name, fmt::join(components, ", ")));
        continue;
      }
      for (const auto& flag : component.second) {
        // The flags go into systemd command lines and YAML strings as they are written, so
        // what would split or end them is refused rather than quoted.
        static const std::regex flag_name("[a-z0-9][a-z0-9-]*");
        static const std::regex flag_value("[^\\s\"'\\\\`]*");
        auto key = key_of(flag);
        auto value = flag.second.IsScalar() ? flag.second.Scalar() : std::string();
        if (!std::regex_match(key, flag_name)) {
          problems.add(flag.first, fmt::format("kubernetes: extraArgs: {}: '{}' is not a flag name (lower-case "
                                               "letters, digits and -, without the leading --)",
                                               name, key));
        } else if (!flag.second.IsScalar() || !std::regex_match(value, flag_value)) {
          problems.add(flag.second, fmt::format("kubernetes: extraArgs: {}: {}: the value must be one word without "
                                                "quotes or backslashes (a list is written a,b,c)",
                                                name, key));
        } else {
          site.extra_args[name][key] = value;
        }
      }
    }
  }
}

void read_etcd(const YAML::Node& root, Site& site, Problems& problems) {
  auto node = section(root, "etcd", {"type", "autoBackupEtcd", "dataDir"}, problems);
  if (!node) {
    return;
  }
  site.etcd_type = read_choice(node, "type", "kubeadm", {"kubeadm", "kubexm"}, "etcd: ", problems);
  site.auto_backup_etcd = read_bool(node, "autoBackupEtcd", true, "etcd: ", problems);
  if (node["dataDir"]) {
    static const std::regex absolute("/[A-Za-z0-9._/-]*");
    site.etcd_data_dir = read_scalar(node, "dataDir", absolute, "an absolute path", problems);
  }
}

void read_loadbalancer(const YAML::Node& root, Site& site, Problems& problems) {
  auto node = section(root, "loadbalancer", {"enabled", "mode", "type", "vip", "interface", "port"}, problems);
  if (!node) {
    return;
  }
  auto& lb = site.loadbalancer;
  lb.enabled = read_bool(node, "enabled", false, "loadbalancer: ", problems);
  lb.mode = read_choice(node, "mode", "", {"internal", "kube-vip", "external"}, "loadbalancer: ", problems);
  lb.type = read_choice(node, "type", "", {"haproxy", "nginx", "kubexm-kh", "kubexm-kn"}, "loadbalancer: ", problems);
  if (node["vip"]) {
    lb.vip = node["vip"].as<std::string>("");
  }
  if (node["interface"]) {
    static const std::regex interface("[A-Za-z0-9._@-]{1,15}");
    lb.interface = read_scalar(node, "interface", interface, "a network interface name like eth0", problems);
  }
  if (auto port = node["port"]) {
    auto text = port.IsScalar() ? port.Scalar() : "";
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 65535) {
      problems.add(port, fmt::format("loadbalancer: port: '{}' is not a port (1-65535)", text));
    } else {
      lb.port = value;
    }
  }
}

void read_hosts(const YAML::Node& root, Site& site, Problems& problems) {
  auto hosts = root["hosts"];
  if (!hosts || !hosts.IsSequence() || hosts.size() == 0) {
    problems.add(hosts ? hosts : root, "hosts: expected a list of {name, address, arch, roles}");
    return;
  }
  std::map<std::string, YAML::Node> names;
  std::map<std::string, YAML::Node> addresses;
  for (const auto& item : hosts) {
    if (!item.IsMap()) {
      problems.add(item, "hosts: expected {name, address, arch, roles}");
      continue;
    }
    check_keys(item, {"name", "address", "arch", "os", "roles"}, "hosts: ", problems);
    SiteHost host;
    host.line = item.Mark().line + 1;
    host.name = read_scalar(item, "name", k_host_name, "a host name (lower-case letters, digits, -)", problems);
    auto where = fmt::format("hosts: {}: ", host.name);
    auto address = item["address"] ? item["address"].as<std::string>("") : std::string();
    host.net = parse_ipv4_net(address);
    if (!host.net) {
      problems.add(item["address"] ? item["address"] : item,
                   fmt::format("{}address: '{}' is not an IPv4 address (optionally with /prefix)", where, address));
    } else {
      host.address = ipv4_text(host.net->address);
    }
    host.arch = read_choice(item, "arch", "amd64", {"amd64", "arm64"}, where, problems);
    if (item["os"]) {
      host.os = read_scalar(item, "os", k_word, "an OS profile name like rocky-9", problems);
    }
    host.roles = read_list(item, "roles", k_word, "roles (master, worker, etcd, lb)", problems);
    for (std::size_t i = 0; i < host.roles.size(); ++i) {
      if (std::ranges::none_of(k_roles, [&](const char* r) { return host.roles[i] == r; })) {
        problems.add(item["roles"][i],
                     fmt::format("{}roles: '{}' is not one of {}", where, host.roles[i], fmt::join(k_roles, ", ")));
      }
    }
    if (!host.name.empty()) {
      if (auto [other, fresh] = names.try_emplace(host.name, item); !fresh) {
        problems.add(item["name"], fmt::format("hosts: {} is listed twice (first at line {})", host.name,
                                               other->second.Mark().line + 1));
      }
    }
    if (!host.address.empty()) {
      if (auto [other, fresh] = addresses.try_emplace(host.address, item); !fresh) {
        problems.add(item["address"],
                     fmt::format("hosts: {}: address {} is {}'s too (line {})", host.name, host.address,
                                 other->second["name"].as<std::string>("another host"), other->second.Mark().line + 1));
      }
    }
    site.hosts.push_back(std::move(host));
  }
}

// The CIDRs: each a network address with its prefix, apart from each other and from the hosts.
void check_networks(const YAML::Node& root, const Site& site, Problems& problems) {
  auto node = root["kubernetes"];
  std::vector<std::pair<const char*, std::optional<Ipv4Net>>> nets;
  for (auto [key, text] :
       {std::pair<const char*, std::string>{"serviceCIDR", site.service_cidr}, {"podCIDR", site.pod_cidr}}) {
    auto at = node && node[key] ? node[key] : node;
    auto net = parse_ipv4_net(text);
    if (!net || text.find('/') == std::string::npos) {
      problems.add(at, fmt::format("kubernetes: {}: '{}' is not a CIDR like 10.96.0.0/12", key, text));
      nets.emplace_back(key, std::nullopt);
      continue;
    }
    if ((net->address & mask_of(net->prefix)) != net->address) {
      problems.add(at, fmt::format("kubernetes: {}: {} has host bits set: write {}/{}", key, text,
                                   ipv4_text(net->address & mask_of(net->prefix)), net->prefix));
    }
    nets.emplace_back(key, net);
  }
  if (nets[0].second && nets[1].second && nets[0].second->overlaps(*nets[1].second)) {
    problems.add(node,
                 fmt::format("kubernetes: serviceCIDR {} and podCIDR {} overlap", site.service_cidr, site.pod_cidr));
  }
  for (const auto& host : site.hosts) {
    for (const auto& [key, net] : nets) {
      if (net && host.net && net->contains(host.net->address)) {
        problems.add_at(host.line, fmt::format("hosts: {}: address {} is inside {} {}: the cluster would route it to "
                                               "pods or services",
                                               host.name, host.address, key, net->text()));
      }
    }
  }
}

// The 21 deployments (docs/site.md) and why any other is refused.
void check_topology(const YAML::Node& root, const Site& site, Problems& problems) {
  auto masters = site.with_role("master");
  auto etcds = site.with_role("etcd");
  auto lbs = site.with_role("lb");
  const auto& lb = site.loadbalancer;
  auto lb_node = root["loadbalancer"] ? root["loadbalancer"] : root;
  if (masters.empty()) {
    problems.add(root["hosts"] ? root["hosts"] : root, "hosts: no host has the master role");
  }
  if (site.kubernetes_type == "kubexm" && site.etcd_type == "kubeadm") {
    problems.add(root["etcd"] ? root["etcd"] : root,
                 "etcd: type: kubeadm runs etcd as kubeadm's static pods, which a kubexm cluster does not have: use "
                 "type: kubexm (none of the 21 deployments is a kubexm cluster with kubeadm etcd)");
  }
  if (site.etcd_type == "kubeadm") {
    for (const auto* host : etcds) {
      if (!host->has("master")) {
        problems.add_at(host->line, fmt::format("hosts: {}: the etcd role without master: kubeadm's etcd runs on "
                                                "the masters (etcd: type: kubexm runs it on hosts of its own)",
                                                host->name));
      }
    }
  } else if (etcds.empty()) {
    problems.add(root["etcd"] ? root["etcd"] : root, "etcd: type: kubexm needs hosts with the etcd role");
  }
  if (!lb.enabled) {
    if (!lbs.empty()) {
      problems.add_at(lbs.front()->line,
                      fmt::format("hosts: {} has the lb role, but loadbalancer is not enabled", lbs.front()->name));
    }
    return;
  }
  if (masters.size() == 1) {
    problems.add(lb_node, "loadbalancer: enabled with a single master: a load balancer needs two or more masters "
                          "(a single-master deployment has it disabled)");
  }
  if (lb.mode.empty()) {
    problems.add(lb_node, "loadbalancer: enabled needs a mode: internal, kube-vip or external");
    return;
  }
  if (lb.mode == "internal" && lb.type != "haproxy" && lb.type != "nginx") {
    problems.add(lb_node, fmt::format("loadbalancer: mode internal takes type haproxy or nginx, not '{}'", lb.type));
  }
  if (lb.mode == "external" && lb.type != "kubexm-kh" && lb.type != "kubexm-kn") {
    problems.add(lb_node,
                 fmt::format("loadbalancer: mode external takes type kubexm-kh (keepalived + haproxy) or kubexm-kn "
                             "(keepalived + nginx), not '{}'",
                             lb.type));
  }
  if (lb.mode == "kube-vip" && !lb.type.empty()) {
    problems.add(lb_node, "loadbalancer: mode kube-vip takes no type");
  }
  if (lb.mode == "external" && lbs.empty()) {
    problems.add(lb_node, "loadbalancer: mode external needs hosts with the lb role");
  }
  if (lb.mode != "external" && !lbs.empty()) {
    problems.add(
        fmt::format("hosts: {} has the lb role, which only an external load balancer uses", lbs.front()->name));
  }
  // Masters reach their own apiserver through the cluster's endpoint in these modes
  // (docs/site.md#endpoint), so the endpoint's port is the apiserver's.
  if ((lb.mode == "internal" || lb.mode == "kube-vip") && lb.port != 6443) {
    problems.add(lb_node, fmt::format("loadbalancer: port: mode {} serves the apiservers' own port 6443, not {}; "
                                      "only an external load balancer listens on a port of its own",
                                      lb.mode, lb.port));
  }
  if (lb.mode == "internal") {
    return; // a proxy on 127.0.0.1 of every node: no VIP
  }
  auto vip = parse_ipv4_net(lb.vip);
  if (!vip || vip->prefix != 32) {
    problems.add(lb_node, fmt::format("loadbalancer: mode {} needs vip: an IPv4 address{}", lb.mode,
                                      lb.vip.empty() ? "" : fmt::format(" ('{}' is not one)", lb.vip)));
    return;
  }
  if (lb.interface.empty()) {
    problems.add(lb_node, fmt::format("loadbalancer: mode {} needs the interface the VIP is announced on", lb.mode));
  }
  // The VIP moves between the masters (kube-vip) or the lb hosts (keepalived): it must be in
  // their network, and no host's own address.
  for (const auto* host : lb.mode == "kube-vip" ? masters : lbs) {
    if (host->net && host->net->prefix < 32 && !host->net->contains(vip->address)) {
      problems.add(lb_node,
                   fmt::format("loadbalancer: vip {} is outside {}'s network {}", lb.vip, host->name,
                               Ipv4Net{host->net->address & mask_of(host->net->prefix), host->net->prefix}.text()));
    }
  }
  for (const auto& host : site.hosts) {
    if (host.net && host.net->address == vip->address) {
      problems.add(lb_node, fmt::format("loadbalancer: vip {} is {}'s own address", lb.vip, host.name));
    }
  }
}

void read_site(const YAML::Node& root, Site& site, Problems& problems) {
  check_keys(root, {"name", "kubernetes", "etcd", "runtime", "network", "loadbalancer", "registry", "addons", "hosts"},
             "", problems);
  site.name = read_scalar(root, "name", k_site_name, "a cluster name like 'site-a'", problems);
  read_kubernetes(root, site, problems);
  read_etcd(root, site, problems);
  site.runtime = read_choice(root, "runtime", "containerd", {"containerd", "docker", "cri-o"}, "", problems);
  if (auto network = section(root, "network", {"plugin", "nodelocaldns"}, problems)) {
    site.network_plugin =
        read_choice(network, "plugin", "calico", {"calico", "flannel", "cilium", "kube-router"}, "network: ", problems);
    site.nodelocaldns = read_bool(network, "nodelocaldns", true, "network: ", problems);
  }
  read_loadbalancer(root, site, problems);
  if (auto registry = section(root, "registry", {"mirror"}, problems)) {
    site.registry_mirror = read_scalar(registry, "mirror", k_word, "a registry like registry.site:5000", problems);
  }
  if (root["addons"]) {
    site.addons = read_list(root, "addons", k_word, "addon names", problems);
  }
  read_hosts(root, site, problems);
}

} // namespace

std::string ipv4_text(std::uint32_t address) {
  return fmt::format("{}.{}.{}.{}", address >> 24, (address >> 16) & 255, (address >> 8) & 255, address & 255);
}

bool Ipv4Net::contains(std::uint32_t other) const {
  return (other & mask_of(prefix)) == (address & mask_of(prefix));
}

bool Ipv4Net::overlaps(const Ipv4Net& other) const {
  auto shorter = std::min(prefix, other.prefix);
  return (address & mask_of(shorter)) == (other.address & mask_of(shorter));
}

std::string Ipv4Net::text() const {
  return fmt::format("{}/{}", ipv4_text(address), prefix);
}

std::optional<Ipv4Net> parse_ipv4_net(std::string_view text) {
  Ipv4Net net;
  auto slash = text.find('/');
  auto address = parse_ipv4(text.substr(0, slash));
  if (!address) {
    return std::nullopt;
  }
  net.address = *address;
  if (slash != std::string_view::npos) {
    auto prefix = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), net.prefix);
    if (prefix.empty() || ec != std::errc() || end != prefix.data() + prefix.size() || net.prefix < 0 ||
        net.prefix > 32) {
      return std::nullopt;
    }
  }
  return net;
}

bool SiteHost::has(std::string_view role) const {
  return std::ranges::find(roles, role) != roles.end();
}

std::vector<const SiteHost*> Site::with_role(std::string_view role) const {
  std::vector<const SiteHost*> out;
  for (const auto& host : hosts) {
    if (host.has(role)) {
      out.push_back(&host);
    }
  }
  return out;
}

ClusterSpec cluster_spec_of(const Site& site) {
  ClusterSpec spec;
  spec.type = site.kubernetes_type;
  spec.etcd = site.etcd_type;
  spec.cni = site.network_plugin;
  spec.nodelocaldns = site.nodelocaldns;
  const auto& lb = site.loadbalancer;
  spec.loadbalancer = !lb.enabled ? "none" : lb.mode == "kube-vip" ? "kube-vip" : lb.mode + "-" + lb.type;
  return spec;
}

Topology topology_of(const Site& site) {
  auto masters = site.with_role("master").size();
  const auto& lb = site.loadbalancer;
  bool stacked = site.etcd_type == "kubeadm";
  std::string lb_id = "no-lb";
  std::string how = "no load balancer";
  if (lb.enabled && lb.mode == "internal") {
    lb_id = "internal-" + lb.type;
    how = fmt::format("internal {} on every node, as {}", lb.type,
                      site.kubernetes_type == "kubeadm" ? "static pods" : "a binary under systemd");
  } else if (lb.enabled && lb.mode == "kube-vip") {
    lb_id = "kube-vip";
    how = fmt::format("kube-vip announcing {} from the masters", lb.vip);
  } else if (lb.enabled) {
    lb_id = "external-" + lb.type;
    how = fmt::format("external {} (keepalived + {}) on {} lb hosts with VIP {}", lb.type,
                      lb.type == "kubexm-kh" ? "haproxy" : "nginx", site.with_role("lb").size(), lb.vip);
  }
  auto id = fmt::format("{}/{}/{}/{}", site.kubernetes_type, stacked ? "stacked-etcd" : "kubexm-etcd",
                        masters == 1 ? "single-master" : "several-masters", lb_id);
  auto etcd = stacked ? std::string("stacked etcd (static pods on the masters)")
                      : fmt::format("kubexm etcd (under systemd on {} hosts)", site.with_role("etcd").size());
  return {id, fmt::format("{} cluster, {}, {} master{}, {}", site.kubernetes_type, etcd, masters,
                          masters == 1 ? "" : "s", how)};
}

Result<Site> load_site(const fs::path& path, std::vector<std::string>& warnings) {
  Problems problems(path.string());
  auto root = load_yaml(path, problems);
  if (!root) {
    return std::unexpected(problems.status(ErrorKind::usage).error());
  }
  Site site;
  // The checks of the whole run on what could be read, so that one run reports everything.
  read_site(root, site, problems);
  check_networks(root, site, problems);
  check_topology(root, site, problems);
  if (auto status = problems.status(ErrorKind::usage); !status) {
    return std::unexpected(status.error());
  }
  if (auto etcd = site.etcd_type == "kubeadm" ? site.with_role("master").size() : site.with_role("etcd").size();
      etcd % 2 == 0) {
    warnings.push_back(fmt::format("{}: {} etcd members: an even number tolerates no more failures than one "
                                   "fewer (use 1, 3 or 5)",
                                   path.string(), etcd));
  }
  return site;
}

} // namespace kubexm
