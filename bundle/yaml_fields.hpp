#pragma once

#include "bundle/problems.hpp"

#include <filesystem>
#include <initializer_list>
#include <regex>
#include <string>
#include <string_view>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kubexm {

// Field readers shared by bundle.yaml and the builder's manifests, so both report the same
// mistakes the same way.

// Whether a list may be given empty.
enum class Empty { refused, allowed };

// The list of distinct scalars matching `pattern` under `key` (non-empty unless allowed);
// every bad item is a problem.
std::vector<std::string> read_list(const YAML::Node& root, const char* key, const std::regex& pattern,
                                   std::string_view expected, Problems& problems, Empty empty = Empty::refused);

using Keys = std::initializer_list<const char*>;

// A YAML file whose root is a mapping, read for its problems: null when it could not be
// read or parsed (the problem says why and where).
YAML::Node load_yaml(const std::filesystem::path& path, Problems& problems);

// The key of a mapping item as text ("" when it is not a scalar).
std::string key_of(const YAML::const_iterator::value_type& item);

// Every key of `node` that is not in `allowed` is a problem; `where` prefixes the message.
void check_keys(const YAML::Node& node, Keys allowed, std::string_view where, Problems& problems);

// " (write '1.2.3', without the v)" for "v1.2.3", else "".
std::string version_hint(std::string_view value);

// A scalar under `key` matching `pattern`; empty (and a problem) otherwise.
enum class Required { yes, no };
std::string read_scalar(const YAML::Node& node, const char* key, const std::regex& pattern, std::string_view expected,
                        Problems& problems, Required required = Required::yes);

// `text` with every {name} replaced by `value`.
std::string expand(std::string text, std::string_view name, std::string_view value);

// " (kubexm calls it amd64)" for the other names of kubexm's arches, else "".
std::string arch_hint(std::string_view value);

} // namespace kubexm
