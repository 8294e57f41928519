// `swarm gateway`: the stateless front of the orchestrators (roles/gateway/gateway.hpp).

#include "roles/gateway/gateway.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

void add_gateway_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"gateway", "Run the gateway: proxy /api/* to the healthiest orchestrator by priority",
                   [](CLI::App& app, VerbArgs& args) {
                     bind_config_flag(app, args, "--listen", "gateway.listen");
                     bind_config_flag(app, args, "--orchestrators", "gateway.orchestrators");
                     bind_config_flag(app, args, "--health-interval", "gateway.health_interval");
                     bind_config_flag(app, args, "--health-timeout", "gateway.health_timeout");
                     bind_config_flag(app, args, "--threads", "gateway.threads");
                     bind_config_flag(app, args, "--log", "gateway.log");
                   },
                   [](VerbArgs& args) { return gateway::run_gateway(args.config); }});
}

} // namespace swarm::roles
