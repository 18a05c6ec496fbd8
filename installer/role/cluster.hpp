#pragma once

#include "bundle/error.hpp"

#include <chrono>
#include <filesystem>
#include <string>

namespace kubexm {

// `install kubeconfig [--write]` on an installed master: the path of the cluster's admin
// kubeconfig, or a copy of it as ~/.kube/config (never over a different one).
Result<std::string> cluster_kubeconfig(bool write, bool json);

// `install finish` on an installed master, once every host is installed: waits (up to `wait`)
// until every master and worker of the site is a node of the cluster, then deletes the
// bootstrap token's Secret in a kubexm cluster (kubeadm's token expires by itself), and
// reports the nodes.
struct FinishRequest {
  std::filesystem::path bundle;
  std::chrono::seconds wait{600};
  bool json = false;
};
Result<std::string> cluster_finish(const FinishRequest& request);

} // namespace kubexm
