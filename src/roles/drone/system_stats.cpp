#include "roles/drone/system_stats.hpp"

#include <algorithm>
#include <vector>

#include <unistd.h>

#include "core/fs.hpp"
#include "core/strings.hpp"

namespace swarm::roles::drone {

namespace {

// One "Key:   value kB" line of /proc/meminfo, in bytes.
std::optional<uint64_t> meminfo_value(std::string_view text, std::string_view key)
{
  for (const auto& line : strings::split(text, '\n')) {
    if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != ':') {
      continue;
    }
    const auto fields = strings::split_any(std::string_view(line).substr(key.size() + 1));
    if (fields.empty()) {
      return std::nullopt;
    }
    const auto value = strings::parse_uint(fields[0]);
    if (!value) {
      return std::nullopt;
    }
    const bool kilobytes = fields.size() > 1 && fields[1] == "kB";
    return kilobytes ? *value * 1024 : *value;
  }
  return std::nullopt;
}

} // namespace

std::optional<CpuTimes> parse_proc_stat(std::string_view text)
{
  const auto end = text.find('\n');
  const auto line = text.substr(0, end);
  const auto fields = strings::split_any(line);
  // "cpu" then at least user nice system idle.
  if (fields.size() < 5 || fields[0] != "cpu") {
    return std::nullopt;
  }
  CpuTimes times;
  uint64_t idle = 0;
  // Fields 1..8: user nice system idle iowait irq softirq steal. guest and guest_nice (9, 10)
  // are counted inside user and nice already, so adding them would count them twice.
  const size_t last = std::min<size_t>(fields.size(), 9);
  for (size_t i = 1; i < last; ++i) {
    const auto value = strings::parse_uint(fields[i]);
    if (!value) {
      return std::nullopt;
    }
    times.total += *value;
    if (i == 4 || i == 5) { // idle, iowait
      idle += *value;
    }
  }
  times.busy = times.total - idle;
  return times;
}

double cpu_percent(const CpuTimes& before, const CpuTimes& after)
{
  if (after.total <= before.total || after.busy < before.busy) {
    return 0;
  }
  const double total = static_cast<double>(after.total - before.total);
  const double busy = static_cast<double>(after.busy - before.busy);
  return std::clamp(100.0 * busy / total, 0.0, 100.0);
}

std::optional<MemInfo> parse_meminfo(std::string_view text)
{
  const auto total = meminfo_value(text, "MemTotal");
  if (!total) {
    return std::nullopt;
  }
  MemInfo info;
  info.total_bytes = *total;
  if (const auto available = meminfo_value(text, "MemAvailable")) {
    info.available_bytes = *available;
  } else {
    info.available_bytes = meminfo_value(text, "MemFree").value_or(0) + meminfo_value(text, "Buffers").value_or(0) +
                           meminfo_value(text, "Cached").value_or(0);
  }
  info.available_bytes = std::min(info.available_bytes, info.total_bytes);
  return info;
}

double mem_percent(const MemInfo& info)
{
  if (info.total_bytes == 0) {
    return 0;
  }
  const double used = static_cast<double>(info.total_bytes - info.available_bytes);
  return 100.0 * used / static_cast<double>(info.total_bytes);
}

std::optional<double> parse_loadavg(std::string_view text)
{
  const auto fields = strings::split_any(text);
  if (fields.empty()) {
    return std::nullopt;
  }
  return strings::parse_double(fields[0]);
}

int cpu_count()
{
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

SystemStats::SystemStats(std::filesystem::path proc_root) : m_proc(std::move(proc_root))
{
  if (auto text = fs::read_file(m_proc / "stat", 1u << 20)) {
    m_last_cpu = parse_proc_stat(*text);
  }
}

StatsSample SystemStats::sample()
{
  StatsSample out;
  if (auto text = fs::read_file(m_proc / "stat", 1u << 20)) {
    if (auto now = parse_proc_stat(*text)) {
      std::lock_guard lock(m_mutex);
      if (m_last_cpu) {
        out.cpu_percent = cpu_percent(*m_last_cpu, *now);
      }
      m_last_cpu = now;
    }
  }
  if (auto text = fs::read_file(m_proc / "meminfo", 1u << 20)) {
    if (auto info = parse_meminfo(*text)) {
      out.mem_percent = mem_percent(*info);
    }
  }
  if (auto text = fs::read_file(m_proc / "loadavg", 4096)) {
    out.load1 = parse_loadavg(*text).value_or(0);
  }
  return out;
}

uint64_t SystemStats::ram_bytes() const
{
  if (auto text = fs::read_file(m_proc / "meminfo", 1u << 20)) {
    if (auto info = parse_meminfo(*text)) {
      return info->total_bytes;
    }
  }
  return 0;
}

} // namespace swarm::roles::drone
