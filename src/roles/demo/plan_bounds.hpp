#pragma once
// The lower bound on a plan's makespan that `swarm demo` compares the measured one against.

#include "portage/plan.hpp"

namespace swarm::roles::demo {

struct PlanBounds {
  size_t packages = 0;
  double critical_path = 0; // longest chain of build time through the waits-for graph
  double total_work = 0;    // sum of all build times
  int slots = 1;            // capacity: concurrent builds of the whole swarm
  // No schedule can finish sooner: max(critical path, total work / slots).
  double lower_bound() const;
};

// Bounds for `plan` with each package taking build_seconds × `scale`, on `slots` slots. The
// waits-for graph is the orchestrator's (build edges plus the runtime closure of build
// dependencies, cycles broken the same way), so the bound is for the schedule it can make.
PlanBounds plan_bounds(const portage::Plan& plan, double scale, int slots);

} // namespace swarm::roles::demo
