#pragma once

#include "bundle/error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <string>
#include <string_view>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kubexm {

// Collects every problem found in one input file, each with its line, so that a user fixes
// them all in one go instead of one per run.
class Problems {
public:
  explicit Problems(std::string_view what) : m_what(what) {}

  void add(const YAML::Node& node, std::string_view message) {
    if (node.Mark().is_null()) {
      add(message);
      return;
    }
    m_lines.push_back(fmt::format("{}: line {}: {}", m_what, node.Mark().line + 1, message));
  }
  // At a 1-based line kept from an earlier read (0: none).
  void add_at(int line, std::string_view message) {
    if (line <= 0) {
      add(message);
      return;
    }
    m_lines.push_back(fmt::format("{}: line {}: {}", m_what, line, message));
  }
  void add(std::string_view message) {
    m_lines.push_back(m_what.empty() ? std::string(message) : fmt::format("{}: {}", m_what, message));
  }
  void add_exception(const YAML::Exception& e) {
    m_lines.push_back(fmt::format("{}: line {}: {}", m_what, e.mark.line + 1, e.msg));
  }
  // Takes the problems of another file (a manifest and the files it refers to).
  void merge(const Problems& other) { m_lines.insert(m_lines.end(), other.m_lines.begin(), other.m_lines.end()); }

  bool empty() const { return m_lines.empty(); }
  const std::string& what() const { return m_what; }

  // The problems as one error of `kind`, or success when there are none.
  Status status(ErrorKind kind = ErrorKind::verification) const {
    if (m_lines.empty()) {
      return {};
    }
    return std::unexpected(Error(kind, fmt::format("{}", fmt::join(m_lines, "\n"))));
  }

private:
  std::string m_what;
  std::vector<std::string> m_lines;
};

} // namespace kubexm
