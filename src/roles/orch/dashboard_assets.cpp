#include "roles/orch/dashboard_assets.hpp"

#include <cstddef>

// The files are pulled in by the assembler (`.incbin`), as the demo plan is: no generated source
// and no runtime path. CMake passes SWARM_DASHBOARD_DIR and rebuilds this file when they change.
#ifndef SWARM_DASHBOARD_DIR
#error "SWARM_DASHBOARD_DIR must name src/roles/orch/dashboard"
#endif

#define SWARM_EMBED(symbol, file)                                                                                      \
  asm(".pushsection .rodata.swarm_" #symbol ", \"a\", @progbits\n"                                                     \
      ".global swarm_" #symbol "_begin\n"                                                                              \
      ".global swarm_" #symbol "_end\n"                                                                                \
      "swarm_" #symbol "_begin:\n"                                                                                     \
      ".incbin \"" SWARM_DASHBOARD_DIR "/" file "\"\n"                                                                 \
      "swarm_" #symbol "_end:\n"                                                                                       \
      ".byte 0\n"                                                                                                      \
      ".popsection\n");                                                                                                \
  extern "C" const char swarm_##symbol##_begin[];                                                                      \
  extern "C" const char swarm_##symbol##_end[];

SWARM_EMBED(dashboard_html, "index.html")
SWARM_EMBED(dashboard_js, "app.js")
SWARM_EMBED(dashboard_css, "style.css")

namespace swarm::roles::orch {

namespace {

std::string_view embedded(const char* begin, const char* end)
{
  return std::string_view(begin, static_cast<size_t>(end - begin));
}

} // namespace

std::optional<DashboardAsset> dashboard_asset(std::string_view name)
{
  if (name == "index.html") {
    return DashboardAsset{embedded(swarm_dashboard_html_begin, swarm_dashboard_html_end), "text/html; charset=utf-8"};
  }
  if (name == "app.js") {
    return DashboardAsset{embedded(swarm_dashboard_js_begin, swarm_dashboard_js_end), "text/javascript; charset=utf-8"};
  }
  if (name == "style.css") {
    return DashboardAsset{embedded(swarm_dashboard_css_begin, swarm_dashboard_css_end), "text/css; charset=utf-8"};
  }
  return std::nullopt;
}

} // namespace swarm::roles::orch
