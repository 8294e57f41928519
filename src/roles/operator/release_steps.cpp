#include "roles/operator/release_steps.hpp"

#include <fmt/format.h>

#include "core/strings.hpp"

namespace swarm::roles::operator_cli {

using nlohmann::json;

/*
 * sync-verify's rule. A drone gets work only while its Portage tree is the plan's (the
 * orchestrator refuses its claims otherwise), so a mismatch is idle capacity, and for `release`
 * a plan the fleet would not build. Checked: every drone heartbeating now. Listed, not checked:
 *  - offline drones: they build nothing, and the tree on record is the last one they reported;
 *    a drone reports its current tree when it registers again and gets no work until it matches.
 *    (Counting them let one powered-off drone stop every cron `release` with exit 10.)
 * Left out:
 *  - local-* identities: `swarm build-local` on an operator's machine, one package, its own tree;
 *  - drones enrolled but never registered: no tree yet.
 * A plan without a tree timestamp matches every tree.
 */
TreeCheck sync_verify(const json& drones, std::string_view plan_tree)
{
  TreeCheck out;
  out.plan_tree = plan_tree;
  if (!drones.is_array()) {
    return out;
  }
  for (const auto& drone : drones) {
    if (!drone.is_object()) {
      continue;
    }
    DroneTree row;
    row.name = drone.value("name", std::string());
    row.state = drone.value("state", std::string());
    if (row.name.starts_with("local-") || row.state == "enrolled") {
      continue;
    }
    row.online = drone.value("online", false);
    row.tree_timestamp = drone.value("tree_timestamp", std::string());
    row.matches = plan_tree.empty() || row.tree_timestamp == plan_tree;
    const auto described =
      fmt::format("{} ({})", row.name, row.tree_timestamp.empty() ? "unknown tree" : row.tree_timestamp);
    if (!row.online) {
      out.offline.push_back(described);
    } else if (row.matches) {
      out.matching.push_back(row.name);
    } else {
      out.mismatching.push_back(described);
    }
    out.drones.push_back(std::move(row));
  }
  if (out.mismatching.empty()) {
    return out;
  }
  out.refuse = out.matching.empty();
  out.message = fmt::format("{} of {} online drones have another Portage tree than this plan's ({}): {}; they get no "
                            "work until synced (`emerge --sync` there, then `swarm sync-verify`)",
                            out.mismatching.size(), out.mismatching.size() + out.matching.size(), plan_tree,
                            strings::join(out.mismatching, ", "));
  return out;
}

Result<Answer<net::PlanReply>> submit_plan(const net::HttpClient& client, const portage::Plan& plan,
                                           const net::PlanRequest& request)
{
  json body = request;
  body["plan"] = portage::plan_to_json(plan);
  return post_message<net::PlanReply>(client, "/api/v1/plan", body);
}

Result<Answer<net::PlanReply>> submit_fresh_plan(const net::HttpClient& client, const portage::Plan& plan)
{
  net::PlanRequest request;
  request.mode = net::PlanMode::replace;
  request.clear_staging = true;
  return submit_plan(client, plan, request);
}

Result<json> verify_staging(const net::HttpClient& client, std::optional<int> threshold, const net::CallOptions& call)
{
  std::string path = "/api/v1/verify";
  if (threshold) {
    path += fmt::format("?threshold={}", *threshold);
  }
  auto report = client.get_json(path, call);
  if (report && !report->is_object()) {
    return fail(unreadable_answer("GET " + path, "not a JSON object"));
  }
  return report;
}

std::string FinalizeOutcome::reason() const
{
  if (published() || !body.is_object()) {
    return {};
  }
  const auto it = body.find("reason");
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<FinalizeOutcome> finalize_release(const net::HttpClient& client, const net::FinalizeRequest& request,
                                         const net::CallOptions& call)
{
  static constexpr std::string_view k_path = "/api/v1/releases/finalize";
  auto returning = call;
  returning.on_http_error = net::OnHttpError::return_response;
  auto response =
    client.request("POST", k_path, json(request).dump(), {{"Content-Type", "application/json"}}, returning);
  if (!response) {
    return fail(response.error());
  }
  if (!response->ok() && response->status != 409) {
    return fail(net::error_from_response(*response, "POST", k_path));
  }
  FinalizeOutcome out;
  out.status = response->status;
  out.body = response->json().value_or(json::object());
  if (!out.body.is_object()) {
    return fail(unreadable_answer(fmt::format("POST {}", k_path), "not a JSON object"));
  }
  return out;
}

} // namespace swarm::roles::operator_cli
