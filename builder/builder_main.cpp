#include "builder/builder_main.hpp"

#include "builder/build.hpp"
#include "builder/packages/packages.hpp"
#include "builder/site/pki.hpp"
#include "builder/site/render.hpp"
#include "builder/site/site.hpp"
#include "bundle/cli.hpp"
#include "bundle/fs.hpp"
#include "bundle/reader.hpp"
#include "bundle/report.hpp"
#include "bundle/writer.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <spdlog/spdlog.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

struct BuilderOptions {
  CommonOptions common;
  fs::path dist_dir;
  fs::path out_dir;
  std::optional<fs::path> installer;
  std::optional<std::int64_t> source_date_epoch;
  unsigned threads = 0;
  int level = 3;
  fs::path file;
  bool json = false;
  // resolve, fetch, build
  fs::path manifest;
  fs::path manifests_dir;
  fs::path os_profiles_dir;
  std::string closure;
  std::optional<fs::path> lock;
  std::optional<fs::path> cache;
  std::vector<std::string> mirrors;
  std::vector<std::string> registry_mirrors;
  std::vector<std::string> insecure_registries;
  std::optional<fs::path> authfile;
  std::string images_policy = "strict";
  // site
  bool check = false;
  bool rotate = false;
  fs::path site_dir; // build: where the site's PKI and rendering are kept
  std::string key_algorithm = "rsa";
  std::optional<fs::path> ca_file;
  unsigned jobs = 4;
  unsigned retries = 4;
  bool allow_unpinned = false;
};

// The static installer to prepend: --installer, else `install` beside this program (the
// build tree), else ../libexec/kubexm/install (an installed layout).
fs::path default_installer() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  fs::path beside = self.parent_path() / "install";
  if (fs::exists(beside, ec)) {
    return beside;
  }
  return self.parent_path().parent_path() / "libexec" / "kubexm" / "install";
}

Result<std::optional<std::int64_t>> epoch_from_environment() {
  const char* value = std::getenv("SOURCE_DATE_EPOCH");
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  std::int64_t epoch = 0;
  std::string_view text(value);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), epoch);
  if (ec != std::errc() || end != text.data() + text.size() || epoch < 0) {
    return std::unexpected(
        Error(ErrorKind::usage, fmt::format("SOURCE_DATE_EPOCH='{}' is not seconds since 1970", text)));
  }
  return epoch;
}

Result<FetchOptions> fetch_options(const BuilderOptions& options) {
  FetchOptions fetch;
  fetch.jobs = std::max(1u, options.jobs);
  fetch.attempts = options.retries + 1;
  fetch.ca_file = options.ca_file.value_or(fs::path()).string();
  fetch.quiet = options.common.quiet;
  fetch.terminal_progress = smart_terminal();
  for (const auto& text : options.mirrors) {
    auto mirror = parse_mirror(text);
    if (!mirror) {
      return std::unexpected(mirror.error());
    }
    fetch.mirrors.push_back(*mirror);
  }
  auto& registries = fetch.registries;
  for (const auto& text : options.registry_mirrors) {
    auto equals = text.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == text.size() ||
        text.find("://") != std::string::npos) {
      return std::unexpected(
          Error(ErrorKind::usage, fmt::format("--registry-mirror '{}': expected FROM=TO, registries with an optional "
                                              "path and no scheme, e.g. docker.io=registry.site:5000/dockerhub",
                                              text)));
    }
    registries.mirrors.push_back({text.substr(0, equals), text.substr(equals + 1)});
  }
  registries.insecure = options.insecure_registries;
  registries.authfile = options.authfile.value_or(fs::path()).string();
  registries.policy = options.images_policy == "warn" ? ImagesPolicy::warn : ImagesPolicy::strict;
  registries.jobs = fetch.jobs;
  return fetch;
}

