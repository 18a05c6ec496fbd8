#include "bundle/bundle_info.hpp"

#include "bundle/problems.hpp"
#include "bundle/yaml_fields.hpp"

#include <algorithm>
#include <array>
#include <regex>
#include <yaml-cpp/yaml.h>

namespace kubexm {

namespace {

constexpr std::array k_arches{"amd64", "arm64"};
constexpr std::array k_roles{"master", "worker", "etcd", "lb"};
constexpr std::array k_keys{"name",   "version",     "format", "created_by", "source_date_epoch",
                            "arches", "os_profiles", "roles",  "components", "packages",
                            "images", "site"};
constexpr std::array k_component_keys{"name", "version", "arches", "files"};

template <std::size_t N> bool one_of(const std::string& value, const std::array<const char*, N>& allowed) {
  return std::ranges::any_of(allowed, [&](const char* a) { return value == a; });
}

std::string read_string(const YAML::Node& root, const char* key, const std::regex& pattern, std::string_view expected,
                        Problems& problems) {
  auto node = root[key];
  if (!node) {
    problems.add(fmt::format("'{}' is missing ({})", key, expected));
    return {};
  }
  if (!node.IsScalar() || !std::regex_match(node.Scalar(), pattern)) {
    problems.add(node, fmt::format("{}: expected {}", key, expected));
    return {};
  }
  return node.Scalar();
}

template <std::size_t N>
void check_members(const YAML::Node& root, const char* key, const std::vector<std::string>& values,
                   const std::array<const char*, N>& allowed, Problems& problems) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!one_of(values[i], allowed)) {
      problems.add(root[key][i], fmt::format("{}: '{}' is not one of {}{}", key, values[i], fmt::join(allowed, ", "),
                                             arch_hint(values[i])));
    }
  }
}

void read_format(const YAML::Node& root, InfoSource source, BundleInfo& info, Problems& problems) {
  auto format = root["format"];
  if (!format) {
    if (source == InfoSource::bundle) {
      problems.add("'format' is missing");
    }
    return;
  }
  int value = 0;
  if (!YAML::convert<int>::decode(format, value) || value < 1) {
    problems.add(format, "format: expected a positive integer");
  } else if (value > k_format_version) {
    problems.add(format, fmt::format("format {} is newer than this program reads ({}): use a newer kubexm", value,
                                     k_format_version));
  } else if (value < k_format_version) {
    problems.add(format, fmt::format("format {} is older than this program reads ({})", value, k_format_version));
  }
  info.format = value;
}

void read_written_by_pack(const YAML::Node& root, InfoSource source, BundleInfo& info, Problems& problems) {
  read_format(root, source, info, problems);
  if (auto created = root["created_by"]; created && created.IsScalar()) {
    info.created_by = created.Scalar();
  } else if (source == InfoSource::bundle) {
    problems.add("'created_by' is missing");
  }
  if (auto epoch = root["source_date_epoch"]) {
    std::int64_t seconds = 0;
    if (!YAML::convert<std::int64_t>::decode(epoch, seconds) || seconds < 0) {
      problems.add(epoch, "source_date_epoch: expected seconds since 1970");
    }
    info.source_date_epoch = seconds;
  } else if (source == InfoSource::bundle) {
    problems.add("'source_date_epoch' is missing");
  }
}

void check_unknown_keys(const YAML::Node& root, Problems& problems) {
  for (const auto& item : root) {
    auto key = item.first.as<std::string>("");
    if (std::ranges::none_of(k_keys, [&](const char* k) { return key == k; })) {
      problems.add(item.first, fmt::format("unknown key '{}' (known: {})", key, fmt::join(k_keys, ", ")));
    }
  }
}

void check_unknown_component_keys(const YAML::Node& node, Problems& problems) {
  for (const auto& item : node) {
    auto key = item.first.as<std::string>("");
    if (std::ranges::none_of(k_component_keys, [&](const char* k) { return key == k; })) {
      problems.add(item.first,
                   fmt::format("components: unknown key '{}' (known: {})", key, fmt::join(k_component_keys, ", ")));
    }
  }
}

