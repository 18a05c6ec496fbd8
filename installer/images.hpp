#pragma once

#include "bundle/error.hpp"
#include "bundle/progress.hpp"

#include <filesystem>
#include <string>

namespace kubexm {

// What `install images` is asked to do.
struct ImagesRequest {
  std::filesystem::path bundle;
  std::string runtime = "containerd"; // containerd (ctr) or docker
  std::filesystem::path root = "/";   // the host's root: its arch, and containerd's default socket under it
  std::string address;                // the runtime's socket; empty: the runtime's default under root
  std::string ns = "k8s.io";          // containerd namespace (the kubelet's)
  bool dry_run = false;
  bool json = false;
  Progress* progress = nullptr;
};

// Imports the bundle's images for the host's arch into the container runtime, offline:
// asks the runtime which images it has at their locked digests, streams the blobs of the
// others straight from the bundle (verified as they are read) into `ctr images import` or
// `docker load`, and checks afterwards that every image is there at its locked digest.
// Returns the report for stdout. A runtime that has everything is left alone and told so.
Result<std::string> install_images(const ImagesRequest& request);

} // namespace kubexm
