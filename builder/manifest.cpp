#include "builder/manifest.hpp"

#include "builder/data_dir.hpp"
#include "bundle/fs.hpp"
#include "bundle/log.hpp"
#include "bundle/problems.hpp"
#include "bundle/yaml_fields.hpp"

#include <algorithm>
#include <array>
#include <ranges>
#include <regex>
#include <set>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

constexpr std::array k_arches{"amd64", "arm64"};
constexpr std::array k_roles{"master", "worker", "etcd", "lb"};

const std::regex k_name_pattern("[a-z0-9][a-z0-9._-]*");
const std::regex k_bundle_version_pattern("[0-9A-Za-z][0-9A-Za-z._+-]*");
// Release versions as upstreams number them, without the "v" some put in front.
const std::regex k_version_pattern("[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.]+)?");
const std::regex k_tag_pattern("[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}");
const std::regex k_hex_pattern("[0-9a-f]{64}");
const std::regex k_install_pattern("[A-Za-z0-9][A-Za-z0-9._+-]*");

bool is_arch(std::string_view value) {
  return std::ranges::any_of(k_arches, [&](const char* a) { return value == a; });
}

void check_arches(const YAML::Node& list, const std::vector<std::string>& arches, Problems& problems) {
  for (std::size_t i = 0; i < arches.size(); ++i) {
    if (!is_arch(arches[i])) {
      problems.add(list[i], fmt::format("arches: '{}' is not one of {}{}", arches[i], fmt::join(k_arches, ", "),
                                        arch_hint(arches[i])));
    }
  }
}

// Checks that a template uses only `allowed` placeholders.
void check_template(const YAML::Node& node, std::string_view text, Keys allowed, Problems& problems) {
  static const std::regex placeholder("\\{([^}]*)\\}");
  std::string copy(text);
  for (std::sregex_iterator it(copy.begin(), copy.end(), placeholder), end; it != end; ++it) {
    auto name = (*it)[1].str();
    if (std::ranges::none_of(allowed, [&](const char* a) { return name == a; })) {
      problems.add(node, fmt::format("unknown placeholder {{{}}} (known: {{{}}})", name, fmt::join(allowed, "}, {")));
    }
  }
}

// --- manifests/catalogue.yaml ---------------------------------------------------------------

void read_checksum(const YAML::Node& node, ComponentSpec& spec, Problems& problems) {
  auto checksum = node["checksum"];
  if (!checksum) {
    problems.add(node, fmt::format("{}: 'checksum' is missing ({{url, format}}, or 'none')", spec.name));
    return;
  }
  if (checksum.IsScalar() && checksum.Scalar() == "none") {
    spec.checksum_format = ChecksumFormat::none;
    return;
  }
  if (!checksum.IsMap()) {
    problems.add(checksum, fmt::format("{}: checksum: expected {{url, format}} or 'none'", spec.name));
    return;
  }
  check_keys(checksum, {"url", "format"}, fmt::format("{}: checksum: ", spec.name), problems);
  auto url = checksum["url"];
  if (!url || !url.IsScalar()) {
    problems.add(checksum, fmt::format("{}: checksum: 'url' is missing", spec.name));
  } else {
    spec.checksum_url = url.Scalar();
    check_template(url, spec.checksum_url, {"version", "arch", "url"}, problems);
  }
  auto format = checksum["format"] ? checksum["format"].as<std::string>("") : "";
  if (format == "bare") {
    spec.checksum_format = ChecksumFormat::bare;
  } else if (format == "sums") {
    spec.checksum_format = ChecksumFormat::sums;
  } else {
    problems.add(checksum["format"] ? checksum["format"] : checksum,
                 fmt::format("{}: checksum: format must be 'bare' (only the digest) or 'sums' "
                             "(lines of \"HEX  NAME\")",
                             spec.name));
  }
}

