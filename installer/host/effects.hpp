#pragma once

#include "bundle/error.hpp"
#include "bundle/fs.hpp"
#include "installer/role/journal.hpp"
#include "installer/role/node.hpp"

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// Whether an effect changed the host.
enum class Changed { no, yes };

// The one layer through which the role engine changes the host: files, /etc/hosts, the
// host name, commands, systemd units, swap. Each change is recorded in the journal before
// it is made (so a run killed right after still knows what `reset` must take back), and
// each is idempotent: asked again for what is already so, it changes nothing.
class HostEffects {
public:
  HostEffects(Journal& journal, std::filesystem::path root) : m_journal(journal), m_root(std::move(root)) {}

  // The step the following changes belong to.
  void set_step(std::string step) { m_step = std::move(step); }
  Journal& journal() { return m_journal; }
  // `path` (absolute, as the host sees it) in our filesystem.
  std::filesystem::path at(const std::filesystem::path& path) const;

  // Places the file `source` (or `text`) at `path` with `mode`: written beside it, fsynced,
  // renamed. A different file there before is kept once under /var/lib/kubexm/backup/ for
  // reset; the same bytes and mode change nothing. Missing directories are created (and
  // recorded).
  Result<Changed> place_file(const std::filesystem::path& path, const std::filesystem::path& source, unsigned mode);
  Result<Changed> place_text(const std::filesystem::path& path, std::string_view text, unsigned mode);

  // The kubexm block of /etc/hosts (between its markers), the rest of the file untouched.
  Result<Changed> hosts_block(const std::vector<HostsEntry>& entries);
  Result<Changed> host_name(const std::string& name);

  // Runs a command; its output goes to our stderr and the log. A non-zero exit is an error
  // naming `what`.
  Status run(std::string_view what, const std::vector<std::string>& args);

  // systemd. enable() and start() record the unit's state before the first change.
  Status daemon_reload();
  Result<Changed> enable(const std::string& unit);
  Status start(const std::string& unit);   // without waiting: the caller waits, bounded
  Status restart(const std::string& unit); // the same, for a unit running on files just changed
  // Stops and disables a unit that must not run on this node (another role's proxy an OS
  // package enabled); nothing when it is not there.
  Result<Changed> disable(const std::string& unit);
  Status swap_off();

  // What a step did that only it can say.
  Status record_packages(const std::vector<std::string>& names, std::string_view format);
  Status record_action(const std::string& name);
  bool action_done(const std::string& name) const;

private:
  Status record_dirs(const std::filesystem::path& dir);
  Status record_service(const std::string& unit);
  // What place() writes: whether the file at a path already holds it, and how to write it.
  struct Content {
    std::function<bool(const std::filesystem::path&)> same;
    std::function<Status(AtomicFile&)> write;
  };
  Result<Changed> place(const std::filesystem::path& path, unsigned mode, const Content& content);

  Journal& m_journal;
  std::filesystem::path m_root;
  std::string m_step;
};

// Where reset finds a file the installer replaced.
std::filesystem::path backup_path(const std::filesystem::path& path);

// The lines kubexm puts in /etc/hosts, with their markers.
inline constexpr std::string_view k_hosts_begin = "# BEGIN kubexm: managed by the kubexm installer";
inline constexpr std::string_view k_hosts_end = "# END kubexm";

// `text` (an /etc/hosts) with the kubexm block replaced by `block` (empty: removed).
std::string replace_hosts_block(std::string_view text, std::string_view block);

} // namespace kubexm
