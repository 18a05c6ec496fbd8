// Preflight: everything that would stop the install, found before anything changes and
// reported in one go, each check by a name --ignore-preflight takes.
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

enum class Level { ok, warning, error };

struct Check {
  std::string name;
  Level level;
  std::string message;
};

using Checks = std::vector<Check>;

void check_os(const RoleContext& ctx, Checks& out) {
  const auto& info = ctx.header.info;
  if (std::ranges::find(info.arches, ctx.host.arch) == info.arches.end()) {
    out.push_back({"os", Level::error,
                   fmt::format("this host is {}; the bundle is for {} only", ctx.host.describe(),
                               fmt::join(info.arches, ", "))});
    return;
  }
  if (!info.packages.empty() && ctx.packages == nullptr) {
    out.push_back({"os", Level::error,
                   fmt::format("this host is {}; the bundle carries OS packages for {} only: build it with this "
                               "host's os-profile too",
                               ctx.host.describe(), fmt::join(info.os_profiles, ", "))});
    return;
  }
  if (ctx.node && ctx.node->arch != ctx.host.arch) {
    out.push_back({"os", Level::error,
                   fmt::format("node {} is {} in the site, this host is {}", ctx.node->name, ctx.node->arch,
                               ctx.host.arch)});
    return;
  }
  if (ctx.node && !ctx.node->os.empty() && ctx.packages != nullptr && ctx.node->os != ctx.packages->profile) {
    out.push_back({"os", Level::error,
                   fmt::format("node {} is {} in the site, this host is {} ({})", ctx.node->name, ctx.node->os,
                               ctx.packages->profile, ctx.host.describe())});
    return;
  }
  out.push_back({"os", Level::ok, ctx.host.describe()});
}

// The node's files may only go where a node's configuration belongs, and never through a
// link on the host (which could send them anywhere).
void check_node_files(RoleContext& ctx, Checks& out) {
  if (ctx.node_dir().empty()) {
    return;
  }
  std::vector<std::string> refused;
  auto prefix = ctx.node_dir();
  for (const auto* entry : members_under(ctx, prefix)) {
    auto path = entry->path.substr(prefix.size());
    if (path == "node.yaml") {
      continue;
    }
    if (!allowed_node_path(path)) {
      refused.push_back(fmt::format("/{} (not a place for a node's configuration)", path));
      continue;
    }
    fs::path at = "/";
    for (const auto& part : fs::path(path).parent_path()) {
      at /= part;
      struct stat info {};
      if (::lstat(ctx.effects->at(at).c_str(), &info) != 0) {
        break;
      }
      if (S_ISLNK(info.st_mode) || !S_ISDIR(info.st_mode)) {
        refused.push_back(fmt::format("/{} (the host's {} is a link or not a directory)", path, at.string()));
        break;
      }
    }
  }
  if (refused.empty()) {
    out.push_back({"node-files", Level::ok, fmt::format("{} files, all in their places", members_under(ctx, prefix).size())});
  } else {
    out.push_back({"node-files", Level::error,
                   fmt::format("the bundle's files for {} include what a node may not have: {}", ctx.who(),
                               fmt::join(refused, ", "))});
  }
}

void check_kernel(Checks& out) {
  auto [major, minor] = kernel_version();
  auto release = kernel_release();
  if (major < 3 || (major == 3 && minor < 10)) {
    out.push_back({"kernel", Level::error, fmt::format("kernel {} is older than 3.10, the oldest Kubernetes runs on", release)});
  } else {
    out.push_back({"kernel", Level::ok, fmt::format("kernel {}, cgroup v{}", release, cgroup_version())});
  }
}

void check_modules(const RoleContext& ctx, Checks& out) {
  if (!ctx.has("master") && !ctx.has("worker")) {
    return;
  }
  std::vector<std::string> missing;
  for (const char* module : {"overlay", "br_netfilter"}) {
    if (!module_loaded(module) && !module_available(module)) {
      missing.emplace_back(module);
    }
  }
  if (missing.empty()) {
    out.push_back({"modules", Level::ok, "overlay and br_netfilter are loaded or loadable"});
  } else {
    out.push_back({"modules", Level::error,
                   fmt::format("kernel module{} {} neither loaded, nor built in, nor found under /lib/modules/{}",
                               missing.size() > 1 ? "s" : "", fmt::join(missing, ", "), kernel_release())});
  }
}

