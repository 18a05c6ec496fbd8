#pragma once

#include <cstdint>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace kubexm {

// Reads the fields of one JSON object, collecting what is wrong with it.
class Fields {
public:
  Fields(const nlohmann::json& object, std::string where, std::vector<std::string>& problems)
      : m_object(object), m_where(std::move(where)), m_problems(problems) {
    if (!object.is_object()) {
      m_problems.push_back(fmt::format("{}: expected an object", m_where));
    }
  }
  std::string text(const char* key, const std::regex& pattern = std::regex(".*")) {
    if (!m_object.is_object() || !m_object.contains(key) || !m_object[key].is_string() ||
        !std::regex_match(m_object[key].get<std::string>(), pattern)) {
      m_problems.push_back(fmt::format("{}: '{}' is missing or malformed", m_where, key));
      return {};
    }
    return m_object[key].get<std::string>();
  }
  std::uint64_t number(const char* key) {
    if (!m_object.is_object() || !m_object.contains(key) || !m_object[key].is_number_unsigned()) {
      m_problems.push_back(fmt::format("{}: '{}' is missing or not a size", m_where, key));
      return 0;
    }
    return m_object[key].get<std::uint64_t>();
  }
  std::vector<std::string> list(const char* key) {
    std::vector<std::string> values;
    if (!m_object.is_object() || !m_object.contains(key) || !m_object[key].is_array()) {
      m_problems.push_back(fmt::format("{}: '{}' is missing or not a list", m_where, key));
      return values;
    }
    for (const auto& item : m_object[key]) {
      if (item.is_string()) {
        values.push_back(item.get<std::string>());
      }
    }
    return values;
  }
  const nlohmann::json& at(const char* key) const {
    static const nlohmann::json null;
    return m_object.is_object() && m_object.contains(key) ? m_object[key] : null;
  }

private:
  nlohmann::json m_object; // a copy: callers pass temporaries
  std::string m_where;
  std::vector<std::string>& m_problems;
};

} // namespace kubexm
