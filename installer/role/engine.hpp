#pragma once

#include "bundle/error.hpp"
#include "installer/role/context.hpp"

#include <string>

namespace kubexm {

// `install --role=ROLE`: picks the node this host is (bundle.yaml's site), then runs the
// step table (installer/role/engine.cpp): preflight before anything changes, then each step
// whose inputs are new or changed, journaled, one install at a time, logged under
// /var/log/kubexm/. Returns the report for stdout.
Result<std::string> install_role(const RoleRequest& request);

// `install status`: the node, the bundle, each step's state and time, each service's state.
Result<std::string> role_status(bool json);

// `install reset`: takes back what the journal says was done, newest first: services
// stopped and disabled as they were, files removed or restored from their backups, the
// hosts block and host name as they were; OS packages and data directories only when asked.
struct ResetRequest {
  bool purge_data = false;
  bool purge_packages = false;
  bool json = false;
};
Result<std::string> reset_role(const ResetRequest& request);

} // namespace kubexm
