#pragma once

#include "bundle/error.hpp"

#include <string>
#include <vector>

namespace kubexm {

// Where a child's standard output goes.
enum class ChildOutput {
  capture,   // into ProcessResult::output
  to_stderr, // to our stderr, so that our stdout stays data
};

struct ProcessResult {
  int exit_code = 0; // 128 + signal when killed
  std::string output;
};

// Runs a program (looked up in PATH) with `args`, never through a shell, with `env`
// ("NAME=value") added to our environment, and waits for it. Failing to start is an
// error; a non-zero exit is not (the caller decides what it means).
Result<ProcessResult> run_process(const std::vector<std::string>& args, ChildOutput output,
                                  const std::vector<std::string>& env = {});

// "apt-get -y install a" for messages.
std::string command_line(const std::vector<std::string>& args);

} // namespace kubexm
