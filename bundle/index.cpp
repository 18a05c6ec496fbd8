#include "bundle/index.hpp"

#include "bundle/path_safety.hpp"

#include <charconv>
#include <set>

namespace kubexm {

bool allowed_mode(EntryKind kind, unsigned mode) {
  if (kind == EntryKind::directory) {
    return mode == 0755 || mode == 0700;
  }
  return mode == 0644 || mode == 0755 || mode == 0600 || mode == 0700;
}

unsigned normalized_mode(EntryKind kind, unsigned disk_mode) {
  bool executable = kind == EntryKind::directory || (disk_mode & 0111) != 0;
  bool is_private = (disk_mode & 0004) == 0;
  unsigned mode = executable ? 0755 : 0644;
  return is_private ? (mode & 0700) : mode;
}

namespace {

std::string_view next_field(std::string_view& line) {
  auto space = line.find(' ');
  auto field = line.substr(0, space);
  line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
  return field;
}

Result<std::uint64_t> parse_number(std::string_view field, int base) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value, base);
  bool leading_zero = base == 10 && field.size() > 1 && field.front() == '0';
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() || leading_zero) {
    return fail("'{}' is not a number", field);
  }
  return value;
}

Result<IndexEntry> parse_entry(std::string_view line) {
  auto kind_field = next_field(line);
  auto mode_field = next_field(line);
  auto size_field = next_field(line);
  if (kind_field != "d" && kind_field != "f") {
    return fail("kind '{}' is neither 'd' nor 'f'", kind_field);
  }
  EntryKind kind = kind_field == "d" ? EntryKind::directory : EntryKind::file;
  auto mode = parse_number(mode_field, 8);
  if (!mode || mode_field.size() != 4 || !allowed_mode(kind, static_cast<unsigned>(*mode))) {
    return fail("mode '{}' is not allowed for a {}", mode_field, kind_field == "d" ? "directory" : "file");
  }
  auto size = parse_number(size_field, 10);
  if (!size) {
    return std::unexpected(size.error());
  }
  if (kind == EntryKind::directory && *size != 0) {
    return fail("a directory with size {}", *size);
  }
  auto path = check_member_path(line);
  if (!path) {
    return fail("unsafe path '{}': {}", line, path.error().message());
  }
  return IndexEntry{kind, static_cast<unsigned>(*mode), *size, std::move(*path)};
}

Status check_order(const std::vector<IndexEntry>& entries) {
  std::set<std::string_view> directories;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& path = entries[i].path;
    if (i > 0 && !(entries[i - 1].path < path)) {
      return fail("'{}' is out of order or listed twice", path);
    }
    auto slash = path.rfind('/');
    if (slash != std::string::npos && !directories.contains(std::string_view(path).substr(0, slash))) {
      return fail("'{}' comes before its directory", path);
    }
    if (entries[i].kind == EntryKind::directory) {
      directories.insert(path);
    }
  }
  return {};
}

} // namespace

Result<std::vector<IndexEntry>> parse_index(std::string_view text) {
  auto header = fmt::format("{} {}\n", k_index_magic, k_index_version);
  if (!text.starts_with(header)) {
    auto first_line = text.substr(0, text.find('\n'));
    if (first_line.starts_with(k_index_magic)) {
      return fail_verification("bundle.index: version '{}' is not supported (this program reads {})",
                               first_line.substr(k_index_magic.size()), k_index_version);
    }
    return fail_verification("bundle.index: does not start with '{} {}'", k_index_magic, k_index_version);
  }
  text.remove_prefix(header.size());
  std::vector<IndexEntry> entries;
  std::size_t line_number = 1;
  while (!text.empty()) {
    ++line_number;
    auto end = text.find('\n');
    if (end == std::string_view::npos) {
      return fail_verification("bundle.index: line {}: missing final newline", line_number);
    }
    auto entry = parse_entry(text.substr(0, end));
    if (!entry) {
      return fail_verification("bundle.index: line {}: {}", line_number, entry.error().message());
    }
    entries.push_back(std::move(*entry));
    text.remove_prefix(end + 1);
  }
  if (auto status = check_order(entries); !status) {
    return fail_verification("bundle.index: {}", status.error().message());
  }
  return entries;
}

std::string format_index(std::span<const IndexEntry> entries) {
  std::string text = fmt::format("{} {}\n", k_index_magic, k_index_version);
  for (const auto& entry : entries) {
    text += fmt::format("{} {:04o} {} {}\n", entry.kind == EntryKind::directory ? 'd' : 'f', entry.mode, entry.size,
                        entry.path);
  }
  return text;
}

} // namespace kubexm
