#pragma once

#include "installer/role/context.hpp"

#include <string>
#include <vector>

namespace kubexm {

// The work of each step of the table in installer/role/engine.cpp, one file each. A plan_*
// function says what its step would do on this node: from node.yaml when ctx.config holds it
// (a dry run reads it from the bundle), in general terms before the bundle is extracted.

// preflight.cpp: every check, one report; ErrorKind::preflight when any fails.
Status preflight(RoleContext& ctx);
// The bundle directories this host needs: its arch's binaries, its OS's packages, its node.
std::vector<std::string> extract_dirs(const RoleContext& ctx);

// extract.cpp: those directories, verified, under /var/lib/kubexm/bundle-<digest>.
std::filesystem::path extract_target(const RoleContext& ctx);
Status extract(RoleContext& ctx);

// packages.cpp: the OS packages of the node's roles, with the host's apt or rpm.
Status install_os_packages(RoleContext& ctx);

// binaries.cpp: the node's binaries into /usr/local/bin and /opt/cni/bin.
Status place_binaries(RoleContext& ctx);

// files.cpp: the node's files at their paths, /etc/hosts, the host name.
Status place_node_files(RoleContext& ctx);

// os_init.cpp: swap off, SELinux permissive, the firewall, node.yaml's `before` actions.
Status init_os(RoleContext& ctx);
std::string plan_os(const RoleContext& ctx);

// services.cpp: daemon-reload; enable and start node.yaml's services, each waited for.
Status start_services(RoleContext& ctx);
std::string plan_services(const RoleContext& ctx);

// images.cpp: the bundle's images for this arch into the node's runtime.
Status import_node_images(RoleContext& ctx);

// actions.cpp: node.yaml's `after` actions, each waiting for what it needs.
Status run_after_actions(RoleContext& ctx);
std::string plan_actions(const RoleContext& ctx);

// health.cpp: each role answers as it should.
Status check_health(RoleContext& ctx);

} // namespace kubexm
