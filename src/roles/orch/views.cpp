// Read-only views of the coordinator's state: the JSON of status, drones, packages, events and
// builds (docs/protocol.md, "Read-only views"), the staging index, and the state dump tests
// compare with a fresh load. Each takes the lock only to read.
#include "roles/orch/coordinator.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "portage/packages_index.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::orch {

using nlohmann::json;

namespace {

json drone_json(const Drone& drone, const Block& block, int running, const LeaseBook& leases, const PlanState& plan,
                double now, const std::string& tree)
{
  json lease_list = json::array();
  for (const auto& id : drone.leases) {
    const auto* lease = leases.find(id);
    if (!lease) {
      continue;
    }
    const auto* row = plan.find(lease->package);
    lease_list.push_back({{"id", id},
                          {"cpv", row ? row->cpv : ""},
                          {"state", to_string(lease->state)},
                          {"started", lease->created},
                          {"expires", lease->expires},
                          {"elapsed", std::max(0.0, now - lease->created)},
                          {"expected_seconds", row ? plan.expected_seconds(*row) : 0.0}});
  }
  json refused = json::object();
  for (const auto& [profile, reason] : drone.refused) {
    refused[profile] = reason;
  }
  return json{{"name", drone.row.name},
              {"state", drone.state(now)},
              {"online", drone.row.online},
              {"reason", block.reason},
              {"code", net::to_string(block.code)},
              {"cores", drone.row.cores},
              {"slots", drone.row.slots},
              {"running", running},
              {"leases", lease_list},
              {"ram_bytes", drone.row.ram_bytes},
              {"disk_free_bytes", drone.row.disk_free_bytes},
              {"tree_timestamp", drone.row.tree_timestamp},
              {"tree_matches", tree.empty() || drone.row.tree_timestamp == tree},
              {"version", drone.row.version},
              {"last_seen", drone.row.last_seen},
              {"enrolled_at", drone.row.enrolled_at},
              {"revoked_at", drone.row.revoked_at},
              {"cpu_percent", drone.row.cpu_percent},
              {"mem_percent", drone.row.mem_percent},
              {"load1", drone.row.load1},
              {"consecutive_failures", drone.breaker.consecutive_failures()},
              {"grounded_until", drone.operator_grounded ? 0.0 : drone.breaker.open_until()},
              {"grounded_by_operator", drone.operator_grounded},
              {"speed", drone.speed()},
              {"profiles", drone.row.profiles},
              {"build_root", drone.row.build_root},
              {"chost", drone.row.chost},
              {"refused", refused}};
}

json package_json(const PackageRow& row, const PlanState& plan)
{
  json out{{"cpv", row.cpv},
           {"profile", row.profile},
           {"slot", row.slot},
           {"repo", row.repo},
           {"use", row.use},
           {"state", to_string(row.state)},
           {"in_plan", row.in_plan},
           {"expected_seconds", plan.expected_seconds(row)},
           {"failures", row.failures},
           {"failed_on", row.failed_on},
           {"last_failure", row.last_failure}};
  const auto node = plan.node_of(row);
  out["ready"] = plan.scheduler().is_ready(node);
  out["waiting_for"] = plan.scheduler().pending(node);
  out["priority"] = plan.scheduler().priority(node);
  if (!row.artifact_path.empty()) {
    out["artifact"] = {{"path", row.artifact_path},
                       {"sha256", row.sha256},
                       {"size", row.size},
                       {"build_id", row.build_id},
                       {"built_by", row.built_by},
                       {"received_at", row.received_at},
                       {"tree_timestamp", row.built_tree_timestamp},
                       {"released_in", row.released_in}};
  }
  return out;
}

// What is left of `profile`'s plan over the expected durations: the longest chain of packages
// still to build (a running build counts what is left of its expected time), and the sum of
// them. Blocked and dep-failed packages count nothing: they are not built until unblocked.
json remaining_json(const PlanState& plan, const LeaseBook& leases, const std::string& profile, double now)
{
  std::map<int64_t, double> running_since;
  for (const auto& [id, lease] : leases.all()) {
    if (lease.state == LeaseState::active) {
      running_since[lease.package] = lease.created;
    }
  }
  const auto& packages = plan.packages();
  std::vector<double> left(packages.size(), 0.0);
  double work = 0;
  for (const auto& row : packages) {
    if (!row.in_plan || row.profile != profile) {
      continue;
    }
    double seconds = 0;
    if (row.state == PkgState::needed) {
      seconds = plan.expected_seconds(row);
    } else if (row.state == PkgState::delegated) {
      const auto since = running_since.find(row.id);
      const double elapsed = since == running_since.end() ? 0.0 : now - since->second;
      seconds = std::max(0.0, plan.expected_seconds(row) - elapsed);
    }
    left[plan.node_of(row)] = seconds;
    work += seconds;
  }
  double critical = 0;
  if (work > 0) {
    for (const double level : plan.graph().bottom_levels(left)) {
      critical = std::max(critical, level);
    }
  }
  return json{{"critical_path_seconds", critical}, {"work_seconds", work}};
}

json build_json(const BuildRow& build, const std::string& drone, const std::string& cpv)
{
  json out{{"id", build.id},        {"drone", drone},         {"started", build.started},
           {"ended", build.ended},  {"result", build.result}, {"duration", build.duration},
           {"reason", build.reason}};
  if (!cpv.empty()) {
    out["package"] = cpv;
  }
  return out;
}

} // namespace

