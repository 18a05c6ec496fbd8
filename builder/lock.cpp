#include "builder/lock.hpp"

#include "bundle/fs.hpp"
#include "bundle/json_fields.hpp"

#include <algorithm>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace kubexm {

namespace {

constexpr const char* k_kind = "kubexm-lock";
constexpr int k_lock_format = 2; // 2: package_sets (images were added without a new format: absent means none)

nlohmann::json member_json(const LockedMember& member) {
  return {{"path", member.path}, {"install", member.install}, {"size", member.size}, {"sha256", member.sha256}};
}

nlohmann::json artifact_json(const LockedArtifact& a) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& member : a.members) {
    members.push_back(member_json(member));
  }
  return {{"component", a.component},
          {"version", a.version},
          {"arch", a.arch},
          {"url", a.url},
          {"size", a.size},
          {"sha256", a.sha256},
          {"kind", to_string(a.kind)},
          {"checksum_url", a.checksum_url},
          {"pin", to_string(a.pin)},
          {"members", members}};
}

const std::regex k_hex("[0-9a-f]{64}");

LockedArtifact read_artifact(const nlohmann::json& object, std::string where, std::vector<std::string>& problems) {
  Fields fields(object, where, problems);
  LockedArtifact a;
  a.component = fields.text("component");
  a.version = fields.text("version");
  a.arch = fields.text("arch", std::regex("amd64|arm64"));
  a.url = fields.text("url", std::regex("https?://.+"));
  a.size = fields.number("size");
  a.sha256 = fields.text("sha256", k_hex);
  auto kind = fields.text("kind", std::regex("file|tar\\.gz"));
  a.kind = kind == "tar.gz" ? ArtifactKind::tar_gz : ArtifactKind::file;
  a.checksum_url = fields.text("checksum_url");
  auto pin = fields.text("pin", std::regex("none|catalogue|manifest"));
  a.pin = pin == "catalogue" ? PinSource::catalogue : pin == "manifest" ? PinSource::manifest : PinSource::none;
  const auto& members = fields.at("members");
  if (!members.is_array() || members.empty()) {
    problems.push_back(fmt::format("{}: 'members' must list the binaries it holds", where));
    return a;
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    Fields member(members[i], fmt::format("{} member {}", where, i + 1), problems);
    a.members.push_back({member.text("path"), member.text("install", std::regex("[A-Za-z0-9][A-Za-z0-9._+-]*")),
                         member.number("size"), member.text("sha256", k_hex)});
  }
  return a;
}

const std::regex k_image_digest("sha256:[0-9a-f]{64}");

nlohmann::json image_json(const LockedImage& image) {
  nlohmann::json arches = nlohmann::json::object();
  for (const auto& arch : image.arches) {
    arches[arch.arch] = {{"digest", arch.digest}, {"size", arch.size}, {"media_type", arch.media_type}};
  }
  return {{"name", image.name},     {"ref", image.ref},
          {"digest", image.digest}, {"media_type", image.media_type},
          {"arches", arches},       {"missing_arches", image.missing}};
}

LockedImage read_image(const nlohmann::json& object, const std::string& where, std::vector<std::string>& problems) {
  Fields fields(object, where, problems);
  LockedImage image;
  image.name = fields.text("name");
  image.ref = fields.text("ref", std::regex("[^\\s]+"));
  image.digest = fields.text("digest", k_image_digest);
  image.media_type = fields.text("media_type");
  image.missing = fields.list("missing_arches");
  const auto& arches = fields.at("arches");
  if (!arches.is_object()) {
    problems.push_back(fmt::format("{}: 'arches' must map each arch to its manifest", where));
    return image;
  }
  for (const auto& [arch, manifest] : arches.items()) {
    Fields entry(manifest, fmt::format("{} {}", where, arch), problems);
    image.arches.push_back(
        {arch, entry.text("digest", k_image_digest), entry.number("size"), entry.text("media_type")});
  }
  return image;
}

// The images of the lock against the manifest's: the same references, for the same arches.
void compare_images(const Lock& lock, const Plan& plan, std::vector<std::string>& differences) {
  std::map<std::string, const LockedImage*> unmatched;
  for (const auto& image : lock.images) {
    unmatched[image.ref] = &image;
  }
  for (const auto& planned : plan.images) {
    if (unmatched.erase(planned.ref) == 0) {
      differences.push_back(fmt::format("image not in the lock: {}", planned.ref));
    }
  }
  for (const auto& [ref, _] : unmatched) {
    differences.push_back(fmt::format("image no longer in the manifest: {}", ref));
  }
}