void read_members(const YAML::Node& node, ComponentSpec& spec, Problems& problems) {
  auto archive = node["archive"];
  if (!archive) {
    spec.kind = ArtifactKind::file;
    auto install = read_scalar(node, "install", k_install_pattern, "the name the binary is installed under", problems);
    spec.members.push_back({"", install});
    if (node["members"]) {
      problems.add(node["members"], fmt::format("{}: 'members' needs 'archive: tar.gz'", spec.name));
    }
    return;
  }
  if (archive.as<std::string>("") != "tar.gz") {
    problems.add(archive, fmt::format("{}: archive: expected 'tar.gz'", spec.name));
    return;
  }
  spec.kind = ArtifactKind::tar_gz;
  auto members = node["members"];
  if (!members || !members.IsMap() || members.size() == 0) {
    problems.add(members ? members : node,
                 fmt::format("{}: 'members' must map each path in the archive to an install name", spec.name));
    return;
  }
  for (const auto& item : members) {
    auto path = key_of(item);
    auto install = item.second.as<std::string>("");
    check_template(item.first, path, {"version", "arch"}, problems);
    if (!std::regex_match(install, k_install_pattern)) {
      problems.add(item.second, fmt::format("{}: members: '{}' is not a file name", spec.name, install));
    }
    if (std::ranges::any_of(spec.members, [&](const MemberSpec& m) { return m.install == install; })) {
      problems.add(item.second, fmt::format("{}: members: two members are installed as '{}'", spec.name, install));
    }
    spec.members.push_back({path, install});
  }
}

void read_arch_names(const YAML::Node& node, ComponentSpec& spec, Problems& problems) {
  auto names = node["arch_names"];
  if (!names) {
    return;
  }
  if (!names.IsMap()) {
    problems.add(names, fmt::format("{}: arch_names: expected {{amd64: ..., arm64: ...}}", spec.name));
    return;
  }
  for (const auto& item : names) {
    auto arch = key_of(item);
    if (!is_arch(arch)) {
      problems.add(item.first,
                   fmt::format("{}: arch_names: '{}' is not one of {}", spec.name, arch, fmt::join(k_arches, ", ")));
    }
    spec.arch_names[arch] = item.second.as<std::string>("");
  }
}

ComponentSpec read_component(const std::string& name, const YAML::Node& node, Problems& problems) {
  ComponentSpec spec;
  spec.name = name;
  if (!node.IsMap()) {
    problems.add(node, fmt::format("component '{}': expected a mapping", name));
    return spec;
  }
  check_keys(node, {"description", "version", "url", "arch_names", "checksum", "archive", "install", "members"},
             fmt::format("{}: ", name), problems);
  spec.description = node["description"].as<std::string>("");
  if (auto version = node["version"]) {
    if (version.as<std::string>("") != "kubernetes") {
      problems.add(version, fmt::format("{}: version: the only value allowed here is 'kubernetes'", name));
    }
    spec.follows_kubernetes = true;
  }
  if (auto url = node["url"]; url && url.IsScalar()) {
    spec.url = url.Scalar();
    check_template(url, spec.url, {"version", "arch"}, problems);
  } else {
    problems.add(node, fmt::format("{}: 'url' is missing", name));
  }
  read_arch_names(node, spec, problems);
  read_checksum(node, spec, problems);
  read_members(node, spec, problems);
  return spec;
}

std::map<std::string, ComponentSpec> read_catalogue(const fs::path& path, Problems& problems) {
  std::map<std::string, ComponentSpec> catalogue;
  auto root = load_yaml(path, problems);
  if (!root) {
    return catalogue;
  }
  check_keys(root, {"format", "components"}, "", problems);
  if (root["format"].as<int>(0) != 1) {
    problems.add(root["format"] ? root["format"] : root, "format: expected 1");
  }
  auto components = root["components"];
  if (!components || !components.IsMap()) {
    problems.add(root, "'components' must map component names to their upstreams");
    return catalogue;
  }
  for (const auto& item : components) {
    auto name = key_of(item);
    if (!std::regex_match(name, k_name_pattern)) {
      problems.add(item.first, fmt::format("'{}' is not a component name ([a-z0-9._-])", name));
      continue;
    }
    catalogue.emplace(name, read_component(name, item.second, problems));
  }
  return catalogue;
}

