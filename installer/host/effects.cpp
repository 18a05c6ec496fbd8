#include "installer/host/effects.hpp"

#include "bundle/fs.hpp"
#include "bundle/process.hpp"
#include "bundle/sha256.hpp"
#include "installer/host/system.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <cstring>
#include <functional>
#include <memory>
#include <sys/stat.h>

namespace kubexm {

namespace fs = std::filesystem;

fs::path backup_path(const fs::path& path) {
  return fs::path(k_kubexm_state) / "backup" / path.relative_path();
}

std::string replace_hosts_block(std::string_view text, std::string_view block) {
  std::string out;
  bool inside = false;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    auto line = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    at = end == std::string_view::npos ? text.size() : end + 1;
    if (line == k_hosts_begin) {
      inside = true;
    } else if (inside && line == k_hosts_end) {
      inside = false;
    } else if (!inside) {
      out.append(line).append("\n");
    }
  }
  if (!block.empty()) {
    out.append(k_hosts_begin).append("\n").append(block).append(k_hosts_end).append("\n");
  }
  return out;
}

fs::path HostEffects::at(const fs::path& path) const {
  return m_root / path.relative_path();
}

Status HostEffects::record_dirs(const fs::path& dir) {
  std::vector<fs::path> missing;
  std::error_code ec;
  for (auto p = dir; p.has_relative_path() && !fs::exists(at(p), ec); p = p.parent_path()) {
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (auto status = m_journal.record({{"step", m_step}, {"kind", "dir"}, {"path", it->string()}}); !status) {
      return status;
    }
    if (::mkdir(at(*it).c_str(), 0755) != 0 && errno != EEXIST) {
      return fail("cannot create {}: {}", it->string(), errno_text(errno));
    }
  }
  return {};
}

namespace {

// Whether the files at `a` and `b` hold the same bytes, read a chunk at a time: binaries
// (containerd, kubelet) are tens of MiB and the installer stays small.
bool same_bytes(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  auto size = fs::file_size(a, ec);
  if (ec || size != fs::file_size(b, ec) || ec) {
    return false;
  }
  auto left = open_read(a);
  auto right = open_read(b);
  if (!left || !right) {
    return false;
  }
  constexpr std::size_t chunk = 1 << 20;
  auto ours = std::make_unique_for_overwrite<std::byte[]>(chunk);
  auto theirs = std::make_unique_for_overwrite<std::byte[]>(chunk);
  for (std::uint64_t offset = 0; offset < size; offset += chunk) {
    auto length = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - offset));
    if (!pread_exact(left->get(), std::span(ours.get(), length), offset) ||
        !pread_exact(right->get(), std::span(theirs.get(), length), offset) ||
        std::memcmp(ours.get(), theirs.get(), length) != 0) {
      return false;
    }
  }
  return true;
}

} // namespace

Result<Changed> HostEffects::place(const fs::path& path, unsigned mode, const Content& content) {
  auto target = at(path);
  // What a killed run was writing. The install lock keeps other installers out, and on a
  // booted host a killed run's pid is soon reused, so a pid check alone would keep its files.
  remove_stale_temporaries(target, Writers::all_but_us);
  struct stat info {};
  bool exists = ::lstat(target.c_str(), &info) == 0;
  if (exists && S_ISREG(info.st_mode) && (info.st_mode & 07777) == mode && content.same(target)) {
    return Changed::no;
  }
  if (exists && !S_ISREG(info.st_mode)) {
    return fail("{} is not a regular file (a directory or a link?): kubexm writes nothing through it; move it away",
                path.string());
  }
  if (auto status = record_dirs(path.parent_path()); !status) {
    return std::unexpected(status.error());
  }
  // The file the host had before kubexm first placed this one is kept for reset.
  if (!m_journal.has_change("file", "path", path.string())) {
    nlohmann::json change{{"step", m_step}, {"kind", "file"}, {"path", path.string()}, {"mode", mode}};
    if (exists) {
      auto backup = backup_path(path);
      std::error_code ec;
      fs::create_directories(at(backup).parent_path(), ec);
      fs::copy_file(target, at(backup), fs::copy_options::overwrite_existing, ec);
      if (ec) {
        return fail("cannot keep {} under {}: {}", path.string(), backup.string(), ec.message());
      }
      ::chmod(at(backup).c_str(), info.st_mode & 07777);
      change["backup"] = backup.string();
      change["backup_mode"] = info.st_mode & 07777;
    }
    if (auto status = m_journal.record(change); !status) {
      return std::unexpected(status.error());
    }
  }
  auto file = AtomicFile::create(target, mode); // the exact mode: the umask does not decide
  if (!file) {
    return std::unexpected(file.error());
  }
  if (auto status = content.write(*file); !status) {
    return add_context(status.error(), fmt::format("writing {}", path.string()));
  }
  if (auto status = file->commit(); !status) {
    return std::unexpected(status.error());
  }
  return Changed::yes;
}

Result<Changed> HostEffects::place_file(const fs::path& path, const fs::path& source, unsigned mode) {
  Content content{
      [&](const fs::path& target) { return same_bytes(target, source); },
      [&](AtomicFile& file) -> Status {
        auto in = open_read(source);
        if (!in) {
          return std::unexpected(in.error());
        }
        Status written;
        auto read = read_chunks(in->get(), [&](std::span<const std::byte> bytes) {
          if (written) {
            written = file.write(bytes);
          }
        });
        if (!read) {
          return add_context(read.error(), source.string());
        }
        return written;
      },
  };
  return place(path, mode, content);
}

