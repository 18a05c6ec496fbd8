#pragma once

#include "bundle/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kubexm {

// A SHA-256 digest; the only hash kubexm uses.
using Digest = std::array<std::uint8_t, 32>;

// Incremental SHA-256 over OpenSSL's EVP interface (SHA-NI where the CPU has it).
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;

  // Feeds bytes into the hash.
  void update(std::span<const std::byte> bytes);
  void update(std::string_view text);

  // Returns the digest; the object starts a new hash afterwards.
  Digest finish();

private:
  void* m_context; // EVP_MD_CTX, kept opaque so OpenSSL headers stay out of ours
};

// Lower-case hex, as sha256sum prints it.
std::string to_hex(const Digest& digest);

// Parses 64 hex digits (either case); nullopt for anything else.
std::optional<Digest> digest_from_hex(std::string_view hex);

// Digest of a byte string.
Digest sha256_of(std::string_view bytes);

// Digest and size of a whole file.
struct FileDigest {
  Digest digest;
  std::uint64_t size;
};
Result<FileDigest> sha256_file(const std::filesystem::path& path);

} // namespace kubexm
