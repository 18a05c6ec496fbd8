#pragma once

#include "bundle/error.hpp"
#include "bundle/progress.hpp"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace kubexm {

// What `install packages` is asked to do.
struct PackagesRequest {
  std::filesystem::path bundle;
  std::string role;
  std::filesystem::path root = "/";
  bool dry_run = false;
  bool json = false;
  Progress* progress = nullptr;
  // The bundle's directories already extracted and verified there (as the host sees it),
  // by the role engine: nothing is extracted again. Empty: extracted under
  // /var/lib/kubexm/packages/<digest>.
  std::filesystem::path extracted;
  // deb: the packages' own scripts start no service while apt installs them (Debian's
  // policy-rc.d), since the role engine starts the node's services once their files are in
  // place; otherwise a daemon would come up on its package's defaults (nginx on port 80).
  bool hold_services = false;
  // Told the names of the packages this run is about to install that the host does not have
  // at all (not those it upgrades), before it does (the role engine journals them); an
  // error stops the run.
  std::function<Status(const std::vector<std::string>&)> before_install;
};

// Installs a role's OS packages from the bundle, offline: finds the host's profile and
// arch, extracts that package directory (verifying the whole bundle) under
// <root>/var/lib/kubexm/packages, checks before touching anything that every base package
// the closure relies on is installed, then installs what is missing with the host's own
// apt (pointed at that directory only) or rpm, and checks the result. Returns the report
// for stdout. A host that has everything already is left alone and told so.
Result<std::string> install_packages(const PackagesRequest& request);

} // namespace kubexm
