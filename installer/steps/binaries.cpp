// Binaries: the node's components from bin/<arch>/ into /usr/local/bin (CNI plugins into
// /opt/cni/bin), each written beside its place and renamed, executable.
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

namespace kubexm {

Status place_binaries(RoleContext& ctx) {
  std::size_t changed = 0;
  auto files = node_binaries(ctx);
  for (const auto& file : files) {
    auto placed = ctx.effects->place_file(file.target, ctx.member(file.member), 0755);
    if (!placed) {
      return std::unexpected(placed.error());
    }
    changed += *placed == Changed::yes ? 1u : 0u;
  }
  ctx.detail = fmt::format("{} files, {} written", files.size(), changed);
  return {};
}

} // namespace kubexm
