#include "builder/binaries/unpack.hpp"

#include "bundle/fs.hpp"
#include "bundle/sha256.hpp"
#include "bundle/trailer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <fcntl.h>
#include <map>
#include <memory>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

std::uint16_t machine_for(std::string_view arch) {
  return arch == "arm64" ? EM_AARCH64 : EM_X86_64;
}

// One binary being read: hashed, its head kept for the ELF check, written when asked.
class MemberWriter {
public:
  static Result<MemberWriter> open(const std::optional<fs::path>& dir, const std::string& install) {
    MemberWriter writer;
    if (dir) {
      auto path = *dir / install;
      writer.m_fd = UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0755));
      if (!writer.m_fd) {
        return fail("cannot create {}: {}", path.string(), errno_text(errno));
      }
    }
    return writer;
  }
  Status write(std::span<const std::byte> bytes) {
    auto room = std::min(bytes.size(), m_head.size() - m_head_size);
    std::copy_n(bytes.begin(), room, m_head.begin() + static_cast<std::ptrdiff_t>(m_head_size));
    m_head_size += room;
    m_hash.update(bytes);
    m_size += bytes.size();
    return m_fd ? write_all(m_fd.get(), bytes) : Status{};
  }
  std::optional<std::uint16_t> machine() const {
    return elf_machine(std::span<const std::byte>(m_head.data(), m_head_size));
  }
  LockedMember finish(const MemberSpec& spec) { return {spec.path, spec.install, m_size, to_hex(m_hash.finish())}; }

private:
  UniqueFd m_fd;
  Sha256 m_hash;
  std::array<std::byte, 64> m_head{};
  std::size_t m_head_size = 0;
  std::uint64_t m_size = 0;
};

// Names the problem when a binary is not an ELF executable for the arch it is filed under.
std::optional<std::string> arch_problem(const MemberWriter& writer, const std::string& name, const std::string& arch) {
  auto machine = writer.machine();
  if (!machine) {
    return fmt::format("{} is not an ELF executable", name);
  }
  if (*machine != machine_for(arch)) {
    return fmt::format("{} is an {} binary, but it is filed under {}", name, describe_machine(*machine), arch);
  }
  return std::nullopt;
}

Status copy_fd(int fd, MemberWriter& writer) {
  Status status;
  auto read = read_chunks(fd, [&](std::span<const std::byte> bytes) {
    if (status) {
      status = writer.write(bytes);
    }
  });
  return read ? status : read;
}

std::string normalize(std::string_view path) {
  while (path.starts_with("./")) {
    path.remove_prefix(2);
  }
  return std::string(path);
}

using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_read_free)>;

Result<std::vector<LockedMember>> unpack_tarball(const UnpackRequest& request, std::vector<std::string>& problems) {
  ArchivePtr archive(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(archive.get());
  archive_read_support_format_tar(archive.get());
  if (archive_read_open_filename(archive.get(), request.file.c_str(), 1 << 20) != ARCHIVE_OK) {
    return fail("{}: cannot read {} as a tar.gz: {}", request.label, request.file.string(),
                archive_error_string(archive.get()));
  }
  std::map<std::string, std::size_t> wanted;
  for (std::size_t i = 0; i < request.members.size(); ++i) {
    wanted[normalize(request.members[i].path)] = i;
  }
  std::vector<std::optional<LockedMember>> found(request.members.size());
  archive_entry* entry = nullptr;
  int rc = 0;
  // ARCHIVE_WARN (an unknown pax header, say) is not a reason to refuse a tarball.
  while ((rc = archive_read_next_header(archive.get(), &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    auto name = normalize(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      continue;
    }
    const auto& spec = request.members[it->second];
    if (archive_entry_filetype(entry) != AE_IFREG) {
      problems.push_back(fmt::format("{} is not a regular file in the archive", name));
      continue;
    }
    auto writer = MemberWriter::open(request.output_dir, spec.install);
    if (!writer) {
      return std::unexpected(writer.error());
    }
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    while ((rc = archive_read_data_block(archive.get(), &block, &size, &offset)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
      if (auto status = writer->write(std::span(static_cast<const std::byte*>(block), size)); !status) {
        return std::unexpected(status.error());
      }
    }
    if (rc != ARCHIVE_EOF) {
      break;
    }
    if (auto problem = arch_problem(*writer, name, request.arch)) {
      problems.push_back(*problem);
    }
    found[it->second] = writer->finish(spec);
  }
  if (rc != ARCHIVE_EOF) {
    return fail("{}: {} is not a readable tar.gz: {}", request.label, request.file.string(),
                archive_error_string(archive.get()));
  }
  std::vector<LockedMember> members;
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (!found[i]) {
      problems.push_back(fmt::format("{} is not in the archive", normalize(request.members[i].path)));
    } else {
      members.push_back(*found[i]);
    }
  }
  return members;
}

Result<std::vector<LockedMember>> unpack_file(const UnpackRequest& request, std::vector<std::string>& problems) {
  auto fd = open_read(request.file);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  const auto& spec = request.members.front();
  auto writer = MemberWriter::open(request.output_dir, spec.install);
  if (!writer) {
    return std::unexpected(writer.error());
  }
  if (auto status = copy_fd(fd->get(), *writer); !status) {
    return std::unexpected(status.error());
  }
  auto url_name = request.url.substr(request.url.rfind('/') + 1);
  if (auto problem = arch_problem(*writer, url_name, request.arch)) {
    problems.push_back(*problem);
  }
  return std::vector{writer->finish(spec)};
}

} // namespace

std::string describe_machine(std::uint16_t machine) {
  switch (machine) {
  case EM_X86_64:
    return "x86-64 (amd64)";
  case EM_AARCH64:
    return "AArch64 (arm64)";
  case EM_386:
    return "i386";
  case EM_ARM:
    return "32-bit ARM";
  case EM_PPC64:
    return "ppc64";
  case EM_S390:
    return "s390x";
  case EM_RISCV:
    return "RISC-V";
  default:
    return fmt::format("e_machine {}", machine);
  }
}

Result<std::vector<LockedMember>> unpack_artifact(const UnpackRequest& request) {
  if (request.output_dir) {
    std::error_code ec;
    fs::create_directories(*request.output_dir, ec);
    if (ec) {
      return fail("cannot create {}: {}", request.output_dir->string(), ec.message());
    }
  }
  std::vector<std::string> problems;
  auto members =
      request.kind == ArtifactKind::tar_gz ? unpack_tarball(request, problems) : unpack_file(request, problems);
  if (!members) {
    return members;
  }
  if (!problems.empty()) {
    return fail_verification("{}: {}: {}; refusing it", request.label, request.url, fmt::join(problems, "; "));
  }
  return members;
}

} // namespace kubexm
