// `install status` and `install reset`: both read the journal the role engine wrote; reset
// takes back its changes, newest first, and nothing it did not make.
#include "bundle/fs.hpp"
#include "bundle/log.hpp"
#include "bundle/process.hpp"
#include "installer/host/effects.hpp"
#include "installer/host/system.hpp"
#include "installer/role/engine.hpp"
#include "installer/role/journal.hpp"
#include "installer/role/step.hpp"

#include <fmt/ranges.h>
#include <map>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> journal_units(const Journal& journal) {
  std::vector<std::string> units;
  for (const auto& change : journal.json()["changes"]) {
    if (change.value("kind", "") == "service") {
      units.push_back(change.value("unit", ""));
    }
  }
  return units;
}

} // namespace

Result<std::string> role_status(bool json) {
  auto journal = Journal::open("/");
  if (!journal) {
    return std::unexpected(journal.error());
  }
  if (journal->empty()) {
    return json ? std::string("{\"installed\": false}\n")
                : std::string("no kubexm install on this host (no journal at /var/lib/kubexm/journal.json)\n");
  }
  const auto& j = journal->json();
  nlohmann::json steps = nlohmann::json::array();
  std::string text = fmt::format("node {} ({}) of site {}\nbundle {} {} (digest {})\njournal {}, updated {}\n",
                                 journal->node(), fmt::join(j.value("roles", std::vector<std::string>{}), ", "),
                                 j.value("cluster", ""), j["bundle"].value("name", ""), j["bundle"].value("version", ""),
                                 j["bundle"].value("digest", ""), journal->path().string(), j.value("updated", ""));
  text += "steps:\n";
  for (const auto& step : role_steps()) {
    auto record = journal->step(step.name);
    auto state = record ? record->state : std::string(step.always ? "checked each run" : "not run");
    steps.push_back({{"step", step.name},
                     {"state", state},
                     {"finished", record ? record->finished : ""},
                     {"seconds", record ? record->seconds : 0.0}});
    text += fmt::format("  {:<10} {:<16} {}\n", step.name, state,
                        record && !record->finished.empty() ? fmt::format("{} ({:.1f} s)", record->finished, record->seconds)
                                                            : std::string());
  }
  nlohmann::json services = nlohmann::json::object();
  text += "services:\n";
  for (const auto& unit : journal_units(*journal)) {
    auto state = unit_active_state(unit);
    bool enabled = unit_enabled(unit);
    services[unit] = {{"active", state}, {"enabled", enabled}};
    text += fmt::format("  {:<28} {}{}\n", unit, state, enabled ? ", enabled" : "");
  }
  if (json) {
    return nlohmann::json{{"installed", true},
                          {"node", journal->node()},
                          {"roles", j.value("roles", nlohmann::json::array())},
                          {"cluster", j.value("cluster", "")},
                          {"bundle", j["bundle"]},
                          {"steps", steps},
                          {"services", services}}
               .dump(2) +
           "\n";
  }
  return text;
}

namespace {

// Where each service kubexm installs keeps its data: what --purge-data removes.
const std::map<std::string, std::vector<std::string>> k_data_dirs = {
    {"etcd.service", {"/var/lib/etcd"}},
    {"containerd.service", {"/var/lib/containerd"}},
    {"docker.service", {"/var/lib/docker"}},
    {"crio.service", {"/var/lib/containers"}},
    {"kubelet.service", {"/var/lib/kubelet"}},
    {"kube-proxy.service", {"/var/lib/kube-proxy"}},
};

struct Undone {
  std::size_t services = 0;
  std::size_t files_removed = 0;
  std::size_t files_restored = 0;
  std::size_t dirs = 0;
  std::vector<std::string> packages;
  std::vector<std::string> data;
  std::vector<std::string> kept;    // what was left on purpose
  std::vector<std::string> started; // services that ran before the install, started again
};

Status undo_service(const nlohmann::json& change, Undone& undone) {
  auto unit = change.value("unit", "");
  (void)run_captured({"systemctl", "stop", unit});
  if (!change.value("was_enabled", false)) {
    (void)run_captured({"systemctl", "disable", "--quiet", unit});
  }
  if (change.value("was_active", false)) {
    undone.started.push_back(unit);
  }
  ++undone.services;
  return {};
}

Status undo_file(const nlohmann::json& change, Undone& undone) {
  fs::path path = change.value("path", "");
  std::error_code ec;
  if (change.contains("backup")) {
    fs::path backup = change.value("backup", "");
    auto bytes = read_text_file(backup, 1u << 31);
    if (!bytes) {
      return add_context(bytes.error(), fmt::format("restoring {}", path.string()));
    }
    if (auto status = write_file_atomic(path, *bytes, change.value("backup_mode", 0644u)); !status) {
      return status;
    }
    ::chmod(path.c_str(), change.value("backup_mode", 0644u));
    ++undone.files_restored;
    return {};
  }
  fs::remove(path, ec);
  if (ec) {
    return fail("cannot remove {}: {}", path.string(), ec.message());
  }
  ++undone.files_removed;
  return {};
}

Status undo_dir(const nlohmann::json& change, Undone& undone) {
  fs::path path = change.value("path", "");
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(path, ec)) && fs::is_empty(path, ec)) {
    fs::remove(path, ec);
    ++undone.dirs;
  } else if (fs::exists(path, ec)) {
    undone.kept.push_back(fmt::format("{} (not empty: it holds what kubexm did not put there)", path.string()));
  }
  return {};
}

