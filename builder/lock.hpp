#pragma once

#include "builder/manifest.hpp"
#include "bundle/error.hpp"
#include "bundle/package_set.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kubexm {

// A binary taken from a locked artifact, with the digest it had when it was resolved.
struct LockedMember {
  std::string path; // in the archive; empty for a plain file
  std::string install;
  std::uint64_t size = 0;
  std::string sha256;
};

// One download, exactly: what `fetch` gets and `build` packs, without resolving again.
struct LockedArtifact {
  std::string component;
  std::string version;
  std::string arch;
  std::string url;
  std::uint64_t size = 0;
  std::string sha256;
  ArtifactKind kind = ArtifactKind::file;
  std::string checksum_url; // the upstream checksum file it was checked against; may be empty
  PinSource pin = PinSource::none;
  std::vector<LockedMember> members;

  std::string label() const;
};

// One arch of a locked image: the platform manifest the layout carries for it.
struct LockedImageArch {
  std::string arch;
  std::string digest; // sha256:<hex> of the platform manifest
  std::uint64_t size = 0;
  std::string media_type;
  bool operator==(const LockedImageArch&) const = default;
};

// A container image, pinned: what its reference resolved to when the lock was made.
struct LockedImage {
  std::string name;                    // its manifests/images.yaml entry, or "extra"
  std::string ref;                     // registry.k8s.io/pause:3.10
  std::string digest;                  // sha256:<hex> of what the reference named: an index, or one manifest
  std::string media_type;              // of that
  std::vector<LockedImageArch> arches; // the bundle's arches it has, in the bundle's order
  std::vector<std::string> missing;    // the bundle's arches it lacks (--images-policy=warn)
  const LockedImageArch* find(std::string_view arch) const;
  bool operator==(const LockedImage&) const = default;
};

// kubexm.lock: the bundle a manifest resolved to. JSON with sorted keys and one value per
// line, so that a diff of two locks reads as what changed; docs/manifests.md describes it.
struct Lock {
  BundleIdentity bundle;
  std::vector<LockedArtifact> artifacts; // sorted by component, version, arch
  std::vector<PackageSet> package_sets;  // one per os-profile and arch, in manifest order
  std::vector<LockedImage> images;       // sorted by reference
};

std::string format_lock(const Lock& lock);
Result<Lock> parse_lock(std::string_view text, std::string_view what);
Result<Lock> read_lock(const std::filesystem::path& path);

// Checks that a lock was made from this plan (the same components, versions, arches and
// URLs); a stale lock is an error that lists the differences.
Status check_lock_matches(const Lock& lock, const Plan& plan, const std::filesystem::path& lock_path);

} // namespace kubexm
