#include "installer/locate.hpp"

#include "bundle/fs.hpp"
#include "bundle/trailer.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

bool has_trailer_magic(const fs::path& path) {
  auto fd = open_read(path);
  if (!fd) {
    return false;
  }
  auto size = file_size(fd->get());
  std::array<std::byte, 8> magic{};
  return size && *size >= k_trailer_size && pread_exact(fd->get(), magic, *size - k_trailer_size) &&
         std::memcmp(magic.data(), k_trailer_magic.data(), magic.size()) == 0;
}

std::vector<fs::path> archives_beside(const fs::path& directory) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(directory, ec)) {
    auto name = item.path().filename().string();
    if (name.starts_with("kubexm-dist-") && name.ends_with(".tar.zst") && item.is_regular_file(ec)) {
      found.push_back(item.path());
    }
  }
  std::ranges::sort(found);
  return found;
}

} // namespace

Result<fs::path> locate_bundle(const std::optional<fs::path>& given) {
  if (given) {
    return *given;
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return fail("cannot find this executable through /proc/self/exe ({}); pass --bundle FILE", ec.message());
  }
  if (has_trailer_magic(self)) {
    return self;
  }
  auto beside = archives_beside(self.parent_path());
  if (beside.size() == 1) {
    return beside.front();
  }
  if (beside.size() > 1) {
    std::vector<std::string> names;
    for (const auto& p : beside) {
      names.push_back(p.filename().string());
    }
    return fail("{} has several bundles beside it ({}); choose one with --bundle FILE", self.parent_path().string(),
                fmt::join(names, ", "));
  }
  // Let the bundle reader explain what is wrong with this executable as a bundle.
  auto file = open_bundle_file(self);
  if (!file) {
    return std::unexpected(file.error());
  }
  return self;
}

} // namespace kubexm
