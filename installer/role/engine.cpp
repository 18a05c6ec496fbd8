#include "installer/role/engine.hpp"

#include "bundle/cli.hpp"
#include "bundle/fs.hpp"
#include "bundle/log.hpp"
#include "bundle/reader.hpp"
#include "bundle/sha256.hpp"
#include "installer/host/system.hpp"
#include "installer/role/journal.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <chrono>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

// --- the table's columns -------------------------------------------------------------------------

std::string needed(const RoleContext&) {
  return {};
}

std::string needs_site(const RoleContext& ctx) {
  return ctx.node ? std::string() : std::string("the bundle has no site: a site's nodes get their configuration");
}

// A site's node, or a master or worker prepared from a bundle without a site.
std::string needs_node_files(const RoleContext& ctx) {
  if (!ctx.node_dir().empty()) {
    return {};
  }
  return ctx.has("master") || ctx.has("worker")
             ? "the bundle has neither a site nor a prepared host's configuration (it carries no containerd)"
             : fmt::format("the bundle has no site: the {} role gets its configuration from one", ctx.request.role);
}

std::string needs_packages(const RoleContext& ctx) {
  return ctx.header.info.packages.empty() ? "the bundle carries no OS packages" : "";
}

std::string needs_binaries(const RoleContext& ctx) {
  if (ctx.header.info.components.empty()) {
    return "the bundle carries no binaries";
  }
  return node_binaries(ctx).empty() ? fmt::format("the {} role takes no binaries from the bundle", fmt::join(ctx.roles, " and "))
                                    : std::string();
}

std::string needs_images(const RoleContext& ctx) {
  if (!ctx.has("master") && !ctx.has("worker")) {
    return "no container runtime on this node";
  }
  return ctx.header.info.images.empty() ? "the bundle carries no images" : needs_node_files(ctx);
}

std::string no_inputs(const RoleContext&) {
  return {};
}

std::string under(const RoleContext& ctx, const std::string& prefix, std::string_view extra = {}) {
  return members_digest(ctx, [&](std::string_view path) { return path.starts_with(prefix); }, extra);
}

std::string extract_inputs(const RoleContext& ctx) {
  return to_hex(sha256_of(fmt::format("{} {}", ctx.digest, fmt::join(extract_dirs(ctx), " "))));
}

std::string packages_inputs(const RoleContext& ctx) {
  return ctx.packages == nullptr ? std::string()
                                 : under(ctx, fmt::format("{}/{}/", ctx.packages->path, ctx.host.arch),
                                         fmt::format("{}", fmt::join(ctx.roles, " ")));
}

std::string binaries_inputs(const RoleContext& ctx) {
  std::string list;
  for (const auto& file : node_binaries(ctx)) {
    list += file.member + " " + file.target + "\n";
  }
  return members_digest(
      ctx, [&](std::string_view path) { return list.find(std::string(path) + " ") != std::string::npos; }, list);
}

std::string node_inputs(const RoleContext& ctx) {
  return under(ctx, ctx.node_dir());
}

std::string os_inputs(const RoleContext& ctx) {
  return under(ctx, ctx.node_dir() + "node.yaml", fmt::format("{}", fmt::join(role_ports(ctx), " ")));
}

std::string services_inputs(const RoleContext& ctx) {
  // A changed unit, configuration or binary restarts the services that use it.
  return to_hex(sha256_of(node_inputs(ctx) + binaries_inputs(ctx)));
}

std::string images_inputs(const RoleContext& ctx) {
  std::string images = ctx.runtime;
  for (const auto& image : ctx.header.info.images) {
    auto found = image.manifests.find(ctx.host.arch);
    images += fmt::format("\n{} {}", image.ref, found == image.manifests.end() ? "-" : found->second);
  }
  return to_hex(sha256_of(images));
}

std::string plan_preflight(const RoleContext& ctx) {
  return fmt::format("check the host for the {} role (nothing changes)", fmt::join(ctx.roles, " and "));
}

std::string plan_extract(const RoleContext& ctx) {
  return fmt::format("verify the bundle and extract {} into {}", fmt::join(extract_dirs(ctx), ", "),
                     extract_target(ctx).string());
}

std::string plan_packages(const RoleContext& ctx) {
  return ctx.packages == nullptr ? std::string("(no OS packages for this host)")
                                 : fmt::format("install the OS packages of {} for {} with {}", fmt::join(ctx.roles, ", "),
                                               ctx.packages->profile, ctx.packages->format == "deb" ? "apt" : "rpm");
}

