#include "roles/operator/next_action.hpp"

#include <fmt/format.h>

#include "roles/operator/progress.hpp"

namespace swarm::roles::operator_cli {

using nlohmann::json;

json NextAction::to_json() const
{
  return json{{"state", state}, {"attention", attention}, {"message", message}, {"commands", commands}};
}

/*
 * The first rule that matches wins:
 *  0. the orchestrator has no space for uploads (it answers 507; drones keep their artifacts and
 *     retry) → free space there; builds resume by themselves;
 *  1. paused → `swarm resume`;
 *  2. blocked packages → `swarm fix-blocked` (they will not build by themselves);
 *  3. an online drone on another Portage tree than the plan → `swarm sync-verify`;
 *  4. work left and a drone grounded or offline, or no drone online at all → which, and what to do;
 *  5. everything built and not all of it released → `swarm verify`, then `swarm finalize`;
 *  6. work left, drones fine → nothing to do but wait (`swarm monitor`);
 *  7. everything built and released, or no plan → nothing to do.
 * Rules 1–5 need the operator (attention); 6–7 do not.
 */
NextAction next_action(const json& status, const json& releases)
{
  NextAction out;
  const size_t total = status_count(status, "total");
  const size_t received = status_count(status, "received");
  const size_t blocked = status_count(status, "blocked");
  const size_t dep_failed = status_count(status, "dep-failed");
  const size_t left = status_count(status, "needed") + status_count(status, "delegated");
  const auto drones = status.value("drones", json::array());

  if (const auto full = status.value("disk_full", json()); full.is_object()) {
    std::vector<std::string> paths;
    for (const auto& path : full.value("paths", json::array())) {
      if (path.is_string()) {
        paths.push_back(path.get<std::string>());
      }
    }
    out = {"disk-full",
           true,
           fmt::format("no space left on the orchestrator for {} ({}): uploads are refused (507) and wait on the "
                       "drones; free space there and builds resume by themselves",
                       fmt::join(paths, ", "), full.value("detail", std::string("?"))),
           {}};
    for (const auto& path : paths) {
      out.commands.push_back("df -h " + path);
    }
    return out;
  }
  if (status.value("paused", false)) {
    out = {"paused", true, "the orchestrator is paused: no drone gets work", {"swarm resume"}};
    return out;
  }
  if (blocked > 0) {
    out = {
      "blocked",
      true,
      fmt::format("{} package(s) blocked, {} dependant(s) dep-failed: see why and what to run", blocked, dep_failed),
      {"swarm fix-blocked"}};
    return out;
  }
  std::vector<std::string> mismatched;
  std::vector<std::string> grounded;
  std::vector<std::string> offline;
  size_t online = 0;
  for (const auto& drone : drones) {
    const auto name = drone.value("name", std::string("?"));
    const auto state = drone.value("state", std::string());
    if (state == "enrolled") {
      continue; // never started
    }
    if (drone.value("online", false) && !drone.value("tree_matches", true)) {
      mismatched.push_back(fmt::format("{} (tree {})", name, drone.value("tree_timestamp", std::string("?"))));
    }
    if (state == "grounded") {
      grounded.push_back(name);
    } else if (!drone.value("online", false)) {
      offline.push_back(name);
    } else {
      ++online;
    }
  }
  if (!mismatched.empty()) {
    out = {"tree-mismatch",
           true,
           fmt::format("drone(s) on another Portage tree than the plan get no work: {}", fmt::join(mismatched, ", ")),
           {"swarm sync-verify"}};
    return out;
  }
  if (left > 0 && (!grounded.empty() || !offline.empty() || online == 0)) {
    out.state = "drones";
    out.attention = true;
    std::vector<std::string> lines;
    if (!grounded.empty()) {
      lines.push_back(fmt::format("grounded after repeated failures: {} — read its log, fix the host, then unground it",
                                  fmt::join(grounded, ", ")));
      for (const auto& name : grounded) {
        out.commands.push_back("swarm logs " + name);
        out.commands.push_back("swarm unground " + name);
      }
    }
    if (!offline.empty()) {
      lines.push_back(
        fmt::format("offline (no heartbeat): {} — start `swarm drone` there (rc-service swarm-drone start)",
                    fmt::join(offline, ", ")));
    }
    if (online == 0 && grounded.empty() && offline.empty()) {
      lines.push_back("no drone is online: enroll one and start `swarm drone` on it");
      out.commands.push_back("swarm drone enroll NAME");
    }
    lines.push_back(fmt::format("{} package(s) still to build", left));
    out.message = fmt::format("{}", fmt::join(lines, "\n"));
    out.commands.push_back("swarm drones");
    return out;
  }
  const size_t unreleased = releases.is_object() ? releases.value("unreleased", size_t{0}) : 0;
  const bool released_known = releases.is_object();
  if (total > 0 && received == total && (!released_known || unreleased > 0)) {
    out = {"all-built",
           true,
           fmt::format("all {} packages are built{}: check the risk, then publish", total,
                       released_known ? fmt::format(" ({} not released yet)", unreleased) : std::string()),
           {"swarm verify", "swarm finalize"}};
    return out;
  }
  if (left > 0) {
    out = {"building",
           false,
           fmt::format("{} of {} built, {} building, {} waiting: nothing to do but wait", received, total,
                       status_count(status, "delegated"), status_count(status, "needed")),
           {"swarm monitor"}};
    return out;
  }
  if (total == 0) {
    out = {"no-plan", false, "nothing to do: there is no plan (`swarm fresh` computes one)", {}};
    return out;
  }
  const auto current = releases.value("current", json());
  out = {"released",
         false,
         fmt::format("nothing to do: all {} packages are built and release {} publishes them", total,
                     current.is_string() ? current.get<std::string>() : std::string("?")),
         {}};
  return out;
}

} // namespace swarm::roles::operator_cli
