#pragma once

#include "bundle/error.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
}

namespace kubexm {

class Problems;

// How a distribution packages software.
enum class PackageFormat { deb, rpm };

// Where a profile's base set (what a minimal install already has) comes from.
enum class BaseSource {
  priority_required, // deb: Essential: yes and Priority: required (debootstrap's minbase)
  comps_core,        // rpm: the mandatory packages of the comps group "core"
  list,              // the profile's own list
};

// One bound of a version range: an operator (<, <=, =, >=, >) and a version ([epoch:]v[-r]).
struct VersionBound {
  std::string op;
  std::string evr;
};

// A version range a package is held to, as a profile or manifest writes it: "< 1.4.7",
// ">= 1.4.5, < 1.4.7". Every bound must hold.
struct VersionPin {
  std::string text;
  std::vector<VersionBound> bounds;
};

// Reads a version range; an error says what is wrong with it.
Result<VersionPin> parse_version_pin(std::string_view text);

// Reads `pins:` (package name -> version range) into `pins`; every problem with its line,
// prefixed by `where`.
void read_version_pins(const YAML::Node& node, std::map<std::string, VersionPin>& pins, std::string_view where,
                       Problems& problems);

// One repository of a distribution, as os-profiles/<name>.yaml describes it.
struct RepositorySpec {
  std::string name;
  std::string url;                                // template: {mirror}, {arch}
  std::map<std::string, std::string> url_by_arch; // kubexm arch -> template, for arches on another tree
  std::string suite;                              // deb only
  std::vector<std::string> components;            // deb only
};

// os-profiles/<name>.yaml: a target operating system the builder resolves packages for and
// the installer recognises from /etc/os-release.
struct OsProfile {
  std::string name;    // "debian-12"
  std::string os;      // "debian": packages/<os>/<version>/<arch>/ in a bundle
  std::string version; // "12"
  std::vector<std::string> match_ids;
  std::vector<std::string> match_like;
  std::string match_version; // a glob over VERSION_ID
  PackageFormat format = PackageFormat::deb;
  std::string installer;                     // apt, dnf, yum
  std::map<std::string, std::string> arches; // kubexm arch -> the distribution's spelling
  std::string mirror;                        // the default {mirror}
  std::vector<RepositorySpec> repositories;
  BaseSource base_from = BaseSource::list;
  std::vector<std::string> base_packages;     // BaseSource::list (may be empty: an empty system)
  std::vector<std::string> base_add;          // package names the minimal installer adds
  std::vector<std::string> base_remove;       // package names a minimal install never has
  std::vector<std::string> base_repositories; // where the release point's versions are; empty: all
  // The newest candidate of each package or an error (dnf's best=True); false allows an
  // older one where the newest cannot be installed (best=False), reported per package.
  bool best = true;
  std::map<std::string, VersionPin> pins; // package name -> the versions it may take
  // kubexm's package names -> this distribution's; nullopt: not used here.
  std::map<std::string, std::optional<std::string>> names;

  // The repository's base URL for a kubexm arch, with {mirror} and {arch} filled in.
  std::string repository_url(const RepositorySpec& repository, std::string_view arch) const;
};

// os-profiles/packages.yaml: the packages each role needs, by kubexm's names.
struct PackageSets {
  std::map<std::string, std::vector<std::string>> sets;
  std::map<std::string, std::vector<std::string>> roles; // role -> set names
};

// Reads the named profiles from `dir` (every problem of every file, each with its line).
Result<std::vector<OsProfile>> load_os_profiles(const std::filesystem::path& dir,
                                                const std::vector<std::string>& names);
Result<PackageSets> load_package_sets(const std::filesystem::path& dir);

// The names of every profile in `dir`.
std::vector<std::string> available_profiles(const std::filesystem::path& dir);

// The distribution's package names a role needs on a profile, in the order of the sets,
// with `extra` (distribution names) added; names mapped to ~ are left out.
std::vector<std::string> role_packages(const PackageSets& sets, const OsProfile& profile, std::string_view role,
                                       const std::vector<std::string>& extra);

// $KUBEXM_OS_PROFILES, else share/kubexm/os-profiles beside an installed builder, else the
// source tree's.
std::filesystem::path default_os_profiles_dir();

const char* to_string(PackageFormat format);

} // namespace kubexm
