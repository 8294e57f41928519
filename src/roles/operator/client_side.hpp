#pragma once
// Pure pieces of the operator verbs that touch Portage on this machine: the emerge command lines
// (`fresh`, `client update`), the binrepos.conf entry `client setup` writes, and the check of the
// drones' Portage trees against a plan's before `fresh` submits it.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace swarm::roles::operator_cli {

// `emerge --pretend --verbose --update --deep --newuse @world`: the merge list `fresh` plans from.
std::vector<std::string> pretend_argv(const std::string& emerge);

// `emerge --getbinpkg --update --deep --newuse @world`: a client updating from the binhost.
std::vector<std::string> client_update_argv(const std::string& emerge);

// The binrepos.conf(5) entry for the swarm's production binhost: section [swarm], sync-uri,
// priority; signature verification off (swarm publishes unsigned GPKGs, and Portage's
// binrepos.conf default is to verify). The URL must be http(s).
Result<std::string> binrepos_conf_text(std::string_view binhost_url, std::string_view from);

// Drones' trees against the plan's tree timestamp (GET /api/v1/drones `drones`). Local build
// identities (local-*) and drones that never registered are ignored.
struct TreeCheck {
  std::vector<std::string> matching;    // online, same tree
  std::vector<std::string> mismatching; // online, other tree: "NAME (TREE)"
  std::vector<std::string> offline;     // not online now: "NAME (TREE)"
  bool refuse = false;                  // online drones exist and none has the plan's tree
  std::string message;                  // one line for the operator ("" when all match)
};
TreeCheck check_drone_trees(const nlohmann::json& drones, std::string_view plan_tree);

// "=cat/pkg-1.0" or "cat/pkg-1.0" → "cat/pkg-1.0"; an invalid error otherwise.
Result<std::string> cpv_argument(std::string_view text);

} // namespace swarm::roles::operator_cli
