// The bundle's images: one OCI image layout (images/oci) holding every image for every
// arch, each blob once, and images/images.json, which tells the installer which blobs make
// up each image for each arch so that it can stream one arch without reading the layout's
// index first (the archive holds members in path order; images.json comes before oci/).
#include "builder/images/registry.hpp"
#include "bundle/fs.hpp"
#include "bundle/sha256.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_oci_index = "application/vnd.oci.image.index.v1+json";

// Puts a cached file into the layout as blob `digest`, once: a hard link when the cache is
// on the same filesystem, a copy otherwise.
Status add_blob(const fs::path& from, const fs::path& blobs, const std::string& digest, std::uint64_t& bytes) {
  auto to = blobs / digest_hex(digest);
  std::error_code ec;
  if (fs::exists(to, ec)) {
    return {};
  }
  fs::create_hard_link(from, to, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(from, to, ec);
    if (ec) {
      return fail("copying {} into the image layout: {}", from.string(), ec.message());
    }
  }
  fs::permissions(to, fs::perms(0644), ec);
  bytes += fs::file_size(to, ec);
  return {};
}

Status add_text_blob(const std::string& text, const fs::path& blobs, std::uint64_t& bytes) {
  auto to = blobs / to_hex(sha256_of(text));
  std::error_code ec;
  if (fs::exists(to, ec)) {
    return {};
  }
  bytes += text.size();
  return write_file_atomic(to, text);
}

// The descriptor of the platform manifest of `arch`, as the index gave it (annotations and
// all), or made from the lock for an image without an index.
nlohmann::json arch_descriptor(const nlohmann::json* index, const LockedImageArch& arch) {
  if (index != nullptr) {
    for (const auto& entry : (*index)["manifests"]) {
      if (entry.value("digest", "") == arch.digest) {
        return entry;
      }
    }
  }
  nlohmann::json platform = {{"os", "linux"}, {"architecture", arch.arch}};
  return {{"mediaType", arch.media_type}, {"digest", arch.digest}, {"size", arch.size}, {"platform", platform}};
}

struct LaidOut {
  nlohmann::json descriptor; // what index.json names the image by
  nlohmann::json arches;     // for images.json
};

