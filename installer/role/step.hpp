#pragma once

#include "bundle/error.hpp"
#include "installer/role/context.hpp"

#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace kubexm {

// A step of a role install: one row of the table the engine runs, --dry-run prints and
// status reads (ninja's tool table, mold's passes). Its changes go through HostEffects,
// which journals them, so reset takes each step back from the journal alone.
struct Step {
  const char* name;
  // A check run every time (preflight, health), rather than once for each set of inputs.
  bool always;
  // Run by --dry-run as well: it changes nothing, and the plan is worth little without its
  // answer (the preflight).
  bool in_dry_run;
  // Why this node does not need the step; empty when it does.
  std::string (*not_needed)(const RoleContext&);
  // A digest of what the step takes from the bundle and the node's files: a rerun with the
  // same inputs skips it ("unchanged"), a newer bundle runs exactly the steps it changed.
  std::string (*inputs)(const RoleContext&);
  // One line of what it does here.
  std::string (*plan)(const RoleContext&);
  Status (*apply)(RoleContext&);
};

// The steps, in the order they run.
std::span<const Step> role_steps();

// Helpers the steps share.

// The bundle members whose paths `want` takes, as "path mode sha256" lines, hashed.
std::string members_digest(const RoleContext& ctx, const std::function<bool(std::string_view)>& want,
                           std::string_view extra = {});
// The file members under `prefix` ("site/nodes/etcd1/").
std::vector<const IndexEntry*> members_under(const RoleContext& ctx, std::string_view prefix);

// The components (bin/<arch>/<name>/<version>/) this node needs, and where each file goes.
struct BinaryFile {
  std::string member; // bin/amd64/etcd/3.5.16/etcdctl
  std::string target; // /usr/local/bin/etcdctl
};
std::vector<BinaryFile> node_binaries(const RoleContext& ctx);
// The components the node's roles need that the bundle does not carry for this host's arch.
std::vector<std::string> missing_components(const RoleContext& ctx);

// The host paths a node's files may have: anything else in site/nodes/<node>/ is refused.
bool allowed_node_path(std::string_view path);

// The ports the node's roles listen on.
std::vector<int> role_ports(const RoleContext& ctx);

// Waits until `ready()`, for at most `limit`, saying every 30 s what it waits for.
enum class Waited { ready, timed_out, interrupted };
Waited wait_until(const std::function<bool()>& ready, std::chrono::seconds limit, std::string_view what);

} // namespace kubexm