void check_swap(const RoleContext& ctx, Checks& out) {
  auto swaps = active_swaps();
  if (swaps.empty() || (!ctx.has("master") && !ctx.has("worker"))) {
    out.push_back({"swap", Level::ok, swaps.empty() ? "no swap" : "swap is on; this role does not mind"});
    return;
  }
  out.push_back({"swap", Level::warning,
                 fmt::format("swap is on ({}); the os-init step turns it off, now and in /etc/fstab",
                             fmt::join(swaps, ", "))});
}

void check_ports(const RoleContext& ctx, Checks& out) {
  auto wanted = role_ports(ctx);
  if (wanted.empty()) {
    return;
  }
  // A rerun finds its own services on them.
  if (auto services = ctx.effects->journal().step("services"); services) {
    out.push_back({"ports", Level::ok, fmt::format("{} are this node's own services'", fmt::join(wanted, ", "))});
    return;
  }
  auto listening = listening_tcp_ports();
  std::vector<int> busy;
  for (int port : wanted) {
    if (listening.contains(port)) {
      busy.push_back(port);
    }
  }
  if (busy.empty()) {
    out.push_back({"ports", Level::ok, fmt::format("{} are free", fmt::join(wanted, ", "))});
  } else {
    out.push_back({"ports", Level::error,
                   fmt::format("port{} {} already in use on this host: the {} role needs {}; stop what listens there",
                               busy.size() > 1 ? "s" : "", fmt::join(busy, ", "), fmt::join(ctx.roles, " and "),
                               fmt::join(wanted, ", "))});
  }
}

void check_disk(const RoleContext& ctx, Checks& out) {
  std::uint64_t binaries = 0;
  for (const auto& file : node_binaries(ctx)) {
    auto found = std::ranges::find(ctx.header.index, file.member, &IndexEntry::path);
    binaries += found != ctx.header.index.end() ? found->size : 0;
  }
  std::uint64_t state = 0;
  std::uint64_t images = 0;
  for (const auto& entry : ctx.header.index) {
    if (std::ranges::any_of(extract_dirs(ctx), [&](const std::string& d) { return entry.path.starts_with(d + "/"); })) {
      state += entry.size;
    }
    if (entry.path.starts_with("images/") && (ctx.has("master") || ctx.has("worker"))) {
      images += entry.size;
    }
  }
  std::vector<std::string> short_of;
  auto need = [&](const char* where, std::uint64_t bytes) {
    bytes += bytes / 10; // room for metadata and temporary copies
    if (auto free = free_bytes(where); free < bytes) {
      short_of.push_back(fmt::format("{} has {} free, needs {}", where, human_bytes(free), human_bytes(bytes)));
    }
  };
  need("/usr/local/bin", binaries);
  need("/var/lib", state + images);
  if (short_of.empty()) {
    out.push_back({"disk", Level::ok,
                   fmt::format("room for {} of binaries, {} of the bundle and {} of images", human_bytes(binaries),
                               human_bytes(state), human_bytes(images))});
  } else {
    out.push_back({"disk", Level::error, fmt::format("{}", fmt::join(short_of, "; "))});
  }
}

void check_size(const RoleContext& ctx, Checks& out) {
  auto cpus = cpu_count();
  auto memory = memory_mib();
  bool master = ctx.has("master");
  // kubeadm's own minimums for a control plane: 2 CPUs, 1700 MiB.
  auto level = master ? Level::error : Level::warning;
  out.push_back(cpus >= 2 || !(master || ctx.has("worker"))
                    ? Check{"cpus", Level::ok, fmt::format("{} CPUs", cpus)}
                    : Check{"cpus", level, fmt::format("{} CPU: a control plane needs at least 2", cpus)});
  out.push_back(memory >= 1700 || !(master || ctx.has("worker"))
                    ? Check{"memory", Level::ok, fmt::format("{} MiB of memory", memory)}
                    : Check{"memory", level, fmt::format("{} MiB of memory: a control plane needs at least 1700", memory)});
}

void check_time(Checks& out) {
  out.push_back(time_synchronised()
                    ? Check{"time-sync", Level::ok, "the clock is kept in sync"}
                    : Check{"time-sync", Level::warning,
                            "no time synchronisation is active (chrony, ntpd, systemd-timesyncd): certificates and "
                            "etcd need the hosts' clocks to agree"});
}

