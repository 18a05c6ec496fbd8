#include "bundle/writer.hpp"

#include "bundle/extract.hpp"
#include "bundle/fs.hpp"
#include "bundle/index.hpp"
#include "bundle/interrupt.hpp"
#include "bundle/path_safety.hpp"
#include "bundle/reader.hpp"
#include "bundle/sums.hpp"
#include "bundle/trailer.hpp"
#include "bundle/worker.hpp"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <atomic>
#include <cstdlib>
#include <elf.h>
#include <sys/stat.h>
#include <thread>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

// A member of the tree being packed, as found on disk.
struct TreeEntry {
  IndexEntry entry;
  fs::path source;
  std::int64_t mtime = 0;
  std::int64_t ctime = 0;
  Digest digest{};
};

struct Tree {
  std::vector<TreeEntry> entries; // sorted by path
  std::int64_t newest_mtime = 0;
  std::vector<std::string> notes;
};

Status check_tree_member(const std::string& path, const struct stat& st) {
  if (S_ISLNK(st.st_mode)) {
    return fail("{}: is a symlink; bundles carry no links, copy the file instead", path);
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return fail("{}: is not a regular file or directory", path);
  }
  if (path == k_staging_marker) {
    return fail("{}: the name is reserved for the installer's staging directory", path);
  }
  return {};
}

// Walks the tree without following symlinks; every problem is collected.
Result<Tree> scan_tree(const fs::path& root) {
  Tree tree;
  std::vector<std::string> problems;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) {
    return fail("cannot read {}: {}", root.string(), ec.message());
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    auto relative = it->path().lexically_relative(root).generic_string();
    if (relative == k_sums_name || relative == k_index_name) {
      tree.notes.push_back(fmt::format("{} in the tree is ignored: pack writes its own", relative));
      continue;
    }
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) {
      problems.push_back(fmt::format("{}: {}", relative, errno_text(errno)));
      continue;
    }
    auto path = check_member_path(relative);
    auto status = path ? check_tree_member(relative, st) : Status(std::unexpected(path.error()));
    if (!status) {
      problems.push_back(path ? status.error().message() : fmt::format("{}: {}", relative, path.error().message()));
      continue;
    }
    EntryKind kind = S_ISDIR(st.st_mode) ? EntryKind::directory : EntryKind::file;
    std::uint64_t size = kind == EntryKind::file ? static_cast<std::uint64_t>(st.st_size) : 0;
    tree.entries.push_back({IndexEntry{kind, normalized_mode(kind, st.st_mode), size, *path},
                            it->path(),
                            st.st_mtim.tv_sec,
                            st.st_ctim.tv_sec,
                            {}});
    tree.newest_mtime = std::max<std::int64_t>(tree.newest_mtime, st.st_mtim.tv_sec);
  }
  if (ec) {
    problems.push_back(fmt::format("walking {}: {}", root.string(), ec.message()));
  }
  if (!problems.empty()) {
    return fail("{} cannot be packed:\n  {}", root.string(), fmt::join(problems, "\n  "));
  }
  std::ranges::sort(tree.entries, {}, [](const TreeEntry& e) -> const std::string& { return e.entry.path; });
  return tree;
}

// Hashes every file, one thread per core (at most 8): hashing is most of this pass.
Status hash_files(std::vector<TreeEntry>& entries, Progress* progress, std::uint64_t total) {
  std::atomic<std::size_t> next{0};
  std::vector<std::string> errors(entries.size());
  std::atomic<std::uint64_t> done{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < entries.size() && !interrupt_requested(); i = next++) {
      if (entries[i].entry.kind != EntryKind::file) {
        continue;
      }
      auto digest = sha256_file(entries[i].source);
      if (!digest) {
        errors[i] = digest.error().message();
      } else {
        entries[i].digest = digest->digest;
      }
      done += entries[i].entry.size;
    }
  };
  unsigned count = std::max(1u, std::min(std::thread::hardware_concurrency(), 8u));
  std::vector<std::jthread> threads;
  for (unsigned t = 0; t < count; ++t) {
    threads.emplace_back(worker);
  }
  {
    ProgressPhase phase(progress, "hash", total);
    std::uint64_t reported = 0;
    while (progress && next < entries.size() && !interrupt_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      progress->advance(done - reported);
      reported = done;
    }
    threads.clear();
  }
  if (interrupt_requested()) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted"));
  }
  std::vector<std::string> failed;
  std::ranges::copy_if(errors, std::back_inserter(failed), [](const std::string& e) { return !e.empty(); });
  if (!failed.empty()) {
    return fail("cannot read files of the tree:\n  {}", fmt::join(failed, "\n  "));
  }
  return {};
}

