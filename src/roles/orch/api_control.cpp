// Route handlers of plan submission and control (docs/protocol.md, "Plan and control"): each
// control action is its own typed request and coordinator method.
#include "roles/orch/api_context.hpp"

#include "portage/build_profile.hpp"
#include "portage/plan.hpp"
#include "roles/orch/coordinator.hpp"

namespace swarm::roles::orch::handlers {

void enroll(Api& api, const Call& call)
{
  const auto request = call.read<net::EnrollRequest>();
  auto token = api.coordinator.enroll(request.name);
  if (!token) {
    return call.fail(token.error());
  }
  call.reply(json(net::EnrollReply{request.name, *token}));
}

void submit_plan(Api& api, const Call& call)
{
  const auto body = call.read_json();
  const auto request = body.get<net::PlanRequest>();
  if (!body.contains("plan")) {
    return call.fail({ErrorKind::invalid, "the body needs a \"plan\" object"});
  }
  auto plan = portage::plan_from_json(body["plan"]);
  if (!plan) {
    return call.fail({ErrorKind::invalid, "invalid plan: " + plan.error().message});
  }
  std::optional<portage::BuildProfile> build_profile;
  if (const auto it = body.find("build_profile"); it != body.end() && !it->is_null()) {
    auto parsed = portage::build_profile_from_json(*it);
    if (!parsed) {
      return call.fail({ErrorKind::invalid, "invalid build profile: " + parsed.error().message});
    }
    build_profile = std::move(*parsed);
  }
  call.reply(api.coordinator.submit_plan(*plan, request.mode, request.clear_staging, request.profile, build_profile));
}

void pause(Api& api, const Call& call)
{
  (void)call.read_json(); // no fields, but a malformed body is still refused
  call.reply(api.coordinator.set_paused(true));
}

void resume(Api& api, const Call& call)
{
  (void)call.read_json(); // no fields, but a malformed body is still refused
  call.reply(api.coordinator.set_paused(false));
}

void reset(Api& api, const Call& call)
{
  (void)call.read_json(); // no fields, but a malformed body is still refused
  call.reply(api.coordinator.reset());
}

void unblock(Api& api, const Call& call)
{
  call.reply(api.coordinator.unblock(call.read<net::UnblockRequest>()));
}

void ground(Api& api, const Call& call)
{
  call.reply(api.coordinator.ground(call.read<net::GroundRequest>()));
}

void unground(Api& api, const Call& call)
{
  call.reply(api.coordinator.unground(call.read<net::GroundRequest>()));
}

void balance(Api& api, const Call& call)
{
  (void)call.read_json(); // no fields, but a malformed body is still refused
  call.reply(api.coordinator.balance());
}

// `swarm build-local`: the operator's machine acts as a drone for one package. The identity is
// (re-)enrolled, so each run gets a fresh token (the previous one stops working), and the lease
// is on exactly the package asked for; upload and report then take the normal drone path, so
// every check of an artifact applies.
void local_build(Api& api, const Call& call)
{
  const auto request = call.read<net::LocalBuildRequest>();
  if (!request.drone.starts_with("local-")) {
    return call.fail({ErrorKind::invalid, "a local build identity is named local-HOST"});
  }
  auto token = api.coordinator.enroll(request.drone);
  if (!token) {
    return call.fail(token.error());
  }
  auto lease = api.coordinator.lease_package(request.drone, request.profile, request.package);
  if (!lease) {
    return call.fail(lease.error());
  }
  call.reply(json(net::LocalBuildReply{request.drone, *token, *lease}));
}

} // namespace swarm::roles::orch::handlers
