#pragma once

#include "builder/os_profile.hpp"
#include "bundle/error.hpp"
#include "bundle/package_set.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// A package as its repository's metadata describes it.
struct RepoPackage {
  std::string name;
  std::string evr; // [epoch:]version[-release]
  std::string arch;
  std::size_t repository = 0; // index of the repository it was added with
  std::string location;       // relative to the repository's base URL
  std::string sha256;
  std::uint64_t size = 0;

  // "conntrack-1:1.4.7-1+b2.amd64"-like key, unique within one target.
  std::string key() const { return fmt::format("{} {} {}", name, evr, arch); }
};

// What installing some packages on a target takes.
struct Solution {
  std::vector<RepoPackage> install;    // sorted by name
  std::vector<BaseReliance> relies_on; // sorted by name
};

// A libsolv pool for one target (distribution and arch), never for the build host: its
// dist type and arch are set before any repository is loaded.
class PackagePool {
public:
  PackagePool(PackageFormat format, const std::string& arch);
  ~PackagePool();
  PackagePool(const PackagePool&) = delete;
  PackagePool& operator=(const PackagePool&) = delete;

  // Loads a repository: deb: a Packages index; rpm: primary.xml and filelists.xml (which
  // may be empty). Repositories are numbered in the order they are added.
  Status add_repository(std::string_view name, std::string_view index, std::string_view filelists);

  // Declares what the target already has (the base system), in the same formats.
  Status set_installed(std::string_view index, std::string_view filelists);

  // The packages that installing `names` (package names or provides) adds to the installed
  // system, with the newest version that solves; recommends are ignored. Every problem
  // (an unknown name, an unmet requirement) is reported, each line prefixed by `context`.
  Result<Solution> solve(const std::vector<std::string>& names, std::string_view context);

  // The number of packages loaded (installed ones not counted).
  std::size_t size() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace kubexm
