#include "bundle/yaml_fields.hpp"

#include "bundle/fs.hpp"

#include <algorithm>

namespace kubexm {

YAML::Node load_yaml(const std::filesystem::path& path, Problems& problems) {
  auto text = read_text_file(path, 16 << 20);
  if (!text) {
    problems.add(text.error().message());
    return {};
  }
  try {
    auto root = YAML::Load(*text);
    if (!root.IsMap()) {
      problems.add(root, "expected a mapping of keys");
      return {};
    }
    return root;
  } catch (const YAML::Exception& e) {
    problems.add_exception(e);
    return {};
  }
}

std::string key_of(const YAML::const_iterator::value_type& item) {
  return item.first.as<std::string>("");
}

void check_keys(const YAML::Node& node, Keys allowed, std::string_view where, Problems& problems) {
  for (const auto& item : node) {
    auto key = key_of(item);
    if (std::ranges::none_of(allowed, [&](const char* k) { return key == k; })) {
      problems.add(item.first,
                   fmt::format("{}unknown key '{}' (expected one of: {})", where, key, fmt::join(allowed, ", ")));
    }
  }
}

std::string version_hint(std::string_view value) {
  if (!value.empty() && value.front() == 'v') {
    return fmt::format(" (write '{}', without the v)", value.substr(1));
  }
  return "";
}

std::string read_scalar(const YAML::Node& node, const char* key, const std::regex& pattern, std::string_view expected,
                        Problems& problems, Required required) {
  auto value = node[key];
  if (!value) {
    if (required == Required::yes) {
      problems.add(node, fmt::format("'{}' is missing ({})", key, expected));
    }
    return {};
  }
  if (!value.IsScalar() || !std::regex_match(value.Scalar(), pattern)) {
    auto text = value.IsScalar() ? value.Scalar() : std::string("not a scalar");
    problems.add(value, fmt::format("{}: '{}' is not {}{}", key, text, expected, version_hint(text)));
    return {};
  }
  return value.Scalar();
}

std::string expand(std::string text, std::string_view name, std::string_view value) {
  auto placeholder = fmt::format("{{{}}}", name);
  for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at + value.size())) {
    text.replace(at, placeholder.size(), value);
  }
  return text;
}

std::vector<std::string> read_list(const YAML::Node& root, const char* key, const std::regex& pattern,
                                   std::string_view expected, Problems& problems, Empty empty) {
  auto node = root[key];
  if (!node || !node.IsSequence() || (node.size() == 0 && empty == Empty::refused)) {
    problems.add(node ? node : root, fmt::format("'{}' must be a {}list of {}", key,
                                                 empty == Empty::refused ? "non-empty " : "", expected));
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
