#include "bundle/package_set.hpp"

#include "bundle/json_fields.hpp"

#include <algorithm>
#include <fmt/ranges.h>

namespace kubexm {

namespace {

const std::regex k_hex("[0-9a-f]{64}");
// A file name in a package directory: no directories, nothing hidden.
const std::regex k_file("[A-Za-z0-9][A-Za-z0-9._+~%:-]*");

nlohmann::json reliance_json(const BaseReliance& r) {
  return {{"name", r.name}, {"evr", r.evr}, {"needed_by", r.needed_by}, {"requires", r.requirement}};
}

void read_roles(const nlohmann::json& roles, PackageSet& set, const std::string& where,
                std::vector<std::string>& problems) {
  if (!roles.is_object()) {
    problems.push_back(fmt::format("{}: 'roles' is missing", where));
    return;
  }
  for (const auto& [role, value] : roles.items()) {
    Fields fields(value, fmt::format("{} role {}", where, role), problems);
    RolePackages packages;
    packages.requested = fields.list("requested");
    packages.install = fields.list("install");
    for (const auto& file : packages.install) {
      if (set.find_file(file) == nullptr) {
        problems.push_back(fmt::format("{} role {}: '{}' is not one of the set's packages", where, role, file));
      }
    }
    const auto& relies = fields.at("relies_on");
    for (std::size_t i = 0; relies.is_array() && i < relies.size(); ++i) {
      Fields r(relies[i], fmt::format("{} role {} relies_on {}", where, role, i + 1), problems);
      packages.relies_on.push_back({r.text("name"), r.text("evr"), r.text("needed_by"), r.text("requires")});
    }
    set.roles[role] = std::move(packages);
  }
}

} // namespace

std::string PackageSet::dir() const {
  return fmt::format("packages/{}/{}/{}", os, version, arch);
}

std::string PackageSet::label() const {
  return fmt::format("{} {}", profile, arch);
}

const PackageRecord* PackageSet::find_file(std::string_view file) const {
  auto found = std::ranges::find(packages, file, &PackageRecord::file);
  return found == packages.end() ? nullptr : &*found;
}

nlohmann::json package_set_json(const PackageSet& set) {
  nlohmann::json metadata = nlohmann::json::array();
  for (const auto& m : set.metadata) {
    metadata.push_back(
        {{"repository", m.repository}, {"kind", m.kind}, {"url", m.url}, {"sha256", m.sha256}, {"size", m.size}});
  }
  nlohmann::json packages = nlohmann::json::array();
  for (const auto& p : set.packages) {
    packages.push_back({{"name", p.name},
                        {"evr", p.evr},
                        {"arch", p.arch},
                        {"repository", p.repository},
                        {"url", p.url},
                        {"file", p.file},
                        {"size", p.size},
                        {"sha256", p.sha256}});
    if (!p.newest.empty()) {
      packages.back()["older"] = {{"newest", p.newest}, {"why", p.why_older}};
    }
  }
  nlohmann::json roles = nlohmann::json::object();
  for (const auto& [role, r] : set.roles) {
    nlohmann::json relies = nlohmann::json::array();
    for (const auto& reliance : r.relies_on) {
      relies.push_back(reliance_json(reliance));
    }
    roles[role] = {{"requested", r.requested}, {"install", r.install}, {"relies_on", relies}};
  }
  nlohmann::json out = {{"profile", set.profile},
          {"os", set.os},
          {"version", set.version},
          {"arch", set.arch},
          {"distro_arch", set.distro_arch},
          {"format", set.format},
          {"installer", set.installer},
          {"closure", set.closure},
          {"match", {{"id", set.ids}, {"like", set.like}, {"version_id", set.version_id}}},
          {"metadata", metadata},
          {"base", set.base},
          {"packages", packages},
          {"roles", roles}};
  if (!set.base_system.empty()) {
    auto& base = out["base_system"] = nlohmann::json::array();
    for (const auto& p : set.base_system) {
      base.push_back({{"name", p.name}, {"evr", p.evr}, {"arch", p.arch}});
    }
  }
  if (!set.best) {
    out["best"] = false;
  }
  if (!set.pins.empty()) {
    out["pins"] = set.pins;
  }
  return out;
}

Result<PackageSet> parse_package_set(const nlohmann::json& json, std::string_view what) {
  std::vector<std::string> problems;
  std::string where(what);
  Fields fields(json, where, problems);
  PackageSet set;
  set.profile = fields.text("profile");
  // Path components of packages/<os>/<version>: never "." or "..".
  set.os = fields.text("os", std::regex("[A-Za-z0-9][A-Za-z0-9._-]*"));
  set.version = fields.text("version", std::regex("[A-Za-z0-9][A-Za-z0-9._-]*"));
  set.arch = fields.text("arch", std::regex("amd64|arm64"));
  set.distro_arch = fields.text("distro_arch");
  set.format = fields.text("format", std::regex("deb|rpm"));
  set.installer = fields.text("installer");
  set.closure = fields.text("closure", std::regex("minimal|full"));
  Fields match(fields.at("match"), where + " match", problems);
  set.ids = match.list("id");
  set.like = match.list("like");
  set.version_id = match.text("version_id");
  const auto& metadata = fields.at("metadata");
  for (std::size_t i = 0; metadata.is_array() && i < metadata.size(); ++i) {
    Fields m(metadata[i], fmt::format("{} metadata {}", where, i + 1), problems);
    set.metadata.push_back(
        {m.text("repository"), m.text("kind"), m.text("url"), m.text("sha256", k_hex), m.number("size")});
  }
  set.base = fields.list("base");
  const auto& packages = fields.at("packages");
  if (!packages.is_array()) {
    problems.push_back(fmt::format("{}: 'packages' is missing", where));
  }
  for (std::size_t i = 0; packages.is_array() && i < packages.size(); ++i) {
    Fields p(packages[i], fmt::format("{} package {}", where, i + 1), problems);
    set.packages.push_back({p.text("name"), p.text("evr"), p.text("arch"), p.text("repository"), p.text("url"),
                            p.text("file", k_file), p.number("size"), p.text("sha256", k_hex), "", ""});
    if (const auto& older = p.at("older"); older.is_object()) {
      Fields o(older, fmt::format("{} package {} older", where, i + 1), problems);
      set.packages.back().newest = o.text("newest");
      set.packages.back().why_older = o.text("why");
    }
  }
  const auto& base_system = fields.at("base_system");
  for (std::size_t i = 0; base_system.is_array() && i < base_system.size(); ++i) {
    Fields b(base_system[i], fmt::format("{} base_system {}", where, i + 1), problems);
    set.base_system.push_back({b.text("name"), b.text("evr"), b.text("arch")});
  }
  set.best = !fields.at("best").is_boolean() || fields.at("best").get<bool>();
  if (const auto& pins = fields.at("pins"); pins.is_object()) {
    for (const auto& [name, range] : pins.items()) {
      set.pins[name] = range.is_string() ? range.get<std::string>() : std::string();
    }
  }
  read_roles(fields.at("roles"), set, where, problems);
  if (!problems.empty()) {
    return fail("{}", fmt::join(problems, "\n"));
  }
  return set;
}

} // namespace kubexm
