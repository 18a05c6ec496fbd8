#pragma once

#include "bundle/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// What /etc/os-release says about a host (os-release(5)): the fields kubexm uses to pick
// the OS profile it installs packages for.
struct OsRelease {
  std::string id;                   // "rocky", "ubuntu", "kylin"
  std::vector<std::string> id_like; // "rhel centos fedora" split on spaces
  std::string version_id;           // "9.3", "22.04", "V10"
  std::string pretty_name;          // for messages
};

// Parses os-release text: KEY=VALUE lines, values bare or in single or double quotes
// (double quotes take backslash escapes), comments and blank lines ignored. A line that is
// none of these is an error naming it; a missing ID defaults to "linux", as the spec says.
Result<OsRelease> parse_os_release(std::string_view text, std::string_view what);

} // namespace kubexm
