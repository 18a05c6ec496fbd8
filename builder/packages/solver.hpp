#pragma once

#include "builder/packages/os_profile.hpp"
#include "bundle/error.hpp"
#include "bundle/package_set.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
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

// A package taken at an older version than the repositories' newest, and why the newest
// could not be (Best::allow_older).
struct OlderChoice {
  std::string name;
  std::string evr;    // the version taken
  std::string newest; // the newest the repositories have
  std::string why;    // the solver's problem with the newest, as dnf words it
};

// What installing some packages on a target takes.
struct Solution {
  std::vector<RepoPackage> install;    // sorted by name
  std::vector<BaseReliance> relies_on; // sorted by name
  std::vector<OlderChoice> older;      // sorted by name; with Best::newest, only dependencies
};

// How a requested name is matched.
enum class Select {
  provides, // a package of that name or one that provides it (apt install, dnf install)
  names,    // a package of that name only: a base set is the packages a minimal install has
};

// Which version of a package a solve may take.
enum class Best {
  newest,      // the newest, or a problem (dnf's best=True)
  allow_older, // an older one where the newest cannot be installed (dnf's best=False)
};

struct SolveOptions {
  Select select = Select::provides;
  Best best = Best::newest;
  std::vector<std::string> exclude;       // package names never installed
  std::vector<std::size_t> repositories;  // only these (in the order added); empty: every one
  std::map<std::string, VersionPin> pins; // package name -> the versions it may take
};

// The version of libsolv the pools are made with: its .solv files are only read by the
// version that wrote them.
std::string_view libsolv_version();

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

  // The same two from libsolv's own format, as write_solv wrote them: loading a parsed
  // repository takes a tenth of the time of parsing its index again.
  Status add_repository_solv(std::string_view name, const std::filesystem::path& path);
  Status set_installed_solv(const std::filesystem::path& path);
  // Writes repository `repository` (in the order added; nullopt: the installed system) in
  // libsolv's format, atomically.
  Status write_solv(std::optional<std::size_t> repository, const std::filesystem::path& path);

  // deb: records each package's download size (its stanza's Size:, which libsolv does not
  // keep), by location, so that a .solv copy of the repository has it too.
  void set_download_sizes(std::size_t repository, const std::map<std::string, std::uint64_t, std::less<>>& sizes);

  // The packages that installing `names` adds to the installed system, with the newest
  // version that solves (unless `options` allow an older one); recommends are ignored. Every
  // problem (an unknown name, an unmet requirement, with the chain of rules that led to it)
  // is reported, each prefixed by `context`.
  Result<Solution> solve(const std::vector<std::string>& names, std::string_view context,
                         const SolveOptions& options = {});

  // The number of packages loaded (installed ones not counted).
  std::size_t size() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace kubexm