// What must still hold of a locked artifact for the manifest and catalogue as they are now:
// the pinned digest (a re-pinned component must not ship the old bytes), and how the
// download is checked and unpacked.
void compare_artifact(const LockedArtifact& locked, const Artifact& planned, std::vector<std::string>& differences) {
  auto label = locked.label();
  if (planned.pin && *planned.pin != locked.sha256) {
    differences.push_back(fmt::format("{}: the {} pins {}, the lock has {}", label, to_string(planned.pin_source),
                                      *planned.pin, locked.sha256));
  }
  if (planned.kind != locked.kind || planned.checksum_url != locked.checksum_url) {
    differences.push_back(fmt::format("{}: the catalogue's download kind or checksum file changed", label));
  }
  std::vector<std::pair<std::string, std::string>> planned_members;
  std::vector<std::pair<std::string, std::string>> locked_members;
  for (const auto& m : planned.members) {
    planned_members.emplace_back(m.path, m.install);
  }
  for (const auto& m : locked.members) {
    locked_members.emplace_back(m.path, m.install);
  }
  if (planned_members != locked_members) {
    differences.push_back(fmt::format("{}: the catalogue's list of binaries changed", label));
  }
}

// What must still hold of the locked package sets: one per profile and arch, asking for
// what the profile and packages.yaml ask for now, from the profile's repositories.
void compare_package_sets(const Lock& lock, const Plan& plan, std::vector<std::string>& differences) {
  std::size_t expected = 0;
  for (const auto& profile : plan.profiles) {
    for (const auto& arch : plan.bundle.arches) {
      ++expected;
      auto locked = std::ranges::find_if(
          lock.package_sets, [&](const PackageSet& s) { return s.profile == profile.name && s.arch == arch; });
      if (locked == lock.package_sets.end()) {
        differences.push_back(fmt::format("no package set for {} {} in the lock", profile.name, arch));
        continue;
      }
      for (const auto& role : plan.bundle.roles) {
        auto wanted = role_packages(plan.package_sets, profile, role, plan.bundle.extra_packages);
        auto found = locked->roles.find(role);
        if (found == locked->roles.end() || found->second.requested != wanted) {
          differences.push_back(fmt::format("{} {}: the packages of role {} changed", profile.name, arch, role));
        }
      }
      std::map<std::string, std::string> pins;
      for (const auto& [name, pin] : profile.pins) {
        pins[name] = pin.text;
      }
      if (locked->best != profile.best || locked->pins != pins) {
        differences.push_back(fmt::format("{} {}: best: or pins: changed", profile.name, arch));
      }
      for (const auto& repository : profile.repositories) {
        auto base = profile.repository_url(repository, arch) + "/";
        if (std::ranges::none_of(locked->metadata, [&](const MetadataRecord& m) { return m.url.starts_with(base); })) {
          differences.push_back(
              fmt::format("{} {}: repository {} ({}) is not in the lock", profile.name, arch, repository.name, base));
        }
      }
    }
  }
  if (lock.package_sets.size() != expected) {
    differences.push_back(
        fmt::format("the lock has {} package sets, the manifest asks for {}", lock.package_sets.size(), expected));
  }
}

} // namespace

const LockedImageArch* LockedImage::find(std::string_view arch) const {
  auto found = std::ranges::find(arches, arch, &LockedImageArch::arch);
  return found == arches.end() ? nullptr : &*found;
}

std::string LockedArtifact::label() const {
  return fmt::format("{} {} {}", component, version, arch);
}

std::string format_lock(const Lock& lock) {
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& artifact : lock.artifacts) {
    artifacts.push_back(artifact_json(artifact));
  }
  nlohmann::json package_sets = nlohmann::json::array();
  for (const auto& set : lock.package_sets) {
    package_sets.push_back(package_set_json(set));
  }
  nlohmann::json images = nlohmann::json::array();
  for (const auto& image : lock.images) {
    images.push_back(image_json(image));
  }
  nlohmann::json out = {{"kind", k_kind},
                        {"format", k_lock_format},
                        {"bundle",
                         {{"name", lock.bundle.name},
                          {"version", lock.bundle.version},
                          {"kubernetes", lock.bundle.kubernetes},
                          {"arches", lock.bundle.arches},
                          {"os_profiles", lock.bundle.os_profiles},
                          {"roles", lock.bundle.roles},
                          {"images", lock.bundle.images},
                          {"closure", lock.bundle.closure},
                          {"extra_packages", lock.bundle.extra_packages}}},
                        {"artifacts", artifacts},
                        {"package_sets", package_sets},
                        {"images", images}};
  return out.dump(2) + "\n";
}

