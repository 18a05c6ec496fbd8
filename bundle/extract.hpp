#pragma once

#include "bundle/error.hpp"
#include "bundle/progress.hpp"
#include "bundle/reader.hpp"

#include <filesystem>
#include <span>
#include <string>

namespace kubexm {

// What an extraction did.
enum class ExtractOutcome {
  extracted,       // the bundle is now at the target
  already_present, // the target already held this very bundle; nothing was changed
};

struct ExtractReport {
  ExtractOutcome outcome;
  BundleHeader header;
};

// Extracts a bundle into `target` with one verifying pass. Members are written into a
// staging directory next to the target (same filesystem) and the staging directory is
// renamed onto the target only after the whole payload verified; on any failure, or an
// interrupt, the staging directory is removed and the target is as it was. A target that
// exists must be empty or hold the same bundle (same SHA256SUMS). A staging directory
// left by a killed run is recognised by its marker and replaced.
// With `only` (a member directory such as "packages/debian/12/amd64"), the whole bundle is
// still verified, but only that directory (and the directories above it) is written, with
// the bundle's metadata files; "already holds this bundle" then concerns that part.
Result<ExtractReport> extract_bundle(const std::filesystem::path& bundle, const std::filesystem::path& target,
                                     Progress* progress, std::string_view only = {});
// The same with several directories (none: everything).
Result<ExtractReport> extract_bundle(const std::filesystem::path& bundle, const std::filesystem::path& target,
                                     Progress* progress, std::span<const std::string> only);

// The name of the marker file inside a staging directory; pack refuses it as a member.
inline constexpr std::string_view k_staging_marker = ".kubexm-staging";

} // namespace kubexm
