#include "bundle/yaml_fields.hpp"

#include <algorithm>

namespace kubexm {

std::vector<std::string> read_list(const YAML::Node& root, const char* key, const std::regex& pattern,
                                   std::string_view expected, Problems& problems) {
  auto node = root[key];
  if (!node || !node.IsSequence() || node.size() == 0) {
    problems.add(node ? node : root, fmt::format("'{}' must be a non-empty list of {}", key, expected));
    return {};
  }
  std::vector<std::string> values;
  for (const auto& item : node) {
    if (!item.IsScalar() || !std::regex_match(item.Scalar(), pattern)) {
      problems.add(item,
                   fmt::format("{}: '{}' is not {}", key, item.IsScalar() ? item.Scalar() : "a scalar", expected));
      continue;
    }
    if (std::ranges::find(values, item.Scalar()) != values.end()) {
      problems.add(item, fmt::format("{}: '{}' is listed twice", key, item.Scalar()));
      continue;
    }
    values.push_back(item.Scalar());
  }
  return values;
}

std::string arch_hint(std::string_view value) {
  if (value == "x86_64" || value == "x86-64" || value == "x64") {
    return " (kubexm calls it amd64)";
  }
  if (value == "aarch64" || value == "arm64v8") {
    return " (kubexm calls it arm64)";
  }
  return "";
}

} // namespace kubexm
