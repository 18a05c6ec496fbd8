#pragma once

#include <cstdlib>
#include <filesystem>
#include <string_view>

namespace kubexm {

// Where the builder's data files (manifests/, os-profiles/) are: $`env` when set, else
// share/kubexm/`name` beside an installed kubexm-builder when it holds `marker`, else the
// source tree's `source`.
inline std::filesystem::path data_dir(const char* env, std::string_view name, std::string_view marker,
                                      const char* source) {
  if (const char* dir = std::getenv(env); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto installed = self.parent_path().parent_path() / "share" / "kubexm" / name;
  if (std::filesystem::exists(installed / marker, ec)) {
    return installed;
  }
  return source;
}

} // namespace kubexm
