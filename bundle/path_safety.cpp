#include "bundle/path_safety.hpp"

namespace kubexm {

namespace {

constexpr std::size_t k_max_path = 4096;
constexpr std::size_t k_max_component = 255;

// Control characters and backslashes would need escaping in SHA256SUMS and make names
// that print ambiguously in errors; bundles never need them.
bool is_forbidden_char(unsigned char c) {
  return c < 0x20 || c == 0x7f || c == '\\';
}

Status check_component(std::string_view component) {
  if (component.empty()) {
    return fail("empty path component (\"//\")");
  }
  if (component == "." || component == "..") {
    return fail("'{}' component", component);
  }
  if (component.size() > k_max_component) {
    return fail("component longer than {} bytes", k_max_component);
  }
  for (char c : component) {
    if (is_forbidden_char(static_cast<unsigned char>(c))) {
      return fail("control character or backslash in name");
    }
  }
  return {};
}

} // namespace

Result<std::string> check_member_path(std::string_view path) {
  if (path.empty()) {
    return fail("empty path");
  }
  if (path.front() == '/') {
    return fail("absolute path");
  }
  if (path.size() > k_max_path) {
    return fail("path longer than {} bytes", k_max_path);
  }
  std::string_view rest = path;
  if (rest.back() == '/') {
    rest.remove_suffix(1);
  }
  std::string_view remaining = rest;
  while (true) {
    auto slash = remaining.find('/');
    if (auto status = check_component(remaining.substr(0, slash)); !status) {
      return std::unexpected(status.error());
    }
    if (slash == std::string_view::npos) {
      break;
    }
    remaining.remove_prefix(slash + 1);
  }
  return std::string(rest);
}

} // namespace kubexm
