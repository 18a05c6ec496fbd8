#include "bundle/extract.hpp"

#include "bundle/fs.hpp"
#include "bundle/worker.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

// Writes verified members below a directory opened once; every path component is opened
// with O_NOFOLLOW relative to it, so nothing can be written outside it even if the
// directory were changed under us.
class DiskSink final : public EntrySink {
public:
  DiskSink(int root, std::int64_t mtime) : m_root(root), m_mtime(mtime) {}

  Status directory(const IndexEntry& entry) override {
    auto [parent, name] = split(entry.path);
    auto dir = open_parent(parent);
    if (!dir) {
      return std::unexpected(dir.error());
    }
    if (::mkdirat(*dir, name.c_str(), entry.mode) != 0 || ::fchmodat(*dir, name.c_str(), entry.mode, 0) != 0) {
      return fail("{}: cannot create directory: {}", entry.path, errno_text(errno));
    }
    return {};
  }

  Status begin_file(const IndexEntry& entry) override {
    auto [parent, name] = split(entry.path);
    auto dir = open_parent(parent);
    if (!dir) {
      return std::unexpected(dir.error());
    }
    int fd = ::openat(*dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail("{}: cannot create: {}", entry.path, errno_text(errno));
    }
    m_file.reset(fd);
    m_entry = &entry;
    return {};
  }

  Status file_data(std::span<const std::byte> bytes) override {
    if (auto status = write_all(m_file.get(), bytes); !status) {
      return add_context(status.error(), m_entry->path);
    }
    return {};
  }

  Status end_file() override {
    const struct timespec times[2] = {{m_mtime, 0}, {m_mtime, 0}};
    if (::fchmod(m_file.get(), m_entry->mode) != 0 || ::futimens(m_file.get(), times) != 0) {
      return fail("{}: cannot set mode and time: {}", m_entry->path, errno_text(errno));
    }
    m_file.reset();
    return {};
  }

private:
  static std::pair<std::string, std::string> split(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) {
      return {"", path};
    }
    return {path.substr(0, slash), path.substr(slash + 1)};
  }

  // The directory fd of `parent` (relative to the root); the last one is cached because
  // members arrive sorted, so runs of files share a parent.
  Result<int> open_parent(const std::string& parent) {
    if (parent.empty()) {
      return m_root;
    }
    if (m_parent && parent == m_parent_path) {
      return m_parent.get();
    }
    UniqueFd current;
    int at = m_root;
    std::string_view rest = parent;
    while (!rest.empty()) {
      auto slash = rest.find('/');
      std::string component(rest.substr(0, slash));
      int fd = ::openat(at, component.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        return fail("{}: cannot open directory: {}", parent, errno_text(errno));
      }
      current.reset(fd);
      at = fd;
      rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash + 1);
    }
    m_parent = std::move(current);
    m_parent_path = parent;
    return m_parent.get();
  }

  int m_root;
  std::int64_t m_mtime;
  UniqueFd m_file;
  const IndexEntry* m_entry = nullptr;
  UniqueFd m_parent;
  std::string m_parent_path;
};

// Runs another sink on a thread of its own, so that decompressing and hashing (the
// reader's thread) overlap with creating and writing files. On a 2 GiB bundle of 105k
// files this takes extraction from 1.31x to 0.92x the time of zstd -dc | tar -x.
class ThreadedSink final : public EntrySink {
public:
  explicit ThreadedSink(EntrySink& target)
      : m_target(target),
        m_worker([this](Op& op) { return apply(op); }, [](const Op& op) { return op.bytes.size(); }, k_max_queued) {}

  Status directory(const IndexEntry& entry) override { return m_worker.push({Op::directory, &entry, {}}); }
  Status begin_file(const IndexEntry& entry) override { return m_worker.push({Op::begin_file, &entry, {}}); }
  Status file_data(std::span<const std::byte> bytes) override {
    return m_worker.push({Op::data, nullptr, std::vector<std::byte>(bytes.begin(), bytes.end())});
  }
  Status end_file() override { return m_worker.push({Op::end_file, nullptr, {}}); }
  Status flush() override { return m_worker.finish(); }

private:
  struct Op {
    enum Kind { directory, begin_file, data, end_file } kind;
    const IndexEntry* entry; // index entries outlive the extraction
    std::vector<std::byte> bytes;
  };

  // 8 MiB in flight keeps both threads busy (16 MiB measured no faster) and bounds memory.
  static constexpr std::size_t k_max_queued = 8 << 20;

  Status apply(const Op& op) {
    switch (op.kind) {
    case Op::directory:
      return m_target.directory(*op.entry);
    case Op::begin_file:
      return m_target.begin_file(*op.entry);
    case Op::data:
      return m_target.file_data(op.bytes);
    case Op::end_file:
      return m_target.end_file();
    }
    return {};
  }

  EntrySink& m_target;
  OrderedWorker<Op> m_worker;
};

