#pragma once

#include "builder/site/site.hpp"
#include "bundle/error.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kubexm {

// The port behind lb.kubexm.local: an external load balancer's own, else the apiservers' 6443.
int endpoint_port(const Site& site);

// What the rendering needs beyond the site: where the templates are, and the references of
// the images its nodes run (the pause, haproxy, nginx and kube-vip images).
struct RenderInputs {
  std::filesystem::path templates_dir;
  std::map<std::string, std::string> images; // images.yaml name -> full reference: pause, haproxy, ...
};

// What render_site did, counted in files under DIR/nodes and DIR/kubeconfigs.
struct RenderReport {
  std::vector<std::string> nodes;
  std::size_t files = 0;
  std::vector<std::string> written; // made or changed
  std::vector<std::string> removed; // left from an earlier rendering, no longer produced
};

// Renders every node of `site` under DIR/nodes/<node>/ (docs/site.md#rendering): the files
// the host gets, at the paths it gets them (etc/..., usr/lib/systemd/..., var/lib/...), and
// node.yaml, which says what the installer does there. DIR/kubeconfigs/ gets the cluster's
// kubeconfigs. Reads the PKI generate_site_pki made under DIR/pki. Files whose contents are
// unchanged are not written again, so rendering twice changes nothing; files an earlier
// rendering made that this one does not are removed.
Result<RenderReport> render_site(const Site& site, const std::filesystem::path& dir, const RenderInputs& inputs);

// A bundle without a site still prepares the hosts of masters and workers
// (docs/install.md#a-bundle-without-a-site): the runtime with a default configuration, the
// kubelet's unit with kubeadm's drop-in, the kernel modules and settings, and a node.yaml that
// starts the runtime and enables (does not start) the kubelet. Written under DIR, which the
// bundle carries as prepare/kubernetes/.
Status render_preparation(const std::filesystem::path& dir, const RenderInputs& inputs);

// templates/ of the source tree, or $KUBEXM_TEMPLATES.
std::filesystem::path default_templates_dir();

} // namespace kubexm
