#include "bundle/reader.hpp"

#include "bundle/interrupt.hpp"
#include "bundle/path_safety.hpp"
#include "bundle/worker.hpp"

#include <algorithm>
#include <optional>
#include <archive.h>
#include <archive_entry.h>
#include <unordered_map>

namespace kubexm {

namespace {

// SHA256SUMS and bundle.index of a bundle with a million members stay well under this;
// the limit keeps a hostile header from using unbounded memory.
constexpr std::uint64_t k_max_metadata_size = 64 << 20;
constexpr std::size_t k_max_listed_problems = 10;

std::string describe_type(archive_entry* entry) {
  switch (archive_entry_filetype(entry)) {
  case AE_IFCHR:
    return "a character device";
  case AE_IFBLK:
    return "a block device";
  case AE_IFIFO:
    return "a fifo";
  case AE_IFSOCK:
    return "a socket";
  default:
    return fmt::format("an entry of type {:o}", archive_entry_filetype(entry));
  }
}

// Whether a link at `path` with `target` would resolve outside the extraction directory.
bool link_escapes(std::string_view path, std::string_view target, bool symlink) {
  if (target.starts_with('/')) {
    return true;
  }
  long depth = 0;
  if (symlink) { // relative to the link's directory
    depth = static_cast<long>(std::ranges::count(path, '/'));
  }
  std::size_t start = 0;
  while (start <= target.size()) {
    auto slash = target.find('/', start);
    auto part = target.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") {
      if (--depth < 0) {
        return true;
      }
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return false;
}

// Rejects every member kind a bundle never carries, saying what the member is.
Status check_member_kind(archive_entry* entry, std::string_view path) {
  if (const char* target = archive_entry_hardlink(entry)) {
    if (link_escapes(path, target, false)) {
      return fail_verification("unsafe member '{}': hardlink to '{}' points outside the target", path, target);
    }
    return fail_verification("unsafe member '{}': hardlink to '{}' (bundles carry no links)", path, target);
  }
  auto type = archive_entry_filetype(entry);
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(entry);
    std::string_view view = target ? target : "";
    if (link_escapes(path, view, true)) {
      return fail_verification("unsafe member '{}': symlink to '{}' points outside the target", path, view);
    }
    return fail_verification("unsafe member '{}': symlink to '{}' (bundles carry no links)", path, view);
  }
  if (type != AE_IFREG && type != AE_IFDIR) {
    return fail_verification("unsafe member '{}': {} (bundles carry directories and regular files only)", path,
                             describe_type(entry));
  }
  auto mode = archive_entry_mode(entry);
  if ((mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0) {
    return fail_verification("unsafe member '{}': mode {:04o} has the setuid, setgid or sticky bit", path,
                             mode & 07777);
  }
  return {};
}

std::string summarize(const std::vector<std::string>& items) {
  std::vector<std::string> shown(items.begin(),
                                 items.begin() + static_cast<long>(std::min(items.size(), k_max_listed_problems)));
  std::string text = fmt::format("{}", fmt::join(shown, ", "));
  if (items.size() > shown.size()) {
    text += fmt::format(" and {} more", items.size() - shown.size());
  }
  return text;
}

} // namespace

struct BundleReader::Impl {
  archive* reader = nullptr;
  int fd = -1;
  std::uint64_t offset = 0;   // of the payload in the file
  std::uint64_t length = 0;   // of the payload
  std::uint64_t consumed = 0; // payload bytes handed to libarchive so far
  // The payload's SHA-256 is computed on a thread of its own while this one decompresses
  // and hashes members: `verify` of a 2 GiB bundle takes 2.4 s instead of 3.1 s.
  Sha256 payload_hash;
  std::unique_ptr<OrderedWorker<std::vector<std::byte>>> payload_hasher;
  Digest info_digest{};  // from SHA256SUMS, checked when bundle.yaml arrives
  Digest index_digest{}; // likewise for bundle.index
  bool info_listed = false;
  bool index_listed = false;
  Progress* progress = nullptr;
  std::vector<std::byte> buffer = std::vector<std::byte>(k_chunk_size);
  bool interrupted = false;
  std::string io_error;

  BundleHeader header;
  std::unordered_map<std::string_view, std::size_t> positions; // index path -> position

  ~Impl() {
    if (reader) {
      archive_read_free(reader);
    }
  }

