#include "bundle/progress.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <unistd.h>

namespace kubexm {

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(k_units)) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, k_units[unit]);
}

namespace {

using Clock = std::chrono::steady_clock;

// Shared arithmetic of both renderings: rate and time left.
class Meter {
public:
  void begin(std::string_view label, std::uint64_t total) {
    m_label = label;
    m_total = total;
    m_done = 0;
    m_start = Clock::now();
  }
  void advance(std::uint64_t bytes) { m_done += bytes; }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - m_start).count(); }
  double fraction() const { return m_total == 0 ? 1.0 : static_cast<double>(m_done) / static_cast<double>(m_total); }
  std::string stats() const {
    double elapsed = seconds();
    double rate = elapsed > 0 ? static_cast<double>(m_done) / elapsed : 0;
    std::string text = fmt::format("{} of {}, {}/s", human_bytes(m_done), human_bytes(m_total),
                                   human_bytes(static_cast<std::uint64_t>(rate)));
    if (rate > 0 && m_done < m_total) {
      text += fmt::format(", {:.0f} s left", static_cast<double>(m_total - m_done) / rate);
    }
    return text;
  }
  const std::string& label() const { return m_label; }
  std::uint64_t done() const { return m_done; }
  std::uint64_t total() const { return m_total; }

private:
  std::string m_label;
  std::uint64_t m_total = 0;
  std::uint64_t m_done = 0;
  Clock::time_point m_start;
};

// A bar redrawn in place, at most ten times a second.
class BarProgress final : public Progress {
public:
  explicit BarProgress(std::string program) : m_program(std::move(program)) {}
  void begin(std::string_view label, std::uint64_t total) override {
    m_meter.begin(label, total);
    m_last_draw = {};
  }
  void advance(std::uint64_t bytes) override {
    m_meter.advance(bytes);
    auto now = Clock::now();
    if (now - m_last_draw >= std::chrono::milliseconds(100)) {
      m_last_draw = now;
      draw();
    }
  }
  void end() override {
    draw();
    std::fputs("\r\x1b[K", stderr);
  }

private:
  void draw() const {
    constexpr int k_width = 30;
    int filled = static_cast<int>(m_meter.fraction() * k_width);
    std::string bar(static_cast<std::size_t>(filled), '=');
    bar.resize(k_width, ' ');
    std::fprintf(stderr, "\r\x1b[K%s: %s [%s] %3.0f%% %s", m_program.c_str(), m_meter.label().c_str(), bar.c_str(),
                 m_meter.fraction() * 100, m_meter.stats().c_str());
    std::fflush(stderr);
  }

  std::string m_program;
  Meter m_meter;
  Clock::time_point m_last_draw;
};

// One plain line per 10% or per 5 seconds, whichever comes first, readable in logs and CI;
// nothing for operations that finish within a second, where lines would only be noise.
class LineProgress final : public Progress {
public:
  explicit LineProgress(std::string program) : m_program(std::move(program)) {}
  void begin(std::string_view label, std::uint64_t total) override {
    m_meter.begin(label, total);
    m_next_fraction = 0.1;
    m_printed = false;
    m_last_line = Clock::now();
  }
  void advance(std::uint64_t bytes) override {
    m_meter.advance(bytes);
    if (m_meter.seconds() < 1.0) {
      return;
    }
    auto now = Clock::now();
    if (m_meter.fraction() >= m_next_fraction || now - m_last_line >= std::chrono::seconds(5)) {
      while (m_next_fraction <= m_meter.fraction()) {
        m_next_fraction += 0.1;
      }
      m_last_line = now;
      print();
    }
  }
  void end() override {
    if (m_printed && m_meter.done() >= m_meter.total()) {
      print();
    }
  }

private:
  void print() {
    m_printed = true;
    std::fprintf(stderr, "%s: %s: %3.0f%% (%s)\n", m_program.c_str(), m_meter.label().c_str(), m_meter.fraction() * 100,
                 m_meter.stats().c_str());
  }

  std::string m_program;
  Meter m_meter;
  double m_next_fraction = 0.1;
  bool m_printed = false;
  Clock::time_point m_last_line;
};

class QuietProgress final : public Progress {
public:
  void begin(std::string_view, std::uint64_t) override {}
  void advance(std::uint64_t) override {}
  void end() override {}
};

} // namespace

bool smart_terminal() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) != 0 && term != nullptr && std::strcmp(term, "dumb") != 0;
}

std::unique_ptr<Progress> make_progress(ProgressStyle style, std::string program) {
  if (style == ProgressStyle::quiet) {
    return std::make_unique<QuietProgress>();
  }
  if (smart_terminal()) {
    return std::make_unique<BarProgress>(std::move(program));
  }
  return std::make_unique<LineProgress>(std::move(program));
}

} // namespace kubexm