bool Coordinator::paused()
{
  std::lock_guard lock(m_mutex);
  return m_paused;
}

json Coordinator::drones_view()
{
  std::lock_guard lock(m_mutex);
  json out = json::array();
  for (const auto& [name, drone] : m_drones.all()) {
    out.push_back(drone_json(drone, block_of(drone), running_of(drone), m_leases, m_plan, now(),
                             m_plan.info(k_default_profile).tree_timestamp));
  }
  return out;
}

json Coordinator::profiles_view()
{
  std::lock_guard lock(m_mutex);
  std::map<std::string, std::map<std::string, size_t>> counts;
  for (const auto& row : m_plan.packages()) {
    if (row.in_plan) {
      ++counts[row.profile]["total"];
      ++counts[row.profile][std::string(to_string(row.state))];
    }
  }
  json out = json::array();
  for (const auto& [name, info] : m_plan.infos()) {
    out.push_back({{"name", name},
                   {"build_profile", info.build_profile},
                   {"source", info.source},
                   {"tree_timestamp", info.tree_timestamp},
                   {"portage_profile", info.portage_profile},
                   {"submitted_at", info.submitted_at},
                   {"staging_url", staging_url(name)},
                   {"counts", counts[name]}});
  }
  return out;
}

json Coordinator::status(const std::string& profile)
{
  std::lock_guard lock(m_mutex);
  std::map<std::string, size_t> counts{{"needed", 0}, {"ready", 0},   {"delegated", 0},  {"received", 0},
                                       {"failed", 0}, {"blocked", 0}, {"dep-failed", 0}, {"total", 0}};
  for (const auto& row : m_plan.packages()) {
    if (!row.in_plan || row.profile != profile) {
      continue;
    }
    ++counts["total"];
    ++counts[std::string(to_string(row.state))];
    counts["ready"] += m_plan.is_ready(row);
    counts["failed"] += row.state == PkgState::needed && row.failures > 0;
  }
  // The operator's words for the protocol's states.
  counts["building"] = counts["delegated"];
  counts["complete"] = counts["received"];
  const auto info = m_plan.info(profile);
  json drones = json::array();
  for (const auto& [name, drone] : m_drones.all()) {
    drones.push_back(
      drone_json(drone, block_of(drone), running_of(drone), m_leases, m_plan, now(), info.tree_timestamp));
  }
  size_t edges = 0;
  for (const auto& edge : m_plan.edges()) {
    if (const auto* row = m_plan.find(edge.package); row && row->profile == profile) {
      ++edges;
    }
  }
  json profiles = json::array();
  for (const auto& [name, other] : m_plan.infos()) {
    profiles.push_back(name);
  }
  return json{{"paused", m_paused},
              {"profile", profile},
              {"profiles", profiles},
              {"counts", counts},
              {"plan",
               {{"source", info.source},
                {"tree_timestamp", info.tree_timestamp},
                {"profile", info.portage_profile},
                {"build_profile", info.build_profile},
                {"merge_order", info.merge_order},
                {"submitted_at", info.submitted_at},
                {"edges", edges},
                {"warnings", m_plan.warnings()}}},
              {"drones", drones},
              {"remaining", remaining_json(m_plan, m_leases, profile, now())},
              {"last_event", m_store.last_event_id()}};
}

json Coordinator::packages_view(const std::string& profile, const std::string& state_filter)
{
  std::lock_guard lock(m_mutex);
  json out = json::array();
  for (const auto& row : m_plan.packages()) {
    if (row.profile != profile) {
      continue;
    }
    if (!state_filter.empty()) {
      const bool match = state_filter == to_string(row.state) || (state_filter == "ready" && m_plan.is_ready(row)) ||
                         (state_filter == "failed" && row.state == PkgState::needed && row.failures > 0) ||
                         (state_filter == "building" && row.state == PkgState::delegated) ||
                         (state_filter == "complete" && row.state == PkgState::received);
      if (!match) {
        continue;
      }
    }
    out.push_back(package_json(row, m_plan));
  }
  return out;
}