Result<Lock> parse_lock(std::string_view text, std::string_view what) {
  auto root = nlohmann::json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    return fail("{}: not a kubexm lock file (not JSON)", what);
  }
  const auto& kind = root.contains("kind") ? root["kind"] : nlohmann::json();
  if (!kind.is_string() || kind.get<std::string>() != k_kind) {
    return fail("{}: not a kubexm lock file (kind is not '{}')", what, k_kind);
  }
  if (root.value("format", 0) != k_lock_format) {
    return fail("{}: lock format {} is not {}: resolve again with this kubexm-builder", what, root.value("format", 0),
                k_lock_format);
  }
  std::vector<std::string> problems;
  Lock lock;
  Fields bundle(root.contains("bundle") ? root["bundle"] : nlohmann::json(), "bundle", problems);
  lock.bundle.name = bundle.text("name");
  lock.bundle.version = bundle.text("version");
  lock.bundle.kubernetes = bundle.text("kubernetes");
  lock.bundle.arches = bundle.list("arches");
  lock.bundle.os_profiles = bundle.list("os_profiles");
  lock.bundle.roles = bundle.list("roles");
  lock.bundle.closure = bundle.text("closure", std::regex("minimal|full|none"));
  lock.bundle.extra_packages = bundle.list("extra_packages");
  if (const auto& images = bundle.at("images"); images.is_object()) {
    for (const auto& [image, tag] : images.items()) {
      lock.bundle.images[image] = tag.is_string() ? tag.get<std::string>() : "";
    }
  }
  const auto& artifacts = root.contains("artifacts") ? root["artifacts"] : nlohmann::json();
  if (!artifacts.is_array()) {
    problems.emplace_back("'artifacts' is missing");
  } else {
    for (std::size_t i = 0; i < artifacts.size(); ++i) {
      lock.artifacts.push_back(read_artifact(artifacts[i], fmt::format("artifact {}", i + 1), problems));
    }
  }
  const auto& sets = root.contains("package_sets") ? root["package_sets"] : nlohmann::json();
  for (std::size_t i = 0; sets.is_array() && i < sets.size(); ++i) {
    auto set = parse_package_set(sets[i], fmt::format("package set {}", i + 1));
    if (!set) {
      problems.push_back(set.error().message());
    } else {
      lock.package_sets.push_back(std::move(*set));
    }
  }
  const auto& images = root.contains("images") ? root["images"] : nlohmann::json::array();
  for (std::size_t i = 0; images.is_array() && i < images.size(); ++i) {
    lock.images.push_back(read_image(images[i], fmt::format("image {}", i + 1), problems));
  }
  if (!problems.empty()) {
    return fail("{}: {}", what, fmt::join(problems, fmt::format("\n{}: ", what)));
  }
  return lock;
}

Result<Lock> read_lock(const std::filesystem::path& path) {
  auto text = read_text_file(path, 64 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  return parse_lock(*text, path.string());
}

Status check_lock_matches(const Lock& lock, const Plan& plan, const std::filesystem::path& lock_path) {
  // Locked artifacts by "<label> from <url>"; each one the plan matches is taken out, so
  // what remains is no longer in the manifest.
  std::map<std::string, const LockedArtifact*> unmatched;
  for (const auto& a : lock.artifacts) {
    unmatched[fmt::format("{} from {}", a.label(), a.url)] = &a;
  }
  std::vector<std::string> differences;
  auto field = [&](std::string_view name, const auto& locked, const auto& planned) {
    if (locked != planned) {
      differences.push_back(fmt::format("{}: the lock has {}, the manifest {}", name, locked, planned));
    }
  };
  field("name", lock.bundle.name, plan.bundle.name);
  field("version", lock.bundle.version, plan.bundle.version);
  field("kubernetes", lock.bundle.kubernetes, plan.bundle.kubernetes);
  field("arches", lock.bundle.arches, plan.bundle.arches);
  field("os_profiles", lock.bundle.os_profiles, plan.bundle.os_profiles);
  field("roles", lock.bundle.roles, plan.bundle.roles);
  field("images", lock.bundle.images, plan.bundle.images);
  field("packages: closure", lock.bundle.closure, plan.bundle.closure);
  field("packages: extra", lock.bundle.extra_packages, plan.bundle.extra_packages);
  compare_package_sets(lock, plan, differences);
  compare_images(lock, plan, differences);
  for (const auto& planned : plan.artifacts) {
    auto key = fmt::format("{} from {}", planned.label(), planned.url);
    if (auto found = unmatched.find(key); found != unmatched.end()) {
      compare_artifact(*found->second, planned, differences);
      unmatched.erase(found);
    } else {
      differences.push_back(fmt::format("not in the lock: {}", key));
    }
  }
  for (const auto& [key, _] : unmatched) {
    differences.push_back(fmt::format("no longer in the manifest: {}", key));
  }
  if (differences.empty()) {
    return {};
  }
  return std::unexpected(
      Error(ErrorKind::usage,
            fmt::format("{} was not made from {}:\n  {}\nrun `kubexm-builder resolve -f {} -o {}` to update it",
                        lock_path.string(), plan.manifest_path.string(), fmt::join(differences, "\n  "),
                        plan.manifest_path.string(), lock_path.string())));
}

} // namespace kubexm
