#include "bundle/process.hpp"

#include "bundle/fs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/ranges.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kubexm {

namespace {

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  bool has_path = false;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto equals = entry.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      continue; // not NAME=value: nothing a child can use
    }
    auto name = entry.substr(0, equals + 1);
    bool replaced = std::ranges::any_of(extra, [&](const std::string& x) { return x.starts_with(name); });
    if (!replaced) {
      env.emplace_back(entry);
    }
    has_path = has_path || name == "PATH=";
  }
  env.insert(env.end(), extra.begin(), extra.end());
  if (!has_path) {
    // A host started from a bare environment (a unit, sudo -i) still finds its tools.
    env.emplace_back("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
  }
  return env;
}

// `name` as found in the PATH of `env`, or `name` itself when it has a slash or is not found
// (posix_spawn then reports that it does not exist).
std::string find_program(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) {
    return name;
  }
  auto path = std::ranges::find_if(env, [](const std::string& e) { return e.starts_with("PATH="); });
  std::string_view dirs = path == env.end() ? "" : std::string_view(*path).substr(5);
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    auto dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    auto candidate = fmt::format("{}/{}", dir.empty() ? "." : dir, name);
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return name;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

} // namespace

std::string command_line(const std::vector<std::string>& args) {
  return fmt::format("{}", fmt::join(args, " "));
}

Result<ProcessResult> run_process(const std::vector<std::string>& args, ChildOutput output,
                                  const std::vector<std::string>& env) {
  int pipe_fds[2] = {-1, -1};
  if (output == ChildOutput::capture && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return fail("cannot create a pipe: {}", errno_text(errno));
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, output == ChildOutput::capture ? write_end.get() : 2, 1);
  auto arg_strings = args;
  auto env_strings = child_environment(env);
  auto argv = pointers(arg_strings);
  auto envp = pointers(env_strings);
  // The program is looked up in the PATH the child gets (ours, or the fallback), not in
  // posix_spawnp's default, which lacks /usr/sbin.
  auto program = find_program(args.front(), env_strings);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return fail("cannot run {}: {}", args.front(), errno_text(rc));
  }
  write_end.reset();
  ProcessResult result;
  if (read_end) {
    (void)read_chunks(read_end.get(), [&](std::span<const std::byte> bytes) {
      result.output.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    });
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail("waiting for {}: {}", args.front(), errno_text(errno));
    }
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

} // namespace kubexm
