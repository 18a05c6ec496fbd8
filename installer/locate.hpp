#pragma once

#include "bundle/error.hpp"

#include <filesystem>
#include <optional>

namespace kubexm {

// Which bundle the installer works on: --bundle FILE if given; else the payload attached
// to this executable; else the one kubexm-dist-*.tar.zst beside it.
Result<std::filesystem::path> locate_bundle(const std::optional<std::filesystem::path>& given);

} // namespace kubexm
