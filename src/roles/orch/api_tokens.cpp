// Route handlers of credentials (docs/protocol.md, "Credentials"): revoking a drone's token, and
// read-only tokens for status and monitoring.
#include "roles/orch/api_context.hpp"

#include "roles/orch/coordinator.hpp"

namespace swarm::roles::orch::handlers {

void revoke_drone(Api& api, const Call& call)
{
  const auto request = call.read<net::EnrollRequest>();
  auto requeued = api.coordinator.revoke(request.name);
  if (!requeued) {
    return call.fail(requeued.error());
  }
  call.reply(json{{"name", request.name}, {"revoked", true}, {"requeued", *requeued}});
}

void create_token(Api& api, const Call& call)
{
  const auto body = call.read_json();
  const auto request = body.get<net::EnrollRequest>();
  // Only read-only tokens exist besides the admin's and the drones'; say so explicitly.
  if (!body.contains("read_only") || !body["read_only"].is_boolean() || !body["read_only"].get<bool>()) {
    return call.fail({ErrorKind::invalid, "only read-only tokens can be created: send \"read_only\": true"});
  }
  auto token = api.coordinator.create_reader_token(request.name);
  if (!token) {
    return call.fail(token.error());
  }
  call.reply(json{{"name", request.name}, {"role", "reader"}, {"token", *token}});
}

void list_tokens(Api& api, const Call& call)
{
  call.reply(json{{"tokens", api.coordinator.tokens_view()}});
}

void revoke_token(Api& api, const Call& call)
{
  const auto request = call.read<net::EnrollRequest>();
  auto removed = api.coordinator.delete_reader_token(request.name);
  if (!removed) {
    return call.fail(removed.error());
  }
  call.reply(json{{"name", request.name}, {"revoked", true}});
}

} // namespace swarm::roles::orch::handlers
