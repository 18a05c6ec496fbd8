#include "bundle/sha256.hpp"

#include "bundle/fs.hpp"

#include <openssl/evp.h>

namespace kubexm {

namespace {
EVP_MD_CTX* ctx(void* p) {
  return static_cast<EVP_MD_CTX*>(p);
}

void start(void* context) {
  EVP_DigestInit_ex(ctx(context), EVP_sha256(), nullptr);
}
} // namespace

Sha256::Sha256() : m_context(EVP_MD_CTX_new()) {
  start(m_context);
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx(m_context));
}

Sha256::Sha256(Sha256&& other) noexcept : m_context(other.m_context) {
  other.m_context = nullptr;
}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  std::swap(m_context, other.m_context);
  return *this;
}

void Sha256::update(std::span<const std::byte> bytes) {
  EVP_DigestUpdate(ctx(m_context), bytes.data(), bytes.size());
}

void Sha256::update(std::string_view text) {
  EVP_DigestUpdate(ctx(m_context), text.data(), text.size());
}

Digest Sha256::finish() {
  Digest digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx(m_context), digest.data(), &length);
  start(m_context);
  return digest;
}

std::string to_hex(const Digest& digest) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(digest.size() * 2);
  for (std::uint8_t byte : digest) {
    hex.push_back(k_digits[byte >> 4]);
    hex.push_back(k_digits[byte & 0xf]);
  }
  return hex;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}
} // namespace

std::optional<Digest> digest_from_hex(std::string_view hex) {
  Digest digest{};
  if (hex.size() != digest.size() * 2) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < digest.size(); ++i) {
    int high = hex_value(hex[2 * i]);
    int low = hex_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    digest[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return digest;
}

Digest sha256_of(std::string_view bytes) {
  Sha256 hash;
  hash.update(bytes);
  return hash.finish();
}

Result<FileDigest> sha256_file(const std::filesystem::path& path) {
  auto fd = open_read(path);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  Sha256 hash;
  std::uint64_t size = 0;
  auto status = read_chunks(fd->get(), [&](std::span<const std::byte> chunk) {
    hash.update(chunk);
    size += chunk.size();
  });
  if (!status) {
    return add_context(status.error(), path.string());
  }
  return FileDigest{hash.finish(), size};
}

} // namespace kubexm