std::string plan_binaries(const RoleContext& ctx) {
  std::vector<std::string> names;
  for (const auto& file : node_binaries(ctx)) {
    names.push_back(fs::path(file.target).filename().string());
  }
  return fmt::format("place {} binaries: {}", names.size(), fmt::join(names, " "));
}

std::string plan_files(const RoleContext& ctx) {
  auto count = members_under(ctx, ctx.node_dir()).size() - 1;
  auto hosts = ctx.config ? fmt::format(" ({} entries)", ctx.config->hosts.size()) : std::string();
  return ctx.node ? fmt::format("place the node's {} files, its /etc/hosts block{} and host name {}", count, hosts,
                                ctx.node->name)
                  : fmt::format("place the {} files of a default configuration (no site)", count);
}

std::string plan_images(const RoleContext& ctx) {
  return fmt::format("import the bundle's {} images for {} into {}", ctx.header.info.images.size(), ctx.host.arch,
                     ctx.runtime);
}

std::string plan_health(const RoleContext& ctx) {
  return fmt::format("check that the {} role{} answer{}", fmt::join(ctx.roles, " and "), ctx.roles.size() > 1 ? "s" : "",
                     ctx.roles.size() > 1 ? "" : "s");
}

constexpr Step k_steps[] = {
    {"preflight", true, true, needed, no_inputs, plan_preflight, preflight},
    {"extract", false, false, needed, extract_inputs, plan_extract, extract},
    {"packages", false, false, needs_packages, packages_inputs, plan_packages, install_os_packages},
    {"binaries", false, false, needs_binaries, binaries_inputs, plan_binaries, place_binaries},
    {"files", false, false, needs_node_files, node_inputs, plan_files, place_node_files},
    {"os-init", false, false, needs_node_files, os_inputs, plan_os, init_os},
    {"services", false, false, needs_node_files, services_inputs, plan_services, start_services},
    {"images", false, false, needs_images, images_inputs, plan_images, import_node_images},
    {"actions", false, false, needs_site, node_inputs, plan_actions, run_after_actions},
    {"health", true, false, needed, no_inputs, plan_health, check_health},
};

} // namespace

std::span<const Step> role_steps() {
  return k_steps;
}

