#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace kubexm {

// Shows concurrent downloads: on a terminal one bar per active transfer and a total line,
// redrawn in place; elsewhere (logs, CI) one plain line when a transfer starts, retries,
// ends or fails. Safe to call from several threads.
class TransferDisplay {
public:
  TransferDisplay(bool terminal, bool quiet, std::size_t count);
  ~TransferDisplay();
  TransferDisplay(const TransferDisplay&) = delete;
  TransferDisplay& operator=(const TransferDisplay&) = delete;

  // A transfer begins; returns its slot.
  std::size_t start(std::string_view label, std::string_view url);
  // `done` of `total` bytes (total 0: unknown).
  void progress(std::size_t slot, std::uint64_t done, std::uint64_t total);
  // A line above the bars: a retry, a cache hit, a note.
  void note(std::string_view line);
  void finish(std::size_t slot, std::uint64_t bytes, double seconds, std::uint64_t resumed_from);
  // An attempt failed (it may be retried).
  void fail(std::size_t slot);
  // A file was already in the cache.
  void cached();
  // The server said the cached answer is still current (304 Not Modified).
  void not_modified(std::size_t slot);

private:
  struct Active {
    std::string label;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
  };
  void print_line(std::string_view line);
  void redraw();
  void clear();

  bool m_terminal;
  bool m_quiet;
  std::size_t m_count;
  std::size_t m_finished = 0;
  std::size_t m_next_slot = 0;
  std::uint64_t m_bytes_done = 0; // finished transfers
  std::map<std::size_t, Active> m_active;
  std::size_t m_drawn = 0; // lines of bars on screen
  std::chrono::steady_clock::time_point m_last_draw{};
  std::chrono::steady_clock::time_point m_start;
  std::mutex m_mutex;
};

} // namespace kubexm