  static la_ssize_t read_callback(archive*, void* self, const void** block) {
    return static_cast<Impl*>(self)->read_block(block);
  }

  la_ssize_t read_block(const void** block) {
    if (interrupt_requested()) {
      interrupted = true;
      return -1;
    }
    auto want = std::min<std::uint64_t>(buffer.size(), length - consumed);
    if (want == 0) {
      return 0;
    }
    ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset + consumed));
    if (n <= 0) {
      io_error =
          n == 0 ? fmt::format("file ends {} bytes before the payload does", length - consumed) : errno_text(errno);
      return -1;
    }
    auto bytes = std::span(buffer.data(), static_cast<std::size_t>(n));
    if (payload_hasher && !payload_hasher->push(std::vector<std::byte>(bytes.begin(), bytes.end()))) {
      io_error = "hashing the payload failed";
      return -1;
    }
    consumed += bytes.size();
    if (progress) {
      progress->advance(bytes.size());
    }
    *block = buffer.data();
    return n;
  }

  // Turns a libarchive failure into our error, naming what was being read.
  Error archive_error(std::string_view where) const {
    if (interrupted) {
      return Error(ErrorKind::interrupted, "interrupted");
    }
    if (!io_error.empty()) {
      return Error(ErrorKind::failure, fmt::format("{}: reading the payload: {}", where, io_error));
    }
    const char* message = archive_error_string(reader);
    return Error(ErrorKind::verification,
                 fmt::format("{}: the payload is truncated or corrupt ({}) at payload byte {} of {}", where,
                             message ? message : "unknown error", consumed, length));
  }

  // Next header; nullptr at the end of the archive.
  Result<archive_entry*> next(std::string_view where) {
    archive_entry* entry = nullptr;
    int status = archive_read_next_header(reader, &entry);
    if (status == ARCHIVE_EOF) {
      return nullptr;
    }
    if (status != ARCHIVE_OK) {
      return std::unexpected(archive_error(where));
    }
    return entry;
  }

  Result<std::string> read_metadata(std::string_view expected) {
    auto where = fmt::format("reading {}", expected);
    auto entry = next(where);
    if (!entry) {
      return std::unexpected(entry.error());
    }
    if (*entry == nullptr) {
      return fail_verification("not a kubexm-dist bundle: the archive ends before {}", expected);
    }
    std::string_view path = archive_entry_pathname(*entry) ? archive_entry_pathname(*entry) : "";
    if (path != expected || archive_entry_filetype(*entry) != AE_IFREG) {
      return fail_verification("not a kubexm-dist bundle: expected member '{}' next, found '{}'", expected, path);
    }
    auto size = static_cast<std::uint64_t>(archive_entry_size(*entry));
    if (size > k_max_metadata_size) {
      return fail_verification("{}: {} bytes is larger than the {} a bundle may use", expected, size,
                               human_bytes(k_max_metadata_size));
    }
    std::string text(size, '\0');
    auto got = archive_read_data(reader, text.data(), text.size());
    if (got < 0 || static_cast<std::uint64_t>(got) != size) {
      return std::unexpected(archive_error(where));
    }
    return text;
  }

  // Finds the digests of the two other metadata files; the rest of SHA256SUMS is read
  // once bundle.index says what to expect.
  Status read_metadata_digests() {
    return for_each_sum(header.sums_text, k_sums_name, [&](std::string_view path, const Digest& digest) -> Status {
      if (path == k_info_name) {
        info_digest = digest;
        info_listed = true;
      } else if (path == k_index_name) {
        index_digest = digest;
        index_listed = true;
      }
      return {};
    });
  }

  static Status check_listed(std::string_view path, std::string_view text, bool listed, const Digest& expected) {
    if (!listed) {
      return fail_verification("{} is not listed in SHA256SUMS", path);
    }
    if (auto actual = sha256_of(text); actual != expected) {
      return fail_verification("{}: SHA-256 mismatch: SHA256SUMS says {}, content is {}", path, to_hex(expected),
                               to_hex(actual));
    }
    return {};
  }

  void count_index() {
    positions.reserve(header.index.size());
    for (std::size_t i = 0; i < header.index.size(); ++i) {
      const auto& entry = header.index[i];
      positions.emplace(entry.path, i);
      if (entry.kind == EntryKind::file) {
        header.file_bytes += entry.size;
        ++header.file_count;
      } else {
        ++header.directory_count;
      }
    }
  }

