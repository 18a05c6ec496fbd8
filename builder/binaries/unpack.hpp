#pragma once

#include "builder/lock.hpp"
#include "builder/manifest.hpp"
#include "bundle/error.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kubexm {

// What to take out of one downloaded file.
struct UnpackRequest {
  std::filesystem::path file; // the download, in the cache
  ArtifactKind kind = ArtifactKind::file;
  std::vector<MemberSpec> members; // paths in the archive and install names
  std::string arch;                // the arch the file is filed under
  std::string label;               // "containerd 1.7.24 arm64", for messages
  std::string url;                 // where it came from, for messages
  // Where to write the binaries (DIR/<install>), or nullopt to only check them.
  std::optional<std::filesystem::path> output_dir;
};

// Reads every requested binary out of a download, checks that each is an ELF executable for
// `arch` (e_machine x86-64 or aarch64), and returns their sizes and digests. All problems
// are reported together: missing members, non-ELF files, binaries of another arch.
Result<std::vector<LockedMember>> unpack_artifact(const UnpackRequest& request);

// "x86-64 (amd64)", "AArch64 (arm64)", "machine 40" for e_machine values.
std::string describe_machine(std::uint16_t machine);

} // namespace kubexm