void read_components(const YAML::Node& root, BundleInfo& info, Problems& problems) {
  static const std::regex name_pattern("[a-z0-9][a-z0-9._-]*");
  static const std::regex version_pattern("[0-9A-Za-z][0-9A-Za-z._+-]*");
  static const std::regex file_pattern("[A-Za-z0-9][A-Za-z0-9._+-]*");
  auto node = root["components"];
  if (!node) {
    return;
  }
  if (!node.IsSequence()) {
    problems.add(node, "components: expected a list of {name, version, arches, files}");
    return;
  }
  for (const auto& item : node) {
    if (!item.IsMap()) {
      problems.add(item, "components: expected {name, version, arches, files}");
      continue;
    }
    check_unknown_component_keys(item, problems);
    ComponentRecord record;
    record.name = read_string(item, "name", name_pattern, "a component name", problems);
    record.version = read_string(item, "version", version_pattern, "a version like '1.7.24'", problems);
    record.arches = read_list(item, "arches", name_pattern, "arches", problems);
    check_members(item, "arches", record.arches, k_arches, problems);
    record.files = read_list(item, "files", file_pattern, "file names", problems);
    info.components.push_back(std::move(record));
  }
}

void read_package_targets(const YAML::Node& root, BundleInfo& info, Problems& problems) {
  static const std::regex word_pattern("[A-Za-z0-9][A-Za-z0-9._-]*");
  // Each component starts with a letter or digit: never "." or "..".
  static const std::regex path_pattern("packages/[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");
  static const std::regex glob_pattern("[A-Za-z0-9.*?_-]+");
  auto node = root["packages"];
  if (!node) {
    return;
  }
  if (!node.IsSequence()) {
    problems.add(node, "packages: expected a list of {profile, path, format, arches, id, like, version_id}");
    return;
  }
  for (const auto& item : node) {
    if (!item.IsMap()) {
      problems.add(item, "packages: expected {profile, path, format, arches, id, like, version_id}");
      continue;
    }
    check_keys(item, {"profile", "path", "format", "arches", "id", "like", "version_id"}, "packages: ", problems);
    PackageTargetRecord record;
    record.profile = read_string(item, "profile", word_pattern, "an os-profile name", problems);
    record.path = read_string(item, "path", path_pattern, "packages/<os>/<version>", problems);
    record.format = read_string(item, "format", word_pattern, "deb or rpm", problems);
    if (!record.format.empty() && record.format != "deb" && record.format != "rpm") {
      problems.add(item["format"], fmt::format("packages: format '{}' is not deb or rpm", record.format));
    }
    record.arches = read_list(item, "arches", word_pattern, "arches", problems);
    check_members(item, "arches", record.arches, k_arches, problems);
    record.ids = read_list(item, "id", word_pattern, "os-release IDs", problems);
    if (item["like"] && item["like"].size() > 0) {
      record.like = read_list(item, "like", word_pattern, "os-release ID_LIKE values", problems);
    }
    record.version_id = read_string(item, "version_id", glob_pattern, "a VERSION_ID glob", problems);
    info.packages.push_back(std::move(record));
  }
}

void read_images(const YAML::Node& root, BundleInfo& info, Problems& problems) {
  static const std::regex ref_pattern("[a-z0-9][A-Za-z0-9._:/@-]*");
  static const std::regex digest_pattern("sha256:[0-9a-f]{64}");
  auto node = root["images"];
  if (!node) {
    return;
  }
  if (!node.IsSequence()) {
    problems.add(node, "images: expected a list of {ref, manifests: {arch: digest}}");
    return;
  }
  for (const auto& item : node) {
    if (!item.IsMap() || !item["manifests"].IsMap()) {
      problems.add(item, "images: expected {ref, manifests: {arch: digest}}");
      continue;
    }
    check_keys(item, {"ref", "digest", "manifests"}, "images: ", problems);
    ImageRecord record;
    record.ref = read_string(item, "ref", ref_pattern, "an image reference", problems);
    record.digest = read_string(item, "digest", digest_pattern, "sha256:<64 hex digits>", problems);
    for (const auto& manifest : item["manifests"]) {
      auto arch = key_of(manifest);
      auto digest = manifest.second.as<std::string>("");
      if (std::ranges::find(k_arches, arch) == k_arches.end()) {
        problems.add(manifest.first, fmt::format("images: {}: '{}' is not an arch", record.ref, arch));
      } else if (!std::regex_match(digest, digest_pattern)) {
        problems.add(manifest.second, fmt::format("images: {} {}: expected sha256:<64 hex digits>", record.ref, arch));
      } else {
        record.manifests[arch] = digest;
      }
    }
    info.images.push_back(std::move(record));
  }
}