  // SHA256SUMS and bundle.index must list exactly the same files; the digests are kept in
  // a vector parallel to the index.
  Status cross_check() {
    count_index();
    header.digests.assign(header.index.size(), Digest{});
    std::vector<bool> listed(header.index.size(), false);
    std::vector<std::string> only_sums;
    auto status = for_each_sum(header.sums_text, k_sums_name, [&](std::string_view path, const Digest& d) -> Status {
      if (path == k_info_name || path == k_index_name) {
        return {};
      }
      auto at = positions.find(path);
      if (at == positions.end() || header.index[at->second].kind != EntryKind::file) {
        only_sums.emplace_back(path);
        return {};
      }
      if (listed[at->second]) {
        return fail_verification("SHA256SUMS: '{}' is listed twice", path);
      }
      listed[at->second] = true;
      header.digests[at->second] = d;
      return {};
    });
    if (!status) {
      return status;
    }
    if (!only_sums.empty()) {
      return fail_verification("SHA256SUMS lists files that bundle.index does not: {}", summarize(only_sums));
    }
    std::vector<std::string> only_index;
    for (std::size_t i = 0; i < header.index.size(); ++i) {
      if (header.index[i].kind == EntryKind::file && !listed[i]) {
        only_index.push_back(header.index[i].path);
      }
    }
    if (!only_index.empty()) {
      return fail_verification("bundle.index lists files that SHA256SUMS does not: {}", summarize(only_index));
    }
    return {};
  }

  Result<std::size_t> match_index(archive_entry* entry, std::string_view path, std::vector<bool>& seen) {
    auto at = positions.find(path);
    if (at == positions.end()) {
      return fail_verification("member '{}' is not listed in bundle.index or SHA256SUMS", path);
    }
    if (seen[at->second]) {
      return fail_verification("member '{}' appears twice in the archive", path);
    }
    seen[at->second] = true;
    const IndexEntry& listed = header.index[at->second];
    bool is_dir = archive_entry_filetype(entry) == AE_IFDIR;
    if (is_dir != (listed.kind == EntryKind::directory)) {
      return fail_verification("member '{}' is a {} in the archive but a {} in bundle.index", path,
                               is_dir ? "directory" : "file", is_dir ? "file" : "directory");
    }
    auto mode = static_cast<unsigned>(archive_entry_perm(entry));
    if (mode != listed.mode) {
      return fail_verification("member '{}' has mode {:04o} in the archive, bundle.index says {:04o}", path, mode,
                               listed.mode);
    }
    auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
    if (!is_dir && size != listed.size) {
      return fail_verification("member '{}' has {} bytes in the archive, bundle.index says {}", path, size,
                               listed.size);
    }
    return at->second;
  }

  Status stream_file(std::size_t position, EntrySink& sink) {
    const IndexEntry& listed = header.index[position];
    if (auto status = sink.begin_file(listed); !status) {
      return status;
    }
    Sha256 hash;
    std::uint64_t done = 0;
    while (true) {
      const void* block = nullptr;
      std::size_t size = 0;
      la_int64_t at = 0;
      int status = archive_read_data_block(reader, &block, &size, &at);
      if (status == ARCHIVE_EOF) {
        break;
      }
      if (status != ARCHIVE_OK) {
        return std::unexpected(archive_error(listed.path));
      }
      if (static_cast<std::uint64_t>(at) != done) {
        return fail_verification("member '{}' is a sparse file (bundles carry none)", listed.path);
      }
      auto bytes = std::span(static_cast<const std::byte*>(block), size);
      hash.update(bytes);
      done += size;
      if (auto written = sink.file_data(bytes); !written) {
        return written;
      }
    }
    if (done != listed.size) {
      return fail_verification("member '{}' has {} bytes of content, bundle.index says {}", listed.path, done,
                               listed.size);
    }
    auto digest = hash.finish();
    const Digest& expected = header.digests[position];
    if (digest != expected) {
      return fail_verification("member '{}': SHA-256 mismatch: SHA256SUMS says {}, content is {}", listed.path,
                               to_hex(expected), to_hex(digest));
    }
    return sink.end_file();
  }

