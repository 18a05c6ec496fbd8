#pragma once

#include "bundle/bundle_info.hpp"
#include "bundle/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// A command of node.yaml: run before a phase's services start or after them; `wait_for`
// ("host:port") is an apiserver it needs answering first, and `token_from` the bootstrap
// kubeconfig it joins with, whose token that apiserver must still accept.
struct NodeAction {
  std::string name;
  std::vector<std::string> run;
  std::string wait_for;
  std::string token_from;
};

struct NodePhase {
  int phase = 0;
  std::vector<NodeAction> before;
  std::vector<std::string> services; // enabled and started, in order, each waited for
  std::vector<std::string> enable;   // only enabled: an action starts them
  std::vector<std::string> disable;  // stopped and disabled: OS packages' services this node must not run
  std::vector<NodeAction> after;
};

struct HostsEntry {
  std::string address;
  std::vector<std::string> names;
};

// site/nodes/<node>/node.yaml: what the installer does on one node (docs/site.md#node-yaml).
struct NodeConfig {
  std::string node;
  std::string address;
  std::string prepare; // "kubernetes": a host prepared from a bundle without a site (no node, no address)
  std::string arch;
  std::vector<std::string> roles;
  std::string cluster;
  std::string deployment;
  std::vector<HostsEntry> hosts; // the node's /etc/hosts block
  std::vector<NodePhase> phases;

  bool has(std::string_view role) const;
  // The address `name` has in the node's hosts block; an IPv4 literal is itself.
  std::optional<std::string> address_of(const std::string& name) const;
  // Every service of every phase (started or only enabled), in order.
  std::vector<std::string> all_services() const;
};

// Reads node.yaml; every problem is reported, prefixed by `what`.
Result<NodeConfig> parse_node_config(std::string_view text, std::string_view what);

// Which node of the site this host is, and how that was found.
struct NodeChoice {
  const SiteNodeRecord* node = nullptr;
  std::string how; // "--node", "address 10.0.0.5 is on this host", "named like this host"
};

// --node NAME, else the node whose address is on one of this host's interfaces, else the
// node named like the host. None or several: an error listing the site's nodes with their
// addresses and this host's addresses.
Result<NodeChoice> choose_node(const SiteRecord& site, const std::optional<std::string>& named,
                               const std::vector<std::string>& addresses, const std::string& host_name);

} // namespace kubexm
