#pragma once

#include "bundle/bundle_info.hpp"
#include "bundle/error.hpp"
#include "bundle/os_release.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kubexm {

// The host a command works on: its root directory ("/" on a real host), what its
// os-release says and its CPU arch in kubexm's spelling.
struct Host {
  std::filesystem::path root;
  OsRelease os;
  std::string arch; // amd64, arm64

  // "Debian GNU/Linux 12 (bookworm) (ID=debian VERSION_ID=12), amd64"
  std::string describe() const;
  // `path` (absolute, as the host sees it) in our filesystem.
  std::filesystem::path at(const std::filesystem::path& path) const;
};

// Reads <root>/etc/os-release (else <root>/usr/lib/os-release) and the arch: uname for the
// running system, the ELF machine of the root's own programs for another root.
Result<Host> detect_host(const std::filesystem::path& root);

// The bundle's package target for this host: by os-release ID and VERSION_ID, else by
// ID_LIKE. When there is none, the error names the host and what the bundle carries.
Result<const PackageTargetRecord*> choose_target(const std::vector<PackageTargetRecord>& targets, const Host& host);

// A package installed on the host, as its package database says.
struct InstalledPackage {
  std::string version; // deb: the Version; rpm: [epoch:]version-release
  std::string arch;
  bool complete = true; // deb: "install ok installed"; false for half-installed states
  // deb: dpkg stopped while unpacking it ("half-installed", or the reinstreq flag): its files
  // are partly there and dpkg --configure refuses it until it is unpacked again.
  bool unpack_again = false;
};

// What the host's package database says is installed.
struct PackageDatabase {
  std::multimap<std::string, InstalledPackage> packages; // by name
  std::set<std::string> provided;                        // what installed packages provide
  std::string format;                                    // deb, rpm

  // Whether a requirement is met: a package name, a virtual name or a file, or
  // alternatives of those ("a | b").
  bool satisfies(const Host& host, const std::string& requirement) const;

private:
  bool satisfies_one(const Host& host, const std::string& requirement) const;
};

// The host's installed packages: deb from <root>/var/lib/dpkg/status, rpm from
// `rpm --root <root> -qa`.
Result<PackageDatabase> installed_packages(const Host& host, std::string_view format);

// Whether fnmatch(3)-style `pattern` matches `text`.
bool glob_match(std::string_view pattern, std::string_view text);

} // namespace kubexm
