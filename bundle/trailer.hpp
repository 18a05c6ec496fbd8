#pragma once

#include "bundle/error.hpp"
#include "bundle/fs.hpp"
#include "bundle/sha256.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>

namespace kubexm {

// The last 128 bytes of a self-extracting installer; all integers little-endian:
//   offset size field
//        0    8 magic            "KXMDIST\x01"
//        8    4 format_version   1 (the trailer layout)
//       12    4 trailer_size     128
//       16    8 payload_offset   where the zstd tar payload starts (the stub's size)
//       24    8 payload_length   bytes of payload; offset + length + 128 == file size
//       32   32 payload_sha256   SHA-256 of the payload bytes
//       64   32 bundle_digest    SHA-256 of the payload's SHA256SUMS (the bundle's digest)
//       96   24 reserved         zero
//      120    8 check            first 8 bytes of SHA-256 of bytes 0..119
// The file is: stub (a static ELF executable) | payload | trailer.
struct Trailer {
  std::uint32_t format_version = 1;
  std::uint64_t payload_offset = 0;
  std::uint64_t payload_length = 0;
  Digest payload_sha256{};
  Digest bundle_digest{};
};

inline constexpr std::size_t k_trailer_size = 128;
inline constexpr std::array<std::uint8_t, 8> k_trailer_magic{'K', 'X', 'M', 'D', 'I', 'S', 'T', 0x01};

// Serialises a trailer.
std::array<std::byte, k_trailer_size> encode_trailer(const Trailer& trailer);

// Parses the last bytes of a file of `file_size` bytes. nullopt when there is no trailer
// magic; an error when the magic is there but the rest is corrupt or does not fit the file.
Result<std::optional<Trailer>> decode_trailer(std::span<const std::byte, k_trailer_size> bytes,
                                              std::uint64_t file_size);

// Where the zstd tar payload of a bundle file is: a plain kubexm-dist-*.tar.zst, or a
// self-extracting installer.
struct PayloadLocation {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::optional<Trailer> trailer; // set for a self-extracting installer
};

// An open bundle file and its payload.
struct BundleFile {
  std::filesystem::path path;
  UniqueFd fd;
  PayloadLocation payload;
};

// Opens an archive or self-extracting installer and finds its payload. An ELF file without
// a trailer is an error that explains a stripped or unattached installer.
Result<BundleFile> open_bundle_file(const std::filesystem::path& path);

// The end of the ELF image in an ELF file (the furthest of its headers, sections and
// segments), or nullopt when the bytes are not a 64-bit little-endian ELF file.
std::optional<std::uint64_t> elf_image_end(int fd);

// The ELF machine (e_machine) of a file, or nullopt when it is not ELF.
std::optional<std::uint16_t> elf_machine(int fd);
// The same for the first bytes of a file (at least 20 are needed).
std::optional<std::uint16_t> elf_machine(std::span<const std::byte> head);

} // namespace kubexm
