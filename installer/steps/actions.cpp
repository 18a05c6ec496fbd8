// After actions: node.yaml's commands after the services (kubeadm init or join, the kubelet's
// TLS bootstrap, applying manifests), in order, each once: one that needs an apiserver waits
// for it to answer, as long as --wait allows.
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <charconv>
#include <fmt/ranges.h>

namespace kubexm {

namespace {

// Waits until an apiserver is ready at `wait_for` ("host:port", the host a name of the node's
// hosts block): its /readyz answers 200, which it does once its etcd answers.
Status wait_for_apiserver(RoleContext& ctx, const NodeConfig& config, const NodeAction& action) {
  auto colon = action.wait_for.rfind(':');
  int port = 0;
  auto host = action.wait_for.substr(0, colon);
  if (colon == std::string::npos ||
      std::from_chars(action.wait_for.data() + colon + 1, action.wait_for.data() + action.wait_for.size(), port).ec !=
          std::errc()) {
    return fail("node.yaml: action {}: wait_for '{}' is not host:port", action.name, action.wait_for);
  }
  auto address = config.address_of(host);
  if (!address) {
    return fail("node.yaml: action {}: {} is not in the node's hosts", action.name, host);
  }
  std::string last;
  auto what = fmt::format("an apiserver to answer at {} ({}:{}), which {} needs", action.wait_for, *address, port,
                          action.name);
  auto waited = wait_until(
      [&] {
        auto status = https_status(*address, port, "/readyz", std::chrono::seconds(3));
        last = status ? fmt::format("/readyz answered HTTP {}", *status) : status.error().message();
        return status && *status == 200;
      },
      ctx.request.wait, what);
  if (waited == Waited::ready) {
    return {};
  }
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  return std::unexpected(Error(ErrorKind::waiting,
                               fmt::format("no apiserver answered at {} ({}:{}) within {} s ({}); {} waits for it. Run "
                                           "again once the masters are up; done steps are not repeated",
                                           action.wait_for, *address, port, ctx.request.wait.count(), last,
                                           action.name)));
}

} // namespace

Status run_after_actions(RoleContext& ctx) {
  auto config = ctx.node_config();
  if (!config) {
    return std::unexpected(config.error());
  }
  std::vector<std::string> ran;
  std::vector<std::string> earlier;
  for (const auto& phase : (*config)->phases) {
    for (const auto& action : phase.after) {
      if (ctx.effects->action_done(action.name)) {
        earlier.push_back(action.name);
        continue;
      }
      if (!action.wait_for.empty()) {
        if (auto status = wait_for_apiserver(ctx, **config, action); !status) {
          return status;
        }
      }
      if (auto status = ctx.effects->run(action.name, action.run); !status) {
        return status;
      }
      if (auto status = ctx.effects->record_action(action.name); !status) {
        return status;
      }
      ran.push_back(action.name);
    }
  }
  ctx.detail = fmt::format("{}{}", ran.empty() ? std::string("none to run") : fmt::format("ran {}", fmt::join(ran, ", ")),
                           earlier.empty() ? std::string() : fmt::format("; done earlier: {}", fmt::join(earlier, ", ")));
  return {};
}

} // namespace kubexm
