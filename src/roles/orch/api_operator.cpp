// Orchestrator routes: operator-only actions beyond the protocol core (docs/protocol.md,
// "Operator extras").
#include "roles/orch/api_context.hpp"

namespace swarm::roles::orch {

void install_operator_routes(net::HttpServer& server, const std::shared_ptr<Api>& api)
{
  // `swarm build-local`: the operator's machine acts as a drone for one package. The identity is
  // (re-)enrolled, so each run gets a fresh token (the previous one stops working), and the lease
  // is on exactly the package asked for; upload and report then take the normal drone path, so
  // every check of an artifact applies.
  server.post("/api/v1/operator/local-build", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->admin(request, response)) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    std::string drone;
    std::string package;
    try {
      drone = body->value("drone", std::string());
      package = body->value("package", std::string());
    } catch (const json::exception&) {
      return net::error_response(response, {ErrorKind::invalid, "\"drone\" and \"package\" must be strings"});
    }
    if (!drone.starts_with("local-")) {
      return net::error_response(response, {ErrorKind::invalid, "a local build identity is named local-HOST"});
    }
    if (package.empty()) {
      return net::error_response(response, {ErrorKind::invalid, "\"package\" (CAT/PF) is required"});
    }
    auto token = api->coordinator.enroll(drone);
    if (!token) {
      return net::error_response(response, token.error());
    }
    auto lease = api->coordinator.lease_package(drone, package);
    if (!lease) {
      return net::error_response(response, lease.error());
    }
    auto lease_json = to_json(*lease);
    lease_json["staging_url"] = staging_url(api->options);
    net::json_response(response, 200, json{{"drone", drone}, {"token", *token}, {"lease", lease_json}});
  });
}

} // namespace swarm::roles::orch
