#include "bundle/report.hpp"

namespace kubexm {

namespace {

nlohmann::json components_json(const BundleInfo& info) {
  auto out = nlohmann::json::array();
  for (const auto& c : info.components) {
    out.push_back({{"name", c.name}, {"version", c.version}, {"arches", c.arches}, {"files", c.files}});
  }
  return out;
}

nlohmann::json packages_json(const BundleInfo& info) {
  auto out = nlohmann::json::array();
  for (const auto& p : info.packages) {
    out.push_back({{"profile", p.profile},
                   {"path", p.path},
                   {"format", p.format},
                   {"arches", p.arches},
                   {"id", p.ids},
                   {"like", p.like},
                   {"version_id", p.version_id}});
  }
  return out;
}

nlohmann::json images_json(const BundleInfo& info) {
  auto out = nlohmann::json::array();
  for (const auto& image : info.images) {
    out.push_back({{"ref", image.ref}, {"manifests", image.manifests}});
  }
  return out;
}

nlohmann::json site_json(const BundleInfo& info) {
  if (!info.site) {
    return nullptr;
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& node : info.site->nodes) {
    nodes.push_back(
        {{"name", node.name}, {"address", node.address}, {"arch", node.arch}, {"os", node.os}, {"roles", node.roles}});
  }
  return {{"name", info.site->name},
          {"deployment", info.site->deployment},
          {"apiserver_port", info.site->apiserver_port},
          {"nodes", nodes}};
}

nlohmann::json info_json(const BundleInfo& info) {
  return {{"name", info.name},
          {"version", info.version},
          {"format", info.format},
          {"created_by", info.created_by},
          {"source_date_epoch", info.source_date_epoch.value_or(0)},
          {"arches", info.arches},
          {"os_profiles", info.os_profiles},
          {"roles", info.roles},
          {"components", components_json(info)},
          {"packages", packages_json(info)},
          {"images", images_json(info)},
          {"site", site_json(info)}};
}

// The nodes a bundle carries rendered files for: site/nodes/<node>/node.yaml members.
std::vector<std::string> site_nodes(const BundleHeader& header) {
  static constexpr std::string_view prefix = "site/nodes/";
  static constexpr std::string_view suffix = "/node.yaml";
  std::vector<std::string> nodes;
  for (const auto& entry : header.index) {
    std::string_view path = entry.path;
    if (entry.kind == EntryKind::file && path.starts_with(prefix) && path.ends_with(suffix) &&
        path.size() > prefix.size() + suffix.size()) {
      auto node = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
      if (node.find('/') == std::string_view::npos) {
        nodes.emplace_back(node);
      }
    }
  }
  return nodes;
}

} // namespace

nlohmann::json describe_bundle(const BundleHeader& header, const PayloadLocation& payload) {
  nlohmann::json out = {{"bundle", info_json(header.info)},
                        {"digest", to_hex(header.digest)},
                        {"files", header.file_count},
                        {"directories", header.directory_count},
                        {"file_bytes", header.file_bytes},
                        {"payload", {{"offset", payload.offset}, {"length", payload.length}}},
                        {"self_extracting", payload.trailer.has_value()},
                        {"site_nodes", site_nodes(header)}};
  if (payload.trailer) {
    out["trailer"] = {{"format_version", payload.trailer->format_version},
                      {"payload_offset", payload.trailer->payload_offset},
                      {"payload_length", payload.trailer->payload_length},
                      {"payload_sha256", to_hex(payload.trailer->payload_sha256)},
                      {"bundle_digest", to_hex(payload.trailer->bundle_digest)}};
  }
  return out;
}

std::string describe_bundle_text(const BundleHeader& header, const PayloadLocation& payload) {
  const auto& info = header.info;
  std::string text = fmt::format("bundle:       {} {}\n"
                                 "digest:       {}\n"
                                 "format:       {}\n"
                                 "created by:   {}\n"
                                 "arches:       {}\n"
                                 "os profiles:  {}\n"
                                 "roles:        {}\n"
                                 "contents:     {} files in {} directories, {}\n"
                                 "payload:      {} at offset {}\n",
                                 info.name, info.version, to_hex(header.digest), info.format, info.created_by,
                                 fmt::join(info.arches, ", "), fmt::join(info.os_profiles, ", "),
                                 fmt::join(info.roles, ", "), header.file_count, header.directory_count,
                                 human_bytes(header.file_bytes), human_bytes(payload.length), payload.offset);
  for (const auto& c : info.components) {
    text += fmt::format("component:    {} {} ({}): {}\n", c.name, c.version, fmt::join(c.arches, ", "),
                        fmt::join(c.files, ", "));
  }
  for (const auto& p : info.packages) {
    text += fmt::format("OS packages:  {} ({}, {}) in {}/<arch>/\n", p.profile, p.format, fmt::join(p.arches, ", "),
                        p.path);
  }
  for (const auto& image : info.images) {
    std::vector<std::string> arches;
    for (const auto& [arch, digest] : image.manifests) {
      arches.push_back(fmt::format("{} {}", arch, digest.substr(0, 19)));
    }
    text += fmt::format("image:        {} ({})\n", image.ref, fmt::join(arches, ", "));
  }
  if (auto nodes = site_nodes(header); !nodes.empty()) {
    text += fmt::format("site:         {} nodes under site/nodes: {}\n", nodes.size(), fmt::join(nodes, ", "));
  }
  if (info.site) {
    text += fmt::format("deployment:   {} ({}), the apiservers behind lb.kubexm.local:{}\n", info.site->deployment,
                        info.site->name, info.site->apiserver_port);
    for (const auto& node : info.site->nodes) {
      text += fmt::format("node:         {:<16} {:<15} {} {} {}\n", node.name, node.address, node.arch,
                          node.os.empty() ? "-" : node.os, fmt::join(node.roles, ","));
    }
  }
  if (payload.trailer) {
    text += fmt::format("trailer:      format {}, payload SHA-256 {}\n", payload.trailer->format_version,
                        to_hex(payload.trailer->payload_sha256));
  } else {
    text += "trailer:      none (a plain archive)\n";
  }
  return text;
}

std::string verified_line(const std::filesystem::path& path, const BundleHeader& header) {
  return fmt::format("{}: OK: bundle {} {}, {} files, {}, digest {}\n", path.string(), header.info.name,
                     header.info.version, header.file_count, human_bytes(header.file_bytes), to_hex(header.digest));
}

Result<std::string> describe_bundle_file(const std::filesystem::path& path, OutputFormat format) {
  auto reader = BundleReader::open(path, nullptr, "", PayloadCheck::members_only);
  if (!reader) {
    return std::unexpected(reader.error());
  }
  auto header = (*reader)->read_header();
  if (!header) {
    return add_context(header.error(), path.string());
  }
  const auto& payload = (*reader)->file().payload;
  if (format == OutputFormat::json) {
    auto out = describe_bundle(**header, payload);
    out["file"] = path.string();
    return out.dump(2) + "\n";
  }
  return fmt::format("file:         {}\n{}", path.string(), describe_bundle_text(**header, payload));
}

nlohmann::json list_members(const BundleHeader& header) {
  nlohmann::json members = nlohmann::json::array();
  for (std::size_t i = 0; i < header.index.size(); ++i) {
    const auto& entry = header.index[i];
    nlohmann::json member = {{"path", entry.path},
                             {"kind", entry.kind == EntryKind::directory ? "directory" : "file"},
                             {"mode", fmt::format("{:04o}", entry.mode)},
                             {"size", entry.size}};
    if (entry.kind == EntryKind::file) {
      member["sha256"] = to_hex(header.digests[i]);
    }
    members.push_back(std::move(member));
  }
  return members;
}

std::string list_members_text(const BundleHeader& header) {
  std::string text;
  for (std::size_t i = 0; i < header.index.size(); ++i) {
    const auto& entry = header.index[i];
    bool is_dir = entry.kind == EntryKind::directory;
    text += fmt::format("{} {:04o} {:>12} {:64} {}{}\n", is_dir ? 'd' : 'f', entry.mode, entry.size,
                        is_dir ? "-" : to_hex(header.digests[i]), entry.path, is_dir ? "/" : "");
  }
  return text;
}

} // namespace kubexm
