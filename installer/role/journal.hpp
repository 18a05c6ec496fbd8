#pragma once

#include "bundle/error.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kubexm {

// Where the installer keeps what it knows of the host it installed.
inline constexpr std::string_view k_kubexm_state = "/var/lib/kubexm";

// /var/lib/kubexm/journal.json: what the role install did on this host, so that a rerun
// skips what is done, a killed run is finished by the next, `status` can tell, and
// `reset` can take it back. Written atomically after every change.
//
//   {"format": "kubexm-journal", "version": 1,
//    "node": "etcd1", "roles": ["etcd"], "cluster": "site-a",
//    "bundle": {"name", "version", "digest"},
//    "steps": {"<step>": {"state": "started"|"done", "inputs": "<hex>", "started": "<UTC>",
//                         "finished": "<UTC>", "seconds": 1.2}},
//    "changes": [{"step", "kind", ...}, ...]}       (in the order made; see Change)
//
// A change is one effect on the host the installer can take back:
//   file     {path, mode, backup?}  a file placed; backup: where the file it replaced is kept
//   dir      {path}                 a directory it created
//   service  {unit, was_enabled, was_active}
//   packages {names, format}        OS packages it installed
//   hosts    {}                     its block in /etc/hosts
//   hostname {before}
//   swap     {}                     swap it turned off
//   action   {name}                 a node.yaml action that completed (never run twice)
struct StepRecord {
  std::string state; // started, done
  std::string inputs;
  std::string started;
  std::string finished;
  double seconds = 0;
};

class Journal {
public:
  // Reads the journal of `root` (a missing one is an empty journal); a journal of an unknown
  // format or a newer version is an error saying so.
  static Result<Journal> open(const std::filesystem::path& root);

  bool empty() const { return m_json["steps"].empty() && m_json["changes"].empty(); }
  const nlohmann::json& json() const { return m_json; }
  std::filesystem::path path() const;

  // Who the journal is about; a journal of another node is refused by the engine.
  std::string node() const { return m_json.value("node", ""); }
  void set_identity(const std::string& node, const std::vector<std::string>& roles, const std::string& cluster,
                    const nlohmann::json& bundle);

  std::optional<StepRecord> step(std::string_view name) const;
  Status step_started(std::string_view name, std::string_view inputs);
  Status step_done(std::string_view name, double seconds);

  // Records a change and writes the journal, before the caller makes it (write-ahead: a
  // run killed right after still knows what to undo).
  Status record(nlohmann::json change);
  // The changes, newest first, as reset takes them back.
  std::vector<nlohmann::json> changes_newest_first() const;
  // Whether a change of `kind` with field `key` == `value` is recorded already.
  bool has_change(std::string_view kind, std::string_view key, std::string_view value) const;
  // Drops a change once reset has taken it back.
  Status forget(const nlohmann::json& change);
  Status remove();

private:
  explicit Journal(std::filesystem::path root) : m_root(std::move(root)) {}
  Status write();

  std::filesystem::path m_root;
  nlohmann::json m_json;
};

// An exclusive lock on /var/lib/kubexm/install.lock for the run's lifetime: one install at a
// time. A held lock is an error naming the pid holding it.
class InstallLock {
public:
  static Result<InstallLock> acquire(const std::filesystem::path& root);
  InstallLock(InstallLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
  InstallLock& operator=(InstallLock&&) = delete;
  InstallLock(const InstallLock&) = delete;
  ~InstallLock();

private:
  explicit InstallLock(int fd) : m_fd(fd) {}
  int m_fd = -1;
};

// "2026-12-04T18:03:11Z"
std::string utc_now();

} // namespace kubexm
