#pragma once

#include "bundle/fs.hpp"
#include "bundle/writer.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <sys/stat.h>

namespace kubexm::test {

// A fresh directory under $TMPDIR, removed with everything in it at the end of the test.
class TempDir {
public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kubexm-test-XXXXXX").string();
    m_path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { (void)remove_tree(m_path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }
  std::filesystem::path operator/(std::string_view name) const { return m_path / name; }

private:
  std::filesystem::path m_path;
};

inline void write_file(const std::filesystem::path& path, std::string_view text, unsigned mode = 0644) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  ::chmod(path.c_str(), mode);
}

inline std::string read_file(const std::filesystem::path& path) {
  return read_text_file(path, 1 << 30).value_or("<unreadable>");
}

// A small but complete kubexm-dist tree: metadata, a nested executable, a private key,
// an empty directory.
inline void make_tree(const std::filesystem::path& root) {
  write_file(root / "bundle.yaml", "name: unit\nversion: \"1.0\"\narches: [amd64]\n"
                                   "os_profiles: [debian-12]\nroles: [master, worker]\n");
  write_file(root / "bin/amd64/kubelet", std::string(100000, 'k'), 0755);
  write_file(root / "site/nodes/n1/etc/kubernetes/pki/ca.key", "secret", 0600);
  write_file(root / "README", "hello\n");
  std::filesystem::create_directories(root / "images/empty");
}

// Packs `tree` into `out` with this test binary as the installer stub.
inline Result<PackResult> pack_tree(const std::filesystem::path& tree, const std::filesystem::path& out,
                                    unsigned threads = 0) {
  PackOptions options;
  options.dist_dir = tree;
  options.out_dir = out;
  options.installer_stub = std::filesystem::read_symlink("/proc/self/exe");
  options.source_date_epoch = 1700000000;
  options.created_by = "kubexm-builder test";
  options.threads = threads;
  return pack_bundle(options);
}

} // namespace kubexm::test