// --source-date-epoch or $SOURCE_DATE_EPOCH, else the tree's bundle.yaml, else the newest
// mtime in the tree: the same tree always gets the same mtime.
std::int64_t choose_epoch(const PackOptions& options, const BundleInfo& info, std::int64_t newest_mtime) {
  return options.source_date_epoch.value_or(info.source_date_epoch.value_or(newest_mtime));
}

// The stub is the static installer without any payload it may already carry.
struct Stub {
  UniqueFd fd;
  std::uint64_t size = 0;
};

Result<Stub> open_stub(const fs::path& path) {
  auto file = open_read(path);
  if (!file) {
    return fail("installer {}: {} (build it, or pass --installer FILE)", path.string(), file.error().message());
  }
  auto size = file_size(file->get());
  if (!size) {
    return std::unexpected(size.error());
  }
  if (!elf_image_end(file->get())) {
    return fail("installer {}: not a 64-bit ELF executable", path.string());
  }
  if (*size >= k_trailer_size) {
    std::array<std::byte, k_trailer_size> tail{};
    if (pread_exact(file->get(), tail, *size - k_trailer_size)) {
      if (auto trailer = decode_trailer(tail, *size); trailer && *trailer) {
        *size = (*trailer)->payload_offset; // an install that already carries a bundle
      }
    }
  }
  return Stub{std::move(*file), *size};
}

// A piece of an output, shared by the files it goes to.
using Chunk = std::shared_ptr<const std::vector<std::byte>>;

// One output file, written and hashed on a thread of its own, so that the two outputs'
// writes and SHA-256 passes do not all run on the thread that feeds the compressor
// (measured: 9.7 s -> 9.5 s on two cores, where the compressor's workers are busy too).
class OutputFile {
public:
  explicit OutputFile(AtomicFile file)
      : m_file(std::move(file)), m_worker([this](Chunk& chunk) { return write(*chunk); },
                                          [](const Chunk& chunk) { return chunk->size(); }, 8 << 20) {}

  Status push(Chunk chunk) { return m_worker.push(std::move(chunk)); }

  // Waits for every chunk, then moves the file into place and returns its digest.
  Result<Digest> commit() {
    if (auto status = m_worker.finish(); !status) {
      return std::unexpected(status.error());
    }
    if (auto status = m_file.commit(); !status) {
      return std::unexpected(status.error());
    }
    return m_hash.finish();
  }

private:
  Status write(std::span<const std::byte> bytes) {
    m_hash.update(bytes);
    return m_file.write(bytes);
  }

  AtomicFile m_file;
  Sha256 m_hash;
  OrderedWorker<Chunk> m_worker; // last: its thread uses the members above
};

// Where the compressed stream goes: the archive, and the installer behind its stub.
struct Outputs {
  Outputs(AtomicFile archive_file, AtomicFile installer_file)
      : archive(std::move(archive_file)), installer(std::move(installer_file)) {}

  OutputFile archive;
  OutputFile installer;
  std::uint64_t payload_size = 0;
  std::string error;

  static la_ssize_t write_callback(struct archive*, void* self, const void* buffer, size_t length) {
    return static_cast<Outputs*>(self)->write(std::span(static_cast<const std::byte*>(buffer), length));
  }

