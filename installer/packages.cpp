#include "installer/packages.hpp"

#include "bundle/cli.hpp"
#include "bundle/extract.hpp"
#include "bundle/fs.hpp"
#include "bundle/package_set.hpp"
#include "bundle/process.hpp"
#include "bundle/reader.hpp"
#include "bundle/sha256.hpp"
#include "installer/host.hpp"

#include <algorithm>
#include <fmt/ranges.h>
#include <map>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

// Where, as the host sees it, the installer keeps the package directories it installs from:
// one per bundle (by digest), so that a refused run never touches another bundle's.
constexpr std::string_view k_state_root = "/var/lib/kubexm/packages";

// A package of the role and what the host has of it.
struct Planned {
  const PackageRecord* package;
  std::string installed; // the version the host has, if any
  bool complete = true;
  bool unpack_again = false;
};

struct Plan {
  std::vector<Planned> present; // at the locked version already
  std::vector<Planned> install; // missing, another version, or half-installed
  std::vector<BaseReliance> missing_base;
  bool interrupted_before = false;                // a package is half-installed: dpkg --configure -a first
  std::vector<const PackageRecord*> unpack_again; // dpkg was killed unpacking these
};

bool same_arch(const PackageRecord& package, const InstalledPackage& installed) {
  return package.arch == installed.arch || package.arch == "all" || package.arch == "noarch";
}

Plan plan_for(const Host& host, const PackageSet& set, const RolePackages& role, const PackageDatabase& db) {
  const auto& installed = db.packages;
  Plan plan;
  for (const auto& file : role.install) {
    const auto* package = set.find_file(file);
    Planned planned{package, {}, true};
    bool at_version = false;
    auto [first, last] = installed.equal_range(package->name);
    for (auto it = first; it != last; ++it) {
      if (!same_arch(*package, it->second)) {
        continue;
      }
      bool exact = it->second.version == package->evr && it->second.complete;
      if (exact || !at_version) {
        planned.installed = it->second.version;
        planned.complete = it->second.complete;
        planned.unpack_again = it->second.unpack_again;
      }
      at_version = at_version || exact;
    }
    plan.interrupted_before = plan.interrupted_before || !planned.complete;
    if (planned.unpack_again) {
      plan.unpack_again.push_back(package);
    }
    (at_version ? plan.present : plan.install).push_back(planned);
  }
  for (const auto& base : role.relies_on) {
    if (!db.satisfies(host, base.requirement)) {
      plan.missing_base.push_back(base);
    }
  }
  return plan;
}

// The bundle's package directory for this host, extracted (or found extracted already).
struct Extracted {
  std::string state_dir; // as the host sees it: /var/lib/kubexm/packages/<digest>
  fs::path dir;          // the same in our filesystem: the extraction target
  fs::path set_dir;      // dir/packages/<os>/<version>/<arch>
  fs::path created_top;  // the outermost directory this run created; empty when none
};

// What this run added is taken away again when it ends without installing.
void undo(const Extracted& extracted) {
  if (!extracted.created_top.empty()) {
    (void)remove_tree(extracted.created_top);
  }
}

// Refuses to write through a symlink or a non-directory on the way to `path` inside the
// root: an absolute link there would send the writes (and undo's removal) to the machine
// running the installer instead of the root.
Status check_state_path(const Host& host, std::string_view path) {
  fs::path at = host.root;
  for (const auto& part : fs::path(path).relative_path()) {
    at /= part;
    std::error_code ec;
    auto status = fs::symlink_status(at, ec);
    if (ec || status.type() == fs::file_type::not_found) {
      return {};
    }
    if (status.type() != fs::file_type::directory) {
      return fail("{} is not a directory (a symlink?); the installer keeps its packages under {} and writes nothing "
                  "through links: make it a directory",
                  at.string(), k_state_root);
    }
  }
  return {};
}

