#pragma once

#include "builder/fetch/fetch.hpp"
#include "builder/manifest.hpp"
#include "bundle/bundle_info.hpp"
#include "bundle/error.hpp"
#include "bundle/package_set.hpp"

#include <filesystem>
#include <vector>

namespace kubexm {

// Resolves the OS package closures of a plan, for every profile and arch, from each
// distribution's own repository metadata: the top index (InRelease, repomd.xml) is fetched,
// the indices it names are fetched and checked against it, a libsolv pool is loaded for the
// target, and each role's packages are solved relative to the profile's base set (or an
// empty system for closure: full). Every problem of every target is reported together.
// With PackageFiles::fetch, every package file is fetched into the cache and verified too.
enum class PackageFiles { fetch, skip };
Result<std::vector<PackageSet>> resolve_packages(const Plan& plan, const Cache& cache, const FetchOptions& options,
                                                 PackageFiles files);

// Brings every package file of the sets into the cache, verified against the lock.
Status fetch_packages(const std::vector<PackageSet>& sets, const Cache& cache, const FetchOptions& options);

// Lays out packages/<os>/<version>/<arch>/ for every set from a warm cache: the package
// files (each checked against its digest while copied), a repository index made from the
// locked metadata (deb: Packages and Release of a flat repository; rpm: repodata/), and
// kubexm-packages.json for the installer.
Status assemble_packages(const std::vector<PackageSet>& sets, const Cache& cache, const std::filesystem::path& tree);

// bundle.yaml's `packages` records for the sets.
std::vector<PackageTargetRecord> package_targets(const std::vector<PackageSet>& sets);

} // namespace kubexm
