// Orchestrator routes: operator-only actions beyond the protocol core.
#include "roles/orch/api_context.hpp"

namespace swarm::roles::orch {

void install_operator_routes(net::HttpServer& /*server*/, const std::shared_ptr<Api>& /*api*/)
{
}

} // namespace swarm::roles::orch