Result<Extracted> extract_set(const PackagesRequest& request, const BundleHeader& header, const Host& host,
                              const std::string& set_path) {
  Extracted out;
  out.state_dir = fmt::format("{}/{}", k_state_root, to_hex(header.digest).substr(0, 16));
  if (auto status = check_state_path(host, out.state_dir); !status) {
    return std::unexpected(status.error());
  }
  out.dir = host.at(out.state_dir);
  out.set_dir = out.dir / set_path;
  std::error_code ec;
  for (auto dir = out.dir; dir != host.root && !fs::exists(fs::symlink_status(dir, ec)); dir = dir.parent_path()) {
    out.created_top = dir;
  }
  fs::create_directories(out.dir.parent_path(), ec);
  if (ec) {
    return fail("cannot create {}: {}", out.dir.parent_path().string(), ec.message());
  }
  auto report = extract_bundle(request.bundle, out.dir, request.progress, set_path);
  if (!report) {
    undo(out);
    return add_context(report.error(), fmt::format("extracting {} into {}", set_path, out.dir.string()));
  }
  return out;
}

// Once a bundle's packages are installed, the directories of other bundles are not needed.
void remove_other_bundles(const Host& host, const Extracted& extracted) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(host.at(k_state_root), ec)) {
    if (entry.path() != extracted.dir && entry.is_directory(ec) && !entry.is_symlink(ec)) {
      (void)remove_tree(entry.path());
    }
  }
}

// chroot ROOT for another root; nothing for the running system.
std::vector<std::string> in_root(const Host& host, std::vector<std::string> args) {
  if (host.root != "/") {
    args.insert(args.begin(), {"chroot", host.root.string()});
  }
  return args;
}

// Runs a package tool; `what` names it in messages ("apt-get install of 76 packages"), the
// whole command line is logged.
Status run_checked(std::string_view what, const std::vector<std::string>& args,
                   const std::vector<std::string>& env = {}) {
  spdlog::info("running {}", what);
  spdlog::debug("{}", command_line(args));
  auto result = run_process(args, ChildOutput::to_stderr, env);
  if (!result) {
    return std::unexpected(result.error());
  }
  if (result->exit_code != 0) {
    return fail("{} exited with {} (its messages are above; -v shows the command)", what, result->exit_code);
  }
  return {};
}

// apt, offline: a sources list naming only the bundle's flat repository, and lists, caches
// and preferences of its own, so that neither the host's sources nor its apt state count.
std::vector<std::string> apt_options(const std::string& state) {
  std::vector<std::string> options;
  for (const auto& setting :
       {"Dir::Etc::SourceList=" + state + "/kubexm.list", "Dir::Etc::SourceParts=" + state + "/sources.list.d",
        "Dir::Etc::Preferences=" + state + "/preferences", "Dir::Etc::PreferencesParts=" + state + "/sources.list.d",
        "Dir::State::Lists=" + state + "/apt/lists", "Dir::Cache=" + state + "/apt/cache",
        std::string("APT::Sandbox::User=root"), std::string("Acquire::Languages=none"),
        std::string("Dpkg::Options::=--force-confdef"), std::string("Dpkg::Options::=--force-confold")}) {
    options.insert(options.end(), {"-o", setting});
  }
  return options;
}

// /usr/sbin/policy-rc.d while apt runs: invoke-rc.d and deb-systemd-invoke then start
// nothing. Ours carries a marker, so that one a killed run left is removed by the next, and
// one the admin put there is never touched.
constexpr std::string_view k_policy_marker = "# kubexm: no service starts while the bundle's packages install";

class ServiceHold {
public:
  static Result<ServiceHold> take(const Host& host) {
    auto path = host.at("/usr/sbin/policy-rc.d");
    auto existing = read_text_file(path, 1 << 16);
    if (existing && existing->find(k_policy_marker) == std::string::npos) {
      return ServiceHold(fs::path()); // the admin's own: it decides
    }
    auto text = fmt::format("#!/bin/sh\n{}\nexit 101\n", k_policy_marker);
    if (auto status = write_file_atomic(path, text, 0755); !status) {
      return std::unexpected(status.error());
    }
    return ServiceHold(path);
  }
  ServiceHold(ServiceHold&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}
  ServiceHold& operator=(ServiceHold&&) = delete;
  ServiceHold(const ServiceHold&) = delete;
  ~ServiceHold() {
    if (!m_path.empty()) {
      std::error_code ec;
      fs::remove(m_path, ec);
    }
  }

private:
  explicit ServiceHold(fs::path path) : m_path(std::move(path)) {}
  fs::path m_path;
};

