#include "installer/installer_main.hpp"

#include "bundle/cli.hpp"
#include "bundle/extract.hpp"
#include "bundle/reader.hpp"
#include "bundle/report.hpp"
#include "installer/images.hpp"
#include "installer/locate.hpp"
#include "installer/packages.hpp"
#include "installer/role/cluster.hpp"
#include "installer/role/engine.hpp"

#include <charconv>
#include <chrono>
#include <filesystem>
#include <optional>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

struct InstallerOptions {
  CommonOptions common;
  std::optional<fs::path> bundle;
  bool json = false;
  fs::path target;
  std::string role;
  fs::path root = "/";
  bool dry_run = false;
  std::string runtime = "containerd";
  std::string address;
  std::string ns = "k8s.io";
  std::optional<std::string> node;
  std::string wait = "10m";
  std::vector<std::string> ignore_preflight;
  bool purge_data = false;
  bool purge_packages = false;
  bool write = false;
};

// "10m", "90s", "1h", "300": a duration; bare numbers are seconds.
Result<std::chrono::seconds> parse_wait(const std::string& text) {
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  long scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (ec != std::errc() || value < 0 || scale == 0) {
    return std::unexpected(
        Error(ErrorKind::usage, fmt::format("--wait {}: expected a duration like 90s, 10m or 1h", text)));
  }
  return std::chrono::seconds(value * scale);
}

