#include "roles/demo/embedded_plan.hpp"

#include <cstddef>

// The file is pulled in by the assembler (`.incbin`): no generated source and no runtime
// path. CMake passes SWARM_DEMO_PLAN_FILE and rebuilds this file when the plan changes.
#ifndef SWARM_DEMO_PLAN_FILE
#error "SWARM_DEMO_PLAN_FILE must name data/workloads/kde-desktop/plan.json"
#endif

asm(".pushsection .rodata.swarm_demo_plan, \"a\", @progbits\n"
    ".global swarm_demo_plan_begin\n"
    ".global swarm_demo_plan_end\n"
    "swarm_demo_plan_begin:\n"
    ".incbin \"" SWARM_DEMO_PLAN_FILE "\"\n"
    "swarm_demo_plan_end:\n"
    ".byte 0\n"
    ".popsection\n");

extern "C" {
extern const char swarm_demo_plan_begin[];
extern const char swarm_demo_plan_end[];
}

namespace swarm::roles::demo {

std::string_view embedded_desktop_plan()
{
  return std::string_view(swarm_demo_plan_begin, static_cast<size_t>(swarm_demo_plan_end - swarm_demo_plan_begin));
}

} // namespace swarm::roles::demo
