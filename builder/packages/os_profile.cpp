#include "builder/packages/os_profile.hpp"

#include "builder/data_dir.hpp"
#include "bundle/problems.hpp"
#include "bundle/yaml_fields.hpp"

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

const std::regex k_word("[A-Za-z0-9][A-Za-z0-9._+:-]*");
// A path component of packages/<os>/<version>: never "." or "..".
const std::regex k_version_text("[A-Za-z0-9][A-Za-z0-9._-]*");
const std::regex k_glob("[A-Za-z0-9.*?_-]+");
const std::regex k_url("(\\{mirror\\}|https?://)[^ ]*");
const std::regex k_package_name("[A-Za-z0-9][A-Za-z0-9._+-]*");

const std::regex k_pin_bound("\\s*(<=|>=|<|>|=)\\s*([0-9][A-Za-z0-9.+~:_-]*)\\s*");

// A list of scalars matching `pattern`, or nothing when the key is absent.
std::vector<std::string> optional_list(const YAML::Node& node, const char* key, const std::regex& pattern,
                                       std::string_view expected, Problems& problems) {
  return node[key] ? read_list(node, key, pattern, expected, problems) : std::vector<std::string>{};
}

void read_match(const YAML::Node& root, OsProfile& profile, Problems& problems) {
  auto match = root["match"];
  if (!match || !match.IsMap()) {
    problems.add(match ? match : root, "'match' must map id (and optionally like, version_id) to os-release values");
    return;
  }
  check_keys(match, {"id", "like", "version_id"}, "match: ", problems);
  profile.match_ids = read_list(match, "id", k_word, "os-release ID values", problems);
  profile.match_like = optional_list(match, "like", k_word, "os-release ID_LIKE values", problems);
  profile.match_version = read_scalar(match, "version_id", k_glob, "a VERSION_ID glob like '9*'", problems);
}

void read_arches(const YAML::Node& root, OsProfile& profile, Problems& problems) {
  auto arches = root["arches"];
  if (!arches || !arches.IsMap() || arches.size() == 0) {
    problems.add(arches ? arches : root, "'arches' must map kubexm arches (amd64, arm64) to the distribution's names");
    return;
  }
  for (const auto& item : arches) {
    auto arch = key_of(item);
    if (arch != "amd64" && arch != "arm64") {
      problems.add(item.first, fmt::format("arches: '{}' is not amd64 or arm64{}", arch, arch_hint(arch)));
    } else if (!item.second.IsScalar() || !std::regex_match(item.second.Scalar(), k_word)) {
      problems.add(item.second, fmt::format("arches: {}: expected the distribution's name for it", arch));
    } else {
      profile.arches[arch] = item.second.Scalar();
    }
  }
}

void read_repository(const YAML::Node& node, OsProfile& profile, Problems& problems) {
  RepositorySpec repo;
  bool deb = profile.format == PackageFormat::deb;
  if (deb) {
    check_keys(node, {"name", "url", "url_by_arch", "suite", "components"}, "repositories: ", problems);
  } else {
    check_keys(node, {"name", "url", "url_by_arch"}, "repositories: ", problems);
  }
  repo.name = read_scalar(node, "name", k_word, "a repository name", problems);
  repo.url = read_scalar(node, "url", k_url, "a URL template like '{mirror}/debian'", problems);
  if (auto by_arch = node["url_by_arch"]) {
    for (const auto& item : by_arch) {
      auto arch = key_of(item);
      if (arch != "amd64" && arch != "arm64") {
        problems.add(item.first, fmt::format("url_by_arch: '{}' is not amd64 or arm64{}", arch, arch_hint(arch)));
      } else if (!item.second.IsScalar() || !std::regex_match(item.second.Scalar(), k_url)) {
        problems.add(item.second, fmt::format("url_by_arch: {}: expected a URL template", arch));
      } else {
        repo.url_by_arch[arch] = item.second.Scalar();
      }
    }
  }
  if (deb) {
    repo.suite = read_scalar(node, "suite", k_word, "a suite like 'bookworm'", problems);
    repo.components = read_list(node, "components", k_word, "components like main", problems);
  }
  profile.repositories.push_back(std::move(repo));
}

