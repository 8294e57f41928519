#pragma once
// The desktop workload (data/workloads/kde-desktop/plan.json) compiled into the binary, so that
// `swarm demo` runs anywhere without the source tree.

#include <string_view>

namespace swarm::roles::demo {

// The plan's JSON text, exactly as in the repository.
std::string_view embedded_desktop_plan();

} // namespace swarm::roles::demo
