// Extract: the part of the bundle this host needs (its arch's binaries, its OS's packages,
// its node's files), with the whole bundle verified on the way, under /var/lib/kubexm.
#include "bundle/extract.hpp"
#include "installer/role/journal.hpp"
#include "installer/steps/steps.hpp"

#include <fmt/ranges.h>

namespace kubexm {

namespace fs = std::filesystem;

fs::path extract_target(const RoleContext& ctx) {
  return fs::path(k_kubexm_state) / fmt::format("bundle-{}", ctx.digest.substr(0, 16));
}

Status extract(RoleContext& ctx) {
  auto target = ctx.effects->at(extract_target(ctx));
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) {
    return fail("cannot create {}: {}", target.parent_path().string(), ec.message());
  }
  auto dirs = extract_dirs(ctx);
  auto report = extract_bundle(ctx.request.bundle, target, ctx.request.progress, std::span<const std::string>(dirs));
  if (!report) {
    return add_context(report.error(), fmt::format("extracting {} into {}", fmt::join(dirs, ", "), target.string()));
  }
  // What other bundles left is not needed once this one is here.
  for (const auto& entry : fs::directory_iterator(target.parent_path(), ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with("bundle-") && entry.path() != target && entry.is_directory(ec) && !entry.is_symlink(ec)) {
      fs::remove_all(entry.path(), ec);
    }
  }
  ctx.detail = report->outcome == ExtractOutcome::already_present
                   ? fmt::format("{} already there", fmt::join(dirs, ", "))
                   : fmt::format("{}, verified", fmt::join(dirs, ", "));
  return {};
}

} // namespace kubexm
