#pragma once

#include "bundle/error.hpp"

#include <string>
#include <string_view>

namespace kubexm {

// Checks that a member name of a bundle is a plain relative path that stays inside the
// directory it is extracted to:
//   path      = component *( "/" component )
//   component = 1*255 byte, not "." or "..", no "/", NUL, "\" or control characters
// and at most 4096 bytes. A trailing "/" (tar's directory marker) is accepted and removed.
// Returns the normalised path, or an error saying what is unsafe about it.
Result<std::string> check_member_path(std::string_view path);

} // namespace kubexm
