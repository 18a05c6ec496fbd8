#pragma once

#include "builder/fetch/fetch.hpp"
#include "builder/lock.hpp"
#include "builder/manifest.hpp"
#include "builder/site/pki.hpp"
#include "builder/site/render.hpp"
#include "bundle/error.hpp"

#include <filesystem>

namespace kubexm {

// Resolves a plan to a lock: fetches each upstream checksum file, checks it against the
// pinned digest, downloads every file into the cache verified against both, and checks
// every binary's ELF arch. Artifacts without a pin are refused unless `allow_unpinned`.
Result<Lock> resolve_plan(const Plan& plan, const Cache& cache, const FetchOptions& options, bool allow_unpinned);

// Brings every artifact of a lock into the cache, verified against the lock. Files already
// in the cache are not downloaded again (and not read: they were verified when they entered).
Status fetch_lock(const Lock& lock, const Cache& cache, const FetchOptions& options);

// Lays out a kubexm-dist tree from a lock and a warm cache: bundle.yaml, kubexm.lock and
// bin/<arch>/<component>/<version>/<file> for every binary, each checked against the lock's
// digest and its ELF arch.
Status assemble_tree(const Lock& lock, const Cache& cache, const std::filesystem::path& tree);

// A site's PKI made or kept under DIR/pki, and every node rendered under DIR with the
// references of `images` (the cluster's images) in their configurations.
struct SiteOutput {
  PkiReport pki;
  RenderReport nodes;
};
Result<SiteOutput> make_site(const Site& site, const std::filesystem::path& dir, const std::vector<ImageSpec>& images,
                             const PkiOptions& options);

// The site of a plan with one (the manifest's site:) in a tree: its PKI made or kept under
// `site_dir` (kept there across builds, so a rebuild carries the same keys), every node
// rendered there, and site/site.yaml, site/nodes/<node>/... copied into `tree`.
struct SiteBuild {
  std::filesystem::path site_dir;
  PkiOptions pki;
};
Result<RenderReport> assemble_site(const Plan& plan, const SiteBuild& options, const std::filesystem::path& tree);

// A plan without a site whose roles include master or worker, and whose lock carries
// containerd: prepare/kubernetes/ in `tree`, what the installer prepares those hosts with
// (render_preparation). False when the plan needs none.
Result<bool> assemble_preparation(const Plan& plan, const Lock& lock, const std::filesystem::path& tree);

} // namespace kubexm
