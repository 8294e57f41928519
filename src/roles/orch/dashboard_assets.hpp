#pragma once
// The web dashboard's files (src/roles/orch/dashboard/), embedded in the binary at build time.

#include <optional>
#include <string_view>

namespace swarm::roles::orch {

struct DashboardAsset {
  std::string_view content;
  std::string_view content_type;
};

// "index.html", "app.js" or "style.css"; nothing for any other name.
std::optional<DashboardAsset> dashboard_asset(std::string_view name);

} // namespace swarm::roles::orch