// --- manifests/kubernetes-<minor>.yaml -------------------------------------------------------

struct Release {
  std::string kubernetes;
  std::map<std::string, std::string> versions;
  std::map<std::string, std::string> images;
  std::vector<std::string> default_components;
  YAML::Node root;
};

void read_version_map(const YAML::Node& node, const char* key, const std::regex& pattern, std::string_view expected,
                      std::map<std::string, std::string>& out, Problems& problems) {
  auto map = node[key];
  if (!map) {
    return;
  }
  if (!map.IsMap()) {
    problems.add(map, fmt::format("{}: expected a mapping of name to version", key));
    return;
  }
  for (const auto& item : map) {
    auto value = item.second.IsScalar() ? item.second.Scalar() : "";
    if (!std::regex_match(value, pattern)) {
      problems.add(item.second,
                   fmt::format("{}: {}: '{}' is not {}{}", key, key_of(item), value, expected, version_hint(value)));
      continue;
    }
    out[key_of(item)] = value;
  }
}

Release read_release(const fs::path& path, std::string_view minor, Problems& problems) {
  Release release;
  release.root = load_yaml(path, problems);
  if (!release.root) {
    return release;
  }
  const auto& root = release.root;
  check_keys(root, {"kubernetes", "versions", "images", "default_components"}, "", problems);
  release.kubernetes = read_scalar(root, "kubernetes", k_version_pattern, "a version like 1.32.4", problems);
  if (!release.kubernetes.empty() && !release.kubernetes.starts_with(fmt::format("{}.", minor))) {
    problems.add(root["kubernetes"], fmt::format("kubernetes: {} is not a {} release", release.kubernetes, minor));
  }
  read_version_map(root, "versions", k_version_pattern, "a version like 1.7.24", release.versions, problems);
  read_version_map(root, "images", k_tag_pattern, "an image tag", release.images, problems);
  release.default_components = read_list(root, "default_components", k_name_pattern, "component names", problems);
  return release;
}

// --- pinned digests ----------------------------------------------------------------------------

using PinKey = std::tuple<std::string, std::string, std::string>; // component, version, arch
using Pins = std::map<PinKey, std::string>;

void read_pins(const YAML::Node& root, const std::map<std::string, ComponentSpec>& catalogue, Pins& pins,
               Problems& problems) {
  if (!root.IsMap()) {
    problems.add(root, "checksums: expected component: {version: {arch: sha256}}");
    return;
  }
  for (const auto& component : root) {
    auto name = key_of(component);
    if (!catalogue.contains(name)) {
      problems.add(component.first, fmt::format("checksums: unknown component '{}'", name));
      continue;
    }
    if (!component.second.IsMap()) {
      problems.add(component.second, fmt::format("checksums: {}: expected {{version: {{arch: sha256}}}}", name));
      continue;
    }
    for (const auto& version : component.second) {
      auto number = key_of(version);
      if (!std::regex_match(number, k_version_pattern)) {
        problems.add(version.first, fmt::format("checksums: {}: '{}' is not a version like 1.7.24{}", name, number,
                                                version_hint(number)));
        continue;
      }
      if (!version.second.IsMap()) {
        problems.add(version.second, fmt::format("checksums: {} {}: expected {{arch: sha256}}", name, number));
        continue;
      }
      for (const auto& arch : version.second) {
        auto arch_name = key_of(arch);
        auto digest = arch.second.as<std::string>("");
        if (!is_arch(arch_name)) {
          problems.add(arch.first, fmt::format("checksums: {} {}: '{}' is not one of {}{}", name, number, arch_name,
                                               fmt::join(k_arches, ", "), arch_hint(arch_name)));
        } else if (!std::regex_match(digest, k_hex_pattern)) {
          problems.add(arch.second,
                       fmt::format("checksums: {} {} {}: expected 64 lower-case hex digits", name, number, arch_name));
        } else {
          pins[{name, number, arch_name}] = digest;
        }
      }
    }
  }
}

// --- the user's manifest -------------------------------------------------------------------------