namespace {

// --- which node, which roles -----------------------------------------------------------------------

std::string runtime_of(const BundleHeader& header, const std::string& node_dir) {
  for (const auto& [unit, runtime] : {std::pair{"docker.service", "docker"}, std::pair{"crio.service", "cri-o"}}) {
    auto path = node_dir + "usr/lib/systemd/system/" + unit;
    if (std::ranges::find(header.index, path, &IndexEntry::path) != header.index.end()) {
      return runtime;
    }
  }
  return "containerd";
}

Status choose_roles(RoleContext& ctx) {
  const auto& info = ctx.header.info;
  if (std::ranges::find(info.roles, ctx.request.role) == info.roles.end()) {
    return std::unexpected(Error(ErrorKind::usage, fmt::format("--role {}: the bundle serves roles {}", ctx.request.role,
                                                               fmt::join(info.roles, ", "))));
  }
  if (!info.site) {
    if (ctx.request.node) {
      return std::unexpected(Error(ErrorKind::usage, "--node: the bundle has no site, so no nodes to choose from"));
    }
    ctx.roles = {ctx.request.role};
    // Masters and workers get the runtime and the kubelet's unit from the bundle's prepared
    // configuration (builder: render_preparation).
    bool kubelet = ctx.request.role == "master" || ctx.request.role == "worker";
    const std::string prepared = "prepare/kubernetes/node.yaml";
    if (kubelet && std::ranges::find(ctx.header.index, prepared, &IndexEntry::path) != ctx.header.index.end()) {
      ctx.prepared_dir = "prepare/kubernetes/";
    }
    return {};
  }
  auto choice = choose_node(*info.site, ctx.request.node, local_ipv4_addresses(), host_name());
  if (!choice) {
    return std::unexpected(choice.error());
  }
  const auto& node = *choice->node;
  if (std::ranges::find(node.roles, ctx.request.role) == node.roles.end()) {
    return std::unexpected(Error(ErrorKind::usage, fmt::format("--role {}: this host is node {} ({}), whose roles are {}",
                                                               ctx.request.role, node.name, choice->how,
                                                               fmt::join(node.roles, ", "))));
  }
  spdlog::info("this host is node {} of site {} ({}): {}", node.name, info.site->name, choice->how,
               fmt::join(node.roles, ", "));
  ctx.node = node;
  ctx.roles = node.roles;
  ctx.kubernetes = info.site->deployment.substr(0, info.site->deployment.find('/'));
  ctx.runtime = runtime_of(ctx.header, ctx.node_dir());
  return {};
}

nlohmann::json bundle_identity(const RoleContext& ctx) {
  return {{"name", ctx.header.info.name}, {"version", ctx.header.info.version}, {"digest", ctx.digest}};
}

// --- running the table -------------------------------------------------------------------------------

// Why a step runs, or nothing when it does not: it is new, changed, or was cut off.
std::optional<std::string> reason_to_run(const Step& step, const RoleContext& ctx, const std::string& inputs) {
  if (step.always) {
    return "checked every run";
  }
  auto record = ctx.effects->journal().step(step.name);
  if (!record) {
    return "not done yet";
  }
  if (record->state != "done") {
    return fmt::format("started {} and not finished", record->started);
  }
  if (record->inputs != inputs) {
    return "its inputs changed (a newer bundle or node configuration)";
  }
  return std::nullopt;
}

Status run_step(const Step& step, RoleContext& ctx, std::vector<StepReport>& reports) {
  if (auto why_not = step.not_needed(ctx); !why_not.empty()) {
    reports.push_back({step.name, "skipped", why_not, 0});
    return {};
  }
  auto inputs = step.inputs(ctx);
  auto why = reason_to_run(step, ctx, inputs);
  if (!why) {
    auto record = ctx.effects->journal().step(step.name);
    reports.push_back({step.name, "unchanged", fmt::format("done {}, inputs unchanged", record->finished), 0});
    spdlog::info("{}: unchanged (done {})", step.name, record->finished);
    return {};
  }
  if (ctx.request.dry_run && !step.in_dry_run) {
    reports.push_back({step.name, "would-run", fmt::format("{}: {}", *why, step.plan(ctx)), 0});
    return {};
  }
  spdlog::info("{}: {}", step.name, step.plan(ctx));
  ctx.effects->set_step(step.name);
  ctx.detail.clear();
  auto started = std::chrono::steady_clock::now();
  if (!step.always) {
    if (auto status = ctx.effects->journal().step_started(step.name, inputs); !status) {
      return status;
    }
  }
  auto status = step.apply(ctx);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!status) {
    reports.push_back({step.name, "failed", status.error().message(), seconds});
    return add_context(status.error(), fmt::format("step {}", step.name));
  }
  if (!step.always) {
    if (auto done = ctx.effects->journal().step_done(step.name, seconds); !done) {
      return done;
    }
  }
  spdlog::info("{}: {} ({:.1f} s)", step.name, ctx.detail, seconds);
  reports.push_back({step.name, step.always ? "checked" : "done", ctx.detail, seconds});
  return {};
}

std::string text_report(const RoleContext& ctx, const std::vector<StepReport>& reports) {
  std::string out = ctx.node ? fmt::format("node {} ({}) of site {}, bundle {} {} ({})\n", ctx.node->name,
                                           fmt::join(ctx.roles, ", "), ctx.header.info.site->name,
                                           ctx.header.info.name, ctx.header.info.version, ctx.digest.substr(0, 16))
                             : fmt::format("host prepared for {} (a bundle without a site), bundle {} {} ({})\n",
                                           ctx.request.role, ctx.header.info.name, ctx.header.info.version,
                                           ctx.digest.substr(0, 16));
  std::size_t changed = 0;
  bool refused = false;
  for (const auto& report : reports) {
    // A failure's whole message follows on stderr; the table keeps to one line a step.
    out += fmt::format("  {:<10} {:<10} {}\n", report.step, report.outcome,
                       std::string_view(report.detail).substr(0, report.detail.find('\n')));
    changed += report.outcome == "done" ? 1u : 0u;
    refused = refused || report.outcome == "failed";
  }
  if (ctx.request.dry_run) {
    out += refused ? "dry run: nothing was changed; the preflight would stop the install here (below)\n"
                   : "dry run: nothing was changed\n";
  } else if (changed == 0) {
    out += "every step was done already with these inputs; nothing changed\n";
  }
  if (!ctx.node) {
    out += "joining a cluster needs a bundle built with a site (docs/site.md)\n";
  }
  return out;
}