Status undo_firewall(const nlohmann::json& change) {
  auto tool = change.value("tool", "");
  for (const auto& spec : change.value("ports", std::vector<std::string>{})) {
    if (tool == "firewalld") {
      (void)run_captured({"firewall-cmd", "--permanent", "--remove-port=" + spec});
    } else if (tool == "ufw") {
      (void)run_captured({"ufw", "delete", "allow", spec});
    }
  }
  if (tool == "firewalld") {
    if (change.value("vrrp", false)) {
      (void)run_captured({"firewall-cmd", "--permanent", "--remove-protocol=vrrp"});
    }
    (void)run_captured({"firewall-cmd", "--reload"});
  }
  return {};
}

Status undo_packages(const nlohmann::json& change, const ResetRequest& request, Undone& undone) {
  auto names = change.value("names", std::vector<std::string>{});
  if (!request.purge_packages) {
    undone.kept.push_back(fmt::format("{} OS packages (--purge-packages removes them)", names.size()));
    return {};
  }
  std::vector<std::string> args = change.value("format", "") == "rpm"
                                      ? std::vector<std::string>{"rpm", "-e", "--nodeps"}
                                      : std::vector<std::string>{"apt-get", "-q", "-y", "purge"};
  args.insert(args.end(), names.begin(), names.end());
  auto env = std::vector<std::string>{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"};
  auto result = run_process(args, ChildOutput::to_stderr, env);
  if (!result || result->exit_code != 0) {
    return fail("removing the {} OS packages kubexm installed ({}) failed", names.size(), command_line(args));
  }
  undone.packages.insert(undone.packages.end(), names.begin(), names.end());
  return {};
}

Status undo_change(const nlohmann::json& change, const ResetRequest& request, Undone& undone) {
  auto kind = change.value("kind", "");
  if (kind == "file") {
    return undo_file(change, undone);
  }
  if (kind == "dir") {
    return undo_dir(change, undone);
  }
  if (kind == "hosts") {
    auto text = replace_hosts_block(read_text_file("/etc/hosts", 16 << 20).value_or(""), "");
    if (text.empty() && !change.value("existed", true)) {
      std::error_code ec;
      fs::remove("/etc/hosts", ec); // it was made for the block alone
      return {};
    }
    return write_file_atomic("/etc/hosts", text, 0644);
  }
  if (kind == "hostname") {
    return set_host_name(change.value("before", ""));
  }
  if (kind == "swap") {
    (void)run_captured({"swapon", "-a"});
    return {};
  }
  if (kind == "firewall") {
    return undo_firewall(change);
  }
  if (kind == "packages") {
    return undo_packages(change, request, undone);
  }
  return {}; // service (taken back first), action: nothing left on the host
}

void purge_data(const Journal& journal, const ResetRequest& request, Undone& undone) {
  for (const auto& unit : journal_units(journal)) {
    auto found = k_data_dirs.find(unit);
    if (found == k_data_dirs.end()) {
      continue;
    }
    for (const auto& dir : found->second) {
      std::error_code ec;
      if (!fs::exists(dir, ec)) {
        continue;
      }
      if (request.purge_data) {
        fs::remove_all(dir, ec);
        undone.data.push_back(dir);
      } else {
        undone.kept.push_back(fmt::format("{} ({}'s data; --purge-data removes it)", dir, unit));
      }
    }
  }
}

} // namespace

Result<std::string> reset_role(const ResetRequest& request) {
  auto journal = Journal::open("/");
  if (!journal) {
    return std::unexpected(journal.error());
  }
  if (journal->empty()) {
    return std::string("nothing to reset: no kubexm install on this host (no journal at "
                       "/var/lib/kubexm/journal.json); nothing changed\n");
  }
  auto lock = InstallLock::acquire("/");
  if (!lock) {
    return std::unexpected(lock.error());
  }
  auto node = journal->node();
  Undone undone;
  auto changes = journal->changes_newest_first();
  // Services first, so that nothing runs on files about to go.
  for (const auto& change : changes) {
    if (change.value("kind", "") == "service") {
      spdlog::info("reset: stopping {}", change.value("unit", ""));
      (void)undo_service(change, undone);
    }
  }
  purge_data(*journal, request, undone);
  for (const auto& change : changes) {
    if (auto status = undo_change(change, request, undone); !status) {
      return add_context(status.error(), "reset (run it again to go on; the journal keeps what is left)");
    }
    if (auto status = journal->forget(change); !status) {
      return std::unexpected(status.error());
    }
  }
  (void)run_captured({"systemctl", "daemon-reload"});
  for (const auto& unit : undone.started) {
    (void)run_captured({"systemctl", "start", unit});
  }
  // The installer's own state goes last: the journal until everything else is undone.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(k_kubexm_state, ec)) {
    if (entry.path().filename() != "install.lock") {
      fs::remove_all(entry.path(), ec);
    }
  }
  fs::remove_all(k_kubexm_state, ec);
  auto summary =
      fmt::format("reset node {}: {} services stopped, {} files removed, {} restored, {} directories removed{}{}", node,
                  undone.services, undone.files_removed, undone.files_restored, undone.dirs,
                  undone.packages.empty() ? std::string() : fmt::format(", {} OS packages purged", undone.packages.size()),
                  undone.data.empty() ? std::string() : fmt::format(", data removed: {}", fmt::join(undone.data, " ")));
  if (request.json) {
    return nlohmann::json{{"node", node},
                          {"services", undone.services},
                          {"files_removed", undone.files_removed},
                          {"files_restored", undone.files_restored},
                          {"directories_removed", undone.dirs},
                          {"packages_purged", undone.packages},
                          {"data_removed", undone.data},
                          {"kept", undone.kept}}
               .dump(2) +
           "\n";
  }
  std::string out = summary + "\n";
  for (const auto& kept : undone.kept) {
    out += fmt::format("  kept: {}\n", kept);
  }
  return out;
}

} // namespace kubexm
