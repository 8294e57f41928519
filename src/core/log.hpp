#pragma once
// Logging: one line per message, UTC timestamp, role and thread; the level is checked before
// the message is formatted. Registered secrets (tokens) are masked in every line.

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace swarm::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };

// Sets the role name printed on each line ("orch", "drone", "cli") and the threshold.
void init(std::string_view role, Level level);
void set_level(Level level);
bool enabled(Level level);

// Writes one line to stderr (and to the log file, if one is set).
void write(Level level, std::string_view message);

// Appends every line to `path` as well.
void set_file(const std::string& path);

// Any later log line containing `secret` shows "***" instead (defence in depth: tokens
// should never be passed to the logger in the first place).
void add_secret(std::string_view secret);

// Level from -v count: 0 → info, 1 → debug, 2+ → trace.
Level level_from_verbosity(int verbosity);

} // namespace swarm::log

#define SWARM_LOG(level, ...)                                                                                          \
  do {                                                                                                                 \
    if (::swarm::log::enabled(level)) {                                                                                \
      ::swarm::log::write(level, ::fmt::format(__VA_ARGS__));                                                          \
    }                                                                                                                  \
  } while (false)

#define LOG_ERROR(...) SWARM_LOG(::swarm::log::Level::error, __VA_ARGS__)
#define LOG_WARN(...) SWARM_LOG(::swarm::log::Level::warn, __VA_ARGS__)
#define LOG_INFO(...) SWARM_LOG(::swarm::log::Level::info, __VA_ARGS__)
#define LOG_DEBUG(...) SWARM_LOG(::swarm::log::Level::debug, __VA_ARGS__)
#define LOG_TRACE(...) SWARM_LOG(::swarm::log::Level::trace, __VA_ARGS__)
