#include <doctest/doctest.h>

#include "core/fs.hpp"
#include "roles/drone/system_stats.hpp"

using namespace swarm;
using namespace swarm::roles::drone;

namespace {

// Real /proc texts (a 4-core VM), trimmed.
constexpr std::string_view k_stat_before = "cpu  4705 356 584 3699 23 0 37 0 11 0\n"
                                           "cpu0 1393 91 186 835 6 0 15 0 0 0\n"
                                           "intr 114930 57 9 0 0\n";
constexpr std::string_view k_stat_after = "cpu  5105 356 684 3899 123 0 37 0 11 0\n"
                                          "cpu0 1493 91 206 885 26 0 15 0 0 0\n";

constexpr std::string_view k_meminfo = "MemTotal:       16318208 kB\n"
                                       "MemFree:         1160240 kB\n"
                                       "MemAvailable:    4079552 kB\n"
                                       "Buffers:          339352 kB\n"
                                       "Cached:          2911764 kB\n";

} // namespace

TEST_CASE("system_stats: /proc/stat cpu line and the busy share between two samples")
{
  const auto before = parse_proc_stat(k_stat_before);
  const auto after = parse_proc_stat(k_stat_after);
  REQUIRE(before.has_value());
  REQUIRE(after.has_value());
  // user+nice+system+idle+iowait+irq+softirq+steal; guest fields are inside user/nice already.
  CHECK(before->total == 4705 + 356 + 584 + 3699 + 23 + 0 + 37 + 0);
  CHECK(before->busy == before->total - 3699 - 23);
  // Delta: busy +400 user +100 system = 500; idle +200, iowait +100; total +800.
  CHECK(cpu_percent(*before, *after) == doctest::Approx(62.5));
  CHECK(cpu_percent(*after, *after) == 0);
  CHECK(cpu_percent(*after, *before) == 0); // counters never go back; a reset gives 0, not garbage

  CHECK_FALSE(parse_proc_stat("").has_value());
  CHECK_FALSE(parse_proc_stat("cpu0 1 2 3 4\n").has_value());
  CHECK_FALSE(parse_proc_stat("cpu  1 2 x 4\n").has_value());
  CHECK(parse_proc_stat("cpu  1 2 3 4\n")->total == 10); // old kernels: four fields
}

TEST_CASE("system_stats: /proc/meminfo and /proc/loadavg")
{
  const auto info = parse_meminfo(k_meminfo);
  REQUIRE(info.has_value());
  CHECK(info->total_bytes == 16318208ull * 1024);
  CHECK(info->available_bytes == 4079552ull * 1024);
  CHECK(mem_percent(*info) == doctest::Approx(100.0 * (16318208 - 4079552) / 16318208));

  // Without MemAvailable (kernels before 3.14): free + buffers + cached.
  const auto old = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n");
  REQUIRE(old.has_value());
  CHECK(old->available_bytes == 400 * 1024);
  CHECK(mem_percent(*old) == doctest::Approx(60.0));
  CHECK_FALSE(parse_meminfo("MemFree: 100 kB\n").has_value());
  // "MemTotalX" is not "MemTotal".
  CHECK_FALSE(parse_meminfo("MemTotalX: 100 kB\n").has_value());

  CHECK(parse_loadavg("0.52 0.58 0.59 2/1012 12345\n") == doctest::Approx(0.52));
  CHECK_FALSE(parse_loadavg("").has_value());
  CHECK_FALSE(parse_loadavg("abc 1 2").has_value());
}

TEST_CASE("system_stats: sampling a /proc directory")
{
  fs::TempDir proc("proc");
  REQUIRE(fs::write_file_atomic(proc / "stat", k_stat_before).has_value());
  REQUIRE(fs::write_file_atomic(proc / "meminfo", "MemTotal: 1000 kB\nMemAvailable: 250 kB\n").has_value());
  REQUIRE(fs::write_file_atomic(proc / "loadavg", "3.25 1.00 0.50 1/100 42\n").has_value());
  SystemStats stats(proc.path());
  CHECK(stats.ram_bytes() == 1000 * 1024);
  REQUIRE(fs::write_file_atomic(proc / "stat", k_stat_after).has_value());
  const auto sample = stats.sample();
  CHECK(sample.cpu_percent == doctest::Approx(62.5)); // since construction
  CHECK(sample.mem_percent == doctest::Approx(75.0));
  CHECK(sample.load1 == doctest::Approx(3.25));
  CHECK(stats.sample().cpu_percent == 0); // nothing happened since the last sample
  CHECK(cpu_count() >= 1);
}
