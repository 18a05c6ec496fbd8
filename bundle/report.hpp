#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bundle/reader.hpp"
#include "bundle/trailer.hpp"

namespace kubexm {

// What `info`/`inspect` print about a bundle, as JSON (stable keys, documented in
// docs/bundle-format.md) ...
nlohmann::json describe_bundle(const BundleHeader& header, const PayloadLocation& payload);

// ... and as text for people.
std::string describe_bundle_text(const BundleHeader& header, const PayloadLocation& payload);

// Every member with kind, mode, size and SHA-256, as JSON ...
nlohmann::json list_members(const BundleHeader& header);

// ... and as text, one member a line: "f 0755 12345 <sha256> path".
std::string list_members_text(const BundleHeader& header);

} // namespace kubexm
