#pragma once

#include <expected>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <vector>

namespace kubexm {

// Why an operation failed. The one place that exits maps this to the exit status.
enum class ErrorKind {
  failure,      // anything else: I/O, a bad file, a missing program
  usage,        // the command line was wrong
  verification, // a bundle failed verification: tampered, truncated or unsafe
  interrupted,  // SIGINT or SIGTERM arrived
  not_found,    // a server has no such file (HTTP 404 or 410): a caller may try another
  preflight,    // the installer's preflight found problems; nothing was changed
  waiting,      // a step waited for another host in vain; a rerun goes on from there
};

// An error carried as a value: what failed, with context added on the way up
// ("extracting /mnt/install: bin/kubelet: SHA-256 mismatch: ...").
class Error {
public:
  Error(ErrorKind kind, std::string message) : m_kind(kind), m_message(std::move(message)) {}

  ErrorKind kind() const { return m_kind; }
  const std::string& message() const { return m_message; }

  // Returns the same error with "context: " put in front of the message.
  Error with_context(std::string_view context) const {
    return Error(m_kind, fmt::format("{}: {}", context, m_message));
  }

private:
  ErrorKind m_kind;
  std::string m_message;
};

template <typename T> using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Shorthands for returning an error from a function that returns Result or Status.
template <typename... Args> std::unexpected<Error> fail(fmt::format_string<Args...> format, Args&&... args) {
  return std::unexpected(Error(ErrorKind::failure, fmt::format(format, std::forward<Args>(args)...)));
}

template <typename... Args>
std::unexpected<Error> fail_verification(fmt::format_string<Args...> format, Args&&... args) {
  return std::unexpected(Error(ErrorKind::verification, fmt::format(format, std::forward<Args>(args)...)));
}

// Adds context to the error of a failed result, for use as `return add_context(r, "...")`.
inline std::unexpected<Error> add_context(const Error& error, std::string_view context) {
  return std::unexpected(error.with_context(context));
}

// The errors of many independent items (downloads, packages, targets) as one, so that a run
// reports all of them: an interruption wins, a verification failure makes the whole one.
std::expected<void, Error> join_errors(const std::vector<Error>& errors);

// strerror(errno) without the thread-safety caveats.
std::string errno_text(int error_number);

} // namespace kubexm
