// What the steps of a role install share: member digests, which binaries a node gets and
// where, the host paths a node's files may have, the ports of its roles, bounded waits.
#include "bundle/interrupt.hpp"
#include "bundle/sha256.hpp"
#include "installer/role/step.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <spdlog/spdlog.h>
#include <thread>

namespace kubexm {

namespace fs = std::filesystem;

bool RoleContext::has(std::string_view role) const {
  return std::ranges::find(roles, role) != roles.end();
}

std::string RoleContext::node_dir() const {
  return node ? fmt::format("site/nodes/{}/", node->name) : prepared_dir;
}

std::string RoleContext::who() const {
  return node ? "node " + node->name : std::string("this host");
}

fs::path RoleContext::member(std::string_view path) const {
  return effects->at(extracted / path);
}

Result<const NodeConfig*> RoleContext::node_config() {
  if (config) {
    return &*config;
  }
  auto path = member(node_dir() + "node.yaml");
  auto text = read_text_file(path, 1 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  auto parsed = parse_node_config(*text, path.string());
  if (!parsed) {
    return std::unexpected(parsed.error());
  }
  config = std::move(*parsed);
  return &*config;
}

std::string members_digest(const RoleContext& ctx, const std::function<bool(std::string_view)>& want,
                           std::string_view extra) {
  Sha256 hash;
  const auto& index = ctx.header.index;
  for (std::size_t i = 0; i < index.size(); ++i) {
    if (index[i].kind == EntryKind::file && want(index[i].path)) {
      auto line = fmt::format("{} {:04o} {}\n", index[i].path, index[i].mode, to_hex(ctx.header.digests[i]));
      hash.update(std::as_bytes(std::span(line)));
    }
  }
  hash.update(std::as_bytes(std::span(extra)));
  return to_hex(hash.finish());
}

std::vector<const IndexEntry*> members_under(const RoleContext& ctx, std::string_view prefix) {
  std::vector<const IndexEntry*> out;
  for (const auto& entry : ctx.header.index) {
    if (entry.kind == EntryKind::file && entry.path.starts_with(prefix)) {
      out.push_back(&entry);
    }
  }
  return out;
}

namespace {

// The components a role needs, by runtime where it matters.
std::vector<std::string> components_of(const RoleContext& ctx) {
  std::vector<std::string> out;
  auto add = [&](std::initializer_list<const char*> names) { out.insert(out.end(), names.begin(), names.end()); };
  if (ctx.has("etcd") || ctx.has("master")) {
    add({"etcd"}); // a member's etcd; a master's etcdctl for backups and health checks
  }
  if (ctx.has("master") || ctx.has("worker")) {
    add({"kubelet", "kubectl", "crictl", "cni-plugins"});
    add({ctx.kubernetes == "kubeadm" ? "kubeadm" : "kube-proxy"});
    if (ctx.runtime == "docker") {
      add({"docker", "cri-dockerd"});
    } else if (ctx.runtime == "cri-o") {
      add({"cri-o"});
    } else {
      add({"containerd", "runc"});
    }
  }
  if (ctx.has("master")) {
    add({"helm", "calicoctl"});
    if (ctx.kubernetes == "kubexm") {
      add({"kube-apiserver", "kube-controller-manager", "kube-scheduler"});
    }
  }
  std::ranges::sort(out);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

} // namespace

std::vector<BinaryFile> node_binaries(const RoleContext& ctx) {
  std::vector<BinaryFile> out;
  auto wanted = components_of(ctx);
  for (const auto& component : ctx.header.info.components) {
    if (std::ranges::find(wanted, component.name) == wanted.end() ||
        std::ranges::find(component.arches, ctx.host.arch) == component.arches.end()) {
      continue;
    }
    // CNI plugins go where the runtimes look for them; everything else on PATH.
    auto dir = component.name == "cni-plugins" ? "/opt/cni/bin/" : "/usr/local/bin/";
    for (const auto& file : component.files) {
      out.push_back({component.member_path(ctx.host.arch, file), dir + file});
    }
  }
  return out;
}

std::vector<std::string> missing_components(const RoleContext& ctx) {
  std::vector<std::string> out;
  for (const auto& name : components_of(ctx)) {
    bool carried = std::ranges::any_of(ctx.header.info.components, [&](const auto& component) {
      return component.name == name && std::ranges::find(component.arches, ctx.host.arch) != component.arches.end();
    });
    if (!carried) {
      out.push_back(name);
    }
  }
  return out;
}

bool allowed_node_path(std::string_view path) {
  static constexpr std::array k_allowed{
      "etc/kubernetes/",     "etc/containerd/",     "etc/crio/",         "etc/docker/",
      "etc/sysctl.d/",       "etc/modules-load.d/", "etc/keepalived/",   "etc/kubexm/",
      "etc/cni/net.d/",      "usr/lib/systemd/system/", "usr/local/bin/kube-scripts/", "var/lib/kubelet/",
      "var/lib/kube-proxy/",
  };
  if (path.find("/../") != std::string_view::npos || path.find("/./") != std::string_view::npos) {
    return false;
  }
  return std::ranges::any_of(k_allowed, [&](const char* prefix) {
    return path.starts_with(prefix) && path.size() > std::string_view(prefix).size();
  });
}

std::vector<int> role_ports(const RoleContext& ctx) {
  std::vector<int> ports;
  bool stacked = ctx.node && ctx.header.info.site && ctx.header.info.site->deployment.find("/stacked-etcd/") !=
                                                         std::string::npos;
  if (ctx.has("etcd") && (!ctx.has("master") || !stacked || ctx.kubernetes == "kubexm")) {
    ports.insert(ports.end(), {2379, 2380});
  }
  if (ctx.has("master")) {
    ports.insert(ports.end(), {6443, 10257, 10259});
    if (stacked) {
      ports.insert(ports.end(), {2379, 2380});
    }
  }
  if (ctx.has("master") || ctx.has("worker")) {
    ports.push_back(10250);
  }
  if (ctx.has("lb") && ctx.header.info.site) {
    ports.insert(ports.end(), {ctx.header.info.site->apiserver_port, k_lb_health_port});
  }
  std::ranges::sort(ports);
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

Waited wait_until(const std::function<bool()>& ready, std::chrono::seconds limit, std::string_view what) {
  auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> said;
  // A unit is usually active within a few hundred milliseconds: look again soon, then back
  // off to twice a second for the long waits (etcd's quorum, an apiserver).
  auto pause = std::chrono::milliseconds(25);
  for (;;) {
    if (ready()) {
      return Waited::ready;
    }
    if (interrupt_requested()) {
      return Waited::interrupted;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - start >= limit) {
      return Waited::timed_out;
    }
    if (!said || now - *said >= std::chrono::seconds(30)) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
      spdlog::info("waiting for {} ({} s of at most {} s)", what, waited, limit.count());
      said = now;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

} // namespace kubexm
