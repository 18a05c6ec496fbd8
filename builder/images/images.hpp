#pragma once

#include "bundle/error.hpp"
#include "bundle/problems.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kubexm {

// The cluster a bundle is for, as far as its container images depend on it: the manifest's
// `cluster:` section (docs/images.md).
struct ClusterSpec {
  std::string type = "kubeadm";      // kubeadm (control plane as static pods) or kubexm (binaries)
  std::string etcd = "kubeadm";      // kubeadm (static pod) or kubexm (binary, systemd)
  std::string cni = "calico";        // calico, flannel, cilium, kube-router, none
  bool nodelocaldns = true;          // NodeLocal DNSCache on every node
  std::string loadbalancer = "none"; // none, internal-haproxy, internal-nginx, kube-vip, external-kubexm-kh, ...

  // The facts images.yaml's `when:` conditions test: type, etcd, cni, nodelocaldns, loadbalancer.
  std::map<std::string, std::string> facts() const;
  bool operator==(const ClusterSpec&) const = default;
};

// One image of a bundle: the name of its images.yaml entry (or "extra") and its full
// reference, registry and tag (or digest) written out: registry.k8s.io/pause:3.10.
struct ImageSpec {
  std::string name;
  std::string ref;
  bool operator==(const ImageSpec&) const = default;
};

// A reference in the full form the lock, the layout and containerd use: a registry host
// always (docker.io when none is given), library/ for Docker Hub's official images, and a
// tag or digest (a reference without one is refused: "latest" changes under a lock; one with
// both keeps the digest).
Result<std::string> normalize_reference(std::string_view ref);

// The parts of a normalized reference.
struct ReferenceParts {
  std::string registry;   // registry.k8s.io, 127.0.0.1:5000
  std::string repository; // registry.k8s.io/coredns/coredns (with the registry)
  std::string tag;        // v1.11.3; empty for a digest reference
  std::string digest;     // sha256:...; empty for a tag reference
};
ReferenceParts split_reference(const std::string& normalized);

// Reads the manifest's `cluster:` section; every mistake is a problem at its line.
ClusterSpec read_cluster(const YAML::Node& node, Problems& problems);

// The images a cluster needs, from the catalogue at `catalogue_path` (manifests/images.yaml):
// each entry whose `when:` holds for `cluster` (none without a cluster), tagged from the release file's `tags`
// (and `kubernetes`), followed by the manifest's extra references. Sorted by reference,
// each once.
std::vector<ImageSpec> derive_images(const std::filesystem::path& catalogue_path, const ClusterSpec* cluster,
                                     const std::map<std::string, std::string>& tags, const std::string& kubernetes,
                                     const std::vector<std::string>& extras, const YAML::Node& extras_node,
                                     Problems& catalogue_problems, Problems& manifest_problems);

} // namespace kubexm