// Which members an extraction writes: all, or some directories and the directories above them.
class Scope {
public:
  explicit Scope(std::span<const std::string> only) : m_only(only.begin(), only.end()) {}
  bool includes(std::string_view path) const {
    return m_only.empty() || std::ranges::any_of(m_only, [&](const std::string& only) { return within(path, only); });
  }

private:
  static bool within(std::string_view path, std::string_view only) {
    if (path == only) {
      return true;
    }
    auto inside = path.size() > only.size() && path.starts_with(only) && path[only.size()] == '/';
    auto above = only.size() > path.size() && only.starts_with(path) && only[path.size()] == '/';
    return inside || above;
  }
  std::vector<std::string> m_only;
};

// Passes on the members in scope; the others are still read and verified by the reader.
class ScopedSink final : public EntrySink {
public:
  ScopedSink(EntrySink& target, const Scope& scope) : m_target(target), m_scope(scope) {}
  Status directory(const IndexEntry& entry) override {
    return m_scope.includes(entry.path) ? m_target.directory(entry) : Status{};
  }
  Status begin_file(const IndexEntry& entry) override {
    m_passing = m_scope.includes(entry.path);
    return m_passing ? m_target.begin_file(entry) : Status{};
  }
  Status file_data(std::span<const std::byte> bytes) override {
    return m_passing ? m_target.file_data(bytes) : Status{};
  }
  Status end_file() override { return m_passing ? m_target.end_file() : Status{}; }
  Status flush() override { return m_target.flush(); }

private:
  EntrySink& m_target;
  const Scope& m_scope;
  bool m_passing = false;
};

// What differs between an extracted bundle and its index, by kind, size and mode (a stat
// per member: 0.1 s for 105k members, where hashing them again would take seconds).
std::vector<std::string> damaged_members(const fs::path& target, const BundleHeader& header, const Scope& scope) {
  std::vector<std::string> damaged;
  for (const auto& entry : header.index) {
    if (!scope.includes(entry.path)) {
      continue;
    }
    struct stat st {};
    bool is_dir = entry.kind == EntryKind::directory;
    if (::lstat((target / entry.path).c_str(), &st) != 0) {
      damaged.push_back(entry.path + " (missing)");
    } else if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
      damaged.push_back(entry.path + " (not a " + (is_dir ? "directory)" : "regular file)"));
    } else if (!is_dir && static_cast<std::uint64_t>(st.st_size) != entry.size) {
      damaged.push_back(fmt::format("{} ({} bytes, expected {})", entry.path, st.st_size, entry.size));
    } else if ((st.st_mode & 07777) != entry.mode) {
      damaged.push_back(fmt::format("{} (mode {:04o}, expected {:04o})", entry.path, st.st_mode & 07777, entry.mode));
    }
  }
  return damaged;
}

// A target that exists may be empty or hold exactly this bundle already, intact.
Result<bool> target_holds(const fs::path& target, const BundleHeader& header, const Scope& scope) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(target, ec))) {
    return false;
  }
  if (!fs::is_directory(fs::symlink_status(target, ec))) {
    return fail("{} exists and is not a directory", target.string());
  }
  if (fs::is_empty(target, ec)) {
    return false;
  }
  auto sums = read_text_file(target / k_sums_name, 64 << 20);
  if (!sums || sha256_of(*sums) != header.digest) {
    return fail("{} exists and holds {}; extract into a new or empty directory, or remove it first", target.string(),
                sums ? "a different bundle" : "other files");
  }
  auto damaged = damaged_members(target, header, scope);
  if (!damaged.empty()) {
    auto shown = std::min<std::size_t>(damaged.size(), 5);
    return fail("{} holds this bundle but {} members changed since it was extracted: {}{}; remove it and "
                "extract again",
                target.string(), damaged.size(),
                fmt::join(damaged.begin(), damaged.begin() + static_cast<long>(shown), ", "),
                damaged.size() > shown ? ", ..." : "");
  }
  return true;
}

// Creates the staging directory, replacing one that an interrupted run left behind.
Result<UniqueFd> make_staging(const fs::path& staging) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(staging, ec))) {
    if (!fs::exists(staging / k_staging_marker, ec)) {
      return fail("{} exists and is not a kubexm staging directory; move it away", staging.string());
    }
    if (auto status = remove_tree(staging); !status) {
      return std::unexpected(status.error());
    }
  }
  if (::mkdir(staging.c_str(), 0700) != 0) {
    return fail("cannot create {}: {}", staging.string(), errno_text(errno));
  }
  int fd = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return fail("cannot open {}: {}", staging.string(), errno_text(errno));
  }
  UniqueFd dir(fd);
  int marker =
      ::openat(dir.get(), std::string(k_staging_marker).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (marker < 0) {
    return fail("cannot create {}/{}: {}", staging.string(), k_staging_marker, errno_text(errno));
  }
  ::close(marker);
  return dir;
}

