#include "bundle/cli.hpp"

#include "bundle/interrupt.hpp"

#include <cstdio>

namespace kubexm {

std::string exit_status_help() {
  return "Exit status:\n"
         "  0    success\n"
         "  1    error (I/O, bad input file, missing program)\n"
         "  2    usage error\n"
         "  3    verification failed (tampered, truncated or unsafe bundle)\n"
         "  4    preflight failed (install --role): the host is not ready; nothing was changed\n"
         "  5    timed out waiting for another host (install --role); run again once it is up:\n"
         "       the steps done are not repeated\n"
         "  130  interrupted (SIGINT or SIGTERM); nothing half-done is left in place";
}

std::unique_ptr<Progress> make_progress(const CommonOptions& options, std::string program) {
  return make_progress(options.quiet ? ProgressStyle::quiet : ProgressStyle::automatic, std::move(program));
}

Status print_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    return fail("writing to standard output failed");
  }
  return {};
}

void add_common_options(CLI::App& app, CommonOptions& options, std::string_view version_line) {
  app.add_flag("-q,--quiet", options.quiet, "Only errors on stderr, no progress");
  app.add_flag("-v,--verbose", options.verbose, "Time, level and pid on every diagnostic line");
  app.set_version_flag("--version", std::string(version_line));
  app.fallthrough(); // common options are accepted after the subcommand too
}

namespace {
ExitStatus status_for(const Error& error) {
  switch (error.kind()) {
  case ErrorKind::usage:
    return ExitStatus::usage;
  case ErrorKind::verification:
    return ExitStatus::verification_failed;
  case ErrorKind::interrupted:
    return ExitStatus::interrupted;
  case ErrorKind::preflight:
    return ExitStatus::preflight_failed;
  case ErrorKind::waiting:
    return ExitStatus::waited_in_vain;
  case ErrorKind::failure:
  case ErrorKind::not_found:
    break;
  }
  return ExitStatus::error;
}
} // namespace

int run_program(std::string_view program, CLI::App& app, int argc, char** argv, const CommonOptions& options,
                const std::function<Status()>& body) {
  init_logging(program, Verbosity::normal);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    log_error(fmt::format("{} (run '{} --help')", e.what(), program));
    return static_cast<int>(ExitStatus::usage);
  }
  init_logging(program, options.verbosity());
  install_interrupt_handlers();
  Status status;
  try {
    status = body();
  } catch (const std::exception& e) { // a bug or std::bad_alloc: still one clean line
    status = std::unexpected(Error(ErrorKind::failure, fmt::format("unexpected: {}", e.what())));
  }
  if (!status) {
    log_error(status.error().message());
    return static_cast<int>(status_for(status.error()));
  }
  return static_cast<int>(ExitStatus::ok);
}

} // namespace kubexm
