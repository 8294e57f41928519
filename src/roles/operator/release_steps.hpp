#pragma once
// The steps of the release workflow — sync-verify, fresh, verify, finalize — one function each,
// run by its own verb and by the unattended `swarm release` alike, so that the pipeline and the
// single verbs follow the same rules.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/http_client.hpp"
#include "net/protocol.hpp"
#include "portage/plan.hpp"
#include "roles/operator/api_client.hpp"

namespace swarm::roles::operator_cli {

// --- sync-verify --------------------------------------------------------------------------------

// One drone's Portage tree as sync-verify sees it.
struct DroneTree {
  std::string name;
  std::string state;          // the orchestrator's word: online, probation, grounded, offline
  bool online = false;        // heartbeating now; only these are checked
  std::string tree_timestamp; // as the drone last reported it
  bool matches = false;       // equal to the plan's tree (or the plan has none)
};

// The drones' trees against a plan's tree timestamp.
struct TreeCheck {
  std::string plan_tree;
  std::vector<DroneTree> drones;        // every drone listed (neither local-* nor never registered)
  std::vector<std::string> matching;    // online, same tree: "NAME"
  std::vector<std::string> mismatching; // online, other tree: "NAME (TREE)"
  std::vector<std::string> offline;     // not online now, not checked: "NAME (TREE)"
  bool refuse = false;                  // online drones exist and none has the plan's tree
  std::string message;                  // one line for the operator ("" when all match)

  // No online drone is on another tree than the plan's.
  bool ok() const { return mismatching.empty(); }
};

// sync-verify's step: `drones` (the "drones" of GET /api/v1/status or /api/v1/drones) against
// `plan_tree`. The rule is in the .cpp; `sync-verify`, `fresh` and `release` all use it.
TreeCheck sync_verify(const nlohmann::json& drones, std::string_view plan_tree);

// --- fresh ----------------------------------------------------------------------------------------

// POST /api/v1/plan: `plan` merged as `request` says; the orchestrator's PlanReply.
Result<Answer<net::PlanReply>> submit_plan(const net::HttpClient& client, const portage::Plan& plan,
                                           const net::PlanRequest& request);

// fresh's step: `plan` replaces the orchestrator's plan, and unreleased artifacts of packages
// it no longer holds leave staging.
Result<Answer<net::PlanReply>> submit_fresh_plan(const net::HttpClient& client, const portage::Plan& plan);

// --- verify ---------------------------------------------------------------------------------------

// verify's step: the Risk Score report of publishing staging now (GET /api/v1/verify), against
// `threshold` or, when absent, the orchestrator's orch.risk_threshold.
Result<nlohmann::json> verify_staging(const net::HttpClient& client, std::optional<int> threshold,
                                      const net::CallOptions& call = {});

// --- finalize -------------------------------------------------------------------------------------

// What finalize answered: a release, or a refusal the orchestrator explained (409).
struct FinalizeOutcome {
  int status = 0;      // 200 published, 409 refused
  nlohmann::json body; // the release, or {"error", "reason", and for "risk" the verify fields}

  // A new release is production.
  bool published() const { return status >= 200 && status < 300; }
  // The refusal's reason: risk, nothing_received, nothing_new ("" when published).
  std::string reason() const;
};

// finalize's step: POST /api/v1/releases/finalize. A refusal (409) is an outcome; any other
// HTTP error, or no answer, is the Error.
Result<FinalizeOutcome> finalize_release(const net::HttpClient& client, const net::FinalizeRequest& request,
                                         const net::CallOptions& call = {});

} // namespace swarm::roles::operator_cli
