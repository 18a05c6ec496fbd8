#pragma once

#include "builder/fetch/fetch.hpp"
#include "builder/images/images.hpp"
#include "builder/lock.hpp"
#include "builder/images/registry_options.hpp"
#include "bundle/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kubexm {

// Where `ref` is read from: the first mirror whose `from` is the reference's registry or a
// path prefix of it, else the reference itself.
std::string image_source(const std::string& ref, const RegistryOptions& options);

// Resolves every image to the digest of what its reference names now and the platform
// manifest of each of `arches`, with skopeo. Keeps each index in the cache (the layout
// keeps its entries for these arches). All problems of all images are reported together.
Result<std::vector<LockedImage>> resolve_images(const std::vector<ImageSpec>& images,
                                                const std::vector<std::string>& arches, const Cache& cache,
                                                const RegistryOptions& options);

// Brings every platform manifest of the locked images, and their blobs, into the cache,
// copied by digest (never by tag) and verified: the manifest's digest, every blob's digest
// and size, and that each config is of the arch the index says.
Status fetch_images(const std::vector<LockedImage>& images, const Cache& cache, const RegistryOptions& options);

// Lays out images/oci (one OCI image layout for every image and arch, each blob once) and
// images/images.json (what the installer streams per arch) from a warm cache.
Status assemble_images(const std::vector<LockedImage>& images, const Cache& cache, const std::filesystem::path& tree);

// Whether a media type is an image index (OCI) or a manifest list (Docker).
bool is_image_index(std::string_view media_type);

// "<hex>" of "sha256:<hex>": a digest as a blob's file name.
std::string digest_hex(const std::string& digest);

// The directories of the image cache.
std::filesystem::path image_manifest_dir(const Cache& cache, const std::string& digest);
std::filesystem::path image_index_file(const Cache& cache, const std::string& digest);

} // namespace kubexm