// The manifest's say over how the closures pick versions: packages: {best, pins}.
struct PackagePolicy {
  std::optional<bool> best;
  std::map<std::string, std::map<std::string, VersionPin>> pins; // profile -> package -> range
  YAML::Node pins_node;
};

void read_package_policy(const YAML::Node& packages, PackagePolicy& policy, Problems& problems) {
  if (auto best = packages["best"]) {
    auto text = best.IsScalar() ? best.Scalar() : std::string();
    if (text != "true" && text != "false") {
      problems.add(best, "packages: best: expected true or false (false: an older candidate where the newest "
                         "cannot be installed, as dnf's best=False)");
    }
    policy.best = text != "false";
  }
  auto pins = packages["pins"];
  if (!pins) {
    return;
  }
  policy.pins_node.reset(pins);
  if (!policy.pins_node.IsMap()) {
    problems.add(policy.pins_node, "packages: pins: expected os-profile names mapped to {package: version range}");
    return;
  }
  for (const auto& item : policy.pins_node) {
    auto profile = key_of(item);
    read_version_pins(item.second, policy.pins[profile], fmt::format("packages: pins: {}", profile), problems);
  }
}

// packages: {closure: minimal|full|none, extra: [...], best: bool, pins: {...}}
void read_package_options(const YAML::Node& root, Plan& plan, PackagePolicy& policy, Problems& problems) {
  static const std::regex closure("minimal|full|none");
  static const std::regex package_name("[A-Za-z0-9][A-Za-z0-9._+-]*");
  auto packages = root["packages"];
  if (!packages) {
    return;
  }
  if (!packages.IsMap()) {
    problems.add(packages, "packages: expected {closure: minimal|full|none, extra: [names]}");
    return;
  }
  check_keys(packages, {"closure", "extra", "best", "pins"}, "packages: ", problems);
  read_package_policy(packages, policy, problems);
  if (packages["closure"]) {
    plan.bundle.closure = read_scalar(packages, "closure", closure,
                                      "minimal (over the OS's base set), full (for hosts stripped below a minimal "
                                      "install) or none (no OS packages)",
                                      problems);
  }
  if (packages["extra"]) {
    plan.bundle.extra_packages = read_list(packages, "extra", package_name, "package names", problems);
  }
}

struct UserManifest {
  YAML::Node root;
  std::string kubernetes;
  std::vector<std::string> components; // empty: the release's defaults
  std::map<std::string, std::string> versions;
  std::vector<std::string> extra_images;
  std::string site; // as written
  PackagePolicy package_policy;
};

// The manifest's site: file, read, and checked against what the bundle carries: the
// Kubernetes version, every host's arch and OS, and the cluster: section, which the site
// supplies when the manifest has none.
void read_site_of(Plan& plan, const UserManifest& user, Problems& problems) {
  if (user.site.empty()) {
    return;
  }
  auto at = user.root["site"];
  plan.site_path = plan.manifest_path.parent_path() / user.site;
  std::vector<std::string> warnings;
  auto site = load_site(plan.site_path, warnings);
  for (const auto& warning : warnings) {
    log_warning(warning);
  }
  if (!site) {
    problems.add(at, site.error().message());
    return;
  }
  if (site->kubernetes_version != plan.bundle.kubernetes) {
    problems.add(at, fmt::format("site: {} is for Kubernetes {}, the bundle carries {}", user.site,
                                 site->kubernetes_version, plan.bundle.kubernetes));
  }
  for (const auto& host : site->hosts) {
    if (std::ranges::find(plan.bundle.arches, host.arch) == plan.bundle.arches.end()) {
      problems.add(at, fmt::format("site: host {} is {}, and the bundle carries {} only; add {} to arches", host.name,
                                   host.arch, fmt::join(plan.bundle.arches, ", "), host.arch));
    }
    if (!host.os.empty() && std::ranges::find(plan.bundle.os_profiles, host.os) == plan.bundle.os_profiles.end()) {
      problems.add(at, fmt::format("site: host {} runs {}, which is not among the bundle's os_profiles ({}); add it",
                                   host.name, host.os,
                                   plan.bundle.os_profiles.empty()
                                       ? std::string("none")
                                       : fmt::format("{}", fmt::join(plan.bundle.os_profiles, ", "))));
    }
  }
  auto shape = cluster_spec_of(*site);
  if (plan.cluster && *plan.cluster != shape) {
    problems.add(user.root["cluster"],
                 fmt::format("cluster: differs from the site {}'s cluster; leave cluster: out and "
                             "the site's is used",
                             user.site));
  }
  plan.cluster = shape;
  plan.site = std::move(*site);
}

