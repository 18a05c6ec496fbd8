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
  std::string errors; // its stderr, when run_captured took it
};

// Runs a program (looked up in PATH) with `args`, never through a shell, with `env`
// ("NAME=value") added to our environment, and waits for it. Failing to start is an
// error; a non-zero exit is not (the caller decides what it means).
Result<ProcessResult> run_process(const std::vector<std::string>& args, ChildOutput output,
                                  const std::vector<std::string>& env = {});

// Like run_process, with stdout and stderr both captured (into output and errors), for a
// program whose messages belong in our error rather than on the terminal.
Result<ProcessResult> run_captured(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// A child that reads its standard input from us: start it, write to input(), then
// finish() closes the input and waits. Destroying it unfinished kills the child, so that
// an error on our side never leaves it waiting for more input.
class PipedChild {
public:
  static Result<PipedChild> start(const std::vector<std::string>& args, ChildOutput output,
                                  const std::vector<std::string>& env = {});
  PipedChild(PipedChild&& other) noexcept;
  PipedChild& operator=(PipedChild&&) = delete;
  PipedChild(const PipedChild&) = delete;
  ~PipedChild();

  int input() const { return m_input; }
  // Closes its input and waits for it to exit.
  Result<ProcessResult> finish();

private:
  PipedChild(int pid, int input, std::string name) : m_pid(pid), m_input(input), m_name(std::move(name)) {}
  int m_pid = -1;
  int m_input = -1;
  std::string m_name;
};

// "apt-get -y install a" for messages.
std::string command_line(const std::vector<std::string>& args);

} // namespace kubexm