Result<Plan> load_manifest(const BuilderOptions& options) {
  auto dir = options.manifests_dir.empty() ? default_manifests_dir() : options.manifests_dir;
  return load_plan(options.manifest, dir, options.os_profiles_dir, options.closure);
}

// The closure of every profile, arch and role as text: what a bundle would carry.
std::string describe_closures(const std::vector<PackageSet>& sets) {
  std::string out;
  for (const auto& set : sets) {
    std::uint64_t bytes = 0;
    for (const auto& p : set.packages) {
      bytes += p.size;
    }
    out += fmt::format("{} ({}, {}): {} packages, {}{}{}\n", set.label(), set.format, set.distro_arch,
                       set.packages.size(), human_bytes(bytes),
                       set.closure == "minimal"
                           ? fmt::format(", over a minimal install of {} packages", set.base_system.size())
                           : std::string(", for an empty system"),
                       set.best ? "" : ", older candidates allowed (best: false)");
    for (const auto& [name, range] : set.pins) {
      out += fmt::format("  pinned: {} {}\n", name, range);
    }
    for (const auto& [role, packages] : set.roles) {
      out += fmt::format("  role {} ({}): {} packages\n", role, fmt::join(packages.requested, " "),
                         packages.install.size());
      for (const auto& file : packages.install) {
        const auto* p = set.find_file(file);
        out += fmt::format("    {} {} {}{}\n", p->name, p->evr, p->arch,
                           p->newest.empty() ? std::string()
                                             : fmt::format(" (older than the newest {}: {})", p->newest, p->why_older));
      }
      for (const auto& base : packages.relies_on) {
        out += fmt::format("    relies on base {} {} ({})\n", base.name, base.evr, base.needed_by);
      }
    }
  }
  return out;
}

PkiOptions pki_options(const BuilderOptions& options) {
  return {options.key_algorithm == "ecdsa" ? KeyAlgorithm::ecdsa_p256 : KeyAlgorithm::rsa2048, options.rotate};
}

Status run_site(const BuilderOptions& options) {
  if (!options.check && options.out_dir.empty()) {
    return std::unexpected(
        Error(ErrorKind::usage, "site: give --check (validate only) or -o DIR (make the PKI and render the nodes)"));
  }
  std::vector<std::string> warnings;
  auto site = load_site(options.manifest, warnings);
  for (const auto& warning : warnings) {
    log_warning(warning);
  }
  if (!site) {
    return std::unexpected(site.error());
  }
  auto topology = topology_of(*site);
  std::optional<PkiReport> pki;
  std::optional<RenderReport> render;
  if (!options.out_dir.empty()) {
    auto images = cluster_images(cluster_spec_of(*site), site->kubernetes_version, default_manifests_dir());
    if (!images) {
      return add_context(images.error(), fmt::format("the images of {}'s nodes", site->name));
    }
    auto made = make_site(*site, options.out_dir, *images, pki_options(options));
    if (!made) {
      return std::unexpected(made.error());
    }
    pki = std::move(made->pki);
    render = std::move(made->nodes);
  }
  if (options.json) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& host : site->hosts) {
      hosts.push_back({{"name", host.name}, {"address", host.address}, {"arch", host.arch}, {"roles", host.roles}});
    }
    nlohmann::json out = {{"site", site->name},
                          {"valid", true},
                          {"deployment", topology.id},
                          {"description", topology.description},
                          {"hosts", hosts}};
    if (pki) {
      out["pki"] = {{"dir", (options.out_dir / "pki").string()}, {"written", pki->written}, {"kept", pki->kept}};
      out["nodes"] = {{"dir", (options.out_dir / "nodes").string()},
                      {"nodes", render->nodes},
                      {"files", render->files},
                      {"written", render->written},
                      {"removed", render->removed}};
    }
    return print_stdout(out.dump(2) + "\n");
  }
  std::string text = fmt::format("{}: valid: one of the 21 deployments (docs/site.md): {}\n  deployment {}\n",
                                 site->name, topology.description, topology.id);
  for (const auto& host : site->hosts) {
    text += fmt::format("  {:<16} {:<15} {:<5} {}\n", host.name, host.address, host.arch, fmt::join(host.roles, ", "));
  }
  if (pki) {
    text += pki->written.empty() ? fmt::format("PKI in {}: all {} keys and certificates kept; nothing changed\n",
                                               (options.out_dir / "pki").string(), pki->kept.size())
                                 : fmt::format("PKI in {}: {} made, {} kept\n", (options.out_dir / "pki").string(),
                                               pki->written.size(), pki->kept.size());
    auto nodes = (options.out_dir / "nodes").string();
    if (render->written.empty() && render->removed.empty()) {
      text +=
          fmt::format("nodes in {}: {} nodes, {} files; nothing changed\n", nodes, render->nodes.size(), render->files);
    } else {
      text += fmt::format("nodes in {}: {} nodes, {} files: {} written, {} removed\n", nodes, render->nodes.size(),
                          render->files, render->written.size(), render->removed.size());
    }
  }
  return print_stdout(text);
}