Status run_role(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto wait = parse_wait(options.wait);
  if (!wait) {
    return std::unexpected(wait.error());
  }
  auto progress = make_progress(options.common, "install");
  RoleRequest request{*path, options.role, options.node, options.dry_run, options.json, *wait, {}, progress.get()};
  for (const auto& names : options.ignore_preflight) {
    for (std::size_t at = 0; at <= names.size();) {
      auto comma = names.find(',', at);
      auto name = names.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (!name.empty()) {
        request.ignore_preflight.insert(name);
      }
      at = comma == std::string::npos ? names.size() + 1 : comma + 1;
    }
  }
  auto report = install_role(request);
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

Status run_status(const InstallerOptions& options) {
  auto report = role_status(options.json);
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

Status run_reset(const InstallerOptions& options) {
  auto report = reset_role({options.purge_data, options.purge_packages, options.json});
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

Status run_kubeconfig(const InstallerOptions& options) {
  auto report = cluster_kubeconfig(options.write, options.json);
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

Status run_finish(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto wait = parse_wait(options.wait);
  if (!wait) {
    return std::unexpected(wait.error());
  }
  auto report = cluster_finish({*path, *wait, options.json});
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

Status run_verify(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto progress = make_progress(options.common, "install");
  auto header = verify_bundle(*path, progress.get());
  if (!header) {
    return add_context(header.error(), fmt::format("verifying {}", path->string()));
  }
  return print_stdout(verified_line(*path, *header));
}

Status run_list(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto header = read_bundle_header(*path);
  if (!header) {
    return add_context(header.error(), path->string());
  }
  return print_stdout(options.json ? list_members(*header).dump(2) + "\n" : list_members_text(*header));
}

Status run_info(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto text = describe_bundle_file(*path, options.json ? OutputFormat::json : OutputFormat::text);
  if (!text) {
    return std::unexpected(text.error());
  }
  return print_stdout(*text);
}

Status run_extract(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto progress = make_progress(options.common, "install");
  auto report = extract_bundle(*path, options.target, progress.get());
  if (!report) {
    return add_context(report.error(), fmt::format("extracting {} into {}", path->string(), options.target.string()));
  }
  const auto& header = report->header;
  if (report->outcome == ExtractOutcome::already_present) {
    return print_stdout(fmt::format("{} already holds bundle {} {} (digest {}); nothing changed\n",
                                    options.target.string(), header.info.name, header.info.version,
                                    to_hex(header.digest)));
  }
  return print_stdout(fmt::format("extracted bundle {} {} into {}: {} files, {}, digest {}\n", header.info.name,
                                  header.info.version, options.target.string(), header.file_count,
                                  human_bytes(header.file_bytes), to_hex(header.digest)));
}

Status run_packages(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto progress = make_progress(options.common, "install");
  PackagesRequest request{*path, options.role, options.root, options.dry_run, options.json, progress.get(), {}, false, {}};
  auto report = install_packages(request);
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

Status run_images(const InstallerOptions& options) {
  auto path = locate_bundle(options.bundle);
  if (!path) {
    return std::unexpected(path.error());
  }
  auto progress = make_progress(options.common, "install");
  ImagesRequest request{*path,      options.runtime, options.root, options.address,
                        options.ns, options.dry_run, options.json, progress.get()};
  auto report = install_images(request);
  if (!report) {
    return std::unexpected(report.error());
  }
  return print_stdout(*report);
}

// The subcommands, in the order --help lists them (ninja's kTools[]).
struct Command {
  const char* name;
  const char* help;
  Status (*run)(const InstallerOptions&);
};

constexpr Command k_commands[] = {
    {"status", "Show this host's kubexm install: its node, the bundle, each step with its state and time, each "
               "service's state",
     run_status},
    {"reset",
     "Take back what --role did on this host, newest first, from its journal: services stopped and disabled, files "
     "removed or restored, /etc/hosts and the host name as they were; OS packages and data directories stay unless "
     "asked",
     run_reset},
    {"kubeconfig", "On an installed master: print the path of the cluster's admin kubeconfig, or with --write copy "
                   "it to ~/.kube/config (never over another one)",
     run_kubeconfig},
    {"finish", "On an installed master, once every host is installed: wait until every master and worker of the "
               "site has joined, delete the bootstrap token (kubexm clusters) and list the nodes",
     run_finish},
    {"verify", "Verify the whole bundle (every byte, every digest); writes nothing", run_verify},
    {"list", "List the bundle's files with sizes and SHA-256 (from its verified index)", run_list},
    {"info", "Show bundle.yaml, the aggregate digest and the trailer", run_info},
    {"extract", "Verify and extract into DIR (staged next to DIR, moved into place at the end)", run_extract},
    {"packages",
     "Install the OS packages of a role from the bundle, offline: detects the host's OS and arch, checks that the "
     "base packages the closure relies on are there before changing anything, installs what is missing with the "
     "host's apt or rpm, and checks the result",
     run_packages},
    {"images",
     "Import the bundle's container images for this host's arch into containerd or docker, offline: streams only "
     "the images the runtime lacks straight from the bundle, then checks every image is there at its locked digest",
     run_images},
};

} // namespace

int installer_main(int argc, char** argv) {
  InstallerOptions options;
  CLI::App app("install: the kubexm offline installer. It carries a kubexm-dist bundle (attached to itself, or "
               "a kubexm-dist-*.tar.zst beside it), verifies it, and installs from it without network access.",
               "install");
  app.option_defaults()->always_capture_default(false);
  add_common_options(app, options.common, "install (kubexm) " KUBEXM_VERSION);
  app.add_option("--bundle", options.bundle,
                 "The bundle to use (archive or self-extracting install); default: the one attached to this "
                 "executable, else the one kubexm-dist-*.tar.zst beside it")
      ->check(CLI::ExistingFile);
  app.add_option("--role", options.role,
                 "Perform this host's role from the bundle: master, worker, etcd or lb (the node's whole "
                 "node.yaml is performed). See docs/install.md")
      ->check(CLI::IsMember({"master", "worker", "etcd", "lb"}));
  app.add_option("--node", options.node, "With --role: the site's node this host is (default: the node whose "
                                         "address is on this host, else the one named like it)");
  app.add_flag("--dry-run", options.dry_run, "With --role: check the host and print the plan, each step and why it "
                                             "would or would not run; change nothing");
  app.add_option("--wait", options.wait, "With --role: how long a step may wait for another host (etcd's quorum, "
                                         "an apiserver), like 90s, 10m or 1h (default 10m)");
  app.add_option("--ignore-preflight", options.ignore_preflight,
                 "With --role: preflight checks to pass regardless, by name (os, node-files, kernel, modules, "
                 "swap, ports, disk, cpus, memory, time-sync, runtime, binaries, address), comma-separated")
      ->delimiter(',');
  app.add_flag("--json", options.json, "Machine-readable report (with --role, status, reset, list, info, ...)");
  app.footer(exit_status_help());
  app.require_subcommand(0, 1);
  const Command* chosen = nullptr;
  for (const auto& command : k_commands) {
    auto* sub = app.add_subcommand(command.name, command.help);
    sub->callback([&chosen, &command] { chosen = &command; });
    if (std::string_view(command.name) == "packages") {
      sub->add_option("--role", options.role, "The host's role: master, worker, etcd or lb")
          ->required()
          ->check(CLI::IsMember({"master", "worker", "etcd", "lb"}));
      sub->add_option("--root", options.root,
                      "The host's root directory (default /): another root is inspected there and installed "
                      "into with chroot (apt) or rpm --root")
          ->check(CLI::ExistingDirectory);
      sub->add_flag("--dry-run", options.dry_run, "Check and show what would be installed; change nothing");
      sub->add_flag("--json", options.json, "Machine-readable report");
    }
    if (std::string_view(command.name) == "images") {
      sub->add_option("--runtime", options.runtime, "The container runtime: containerd (default; ctr) or docker")
          ->check(CLI::IsMember({"containerd", "docker"}));
      sub->add_option("--root", options.root,
                      "The host's root directory (default /): its arch, and the runtime's default socket under it")
          ->check(CLI::ExistingDirectory);
      sub->add_option("--address", options.address,
                      "The runtime's socket (default: ROOT/run/containerd/containerd.sock, or ROOT/run/docker.sock)");
      sub->add_option("--namespace", options.ns, "The containerd namespace (default k8s.io, the kubelet's)");
      sub->add_flag("--dry-run", options.dry_run, "Check and show what would be imported; change nothing");
      sub->add_flag("--json", options.json, "Machine-readable report");
    }
    if (std::string_view(command.name) == "list" || std::string_view(command.name) == "info" ||
        std::string_view(command.name) == "status") {
      sub->add_flag("--json", options.json, "Machine-readable output");
    }
    if (std::string_view(command.name) == "reset") {
      sub->add_flag("--purge-data", options.purge_data,
                    "Also remove the data directories of the services kubexm installed (/var/lib/etcd, "
                    "/var/lib/containerd, /var/lib/kubelet, ...)");
      sub->add_flag("--purge-packages", options.purge_packages, "Also remove the OS packages kubexm installed");
      sub->add_flag("--json", options.json, "Machine-readable report");
    }
    if (std::string_view(command.name) == "kubeconfig") {
      sub->add_flag("--write", options.write, "Copy it to ~/.kube/config (0600), unless another file is there");
      sub->add_flag("--json", options.json, "Machine-readable output");
    }
    if (std::string_view(command.name) == "finish") {
      sub->add_option("--wait", options.wait, "How long to wait for the nodes to join, like 90s, 10m or 1h "
                                              "(default 10m)");
      sub->add_flag("--json", options.json, "Machine-readable report");
    }
    if (std::string_view(command.name) == "extract") {
      sub->add_option("DIR", options.target, "Directory to extract into (new, empty, or holding this bundle)")
          ->required();
    }
  }
  return run_program("install", app, argc, argv, options.common, [&]() -> Status {
    if (chosen == nullptr && options.role.empty()) {
      return std::unexpected(Error(ErrorKind::usage, "give --role ROLE (to install this host) or a command; see "
                                                     "install --help"));
    }
    if (chosen != nullptr && !options.role.empty() && std::string_view(chosen->name) != "packages") {
      return std::unexpected(Error(ErrorKind::usage, fmt::format("--role goes alone, not with {}", chosen->name)));
    }
    return chosen != nullptr ? chosen->run(options) : run_role(options);
  });
}

} // namespace kubexm