Status install_deb(const Host& host, const Extracted& extracted, const std::string& set_path, const Plan& plan) {
  auto repo = fmt::format("{}/{}", extracted.state_dir, set_path);
  for (const char* dir : {"sources.list.d", "apt/lists/partial", "apt/cache/archives/partial"}) {
    std::error_code ec;
    fs::create_directories(extracted.dir / dir, ec);
    if (ec) {
      return fail("cannot create {}: {}", (extracted.dir / dir).string(), ec.message());
    }
  }
  auto list =
      fmt::format("# The kubexm bundle's packages, for an offline install.\ndeb [trusted=yes] file:{} ./\n", repo);
  if (auto status = write_file_atomic(extracted.dir / "kubexm.list", list); !status) {
    return status;
  }
  std::vector<std::string> env{"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true", "LC_ALL=C"};
  std::error_code ec;
  auto journal = host.at("/var/lib/dpkg/updates");
  bool journal_pending = fs::exists(journal, ec) && !fs::is_empty(journal, ec);
  if (!plan.unpack_again.empty()) {
    // dpkg --configure -a refuses a package whose unpacking was cut off; its .deb from the
    // bundle is unpacked again first (only pre-dependencies matter to an unpack).
    std::vector<std::string> unpack{"dpkg", "--unpack"};
    for (const auto* package : plan.unpack_again) {
      unpack.push_back(fmt::format("{}/{}", repo, package->file));
    }
    if (auto status = run_checked(fmt::format("dpkg --unpack of {} half-installed packages", plan.unpack_again.size()),
                                  in_root(host, unpack), env);
        !status) {
      return status;
    }
  }
  if (plan.interrupted_before || journal_pending) {
    // A run killed during dpkg leaves packages unpacked but not configured.
    if (auto status = run_checked("dpkg --configure -a", in_root(host, {"dpkg", "--configure", "-a"}), env); !status) {
      return status;
    }
  }
  auto options = apt_options(extracted.state_dir);
  std::vector<std::string> update{"apt-get", "-q"};
  update.insert(update.end(), options.begin(), options.end());
  update.emplace_back("update");
  if (auto status = run_checked("apt-get update (of the bundle's repository only)", in_root(host, update), env);
      !status) {
    return status;
  }
  // Never removes a package to make room, never downgrades one: apt refuses instead, and
  // the host stays as it was.
  std::vector<std::string> install{"apt-get", "-q", "-y", "--no-install-recommends", "--no-remove"};
  install.insert(install.end(), options.begin(), options.end());
  install.emplace_back("install");
  for (const auto& planned : plan.install) {
    install.push_back(fmt::format("{}={}", planned.package->name, planned.package->evr));
  }
  return run_checked(fmt::format("apt-get install of {} packages", plan.install.size()), in_root(host, install), env);
}

Status install_rpm(const Host& host, const Extracted& extracted, const Plan& plan) {
  // rpm orders the transaction itself and checks it against the host's database.
  // Without --oldpackage: rpm refuses to replace a newer installed version.
  std::vector<std::string> args{"rpm", "--root", host.root.string(), "-U", "-v"};
  for (const auto& planned : plan.install) {
    args.push_back((extracted.set_dir / planned.package->file).string());
  }
  return run_checked(fmt::format("rpm -U of {} packages", plan.install.size()), args);
}

// After installing: every package of the role is there at its locked version.
Status check_installed(const Host& host, const PackageSet& set, const RolePackages& role) {
  auto installed = installed_packages(host, set.format);
  if (!installed) {
    return std::unexpected(installed.error());
  }
  auto after = plan_for(host, set, role, *installed);
  if (after.install.empty()) {
    return {};
  }
  std::vector<std::string> wrong;
  for (const auto& planned : after.install) {
    auto has = planned.installed.empty() ? std::string("none")
               : planned.complete        ? planned.installed
                                         : planned.installed + ", not completely installed";
    wrong.push_back(fmt::format("{} {} (the host has {})", planned.package->name, planned.package->evr, has));
  }
  return fail("after installing, {} of the role's packages {} not at the locked version: {}", wrong.size(),
              wrong.size() == 1 ? "is" : "are", fmt::join(wrong, ", "));
}

std::string text_report(const Host& host, const PackageSet& set, const std::string& role, const Plan& plan) {
  std::string out = fmt::format("host: {} -> {}\n", host.describe(), set.label());
  out += fmt::format("role {}: {} packages, {} installed already, {} to install\n", role,
                     plan.present.size() + plan.install.size(), plan.present.size(), plan.install.size());
  std::vector<std::string> present;
  for (const auto& planned : plan.present) {
    present.push_back(planned.package->name);
  }
  if (!present.empty()) {
    out += fmt::format("  installed already (skipped): {}\n", fmt::join(present, " "));
  }
  for (const auto& planned : plan.install) {
    out += fmt::format("  install {} {} {}{}\n", planned.package->name, planned.package->evr, planned.package->arch,
                       planned.installed.empty() ? "" : fmt::format(" (the host has {})", planned.installed));
  }
  return out;
}

