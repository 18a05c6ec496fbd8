#pragma once

#include "bundle/bundle_info.hpp"
#include "bundle/progress.hpp"
#include "bundle/reader.hpp"
#include "installer/host.hpp"
#include "installer/host/effects.hpp"
#include "installer/role/node.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kubexm {

// What `install --role=ROLE` is asked to do.
struct RoleRequest {
  std::filesystem::path bundle;
  std::string role;
  std::optional<std::string> node;       // --node
  bool dry_run = false;
  bool json = false;
  std::chrono::seconds wait{600};        // how long a step may wait for another host
  std::set<std::string> ignore_preflight; // check names
  Progress* progress = nullptr;
};

// One line of the run's report: what a step did, or why it did nothing.
struct StepReport {
  std::string step;
  std::string outcome; // done, unchanged, skipped, would-run, failed, checked
  std::string detail;
  double seconds = 0;
};

// Everything the steps of a role install share.
struct RoleContext {
  RoleContext(const RoleRequest& asked, BundleHeader bundle, Host this_host)
      : request(asked), header(std::move(bundle)), host(std::move(this_host)) {}

  const RoleRequest& request;
  BundleHeader header;
  std::string digest; // the bundle's aggregate digest, hex
  Host host;
  const PackageTargetRecord* packages = nullptr; // this host's OS in the bundle, when it carries OS packages
  std::optional<SiteNodeRecord> node;            // none: a bundle without a site (host preparation)
  std::string prepared_dir;                      // without a site: "prepare/kubernetes/" for masters and workers
  std::vector<std::string> roles;                // the node's roles, or the one asked for
  std::string kubernetes = "kubeadm";            // kubeadm or kubexm, from the site's deployment
  std::string runtime = "containerd";            // the node's: containerd, docker or cri-o
  std::filesystem::path extracted;               // where this host's part of the bundle is, as the host sees it
  std::optional<NodeConfig> config;              // node.yaml, read once extracted
  HostEffects* effects = nullptr;
  std::string detail; // what the running step did, for its report line

  bool has(std::string_view role) const;
  // "site/nodes/<node>/"; without a site, the prepared host's files ("prepare/kubernetes/")
  // where the role has them, else empty.
  std::string node_dir() const;
  // "node etcd1", or "this host" when it is prepared without a site.
  std::string who() const;
  // The bundle member `path` in the extracted part, as the host sees it.
  std::filesystem::path member(std::string_view path) const;
  // node.yaml, read from the extracted part on first use.
  Result<const NodeConfig*> node_config();
};

} // namespace kubexm