Status check_free_space(const fs::path& directory, const BundleHeader& header, const Scope& scope) {
  struct statvfs stats {};
  if (::statvfs(directory.c_str(), &stats) != 0) {
    return {}; // cannot tell; the writes themselves will fail clearly if space runs out
  }
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  for (const auto& entry : header.index) {
    if (scope.includes(entry.path)) {
      bytes += entry.size;
      ++entries;
    }
  }
  // Each file and directory takes at least one block beyond its bytes.
  std::uint64_t needed = bytes + entries * stats.f_frsize;
  std::uint64_t available = std::uint64_t{stats.f_bavail} * stats.f_frsize;
  if (needed > available) {
    return fail("not enough space in {}: the bundle needs {}, {} is free", directory.string(), human_bytes(needed),
                human_bytes(available));
  }
  return {};
}

// Moves the verified staging directory onto the target and makes it durable.
Status commit_staging(int staging_fd, const fs::path& staging, const fs::path& target) {
  if (::unlinkat(staging_fd, std::string(k_staging_marker).c_str(), 0) != 0) {
    return fail("cannot remove the staging marker: {}", errno_text(errno));
  }
  if (::fchmod(staging_fd, 0755) != 0) { // staging was private while incomplete
    return fail("cannot set the mode of {}: {}", staging.string(), errno_text(errno));
  }
  // One syncfs costs less than an fsync per file and makes the rename below safe to
  // trust after a power cut.
  ::syncfs(staging_fd);
  std::error_code ec;
  if (fs::exists(target, ec) && ::rmdir(target.c_str()) != 0) {
    return fail("cannot replace empty directory {}: {}", target.string(), errno_text(errno));
  }
  if (::rename(staging.c_str(), target.c_str()) != 0) {
    return fail("cannot move {} to {}: {}", staging.string(), target.string(), errno_text(errno));
  }
  UniqueFd parent(::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent) {
    ::fsync(parent.get());
  }
  return {};
}

// SHA256SUMS, bundle.yaml and bundle.index go into the tree too, so that
// `sha256sum -c SHA256SUMS` works there and the next run recognises the bundle.
Status write_metadata(DiskSink& sink, const BundleHeader& header) {
  for (auto [name, text] : {std::pair{k_sums_name, std::string_view(header.sums_text)},
                            std::pair{k_info_name, std::string_view(header.info_text)},
                            std::pair{k_index_name, std::string_view(header.index_text)}}) {
    IndexEntry entry{EntryKind::file, 0644, text.size(), std::string(name)};
    auto status = sink.begin_file(entry);
    if (status) {
      status = sink.file_data(std::as_bytes(std::span(text.data(), text.size())));
    }
    if (status) {
      status = sink.end_file();
    }
    if (!status) {
      return status;
    }
  }
  return {};
}

Status extract_members(BundleReader& reader, const BundleHeader& header, int staging_fd, const fs::path& staging,
                       const fs::path& target, const Scope& scope) {
  DiskSink disk(staging_fd, header.info.source_date_epoch.value_or(0));
  if (auto status = write_metadata(disk, header); !status) {
    return status;
  }
  ThreadedSink threaded(disk);
  ScopedSink sink(threaded, scope);
  if (auto status = reader.read_members(sink); !status) {
    return status;
  }
  if (auto status = reader.finish(); !status) {
    return status;
  }
  return commit_staging(staging_fd, staging, target);
}

} // namespace

Result<ExtractReport> extract_bundle(const fs::path& bundle, const fs::path& target, Progress* progress,
                                     std::string_view only) {
  std::vector<std::string> dirs;
  if (!only.empty()) {
    dirs.emplace_back(only);
  }
  return extract_bundle(bundle, target, progress, std::span<const std::string>(dirs));
}

Result<ExtractReport> extract_bundle(const fs::path& bundle, const fs::path& target_argument, Progress* progress,
                                     std::span<const std::string> only) {
  Scope scope(only);
  fs::path target = fs::absolute(target_argument).lexically_normal();
  if (!target.has_filename()) {
    target = target.parent_path();
  }
  if (!kubexm::is_directory(target.parent_path())) {
    return fail("{}: the parent directory does not exist", target.string());
  }
  auto reader = BundleReader::open(bundle, progress, "extract", PayloadCheck::members_only);
  if (!reader) {
    return std::unexpected(reader.error());
  }
  auto header = (*reader)->read_header();
  if (!header) {
    return std::unexpected(header.error());
  }
  auto present = target_holds(target, **header, scope);
  if (!present) {
    return std::unexpected(present.error());
  }
  if (*present) {
    return ExtractReport{ExtractOutcome::already_present, (*reader)->release_header()};
  }
  if (auto status = check_free_space(target.parent_path(), **header, scope); !status) {
    return std::unexpected(status.error());
  }
  fs::path staging = target.parent_path() / fmt::format(".{}.kubexm-staging", target.filename().string());
  auto staging_fd = make_staging(staging);
  if (!staging_fd) {
    return std::unexpected(staging_fd.error());
  }
  auto status = extract_members(**reader, **header, staging_fd->get(), staging, target, scope);
  if (!status) {
    staging_fd->reset();
    (void)remove_tree(staging);
    return std::unexpected(status.error());
  }
  return ExtractReport{ExtractOutcome::extracted, (*reader)->release_header()};
}

} // namespace kubexm