nlohmann::json json_report(const Host& host, const PackageSet& set, const std::string& role, const Plan& plan,
                           std::string_view outcome) {
  auto list = [](const std::vector<Planned>& planned) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : planned) {
      out.push_back({{"name", p.package->name},
                     {"evr", p.package->evr},
                     {"arch", p.package->arch},
                     {"file", p.package->file},
                     {"installed", p.installed}});
    }
    return out;
  };
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& base : plan.missing_base) {
    missing.push_back({{"requires", base.requirement}, {"name", base.name}, {"needed_by", base.needed_by}});
  }
  return {{"host",
           {{"root", host.root.string()},
            {"id", host.os.id},
            {"version_id", host.os.version_id},
            {"pretty_name", host.os.pretty_name},
            {"arch", host.arch}}},
          {"profile", set.profile},
          {"role", role},
          {"present", list(plan.present)},
          {"install", list(plan.install)},
          {"missing_base", missing},
          {"outcome", outcome}};
}

Error missing_base_error(const PackageSet& set, const std::string& role, const Plan& plan, const Host& host) {
  // One line per base package, however many of its provides the closure needs.
  std::map<std::string, std::vector<const BaseReliance*>> by_package;
  for (const auto& base : plan.missing_base) {
    by_package[base.name].push_back(&base);
  }
  std::vector<std::string> lines;
  for (const auto& [name, needs] : by_package) {
    lines.push_back(fmt::format("  {} ({}{})", name, needs.front()->needed_by,
                                needs.size() > 1 ? fmt::format("; and {} more", needs.size() - 1) : ""));
  }
  auto count = by_package.size();
  return Error(ErrorKind::failure,
               fmt::format("preflight: {} lacks {} base package{} that the {} closure of role {} relies on; nothing "
                           "was changed:\n{}\ninstall {} from the OS's own media, or build the bundle with "
                           "`packages: {{closure: full}}` for hosts below a minimal install",
                           host.root == "/" ? "this host" : host.root.string(), count, count == 1 ? "" : "s",
                           set.label(), role, fmt::join(lines, "\n"), count == 1 ? "it" : "them"));
}

Result<const PackageTargetRecord*> target_for(const BundleHeader& header, const Host& host) {
  if (header.info.packages.empty()) {
    return fail("bundle {} {} carries no OS packages (its manifest has no os_profiles, or packages: {{closure: "
                "none}})",
                header.info.name, header.info.version);
  }
  auto target = choose_target(header.info.packages, host);
  if (!target) {
    return std::unexpected(target.error());
  }
  const auto& arches = (*target)->arches;
  if (std::ranges::find(arches, host.arch) == arches.end()) {
    return fail("this host is {}; the bundle carries {} packages for {} only: build it with arches: [{}] too",
                host.describe(), (*target)->profile, fmt::join(arches, ", "), host.arch);
  }
  return target;
}