void read_user_manifest(const YAML::Node& root, Plan& plan, UserManifest& user, Problems& problems) {
  check_keys(root,
             {"name", "version", "kubernetes", "arches", "os_profiles", "roles", "components", "versions", "checksums",
              "packages", "cluster", "images", "site"},
             "", problems);
  plan.bundle.name = read_scalar(root, "name", k_name_pattern, "a name like 'site-a' ([a-z0-9._-])", problems);
  plan.bundle.version = read_scalar(root, "version", k_bundle_version_pattern, "a version like '1.0.0'", problems);
  user.kubernetes = read_scalar(root, "kubernetes", k_version_pattern, "a Kubernetes version like 1.32.4", problems);
  plan.bundle.kubernetes = user.kubernetes;
  plan.bundle.arches = read_list(root, "arches", k_name_pattern, "arches (amd64, arm64)", problems);
  check_arches(root["arches"], plan.bundle.arches, problems);
  plan.bundle.os_profiles = read_list(root, "os_profiles", k_name_pattern, "OS profile names", problems);
  if (root["roles"]) {
    plan.bundle.roles = read_list(root, "roles", k_name_pattern, "roles (master, worker, etcd, lb)", problems);
    for (std::size_t i = 0; i < plan.bundle.roles.size(); ++i) {
      if (std::ranges::none_of(k_roles, [&](const char* r) { return plan.bundle.roles[i] == r; })) {
        problems.add(root["roles"][i],
                     fmt::format("roles: '{}' is not one of {}", plan.bundle.roles[i], fmt::join(k_roles, ", ")));
      }
    }
  } else {
    plan.bundle.roles.assign(k_roles.begin(), k_roles.end());
  }
  if (root["components"]) {
    user.components = read_list(root, "components", k_name_pattern, "component names", problems);
  }
  read_version_map(root, "versions", k_version_pattern, "a version like 1.7.24", user.versions, problems);
  read_package_options(root, plan, user.package_policy, problems);
  if (root["cluster"]) {
    plan.cluster = read_cluster(root["cluster"], problems);
  }
  if (auto site = root["site"]) {
    if (!site.IsScalar() || site.Scalar().empty()) {
      problems.add(site, "site: expected the path of a site file (docs/site.md), relative to the manifest");
    } else {
      user.site = site.Scalar();
    }
  }
  if (root["images"]) {
    static const std::regex reference("[^\\s]+");
    user.extra_images =
        read_list(root, "images", reference, "image references like docker.io/library/busybox:1.36", problems);
  }
}

// "1.32" of "1.32.10" or "1.32.0-rc.1".
std::string minor_of(const std::string& version) {
  auto first = version.find('.');
  return version.substr(0, version.find('.', first + 1));
}

// The release file for the manifest's Kubernetes minor, or a problem naming the ones there are.
std::optional<fs::path> release_path(const fs::path& dir, const std::string& kubernetes, const YAML::Node& at,
                                     Problems& problems) {
  auto minor = minor_of(kubernetes);
  auto path = dir / fmt::format("kubernetes-{}.yaml", minor);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    return path;
  }
  std::vector<std::string> known;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with("kubernetes-") && name.ends_with(".yaml")) {
      known.push_back(name.substr(11, name.size() - 16));
    }
  }
  std::ranges::sort(known);
  problems.add(at, fmt::format("kubernetes: {} is not supported: there is no {} (supported minors: {})", kubernetes,
                               path.string(), fmt::join(known, ", ")));
  return std::nullopt;
}