SiteNodeRecord read_site_node(const YAML::Node& item, Problems& problems) {
  static const std::regex name_pattern("[a-z0-9]([a-z0-9-]*[a-z0-9])?");
  static const std::regex address_pattern("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
  static const std::regex word_pattern("[a-z0-9][a-z0-9._-]*");
  check_keys(item, {"name", "address", "arch", "os", "roles"}, "site: nodes: ", problems);
  SiteNodeRecord node;
  node.name = read_string(item, "name", name_pattern, "a host name", problems);
  node.address = read_string(item, "address", address_pattern, "an IPv4 address", problems);
  node.arch = read_string(item, "arch", word_pattern, "amd64 or arm64", problems);
  if (!node.arch.empty() && !one_of(node.arch, k_arches)) {
    problems.add(item["arch"], fmt::format("site: nodes: {}: '{}' is not amd64 or arm64", node.name, node.arch));
  }
  if (item["os"]) {
    node.os = read_string(item, "os", word_pattern, "an os-profile name", problems);
  }
  node.roles = read_list(item, "roles", word_pattern, "roles", problems);
  check_members(item, "roles", node.roles, k_roles, problems);
  return node;
}

void read_site(const YAML::Node& root, BundleInfo& info, Problems& problems) {
  static const std::regex name_pattern("[a-z0-9][a-z0-9._-]*");
  static const std::regex deployment_pattern("[a-z-]+/[a-z-]+/[a-z-]+/[a-z-]+");
  auto node = root["site"];
  if (!node) {
    return;
  }
  if (!node.IsMap() || !node["nodes"].IsSequence()) {
    problems.add(node, "site: expected {name, deployment, nodes: [...]}");
    return;
  }
  check_keys(node, {"name", "deployment", "apiserver_port", "nodes"}, "site: ", problems);
  SiteRecord site;
  site.name = read_string(node, "name", name_pattern, "the site's name", problems);
  site.deployment = read_string(node, "deployment", deployment_pattern, "a deployment like kubeadm/stacked-etcd/...",
                                problems);
  site.apiserver_port = node["apiserver_port"].as<int>(6443);
  if (site.apiserver_port < 1 || site.apiserver_port > 65535) {
    problems.add(node["apiserver_port"], "site: apiserver_port: not a port");
  }
  for (const auto& item : node["nodes"]) {
    if (!item.IsMap()) {
      problems.add(item, "site: nodes: expected {name, address, arch, roles}");
      continue;
    }
    auto record = read_site_node(item, problems);
    if (site.find(record.name) != nullptr) {
      problems.add(item, fmt::format("site: nodes: '{}' is listed twice", record.name));
    }
    site.nodes.push_back(std::move(record));
  }
  info.site = std::move(site);
}

void read_fields(const YAML::Node& root, InfoSource source, BundleInfo& info, Problems& problems) {
  static const std::regex name_pattern("[a-z0-9][a-z0-9._-]*");
  static const std::regex version_pattern("[0-9A-Za-z][0-9A-Za-z._+-]*");
  static const std::regex word_pattern("[a-z0-9][a-z0-9._-]*");
  check_unknown_keys(root, problems);
  info.name = read_string(root, "name", name_pattern, "a name like 'site-a' ([a-z0-9._-])", problems);
  info.version = read_string(root, "version", version_pattern, "a version like '1.0.0'", problems);
  read_written_by_pack(root, source, info, problems);
  info.arches = read_list(root, "arches", word_pattern, "arches", problems);
  check_members(root, "arches", info.arches, k_arches, problems);
  info.os_profiles = read_list(root, "os_profiles", word_pattern, "OS profile names", problems);
  info.roles = read_list(root, "roles", word_pattern, "roles", problems);
  check_members(root, "roles", info.roles, k_roles, problems);
  read_components(root, info, problems);
  read_package_targets(root, info, problems);
  read_images(root, info, problems);
  read_site(root, info, problems);
}

} // namespace

