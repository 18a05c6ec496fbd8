#pragma once

#include "bundle/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// The bundle format version this code writes and reads.
inline constexpr int k_format_version = 1;

// bundle.yaml: what a bundle is and what it can serve.
//   name: demo                      # [a-z0-9][a-z0-9._-]*, part of the archive's file name
//   version: 1.0.0                  # [0-9A-Za-z][0-9A-Za-z._+-]*
//   format: 1                       # bundle format version; written by pack
//   created_by: kubexm-builder 0.1.0  # written by pack
//   source_date_epoch: 1700000000   # the mtime of every member; written by pack
//   arches: [amd64, arm64]          # non-empty subset of amd64, arm64
//   os_profiles: [ubuntu-22.04]     # names of os-profiles/ files
//   roles: [master, worker]         # non-empty subset of master, worker, etcd, lb
//   components:                     # optional: binaries under bin/<arch>/<name>/<version>/<file>
//     - {name: etcd, version: 3.5.16, arches: [amd64, arm64], files: [etcd, etcdctl, etcdutl]}
//   packages:                       # optional: OS packages under <path>/<arch>/ (see package_set.hpp)
//     - {profile: debian-12, path: packages/debian/12, format: deb, arches: [amd64, arm64],
//        id: [debian], like: [], version_id: "12*"}
//   images:                         # optional: container images in images/oci (images/images.json)
//     - {ref: registry.k8s.io/pause:3.10, digest: "sha256:...", manifests: {amd64: "sha256:...", arm64: "sha256:..."}}
//   site:                           # optional: the site whose nodes are under site/nodes/<name>/
//     name: site-a
//     deployment: kubeadm/stacked-etcd/several-masters/internal-haproxy
//     apiserver_port: 6443          # the port behind lb.kubexm.local
//     nodes:
//       - {name: master1, address: 10.0.0.11, arch: amd64, os: debian-12, roles: [master, etcd]}
struct ComponentRecord {
  std::string name;
  std::string version;
  std::vector<std::string> arches;
  std::vector<std::string> files;

  // "bin/<arch>/<name>/<version>/<file>": where a file of this component is in the bundle.
  std::string member_path(std::string_view arch, std::string_view file) const;
};

// The OS packages a bundle carries for one os-profile, and how the installer recognises a
// host of that profile from its /etc/os-release (ID or ID_LIKE, and a VERSION_ID glob).
struct PackageTargetRecord {
  std::string profile;
  std::string path;   // "packages/debian/12"
  std::string format; // deb, rpm
  std::vector<std::string> arches;
  std::vector<std::string> ids;
  std::vector<std::string> like;
  std::string version_id;

  // "<path>/<arch>/kubexm-packages.json": the package set of one arch.
  std::string set_path(std::string_view arch) const;
};

// A container image the bundle carries: its reference and the digest of its platform
// manifest for each arch it has, which is what the installer checks the runtime against.
struct ImageRecord {
  std::string ref;
  std::string digest;                           // what the reference named upstream: its index, or its one manifest
  std::map<std::string, std::string> manifests; // arch -> sha256:<hex>
};

// Where the installer reads which blobs make up each image (before the layout's blobs).
inline constexpr std::string_view k_images_summary = "images/images.json";

// One node of the bundle's site: what the installer picks a host's node by, before it reads
// anything but the bundle's metadata.
struct SiteNodeRecord {
  std::string name;
  std::string address; // IPv4, without a prefix
  std::string arch;
  std::string os; // an os-profile name, or empty: any the bundle carries
  std::vector<std::string> roles;
};

// The port of the load balancers' own health endpoint (/healthz), on every lb host.
inline constexpr int k_lb_health_port = 8081;

struct SiteRecord {
  std::string name;
  std::string deployment; // docs/site.md's name for its shape
  int apiserver_port = 6443; // behind lb.kubexm.local: the external load balancers' port, else 6443
  std::vector<SiteNodeRecord> nodes;

  const SiteNodeRecord* find(std::string_view node) const;
};

struct BundleInfo {
  std::string name;
  std::string version;
  int format = k_format_version;
  std::string created_by;
  std::optional<std::int64_t> source_date_epoch; // always set in a bundle; optional in a tree
  std::vector<std::string> arches;
  std::vector<std::string> os_profiles;
  std::vector<std::string> roles;
  std::vector<ComponentRecord> components;
  std::vector<PackageTargetRecord> packages;
  std::vector<ImageRecord> images;
  std::optional<SiteRecord> site;
};

// Every problem of a tree whose bundle.yaml lists component files that are missing or not
// regular files; `is_file` answers for a member path.
template <typename IsFile> std::vector<std::string> missing_component_files(const BundleInfo& info, IsFile is_file) {
  std::vector<std::string> missing;
  for (const auto& component : info.components) {
    for (const auto& arch : component.arches) {
      for (const auto& file : component.files) {
        if (auto path = component.member_path(arch, file); !is_file(path)) {
          missing.push_back(std::move(path));
        }
      }
    }
  }
  for (const auto& target : info.packages) {
    for (const auto& arch : target.arches) {
      if (auto path = target.set_path(arch); !is_file(path)) {
        missing.push_back(std::move(path));
      }
    }
  }
  if (!info.images.empty() && !is_file(std::string(k_images_summary))) {
    missing.emplace_back(k_images_summary);
  }
  return missing;
}

// Where a bundle.yaml comes from: an authored tree may leave out what pack writes.
enum class InfoSource { tree, bundle };

// Parses and validates bundle.yaml; every problem is reported, each with its line.
Result<BundleInfo> parse_bundle_info(std::string_view text, std::string_view what, InfoSource source);

// The canonical text of bundle.yaml (fixed key order), as pack writes it.
std::string format_bundle_info(const BundleInfo& info);

// "kubexm-dist-<name>-<version>.tar.zst"
std::string archive_file_name(const BundleInfo& info);

} // namespace kubexm