Result<PackageSet> read_set(const Extracted& extracted) {
  auto path = extracted.set_dir / k_package_set_file;
  auto text = read_text_file(path, 64 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  return parse_package_set(nlohmann::json::parse(*text, nullptr, false), path.string());
}

// Everything a run works with, once the bundle's directory for this host is extracted.
struct Session {
  const PackagesRequest& request;
  Host host;
  Extracted extracted;
  std::string set_path;
  PackageSet set;
  const RolePackages* role = nullptr;
  Plan plan;

  std::string report(std::string_view outcome, const std::string& tail) const {
    return request.json ? json_report(host, set, request.role, plan, outcome).dump(2) + "\n"
                        : text_report(host, set, request.role, plan) + tail;
  }
};

// Reads the extracted set and the host's database and plans the role.
Status plan_session(Session& session) {
  auto set = read_set(session.extracted);
  if (!set) {
    return std::unexpected(set.error());
  }
  session.set = std::move(*set);
  auto role = session.set.roles.find(session.request.role);
  if (role == session.set.roles.end()) {
    return fail("{}: no packages for role {}", session.set.label(), session.request.role);
  }
  session.role = &role->second;
  auto installed = installed_packages(session.host, session.set.format);
  if (!installed) {
    return std::unexpected(installed.error());
  }
  session.plan = plan_for(session.host, session.set, *session.role, *installed);
  return {};
}

Result<Session> open_session(const PackagesRequest& request) {
  auto header = read_bundle_header(request.bundle);
  if (!header) {
    return add_context(header.error(), request.bundle.string());
  }
  if (std::ranges::find(header->info.roles, request.role) == header->info.roles.end()) {
    return std::unexpected(Error(ErrorKind::usage, fmt::format("role '{}': the bundle serves roles {}", request.role,
                                                               fmt::join(header->info.roles, ", "))));
  }
  auto host = detect_host(request.root);
  if (!host) {
    return std::unexpected(host.error());
  }
  auto target = target_for(*header, *host);
  if (!target) {
    return std::unexpected(target.error());
  }
  auto set_path = fmt::format("{}/{}", (*target)->path, host->arch);
  auto extracted = request.extracted.empty()
                       ? extract_set(request, *header, *host, set_path)
                       : Result<Extracted>(Extracted{request.extracted.string(), host->at(request.extracted),
                                                     host->at(request.extracted) / set_path, {}});
  if (!extracted) {
    return std::unexpected(extracted.error());
  }
  Session session{request, std::move(*host), std::move(*extracted), set_path, {}, nullptr, {}};
  if (auto status = plan_session(session); !status) {
    undo(session.extracted);
    return std::unexpected(status.error());
  }
  return session;
}

Status install(const Session& session) {
  const auto& s = session;
  std::optional<ServiceHold> hold;
  if (s.set.format == "deb" && s.request.hold_services) {
    auto taken = ServiceHold::take(s.host);
    if (!taken) {
      return std::unexpected(taken.error());
    }
    hold.emplace(std::move(*taken));
  }
  auto status = s.set.format == "deb" ? install_deb(s.host, s.extracted, s.set_path, s.plan)
                                      : install_rpm(s.host, s.extracted, s.plan);
  if (status) {
    status = check_installed(s.host, s.set, *s.role);
  }
  if (!status) {
    return add_context(status.error(), fmt::format("installing the {} packages of role {} (run the same command "
                                                   "again to finish)",
                                                   s.set.label(), s.request.role));
  }
  return {};
}

} // namespace

Result<std::string> install_packages(const PackagesRequest& request) {
  auto session = open_session(request);
  if (!session) {
    return std::unexpected(session.error());
  }
  const auto& plan = session->plan;
  if (!plan.missing_base.empty()) {
    undo(session->extracted);
    if (request.json) {
      (void)print_stdout(session->report("missing-base", ""));
    }
    return std::unexpected(missing_base_error(session->set, request.role, plan, session->host));
  }
  auto base_line = fmt::format("preflight: the {} requirements the closure has of the base system are met\n",
                               session->role->relies_on.size());
  if (plan.install.empty() || request.dry_run) {
    // Nothing is installed: what this run extracted is not left behind.
    undo(session->extracted);
    return session->report(plan.install.empty() ? "nothing-to-do" : "dry-run",
                           base_line + (plan.install.empty()
                                            ? fmt::format("nothing to install: all {} packages of role {} are "
                                                          "installed at their locked versions; nothing changed\n",
                                                          plan.present.size(), request.role)
                                            : std::string("dry run: nothing was changed\n")));
  }
  if (request.before_install) {
    // Only what the host did not have: an upgraded package of its own is not ours to remove.
    std::vector<std::string> names;
    for (const auto& planned : plan.install) {
      if (planned.installed.empty()) {
        names.push_back(planned.package->name);
      }
    }
    if (auto status = request.before_install(names); !status) {
      return std::unexpected(status.error());
    }
  }
  if (auto status = install(*session); !status) {
    return std::unexpected(status.error());
  }
  if (request.extracted.empty()) {
    remove_other_bundles(session->host, session->extracted);
  }
  return session->report("installed",
                         base_line + fmt::format("installed {} packages with {}, offline; all {} "
                                                 "packages of role {} are at their locked versions\n",
                                                 plan.install.size(), session->set.format == "deb" ? "apt" : "rpm",
                                                 plan.present.size() + plan.install.size(), request.role));
}

} // namespace kubexm