  la_ssize_t write(std::span<const std::byte> bytes) {
    auto chunk = std::make_shared<const std::vector<std::byte>>(bytes.begin(), bytes.end());
    auto status = archive.push(chunk);
    if (status) {
      status = installer.push(std::move(chunk));
    }
    if (!status) {
      error = status.error().message();
      return -1;
    }
    payload_size += bytes.size();
    return static_cast<la_ssize_t>(bytes.size());
  }
};

Status copy_stub(const Stub& stub, OutputFile& installer) {
  for (std::uint64_t at = 0; at < stub.size;) {
    auto n = std::min<std::uint64_t>(k_chunk_size, stub.size - at);
    std::vector<std::byte> buffer(n);
    if (auto status = pread_exact(stub.fd.get(), buffer, at); !status) {
      return status;
    }
    if (auto status = installer.push(std::make_shared<const std::vector<std::byte>>(std::move(buffer))); !status) {
      return status;
    }
    at += n;
  }
  return {};
}

// A libarchive writer configured for deterministic output.
class ArchiveWriter {
public:
  explicit ArchiveWriter(std::int64_t mtime)
      : m_archive(archive_write_new()), m_entry(archive_entry_new()), m_mtime(mtime) {}
  ~ArchiveWriter() {
    archive_entry_free(m_entry);
    archive_write_free(m_archive);
  }
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  Status open(Outputs& outputs, unsigned threads, int level) {
    // zstd's output is the same for any number of workers >= 1, so the core count of the
    // build machine does not change the archive; 0 workers would (single-threaded mode).
    auto options = fmt::format("zstd:compression-level={},zstd:threads={}", level, std::max(1u, threads));
    if (archive_write_add_filter_zstd(m_archive) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(m_archive) != ARCHIVE_OK ||
        // No padding after the zstd frame: zeros there are not a frame and readers reject them.
        archive_write_set_bytes_in_last_block(m_archive, 1) != ARCHIVE_OK ||
        archive_write_set_options(m_archive, options.c_str()) != ARCHIVE_OK ||
        archive_write_open2(m_archive, &outputs, nullptr, &Outputs::write_callback, nullptr, nullptr) != ARCHIVE_OK) {
      return failure("opening the archive");
    }
    return {};
  }

  Status add_text(std::string_view path, std::string_view text) {
    if (auto status = header({EntryKind::file, 0644, text.size(), std::string(path)}); !status) {
      return status;
    }
    return data(std::as_bytes(std::span(text.data(), text.size())), path);
  }

  Status header(const IndexEntry& entry) {
    archive_entry_clear(m_entry);
    archive_entry_set_pathname(m_entry, entry.path.c_str());
    archive_entry_set_filetype(m_entry, entry.kind == EntryKind::directory ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(m_entry, entry.mode);
    archive_entry_set_size(m_entry, static_cast<la_int64_t>(entry.size));
    archive_entry_set_mtime(m_entry, m_mtime, 0);
    archive_entry_set_uid(m_entry, 0);
    archive_entry_set_gid(m_entry, 0);
    archive_entry_set_uname(m_entry, "root");
    archive_entry_set_gname(m_entry, "root");
    if (archive_write_header(m_archive, m_entry) != ARCHIVE_OK) {
      return failure(entry.path);
    }
    return {};
  }

  Status data(std::span<const std::byte> bytes, std::string_view path) {
    if (archive_write_data(m_archive, bytes.data(), bytes.size()) != static_cast<la_ssize_t>(bytes.size())) {
      return failure(path);
    }
    return {};
  }

  Status close() {
    if (archive_write_close(m_archive) != ARCHIVE_OK) {
      return failure("finishing the archive");
    }
    return {};
  }

private:
  Status failure(std::string_view where) {
    const char* message = archive_error_string(m_archive);
    return fail("{}: {}", where, message ? message : "libarchive error");
  }

  archive* m_archive;
  archive_entry* m_entry;
  std::int64_t m_mtime;
};

Status add_file(ArchiveWriter& writer, const TreeEntry& member, Progress* progress) {
  auto fd = open_read(member.source);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != member.entry.size ||
      st.st_mtim.tv_sec != member.mtime || st.st_ctim.tv_sec != member.ctime) {
    return fail("{}: changed while being packed; pack again when nothing writes to the tree", member.entry.path);
  }
  if (auto status = writer.header(member.entry); !status) {
    return status;
  }
  Status written;
  auto read = read_chunks(fd->get(), [&](std::span<const std::byte> chunk) {
    if (written) {
      written = writer.data(chunk, member.entry.path);
      if (progress) {
        progress->advance(chunk.size());
      }
    }
  });
  if (!read) {
    return add_context(read.error(), member.entry.path);
  }
  return written;
}

