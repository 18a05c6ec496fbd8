// OS init: swap off now and in /etc/fstab (masters and workers), SELinux permissive on rpm
// hosts, the role's ports opened in an active firewalld or ufw, then node.yaml's `before`
// actions (kernel modules, sysctl).
#include "bundle/fs.hpp"
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <sys/stat.h>

namespace kubexm {

namespace {

// /etc/fstab with its swap lines commented out, or nothing when it has none.
std::optional<std::string> fstab_without_swap(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  std::string out;
  bool changed = false;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string device, mount, type;
    fields >> device >> mount >> type;
    if (!device.empty() && device.front() != '#' && type == "swap") {
      out += "# disabled by kubexm (Kubernetes runs without swap): " + line + "\n";
      changed = true;
    } else {
      out += line + "\n";
    }
  }
  return changed ? std::optional(out) : std::nullopt;
}

Result<std::string> swap_off(RoleContext& ctx) {
  if (!ctx.has("master") && !ctx.has("worker")) {
    return std::string();
  }
  std::vector<std::string> done;
  if (!active_swaps().empty()) {
    if (auto status = ctx.effects->swap_off(); !status) {
      return std::unexpected(status.error());
    }
    done.emplace_back("swap off");
  }
  auto fstab = read_text_file(ctx.effects->at("/etc/fstab"), 1 << 20);
  if (fstab) {
    if (auto without = fstab_without_swap(*fstab)) {
      struct stat info {};
      unsigned mode = ::stat(ctx.effects->at("/etc/fstab").c_str(), &info) == 0 ? info.st_mode & 07777 : 0644;
      if (auto placed = ctx.effects->place_text("/etc/fstab", *without, mode); !placed) {
        return std::unexpected(placed.error());
      }
      done.emplace_back("swap taken out of /etc/fstab");
    }
  }
  return fmt::format("{}", fmt::join(done, ", "));
}

Result<std::string> selinux_permissive(RoleContext& ctx) {
  auto enforce = read_text_file("/sys/fs/selinux/enforce", 16).value_or("0");
  auto config = read_text_file(ctx.effects->at("/etc/selinux/config"), 1 << 16);
  std::vector<std::string> done;
  if (enforce.starts_with("1")) {
    if (auto status = ctx.effects->run("setenforce 0", {"setenforce", "0"}); !status) {
      return std::unexpected(status.error());
    }
    done.emplace_back("SELinux permissive now");
  }
  if (config && config->find("\nSELINUX=enforcing") != std::string::npos) {
    auto text = *config;
    text.replace(text.find("\nSELINUX=enforcing"), 18, "\nSELINUX=permissive");
    if (auto placed = ctx.effects->place_text("/etc/selinux/config", text, 0644); !placed) {
      return std::unexpected(placed.error());
    }
    done.emplace_back("and at boot");
  }
  return fmt::format("{}", fmt::join(done, " "));
}

// The role's ports in an active firewall; an inactive one is left alone.
Result<std::string> open_ports(RoleContext& ctx) {
  auto ports = role_ports(ctx);
  if (ports.empty()) {
    return std::string();
  }
  std::vector<std::string> specs;
  for (int port : ports) {
    specs.push_back(fmt::format("{}/tcp", port));
  }
  if (unit_active_state("firewalld.service") == "active") {
    if (auto status = ctx.effects->journal().record({{"step", "os-init"}, {"kind", "firewall"}, {"tool", "firewalld"},
                                                      {"ports", specs}, {"vrrp", ctx.has("lb")}});
        !status) {
      return std::unexpected(status.error());
    }
    for (const auto& spec : specs) {
      if (auto status = ctx.effects->run("firewall-cmd", {"firewall-cmd", "--permanent", "--add-port=" + spec}); !status) {
        return std::unexpected(status.error());
      }
    }
    if (ctx.has("lb")) { // keepalived's VRRP is a protocol of its own, not a port
      if (auto status = ctx.effects->run("firewall-cmd", {"firewall-cmd", "--permanent", "--add-protocol=vrrp"}); !status) {
        return std::unexpected(status.error());
      }
    }
    if (auto status = ctx.effects->run("firewall-cmd --reload", {"firewall-cmd", "--reload"}); !status) {
      return std::unexpected(status.error());
    }
    return fmt::format("firewalld: opened {}{}", fmt::join(specs, " "), ctx.has("lb") ? " and VRRP" : "");
  }
  auto ufw = read_text_file(ctx.effects->at("/etc/ufw/ufw.conf"), 1 << 16);
  if (ufw && ufw->find("ENABLED=yes") != std::string::npos) {
    if (auto status = ctx.effects->journal().record(
            {{"step", "os-init"}, {"kind", "firewall"}, {"tool", "ufw"}, {"ports", specs}, {"vrrp", false}});
        !status) {
      return std::unexpected(status.error());
    }
    for (const auto& spec : specs) {
      if (auto status = ctx.effects->run("ufw allow", {"ufw", "allow", spec}); !status) {
        return std::unexpected(status.error());
      }
    }
    return fmt::format("ufw: allowed {}", fmt::join(specs, " "));
  }
  return std::string("no active firewall");
}

} // namespace

