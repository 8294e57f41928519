#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace swarm::log {

namespace {

struct State {
  std::mutex mutex;
  std::string role = "swarm";
  std::vector<std::string> secrets;
  FILE* file = nullptr;
};

State& state()
{
  static State instance;
  return instance;
}

std::atomic<int> g_level{static_cast<int>(Level::info)};

constexpr std::string_view level_name(Level level)
{
  switch (level) {
  case Level::error:
    return "ERROR";
  case Level::warn:
    return "WARN";
  case Level::info:
    return "INFO";
  case Level::debug:
    return "DEBUG";
  case Level::trace:
    return "TRACE";
  }
  return "?";
}

std::string timestamp()
{
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec, ms % 1000);
}

} // namespace

void init(std::string_view role, Level level)
{
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.role = role;
  g_level = static_cast<int>(level);
}

void set_level(Level level)
{
  g_level = static_cast<int>(level);
}

bool enabled(Level level)
{
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void set_file(const std::string& path)
{
  std::string warning;
  {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    if (s.file) {
      fclose(s.file);
    }
    // Logs name hosts, packages and paths: readable by the owner only, from creation on.
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    s.file = fd >= 0 ? fdopen(fd, "a") : nullptr;
    if (fd >= 0 && !s.file) {
      ::close(fd);
    }
    struct stat info {};
    if (s.file && ::fstat(fd, &info) == 0 && (info.st_mode & 077) != 0) {
      const unsigned old_mode = info.st_mode & 07777;
      const bool changed = ::fchmod(fd, old_mode & 0700) == 0;
      warning = fmt::format("log file {} had mode {:04o}, more open than 0600{}", path, old_mode,
                            changed ? "; changed it to 0600" : ", and cannot be changed");
    }
  }
  if (!warning.empty()) {
    write(Level::warn, warning);
  }
}

void add_secret(std::string_view secret)
{
  if (secret.size() < 4) {
    return; // masking one or two characters would garble every line
  }
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.secrets.emplace_back(secret);
}

void write(Level level, std::string_view message)
{
  auto& s = state();
  std::lock_guard lock(s.mutex);
  std::string text(message);
  for (const auto& secret : s.secrets) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  const auto line = fmt::format("{} {}[{}] {} {}\n", timestamp(), s.role, static_cast<long>(syscall(SYS_gettid)),
                                level_name(level), text);
  fputs(line.c_str(), stderr);
  if (s.file) {
    fputs(line.c_str(), s.file);
    fflush(s.file);
  }
}

Level level_from_verbosity(int verbosity)
{
  if (verbosity <= 0) {
    return Level::info;
  }
  return verbosity == 1 ? Level::debug : Level::trace;
}

} // namespace swarm::log