Status write_members(ArchiveWriter& writer, const std::vector<TreeEntry>& entries, Progress* progress) {
  for (const auto& member : entries) {
    if (interrupt_requested()) {
      return std::unexpected(Error(ErrorKind::interrupted, "interrupted"));
    }
    auto status =
        member.entry.kind == EntryKind::directory ? writer.header(member.entry) : add_file(writer, member, progress);
    if (!status) {
      return status;
    }
  }
  return {};
}

// The metadata members, built from the scanned tree.
struct Metadata {
  BundleInfo info;
  std::string info_text;
  std::string index_text;
  std::string sums_text;
  std::vector<TreeEntry> members; // everything but bundle.yaml
  std::uint64_t file_bytes = 0;
  std::size_t file_count = 0;
};

Result<Metadata> build_metadata(const PackOptions& options, Tree tree) {
  Metadata meta;
  auto info_path = options.dist_dir / k_info_name;
  auto text = read_text_file(info_path, 1 << 20);
  if (!text) {
    return fail("{}: every kubexm-dist tree needs bundle.yaml at its root ({})", options.dist_dir.string(),
                text.error().message());
  }
  auto info = parse_bundle_info(*text, info_path.string(), InfoSource::tree);
  if (!info) {
    return std::unexpected(Error(ErrorKind::failure, info.error().message()));
  }
  meta.info = std::move(*info);
  if (auto missing = missing_component_files(
          meta.info,
          [&](const std::string& path) {
            auto found =
                std::ranges::lower_bound(tree.entries, path, {}, [](const TreeEntry& e) { return e.entry.path; });
            return found != tree.entries.end() && found->entry.path == path && found->entry.kind == EntryKind::file;
          });
      !missing.empty()) {
    return fail("{}: lists component files that are not in the tree: {}", info_path.string(), fmt::join(missing, ", "));
  }
  meta.info.format = k_format_version;
  meta.info.created_by = options.created_by;
  meta.info.source_date_epoch = choose_epoch(options, meta.info, tree.newest_mtime);
  meta.info_text = format_bundle_info(meta.info);

  std::vector<IndexEntry> index;
  std::vector<SumEntry> sums{{std::string(k_info_name), sha256_of(meta.info_text)}, {}};
  for (auto& member : tree.entries) {
    if (member.entry.path == k_info_name) {
      continue;
    }
    index.push_back(member.entry);
    if (member.entry.kind == EntryKind::file) {
      sums.push_back({member.entry.path, member.digest});
      meta.file_bytes += member.entry.size;
      ++meta.file_count;
    }
    meta.members.push_back(std::move(member));
  }
  meta.index_text = format_index(index);
  sums[1] = {std::string(k_index_name), sha256_of(meta.index_text)};
  meta.sums_text = format_sums(sums);
  return meta;
}

