// Orchestrator routes: verify, finalize, releases, rollback.
#include "roles/orch/api_context.hpp"

namespace swarm::roles::orch {

void install_release_routes(net::HttpServer& /*server*/, const std::shared_ptr<Api>& /*api*/)
{
}

} // namespace swarm::roles::orch