  Status check_all_seen(const std::vector<bool>& seen) const {
    std::vector<std::string> missing;
    for (std::size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i]) {
        missing.push_back(header.index[i].path);
      }
    }
    if (!missing.empty()) {
      return fail_verification("listed in bundle.index and SHA256SUMS but missing from the archive: {}",
                               summarize(missing));
    }
    return {};
  }
};

BundleReader::BundleReader(BundleFile file, Progress* progress, std::string_view label, PayloadCheck check)
    : m_file(std::move(file)), m_phase(std::make_unique<ProgressPhase>(progress, label, m_file.payload.length)),
      m_impl(std::make_unique<Impl>()) {
  if (check == PayloadCheck::trailer && m_file.payload.trailer) {
    Impl& impl = *m_impl;
    impl.payload_hasher = std::make_unique<OrderedWorker<std::vector<std::byte>>>(
        [&impl](std::vector<std::byte>& chunk) -> Status {
          impl.payload_hash.update(chunk);
          return {};
        },
        [](const std::vector<std::byte>& chunk) { return chunk.size(); }, 8 << 20);
  }
  m_impl->fd = m_file.fd.get();
  m_impl->offset = m_file.payload.offset;
  m_impl->length = m_file.payload.length;
  m_impl->progress = progress;
}

BundleReader::~BundleReader() = default;

Result<std::unique_ptr<BundleReader>> BundleReader::open(const std::filesystem::path& path, Progress* progress,
                                                         std::string_view label, PayloadCheck check) {
  auto file = open_bundle_file(path);
  if (!file) {
    return std::unexpected(file.error());
  }
  std::unique_ptr<BundleReader> self(new BundleReader(std::move(*file), progress, label, check));
  Impl& impl = *self->m_impl;
  impl.reader = archive_read_new();
  archive_read_support_filter_zstd(impl.reader);
  archive_read_support_format_tar(impl.reader);
  if (archive_read_open(impl.reader, &impl, nullptr, &Impl::read_callback, nullptr) != ARCHIVE_OK) {
    return std::unexpected(impl.archive_error("opening the payload").with_context(self->m_file.path.string()));
  }
  return self;
}

Result<const BundleHeader*> BundleReader::read_header() {
  Impl& impl = *m_impl;
  auto sums_text = impl.read_metadata(k_sums_name);
  if (!sums_text) {
    return std::unexpected(sums_text.error());
  }
  impl.header.digest = sha256_of(*sums_text);
  if (m_file.payload.trailer && m_file.payload.trailer->bundle_digest != impl.header.digest) {
    return fail_verification("SHA256SUMS has digest {}, the trailer says {}: the payload was altered",
                             to_hex(impl.header.digest), to_hex(m_file.payload.trailer->bundle_digest));
  }
  impl.header.sums_text = std::move(*sums_text);
  if (auto status = impl.read_metadata_digests(); !status) {
    return std::unexpected(status.error());
  }

  auto info_text = impl.read_metadata(k_info_name);
  if (!info_text) {
    return std::unexpected(info_text.error());
  }
  if (auto status = Impl::check_listed(k_info_name, *info_text, impl.info_listed, impl.info_digest); !status) {
    return std::unexpected(status.error());
  }
  auto info = parse_bundle_info(*info_text, k_info_name, InfoSource::bundle);
  if (!info) {
    return std::unexpected(info.error());
  }
  impl.header.info = std::move(*info);
  impl.header.info_text = std::move(*info_text);

  auto index_text = impl.read_metadata(k_index_name);
  if (!index_text) {
    return std::unexpected(index_text.error());
  }
  if (auto status = Impl::check_listed(k_index_name, *index_text, impl.index_listed, impl.index_digest); !status) {
    return std::unexpected(status.error());
  }
  auto index = parse_index(*index_text);
  if (!index) {
    return std::unexpected(index.error());
  }
  impl.header.index = std::move(*index);
  impl.header.index_text = std::move(*index_text);
  if (auto status = impl.cross_check(); !status) {
    return std::unexpected(status.error());
  }
  return &impl.header;
}

BundleHeader BundleReader::release_header() {
  return std::move(m_impl->header);
}

