#include "bundle/sums.hpp"

#include "bundle/path_safety.hpp"

#include <unordered_set>

namespace kubexm {

namespace {

Result<SumEntry> parse_sum_line(std::string_view line) {
  if (line.starts_with('\\')) {
    return fail("escaped file names are not supported");
  }
  if (line.size() < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*')) {
    return fail("expected '<64 hex digits>  <path>'");
  }
  auto digest = digest_from_hex(line.substr(0, 64));
  if (!digest) {
    return fail("'{}' is not a SHA-256 digest", line.substr(0, 64));
  }
  auto path = check_member_path(line.substr(66));
  if (!path) {
    return fail("unsafe path '{}': {}", line.substr(66), path.error().message());
  }
  return SumEntry{std::move(*path), *digest};
}

} // namespace

Status for_each_sum(std::string_view text, std::string_view what,
                    const std::function<Status(std::string_view path, const Digest& digest)>& visit) {
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    auto end = text.find('\n');
    if (end == std::string_view::npos) {
      return fail_verification("{}: line {}: missing final newline", what, line_number);
    }
    auto entry = parse_sum_line(text.substr(0, end));
    if (!entry) {
      return fail_verification("{}: line {}: {}", what, line_number, entry.error().message());
    }
    if (auto status = visit(entry->path, entry->digest); !status) {
      return status;
    }
    text.remove_prefix(end + 1);
  }
  return {};
}

Result<std::vector<SumEntry>> parse_sums(std::string_view text, std::string_view what) {
  std::vector<SumEntry> entries;
  std::unordered_set<std::string> seen;
  auto status = for_each_sum(text, what, [&](std::string_view path, const Digest& digest) -> Status {
    if (!seen.emplace(path).second) {
      return fail_verification("{}: '{}' is listed twice", what, path);
    }
    entries.push_back({std::string(path), digest});
    return {};
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return entries;
}

std::string format_sums(std::span<const SumEntry> entries) {
  std::string text;
  for (const auto& entry : entries) {
    text += to_hex(entry.digest);
    text += "  ";
    text += entry.path;
    text += '\n';
  }
  return text;
}

} // namespace kubexm
