#include "bundle/os_release.hpp"

#include <cctype>
#include <optional>

namespace kubexm {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// The value of KEY=VALUE after shell-style unquoting, or nullopt when the quotes do not close.
std::optional<std::string> unquote(std::string_view value) {
  if (value.empty() || (value.front() != '"' && value.front() != '\'')) {
    return std::string(value);
  }
  char quote = value.front();
  if (value.size() < 2 || value.back() != quote) {
    return std::nullopt;
  }
  value = value.substr(1, value.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (quote == '"' && value[i] == '\\' && i + 1 < value.size() &&
        std::string_view("$\"\\`").find(value[i + 1]) != std::string_view::npos) {
      ++i;
    }
    out += value[i];
  }
  return out;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  while (!(text = trim(text)).empty()) {
    auto end = text.find_first_of(" \t");
    out.emplace_back(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end);
  }
  return out;
}

} // namespace

Result<OsRelease> parse_os_release(std::string_view text, std::string_view what) {
  OsRelease release;
  release.id = "linux";
  std::size_t number = 0;
  for (std::size_t begin = 0; begin < text.size();) {
    auto end = text.find('\n', begin);
    auto line = trim(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    begin = end == std::string_view::npos ? text.size() : end + 1;
    ++number;
    if (line.empty() || line.front() == '#') {
      continue;
    }
    auto equals = line.find('=');
    auto value = equals == std::string_view::npos ? std::nullopt : unquote(line.substr(equals + 1));
    if (!value) {
      return fail("{}: line {}: expected KEY=VALUE, found '{}'", what, number, line.substr(0, 80));
    }
    auto key = line.substr(0, equals);
    if (key == "ID") {
      release.id = *value;
    } else if (key == "ID_LIKE") {
      release.id_like = words(*value);
    } else if (key == "VERSION_ID") {
      release.version_id = *value;
    } else if (key == "PRETTY_NAME") {
      release.pretty_name = *value;
    }
  }
  if (release.pretty_name.empty()) {
    release.pretty_name = release.version_id.empty() ? release.id : release.id + " " + release.version_id;
  }
  return release;
}

} // namespace kubexm
