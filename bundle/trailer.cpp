#include "bundle/trailer.hpp"

#include <algorithm>
#include <cstring>
#include <elf.h>

namespace kubexm {

namespace {

constexpr std::array<std::uint8_t, 4> k_zstd_magic{0x28, 0xb5, 0x2f, 0xfd};

void put_u32(std::byte* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<std::byte>(value >> (8 * i));
  }
}

void put_u64(std::byte* out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<std::byte>(value >> (8 * i));
  }
}

std::uint64_t get_le(const std::byte* in, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    value = (value << 8) | std::to_integer<std::uint64_t>(in[i]);
  }
  return value;
}

Digest trailer_check(std::span<const std::byte> first_120) {
  Sha256 hash;
  hash.update(first_120);
  return hash.finish();
}

} // namespace

std::array<std::byte, k_trailer_size> encode_trailer(const Trailer& trailer) {
  std::array<std::byte, k_trailer_size> out{};
  std::memcpy(out.data(), k_trailer_magic.data(), 8);
  put_u32(out.data() + 8, trailer.format_version);
  put_u32(out.data() + 12, k_trailer_size);
  put_u64(out.data() + 16, trailer.payload_offset);
  put_u64(out.data() + 24, trailer.payload_length);
  std::memcpy(out.data() + 32, trailer.payload_sha256.data(), 32);
  std::memcpy(out.data() + 64, trailer.bundle_digest.data(), 32);
  auto check = trailer_check(std::span(out.data(), 120));
  std::memcpy(out.data() + 120, check.data(), 8);
  return out;
}

Result<std::optional<Trailer>> decode_trailer(std::span<const std::byte, k_trailer_size> bytes,
                                              std::uint64_t file_size) {
  if (std::memcmp(bytes.data(), k_trailer_magic.data(), 8) != 0) {
    return std::nullopt;
  }
  auto check = trailer_check(bytes.first(120));
  if (std::memcmp(check.data(), bytes.data() + 120, 8) != 0) {
    return fail_verification("the trailer (last {} bytes) is corrupt: its check value does not match", k_trailer_size);
  }
  Trailer trailer;
  trailer.format_version = static_cast<std::uint32_t>(get_le(bytes.data() + 8, 4));
  auto size = get_le(bytes.data() + 12, 4);
  if (trailer.format_version != 1 || size != k_trailer_size) {
    return fail_verification("trailer format {} (size {}) is not supported; this program reads format 1",
                             trailer.format_version, size);
  }
  trailer.payload_offset = get_le(bytes.data() + 16, 8);
  trailer.payload_length = get_le(bytes.data() + 24, 8);
  std::memcpy(trailer.payload_sha256.data(), bytes.data() + 32, 32);
  std::memcpy(trailer.bundle_digest.data(), bytes.data() + 64, 32);
  if (file_size < k_trailer_size || trailer.payload_offset > file_size ||
      trailer.payload_length != file_size - k_trailer_size - trailer.payload_offset) {
    return fail_verification("the trailer says the payload is {} bytes at offset {}, but the file is {} bytes: "
                             "the file was truncated or extended after packing",
                             trailer.payload_length, trailer.payload_offset, file_size);
  }
  return trailer;
}

std::optional<std::uint64_t> elf_image_end(int fd) {
  Elf64_Ehdr header{};
  if (!pread_exact(fd, std::as_writable_bytes(std::span(&header, 1)), 0) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    return std::nullopt;
  }
  std::uint64_t end =
      std::max<std::uint64_t>(sizeof header, header.e_shoff + std::uint64_t{header.e_shnum} * header.e_shentsize);
  end = std::max<std::uint64_t>(end, header.e_phoff + std::uint64_t{header.e_phnum} * header.e_phentsize);
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr segment{};
    if (!pread_exact(fd, std::as_writable_bytes(std::span(&segment, 1)),
                     header.e_phoff + std::uint64_t{i} * header.e_phentsize)) {
      return std::nullopt;
    }
    end = std::max<std::uint64_t>(end, segment.p_offset + segment.p_filesz);
  }
  return end;
}

std::optional<std::uint16_t> elf_machine(std::span<const std::byte> head) {
  // e_ident (16 bytes) then e_type and e_machine: the same offsets in 32- and 64-bit ELF.
  if (head.size() < EI_NIDENT + 4 || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0) {
    return std::nullopt;
  }
  bool little = static_cast<unsigned char>(head[EI_DATA]) == ELFDATA2LSB;
  auto low = static_cast<std::uint16_t>(head[EI_NIDENT + 2]);
  auto high = static_cast<std::uint16_t>(head[EI_NIDENT + 3]);
  return little ? static_cast<std::uint16_t>(low | high << 8) : static_cast<std::uint16_t>(high | low << 8);
}

std::optional<std::uint16_t> elf_machine(int fd) {
  std::array<std::byte, EI_NIDENT + 4> head{};
  if (!pread_exact(fd, head, 0)) {
    return std::nullopt;
  }
  return elf_machine(std::span<const std::byte>(head));
}

namespace {

Result<PayloadLocation> locate_payload(int fd, std::uint64_t size, const std::filesystem::path& path) {
  if (size >= k_trailer_size) {
    std::array<std::byte, k_trailer_size> tail{};
    if (auto status = pread_exact(fd, tail, size - k_trailer_size); !status) {
      return std::unexpected(status.error());
    }
    auto trailer = decode_trailer(tail, size);
    if (!trailer) {
      return std::unexpected(trailer.error());
    }
    if (*trailer) {
      return PayloadLocation{(*trailer)->payload_offset, (*trailer)->payload_length, **trailer};
    }
  }
  if (auto elf_end = elf_image_end(fd)) {
    if (*elf_end >= size) {
      return fail_verification("this install has no bundle attached: {} ends where its ELF image ends ({} bytes); "
                               "a `strip` or `objcopy` after packing removes the payload. Pass --bundle FILE, or put "
                               "kubexm-dist-*.tar.zst beside it",
                               path.string(), size);
    }
    return fail_verification("this install has no bundle attached: {} has {} bytes after its ELF image but no "
                             "kubexm trailer: the file was cut short or damaged in copying. Copy it again and "
                             "compare it with the SHA256SUMS written beside it",
                             path.string(), size - *elf_end);
  }
  std::array<std::byte, 4> head{};
  if (size < head.size() || !pread_exact(fd, head, 0) || std::memcmp(head.data(), k_zstd_magic.data(), 4) != 0) {
    return fail_verification("{} is not a kubexm-dist archive (no zstd magic at offset 0) nor a self-extracting "
                             "install",
                             path.string());
  }
  return PayloadLocation{0, size, std::nullopt};
}

} // namespace

Result<BundleFile> open_bundle_file(const std::filesystem::path& path) {
  auto fd = open_read(path);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  auto size = file_size(fd->get());
  if (!size) {
    return add_context(size.error(), path.string());
  }
  auto payload = locate_payload(fd->get(), *size, path);
  if (!payload) {
    return std::unexpected(payload.error());
  }
  return BundleFile{path, std::move(*fd), *payload};
}

} // namespace kubexm
