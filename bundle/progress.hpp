#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace kubexm {

// Reports progress of one long operation over a known number of bytes.
class Progress {
public:
  virtual ~Progress() = default;
  // Starts a phase ("verify", "extract") over `total` bytes.
  virtual void begin(std::string_view label, std::uint64_t total) = 0;
  // `bytes` more are done.
  virtual void advance(std::uint64_t bytes) = 0;
  // The phase is over (successfully or not).
  virtual void end() = 0;
};

// Begins a phase on construction and ends it on destruction, so that every way out of a
// phase, errors included, leaves the terminal clean. `progress` may be null.
class ProgressPhase {
public:
  ProgressPhase(Progress* progress, std::string_view label, std::uint64_t total) : m_progress(progress) {
    if (m_progress) {
      m_progress->begin(label, total);
    }
  }
  ~ProgressPhase() {
    if (m_progress) {
      m_progress->end();
    }
  }
  ProgressPhase(const ProgressPhase&) = delete;
  ProgressPhase& operator=(const ProgressPhase&) = delete;

private:
  Progress* m_progress;
};

// How progress is shown.
enum class ProgressStyle {
  automatic, // a redrawn bar on a smart terminal, plain periodic lines otherwise
  quiet,     // nothing
};

// Makes the progress reporter for stderr. `program` prefixes plain lines.
std::unique_ptr<Progress> make_progress(ProgressStyle style, std::string program);

// Whether stderr is a terminal that can redraw lines in place.
bool smart_terminal();

// "1.5 GiB", "312 KiB", "17 B".
std::string human_bytes(std::uint64_t bytes);

} // namespace kubexm
