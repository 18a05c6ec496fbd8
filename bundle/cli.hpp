#pragma once

#include "bundle/error.hpp"
#include "bundle/log.hpp"
#include "bundle/progress.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kubexm {

// The exit statuses of both programs; documented in --help.
enum class ExitStatus : int {
  ok = 0,
  error = 1,
  usage = 2,
  verification_failed = 3,
  preflight_failed = 4,
  waited_in_vain = 5,
  interrupted = 130,
};

// The --help footer that documents ExitStatus.
std::string exit_status_help();

// Options every program has.
struct CommonOptions {
  bool quiet = false;
  bool verbose = false;
  Verbosity verbosity() const { return quiet ? Verbosity::quiet : verbose ? Verbosity::verbose : Verbosity::normal; }
};

// The progress reporter these options ask for.
std::unique_ptr<Progress> make_progress(const CommonOptions& options, std::string program);

// Writes data to stdout; a failed write (a full disk, a closed pipe) is an error.
Status print_stdout(std::string_view text);

// Adds --quiet, --verbose and --version to `app`.
void add_common_options(CLI::App& app, CommonOptions& options, std::string_view version_line);

// The one place a program decides its exit: parses the command line, runs `body`, prints
// "<program>: error: ..." for a failure and maps its kind to the exit status.
int run_program(std::string_view program, CLI::App& app, int argc, char** argv, const CommonOptions& options,
                const std::function<Status()>& body);

} // namespace kubexm
