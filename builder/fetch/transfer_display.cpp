#include "builder/fetch/transfer_display.hpp"

#include "bundle/progress.hpp"

#include <cstdio>
#include <fmt/format.h>

namespace kubexm {

namespace {

using Clock = std::chrono::steady_clock;

std::string bar(std::uint64_t done, std::uint64_t total, std::size_t width) {
  auto filled = total == 0 ? 0
                           : static_cast<std::size_t>(static_cast<double>(done) / static_cast<double>(total) *
                                                      static_cast<double>(width));
  filled = std::min(filled, width);
  return std::string(filled, '#') + std::string(width - filled, '-');
}

std::string rate(std::uint64_t bytes, double seconds) {
  return seconds > 0 ? human_bytes(static_cast<std::uint64_t>(static_cast<double>(bytes) / seconds)) + "/s" : "-";
}

} // namespace

TransferDisplay::TransferDisplay(bool terminal, bool quiet, std::size_t count)
    : m_terminal(terminal), m_quiet(quiet), m_count(count), m_start(Clock::now()) {}

TransferDisplay::~TransferDisplay() {
  std::lock_guard lock(m_mutex);
  clear();
}

void TransferDisplay::clear() {
  if (m_drawn > 0) {
    std::fprintf(stderr, "\x1b[%zuA\r\x1b[J", m_drawn);
    m_drawn = 0;
  }
}

void TransferDisplay::print_line(std::string_view line) {
  if (m_quiet) {
    return;
  }
  if (m_terminal) {
    clear();
  }
  std::fprintf(stderr, "kubexm-builder: %.*s\n", static_cast<int>(line.size()), line.data());
  if (m_terminal) {
    redraw();
  }
}

void TransferDisplay::redraw() {
  if (m_quiet || !m_terminal) {
    return;
  }
  clear();
  std::uint64_t done = m_bytes_done;
  for (const auto& [slot, active] : m_active) {
    done += active.done;
    auto total = active.total == 0 ? std::string("?") : human_bytes(active.total);
    std::fprintf(stderr, "  %-34.34s [%s] %10s of %s\n", active.label.c_str(),
                 bar(active.done, active.total, 24).c_str(), human_bytes(active.done).c_str(), total.c_str());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - m_start).count();
  std::fprintf(stderr, "  total: %zu of %zu files, %s, %s\n", m_finished, m_count, human_bytes(done).c_str(),
               rate(done, seconds).c_str());
  m_drawn = m_active.size() + 1;
  m_last_draw = Clock::now();
}

std::size_t TransferDisplay::start(std::string_view label, std::string_view url) {
  std::lock_guard lock(m_mutex);
  auto slot = m_next_slot++;
  m_active[slot] = Active{std::string(label), 0, 0};
  if (m_terminal) {
    redraw();
  } else if (!m_quiet) {
    std::fprintf(stderr, "kubexm-builder: fetching %.*s from %.*s\n", static_cast<int>(label.size()), label.data(),
                 static_cast<int>(url.size()), url.data());
  }
  return slot;
}

void TransferDisplay::progress(std::size_t slot, std::uint64_t done, std::uint64_t total) {
  std::lock_guard lock(m_mutex);
  auto& active = m_active[slot];
  active.done = done;
  active.total = total;
  if (m_terminal && Clock::now() - m_last_draw >= std::chrono::milliseconds(100)) {
    redraw();
  }
}

void TransferDisplay::note(std::string_view line) {
  std::lock_guard lock(m_mutex);
  print_line(line);
}

void TransferDisplay::finish(std::size_t slot, std::uint64_t bytes, double seconds, std::uint64_t resumed_from) {
  std::lock_guard lock(m_mutex);
  auto label = m_active[slot].label;
  m_active.erase(slot);
  ++m_finished;
  m_bytes_done += bytes;
  auto resumed = resumed_from > 0 ? fmt::format(", resumed at {}", human_bytes(resumed_from)) : std::string();
  print_line(fmt::format("fetched {}: {} in {:.1f} s ({}){}", label, human_bytes(bytes), seconds,
                         rate(bytes - resumed_from, seconds), resumed));
}

void TransferDisplay::fail(std::size_t slot) {
  std::lock_guard lock(m_mutex);
  m_active.erase(slot);
  redraw();
}

void TransferDisplay::cached() {
  std::lock_guard lock(m_mutex);
  ++m_finished;
}

void TransferDisplay::not_modified(std::size_t slot) {
  std::lock_guard lock(m_mutex);
  auto label = m_active[slot].label;
  m_active.erase(slot);
  ++m_finished;
  print_line(fmt::format("unchanged {}: not modified since it was cached", label));
}

} // namespace kubexm
