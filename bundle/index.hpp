#pragma once

#include "bundle/error.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// What an index entry is. Bundles carry directories and regular files only: no links,
// devices or fifos, so nothing in a bundle can point outside the directory it lands in.
enum class EntryKind { directory, file };

// One entry of bundle.index.
struct IndexEntry {
  EntryKind kind;
  unsigned mode;      // permission bits only; see allowed_mode()
  std::uint64_t size; // 0 for directories
  std::string path;
};

// The first line of every bundle.index.
inline constexpr std::string_view k_index_magic = "kubexm-index";
inline constexpr int k_index_version = 1;

// bundle.index lists every member after the three metadata files, in archive order:
//   index   = "kubexm-index" SP version LF *entry
//   version = "1"
//   entry   = kind SP mode SP size SP path LF
//   kind    = "d" / "f"
//   mode    = 4OCTDIGIT                 ; d: 0755 or 0700, f: 0644, 0755, 0600 or 0700
//   size    = 1*DIGIT                   ; bytes, no leading zeros, 0 for directories
//   path    = see check_member_path()
// Paths are unique and sorted bytewise; every parent directory of an entry is listed
// before it. The sizes let the installer check free space before writing anything.
Result<std::vector<IndexEntry>> parse_index(std::string_view text);

// Formats entries in the given order.
std::string format_index(std::span<const IndexEntry> entries);

// Whether `mode` is one of the permission sets a bundle may carry for `kind`.
bool allowed_mode(EntryKind kind, unsigned mode);

// The mode a bundle gives a file found on disk with mode `disk_mode`: executable or not,
// private (no read bit for others, e.g. a key) or not. Setuid and friends never survive.
unsigned normalized_mode(EntryKind kind, unsigned disk_mode);

} // namespace kubexm
