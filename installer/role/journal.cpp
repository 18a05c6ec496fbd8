#include "installer/role/journal.hpp"

#include "bundle/fs.hpp"

#include <algorithm>
#include <chrono>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_format = "kubexm-journal";
constexpr int k_version = 1;

fs::path state_dir(const fs::path& root) {
  return root / std::string(k_kubexm_state).substr(1);
}

nlohmann::json empty_journal() {
  return {{"format", k_format}, {"version", k_version}, {"steps", nlohmann::json::object()},
          {"changes", nlohmann::json::array()}};
}

} // namespace

std::string utc_now() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

Result<Journal> Journal::open(const fs::path& root) {
  Journal journal(root);
  auto path = journal.path();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    journal.m_json = empty_journal();
    return journal;
  }
  auto text = read_text_file(path, 64 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || json.value("format", "") != k_format || !json["steps"].is_object() ||
      !json["changes"].is_array()) {
    return fail("{}: not a kubexm journal (corrupt); move it away to start afresh, but then `reset` cannot take "
                "back what it recorded",
                path.string());
  }
  if (json.value("version", 0) > k_version) {
    return fail("{}: journal version {} is newer than this installer reads ({}): use the installer that wrote it",
                path.string(), json.value("version", 0), k_version);
  }
  journal.m_json = std::move(json);
  return journal;
}

fs::path Journal::path() const {
  return state_dir(m_root) / "journal.json";
}

void Journal::set_identity(const std::string& node, const std::vector<std::string>& roles, const std::string& cluster,
                           const nlohmann::json& bundle) {
  m_json["node"] = node;
  m_json["roles"] = roles;
  m_json["cluster"] = cluster;
  m_json["bundle"] = bundle;
}

std::optional<StepRecord> Journal::step(std::string_view name) const {
  const auto& steps = m_json["steps"];
  auto found = steps.find(std::string(name));
  if (found == steps.end() || !found->is_object()) {
    return std::nullopt;
  }
  return StepRecord{found->value("state", ""), found->value("inputs", ""), found->value("started", ""),
                    found->value("finished", ""), found->value("seconds", 0.0)};
}

Status Journal::step_started(std::string_view name, std::string_view inputs) {
  m_json["steps"][std::string(name)] = {{"state", "started"}, {"inputs", inputs}, {"started", utc_now()}};
  return write();
}

Status Journal::step_done(std::string_view name, double seconds) {
  auto& step = m_json["steps"][std::string(name)];
  step["state"] = "done";
  step["finished"] = utc_now();
  step["seconds"] = seconds;
  return write();
}

Status Journal::record(nlohmann::json change) {
  m_json["changes"].push_back(std::move(change));
  return write();
}

std::vector<nlohmann::json> Journal::changes_newest_first() const {
  std::vector<nlohmann::json> out(m_json["changes"].begin(), m_json["changes"].end());
  std::ranges::reverse(out);
  return out;
}

bool Journal::has_change(std::string_view kind, std::string_view key, std::string_view value) const {
  return std::ranges::any_of(m_json["changes"], [&](const nlohmann::json& change) {
    return change.value("kind", "") == kind && change.value(std::string(key), "") == value;
  });
}

Status Journal::forget(const nlohmann::json& change) {
  auto& changes = m_json["changes"];
  for (auto it = changes.begin(); it != changes.end(); ++it) {
    if (*it == change) {
      changes.erase(it);
      break;
    }
  }
  return write();
}

Status Journal::remove() {
  std::error_code ec;
  fs::remove(path(), ec);
  if (ec) {
    return fail("cannot remove {}: {}", path().string(), ec.message());
  }
  m_json = empty_journal();
  return {};
}

Status Journal::write() {
  std::error_code ec;
  fs::create_directories(path().parent_path(), ec);
  if (ec) {
    return fail("cannot create {}: {}", path().parent_path().string(), ec.message());
  }
  m_json["updated"] = utc_now();
  return write_file_atomic(path(), m_json.dump(2) + "\n", 0600);
}

Result<InstallLock> InstallLock::acquire(const fs::path& root) {
  auto dir = state_dir(root);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return fail("cannot create {}: {}", dir.string(), ec.message());
  }
  auto path = dir / "install.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail("cannot open {}: {}", path.string(), errno_text(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    auto got = ::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    return fail("another install is running on this host (pid {}, holding {}): wait for it to finish, or stop it "
                "and run again",
                got > 0 ? std::string(pid, static_cast<std::size_t>(got)) : std::string("unknown"), path.string());
  }
  auto text = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    ::close(fd);
    return fail("cannot write {}: {}", path.string(), errno_text(errno));
  }
  return InstallLock(fd);
}

InstallLock::~InstallLock() {
  if (m_fd >= 0) {
    ::close(m_fd); // the lock goes with the descriptor; the file stays, naming the last pid
  }
}

} // namespace kubexm
