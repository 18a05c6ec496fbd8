#include "bundle/log.hpp"

#include <cstdlib>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace kubexm {

void init_logging(std::string_view program, Verbosity verbosity) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      std::getenv("NO_COLOR") ? spdlog::color_mode::never : spdlog::color_mode::automatic);
  sink->set_color(spdlog::level::info, "");
  sink->set_pattern(verbosity == Verbosity::verbose ? "%n: [%Y-%m-%d %H:%M:%S.%e] [%l] [pid %P] %^%v%$"
                                                    : "%n: %^%v%$");
  sink->set_level(verbosity == Verbosity::quiet     ? spdlog::level::warn
                  : verbosity == Verbosity::verbose ? spdlog::level::debug
                                                    : spdlog::level::info);
  auto logger = std::make_shared<spdlog::logger>(std::string(program), sink);
  logger->set_level(sink->level());
  spdlog::set_default_logger(logger);
}

Status log_to_file(const std::filesystem::path& path) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string());
    sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    sink->set_level(spdlog::level::debug);
    auto logger = spdlog::default_logger();
    logger->sinks().push_back(sink);
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::debug);
  } catch (const spdlog::spdlog_ex& e) {
    return fail("cannot write the log {}: {}", path.string(), e.what());
  }
  return {};
}

void log_error(std::string_view message) {
  spdlog::error("error: {}", message);
}

void log_warning(std::string_view message) {
  spdlog::warn("warning: {}", message);
}

} // namespace kubexm
