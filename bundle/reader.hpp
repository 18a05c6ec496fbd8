#pragma once

#include "bundle/bundle_info.hpp"
#include "bundle/error.hpp"
#include "bundle/index.hpp"
#include "bundle/progress.hpp"
#include "bundle/sums.hpp"
#include "bundle/trailer.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kubexm {

// The names of the three metadata members, which open every payload in this order.
inline constexpr std::string_view k_sums_name = "SHA256SUMS";
inline constexpr std::string_view k_info_name = "bundle.yaml";
inline constexpr std::string_view k_index_name = "bundle.index";

// The verified metadata at the start of a bundle.
struct BundleHeader {
  std::string sums_text;
  std::string info_text;
  BundleInfo info;
  std::string index_text;
  std::vector<IndexEntry> index;
  std::vector<Digest> digests; // from SHA256SUMS, parallel to index; zero for directories
  Digest digest{};             // the bundle's aggregate digest: SHA-256 of SHA256SUMS
  std::uint64_t file_bytes = 0;
  std::size_t file_count = 0;
  std::size_t directory_count = 0;
};

// Receives the members of a bundle as they are read. Every call comes after the checks
// that can be made at that point; end_file() only after the content matched its digest.
class EntrySink {
public:
  virtual ~EntrySink() = default;
  virtual Status directory(const IndexEntry& entry) = 0;
  virtual Status begin_file(const IndexEntry& entry) = 0;
  virtual Status file_data(std::span<const std::byte> bytes) = 0;
  virtual Status end_file() = 0;
  // Called once after the last member; returns the first failure of asynchronous work.
  virtual Status flush() { return {}; }
};

// Whether the reader hashes the whole payload for the trailer's payload_sha256.
enum class PayloadCheck { trailer, members_only };

// Reads a bundle payload (zstd-compressed tar) in one pass, verifying as it goes:
// the metadata first (read_header), then every member against bundle.index and
// SHA256SUMS (read_members), then the payload digest against the trailer (finish).
// Any failure is ErrorKind::verification and names the member.
class BundleReader {
public:
  // Opens a bundle file (archive or self-extracting install). `progress` (may be null)
  // shows a phase named `label` over the payload's bytes, for the reader's lifetime.
  // With PayloadCheck::trailer, the payload's SHA-256 is computed and checked against the
  // trailer by finish(); extraction skips it because every member is checked against
  // SHA256SUMS, and SHA256SUMS against the trailer's bundle digest, which covers all that
  // is extracted (it saves a second SHA-256 pass over the payload).
  static Result<std::unique_ptr<BundleReader>> open(const std::filesystem::path& path, Progress* progress,
                                                    std::string_view label, PayloadCheck check);
  ~BundleReader();
  BundleReader(const BundleReader&) = delete;
  BundleReader& operator=(const BundleReader&) = delete;

  // Reads and verifies SHA256SUMS, bundle.yaml and bundle.index. Call once, first; the
  // header lives as long as the reader.
  Result<const BundleHeader*> read_header();

  // Reads every other member, verifies it and hands it to `sink`.
  Status read_members(EntrySink& sink);

  // Reads what is left of the payload and checks its SHA-256 against the trailer.
  Status finish();

  // Hands the header over (after the last use of the reader): large bundles have large
  // headers, and nothing copies them.
  BundleHeader release_header();

  const BundleFile& file() const { return m_file; }

private:
  struct Impl;
  BundleReader(BundleFile file, Progress* progress, std::string_view label, PayloadCheck check);

  BundleFile m_file;
  std::unique_ptr<ProgressPhase> m_phase; // before m_impl: ends after the reading stops
  std::unique_ptr<Impl> m_impl;
};

// Reads the metadata only: what `list` and `info` show without reading the whole payload.
Result<BundleHeader> read_bundle_header(const std::filesystem::path& path);

// Verifies a whole bundle without writing anything.
Result<BundleHeader> verify_bundle(const std::filesystem::path& path, Progress* progress);

// Verifies a whole bundle as verify_bundle does and returns the content of one regular file
// member (a small one: it is held in memory), e.g. a node's node.yaml for a dry run.
Result<std::string> verify_and_read_member(const std::filesystem::path& path, std::string_view member,
                                           Progress* progress);

} // namespace kubexm
