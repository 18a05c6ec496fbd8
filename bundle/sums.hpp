#pragma once

#include "bundle/error.hpp"
#include "bundle/sha256.hpp"

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// One line of SHA256SUMS.
struct SumEntry {
  std::string path;
  Digest digest;
};

// SHA256SUMS in the format of GNU coreutils' sha256sum, so that `sha256sum -c SHA256SUMS`
// run by hand inside an extracted bundle checks every file:
//   sums  = *line
//   line  = 64HEXDIG SP ( SP / "*" ) path LF      ; "*" is sha256sum's binary-mode marker
//   path  = see check_member_path()
// Escaped names (lines starting with "\") are never written and rejected on read; each
// path appears once. `what` names the file in errors.
Result<std::vector<SumEntry>> parse_sums(std::string_view text, std::string_view what);

// The same grammar, streamed: calls `visit` for each line in order, without keeping them.
// Duplicates are the caller's to detect.
Status for_each_sum(std::string_view text, std::string_view what,
                    const std::function<Status(std::string_view path, const Digest& digest)>& visit);

// Formats entries in the given order, two spaces between digest and path.
std::string format_sums(std::span<const SumEntry> entries);

} // namespace kubexm
