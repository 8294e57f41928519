#pragma once
// What a drone tells the orchestrator about its machine: core count, RAM, and the load figures
// of each heartbeat (CPU % from /proc/stat deltas, memory % from /proc/meminfo, load1 from
// /proc/loadavg). The parsers take the file texts, so tests feed them sample /proc contents.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>

namespace swarm::roles::drone {

// The aggregate "cpu" line of /proc/stat: busy = total - idle - iowait (jiffies).
struct CpuTimes {
  uint64_t busy = 0;
  uint64_t total = 0;
};

// The first line of /proc/stat ("cpu  user nice system idle iowait irq softirq steal …").
// nullopt when it is not there or malformed. guest/guest_nice are already in user/nice.
std::optional<CpuTimes> parse_proc_stat(std::string_view text);

// Busy share of the CPU time between two samples, 0–100 (0 when no time passed).
double cpu_percent(const CpuTimes& before, const CpuTimes& after);

struct MemInfo {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};

// MemTotal and MemAvailable of /proc/meminfo (kB there, bytes here). Kernels without
// MemAvailable (< 3.14) get MemFree + Buffers + Cached. nullopt without MemTotal.
std::optional<MemInfo> parse_meminfo(std::string_view text);

// Used share of memory, 0–100.
double mem_percent(const MemInfo& info);

// The first field of /proc/loadavg.
std::optional<double> parse_loadavg(std::string_view text);

// Online CPUs (at least 1).
int cpu_count();

struct StatsSample {
  double cpu_percent = 0;
  double mem_percent = 0;
  double load1 = 0;
};

// Samples /proc (or another root, for tests). Thread-safe. The CPU figure is the average since
// the previous sample (since construction for the first one).
class SystemStats {
public:
  explicit SystemStats(std::filesystem::path proc_root = "/proc");

  StatsSample sample();
  // MemTotal in bytes (0 when unreadable).
  uint64_t ram_bytes() const;

private:
  std::filesystem::path m_proc;
  std::mutex m_mutex;
  std::optional<CpuTimes> m_last_cpu;
};

} // namespace swarm::roles::drone