Result<json> Coordinator::package_view(const std::string& profile, const std::string& cpv)
{
  std::lock_guard lock(m_mutex);
  const auto* row = m_plan.find(profile, cpv);
  if (!row) {
    return fail(ErrorKind::not_found, "no package {}", cpv);
  }
  auto out = package_json(*row, m_plan);
  const auto& packages = m_plan.packages();
  const auto node = m_plan.node_of(*row);
  json needs = json::array();
  for (const auto& edge : m_plan.graph().needs(node)) {
    needs.push_back({{"cpv", packages[edge.to].cpv},
                     {"kind", edge.strength == dag::Strength::build ? "build" : "runtime-closure"},
                     {"state", to_string(packages[edge.to].state)}});
  }
  json dependants = json::array();
  for (auto dependant : m_plan.graph().dependants(node)) {
    dependants.push_back(packages[dependant].cpv);
  }
  out["needs"] = needs;
  out["dependants"] = dependants;
  out["transitive_dependants"] = m_plan.graph().transitive_dependants(node).size();
  json plan_edges = json::array();
  for (const auto& edge : m_plan.edges()) {
    if (edge.package == row->id) {
      if (const auto* dep = m_plan.find(edge.needs)) {
        plan_edges.push_back({{"needs", dep->cpv}, {"kind", edge.kind}});
      }
    }
  }
  out["plan_edges"] = plan_edges;
  json warnings = json::array();
  for (const auto& warning : m_plan.warnings()) {
    if (warning.find(cpv + " ") != std::string::npos) {
      warnings.push_back(warning);
    }
  }
  out["warnings"] = warnings;
  json builds = json::array();
  for (const auto& build : m_store.list_builds(row->id, 0, 20)) {
    auto entry = build_json(build, m_drones.name_of(build.drone), "");
    entry["log_tail"] = build.log_tail;
    builds.push_back(std::move(entry));
  }
  out["builds"] = builds;
  return out;
}

json Coordinator::events_view(int64_t since, size_t limit)
{
  std::lock_guard lock(m_mutex);
  json events = json::array();
  int64_t last = since;
  for (const auto& event : m_store.list_events(since, limit)) {
    events.push_back({{"id", event.id},
                      {"time", event.time},
                      {"kind", event.kind},
                      {"drone", event.drone},
                      {"package", event.package},
                      {"detail", event.detail}});
    last = event.id;
  }
  return json{{"events", events}, {"last_id", last}};
}

json Coordinator::builds_view(const std::string& profile, const std::string& package, const std::string& drone_name,
                              size_t limit)
{
  std::lock_guard lock(m_mutex);
  int64_t package_id = 0;
  int64_t drone_id = 0;
  if (!package.empty()) {
    const auto* row = m_plan.find(profile, package);
    package_id = row ? row->id : -1;
  }
  if (!drone_name.empty()) {
    const auto* drone = m_drones.find(std::string_view(drone_name));
    drone_id = drone ? drone->row.id : -1;
  }
  json out = json::array();
  for (const auto& build : m_store.list_builds(package_id, drone_id, limit)) {
    const auto* row = m_plan.find(build.package);
    auto entry = build_json(build, m_drones.name_of(build.drone), row ? row->cpv : "");
    if (!row) {
      entry["package"] = "";
    }
    out.push_back(std::move(entry));
  }
  return out;
}

