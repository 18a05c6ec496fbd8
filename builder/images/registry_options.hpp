#pragma once

#include <string>
#include <vector>

namespace kubexm {

// What an image lacking one of the bundle's arches is.
enum class ImagesPolicy {
  strict, // an error: a host of that arch could not run the cluster
  warn,   // a warning; the lock records the arch as missing
};

// `from` (a registry, or a registry and path prefix) is read from `to` instead: a site's
// internal registry or a pull-through mirror.
struct RegistryMirror {
  std::string from;
  std::string to;
};

// How the builder reaches registries. skopeo does the talking (docs/images.md).
struct RegistryOptions {
  std::vector<RegistryMirror> mirrors;
  std::vector<std::string> insecure; // registries (host[:port]) reached without TLS verification
  std::string authfile;              // a containers-auth.json; empty: skopeo's default
  ImagesPolicy policy = ImagesPolicy::strict;
  unsigned jobs = 4;
};

} // namespace kubexm