Result<LaidOut> lay_out(const LockedImage& image, const Cache& cache, const fs::path& blobs, std::uint64_t& bytes) {
  LaidOut out;
  out.arches = nlohmann::json::object();
  nlohmann::json index;
  std::string index_text; // as published: kept whole when every entry is
  bool has_index = is_image_index(image.media_type);
  if (has_index) {
    auto raw = read_text_file(image_index_file(cache, image.digest), 16 << 20);
    if (!raw) {
      return add_context(raw.error(), fmt::format("{}: the index is not in the cache (run fetch)", image.ref));
    }
    if ("sha256:" + to_hex(sha256_of(*raw)) != image.digest) {
      return fail_verification("{}: the cached index does not have the locked digest {}", image.ref, image.digest);
    }
    index_text = std::move(*raw);
    index = nlohmann::json::parse(index_text, nullptr, false);
  }
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& arch : image.arches) {
    auto dir = image_manifest_dir(cache, arch.digest);
    auto manifest_text = read_text_file(dir / "manifest.json", 16 << 20);
    if (!manifest_text) {
      return add_context(manifest_text.error(),
                         fmt::format("{} ({}): not in the cache (run fetch)", image.ref, arch.arch));
    }
    if ("sha256:" + to_hex(sha256_of(*manifest_text)) != arch.digest) {
      return fail_verification("{} ({}): the cached manifest does not have the locked digest {}", image.ref, arch.arch,
                               arch.digest);
    }
    if (auto status = add_text_blob(*manifest_text, blobs, bytes); !status) {
      return std::unexpected(status.error());
    }
    auto manifest = nlohmann::json::parse(*manifest_text);
    std::vector<nlohmann::json> parts{manifest["config"]};
    for (const auto& layer : manifest["layers"]) {
      parts.push_back(layer);
    }
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& part : parts) {
      auto digest = part.value("digest", "");
      if (auto status = add_blob(dir / digest_hex(digest), blobs, digest, bytes); !status) {
        return std::unexpected(status.error());
      }
      listed.push_back({{"digest", digest}, {"size", part.value("size", std::uint64_t{0})}});
    }
    out.arches[arch.arch] = {
        {"digest", arch.digest}, {"size", arch.size}, {"media_type", arch.media_type}, {"blobs", listed}};
    kept.push_back(arch_descriptor(has_index ? &index : nullptr, arch));
  }
  if (!has_index) {
    // One manifest: index.json names it directly.
    out.descriptor = kept.front();
    return out;
  }
  if (kept.size() == index["manifests"].size()) {
    // Every entry of the index is kept: the layout holds the index as published, with its digest.
    if (auto status = add_text_blob(index_text, blobs, bytes); !status) {
      return std::unexpected(status.error());
    }
    out.descriptor = {{"mediaType", image.media_type}, {"digest", image.digest}, {"size", index_text.size()}};
    return out;
  }
  // The index without the arches the bundle does not carry (and attestations).
  nlohmann::json filtered = {{"schemaVersion", 2}, {"mediaType", image.media_type}, {"manifests", kept}};
  auto text = filtered.dump();
  if (auto status = add_text_blob(text, blobs, bytes); !status) {
    return std::unexpected(status.error());
  }
  out.descriptor = {
      {"mediaType", image.media_type}, {"digest", "sha256:" + to_hex(sha256_of(text))}, {"size", text.size()}};
  return out;
}

} // namespace

Status assemble_images(const std::vector<LockedImage>& images, const Cache& cache, const fs::path& tree) {
  if (images.empty()) {
    return {};
  }
  auto layout = tree / "images" / "oci";
  auto blobs = layout / "blobs" / "sha256";
  std::error_code ec;
  fs::create_directories(blobs, ec);
  if (ec) {
    return fail("creating {}: {}", blobs.string(), ec.message());
  }
  nlohmann::json manifests = nlohmann::json::array();
  nlohmann::json listed = nlohmann::json::array();
  std::uint64_t bytes = 0;
  std::vector<Error> errors;
  for (const auto& image : images) {
    auto laid = lay_out(image, cache, blobs, bytes);
    if (!laid) {
      errors.push_back(laid.error());
      continue;
    }
    auto descriptor = laid->descriptor;
    // ref.name is what OCI tools (skopeo oci:DIR:REF) look an image up by; containerd's
    // importer takes the full name from its own annotation.
    descriptor["annotations"] = {{"org.opencontainers.image.ref.name", image.ref},
                                 {"io.containerd.image.name", image.ref}};
    descriptor.erase("platform");
    manifests.push_back(descriptor);
    listed.push_back({{"ref", image.ref},
                      {"name", image.name},
                      {"digest", image.digest},
                      {"layout_digest", descriptor["digest"]},
                      {"arches", laid->arches},
                      {"missing_arches", image.missing}});
  }
  if (auto status = join_errors(errors); !status) {
    return status;
  }
  nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", k_oci_index}, {"manifests", manifests}};
  if (auto status = write_file_atomic(layout / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}\n"); !status) {
    return status;
  }
  if (auto status = write_file_atomic(layout / "index.json", index.dump(2) + "\n"); !status) {
    return status;
  }
  nlohmann::json summary = {{"format", 1}, {"layout", "images/oci"}, {"images", listed}};
  if (auto status = write_file_atomic(tree / "images" / "images.json", summary.dump(2) + "\n"); !status) {
    return status;
  }
  spdlog::info("laid out {} images in {} ({} bytes of blobs, each once)", images.size(), layout.string(), bytes);
  return {};
}

} // namespace kubexm
