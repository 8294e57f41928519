// `swarm gateway`: the stateless front of the orchestrators (roles/gateway/gateway.hpp).

#include <CLI/CLI.hpp>

#include "roles/gateway/gateway.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

void add_gateway_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"gateway", "Run the gateway: proxy /api/* to the healthiest orchestrator by priority",
                   [](CLI::App& app, ConfigFlags& flags) {
                     bind_config_flag(app, flags, "--listen", "gateway.listen");
                     bind_config_flag(app, flags, "--orchestrators", "gateway.orchestrators");
                     bind_config_flag(app, flags, "--health-interval", "gateway.health_interval");
                     bind_config_flag(app, flags, "--health-timeout", "gateway.health_timeout");
                     bind_config_flag(app, flags, "--threads", "gateway.threads");
                     bind_config_flag(app, flags, "--auth-failure-limit", "gateway.auth_failure_limit");
                     bind_config_flag(app, flags, "--tls-cert", "gateway.tls_cert");
                     bind_config_flag(app, flags, "--tls-key", "gateway.tls_key");
                     bind_config_flag(app, flags, "--ca", "gateway.ca");
                     bind_config_flag(app, flags, "--log", "gateway.log");
                   },
                   [](const VerbContext& context) { return gateway::run_gateway(context.config); }});
}

} // namespace swarm::roles
