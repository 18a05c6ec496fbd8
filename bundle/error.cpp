#include "bundle/error.hpp"

#include <cstring>
#include <fmt/ranges.h>

namespace kubexm {

std::expected<void, Error> join_errors(const std::vector<Error>& errors) {
  if (errors.empty()) {
    return {};
  }
  auto kind = errors.front().kind();
  std::vector<std::string> lines;
  for (const auto& error : errors) {
    if (error.kind() == ErrorKind::interrupted) {
      return std::unexpected(error);
    }
    if (error.kind() == ErrorKind::verification) {
      kind = ErrorKind::verification;
    }
    lines.push_back(error.message());
  }
  return std::unexpected(Error(kind, fmt::format("{}", fmt::join(lines, "\n"))));
}

std::string errno_text(int error_number) {
  char buffer[256];
  // GNU strerror_r returns a pointer that may or may not be the buffer.
  return strerror_r(error_number, buffer, sizeof buffer);
}

} // namespace kubexm
