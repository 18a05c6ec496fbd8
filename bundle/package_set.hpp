#pragma once

#include "bundle/error.hpp"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// The OS packages of one os-profile and arch: what the builder locked and carries under
// packages/<os>/<version>/<arch>/, and what the installer installs from there. It is the
// `package_sets` entry of kubexm.lock and, in a bundle, <dir>/kubexm-packages.json:
//
//   {"profile": "debian-12", "os": "debian", "version": "12", "arch": "amd64",
//    "distro_arch": "amd64", "format": "deb", "installer": "apt", "closure": "minimal",
//    "match": {"id": ["debian"], "like": [], "version_id": "12*"},
//    "metadata": [{"repository", "kind", "url", "sha256", "size"}, ...],
//    "base": ["base-files", ...],
//    "base_system": [{"name", "evr", "arch"}, ...],      (minimal: the modelled minimal install)
//    "best": false, "pins": {"conntrack-tools": "< 1.4.7"},   (only when not the default)
//    "packages": [{"name", "evr", "arch", "repository", "url", "file", "size", "sha256",
//                  "older": {"newest", "why"}}, ...],       (older: only for an older candidate)
//    "roles": {"worker": {"requested": [...], "install": [file, ...],
//                         "relies_on": [{"name", "evr", "needed_by", "requires"}, ...]}, ...}}

// A repository metadata file the closure was computed from.
struct MetadataRecord {
  std::string repository;
  std::string kind; // release, packages, repomd, primary, filelists, group
  std::string url;
  std::string sha256;
  std::uint64_t size = 0;
};

// One package file, exactly.
struct PackageRecord {
  std::string name;
  std::string evr;
  std::string arch;
  std::string repository;
  std::string url;
  std::string file; // its name in the bundle's package directory
  std::uint64_t size = 0;
  std::string sha256;
  std::string newest;    // when an older candidate was taken (best: false): the newest's version,
  std::string why_older; // and why it could not be installed
};

// A package of the modelled minimal install.
struct BasePackage {
  std::string name;
  std::string evr;
  std::string arch;
};

// A base package a role's closure counts on finding installed, and why.
struct BaseReliance {
  std::string name;
  std::string evr;
  std::string needed_by;   // "conntrack requires libc6 (>= 2.34)"
  std::string requirement; // what the host must have installed or provided: "libc6", "/bin/sh"
};

// What one role installs.
struct RolePackages {
  std::vector<std::string> requested;  // the distribution names the role asks for
  std::vector<std::string> install;    // files of `packages`, the closure
  std::vector<BaseReliance> relies_on; // base packages the closure needs present
};

struct PackageSet {
  std::string profile;
  std::string os;
  std::string version;
  std::string arch;              // kubexm's: amd64, arm64
  std::string distro_arch;       // the distribution's: x86_64, aarch64, amd64
  std::string format;            // deb, rpm
  std::string installer;         // apt, dnf, yum
  std::string closure;           // minimal (relative to the base set) or full
  std::vector<std::string> ids;  // how the installer recognises the OS: os-release ID,
  std::vector<std::string> like; // ID_LIKE values,
  std::string version_id;        // and a VERSION_ID glob
  std::vector<MetadataRecord> metadata;
  std::vector<std::string> base;          // the base set's names, as the profile gives them
  std::vector<BasePackage> base_system;   // what a minimal install has, at its release's versions
  bool best = true;                       // false: older candidates were allowed
  std::map<std::string, std::string> pins; // package name -> version range
  std::vector<PackageRecord> packages;    // sorted by name, arch, evr
  std::map<std::string, RolePackages> roles;

  // "packages/<os>/<version>/<arch>"
  std::string dir() const;
  // "debian-12 amd64", for messages.
  std::string label() const;
  const PackageRecord* find_file(std::string_view file) const;
};

inline constexpr std::string_view k_package_set_file = "kubexm-packages.json";

nlohmann::json package_set_json(const PackageSet& set);
// Every problem of the entry is reported, prefixed by `what`.
Result<PackageSet> parse_package_set(const nlohmann::json& json, std::string_view what);

} // namespace kubexm
