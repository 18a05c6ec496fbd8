#include "builder/images/images.hpp"

#include "bundle/yaml_fields.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <regex>
#include <set>

namespace kubexm {

namespace {

// The grammar of the distribution spec, in the parts kubexm accepts.
const std::regex k_path_component("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
const std::regex
    k_registry("(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
               "(?::[0-9]+)?");
const std::regex k_tag("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
const std::regex k_digest("sha256:[0-9a-f]{64}");

bool looks_like_registry(std::string_view first) {
  return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos || first == "localhost";
}

std::string bool_text(bool value) {
  return value ? "true" : "false";
}

// loadbalancer: {enabled, mode, type} as one fact: none, internal-haproxy, kube-vip, ...
std::string read_loadbalancer(const YAML::Node& node, Problems& problems) {
  if (!node) {
    return "none";
  }
  if (!node.IsMap()) {
    problems.add(node, "cluster: loadbalancer: expected {enabled: true, mode: internal|kube-vip|external, type: ...}");
    return "none";
  }
  check_keys(node, {"enabled", "mode", "type"}, "cluster: loadbalancer: ", problems);
  bool enabled = node["enabled"] ? node["enabled"].as<bool>(false) : true;
  if (!enabled) {
    return "none";
  }
  static const std::regex modes("internal|kube-vip|external");
  auto mode = read_scalar(node, "mode", modes, "cluster: loadbalancer: mode: internal, kube-vip or external", problems);
  if (mode == "kube-vip") {
    if (node["type"]) {
      problems.add(node["type"], "cluster: loadbalancer: kube-vip takes no type (it is its own load balancer)");
    }
    return mode;
  }
  if (mode == "internal") {
    static const std::regex types("haproxy|nginx");
    auto type =
        read_scalar(node, "type", types,
                    "cluster: loadbalancer: internal needs type: haproxy or nginx (a proxy on every node)", problems);
    return type.empty() ? "none" : "internal-" + type;
  }
  if (mode == "external") {
    static const std::regex types("kubexm-kh|kubexm-kn");
    auto type =
        read_scalar(node, "type", types,
                    "cluster: loadbalancer: external needs type: kubexm-kh (keepalived and haproxy) or kubexm-kn "
                    "(keepalived and nginx) on the lb hosts",
                    problems);
    return type.empty() ? "none" : "external-" + type;
  }
  return "none";
}

struct CatalogueImage {
  std::string name;
  std::string image;
  std::string tag;
  std::map<std::string, std::vector<std::string>> when; // fact -> any of these values
  YAML::Node node;
};

const std::set<std::string> k_facts = {"type", "etcd", "cni", "nodelocaldns", "loadbalancer"};

std::vector<CatalogueImage> read_catalogue(const std::filesystem::path& path, Problems& problems) {
  std::vector<CatalogueImage> out;
  auto root = load_yaml(path, problems);
  if (!root) {
    return out;
  }
  check_keys(root, {"images"}, "", problems);
  auto images = root["images"];
  if (!images || !images.IsMap()) {
    problems.add(root, "images: expected a mapping of name to {image, tag, when}");
    return out;
  }
  static const std::regex name_pattern("[a-z0-9][a-z0-9.-]*");
  static const std::regex image_pattern("[a-z0-9.:/_-]+");
  static const std::regex tag_template("[A-Za-z0-9_{}.-]+");
  for (const auto& item : images) {
    CatalogueImage entry;
    entry.name = key_of(item);
    entry.node = item.second;
    if (!std::regex_match(entry.name, name_pattern) || !item.second.IsMap()) {
      problems.add(item.first,
                   fmt::format("images: '{}': expected a name ([a-z0-9.-]) with {{image, tag, when}}", entry.name));
      continue;
    }
    check_keys(item.second, {"image", "tag", "when"}, fmt::format("images: {}: ", entry.name), problems);
    entry.image = read_scalar(item.second, "image", image_pattern, "a repository like registry.k8s.io/pause", problems);
    entry.tag = read_scalar(item.second, "tag", tag_template, "a tag, with {name} for a release file tag", problems);
    if (auto when = item.second["when"]) {
      if (!when.IsMap()) {
        problems.add(when, fmt::format("images: {}: when: expected {{fact: value or [values]}}", entry.name));
        continue;
      }
      for (const auto& condition : when) {
        auto fact = key_of(condition);
        if (!k_facts.contains(fact)) {
          problems.add(condition.first, fmt::format("images: {}: when: '{}' is not one of {}", entry.name, fact,
                                                    fmt::join(k_facts, ", ")));
          continue;
        }
        auto& values = entry.when[fact];
        if (condition.second.IsSequence()) {
          for (const auto& value : condition.second) {
            values.push_back(value.as<std::string>(""));
          }
        } else {
          values.push_back(condition.second.as<std::string>(""));
        }
      }
    }
    out.push_back(std::move(entry));
  }
  return out;
}

bool holds(const CatalogueImage& entry, const std::map<std::string, std::string>& facts) {
  return std::ranges::all_of(entry.when, [&](const auto& condition) {
    return std::ranges::find(condition.second, facts.at(condition.first)) != condition.second.end();
  });
}

// The tag template with every {name} taken from the release file; a problem for a name
// the release file does not have.
std::optional<std::string> fill_tag(const CatalogueImage& entry, const std::map<std::string, std::string>& tags,
                                    const std::string& kubernetes, Problems& problems) {
  auto tag = expand(entry.tag, "kubernetes", kubernetes);
  static const std::regex placeholder("\\{([a-z0-9-]+)\\}");
  std::smatch match;
  while (std::regex_search(tag, match, placeholder)) {
    auto found = tags.find(match[1].str());
    if (found == tags.end()) {
      problems.add(entry.node["tag"], fmt::format("images: {}: the release file for Kubernetes {} has no images: {} "
                                                  "tag",
                                                  entry.name, kubernetes, match[1].str()));
      return std::nullopt;
    }
    tag = expand(tag, match[1].str(), found->second);
  }
  return tag;
}

} // namespace

std::map<std::string, std::string> ClusterSpec::facts() const {
  return {{"type", type},
          {"etcd", etcd},
          {"cni", cni},
          {"nodelocaldns", bool_text(nodelocaldns)},
          {"loadbalancer", loadbalancer}};
}

Result<std::string> normalize_reference(std::string_view ref) {
  std::string text(ref);
  std::string digest;
  if (auto at = text.find('@'); at != std::string::npos) {
    digest = text.substr(at + 1);
    text.resize(at);
    if (!std::regex_match(digest, k_digest)) {
      return fail("'{}': the digest after @ is not sha256: and 64 lower-case hex digits", ref);
    }
  }
  std::string tag;
  auto slash = text.rfind('/');
  auto colon = text.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = text.substr(colon + 1);
    text.resize(colon);
    if (!std::regex_match(tag, k_tag)) {
      return fail("'{}': '{}' is not a tag ([A-Za-z0-9_.-], at most 128)", ref, tag);
    }
  }
  if (tag.empty() && digest.empty()) {
    return fail("'{}' has no tag: write {}:TAG (without one it means 'latest', which changes under a lock)", ref, ref);
  }
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    auto end = text.find('/', start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  std::string registry = "docker.io";
  if (parts.size() > 1 && looks_like_registry(parts.front())) {
    registry = parts.front();
    parts.erase(parts.begin());
    if (!std::regex_match(registry, k_registry)) {
      return fail("'{}': '{}' is not a registry host", ref, registry);
    }
  }
  if (registry == "docker.io" && parts.size() == 1) {
    parts.insert(parts.begin(), "library");
  }
  for (const auto& part : parts) {
    if (!std::regex_match(part, k_path_component)) {
      return fail("'{}': '{}' is not a repository path component (lower-case letters, digits, . _ -)", ref, part);
    }
  }
  auto out = fmt::format("{}/{}", registry, fmt::join(parts, "/"));
  // With a digest, the tag says nothing more (and skopeo refuses both): the digest is kept,
  // as docker and the CRI do.
  if (!digest.empty()) {
    out += "@" + digest;
  } else {
    out += ":" + tag;
  }
  return out;
}

ReferenceParts split_reference(const std::string& normalized) {
  ReferenceParts parts;
  auto name = normalized;
  if (auto at = name.find('@'); at != std::string::npos) {
    parts.digest = name.substr(at + 1);
    name.resize(at);
  }
  auto slash = name.find('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && colon > name.rfind('/')) {
    parts.tag = name.substr(colon + 1);
    name.resize(colon);
  }
  parts.registry = name.substr(0, slash);
  parts.repository = name;
  return parts;
}

ClusterSpec read_cluster(const YAML::Node& node, Problems& problems) {
  ClusterSpec spec;
  if (node.IsNull()) {
    return spec; // `cluster:` with nothing under it: every default
  }
  if (!node.IsMap()) {
    problems.add(node, "cluster: expected {type, etcd, cni, nodelocaldns, loadbalancer}");
    return spec;
  }
  check_keys(node, {"type", "etcd", "cni", "nodelocaldns", "loadbalancer"}, "cluster: ", problems);
  static const std::regex types("kubeadm|kubexm");
  static const std::regex cnis("calico|flannel|cilium|kube-router|none");
  if (node["type"]) {
    spec.type = read_scalar(node, "type", types, "kubeadm or kubexm (binaries under systemd)", problems);
  }
  if (node["etcd"]) {
    spec.etcd = read_scalar(node, "etcd", types, "kubeadm (a static pod) or kubexm (a binary under systemd)", problems);
  } else if (spec.type == "kubexm") {
    spec.etcd = "kubexm";
  }
  if (spec.type == "kubexm" && spec.etcd == "kubeadm") {
    problems.add(node["etcd"], "cluster: etcd: kubeadm needs type: kubeadm (a kubexm cluster runs etcd as a binary)");
  }
  if (node["cni"]) {
    spec.cni = read_scalar(node, "cni", cnis, "calico, flannel, cilium, kube-router or none", problems);
  }
  if (auto local_dns = node["nodelocaldns"]) {
    static const std::regex booleans("true|false");
    spec.nodelocaldns = read_scalar(node, "nodelocaldns", booleans, "true or false", problems) != "false";
  }
  spec.loadbalancer = read_loadbalancer(node["loadbalancer"], problems);
  return spec;
}

std::vector<ImageSpec> derive_images(const std::filesystem::path& catalogue_path, const ClusterSpec* cluster,
                                     const std::map<std::string, std::string>& tags, const std::string& kubernetes,
                                     const std::vector<std::string>& extras, const YAML::Node& extras_node,
                                     Problems& catalogue_problems, Problems& manifest_problems) {
  std::vector<ImageSpec> out;
  auto facts = cluster ? cluster->facts() : std::map<std::string, std::string>{};
  for (const auto& entry : read_catalogue(catalogue_path, catalogue_problems)) {
    if (!cluster || !holds(entry, facts)) {
      continue;
    }
    auto tag = fill_tag(entry, tags, kubernetes, catalogue_problems);
    if (!tag) {
      continue;
    }
    auto ref = normalize_reference(fmt::format("{}:{}", entry.image, *tag));
    if (!ref) {
      catalogue_problems.add(entry.node, fmt::format("images: {}: {}", entry.name, ref.error().message()));
      continue;
    }
    out.push_back({entry.name, *ref});
  }
  for (std::size_t i = 0; i < extras.size(); ++i) {
    auto ref = normalize_reference(extras[i]);
    if (!ref) {
      manifest_problems.add(extras_node[i], fmt::format("images: {}", ref.error().message()));
      continue;
    }
    out.push_back({"extra", *ref});
  }
  std::ranges::sort(out, {}, &ImageSpec::ref);
  auto [first, last] = std::ranges::unique(out, {}, &ImageSpec::ref);
  out.erase(first, last);
  return out;
}

} // namespace kubexm
