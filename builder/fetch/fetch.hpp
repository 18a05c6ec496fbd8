#pragma once

#include "builder/manifest.hpp"
#include "builder/images/registry_options.hpp"
#include "bundle/error.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// The digest an upstream checksum file gives for `file_name`.
Result<std::string> digest_from_checksum_file(std::string_view text, ChecksumFormat format, std::string_view file_name);

// A URL prefix rewrite, "FROM=TO": a site's internal mirror of an upstream.
struct Mirror {
  std::string from;
  std::string to;
};

Result<Mirror> parse_mirror(std::string_view text);

// `url` with the longest matching mirror prefix replaced.
std::string apply_mirrors(const std::vector<Mirror>& mirrors, const std::string& url);

// A content-addressed store of downloads: DIR/sha256/<2 hex>/<64 hex>. A file enters only
// after its digest was checked, so a hit is trusted without reading it again.
class Cache {
public:
  explicit Cache(std::filesystem::path root) : m_root(std::move(root)) {}

  const std::filesystem::path& root() const { return m_root; }
  std::filesystem::path object(std::string_view hex) const;
  // Where an unfinished download is kept between attempts and runs.
  std::filesystem::path partial(std::string_view key) const;
  // The object's size when it is present (with `size` bytes, when given).
  std::optional<std::uint64_t> has(std::string_view hex, std::optional<std::uint64_t> size = std::nullopt) const;
  // Moves a verified partial file into the store.
  Status adopt(const std::filesystem::path& partial, std::string_view hex) const;
  Status prepare() const;

private:
  std::filesystem::path m_root;
};

// $KUBEXM_CACHE, else $XDG_CACHE_HOME/kubexm, else ~/.cache/kubexm.
std::filesystem::path default_cache_dir();

// How downloads behave.
struct FetchOptions {
  unsigned jobs = 4;
  unsigned attempts = 5;      // per file, for errors that may pass (connection, 5xx, cut off)
  double first_backoff = 0.5; // seconds; doubles per attempt, at most 8 s
  std::vector<Mirror> mirrors;
  std::string ca_file; // CA certificates to verify servers with (a site mirror's private CA); empty: the system's
  bool terminal_progress = true; // bars on a terminal; plain lines otherwise
  // Re-hash files found in the cache (resolve and build do, as they read them anyway); a
  // damaged one is removed and downloaded again.
  bool verify_hits = false;
  bool quiet = false;
  RegistryOptions registries; // for container images, which skopeo fetches
};

// One file to bring into the cache.
struct Download {
  std::string url;                   // the upstream URL; mirrors are applied when fetching
  std::string label;                 // "containerd 1.7.24 arm64"
  std::optional<std::string> sha256; // expected digest, when known
  std::optional<std::uint64_t> size; // expected size, when known
  // Without a digest: ask with the validators (ETag, Last-Modified) of the answer cached for
  // this URL, and take the server's 304 Not Modified as that answer again (InRelease,
  // repomd.xml, which say what is current and are asked for every run).
  bool revalidate = false;
};

// What a download brought: its digest and size, and where it is in the cache.
struct Downloaded {
  std::string sha256;
  std::uint64_t size = 0;
  bool from_cache = false;
};

// Downloads every file not yet in the cache, `options.jobs` at a time. A file whose digest is
// not the expected one is never put in the cache. Returns one result per download, in order.
std::vector<Result<Downloaded>> fetch_all(const std::vector<Download>& downloads, const Cache& cache,
                                          const FetchOptions& options);

// Fetches small text files (checksum files) into memory, with the same retries and mirrors.
std::vector<Result<std::string>> fetch_texts(const std::vector<std::string>& urls, const FetchOptions& options);

} // namespace kubexm