Result<Changed> HostEffects::place_text(const fs::path& path, std::string_view text, unsigned mode) {
  Content content{
      [&](const fs::path& target) {
        auto current = read_text_file(target, 64 << 20);
        return current && *current == text;
      },
      [&](AtomicFile& file) { return file.write(text); },
  };
  return place(path, mode, content);
}

Result<Changed> HostEffects::hosts_block(const std::vector<HostsEntry>& entries) {
  std::string block;
  for (const auto& entry : entries) {
    block += fmt::format("{}\t{}\n", entry.address, fmt::join(entry.names, " "));
  }
  auto path = at("/etc/hosts");
  remove_stale_temporaries(path, Writers::all_but_us);
  auto text = read_text_file(path, 16 << 20).value_or("");
  auto wanted = replace_hosts_block(text, block);
  if (wanted == text) {
    return Changed::no;
  }
  if (!m_journal.has_change("hosts", "path", "/etc/hosts")) {
    std::error_code ec;
    bool existed = fs::exists(path, ec);
    if (auto status = m_journal.record({{"step", m_step}, {"kind", "hosts"}, {"path", "/etc/hosts"}, {"existed", existed}});
        !status) {
      return std::unexpected(status.error());
    }
  }
  struct stat info {};
  unsigned mode = ::stat(path.c_str(), &info) == 0 ? (info.st_mode & 07777) : 0644;
  if (auto status = write_file_atomic(path, wanted, mode); !status) {
    return std::unexpected(status.error());
  }
  return Changed::yes;
}

Result<Changed> HostEffects::host_name(const std::string& name) {
  auto before = kubexm::host_name();
  auto file = at("/etc/hostname");
  auto written = read_text_file(file, 4096).value_or("");
  if (before == name && written == name + "\n") {
    return Changed::no;
  }
  if (!m_journal.has_change("hostname", "kind", "hostname")) {
    auto change = nlohmann::json{{"step", m_step}, {"kind", "hostname"}, {"before", before}};
    if (auto status = m_journal.record(change); !status) {
      return std::unexpected(status.error());
    }
  }
  struct stat info {}; // the host's own mode is kept, as for /etc/hosts
  unsigned mode = ::stat(file.c_str(), &info) == 0 ? (info.st_mode & 07777) : 0644;
  if (auto placed = place_text("/etc/hostname", name + "\n", mode); !placed) {
    return std::unexpected(placed.error());
  }
  if (auto status = set_host_name(name); !status) {
    return std::unexpected(status.error());
  }
  return Changed::yes;
}

Status HostEffects::run(std::string_view what, const std::vector<std::string>& args) {
  spdlog::debug("running {}", command_line(args));
  auto result = run_process(args, ChildOutput::to_stderr);
  if (!result) {
    return add_context(result.error(), std::string(what));
  }
  if (result->exit_code != 0) {
    return fail("{} ({}) exited with {}", what, command_line(args), result->exit_code);
  }
  return {};
}

Status HostEffects::daemon_reload() {
  return run("systemctl daemon-reload", {"systemctl", "daemon-reload"});
}

Status HostEffects::record_service(const std::string& unit) {
  if (m_journal.has_change("service", "unit", unit)) {
    return {};
  }
  return m_journal.record({{"step", m_step},
                           {"kind", "service"},
                           {"unit", unit},
                           {"was_enabled", unit_enabled(unit)},
                           {"was_active", unit_active_state(unit) == "active"}});
}

Result<Changed> HostEffects::enable(const std::string& unit) {
  if (unit_enabled(unit)) {
    return Changed::no;
  }
  if (auto status = record_service(unit); !status) {
    return std::unexpected(status.error());
  }
  if (auto status = run("systemctl enable " + unit, {"systemctl", "enable", "--quiet", unit}); !status) {
    return std::unexpected(status.error());
  }
  return Changed::yes;
}

Status HostEffects::start(const std::string& unit) {
  if (auto status = record_service(unit); !status) {
    return status;
  }
  return run("systemctl start " + unit, {"systemctl", "start", "--no-block", unit});
}

Status HostEffects::restart(const std::string& unit) {
  if (auto status = record_service(unit); !status) {
    return status;
  }
  return run("systemctl restart " + unit, {"systemctl", "restart", "--no-block", unit});
}

Result<Changed> HostEffects::disable(const std::string& unit) {
  if (!unit_known(unit) || (!unit_enabled(unit) && unit_active_state(unit) != "active")) {
    return Changed::no;
  }
  if (auto status = record_service(unit); !status) {
    return std::unexpected(status.error());
  }
  if (auto status = run("systemctl disable --now " + unit, {"systemctl", "disable", "--now", "--quiet", unit});
      !status) {
    return std::unexpected(status.error());
  }
  return Changed::yes;
}

Status HostEffects::swap_off() {
  if (auto status = m_journal.record({{"step", m_step}, {"kind", "swap"}}); !status) {
    return status;
  }
  return run("swapoff -a", {"swapoff", "-a"});
}

Status HostEffects::record_packages(const std::vector<std::string>& names, std::string_view format) {
  if (names.empty()) {
    return {};
  }
  return m_journal.record({{"step", m_step}, {"kind", "packages"}, {"names", names}, {"format", format}});
}

Status HostEffects::record_action(const std::string& name) {
  return m_journal.record({{"step", m_step}, {"kind", "action"}, {"name", name}});
}

bool HostEffects::action_done(const std::string& name) const {
  return m_journal.has_change("action", "name", name);
}

} // namespace kubexm
