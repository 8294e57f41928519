#pragma once
// `swarm demo`: a whole swarm on loopback — an orchestrator, a gateway and drones of different
// sizes as child processes of this binary, building the embedded desktop plan with the fake
// builder — with live progress, a summary against the plan's lower bound, and the release step.

#include <string>
#include <vector>

namespace swarm::roles::demo {

// Chosen so that the whole plan takes about a minute on a 2-core machine.
inline constexpr double k_default_time_scale = 0.002;

struct DemoOptions {
  double time_scale = k_default_time_scale; // fake build time = build_seconds × time_scale
  std::string keep_dir;                     // use and keep this data dir; empty: a temp dir
  bool json = false;                        // summary as JSON on stdout (progress on stderr)
  std::vector<int> drone_slots{4, 2, 2, 1}; // one drone per entry
};

// Runs the demo; returns the exit code (0: every package built; never leaves a child behind).
int run_demo(const DemoOptions& options);

} // namespace swarm::roles::demo
