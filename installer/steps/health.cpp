// Health: each role of the node answers as it should. An etcd member is healthy over TLS
// with the node's client certificate and its cluster has every member of the site; a load
// balancer's proxy accepts connections on its port and health port and keepalived runs; a
// node's container runtime answers, and in a kubexm cluster its kubelet has joined.
#include "bundle/process.hpp"
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace kubexm {

namespace {

std::vector<std::string> etcdctl(const RoleContext& ctx, std::initializer_list<std::string> args) {
  std::vector<std::string> out{"etcdctl",
                               fmt::format("--endpoints=https://{}:2379", ctx.node->address),
                               "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
                               "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
                               "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
                               "--command-timeout=10s"};
  out.insert(out.end(), args);
  return out;
}

Result<std::string> etcd_health(const RoleContext& ctx) {
  auto health = run_captured(etcdctl(ctx, {"endpoint", "health"}), {"ETCDCTL_API=3"});
  if (!health || health->exit_code != 0) {
    return fail("etcd on {} is not healthy: {}", ctx.node->address,
                health ? health->output + health->errors : health.error().message());
  }
  auto members = run_captured(etcdctl(ctx, {"member", "list", "--write-out=json"}), {"ETCDCTL_API=3"});
  auto json = members && members->exit_code == 0 ? nlohmann::json::parse(members->output, nullptr, false)
                                                  : nlohmann::json();
  std::size_t wanted = 0;
  for (const auto& node : ctx.header.info.site->nodes) {
    wanted += std::ranges::find(node.roles, "etcd") != node.roles.end() ? 1u : 0u;
  }
  auto have = json.contains("members") ? json["members"].size() : 0;
  if (have != wanted) {
    return fail("etcd's cluster has {} members, the site {}", have, wanted);
  }
  return fmt::format("etcd healthy over TLS, {} members", have);
}

Result<std::string> lb_health(const RoleContext& ctx) {
  auto port = ctx.header.info.site->apiserver_port;
  if (!tcp_answers(ctx.node->address, port, std::chrono::seconds(3))) {
    return fail("the proxy does not accept connections on {}:{}", ctx.node->address, port);
  }
  if (!tcp_answers("127.0.0.1", k_lb_health_port, std::chrono::seconds(3))) {
    return fail("the proxy's health port 127.0.0.1:{} does not answer", k_lb_health_port);
  }
  if (unit_active_state("keepalived.service") != "active") {
    return fail("keepalived is {}", unit_active_state("keepalived.service"));
  }
  return fmt::format("proxy on :{} and :{}, keepalived active", port, k_lb_health_port);
}

Result<std::string> runtime_health(const RoleContext& ctx) {
  auto args = ctx.runtime == "docker" ? std::vector<std::string>{"docker", "version", "--format", "{{.Server.Version}}"}
              : ctx.runtime == "cri-o"
                  ? std::vector<std::string>{"crictl", "--runtime-endpoint", "unix:///run/crio/crio.sock", "version"}
                  : std::vector<std::string>{"ctr", "--address", "/run/containerd/containerd.sock", "version"};
  auto result = run_captured(args);
  if (!result || result->exit_code != 0) {
    return fail("{} does not answer: {}", ctx.runtime, result ? result->errors : result.error().message());
  }
  return fmt::format("{} answers", ctx.runtime);
}

// A node has joined once its kubelet holds a client certificate of the cluster's CA: the
// kubelet gets it by TLS bootstrap (a kubexm cluster) or through kubeadm join, from the
// apiservers behind lb.kubexm.local, which may come up after this host: waited for.
Result<std::string> kubelet_joined(const RoleContext& ctx) {
  const std::string current = "/var/lib/kubelet/pki/kubelet-client-current.pem";
  const std::string ca = "/etc/kubernetes/pki/ca.crt";
  std::string subject;
  std::string why;
  auto waited = wait_until(
      [&] {
        auto signed_by = certificate_signed_by(current, ca);
        if (signed_by) {
          subject = *signed_by;
        } else {
          why = signed_by.error().message();
        }
        return signed_by.has_value();
      },
      ctx.request.wait, "the kubelet to join: a client certificate of the cluster's CA, from the apiservers behind "
                        "lb.kubexm.local");
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  if (waited == Waited::timed_out) {
    return std::unexpected(Error(
        ErrorKind::waiting,
        fmt::format("the kubelet has not joined after {} s: {}. It asks the apiservers behind lb.kubexm.local for "
                    "its client certificate with the bootstrap token, which the first master applies; see "
                    "'journalctl -u kubelet'. Run again once the masters are up; done steps are not repeated",
                    ctx.request.wait.count(), why)));
  }
  return fmt::format("kubelet joined as {}", subject);
}

} // namespace

Status check_health(RoleContext& ctx) {
  std::vector<std::string> good;
  auto add = [&](Result<std::string> result) -> Status {
    if (!result) {
      return std::unexpected(result.error());
    }
    good.push_back(std::move(*result));
    return {};
  };
  bool kubexm_etcd = ctx.header.info.site && ctx.header.info.site->deployment.find("/kubexm-etcd/") != std::string::npos;
  if (ctx.node && ctx.has("etcd") && kubexm_etcd) {
    if (auto status = add(etcd_health(ctx)); !status) {
      return status;
    }
  }
  if (ctx.node && ctx.has("lb")) {
    if (auto status = add(lb_health(ctx)); !status) {
      return status;
    }
  }
  if ((ctx.has("master") || ctx.has("worker")) && !ctx.node_dir().empty()) { // the runtime was set up here
    if (auto status = add(runtime_health(ctx)); !status) {
      return status;
    }
  }
  bool kubexm_cluster = ctx.header.info.site && ctx.header.info.site->deployment.starts_with("kubexm/");
  if (ctx.node && (ctx.has("master") || ctx.has("worker")) && kubexm_cluster) {
    if (auto status = add(kubelet_joined(ctx)); !status) {
      return status;
    }
  }
  ctx.detail = good.empty() ? std::string("nothing to check") : fmt::format("{}", fmt::join(good, "; "));
  return {};
}

} // namespace kubexm
