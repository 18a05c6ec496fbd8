#include "bundle/process.hpp"

#include "bundle/fs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

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

// Starts `args` with `actions` applied; the pid, or an error naming the program.
Result<pid_t> spawn(const std::vector<std::string>& args, posix_spawn_file_actions_t& actions,
                    const std::vector<std::string>& env) {
  auto arg_strings = args;
  auto env_strings = child_environment(env);
  auto argv = pointers(arg_strings);
  auto envp = pointers(env_strings);
  // The program is looked up in the PATH the child gets (ours, or the fallback), not in
  // posix_spawnp's default, which lacks /usr/sbin.
  auto program = find_program(args.front(), env_strings);
  // A child starts with SIGPIPE at its default, whatever we ignore (PipedChild ignores it).
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    return fail("cannot run {}: {}", args.front(), errno_text(rc));
  }
  return pid;
}

Result<int> wait_for(pid_t pid, std::string_view name) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail("waiting for {}: {}", name, errno_text(errno));
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Reads two pipes to their ends at once: a child that fills one while we wait on the
// other would otherwise never finish.
Status drain(int out_fd, int err_fd, std::string& out, std::string& err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* into[2] = {&out, &err};
  char buffer[65536];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail("reading a child's output: {}", errno_text(errno));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      auto n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        into[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
      }
    }
  }
  return {};
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
  auto pid = spawn(args, actions, env);
  if (!pid) {
    return std::unexpected(pid.error());
  }
  write_end.reset();
  ProcessResult result;
  if (read_end) {
    (void)read_chunks(read_end.get(), [&](std::span<const std::byte> bytes) {
      result.output.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    });
  }
  auto code = wait_for(*pid, args.front());
  if (!code) {
    return std::unexpected(code.error());
  }
  result.exit_code = *code;
  return result;
}

Result<ProcessResult> run_captured(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  int out_fds[2] = {-1, -1};
  int err_fds[2] = {-1, -1};
  if (::pipe2(out_fds, O_CLOEXEC) != 0 || ::pipe2(err_fds, O_CLOEXEC) != 0) {
    int saved = errno;
    for (int fd : {out_fds[0], out_fds[1], err_fds[0], err_fds[1]}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
    return fail("cannot create a pipe: {}", errno_text(saved));
  }
  UniqueFd out_read(out_fds[0]), out_write(out_fds[1]), err_read(err_fds[0]), err_write(err_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  auto pid = spawn(args, actions, env);
  if (!pid) {
    return std::unexpected(pid.error());
  }
  out_write.reset();
  err_write.reset();
  ProcessResult result;
  auto drained = drain(out_read.get(), err_read.get(), result.output, result.errors);
  auto code = wait_for(*pid, args.front());
  if (!drained) {
    return std::unexpected(drained.error());
  }
  if (!code) {
    return std::unexpected(code.error());
  }
  result.exit_code = *code;
  return result;
}

Result<PipedChild> PipedChild::start(const std::vector<std::string>& args, ChildOutput output,
                                     const std::vector<std::string>& env) {
  // A child that exits early must give us EPIPE on write, not kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  int pipe_fds[2] = {-1, -1};
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return fail("cannot create a pipe: {}", errno_text(errno));
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, read_end.get(), 0);
  if (output == ChildOutput::to_stderr) {
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
  }
  auto pid = spawn(args, actions, env);
  if (!pid) {
    return std::unexpected(pid.error());
  }
  return PipedChild(*pid, write_end.release(), args.front());
}

PipedChild::PipedChild(PipedChild&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_input(std::exchange(other.m_input, -1)),
      m_name(std::move(other.m_name)) {}

PipedChild::~PipedChild() {
  if (m_input >= 0) {
    ::close(m_input);
  }
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    (void)wait_for(m_pid, m_name);
  }
}

Result<ProcessResult> PipedChild::finish() {
  if (m_input >= 0) {
    ::close(std::exchange(m_input, -1));
  }
  if (m_pid <= 0) {
    return fail("{} was already waited for", m_name);
  }
  auto code = wait_for(std::exchange(m_pid, -1), m_name);
  if (!code) {
    return std::unexpected(code.error());
  }
  ProcessResult result;
  result.exit_code = *code;
  return result;
}

} // namespace kubexm
