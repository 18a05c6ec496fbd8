#pragma once

#include "bundle/bundle_info.hpp"
#include "bundle/error.hpp"
#include "bundle/progress.hpp"
#include "bundle/sha256.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kubexm {

struct PackOptions {
  std::filesystem::path dist_dir;                // a laid-out kubexm-dist tree with bundle.yaml at its root
  std::filesystem::path out_dir;                 // created if missing
  std::filesystem::path installer_stub;          // the static `install` executable to prepend
  std::optional<std::int64_t> source_date_epoch; // overrides bundle.yaml and the tree's mtimes
  std::string created_by;                        // "kubexm-builder 0.1.0"
  unsigned threads = 0;                          // zstd workers; 0 = one per core
  int level = 3;                                 // zstd level
  Progress* progress = nullptr;
};

struct PackResult {
  std::filesystem::path archive;   // OUTDIR/kubexm-dist-<name>-<version>.tar.zst
  std::filesystem::path installer; // OUTDIR/install
  std::filesystem::path sums;      // OUTDIR/SHA256SUMS, for the two above
  BundleInfo info;
  Digest bundle_digest{};  // SHA-256 of the bundle's SHA256SUMS
  Digest archive_digest{}; // SHA-256 of the .tar.zst (= the payload)
  Digest installer_digest{};
  std::uint64_t archive_size = 0;
  std::uint64_t installer_size = 0;
  std::size_t file_count = 0;
  std::uint64_t file_bytes = 0;
  std::vector<std::string> notes; // things the user should know, e.g. ignored files
};

// Packs a kubexm-dist tree into a deterministic archive and a self-extracting installer:
// members sorted, one mtime, uid/gid 0, modes normalised per kind, metadata first. Packing
// the same tree with the same options twice gives byte-identical outputs.
Result<PackResult> pack_bundle(const PackOptions& options);

} // namespace kubexm