Artifact make_artifact(const ComponentSpec& spec, const std::string& version, const std::string& arch,
                       const Pins& catalogue_pins, const Pins& manifest_pins, std::vector<std::string>& replaced) {
  Artifact artifact;
  artifact.component = spec.name;
  artifact.version = version;
  artifact.arch = arch;
  auto found = spec.arch_names.find(arch);
  auto upstream_arch = found == spec.arch_names.end() ? arch : found->second;
  auto fill = [&](std::string text) {
    return expand(expand(std::move(text), "version", version), "arch", upstream_arch);
  };
  artifact.url = fill(spec.url);
  artifact.checksum_format = spec.checksum_format;
  if (spec.checksum_format != ChecksumFormat::none) {
    artifact.checksum_url = expand(fill(spec.checksum_url), "url", artifact.url);
  }
  artifact.kind = spec.kind;
  for (const auto& member : spec.members) {
    artifact.members.push_back({fill(member.path), member.install});
  }
  PinKey key{spec.name, version, arch};
  auto from_catalogue = catalogue_pins.find(key);
  auto from_manifest = manifest_pins.find(key);
  if (from_manifest != manifest_pins.end()) {
    artifact.pin = from_manifest->second;
    artifact.pin_source = PinSource::manifest;
    if (from_catalogue != catalogue_pins.end() && from_catalogue->second != from_manifest->second) {
      replaced.push_back(artifact.label());
    }
  } else if (from_catalogue != catalogue_pins.end()) {
    artifact.pin = from_catalogue->second;
    artifact.pin_source = PinSource::catalogue;
  }
  return artifact;
}

// The version of each selected component: the manifest's override, else the release's.
void expand_artifacts(const std::map<std::string, ComponentSpec>& catalogue, const Release& release,
                      const UserManifest& user, const Pins& catalogue_pins, const Pins& manifest_pins, Plan& plan,
                      Problems& problems) {
  std::vector<std::string> replaced; // catalogue pins the manifest overrides with other digests
  auto selected = user.components.empty() ? release.default_components : user.components;
  const auto& list_node = user.components.empty() ? release.root["default_components"] : user.root["components"];
  // A kubexm cluster runs its control plane and kube-proxy from binaries under systemd: by
  // default the bundle carries them; a manifest for a site that lists its components must
  // list them.
  std::vector<std::string> lacking;
  if (plan.cluster && plan.cluster->type == "kubexm") {
    for (const char* name : {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}) {
      if (std::ranges::find(selected, name) == selected.end()) {
        lacking.emplace_back(name);
      }
    }
  }
  if (!lacking.empty() && !user.components.empty() && !plan.site) {
    lacking.clear(); // a bundle for a cluster's images, not for a site's hosts: the list is the user's
  }
  if (!lacking.empty() && !user.components.empty()) {
    problems.add(list_node, fmt::format("a kubexm cluster runs {} from the bundle; add {} to components",
                                        fmt::join(lacking, ", "), lacking.size() == 1 ? "it" : "them"));
  } else {
    selected.insert(selected.end(), lacking.begin(), lacking.end());
  }
  for (std::size_t i = 0; i < selected.size(); ++i) {
    const auto& name = selected[i];
    auto at = i < list_node.size() ? list_node[i] : list_node;
    auto spec = catalogue.find(name);
    if (spec == catalogue.end()) {
      std::vector<std::string> known;
      for (const auto& [known_name, _] : catalogue) {
        known.push_back(known_name);
      }
      problems.add(at,
                   fmt::format("unknown component '{}' (the catalogue has: {})", name, fmt::join(known, ", ")));
      continue;
    }
    std::string version;
    if (spec->second.follows_kubernetes) {
      version = plan.bundle.kubernetes;
    } else if (auto v = user.versions.find(name); v != user.versions.end()) {
      version = v->second;
    } else if (auto r = release.versions.find(name); r != release.versions.end()) {
      version = r->second;
    } else {
      problems.add(at, fmt::format("component '{}' has no version for Kubernetes {}: add it under "
                                             "'versions:'",
                                             name, plan.bundle.kubernetes));
      continue;
    }
    for (const auto& arch : plan.bundle.arches) {
      plan.artifacts.push_back(make_artifact(spec->second, version, arch, catalogue_pins, manifest_pins, replaced));
    }
  }
  for (const auto& [name, _] : user.versions) {
    if (std::ranges::find(selected, name) == selected.end()) {
      problems.add(user.root["versions"][name],
                   fmt::format("versions: '{}' is not one of the components ({})", name, fmt::join(selected, ", ")));
    } else if (catalogue.contains(name) && catalogue.at(name).follows_kubernetes) {
      problems.add(user.root["versions"][name],
                   fmt::format("versions: '{}' follows the 'kubernetes' version; set that instead", name));
    }
  }
  if (!replaced.empty()) {
    log_warning(fmt::format(
        "{}'s checksums replace the catalogue's pinned digests of {} artifacts ({}{}): only a source "
        "you trust should do that",
        plan.manifest_path.string(), replaced.size(),
        fmt::join(replaced.begin(),
                  replaced.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(replaced.size(), 3)), ", "),
        replaced.size() > 3 ? ", ..." : ""));
  }
  std::ranges::sort(plan.artifacts, {}, [](const Artifact& a) { return std::tie(a.component, a.version, a.arch); });
}

} // namespace