Status run_closure(const BuilderOptions& options) {
  auto plan = load_manifest(options);
  auto fetch = fetch_options(options);
  if (!plan || !fetch) {
    return std::unexpected(plan ? fetch.error() : plan.error());
  }
  if (plan->profiles.empty()) {
    return std::unexpected(Error(ErrorKind::usage, fmt::format("{} asks for no OS packages (no os_profiles, or "
                                                               "packages: closure: none)",
                                                               options.manifest.string())));
  }
  Cache cache(options.cache.value_or(default_cache_dir()));
  auto sets = resolve_packages(*plan, cache, *fetch, PackageFiles::skip);
  if (!sets) {
    return add_context(sets.error(), fmt::format("resolving the OS packages of {}", options.manifest.string()));
  }
  if (options.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& set : *sets) {
      out.push_back(package_set_json(set));
    }
    return print_stdout(out.dump(2) + "\n");
  }
  return print_stdout(describe_closures(*sets));
}

Status run_resolve(const BuilderOptions& options) {
  auto plan = load_manifest(options);
  auto fetch = fetch_options(options);
  if (!plan || !fetch) {
    return std::unexpected(plan ? fetch.error() : plan.error());
  }
  Cache cache(options.cache.value_or(default_cache_dir()));
  auto lock = resolve_plan(*plan, cache, *fetch, options.allow_unpinned);
  if (!lock) {
    return add_context(lock.error(), fmt::format("resolving {}", options.manifest.string()));
  }
  auto path = options.lock.value_or("kubexm.lock");
  if (auto status = write_file_atomic(path, format_lock(*lock)); !status) {
    return status;
  }
  return print_stdout(fmt::format("resolved {} artifacts of {} {} (Kubernetes {}) into {}\n", lock->artifacts.size(),
                                  lock->bundle.name, lock->bundle.version, lock->bundle.kubernetes, path.string()));
}

Status run_fetch(const BuilderOptions& options) {
  auto fetch = fetch_options(options);
  if (!fetch) {
    return std::unexpected(fetch.error());
  }
  auto lock = read_lock(*options.lock);
  if (!lock) {
    return std::unexpected(lock.error());
  }
  Cache cache(options.cache.value_or(default_cache_dir()));
  if (auto status = fetch_lock(*lock, cache, *fetch); !status) {
    return add_context(status.error(), fmt::format("fetching {}", options.lock->string()));
  }
  return {};
}

Status run_pack(const BuilderOptions& options);

// The lock a build works from, and whether it was just resolved (its files are then in the
// cache and verified already).
struct BuildLock {
  Lock lock;
  bool resolved = false;
};

