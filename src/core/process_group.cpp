#include "core/process_group.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include "core/fs.hpp"
#include "core/strings.hpp"

namespace swarm::process_group {

namespace {

struct StatLine {
  char state = '?';
  pid_t pgid = 0;
  uint64_t start_ticks = 0;
};

// /proc/PID/stat: "PID (COMM) STATE PPID PGRP SESSION … STARTTIME …". COMM may hold spaces and
// parentheses, so the fields are counted from the last ')'.
std::optional<StatLine> read_stat(pid_t pid)
{
  auto text = fs::read_file(fmt::format("/proc/{}/stat", pid), 64u << 10);
  if (!text) {
    return std::nullopt;
  }
  const auto close = text->rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  const auto fields = strings::split_any(std::string_view(*text).substr(close + 1));
  // fields[0] is field 3 (state); pgrp is field 5, starttime field 22.
  if (fields.size() < 20) {
    return std::nullopt;
  }
  StatLine out;
  out.state = fields[0].empty() ? '?' : fields[0][0];
  int64_t pgid = 0;
  uint64_t start = 0;
  if (std::from_chars(fields[2].data(), fields[2].data() + fields[2].size(), pgid).ec != std::errc() ||
      std::from_chars(fields[19].data(), fields[19].data() + fields[19].size(), start).ec != std::errc()) {
    return std::nullopt;
  }
  out.pgid = static_cast<pid_t>(pgid);
  out.start_ticks = start;
  return out;
}

bool is_gone(char state)
{
  return state == 'Z' || state == 'X' || state == 'x';
}

std::vector<pid_t> all_pids()
{
  std::vector<pid_t> out;
  std::error_code error;
  for (std::filesystem::directory_iterator it("/proc", error), end; !error && it != end; it.increment(error)) {
    const auto name = it->path().filename().string();
    int64_t pid = 0;
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ec == std::errc() && pid > 0) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  return out;
}

} // namespace

std::string to_text(const Record& record)
{
  return fmt::format("{} {} {}\n", record.pgid, record.start_ticks, record.boot_id);
}

Result<Record> from_text(std::string_view text)
{
  const auto words = strings::split_any(text);
  Record record;
  int64_t pgid = 0;
  if (words.size() != 3 ||
      std::from_chars(words[0].data(), words[0].data() + words[0].size(), pgid).ec != std::errc() ||
      std::from_chars(words[1].data(), words[1].data() + words[1].size(), record.start_ticks).ec != std::errc() ||
      pgid <= 1) {
    return fail(ErrorKind::invalid, "not a process group record: {:?}", std::string(text.substr(0, 100)));
  }
  record.pgid = static_cast<pid_t>(pgid);
  record.boot_id = std::string(words[2]);
  return record;
}

std::string current_boot_id()
{
  auto text = fs::read_file("/proc/sys/kernel/random/boot_id", 4096);
  return text ? std::string(strings::trim(*text)) : std::string();
}

std::optional<uint64_t> start_ticks(pid_t pid)
{
  const auto stat = read_stat(pid);
  if (!stat || is_gone(stat->state)) {
    return std::nullopt;
  }
  return stat->start_ticks;
}

Result<Record> self_record()
{
  const pid_t self = ::getpid();
  if (::getpgrp() != self) {
    return fail(ErrorKind::invalid, "process {} does not lead its process group", self);
  }
  const auto stat = read_stat(self);
  if (!stat) {
    return fail(ErrorKind::io, "cannot read /proc/{}/stat", self);
  }
  return Record{self, stat->start_ticks, current_boot_id()};
}

std::vector<pid_t> members(const Record& record)
{
  std::vector<pid_t> out;
  if (record.pgid <= 1 || record.boot_id.empty() || record.boot_id != current_boot_id()) {
    return out;
  }
  // While any process of the group lives, the kernel does not hand its number to a new process:
  // so a live process with that number that started later means the group is gone.
  if (const auto leader = read_stat(record.pgid); leader && leader->start_ticks != record.start_ticks) {
    return out;
  }
  for (const auto pid : all_pids()) {
    const auto stat = read_stat(pid);
    if (stat && stat->pgid == record.pgid && stat->start_ticks >= record.start_ticks && !is_gone(stat->state)) {
      out.push_back(pid);
    }
  }
  return out;
}

Result<size_t> end_group(const Record& record, std::chrono::milliseconds timeout)
{
  auto left = members(record);
  const size_t signalled = left.size();
  for (const auto pid : left) {
    ::kill(pid, SIGKILL);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Not our children: nothing to wait on but /proc. They die within milliseconds of SIGKILL
  // unless stuck in the kernel (D state), which the timeout reports.
  while (!left.empty()) {
    left = members(record);
    for (const auto pid : left) {
      ::kill(pid, SIGKILL); // a member forked after the first round
    }
    if (left.empty()) {
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(ErrorKind::io, "process group {}: {} process(es) survived SIGKILL for {} ms (first: {})", record.pgid,
                  left.size(), timeout.count(), left.front());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return signalled;
}

} // namespace swarm::process_group
