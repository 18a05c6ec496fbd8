#pragma once

#include "builder/images/images.hpp"
#include "bundle/error.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kubexm {

// An IPv4 address with the prefix length of its network (32 when none was written).
struct Ipv4Net {
  std::uint32_t address = 0;
  int prefix = 32;
  bool contains(std::uint32_t other) const;
  bool overlaps(const Ipv4Net& other) const;
  std::string text() const; // "10.96.0.0/12"
};

// "10.96.0.1": an address in dotted-quad form.
std::string ipv4_text(std::uint32_t address);

// "10.96.0.0/12", "192.168.1.10" (/32), "192.168.1.10/24"; nothing when it is not one.
std::optional<Ipv4Net> parse_ipv4_net(std::string_view text);

struct SiteHost {
  std::string name;
  std::string address; // as written, without the prefix
  std::optional<Ipv4Net> net;
  std::string arch;
  std::string os; // an OS profile name (os-profiles/), when given: checked against the bundle's
  std::vector<std::string> roles;
  int line = 0; // in the site file, for messages
  bool has(std::string_view role) const;
};

struct SiteLoadBalancer {
  bool enabled = false;
  std::string mode; // internal, kube-vip, external
  std::string type; // haproxy, nginx (internal); kubexm-kh, kubexm-kn (external)
  std::string vip;
  std::string interface;
  int port = 6443;
};

// A site file (docs/site.md): one cluster and its hosts.
struct Site {
  std::string name;
  std::string kubernetes_type = "kubeadm"; // kubeadm | kubexm
  std::string kubernetes_version;
  std::string service_cidr = "10.96.0.0/12";
  std::string pod_cidr = "10.244.0.0/16";
  std::string cluster_domain = "cluster.local";
  bool auto_renew_certs = true;
  std::map<std::string, std::map<std::string, std::string>> extra_args; // component -> flag -> value
  std::string etcd_type = "kubeadm";                                    // kubeadm | kubexm
  bool auto_backup_etcd = true;
  std::string etcd_data_dir = "/var/lib/etcd";
  std::string runtime = "containerd"; // containerd | docker | cri-o
  std::string network_plugin = "calico";
  bool nodelocaldns = true;
  SiteLoadBalancer loadbalancer;
  std::string registry_mirror;
  std::vector<std::string> addons;
  std::vector<SiteHost> hosts;

  std::vector<const SiteHost*> with_role(std::string_view role) const;
};

// Which of the 21 deployments (docs/site.md) a valid site is, named by its shape.
struct Topology {
  std::string id;          // "kubeadm/stacked-etcd/several-masters/internal-haproxy"
  std::string description; // "kubeadm cluster, stacked etcd (static pods on the masters), 3 masters, ..."
};
Topology topology_of(const Site& site);

// The cluster's shape as the images depend on it (the manifest's `cluster:` section).
ClusterSpec cluster_spec_of(const Site& site);

// Reads and validates a site file: every problem of the file in one error (ErrorKind::usage),
// each with its line; warnings (an even number of etcd members) go to `warnings`.
Result<Site> load_site(const std::filesystem::path& path, std::vector<std::string>& warnings);

} // namespace kubexm