// The lock to build from: --lock (default OUTDIR/kubexm.lock) when it exists and was made
// from this manifest, else a fresh resolve written there. A stale lock given with --lock
// is an error, since the user asked for exactly that lock; the default one is replaced.
Result<BuildLock> lock_for_build(const BuilderOptions& options, const Plan& plan, const Cache& cache,
                                 const FetchOptions& fetch) {
  auto path = options.lock.value_or(options.out_dir / "kubexm.lock");
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto lock = read_lock(path);
    auto matches = lock ? check_lock_matches(*lock, plan, path) : Status(std::unexpected(lock.error()));
    if (matches) {
      spdlog::info("building from {} without resolving again", path.string());
      return BuildLock{std::move(*lock), false};
    }
    if (options.lock) {
      return std::unexpected(matches.error());
    }
    spdlog::info("{}; resolving again", matches.error().message());
  }
  auto lock = resolve_plan(plan, cache, fetch, options.allow_unpinned);
  if (!lock) {
    return std::unexpected(lock.error());
  }
  fs::create_directories(path.parent_path().empty() ? "." : path.parent_path(), ec);
  if (auto status = write_file_atomic(path, format_lock(*lock)); !status) {
    return std::unexpected(status.error());
  }
  spdlog::info("wrote {}", path.string());
  return BuildLock{std::move(*lock), true};
}

Status run_build(const BuilderOptions& options) {
  auto plan = load_manifest(options);
  auto fetch = fetch_options(options);
  if (!plan || !fetch) {
    return std::unexpected(plan ? fetch.error() : plan.error());
  }
  Cache cache(options.cache.value_or(default_cache_dir()));
  auto lock = lock_for_build(options, *plan, cache, *fetch);
  if (!lock) {
    return add_context(lock.error(), fmt::format("building {}", options.manifest.string()));
  }
  // A fresh resolve left every file in the cache, verified. From a reused lock, build reads
  // every file in full when laying it out, so it also re-hashes cache hits (a damaged
  // cached file is downloaded again) where `fetch` trusts them.
  if (!lock->resolved) {
    auto verified = *fetch;
    verified.verify_hits = true;
    if (auto status = fetch_lock(lock->lock, cache, verified); !status) {
      return add_context(status.error(), fmt::format("building {}", options.manifest.string()));
    }
  }
  const auto& bundle = lock->lock.bundle;
  auto tree = options.out_dir / fmt::format(".{}-{}.tree", bundle.name, bundle.version);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (auto status = remove_tree(tree); !status) {
    return status;
  }
  auto status = assemble_tree(lock->lock, cache, tree);
  if (status && plan->site) {
    SiteBuild site{options.site_dir.empty() ? options.out_dir / (plan->site->name + ".site") : options.site_dir,
                   pki_options(options)};
    auto rendered = assemble_site(*plan, site, tree);
    if (rendered) {
      spdlog::info("site {}: {} nodes rendered in {} ({} files written), carried under site/", plan->site->name,
                   rendered->nodes.size(), site.site_dir.string(), rendered->written.size());
    } else {
      status = std::unexpected(rendered.error());
    }
  }
  if (status && !plan->site) {
    auto prepared = assemble_preparation(*plan, lock->lock, tree);
    if (!prepared) {
      status = std::unexpected(prepared.error());
    } else if (*prepared) {
      spdlog::info("no site: masters' and workers' hosts get a default runtime configuration, carried under "
                   "prepare/kubernetes/");
    }
  }
  if (status) {
    BuilderOptions pack = options;
    pack.dist_dir = tree;
    pack.threads = 0;
    status = run_pack(pack);
  }
  if (auto removed = remove_tree(tree); !removed && status) {
    return removed;
  }
  if (!status) {
    return add_context(status.error(), fmt::format("building {}", options.manifest.string()));
  }
  return {};
}