json Coordinator::state_dump()
{
  std::lock_guard lock(m_mutex);
  json plans = json::object();
  for (const auto& [name, info] : m_plan.infos()) {
    plans[name] = {{"source", info.source},
                   {"tree_timestamp", info.tree_timestamp},
                   {"portage_profile", info.portage_profile},
                   {"merge_order", info.merge_order},
                   {"submitted_at", info.submitted_at},
                   {"build_profile", info.build_profile}};
  }
  json packages = json::array();
  for (const auto& row : m_plan.packages()) {
    packages.push_back({{"id", row.id},
                        {"profile", row.profile},
                        {"cpv", row.cpv},
                        {"slot", row.slot},
                        {"repo", row.repo},
                        {"use", row.use},
                        {"plan_seconds", row.plan_seconds},
                        {"plan_position", row.plan_position},
                        {"in_plan", row.in_plan},
                        {"state", to_string(row.state)},
                        {"failures", row.failures},
                        {"failed_on", row.failed_on},
                        {"last_failure", row.last_failure},
                        {"retry_at", row.retry_at},
                        {"retries", row.retries},
                        {"artifact_path", row.artifact_path},
                        {"sha256", row.sha256},
                        {"size", row.size},
                        {"build_id", row.build_id},
                        {"received_at", row.received_at},
                        {"built_by", row.built_by},
                        {"built_tree_timestamp", row.built_tree_timestamp},
                        {"index_entry", row.index_entry},
                        {"released_in", row.released_in},
                        {"scheduler", static_cast<int>(m_plan.scheduler().state(m_plan.node_of(row)))}});
  }
  json edges = json::array();
  for (const auto& edge : m_plan.edges()) {
    edges.push_back({edge.package, edge.needs, edge.kind});
  }
  json drones = json::array();
  for (const auto& [name, drone] : m_drones.all()) {
    const auto& row = drone.row;
    drones.push_back({{"id", row.id},
                      {"name", row.name},
                      {"token", m_tokens.drone_for_hash(row.token_hash).value_or("") == name},
                      {"enrolled_at", row.enrolled_at},
                      {"cores", row.cores},
                      {"slots", row.slots},
                      {"ram_bytes", row.ram_bytes},
                      {"disk_free_bytes", row.disk_free_bytes},
                      {"tree_timestamp", row.tree_timestamp},
                      {"version", row.version},
                      {"last_seen", row.last_seen},
                      {"online", row.online},
                      {"consecutive_failures", row.consecutive_failures},
                      {"breaker_failures", drone.breaker.consecutive_failures()},
                      {"grounded_until", row.grounded_until},
                      {"breaker_open_until", drone.breaker.open_until()},
                      {"probation", row.probation},
                      {"breaker_probation", drone.breaker.probation()},
                      {"operator_grounded", drone.operator_grounded},
                      {"cpu_percent", row.cpu_percent},
                      {"mem_percent", row.mem_percent},
                      {"load1", row.load1},
                      {"leases", drone.leases},
                      {"profiles", row.profiles},
                      {"build_root", row.build_root},
                      {"chost", row.chost}});
  }
  std::map<std::string, json> leases;
  for (const auto& [id, lease] : m_leases.all()) {
    leases[id] = {lease.package, lease.drone, lease.created, lease.expires, to_string(lease.state), lease.build};
  }
  return json{
    {"plans", plans},   {"paused", m_paused}, {"packages", packages}, {"edges", edges}, {"warnings", m_plan.warnings()},
    {"drones", drones}, {"leases", leases}};
}

std::pair<std::string, int64_t> Coordinator::staging_index(const std::string& profile)
{
  std::lock_guard lock(m_mutex);
  auto& cached = m_indexes[profile];
  if (cached.generation == m_generation && !cached.text.empty()) {
    return {cached.text, cached.timestamp};
  }
  portage::PackagesIndex index;
  for (const auto& row : m_plan.packages()) {
    if (row.profile != profile || row.state != PkgState::received || row.index_entry.empty()) {
      continue;
    }
    auto entry = json::parse(row.index_entry, nullptr, false);
    if (!entry.is_object()) {
      continue;
    }
    portage::IndexBlock block;
    for (const auto& [key, value] : entry.items()) {
      if (value.is_string()) {
        block[key] = value.get<std::string>();
      }
    }
    block["PATH"] = row.artifact_path;
    index.packages.push_back(std::move(block));
  }
  // Portage re-reads an index only when its TIMESTAMP is strictly newer than the cached one, in
  // whole seconds: two changes within one second must still give two different timestamps.
  const auto wall = static_cast<int64_t>(now());
  cached.timestamp = std::max(wall, cached.timestamp + 1);
  cached.text = portage::write_packages_index(index, {cached.timestamp});
  cached.generation = m_generation;
  return {cached.text, cached.timestamp};
}

std::vector<PackageRow> Coordinator::received_packages(const std::string& profile)
{
  std::lock_guard lock(m_mutex);
  std::vector<PackageRow> out;
  for (const auto& row : m_plan.packages()) {
    if (row.profile == profile && !row.artifact_path.empty()) {
      out.push_back(row);
    }
  }
  return out;
}

Coordinator::Snapshot Coordinator::snapshot(const std::string& profile)
{
  std::lock_guard lock(m_mutex);
  Snapshot out;
  std::set<int64_t> ids;
  for (const auto& row : m_plan.packages()) {
    if (row.profile == profile) {
      out.packages.push_back(row);
      ids.insert(row.id);
    }
  }
  for (const auto& edge : m_plan.edges()) {
    if (ids.count(edge.package)) {
      out.edges.push_back(edge);
    }
  }
  out.plan = m_plan.info(profile);
  out.build_profile = load_build_profile(out.plan.build_profile);
  return out;
}

} // namespace swarm::roles::orch