Status write_payload(const PackOptions& options, const Metadata& meta, Outputs& outputs) {
  ArchiveWriter writer(*meta.info.source_date_epoch);
  unsigned threads = options.threads ? options.threads : std::thread::hardware_concurrency();
  if (auto status = writer.open(outputs, threads, options.level); !status) {
    return status;
  }
  for (auto [name, text] : {std::pair{k_sums_name, std::string_view(meta.sums_text)},
                            std::pair{k_info_name, std::string_view(meta.info_text)},
                            std::pair{k_index_name, std::string_view(meta.index_text)}}) {
    if (auto status = writer.add_text(name, text); !status) {
      return status;
    }
  }
  Status status;
  {
    ProgressPhase phase(options.progress, "pack", meta.file_bytes);
    status = write_members(writer, meta.members, options.progress);
  }
  if (!status) {
    return status;
  }
  status = writer.close();
  if (!status && !outputs.error.empty()) {
    return fail("writing the outputs: {}", outputs.error);
  }
  return status;
}

Status commit_outputs(Outputs& outputs, const Metadata& meta, PackResult& result) {
  auto archive_digest = outputs.archive.commit();
  if (!archive_digest) {
    return std::unexpected(archive_digest.error());
  }
  Trailer trailer;
  trailer.payload_offset = result.installer_size;
  trailer.payload_length = outputs.payload_size;
  trailer.payload_sha256 = *archive_digest;
  trailer.bundle_digest = sha256_of(meta.sums_text);
  auto encoded = encode_trailer(trailer);
  if (auto status =
          outputs.installer.push(std::make_shared<const std::vector<std::byte>>(encoded.begin(), encoded.end()));
      !status) {
    return status;
  }
  auto installer_digest = outputs.installer.commit();
  if (!installer_digest) {
    return std::unexpected(installer_digest.error());
  }
  result.bundle_digest = trailer.bundle_digest;
  result.archive_digest = *archive_digest;
  result.installer_digest = *installer_digest;
  result.archive_size = outputs.payload_size;
  result.installer_size += outputs.payload_size + k_trailer_size;
  std::vector<SumEntry> sums{{result.archive.filename().string(), result.archive_digest},
                             {result.installer.filename().string(), result.installer_digest}};
  return write_file_atomic(result.sums, format_sums(sums));
}

Result<std::unique_ptr<Outputs>> create_outputs(const PackResult& result, const Stub& stub) {
  auto archive = AtomicFile::create(result.archive, 0644);
  if (!archive) {
    return std::unexpected(archive.error());
  }
  auto installer = AtomicFile::create(result.installer, 0755);
  if (!installer) {
    return std::unexpected(installer.error());
  }
  auto outputs = std::make_unique<Outputs>(std::move(*archive), std::move(*installer));
  if (auto status = copy_stub(stub, outputs->installer); !status) {
    return std::unexpected(status.error());
  }
  return outputs;
}

} // namespace

Result<PackResult> pack_bundle(const PackOptions& options) {
  auto tree = scan_tree(options.dist_dir);
  if (!tree) {
    return std::unexpected(tree.error());
  }
  auto stub = open_stub(options.installer_stub);
  if (!stub) {
    return std::unexpected(stub.error());
  }
  std::uint64_t total = 0;
  for (const auto& e : tree->entries) {
    total += e.entry.size;
  }
  if (auto status = hash_files(tree->entries, options.progress, total); !status) {
    return std::unexpected(status.error());
  }
  PackResult result;
  result.notes = tree->notes;
  auto meta = build_metadata(options, std::move(*tree));
  if (!meta) {
    return std::unexpected(meta.error());
  }
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  result.archive = options.out_dir / archive_file_name(meta->info);
  result.installer = options.out_dir / "install";
  result.sums = options.out_dir / "SHA256SUMS";
  result.installer_size = stub->size;
  auto outputs = create_outputs(result, *stub);
  if (!outputs) {
    return std::unexpected(outputs.error());
  }
  if (auto status = write_payload(options, *meta, **outputs); !status) {
    return std::unexpected(status.error());
  }
  if (auto status = commit_outputs(**outputs, *meta, result); !status) {
    return std::unexpected(status.error());
  }
  result.info = meta->info;
  result.file_count = meta->file_count;
  result.file_bytes = meta->file_bytes;
  return result;
}

} // namespace kubexm