void read_base(const YAML::Node& root, OsProfile& profile, Problems& problems) {
  auto base = root["base"];
  if (!base || !base.IsMap()) {
    problems.add(base ? base : root, "'base' must say where the base set comes from (from: ...)");
    return;
  }
  check_keys(base, {"from", "packages", "add", "remove", "repositories"}, "base: ", problems);
  auto from = read_scalar(base, "from", k_word, "priority-required, comps-core or list", problems);
  if (from == "priority-required" && profile.format == PackageFormat::deb) {
    profile.base_from = BaseSource::priority_required;
  } else if (from == "comps-core" && profile.format == PackageFormat::rpm) {
    profile.base_from = BaseSource::comps_core;
  } else if (from == "list") {
    profile.base_from = BaseSource::list;
    // An empty list is an empty system: a closure then carries everything, as `full` does.
    profile.base_packages = read_list(base, "packages", k_package_name, "package names", problems, Empty::allowed);
  } else if (!from.empty()) {
    problems.add(base["from"], fmt::format("base: from: '{}' is not {} or list", from,
                                           profile.format == PackageFormat::deb ? "priority-required" : "comps-core"));
  }
  profile.base_add = optional_list(base, "add", k_package_name, "package names", problems);
  profile.base_remove = optional_list(base, "remove", k_package_name, "package names", problems);
  profile.base_repositories = optional_list(base, "repositories", k_word, "repository names", problems);
  for (const auto& name : profile.base_repositories) {
    if (std::ranges::find(profile.repositories, name, &RepositorySpec::name) == profile.repositories.end()) {
      problems.add(base["repositories"], fmt::format("base: repositories: '{}' is not one of the profile's "
                                                     "repositories",
                                                     name));
    }
  }
}

// best: true|false, pins: {name: range}: how a closure picks among a package's versions.
void read_policy(const YAML::Node& root, OsProfile& profile, Problems& problems) {
  if (auto best = root["best"]) {
    auto text = best.IsScalar() ? best.Scalar() : std::string();
    if (text != "true" && text != "false") {
      problems.add(best, "best: expected true (the newest candidate or an error) or false (an older candidate "
                         "where the newest cannot be installed)");
    }
    profile.best = text != "false";
  }
  read_version_pins(root["pins"], profile.pins, "pins", problems);
}

void read_names(const YAML::Node& root, OsProfile& profile, Problems& problems) {
  for (const auto& item : root["names"]) {
    auto name = key_of(item);
    if (item.second.IsNull()) {
      profile.names[name] = std::nullopt;
    } else if (item.second.IsScalar() && std::regex_match(item.second.Scalar(), k_package_name)) {
      profile.names[name] = item.second.Scalar();
    } else {
      problems.add(item.second, fmt::format("names: {}: expected a package name, or ~ when it does not apply", name));
    }
  }
}

std::optional<OsProfile> read_profile(const fs::path& path, const std::string& name, Problems& problems) {
  auto root = load_yaml(path, problems);
  if (!root) {
    return std::nullopt;
  }
  check_keys(root,
             {"format", "name", "os", "version", "match", "package_format", "installer", "arches", "mirror",
              "repositories", "base", "names", "best", "pins"},
             "", problems);
  OsProfile profile;
  if (root["format"].as<int>(0) != 1) {
    problems.add(root["format"] ? root["format"] : root, "'format' must be 1");
  }
  profile.name = read_scalar(root, "name", k_word, "the profile's name", problems);
  if (!profile.name.empty() && profile.name != name) {
    problems.add(root["name"], fmt::format("name: '{}' is not the file's name '{}'", profile.name, name));
  }
  profile.os = read_scalar(root, "os", k_version_text, "the directory name of the OS, like 'debian'", problems);
  profile.version = read_scalar(root, "version", k_version_text, "the OS version, like '12'", problems);
  read_match(root, profile, problems);
  auto format = read_scalar(root, "package_format", k_word, "deb or rpm", problems);
  if (format == "rpm") {
    profile.format = PackageFormat::rpm;
  } else if (format != "deb" && !format.empty()) {
    problems.add(root["package_format"], fmt::format("package_format: '{}' is not deb or rpm", format));
  }
  profile.installer = read_scalar(root, "installer", k_word, "apt, dnf or yum", problems);
  read_arches(root, profile, problems);
  profile.mirror = read_scalar(root, "mirror", k_url, "a URL like https://mirrors.aliyun.com", problems);
  auto repositories = root["repositories"];
  if (!repositories || !repositories.IsSequence() || repositories.size() == 0) {
    problems.add(repositories ? repositories : root, "'repositories' must be a non-empty list");
  } else {
    for (const auto& repo : repositories) {
      read_repository(repo, profile, problems);
    }
  }
  read_base(root, profile, problems);
  read_names(root, profile, problems);
  read_policy(root, profile, problems);
  return profile;
}

} // namespace

Result<VersionPin> parse_version_pin(std::string_view text) {
  VersionPin pin{std::string(text), {}};
  std::string rest(text);
  std::smatch match;
  for (;;) {
    auto comma = rest.find(',');
    auto bound = rest.substr(0, comma);
    if (!std::regex_match(bound, match, k_pin_bound)) {
      return fail("'{}' is not a version range like '< 1.4.7' or '>= 1.4.5, < 1.4.7' (a bound is one of < <= = "
                  ">= > and a version)",
                  text);
    }
    pin.bounds.push_back({match[1].str(), match[2].str()});
    if (comma == std::string::npos) {
      return pin;
    }
    rest = rest.substr(comma + 1);
  }
}

