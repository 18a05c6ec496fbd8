#include "builder/builder_main.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

#include "bundle/cli.hpp"
#include "bundle/reader.hpp"
#include "bundle/report.hpp"
#include "bundle/writer.hpp"

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
    return std::unexpected(Error(ErrorKind::usage,
                                 fmt::format("SOURCE_DATE_EPOCH='{}' is not seconds since 1970", text)));
  }
  return epoch;
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
  return print_stdout(fmt::format("packed bundle {} {}: {} files, {}, digest {}\n"
                           "  {}  {}\n  {}  {}\n  {}\n",
                           result->info.name, result->info.version, result->file_count,
                           human_bytes(result->file_bytes), to_hex(result->bundle_digest),
                           human_bytes(result->archive_size), result->archive.string(),
                           human_bytes(result->installer_size), result->installer.string(),
                           result->sums.string()));
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
  pack->add_option("-j,--threads", options.threads, "zstd worker threads (default: one per core; the "
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

  return run_program("kubexm-builder", app, argc, argv, options.common, [&] { return chosen(options); });
}

} // namespace kubexm