Status run_pack(const BuilderOptions& options) {
  auto environment_epoch = epoch_from_environment();
  if (!environment_epoch) {
    return std::unexpected(environment_epoch.error());
  }
  auto progress = make_progress(options.common, "kubexm-builder");
  PackOptions pack;
  pack.dist_dir = options.dist_dir;
  pack.out_dir = options.out_dir;
  pack.installer_stub = options.installer.value_or(default_installer());
  pack.source_date_epoch = options.source_date_epoch ? options.source_date_epoch : *environment_epoch;
  pack.created_by = "kubexm-builder " KUBEXM_VERSION;
  pack.threads = options.threads;
  pack.level = options.level;
  pack.progress = progress.get();
  auto result = pack_bundle(pack);
  if (!result) {
    return add_context(result.error(), fmt::format("packing {}", options.dist_dir.string()));
  }
  for (const auto& note : result->notes) {
    spdlog::info("{}", note);
  }
  return print_stdout(
      fmt::format("packed bundle {} {}: {} files, {}, digest {}\n"
                  "  {}  {}\n  {}  {}\n  {}\n",
                  result->info.name, result->info.version, result->file_count, human_bytes(result->file_bytes),
                  to_hex(result->bundle_digest), human_bytes(result->archive_size), result->archive.string(),
                  human_bytes(result->installer_size), result->installer.string(), result->sums.string()));
}

Status run_verify(const BuilderOptions& options) {
  auto progress = make_progress(options.common, "kubexm-builder");
  auto header = verify_bundle(options.file, progress.get());
  if (!header) {
    return add_context(header.error(), fmt::format("verifying {}", options.file.string()));
  }
  return print_stdout(verified_line(options.file, *header));
}

Status run_inspect(const BuilderOptions& options) {
  auto text = describe_bundle_file(options.file, options.json ? OutputFormat::json : OutputFormat::text);
  if (!text) {
    return std::unexpected(text.error());
  }
  return print_stdout(*text);
}

} // namespace

