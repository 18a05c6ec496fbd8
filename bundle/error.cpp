#include "bundle/error.hpp"

#include <cstring>

namespace kubexm {

std::string errno_text(int error_number) {
  char buffer[256];
  // GNU strerror_r returns a pointer that may or may not be the buffer.
  return strerror_r(error_number, buffer, sizeof buffer);
}

} // namespace kubexm
