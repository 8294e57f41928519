// Benchmark: what an isolated build root costs a drone per build. Each round sets up a
// throw-away root over this machine's / exactly as a drone does for a lease (the overlay
// layers of / and of every other real filesystem below it, /proc /sys /dev and a bound
// directory), enters it through the `swarm drone-root` helper in a fresh process, runs a
// command there, and discards the root (its upper layer is deleted). Two commands: `true`
// (entering and discarding alone) and one that writes N MiB into the root (what discarding
// what a build installed costs).
//
// Prints the median and p90 of each part over the rounds. Target: enter + discard well under
// a second. Needs root and overlayfs.
//
//   bench_build_root [--swarm PATH] [--rounds N] [--write-mib N] [--dir DIR]
// PATH defaults to the `swarm` next to the bench/ build directory; DIR (where the roots are
// made, on a filesystem overlayfs accepts as upper layer) to a new directory below /var/tmp.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "core/mount_table.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "roles/drone/build_root.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace swarm;
using namespace swarm::roles::drone;

double ms_since(Clock::time_point start)
{
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p)
{
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const auto index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

struct Timings {
  std::vector<double> setup;   // the root's directories (what acquire does)
  std::vector<double> run;     // the helper: namespace, mounts, chroot, exec, the command, exit
  std::vector<double> discard; // removing the root's directories
};

void print(const std::string& what, const Timings& t)
{
  std::vector<double> total;
  for (size_t i = 0; i < t.run.size(); ++i) {
    total.push_back(t.setup[i] + t.run[i] + t.discard[i]);
  }
  fmt::print("{:<34} setup {:6.1f} ms  enter+run {:6.1f} ms  discard {:6.1f} ms  total {:6.1f} ms (p90 {:6.1f})\n",
             what, percentile(t.setup, 0.5), percentile(t.run, 0.5), percentile(t.discard, 0.5), percentile(total, 0.5),
             percentile(total, 0.9));
}

} // namespace

int main(int argc, char** argv)
{
  std::string swarm_path;
  int rounds = 20;
  int write_mib = 64;
  std::filesystem::path dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--swarm") {
      swarm_path = argv[i + 1];
    } else if (flag == "--rounds") {
      rounds = std::max(1, std::stoi(argv[i + 1]));
    } else if (flag == "--write-mib") {
      write_mib = std::max(0, std::stoi(argv[i + 1]));
    } else if (flag == "--dir") {
      dir = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: bench_build_root [--swarm PATH] [--rounds N] [--write-mib N] [--dir DIR]\n");
      return 2;
    }
  }
  if (swarm_path.empty()) {
    std::error_code error;
    swarm_path =
      (std::filesystem::read_symlink("/proc/self/exe", error).parent_path().parent_path() / "swarm").string();
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_build_root: needs root (mount namespaces, overlayfs)\n");
    return 1;
  }
  const bool own_dir = dir.empty();
  if (own_dir) {
    dir = fmt::format("/var/tmp/swarm-bench-build-root-{}", ::getpid());
  }
  std::filesystem::create_directories(dir / "bound");

  BuildRootSettings settings;
  settings.mode = BuildRootMode::isolated;
  settings.roots_dir = dir / "roots";
  settings.helper = swarm_path;
  if (auto table = mounts::read_mount_table()) {
    auto below = base_submounts(*table, {dir});
    settings.base_submounts = std::move(below.directories);
    settings.base_file_mounts = std::move(below.files);
  }
  BuildRoots roots(settings);
  subprocess::SystemProcessRunner runner;
  fmt::print("build roots over / ({} more filesystem layer{}), helper {}, {} rounds\n", settings.base_submounts.size(),
             settings.base_submounts.size() == 1 ? "" : "s", swarm_path, rounds);

  const auto measure = [&](const std::string& what, const std::vector<std::string>& command) -> bool {
    Timings timings;
    for (int round = 0; round < rounds; ++round) {
      auto start = Clock::now();
      net::Lease lease;
      lease.id = fmt::format("{:08x}", round);
      lease.profile = "default";
      auto use = roots.acquire(lease, {{dir / "bound", dir / "bound"}});
      if (!use || !*use) {
        fmt::print(stderr, "cannot set up a root: {}\n", use ? "host mode" : use.error().message);
        return false;
      }
      timings.setup.push_back(ms_since(start));
      start = Clock::now();
      subprocess::Spec spec;
      spec.argv = roots.wrap(&**use, "", command);
      spec.capture = subprocess::Capture::yes;
      auto outcome = runner.run(spec);
      timings.run.push_back(ms_since(start));
      if (!outcome || !outcome->success()) {
        fmt::print(stderr, "the root's command failed: {}\n",
                   outcome ? outcome->describe() + " " + outcome->output : outcome.error().message);
        return false;
      }
      start = Clock::now();
      roots.release(*use);
      timings.discard.push_back(ms_since(start));
    }
    print(what, timings);
    return true;
  };

  // The baseline: the same helper process without a root (what --build-root host runs).
  {
    std::vector<double> host;
    for (int round = 0; round < rounds; ++round) {
      const auto start = Clock::now();
      subprocess::Spec spec;
      spec.argv = roots.wrap(nullptr, dir / "record", {"true"});
      spec.capture = subprocess::Capture::yes;
      auto outcome = runner.run(spec);
      host.push_back(ms_since(start));
      if (!outcome || !outcome->success()) {
        fmt::print(stderr, "the helper failed: {}\n", outcome ? outcome->output : outcome.error().message);
        return 1;
      }
    }
    fmt::print("{:<34} helper process alone (no root): {:6.1f} ms (p90 {:6.1f})\n", "baseline, host mode",
               percentile(host, 0.5), percentile(host, 0.9));
  }
  bool ok = measure("enter, run `true`, discard", {"true"});
  if (ok && write_mib > 0) {
    ok = measure(fmt::format("enter, write {} MiB, discard", write_mib),
                 {"sh", "-c",
                  fmt::format("mkdir -p /var/tmp/bench && dd if=/dev/zero of=/var/tmp/bench/data bs=1M count={} "
                              "status=none && test -s /var/tmp/bench/data",
                              write_mib)});
  }
  std::error_code error;
  if (own_dir) {
    std::filesystem::remove_all(dir, error);
  }
  return ok ? 0 : 1;
}
