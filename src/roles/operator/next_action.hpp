#pragma once
// `swarm status`'s NEXT ACTION: what the operator should do now, computed from the
// orchestrator's status and release views only (a pure function, unit-tested per state).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace swarm::roles::operator_cli {

struct NextAction {
  std::string state;                 // paused, blocked, tree-mismatch, drones, all-built, building, released, no-plan
  bool attention = false;            // the operator must act (exit code k_status_attention)
  std::string message;               // one or more lines for a human
  std::vector<std::string> commands; // what to run, in order
  nlohmann::json to_json() const;
};

// `status` is GET /api/v1/status; `releases` is GET /api/v1/releases (null when unavailable).
NextAction next_action(const nlohmann::json& status, const nlohmann::json& releases);

} // namespace swarm::roles::operator_cli
