#pragma once

#include "bundle/reader.hpp"
#include "bundle/trailer.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace kubexm {

// What `info`/`inspect` print about a bundle, as JSON (stable keys, documented in
// docs/bundle-format.md) ...
nlohmann::json describe_bundle(const BundleHeader& header, const PayloadLocation& payload);

// ... and as text for people.
std::string describe_bundle_text(const BundleHeader& header, const PayloadLocation& payload);

// The line `verify` prints for a bundle that passed.
std::string verified_line(const std::filesystem::path& path, const BundleHeader& header);

// Reads the metadata of the bundle at `path` and describes it (what `inspect` and `info`
// print): JSON with the file's path added, or text.
enum class OutputFormat { text, json };
Result<std::string> describe_bundle_file(const std::filesystem::path& path, OutputFormat format);

// Every member with kind, mode, size and SHA-256, as JSON ...
nlohmann::json list_members(const BundleHeader& header);

// ... and as text, one member a line: "f 0755 12345 <sha256> path".
std::string list_members_text(const BundleHeader& header);

} // namespace kubexm
