// Node files: everything under site/nodes/<node>/ (or, without a site, prepare/kubernetes/)
// at its host path with its mode (the preflight has refused anything outside a node's
// places), the kubexm block of /etc/hosts and the host name.
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

namespace kubexm {

Status place_node_files(RoleContext& ctx) {
  auto config = ctx.node_config();
  if (!config) {
    return std::unexpected(config.error());
  }
  auto prefix = ctx.node_dir();
  std::size_t count = 0;
  std::size_t changed = 0;
  for (const auto* entry : members_under(ctx, prefix)) {
    auto path = entry->path.substr(prefix.size());
    if (path == "node.yaml") {
      continue;
    }
    if (!allowed_node_path(path)) { // the preflight said so already; never write it regardless
      return fail("the bundle's files for {} include /{}, which is not a place for a node's configuration",
                  ctx.who(), path);
    }
    auto placed = ctx.effects->place_file("/" + path, ctx.member(entry->path), entry->mode);
    if (!placed) {
      return std::unexpected(placed.error());
    }
    ++count;
    changed += *placed == Changed::yes ? 1u : 0u;
  }
  if (!ctx.node) { // prepared without a site: the host keeps its name and /etc/hosts
    ctx.detail = fmt::format("{} files, {} written (a default configuration: no site)", count, changed);
    return {};
  }
  auto hosts = ctx.effects->hosts_block((*config)->hosts);
  if (!hosts) {
    return std::unexpected(hosts.error());
  }
  auto name = ctx.effects->host_name(ctx.node->name);
  if (!name) {
    return std::unexpected(name.error());
  }
  ctx.detail = fmt::format("{} files, {} written; /etc/hosts {}; host name {}", count, changed,
                           *hosts == Changed::yes ? "updated" : "as it was", ctx.node->name);
  return {};
}

} // namespace kubexm
