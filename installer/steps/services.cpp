// Services: systemd reloaded, then node.yaml's services enabled and started in order, each
// waited for until active (etcd for as long as --wait allows: it needs its quorum from the
// other members); those only enabled are started later by an action.
#include "bundle/process.hpp"
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <charconv>
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

enum class Members { all, others };

// The site's etcd members ("etcd1 at 10.0.0.1"): all of them, which a kubexm cluster's
// apiserver waits for, or the others, which a member's start waits for.
std::vector<std::string> etcd_member_list(const RoleContext& ctx, Members which) {
  std::vector<std::string> members;
  if (ctx.header.info.site) {
    for (const auto& node : ctx.header.info.site->nodes) {
      bool member = std::ranges::find(node.roles, "etcd") != node.roles.end();
      if (member && (which == Members::all || node.name != ctx.node->name)) {
        members.push_back(fmt::format("{} at {}", node.name, node.address));
      }
    }
  }
  return members;
}

std::string etcd_members(const RoleContext& ctx, Members which) {
  auto members = etcd_member_list(ctx, which);
  return members.empty() ? std::string("the other members") : fmt::format("{}", fmt::join(members, ", "));
}

// Whether systemd itself could not run the unit's program (statuses 200 to 243 are its own:
// 203 a missing executable, 217 an unknown user...): restarting will not mend it.
bool systemd_cannot_run(const std::string& unit) {
  auto shown = run_captured({"systemctl", "show", "--property", "ExecMainStatus", "--value", unit});
  int status = 0;
  if (!shown || shown->exit_code != 0) {
    return false;
  }
  auto text = shown->output.substr(0, shown->output.find('\n'));
  std::from_chars(text.data(), text.data() + text.size(), status);
  return status >= 200 && status <= 243;
}

Status wait_active(RoleContext& ctx, const std::string& unit) {
  bool etcd = unit == "etcd.service";
  // An apiserver is ready only once etcd answers, and etcd once its quorum is up: both wait
  // for other hosts, as long as --wait allows.
  bool apiserver = unit == "kube-apiserver.service" && ctx.header.info.site;
  auto limit = etcd || apiserver ? ctx.request.wait : std::min(ctx.request.wait, std::chrono::seconds(120));
  std::string state;
  auto what = etcd        ? fmt::format("etcd to become active: it needs its quorum, so {} must start too", etcd_members(ctx, Members::others))
              : apiserver ? fmt::format("kube-apiserver to become ready: it needs etcd ({})", etcd_members(ctx, Members::all))
                          : fmt::format("{} to become active", unit);
  auto waited = wait_until(
      [&] {
        state = unit_active_state(unit);
        if (state != "active" && systemd_cannot_run(unit)) {
          state = "failed";
        }
        return state == "active" || state == "failed";
      },
      limit, what);
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  if (state == "active") {
    return {};
  }
  if (apiserver && waited == Waited::timed_out) {
    return std::unexpected(Error(
        ErrorKind::waiting,
        fmt::format("kube-apiserver is not ready after {} s: it waits for etcd ({}). Run again once etcd is up; done "
                    "steps are not repeated. Its last messages:\n{}",
                    limit.count(), etcd_members(ctx, Members::all), last_journal_lines(unit))));
  }
  if (etcd && waited == Waited::timed_out) {
    return std::unexpected(Error(
        ErrorKind::waiting,
        fmt::format("etcd is not active after {} s: its members {} are not all up. Run again once they are up; done "
                    "steps are not repeated. Its last messages:\n{}",
                    limit.count(), etcd_members(ctx, Members::others), last_journal_lines(unit))));
  }
  return fail("{} is {} after {}: its last messages:\n{}", unit, state.empty() ? "unknown" : state,
              waited == Waited::timed_out ? fmt::format("{} s", limit.count()) : "starting", last_journal_lines(unit));
}

// What a plan says a service waits for while it starts.
std::string waits_for(const RoleContext& ctx, const std::string& service) {
  if (service == "etcd") {
    // A lone member is its own quorum.
    auto others = etcd_member_list(ctx, Members::others);
    return others.empty() ? std::string() : fmt::format(" (waits for its quorum: {})", fmt::join(others, ", "));
  }
  if (service == "kube-apiserver") {
    return fmt::format(" (waits for etcd: {})", etcd_members(ctx, Members::all));
  }
  return {};
}

} // namespace

std::string plan_services(const RoleContext& ctx) {
  if (!ctx.config) {
    return "enable and start node.yaml's services in order, each waited for until active";
  }
  std::vector<std::string> phases;
  for (const auto& phase : ctx.config->phases) {
    std::vector<std::string> parts;
    if (!phase.disable.empty()) {
      parts.push_back(fmt::format("stop and disable {}", fmt::join(phase.disable, ", ")));
    }
    if (!phase.services.empty()) {
      std::vector<std::string> started;
      for (const auto& service : phase.services) {
        started.push_back(service + waits_for(ctx, service));
      }
      parts.push_back(fmt::format("start {}", fmt::join(started, ", ")));
    }
    if (!phase.enable.empty()) {
      parts.push_back(fmt::format("enable {} (an action starts {})", fmt::join(phase.enable, ", "),
                                   phase.enable.size() == 1 ? "it" : "them"));
    }
    if (!parts.empty()) {
      phases.push_back(fmt::format("phase {}: {}", phase.phase, fmt::join(parts, "; ")));
    }
  }
  return phases.empty() ? std::string("no services in node.yaml")
                        : fmt::format("{}; each waited for until active", fmt::join(phases, "; "));
}

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