void check_runtime(const RoleContext& ctx, Checks& out) {
  if (!ctx.has("master") && !ctx.has("worker")) {
    return;
  }
  std::vector<std::string> others;
  for (const auto& [runtime, unit] : std::vector<std::pair<std::string, std::string>>{
           {"containerd", "containerd.service"}, {"docker", "docker.service"}, {"cri-o", "crio.service"}}) {
    bool ours = ctx.effects->journal().has_change("service", "unit", unit);
    if (runtime != ctx.runtime && !ours && unit_active_state(unit) == "active" &&
        !(ctx.runtime == "docker" && runtime == "containerd")) {
      others.push_back(unit);
    }
  }
  out.push_back(others.empty() ? Check{"runtime", Level::ok, fmt::format("no runtime but {} runs here", ctx.runtime)}
                               : Check{"runtime", Level::error,
                                       fmt::format("{} runs on this host; the node's runtime is {}: stop and "
                                                   "disable it first",
                                                   fmt::join(others, ", "), ctx.runtime)});
}

// Every program the node's roles run must be in the bundle for this arch: a node without its
// kube-apiserver would fail half-way, after its packages and files are in place.
void check_binaries(const RoleContext& ctx, Checks& out) {
  if (std::ranges::find(ctx.header.info.arches, ctx.host.arch) == ctx.header.info.arches.end()) {
    return; // the os check says so
  }
  auto missing = missing_components(ctx);
  out.push_back(missing.empty()
                    ? Check{"binaries", Level::ok, fmt::format("the bundle carries every program of the node for {}",
                                                               ctx.host.arch)}
                    : Check{"binaries", Level::error,
                            fmt::format("the bundle carries no {} for {}, which the node's roles run: build the bundle "
                                        "with {} among its components",
                                        fmt::join(missing, ", "), ctx.host.arch, missing.size() == 1 ? "it" : "them")});
}

void check_address(const RoleContext& ctx, Checks& out) {
  if (!ctx.node) {
    return;
  }
  auto addresses = local_ipv4_addresses();
  if (std::ranges::find(addresses, ctx.node->address) != addresses.end()) {
    out.push_back({"address", Level::ok, fmt::format("{} is on this host", ctx.node->address)});
  } else {
    out.push_back({"address", Level::error,
                   fmt::format("node {}'s address {} is on none of this host's interfaces ({})", ctx.node->name,
                               ctx.node->address, fmt::join(addresses, ", "))});
  }
}

const char* label(Level level, bool ignored) {
  return ignored ? "ignored" : level == Level::ok ? "ok" : level == Level::warning ? "warning" : "FAILED";
}

} // namespace

std::vector<std::string> extract_dirs(const RoleContext& ctx) {
  std::vector<std::string> dirs{"bin/" + ctx.host.arch};
  if (ctx.packages != nullptr) {
    dirs.push_back(fmt::format("{}/{}", ctx.packages->path, ctx.host.arch));
  }
  if (auto dir = ctx.node_dir(); !dir.empty()) {
    dirs.push_back(dir.substr(0, dir.size() - 1));
  }
  return dirs;
}

Status preflight(RoleContext& ctx) {
  Checks checks;
  check_os(ctx, checks);
  check_node_files(ctx, checks);
  check_kernel(checks);
  check_modules(ctx, checks);
  check_swap(ctx, checks);
  check_ports(ctx, checks);
  check_disk(ctx, checks);
  check_size(ctx, checks);
  check_time(checks);
  check_runtime(ctx, checks);
  check_binaries(ctx, checks);
  check_address(ctx, checks);
  std::vector<std::string> failed;
  std::vector<std::string> warned;
  for (const auto& check : checks) {
    bool ignored = check.level == Level::error && ctx.request.ignore_preflight.contains(check.name);
    auto line = fmt::format("preflight {:<11} {:<7} {}", check.name, label(check.level, ignored), check.message);
    if (check.level == Level::error && !ignored) {
      failed.push_back(fmt::format("  {}: {}", check.name, check.message));
    } else if (check.level != Level::ok) {
      warned.push_back(check.name);
      spdlog::warn("{}", line);
      continue;
    }
    spdlog::info("{}", line);
  }
  if (!failed.empty()) {
    return std::unexpected(Error(
        ErrorKind::preflight,
        fmt::format("preflight found {} problem{} on this host; nothing was changed:\n{}\nmend them and run again, or "
                    "go on regardless with --ignore-preflight {}",
                    failed.size(), failed.size() > 1 ? "s" : "", fmt::join(failed, "\n"),
                    fmt::join(failed | std::views::transform([](const std::string& f) {
                                return f.substr(2, f.find(':') - 2);
                              }),
                              ","))));
  }
  ctx.detail = fmt::format("{} checks passed{}", checks.size() - warned.size(),
                           warned.empty() ? std::string()
                                          : fmt::format(", {} warning{} ({})", warned.size(),
                                                        warned.size() > 1 ? "s" : "", fmt::join(warned, ", ")));
  return {};
}

} // namespace kubexm