std::string Artifact::file_name() const {
  return url.substr(url.rfind('/') + 1);
}

std::string Artifact::label() const {
  return fmt::format("{} {} {}", component, version, arch);
}

const char* to_string(ChecksumFormat format) {
  switch (format) {
  case ChecksumFormat::bare:
    return "bare";
  case ChecksumFormat::sums:
    return "sums";
  case ChecksumFormat::none:
    return "none";
  }
  return "none";
}

const char* to_string(ArtifactKind kind) {
  return kind == ArtifactKind::tar_gz ? "tar.gz" : "file";
}

const char* to_string(PinSource source) {
  switch (source) {
  case PinSource::none:
    return "none";
  case PinSource::catalogue:
    return "catalogue";
  case PinSource::manifest:
    return "manifest";
  }
  return "none";
}

fs::path default_manifests_dir() {
  return data_dir("KUBEXM_MANIFESTS", "manifests", "catalogue.yaml", KUBEXM_SOURCE_MANIFESTS);
}

// The manifest's best and pins over the profiles' own.
void apply_package_policy(const PackagePolicy& policy, Plan& plan, Problems& problems) {
  for (auto& profile : plan.profiles) {
    if (policy.best) {
      profile.best = *policy.best;
    }
    if (auto pins = policy.pins.find(profile.name); pins != policy.pins.end()) {
      for (const auto& [name, pin] : pins->second) {
        profile.pins[name] = pin;
      }
    }
  }
  for (const auto& [name, _] : policy.pins) {
    if (std::ranges::find(plan.bundle.os_profiles, name) == plan.bundle.os_profiles.end()) {
      problems.add(policy.pins_node, fmt::format("packages: pins: '{}' is not one of the bundle's os_profiles", name));
    }
  }
}

// The profiles and package sets a plan with OS packages needs.
void read_package_plan(Plan& plan, const PackagePolicy& policy, const fs::path& os_profiles_dir, Problems& problems) {
  if (plan.bundle.closure == "none" || plan.bundle.os_profiles.empty()) {
    return;
  }
  auto dir = os_profiles_dir.empty() ? default_os_profiles_dir() : os_profiles_dir;
  auto profiles = load_os_profiles(dir, plan.bundle.os_profiles);
  auto sets = load_package_sets(dir);
  if (!profiles || !sets) {
    problems.add((profiles ? sets.error() : profiles.error()).message());
    return;
  }
  std::map<std::string, std::string> dirs; // packages/<os>/<version> -> profile
  for (const auto& profile : *profiles) {
    auto bundle_dir = fmt::format("packages/{}/{}", profile.os, profile.version);
    if (auto [other, fresh] = dirs.try_emplace(bundle_dir, profile.name); !fresh) {
      problems.add(fmt::format("os_profiles: {} and {} would both use {} in the bundle (the same os and version)",
                               other->second, profile.name, bundle_dir));
    }
    for (const auto& arch : plan.bundle.arches) {
      if (!profile.arches.contains(arch)) {
        problems.add(fmt::format("os_profiles: {} has no packages for {} (it has {})", profile.name, arch,
                                 fmt::join(std::views::keys(profile.arches), ", ")));
      }
    }
  }
  plan.profiles = std::move(*profiles);
  plan.package_sets = std::move(*sets);
  apply_package_policy(policy, plan, problems);
}

