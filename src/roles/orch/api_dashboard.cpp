// The web dashboard (docs/protocol.md, "Dashboard"): one page, its script and its style, all
// embedded in the binary. Anyone may load them; the data comes from the read-only API (a token
// unless orch.public_status), the actions from the admin API.
#include "roles/orch/api_context.hpp"
#include "roles/orch/dashboard_assets.hpp"

namespace swarm::roles::orch::handlers {

void dashboard(Api&, const Call& call)
{
  const auto requested = call.match(1);
  const auto asset = dashboard_asset(requested.empty() ? "index.html" : requested);
  if (!asset) {
    return call.fail({ErrorKind::not_found, "not found"});
  }
  auto& response = call.response;
  // Everything from this origin, no inline script or style, never framed.
  response.set_header("Content-Security-Policy",
                      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                      "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                      "frame-ancestors 'none'");
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("X-Frame-Options", "DENY");
  response.set_header("Referrer-Policy", "no-referrer");
  response.set_header("Cache-Control", "no-cache");
  response.set_content(std::string(asset->content), std::string(asset->content_type));
}

} // namespace swarm::roles::orch::handlers