int builder_main(int argc, char** argv) {
  BuilderOptions options;
  CLI::App app("kubexm-builder: makes kubexm-dist bundles for air-gapped Kubernetes sites.", "kubexm-builder");
  add_common_options(app, options.common, "kubexm-builder " KUBEXM_VERSION);
  app.footer(exit_status_help());
  app.require_subcommand(1);
  Status (*chosen)(const BuilderOptions&) = nullptr;

  auto* pack = app.add_subcommand("pack", "Pack a laid-out kubexm-dist tree into OUTDIR: "
                                          "kubexm-dist-<name>-<version>.tar.zst, the self-extracting install, "
                                          "and SHA256SUMS for both");
  pack->add_option("--dir", options.dist_dir, "The kubexm-dist tree (bundle.yaml at its root)")
      ->required()
      ->check(CLI::ExistingDirectory);
  pack->add_option("-o,--output", options.out_dir, "Output directory (created if missing)")->required();
  pack->add_option("--installer", options.installer,
                   "The static installer to attach (default: `install` beside kubexm-builder)")
      ->check(CLI::ExistingFile);
  pack->add_option("--source-date-epoch", options.source_date_epoch,
                   "The mtime of every member (default: $SOURCE_DATE_EPOCH, else bundle.yaml's "
                   "source_date_epoch, else the newest mtime in the tree)")
      ->check(CLI::NonNegativeNumber);
  pack->add_option("-j,--threads", options.threads,
                   "zstd worker threads (default: one per core; the "
                   "output does not depend on it)");
  pack->add_option("--level", options.level, "zstd level")->check(CLI::Range(1, 19));
  pack->callback([&] { chosen = run_pack; });

  auto* verify = app.add_subcommand("verify", "Verify an archive or self-extracting install completely");
  verify->add_option("FILE", options.file, "kubexm-dist-*.tar.zst or install")->required()->check(CLI::ExistingFile);
  verify->callback([&] { chosen = run_verify; });

  auto* inspect = app.add_subcommand("inspect", "Show bundle.yaml, counts, sizes and the aggregate digest");
  inspect->add_option("FILE", options.file, "kubexm-dist-*.tar.zst or install")->required()->check(CLI::ExistingFile);
  inspect->add_flag("--json", options.json, "Machine-readable output");
  inspect->callback([&] { chosen = run_inspect; });

  // The site's keys: `site -o` and `build` of a manifest that names a site make them alike.
  auto add_key_options = [&](CLI::App* command, const char* when) {
    command->add_flag("--rotate", options.rotate,
                      fmt::format("{}: make every key, certificate and the bootstrap token anew", when));
    command
        ->add_option("--key-algorithm", options.key_algorithm,
                     fmt::format("{}: rsa (2048 bits, the default) or ecdsa (P-256)", when))
        ->check(CLI::IsMember({"rsa", "ecdsa"}));
  };

  auto add_fetch_options = [&](CLI::App* command) {
    command->add_option("--cache", options.cache,
                        "Download cache, keyed by SHA-256 (default: $KUBEXM_CACHE, else ~/.cache/kubexm)");
    command
        ->add_option("--mirror", options.mirrors,
                     "Fetch URLs starting with FROM from TO instead, e.g. "
                     "https://dl.k8s.io=https://artifacts.site/dl.k8s.io (repeatable; the longest FROM wins)")
        ->type_name("FROM=TO");
    command
        ->add_option("--cacert", options.ca_file,
                     "Verify servers against the CA certificates in FILE (PEM) instead of the system's, for a "
                     "site mirror with a private CA; TLS verification is always on")
        ->check(CLI::ExistingFile);
    command->add_option("-j,--jobs", options.jobs, "Parallel downloads (default 4)")->check(CLI::Range(1, 64));
    command
        ->add_option("--retries", options.retries,
                     "Retries of a download that failed in a way that may pass (refused or cut connection, "
                     "HTTP 5xx), resuming where it stopped, after 0.5 s, 1 s, 2 s, ... (at most 8 s)")
        ->check(CLI::Range(0, 20));
    command
        ->add_option("--registry-mirror", options.registry_mirrors,
                     "Read images of registry (or registry/path) FROM from TO instead, e.g. "
                     "docker.io=registry.site:5000/dockerhub; the lock and the bundle keep the original names "
                     "(repeatable; the longest FROM wins)")
        ->type_name("FROM=TO");
    command
        ->add_option("--insecure-registry", options.insecure_registries,
                     "Reach registry HOST[:PORT] without TLS verification (plain HTTP or an unverified "
                     "certificate); every other registry is verified (repeatable)")
        ->type_name("HOST");
    command
        ->add_option("--authfile", options.authfile,
                     "Registry credentials (containers-auth.json, as podman login and skopeo login write it); "
                     "default: skopeo's, ${XDG_RUNTIME_DIR}/containers/auth.json")
        ->check(CLI::ExistingFile);
    command
        ->add_option("--images-policy", options.images_policy,
                     "An image without one of the bundle's arches: strict (an error, the default) or warn (the "
                     "bundle carries it for the other arches; the lock records what is missing)")
        ->check(CLI::IsMember({"strict", "warn"}));
  };
  auto add_manifest_options = [&](CLI::App* command) {
    command->add_option("-f,--manifest", options.manifest, "The bundle manifest (YAML)")
        ->required()
        ->check(CLI::ExistingFile);
    command
        ->add_option("--manifests", options.manifests_dir,
                     "The catalogue and release files (default: $KUBEXM_MANIFESTS, else the ones installed "
                     "with kubexm-builder)")
        ->check(CLI::ExistingDirectory);
    command
        ->add_option("--os-profiles", options.os_profiles_dir,
                     "The os-profiles directory (default: $KUBEXM_OS_PROFILES, else the one installed with "
                     "kubexm-builder)")
        ->check(CLI::ExistingDirectory);
    command
        ->add_option("--closure", options.closure,
                     "OS package closures: minimal (what a role needs beyond the OS's base set, the default), full "
                     "(everything, for hosts stripped below a minimal install) or none; replaces the manifest's "
                     "packages: closure")
        ->check(CLI::IsMember({"minimal", "full", "none"}));
    command->add_flag("--allow-unpinned", options.allow_unpinned,
                      "Accept versions the manifests carry no SHA-256 for, trusting the upstream checksum files "
                      "alone (the lock records which)");
  };

  auto* resolve = app.add_subcommand("resolve", "Resolve a manifest to a lock: the exact URL, size and SHA-256 of "
                                                "every artifact for every arch, each downloaded and verified");
  add_manifest_options(resolve);
  resolve->add_option("-o,--output", options.lock, "The lock file to write (default: kubexm.lock)");
  add_fetch_options(resolve);
  resolve->callback([&] { chosen = run_resolve; });

  auto* site = app.add_subcommand("site", "Check a site file (which of the 21 deployments of docs/site.md it is, and "
                                          "its hosts; every problem with its line), make its PKI and render every "
                                          "node's configuration");
  site->add_option("-f,--file", options.manifest, "The site file (YAML; see docs/site.md)")
      ->required()
      ->check(CLI::ExistingFile);
  auto* site_output =
      site->add_option("-o,--output", options.out_dir,
                       "Make the site's PKI under DIR/pki (CAs, certificates, service-account keys, bootstrap "
                       "token; kept when present), its kubeconfigs under DIR/kubeconfigs and every node's files "
                       "under DIR/nodes/<node>");
  site->add_flag("--check", options.check, "Validate only; write nothing")->excludes(site_output);
  add_key_options(site, "With -o");
  site->add_flag("--json", options.json, "Machine-readable output");
  site->callback([&] { chosen = run_site; });

  auto* closure = app.add_subcommand(
      "closure", "Resolve the OS package closures of a manifest (every os-profile, arch and role) from the "
                 "distributions' repository metadata and show them; downloads metadata only");
  add_manifest_options(closure);
  closure->add_flag("--json", options.json, "Machine-readable output (the lock's package_sets)");
  add_fetch_options(closure);
  closure->callback([&] { chosen = run_closure; });

  auto* fetch = app.add_subcommand("fetch", "Download everything a lock names into the cache, verified against "
                                            "the lock; what is cached already is not downloaded again");
  fetch->add_option("--lock", options.lock, "The lock file")->required()->check(CLI::ExistingFile);
  add_fetch_options(fetch);
  fetch->callback([&] { chosen = run_fetch; });

  auto* build = app.add_subcommand("build", "Resolve (unless --lock exists), fetch and pack a manifest into OUTDIR");
  add_manifest_options(build);
  build->add_option("--lock", options.lock,
                    "The lock to build from (default: OUTDIR/kubexm.lock). When it exists and matches the "
                    "manifest, nothing is resolved again (and with a warm cache nothing is downloaded); "
                    "otherwise the manifest is resolved and the lock written. A given --lock that no longer "
                    "matches the manifest is an error");
  build->add_option("-o,--output", options.out_dir, "Output directory (created if missing)")->required();
  build
      ->add_option("--installer", options.installer,
                   "The static installer to attach (default: `install` beside kubexm-builder)")
      ->check(CLI::ExistingFile);
  build
      ->add_option("--source-date-epoch", options.source_date_epoch,
                   "The mtime of every member (default: $SOURCE_DATE_EPOCH, else now); fix it for "
                   "byte-identical rebuilds")
      ->check(CLI::NonNegativeNumber);
  build->add_option("--site-dir", options.site_dir,
                    "With a manifest that names a site: where its PKI and rendered nodes are kept between "
                    "builds (default: OUTDIR/<site name>.site); the bundle carries site/nodes/<node>/");
  add_key_options(build, "With a site");
  add_fetch_options(build);
  build->callback([&] { chosen = run_build; });

  return run_program("kubexm-builder", app, argc, argv, options.common, [&] { return chosen(options); });
}

} // namespace kubexm