void read_version_pins(const YAML::Node& node, std::map<std::string, VersionPin>& pins, std::string_view where,
                       Problems& problems) {
  if (!node) {
    return;
  }
  if (!node.IsMap()) {
    problems.add(node, fmt::format("{}: expected package names mapped to version ranges ('< 1.4.7')", where));
    return;
  }
  for (const auto& item : node) {
    auto name = key_of(item);
    auto pin = parse_version_pin(item.second.IsScalar() ? item.second.Scalar() : std::string());
    if (!std::regex_match(name, k_package_name)) {
      problems.add(item.first, fmt::format("{}: '{}' is not a package name", where, name));
    } else if (!pin) {
      problems.add(item.second, fmt::format("{}: {}: {}", where, name, pin.error().message()));
    } else {
      pins[name] = std::move(*pin);
    }
  }
}

std::string OsProfile::repository_url(const RepositorySpec& repository, std::string_view arch) const {
  auto found = repository.url_by_arch.find(std::string(arch));
  auto url = found != repository.url_by_arch.end() ? found->second : repository.url;
  auto distro = arches.find(std::string(arch));
  url = expand(expand(url, "mirror", mirror), "arch", distro != arches.end() ? distro->second : arch);
  while (url.ends_with('/')) {
    url.pop_back();
  }
  return url;
}

std::vector<std::string> available_profiles(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto file = entry.path().filename().string();
    if (file.ends_with(".yaml") && file != "packages.yaml") {
      names.push_back(file.substr(0, file.size() - 5));
    }
  }
  std::ranges::sort(names);
  return names;
}

Result<std::vector<OsProfile>> load_os_profiles(const fs::path& dir, const std::vector<std::string>& names) {
  Problems all("");
  std::vector<OsProfile> profiles;
  for (const auto& name : names) {
    auto path = dir / (name + ".yaml");
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      all.add(fmt::format("os_profiles: no profile '{}' in {} (there are: {})", name, dir.string(),
                          fmt::join(available_profiles(dir), ", ")));
      continue;
    }
    Problems problems(path.string());
    if (auto profile = read_profile(path, name, problems)) {
      profiles.push_back(std::move(*profile));
    }
    all.merge(problems);
  }
  if (auto status = all.status(ErrorKind::usage); !status) {
    return std::unexpected(status.error());
  }
  return profiles;
}

Result<PackageSets> load_package_sets(const fs::path& dir) {
  auto path = dir / "packages.yaml";
  Problems problems(path.string());
  auto root = load_yaml(path, problems);
  PackageSets sets;
  if (root) {
    check_keys(root, {"format", "sets", "roles"}, "", problems);
    for (const auto& item : root["sets"]) {
      sets.sets[key_of(item)] =
          read_list(root["sets"], key_of(item).c_str(), k_package_name, "package names", problems);
    }
    for (const auto& item : root["roles"]) {
      auto role = key_of(item);
      sets.roles[role] = read_list(root["roles"], role.c_str(), k_word, "set names", problems);
      for (std::size_t i = 0; i < sets.roles[role].size(); ++i) {
        if (!sets.sets.contains(sets.roles[role][i])) {
          problems.add(item.second[i], fmt::format("roles: {}: no set '{}'", role, sets.roles[role][i]));
        }
      }
    }
    for (const char* role : {"master", "worker", "etcd", "lb"}) {
      if (!sets.roles.contains(role)) {
        problems.add(root["roles"] ? root["roles"] : root, fmt::format("roles: '{}' is missing", role));
      }
    }
  }
  if (auto status = problems.status(ErrorKind::usage); !status) {
    return std::unexpected(status.error());
  }
  return sets;
}

std::vector<std::string> role_packages(const PackageSets& sets, const OsProfile& profile, std::string_view role,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> names;
  auto add = [&](const std::string& name) {
    if (std::ranges::find(names, name) == names.end()) {
      names.push_back(name);
    }
  };
  auto found = sets.roles.find(std::string(role));
  for (const auto& set : found != sets.roles.end() ? found->second : std::vector<std::string>{}) {
    for (const auto& name : sets.sets.at(set)) {
      auto mapped = profile.names.find(name);
      if (mapped == profile.names.end()) {
        add(name);
      } else if (mapped->second) {
        add(*mapped->second);
      }
    }
  }
  for (const auto& name : extra) {
    add(name);
  }
  return names;
}

fs::path default_os_profiles_dir() {
  return data_dir("KUBEXM_OS_PROFILES", "os-profiles", "packages.yaml", KUBEXM_SOURCE_OS_PROFILES);
}

const char* to_string(PackageFormat format) {
  return format == PackageFormat::deb ? "deb" : "rpm";
}

} // namespace kubexm
