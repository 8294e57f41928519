// The plan by dependency level, and what the build logs need from the state (coordinator.hpp).
#include "roles/orch/coordinator.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace swarm::roles::orch {

namespace {

constexpr size_t k_plan_list_limit = 500; // blocked and waiting packages listed (counts are whole)

std::string_view state_label(PkgState state)
{
  return state == PkgState::dep_failed ? std::string_view("dep-failed") : to_string(state);
}

} // namespace

nlohmann::json Coordinator::plan_view(const std::string& profile)
{
  using nlohmann::json;
  std::lock_guard lock(m_mutex);
  const auto& packages = m_plan.packages();
  const auto& graph = m_plan.graph();
  // Level: 0 for a package that waits for nothing, else one more than its deepest dependency.
  std::vector<int> level(packages.size(), 0);
  for (const auto node : graph.topological_order()) {
    for (const auto& edge : graph.needs(node)) {
      level[node] = std::max(level[node], level[edge.to] + 1);
    }
  }
  std::map<int, std::map<std::string, int>> by_level;
  json blocked = json::array();
  json waiting = json::array();
  size_t blocked_total = 0;
  size_t waiting_total = 0;
  for (size_t node = 0; node < packages.size(); ++node) {
    const auto& row = packages[node];
    if (row.profile != profile || !row.in_plan) {
      continue;
    }
    auto& counts = by_level[level[node]];
    ++counts[std::string(state_label(row.state))];
    ++counts["total"];
    if (row.state == PkgState::blocked) {
      if (++blocked_total <= k_plan_list_limit) {
        blocked.push_back({{"cpv", row.cpv},
                           {"state", "blocked"},
                           {"level", level[node]},
                           {"reason", row.last_failure},
                           {"failures", row.failures},
                           {"failed_on", row.failed_on},
                           {"dependants", graph.transitive_dependants(node).size()}});
      }
    } else if (row.state == PkgState::dep_failed) {
      json because = json::array();
      for (const auto need : graph.transitive_needs(node)) {
        if (packages[need].state == PkgState::blocked) {
          because.push_back(packages[need].cpv);
        }
      }
      if (++blocked_total <= k_plan_list_limit) {
        blocked.push_back({{"cpv", row.cpv},
                           {"state", "dep-failed"},
                           {"level", level[node]},
                           {"reason", "a dependency is blocked"},
                           {"blocked_by", because}});
      }
    } else if (row.state == PkgState::needed) {
      json needs = json::array();
      for (const auto& edge : graph.needs(node)) {
        if (packages[edge.to].state != PkgState::received) {
          needs.push_back({{"cpv", packages[edge.to].cpv}, {"state", state_label(packages[edge.to].state)}});
        }
      }
      if (!needs.empty() && ++waiting_total <= k_plan_list_limit) {
        waiting.push_back({{"cpv", row.cpv}, {"level", level[node]}, {"waits_for", needs}});
      }
    }
  }
  json levels = json::array();
  for (const auto& [number, counts] : by_level) {
    json entry{{"level", number}};
    for (const auto* state : {"needed", "delegated", "received", "blocked", "dep-failed", "total"}) {
      const auto it = counts.find(state);
      entry[state] = it == counts.end() ? 0 : it->second;
    }
    levels.push_back(std::move(entry));
  }
  return json{{"profile", profile}, {"levels", levels},
              {"blocked", blocked}, {"blocked_total", blocked_total},
              {"waiting", waiting}, {"waiting_total", waiting_total}};
}

Result<Coordinator::BuildRef> Coordinator::latest_build(const std::string& profile, const std::string& package,
                                                        const std::string& drone, int64_t build_id)
{
  std::lock_guard lock(m_mutex);
  int64_t package_id = 0;
  int64_t drone_id = 0;
  if (!package.empty()) {
    const auto* row = m_plan.find(profile, package);
    if (!row) {
      return fail(ErrorKind::not_found, "no package {}", package);
    }
    package_id = row->id;
  }
  if (!drone.empty()) {
    const auto* found = m_drones.find(std::string_view(drone));
    if (!found) {
      return fail(ErrorKind::not_found, "no drone {}", drone);
    }
    drone_id = found->row.id;
  }
  std::vector<BuildRow> builds;
  if (build_id > 0) {
    auto pinned = m_store.get_build(build_id);
    if (!pinned || (package_id != 0 && pinned->package != package_id) || (drone_id != 0 && pinned->drone != drone_id)) {
      return fail(ErrorKind::not_found, "no build {} of {}", build_id, package.empty() ? drone : package);
    }
    builds.push_back(std::move(*pinned));
  } else {
    builds = m_store.list_builds(package_id, drone_id, 1);
  }
  if (builds.empty()) {
    return fail(ErrorKind::not_found, "no build yet");
  }
  const auto& build = builds.front();
  BuildRef ref;
  ref.build = build.id;
  const auto* row = m_plan.find(build.package);
  ref.package = row ? row->cpv : "";
  ref.drone = m_drones.name_of(build.drone);
  ref.result = build.result;
  ref.reason = build.reason;
  ref.ended = build.ended;
  // An expired lease stays open for a late result: its build is not over yet.
  if (const auto* lease = m_leases.find(build.lease); lease && ref.result == "expired") {
    ref.ended = 0;
  }
  return ref;
}

Coordinator::LogKeepers Coordinator::log_keepers()
{
  std::lock_guard lock(m_mutex);
  LogKeepers keepers;
  for (const auto& [id, lease] : m_leases.all()) {
    keepers.running.insert(lease.build);
  }
  for (const auto& row : m_plan.packages()) {
    if (row.state == PkgState::blocked) {
      for (const auto& build : m_store.list_builds(row.id, 0, 1)) {
        keepers.keep.insert(build.id);
      }
    }
  }
  return keepers;
}

} // namespace swarm::roles::orch