Status BundleReader::read_members(EntrySink& sink) {
  Impl& impl = *m_impl;
  std::vector<bool> seen(impl.header.index.size(), false);
  while (true) {
    auto entry = impl.next("reading the next member");
    if (!entry) {
      return std::unexpected(entry.error());
    }
    if (*entry == nullptr) {
      if (auto status = sink.flush(); !status) {
        return status;
      }
      return impl.check_all_seen(seen);
    }
    const char* raw = archive_entry_pathname(*entry);
    std::string_view raw_path = raw ? raw : "";
    auto path = check_member_path(raw_path);
    if (!path) {
      return fail_verification("unsafe member '{}': {}", raw_path, path.error().message());
    }
    if (auto status = check_member_kind(*entry, *path); !status) {
      return status;
    }
    auto position = impl.match_index(*entry, *path, seen);
    if (!position) {
      return std::unexpected(position.error());
    }
    const IndexEntry& listed = impl.header.index[*position];
    auto status = listed.kind == EntryKind::directory ? sink.directory(listed) : impl.stream_file(*position, sink);
    if (!status) {
      return status;
    }
  }
}

Status BundleReader::finish() {
  Impl& impl = *m_impl;
  const void* block = nullptr;
  while (impl.consumed < impl.length) {
    if (impl.read_block(&block) < 0) {
      return std::unexpected(impl.archive_error("reading the end of the payload"));
    }
  }
  if (!impl.payload_hasher) {
    return {};
  }
  (void)impl.payload_hasher->finish();
  auto digest = impl.payload_hash.finish();
  if (digest != m_file.payload.trailer->payload_sha256) {
    return fail_verification("the payload's SHA-256 is {}, the trailer says {}", to_hex(digest),
                             to_hex(m_file.payload.trailer->payload_sha256));
  }
  return {};
}

Result<BundleHeader> read_bundle_header(const std::filesystem::path& path) {
  auto reader = BundleReader::open(path, nullptr, "", PayloadCheck::members_only);
  if (!reader) {
    return std::unexpected(reader.error());
  }
  if (auto header = (*reader)->read_header(); !header) {
    return std::unexpected(header.error());
  }
  return (*reader)->release_header();
}

namespace {
// A sink that only lets the reader verify.
class NullSink final : public EntrySink {
public:
  Status directory(const IndexEntry&) override { return {}; }
  Status begin_file(const IndexEntry&) override { return {}; }
  Status file_data(std::span<const std::byte>) override { return {}; }
  Status end_file() override { return {}; }
};

// Keeps the content of one member, once it has matched its digest.
class MemberSink final : public EntrySink {
public:
  explicit MemberSink(std::string_view path) : m_path(path) {}
  Status directory(const IndexEntry&) override { return {}; }
  Status begin_file(const IndexEntry& entry) override {
    m_inside = entry.path == m_path;
    return {};
  }
  Status file_data(std::span<const std::byte> bytes) override {
    if (m_inside) {
      m_reading.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    return {};
  }
  Status end_file() override {
    if (m_inside) {
      m_content = std::move(m_reading);
      m_inside = false;
    }
    return {};
  }
  std::optional<std::string>& content() { return m_content; }

private:
  std::string m_path;
  bool m_inside = false;
  std::string m_reading;
  std::optional<std::string> m_content;
};

Result<BundleHeader> read_through(const std::filesystem::path& path, Progress* progress, EntrySink& sink) {
  auto reader = BundleReader::open(path, progress, "verify", PayloadCheck::trailer);
  if (!reader) {
    return std::unexpected(reader.error());
  }
  auto header = (*reader)->read_header();
  if (!header) {
    return std::unexpected(header.error());
  }
  auto status = (*reader)->read_members(sink);
  if (status) {
    status = (*reader)->finish();
  }
  if (!status) {
    return std::unexpected(status.error());
  }
  return (*reader)->release_header();
}

} // namespace

Result<BundleHeader> verify_bundle(const std::filesystem::path& path, Progress* progress) {
  NullSink sink;
  return read_through(path, progress, sink);
}

Result<std::string> verify_and_read_member(const std::filesystem::path& path, std::string_view member,
                                           Progress* progress) {
  MemberSink sink(member);
  if (auto header = read_through(path, progress, sink); !header) {
    return std::unexpected(header.error());
  }
  if (!sink.content()) {
    return fail("{}: the bundle has no {}", path.string(), member);
  }
  return std::move(*sink.content());
}

} // namespace kubexm
