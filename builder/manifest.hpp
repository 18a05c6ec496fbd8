#pragma once

#include "builder/images/images.hpp"
#include "builder/packages/os_profile.hpp"
#include "builder/site/site.hpp"
#include "bundle/error.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kubexm {

// How an upstream publishes the SHA-256 of a download.
enum class ChecksumFormat {
  bare, // a file holding only the hex digest (dl.k8s.io's NAME.sha256)
  sums, // coreutils lines "HEX  NAME" for one or more files (SHA256SUMS, checksums.txt)
  none, // nothing published: only a pinned value can vouch for the file
};

// What the downloaded file is.
enum class ArtifactKind {
  file,   // the binary itself
  tar_gz, // a gzip-compressed tarball holding the binaries
};

// One binary taken from an artifact: its path in the archive (empty for a plain file) and
// the name it is installed under.
struct MemberSpec {
  std::string path;
  std::string install;
};

// A component of manifests/catalogue.yaml: where its upstream publishes it.
struct ComponentSpec {
  std::string name;
  std::string description;
  bool follows_kubernetes = false;               // its version is the Kubernetes version
  std::string url;                               // template: {version}, {arch}
  std::map<std::string, std::string> arch_names; // kubexm arch -> upstream spelling
  std::string checksum_url;                      // template: {version}, {arch}, {url}
  ChecksumFormat checksum_format = ChecksumFormat::none;
  ArtifactKind kind = ArtifactKind::file;
  std::vector<MemberSpec> members; // templates: {version}, {arch}
};

// Where a pinned digest comes from.
enum class PinSource { none, catalogue, manifest };

// One file to download: a component at a version for an arch, with everything resolved.
struct Artifact {
  std::string component;
  std::string version;
  std::string arch;
  std::string url;
  std::string checksum_url; // empty when the upstream publishes none
  ChecksumFormat checksum_format = ChecksumFormat::none;
  ArtifactKind kind = ArtifactKind::file;
  std::vector<MemberSpec> members;
  std::optional<std::string> pin; // lower-case hex
  PinSource pin_source = PinSource::none;

  // The file name upstream gives it: the last segment of the URL.
  std::string file_name() const;
  // "containerd 1.7.24 arm64", for messages.
  std::string label() const;
};

// What a bundle is, as its manifest says: carried by the plan, the lock and bundle.yaml.
struct BundleIdentity {
  std::string name;
  std::string version;
  std::string kubernetes;
  std::vector<std::string> arches;
  std::vector<std::string> os_profiles;
  std::vector<std::string> roles;
  std::map<std::string, std::string> images; // image -> tag that goes with this Kubernetes
  std::string closure = "minimal";           // OS packages: minimal (over the base set), full, none
  std::vector<std::string> extra_packages;   // distribution package names added to every role

  bool operator==(const BundleIdentity&) const = default;
};

// A user's manifest, expanded with manifests/: everything a bundle will hold.
struct Plan {
  std::filesystem::path manifest_path;
  BundleIdentity bundle;
  std::vector<Artifact> artifacts; // sorted by component, version, arch
  std::vector<OsProfile> profiles; // bundle.os_profiles, read (empty when closure is none), with
                                   // the manifest's packages: best and pins applied
  PackageSets package_sets;
  std::optional<ClusterSpec> cluster; // the manifest's cluster: section, when it has one
  std::vector<ImageSpec> images;      // what the cluster needs and the manifest adds; by reference
  std::optional<Site> site;           // the manifest's site: file, read and checked against the bundle
  std::filesystem::path site_path;
};

// Reads MANIFEST and the catalogue, release and checksum files under `manifests_dir`, and
// the OS profiles it names under `os_profiles_dir` (default: default_os_profiles_dir()).
// `closure` (minimal, full or none), when given, replaces the manifest's packages: closure.
// Every problem of every file is reported in one error, each with its file and line.
Result<Plan> load_plan(const std::filesystem::path& manifest, const std::filesystem::path& manifests_dir,
                       const std::filesystem::path& os_profiles_dir = {}, std::string_view closure = {});

// The manifests directory to use when none is given: $KUBEXM_MANIFESTS, else
// share/kubexm/manifests beside an installed builder, else the source tree's.
std::filesystem::path default_manifests_dir();

// The images a cluster of shape `cluster` runs at Kubernetes `version`, from the release
// file and images.yaml under `manifests_dir`.
Result<std::vector<ImageSpec>> cluster_images(const ClusterSpec& cluster, const std::string& version,
                                              const std::filesystem::path& manifests_dir);

const char* to_string(ChecksumFormat format);
const char* to_string(ArtifactKind kind);
const char* to_string(PinSource source);

} // namespace kubexm