Result<BundleInfo> parse_bundle_info(std::string_view text, std::string_view what, InfoSource source) {
  Problems problems(what);
  BundleInfo info;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) {
      return fail_verification("{}: expected a mapping of keys (name, version, arches, ...)", what);
    }
    read_fields(root, source, info, problems);
  } catch (const YAML::Exception& e) {
    return fail_verification("{}: line {}: {}", what, e.mark.line + 1, e.msg);
  }
  if (auto status = problems.status(); !status) {
    return std::unexpected(status.error());
  }
  return info;
}

std::string format_bundle_info(const BundleInfo& info) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << info.name;
  out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << info.version;
  out << YAML::Key << "format" << YAML::Value << info.format;
  if (!info.created_by.empty()) {
    out << YAML::Key << "created_by" << YAML::Value << info.created_by;
  }
  if (info.source_date_epoch) {
    out << YAML::Key << "source_date_epoch" << YAML::Value << *info.source_date_epoch;
  }
  out << YAML::Key << "arches" << YAML::Value << YAML::Flow << info.arches;
  out << YAML::Key << "os_profiles" << YAML::Value << YAML::Flow << info.os_profiles;
  out << YAML::Key << "roles" << YAML::Value << YAML::Flow << info.roles;
  if (!info.components.empty()) {
    out << YAML::Key << "components" << YAML::Value << YAML::BeginSeq;
    for (const auto& component : info.components) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << component.name;
      out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << component.version;
      out << YAML::Key << "arches" << YAML::Value << YAML::Flow << component.arches;
      out << YAML::Key << "files" << YAML::Value << YAML::Flow << component.files;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (!info.packages.empty()) {
    out << YAML::Key << "packages" << YAML::Value << YAML::BeginSeq;
    for (const auto& target : info.packages) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "profile" << YAML::Value << target.profile;
      out << YAML::Key << "path" << YAML::Value << target.path;
      out << YAML::Key << "format" << YAML::Value << target.format;
      out << YAML::Key << "arches" << YAML::Value << YAML::Flow << target.arches;
      out << YAML::Key << "id" << YAML::Value << YAML::Flow << target.ids;
      out << YAML::Key << "like" << YAML::Value << YAML::Flow << target.like;
      out << YAML::Key << "version_id" << YAML::Value << YAML::DoubleQuoted << target.version_id;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (!info.images.empty()) {
    out << YAML::Key << "images" << YAML::Value << YAML::BeginSeq;
    for (const auto& image : info.images) {
      out << YAML::BeginMap;
      out << YAML::Key << "ref" << YAML::Value << image.ref;
      out << YAML::Key << "digest" << YAML::Value << YAML::DoubleQuoted << image.digest;
      out << YAML::Key << "manifests" << YAML::Value << YAML::BeginMap;
      for (const auto& [arch, digest] : image.manifests) {
        out << YAML::Key << arch << YAML::Value << YAML::DoubleQuoted << digest;
      }
      out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (info.site) {
    out << YAML::Key << "site" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << info.site->name;
    out << YAML::Key << "deployment" << YAML::Value << info.site->deployment;
    out << YAML::Key << "apiserver_port" << YAML::Value << info.site->apiserver_port;
    out << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
    for (const auto& node : info.site->nodes) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << node.name;
      out << YAML::Key << "address" << YAML::Value << node.address;
      out << YAML::Key << "arch" << YAML::Value << node.arch;
      if (!node.os.empty()) {
        out << YAML::Key << "os" << YAML::Value << node.os;
      }
      out << YAML::Key << "roles" << YAML::Value << YAML::Flow << node.roles;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

const SiteNodeRecord* SiteRecord::find(std::string_view node) const {
  auto found = std::ranges::find(nodes, node, &SiteNodeRecord::name);
  return found == nodes.end() ? nullptr : &*found;
}

std::string ComponentRecord::member_path(std::string_view arch, std::string_view file) const {
  return fmt::format("bin/{}/{}/{}/{}", arch, name, version, file);
}

std::string PackageTargetRecord::set_path(std::string_view arch) const {
  return fmt::format("{}/{}/kubexm-packages.json", path, arch);
}

std::string archive_file_name(const BundleInfo& info) {
  return fmt::format("kubexm-dist-{}-{}.tar.zst", info.name, info.version);
}

} // namespace kubexm
