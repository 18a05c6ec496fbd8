#pragma once

#include "bundle/error.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// A file a repository's top index names, with the SHA-256 and size the index gives it.
struct IndexedFile {
  std::string path; // relative to the repository (deb: to dists/<suite>/)
  std::string sha256;
  std::uint64_t size = 0;
};

// The SHA256 section of a deb Release or InRelease file (the PGP armour of InRelease is
// skipped; its signature is not checked here), by path.
Result<std::map<std::string, IndexedFile>> parse_release(std::string_view text, std::string_view what);

// One <data> entry of an rpm repomd.xml.
struct RepomdEntry {
  std::string type; // primary, filelists, other, group, group_gz, ...
  IndexedFile file; // path: the location href; sha256 of the file as stored
};

// The <data> entries of repomd.xml; a checksum other than sha256 is an error.
Result<std::vector<RepomdEntry>> parse_repomd(std::string_view text, std::string_view what);

// A whole file, decompressed when it is gzip, xz, bzip2 or zstd (by content, not name).
Result<std::string> read_maybe_compressed(const std::filesystem::path& path, std::string_view what);

// One stanza of a deb Packages index.
struct DebStanza {
  std::string_view text; // the stanza, without the blank line after it
  std::string_view name;
  std::string_view version;
  std::string_view arch;
  std::string_view filename;
  std::uint64_t size = 0;
  bool essential = false;
  bool required = false; // Priority: required
};

// The stanzas of a Packages index (views into `text`).
std::vector<DebStanza> parse_packages_index(std::string_view text);

// The stanza with its Filename: replaced by `filename`.
std::string rewrite_stanza(const DebStanza& stanza, std::string_view filename);

// One <package> element of an rpm primary.xml or filelists.xml.
struct RpmElement {
  std::string_view text;
  std::string_view name;
  std::string_view arch;
  std::string location;   // primary: the location href, unescaped
  std::string_view pkgid; // primary: the checksum; filelists: the pkgid attribute
};

std::vector<RpmElement> parse_primary(std::string_view text);
std::vector<RpmElement> parse_filelists(std::string_view text);

// A primary.xml <package> element with its <location> replaced by href `location`.
std::string rewrite_location(const RpmElement& element, std::string_view location);

// The package names of the comps group `group` whose packagereq type is mandatory.
std::vector<std::string> comps_mandatory(std::string_view comps, std::string_view group);

// The documents around chosen elements: a primary.xml or filelists.xml of `count` packages.
std::string primary_document(const std::vector<std::string>& elements);
std::string filelists_document(const std::vector<std::string>& elements);
// A repomd.xml naming uncompressed primary.xml and filelists.xml in repodata/.
std::string repomd_document(std::string_view primary, std::string_view filelists, std::int64_t timestamp);
// The Release file of a flat deb repository holding one Packages file.
std::string flat_release_document(std::string_view packages, std::string_view origin);

} // namespace kubexm
