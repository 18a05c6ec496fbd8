#pragma once

#include "bundle/problems.hpp"

#include <regex>
#include <string>
#include <string_view>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kubexm {

// Field readers shared by bundle.yaml and the builder's manifests, so both report the same
// mistakes the same way.

// The non-empty list of distinct scalars matching `pattern` under `key`; every bad item is
// a problem.
std::vector<std::string> read_list(const YAML::Node& root, const char* key, const std::regex& pattern,
                                   std::string_view expected, Problems& problems);

// " (kubexm calls it amd64)" for the other names of kubexm's arches, else "".
std::string arch_hint(std::string_view value);

} // namespace kubexm
