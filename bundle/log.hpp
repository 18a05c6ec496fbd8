#pragma once

#include "bundle/error.hpp"

#include <filesystem>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>

namespace kubexm {

// How much goes to stderr.
enum class Verbosity { quiet, normal, verbose };

// Sets up the default logger on stderr: "install: message" by default, time, level and
// pid with --verbose, only errors with --quiet. Colours only on a terminal and never
// when NO_COLOR is set.
void init_logging(std::string_view program, Verbosity verbosity);

// Also writes every message, debug ones included, with its time, to `path` (appended): a
// run's log for later. A file that cannot be opened is an error.
Status log_to_file(const std::filesystem::path& path);

// The one way errors reach the user: "<program>: error: <message>".
void log_error(std::string_view message);

// "<program>: warning: <message>".
void log_warning(std::string_view message);

} // namespace kubexm
