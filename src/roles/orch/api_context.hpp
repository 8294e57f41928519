#pragma once
// What every group of orchestrator routes shares: who is calling (admin, drone or nobody), the
// JSON reply and body helpers. Internal to src/roles/orch (api.cpp and api_*.cpp).

#include <algorithm>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/secure.hpp"
#include "net/http_server.hpp"
#include "net/protocol_version.hpp"
#include "roles/orch/api.hpp"

namespace swarm::roles::orch {

using nlohmann::json;

enum class Role { none, admin, drone };

struct Caller {
  Role role = Role::none;
  std::string drone;
};

inline std::string lower(std::string text)
{
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

inline void reply(httplib::Response& response, const Result<json>& result, int status = 200)
{
  if (result) {
    net::json_response(response, status, *result);
  } else {
    net::error_response(response, result.error());
  }
}

// The context every handler needs.
struct Api {
  Coordinator& coordinator;
  const ApiOptions& options;

  Caller identify(const httplib::Request& request) const
  {
    const auto credential = net::credential(request);
    if (!credential || credential->token.empty()) {
      return {};
    }
    if (!options.admin_token.empty() && secure::constant_time_equal(options.admin_token, credential->token)) {
      return {Role::admin, ""};
    }
    if (auto drone = coordinator.drone_for_token(credential->token)) {
      return {Role::drone, *drone};
    }
    return {};
  }

  // Drone-only endpoints.
  std::optional<std::string> drone(const httplib::Request& request, httplib::Response& response) const
  {
    const auto caller = identify(request);
    if (caller.role == Role::none) {
      net::error_response(response, {ErrorKind::unauthorized, "a drone token is required"});
      return std::nullopt;
    }
    if (caller.role != Role::drone) {
      net::error_response(response, {ErrorKind::forbidden, "this endpoint is for drones"});
      return std::nullopt;
    }
    return caller.drone;
  }

  bool admin(const httplib::Request& request, httplib::Response& response) const
  {
    const auto caller = identify(request);
    if (caller.role == Role::admin) {
      return true;
    }
    net::error_response(response, caller.role == Role::none
                                    ? Error{ErrorKind::unauthorized, "the admin token is required"}
                                    : Error{ErrorKind::forbidden, "this endpoint needs the admin token"});
    return false;
  }

  // Read-only views: any valid token, or anyone when status is public.
  bool reader(const httplib::Request& request, httplib::Response& response) const
  {
    if (options.public_status || identify(request).role != Role::none) {
      return true;
    }
    net::error_response(response, {ErrorKind::unauthorized, "a token is required (or set orch.public_status)"});
    return false;
  }

  json info() const
  {
    return json{{"orch_id", options.orch_id},
                {"version", options.version},
                {"protocol", net::k_protocol_version},
                {"public_url", options.public_url},
                {"staging_url", staging_url(options)},
                {"production_url", production_url(options)},
                {"data_dir", options.data_dir.string()},
                {"paused", coordinator.paused()}};
  }
};

inline Result<json> body_json(const httplib::Request& request)
{
  if (request.body.empty()) {
    return json::object();
  }
  auto parsed = net::parse_json(request.body);
  if (!parsed) {
    return fail(parsed.error());
  }
  if (!parsed->is_object()) {
    return fail(ErrorKind::invalid, "the request body must be a JSON object");
  }
  return parsed;
}

// Route groups kept in their own files; each is called by install_routes.
void install_release_routes(net::HttpServer& server, const std::shared_ptr<Api>& api);
void install_operator_routes(net::HttpServer& server, const std::shared_ptr<Api>& api);

} // namespace swarm::roles::orch