Result<Plan> load_plan(const fs::path& manifest, const fs::path& manifests_dir, const fs::path& os_profiles_dir,
                       std::string_view closure) {
  Plan plan;
  plan.manifest_path = manifest;
  Problems user_problems(manifest.string());
  UserManifest user;
  user.root = load_yaml(manifest, user_problems);
  if (!user.root) {
    return std::unexpected(user_problems.status(ErrorKind::usage).error());
  }
  read_user_manifest(user.root, plan, user, user_problems);
  read_site_of(plan, user, user_problems);

  auto catalogue_path = manifests_dir / "catalogue.yaml";
  Problems catalogue_problems(catalogue_path.string());
  auto catalogue = read_catalogue(catalogue_path, catalogue_problems);

  auto checksums_path = manifests_dir / "checksums.yaml";
  Problems checksum_problems(checksums_path.string());
  Pins catalogue_pins;
  if (auto root = load_yaml(checksums_path, checksum_problems)) {
    read_pins(root, catalogue, catalogue_pins, checksum_problems);
  }
  Pins manifest_pins;
  if (auto checksums = user.root["checksums"]) {
    read_pins(checksums, catalogue, manifest_pins, user_problems);
  }

  Problems release_problems("");
  Release release;
  if (!user.kubernetes.empty()) {
    if (auto path = release_path(manifests_dir, user.kubernetes, user.root["kubernetes"], user_problems)) {
      release_problems = Problems(path->string());
      auto minor = minor_of(user.kubernetes);
      release = read_release(*path, minor, release_problems);
      plan.bundle.images = release.images;
    }
  }
  if (catalogue_problems.empty() && release.root) {
    expand_artifacts(catalogue, release, user, catalogue_pins, manifest_pins, plan, user_problems);
  }
  auto images_path = manifests_dir / "images.yaml";
  Problems image_problems(images_path.string());
  if (release.root && (plan.cluster || !user.extra_images.empty())) {
    plan.images =
        derive_images(images_path, plan.cluster ? &*plan.cluster : nullptr, release.images, plan.bundle.kubernetes,
                      user.extra_images, user.root["images"], image_problems, user_problems);
  }
  Problems profile_problems("");
  if (!closure.empty()) {
    plan.bundle.closure = closure;
  }
  read_package_plan(plan, user.package_policy, os_profiles_dir, profile_problems);
  Problems all("");
  for (const auto* part : {&user_problems, &catalogue_problems, &checksum_problems, &release_problems, &image_problems,
                           &profile_problems}) {
    all.merge(*part);
  }
  if (auto status = all.status(ErrorKind::usage); !status) {
    return std::unexpected(status.error());
  }
  return plan;
}

Result<std::vector<ImageSpec>> cluster_images(const ClusterSpec& cluster, const std::string& version,
                                              const fs::path& manifests_dir) {
  Problems problems("");
  auto path = release_path(manifests_dir, version, YAML::Node(), problems);
  if (!path) {
    return std::unexpected(problems.status(ErrorKind::usage).error());
  }
  Problems release_problems(path->string());
  auto release = read_release(*path, minor_of(version), release_problems);
  auto images_path = manifests_dir / "images.yaml";
  Problems image_problems(images_path.string());
  auto images =
      derive_images(images_path, &cluster, release.images, version, {}, YAML::Node(), image_problems, problems);
  problems.merge(release_problems);
  problems.merge(image_problems);
  if (auto status = problems.status(ErrorKind::usage); !status) {
    return std::unexpected(status.error());
  }
  return images;
}

} // namespace kubexm