std::string json_report(const RoleContext& ctx, const std::vector<StepReport>& reports, std::string_view outcome) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& report : reports) {
    steps.push_back(
        {{"step", report.step}, {"outcome", report.outcome}, {"detail", report.detail}, {"seconds", report.seconds}});
  }
  return nlohmann::json{{"node", ctx.node ? ctx.node->name : ""},
                        {"roles", ctx.roles},
                        {"bundle", bundle_identity(ctx)},
                        {"dry_run", ctx.request.dry_run},
                        {"outcome", outcome},
                        {"steps", steps}}
             .dump(2) +
         "\n";
}

Status start_log() {
  std::error_code ec;
  fs::create_directories("/var/log/kubexm", ec);
  auto stamp = utc_now();
  std::ranges::replace(stamp, ':', '-');
  return log_to_file(fmt::format("/var/log/kubexm/install-{}.log", stamp));
}

} // namespace

Result<std::string> install_role(const RoleRequest& request) {
  auto header = read_bundle_header(request.bundle);
  if (!header) {
    return add_context(header.error(), request.bundle.string());
  }
  auto host = detect_host("/");
  if (!host) {
    return std::unexpected(host.error());
  }
  auto journal = Journal::open("/");
  if (!journal) {
    return std::unexpected(journal.error());
  }
  HostEffects effects(*journal, "/");
  RoleContext ctx(request, std::move(*header), std::move(*host));
  ctx.digest = to_hex(ctx.header.digest);
  ctx.effects = &effects;
  if (auto status = choose_roles(ctx); !status) {
    return std::unexpected(status.error());
  }
  auto target = choose_target(ctx.header.info.packages, ctx.host);
  ctx.packages = target ? *target : nullptr;
  ctx.extracted = extract_target(ctx);
  auto node_name = ctx.node ? ctx.node->name : "(" + request.role + ")";
  if (!journal->empty() && journal->node() != node_name) {
    return fail("this host was installed as node {} (its journal, {}); run `install reset` before installing it "
                "as {}",
                journal->node(), journal->path().string(), node_name);
  }
  if (request.dry_run && !ctx.node_dir().empty()) {
    // The plan names node.yaml's services, actions and waits; reading it from the bundle
    // verifies the whole bundle as well, as a run would before changing anything.
    auto member = ctx.node_dir() + "node.yaml";
    auto text = verify_and_read_member(request.bundle, member, request.progress);
    if (!text) {
      return std::unexpected(text.error());
    }
    auto parsed = parse_node_config(*text, member);
    if (!parsed) {
      return std::unexpected(parsed.error());
    }
    ctx.config = std::move(*parsed);
  }
  // The preflight changes nothing, not even the installer's own state: a refused host is
  // left exactly as it was.
  std::vector<StepReport> reports;
  auto steps = role_steps();
  auto checked = run_step(steps.front(), ctx, reports);
  if (!checked && !request.dry_run) {
    if (request.json) {
      (void)print_stdout(json_report(ctx, reports, "preflight-failed"));
    }
    return std::unexpected(checked.error());
  }
  std::optional<InstallLock> lock;
  if (!request.dry_run) {
    auto held = InstallLock::acquire("/");
    if (!held) {
      return std::unexpected(held.error());
    }
    lock.emplace(std::move(*held));
    if (auto status = start_log(); !status) {
      log_warning(status.error().message());
    }
    spdlog::debug("installer run: role {}, bundle {}", request.role, request.bundle.string());
    journal->set_identity(node_name, ctx.roles, ctx.header.info.site ? ctx.header.info.site->name : "",
                          bundle_identity(ctx));
  }
  for (const auto& step : steps.subspan(1)) {
    if (auto status = run_step(step, ctx, reports); !status) {
      if (request.json) {
        (void)print_stdout(json_report(ctx, reports, "failed"));
      }
      return std::unexpected(status.error());
    }
    if (std::string_view(step.name) == "extract" && !request.dry_run && !ctx.node_dir().empty()) {
      // Now the later steps' plans can name node.yaml's services and actions; a node.yaml
      // that cannot be read is reported by the first step that needs it.
      (void)ctx.node_config();
    }
  }
  if (!checked) { // a dry run shows the whole plan, then says why it would stop
    (void)print_stdout(request.json ? json_report(ctx, reports, "preflight-failed") : text_report(ctx, reports));
    return std::unexpected(checked.error());
  }
  return request.json ? json_report(ctx, reports, request.dry_run ? "dry-run" : "installed")
                      : text_report(ctx, reports);
}

} // namespace kubexm
