// Services: systemd reloaded, then node.yaml's services enabled and started in order, each
// waited for until active (etcd for as long as --wait allows: it needs its quorum from the
// other members); those only enabled are started later by an action.
#include "bundle/process.hpp"
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <fmt/ranges.h>

namespace kubexm {

namespace {

std::string unit_name(const std::string& service) {
  return service.find('.') == std::string::npos ? service + ".service" : service;
}

std::string last_journal_lines(const std::string& unit) {
  auto result = run_captured({"journalctl", "--unit", unit, "--lines", "20", "--no-pager", "--output", "cat"});
  if (!result || result->output.empty()) {
    return "(journalctl has nothing for it)";
  }
  return result->output;
}

// The other etcd members of the site, which a member's start waits for.
std::string other_members(const RoleContext& ctx) {
  std::vector<std::string> others;
  if (ctx.header.info.site) {
    for (const auto& node : ctx.header.info.site->nodes) {
      bool member = std::ranges::find(node.roles, "etcd") != node.roles.end();
      if (member && node.name != ctx.node->name) {
        others.push_back(fmt::format("{} at {}", node.name, node.address));
      }
    }
  }
  return others.empty() ? std::string("the other members") : fmt::format("{}", fmt::join(others, ", "));
}

Status wait_active(RoleContext& ctx, const std::string& unit) {
  bool etcd = unit == "etcd.service";
  auto limit = etcd ? ctx.request.wait : std::min(ctx.request.wait, std::chrono::seconds(120));
  std::string state;
  auto what = etcd ? fmt::format("etcd to become active: it needs its quorum, so {} must start too", other_members(ctx))
                   : fmt::format("{} to become active", unit);
  auto waited = wait_until(
      [&] {
        state = unit_active_state(unit);
        return state == "active" || state == "failed";
      },
      limit, what);
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  if (state == "active") {
    return {};
  }
  if (etcd && waited == Waited::timed_out) {
    return std::unexpected(Error(
        ErrorKind::waiting,
        fmt::format("etcd is not active after {} s: its members {} are not all up. Run again once they are up; done "
                    "steps are not repeated. Its last messages:\n{}",
                    limit.count(), other_members(ctx), last_journal_lines(unit))));
  }
  return fail("{} is {} after {}: its last messages:\n{}", unit, state.empty() ? "unknown" : state,
              waited == Waited::timed_out ? fmt::format("{} s", limit.count()) : "starting", last_journal_lines(unit));
}

} // namespace

Status start_services(RoleContext& ctx) {
  auto config = ctx.node_config();
  if (!config) {
    return std::unexpected(config.error());
  }
  if (auto status = ctx.effects->daemon_reload(); !status) {
    return status;
  }
  std::vector<std::string> started;
  std::vector<std::string> enabled;
  std::vector<std::string> disabled;
  for (const auto& phase : (*config)->phases) {
    for (const auto& service : phase.disable) {
      auto changed = ctx.effects->disable(unit_name(service));
      if (!changed) {
        return std::unexpected(changed.error());
      }
      if (*changed == Changed::yes) {
        disabled.push_back(service);
      }
    }
    for (const auto& service : phase.services) {
      auto unit = unit_name(service);
      if (auto changed = ctx.effects->enable(unit); !changed) {
        return std::unexpected(changed.error());
      }
      // This step runs when the node's files or binaries changed: a service already running
      // (an OS package's, started with its own defaults) runs on the new ones after a restart.
      auto asked = unit_active_state(unit) == "active" ? ctx.effects->restart(unit) : ctx.effects->start(unit);
      if (!asked) {
        return asked;
      }
      if (auto status = wait_active(ctx, unit); !status) {
        return status;
      }
      started.push_back(service);
    }
    for (const auto& service : phase.enable) {
      if (auto changed = ctx.effects->enable(unit_name(service)); !changed) {
        return std::unexpected(changed.error());
      }
      enabled.push_back(service);
    }
  }
  ctx.detail = fmt::format("active: {}{}{}",
                           started.empty() ? std::string("none") : fmt::format("{}", fmt::join(started, ", ")),
                           enabled.empty() ? std::string() : fmt::format("; enabled: {}", fmt::join(enabled, ", ")),
                           disabled.empty() ? std::string() : fmt::format("; disabled: {}", fmt::join(disabled, ", ")));
  return {};
}

} // namespace kubexm