std::string plan_os(const RoleContext& ctx) {
  std::vector<std::string> parts;
  if (ctx.has("master") || ctx.has("worker")) {
    parts.emplace_back("swap off");
  }
  if (ctx.packages != nullptr && ctx.packages->format == "rpm") {
    parts.emplace_back("SELinux permissive");
  }
  std::vector<std::string> specs;
  for (int port : role_ports(ctx)) {
    specs.push_back(fmt::format("{}/tcp", port));
  }
  if (!specs.empty()) {
    parts.push_back(fmt::format("open {}{} in an active firewall", fmt::join(specs, " "), ctx.has("lb") ? " and VRRP" : ""));
  }
  if (!ctx.config) {
    parts.emplace_back("node.yaml's `before` actions");
  } else {
    std::vector<std::string> before;
    for (const auto& phase : ctx.config->phases) {
      for (const auto& action : phase.before) {
        before.push_back(action.name);
      }
    }
    if (!before.empty()) {
      parts.push_back(fmt::format("run {}", fmt::join(before, ", ")));
    }
  }
  return parts.empty() ? std::string("nothing for this node") : fmt::format("{}", fmt::join(parts, "; "));
}

Status init_os(RoleContext& ctx) {
  std::vector<std::string> done;
  bool rpm = ctx.packages != nullptr && ctx.packages->format == "rpm";
  for (auto* part : {&swap_off, rpm ? &selinux_permissive : nullptr, &open_ports}) {
    if (part == nullptr) {
      continue;
    }
    auto what = (*part)(ctx);
    if (!what) {
      return std::unexpected(what.error());
    }
    if (!what->empty()) {
      done.push_back(std::move(*what));
    }
  }
  if (!ctx.node_dir().empty()) {
    auto config = ctx.node_config();
    if (!config) {
      return std::unexpected(config.error());
    }
    // In a container (systemd-nspawn, LXC) the kernel's settings are the host's: those it
    // keeps read-only there fail, which is said and not held against the node.
    auto container = read_text_file("/run/systemd/container", 256);
    for (const auto& phase : (*config)->phases) {
      for (const auto& action : phase.before) {
        auto status = ctx.effects->run(action.name, action.run);
        if (!status && !container) {
          return status;
        }
        if (!status) {
          spdlog::warn("{}: {}; in a container ({}), the kernel settings it cannot change are the host's to make",
                       action.name, status.error().message(), container->substr(0, container->find('\n')));
        }
        done.push_back(status ? action.name : action.name + " (partly: a container)");
      }
    }
  }
  ctx.detail = done.empty() ? std::string("nothing to do") : fmt::format("{}", fmt::join(done, "; "));
  return {};
}

} // namespace kubexm
