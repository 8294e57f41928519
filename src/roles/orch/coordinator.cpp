#include "roles/orch/coordinator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "core/secure.hpp"
#include "core/strings.hpp"
#include "portage/packages_index.hpp"
#include "portage/version.hpp"

namespace swarm::roles::orch {

using nlohmann::json;

namespace {

constexpr size_t k_history_per_package = 9; // median over the last few builds
constexpr size_t k_speed_samples = 15;
constexpr double k_expired_lease_memory = 86400; // how long a late result is still awaited

double median(std::vector<double> values)
{
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::string cp_of(const std::string& cpv)
{
  if (auto parsed = portage::parse_cpv(cpv)) {
    return parsed->cp();
  }
  return cpv;
}

std::string kind_name(portage::EdgeKind kind)
{
  switch (kind) {
  case portage::EdgeKind::depend:
    return "DEPEND";
  case portage::EdgeKind::bdepend:
    return "BDEPEND";
  case portage::EdgeKind::idepend:
    return "IDEPEND";
  case portage::EdgeKind::rdepend:
    return "RDEPEND";
  case portage::EdgeKind::pdepend:
    return "PDEPEND";
  }
  return "DEPEND";
}

std::string iso_time(double epoch)
{
  const auto seconds = static_cast<time_t>(epoch);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec);
}

// A build log that says the drone lacks something outside the plan is the drone's problem.
bool is_environment_failure(const BuildReport& report)
{
  static constexpr std::string_view k_markers[] = {
    "--buildpkgonly requires all dependencies to be merged",
    "No space left on device",
    "swarm: drone environment:",
  };
  for (auto marker : k_markers) {
    if (report.log_tail.find(marker) != std::string::npos || report.reason.find(marker) != std::string::npos) {
      return true;
    }
  }
  return false;
}

} // namespace

json to_json(const LeaseView& lease)
{
  return json{{"id", lease.id},
              {"cpv", lease.cpv},
              {"slot", lease.slot},
              {"repo", lease.repo},
              {"use", lease.use},
              {"deps", lease.deps},
              {"expires_at", lease.expires_at},
              {"expected_seconds", lease.expected_seconds},
              {"tree_timestamp", lease.tree_timestamp}};
}

Coordinator::Coordinator(Store& store, CoordinatorOptions options) : m_store(store), m_options(std::move(options))
{
  if (!m_options.now) {
    m_options.now = [] {
      return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
  }
}

Coordinator::~Coordinator()
{
  shutdown();
}

double Coordinator::now() const
{
  return m_options.now();
}

void Coordinator::shutdown()
{
  {
    std::lock_guard lock(m_mutex);
    m_shutdown = true;
  }
  m_changed.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Loading and the graph

Result<> Coordinator::load(LoadMode mode)
{
  std::lock_guard lock(m_mutex);
  try {
    m_plan.source = m_store.get_meta("plan.source").value_or("");
    m_plan.tree_timestamp = m_store.get_meta("plan.tree_timestamp").value_or("");
    m_plan.profile = m_store.get_meta("plan.profile").value_or("");
    m_plan.merge_order = m_store.get_meta("plan.merge_order").value_or("0") == "1";
    m_plan.submitted_at = strings::parse_double(m_store.get_meta("plan.submitted_at").value_or("0")).value_or(0);
    m_paused = m_store.get_meta("paused").value_or("0") == "1";

    m_packages = m_store.load_packages();
    m_edges = m_store.load_edges();
    m_drones.clear();
    for (auto& row : m_store.load_drones()) {
      Drone drone{
        row, breaker::CircuitBreaker(m_options.drone_failure_limit, m_options.ground_cooldown), {}, {}, false, false,
        {}};
      drone.breaker.restore(row.consecutive_failures, row.grounded_until, row.probation);
      drone.operator_grounded = row.grounded_until >= 1e17;
      m_drones.emplace(row.name, std::move(drone));
    }
    m_history.clear();
    std::unordered_map<int64_t, std::string> cp_by_id;
    for (const auto& row : m_packages) {
      cp_by_id[row.id] = cp_of(row.cpv);
    }
    for (const auto& [package, duration] : m_store.load_success_durations()) {
      if (auto it = cp_by_id.find(package); it != cp_by_id.end()) {
        auto& samples = m_history[it->second];
        samples.push_back(duration);
        if (samples.size() > k_history_per_package) {
          samples.erase(samples.begin());
        }
      }
    }
  } catch (const std::exception& e) {
    return fail(ErrorKind::io, "cannot load state: {}", e.what());
  }

  return commit([&] {
    m_leases.clear();
    const double t = now();
    std::unordered_map<int64_t, Drone*> drone_by_id;
    for (auto& [name, drone] : m_drones) {
      drone_by_id[drone.row.id] = &drone;
      // Drones could not reach a dead orchestrator: count their silence from now, or the first
      // maintenance takes them offline and reclaims the leases given a grace just below.
      if (drone.row.online) {
        drone.row.last_seen = std::max(drone.row.last_seen, t);
      }
    }
    for (auto& lease : m_store.load_open_leases()) {
      if (lease.state == LeaseState::active && mode == LoadMode::take_over) {
        // Grace after a restart: the drone may have been retrying against a dead orchestrator.
        lease.expires = std::max(lease.expires, t + m_options.lease_ttl);
        m_store.save_lease(lease);
      }
      if (auto it = drone_by_id.find(lease.drone); it != drone_by_id.end() && lease.state != LeaseState::expired) {
        it->second->leases.insert(lease.id);
      }
      m_leases[lease.id] = lease;
    }
    rebuild_graph();
  });
}

sched::JobState Coordinator::job_state(const PackageRow& row) const
{
  using sched::JobState;
  if (!row.in_plan) {
    return row.state == PkgState::received ? JobState::done : JobState::dropped;
  }
  switch (row.state) {
  case PkgState::needed:
    return JobState::needed;
  case PkgState::delegated:
    return JobState::running;
  case PkgState::received:
    return JobState::done;
  case PkgState::blocked:
    return JobState::blocked;
  case PkgState::dep_failed:
    return JobState::dep_failed;
  }
  return JobState::needed;
}

void Coordinator::rebuild_graph()
{
  m_by_cpv.clear();
  m_by_id.clear();
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    m_by_cpv[m_packages[node].cpv] = node;
    m_by_id[m_packages[node].id] = node;
  }
  std::vector<std::pair<dag::NodeId, dag::NodeId>> build_edges;
  std::vector<std::pair<dag::NodeId, dag::NodeId>> runtime_edges;
  for (const auto& edge : m_edges) {
    auto from = m_by_id.find(edge.package);
    auto to = m_by_id.find(edge.needs);
    if (from == m_by_id.end() || to == m_by_id.end()) {
      continue;
    }
    if (edge.kind == "DEPEND" || edge.kind == "BDEPEND" || edge.kind == "IDEPEND") {
      build_edges.emplace_back(from->second, to->second);
    } else if (edge.kind == "RDEPEND") {
      // PDEPEND is "some time after": it never orders a build.
      runtime_edges.emplace_back(from->second, to->second);
    }
  }
  m_graph = dag::with_runtime_closure(m_packages.size(), build_edges, runtime_edges);

  std::vector<size_t> positions;
  if (m_plan.merge_order) {
    for (const auto& row : m_packages) {
      positions.push_back(static_cast<size_t>(row.plan_position));
    }
  }
  m_warnings.clear();
  for (const auto& broken : m_graph.break_cycles(positions)) {
    m_warnings.push_back(fmt::format(
      "cycle: {} no longer waits for {} ({}{})", m_packages[broken.from].cpv, m_packages[broken.to].cpv, broken.reason,
      broken.strength == dag::Strength::closure ? "" : "; built against the installed version"));
  }
  const auto order = m_graph.topological_order();
  m_topo_position.assign(m_packages.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) {
    m_topo_position[order[i]] = i;
  }

  m_scheduler = std::make_unique<sched::KahnScheduler>(m_graph, std::vector<double>(m_packages.size(), 0.0));
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    auto state = job_state(m_packages[node]);
    m_scheduler->set_state(node, state == sched::JobState::dep_failed ? sched::JobState::needed : state);
  }
  m_scheduler->recompute_dep_failed();
  apply_dep_failed();
  refresh_priorities();
  ++m_generation;
}

void Coordinator::refresh_priorities()
{
  std::vector<double> durations;
  durations.reserve(m_packages.size());
  for (const auto& row : m_packages) {
    durations.push_back(expected_seconds(row));
  }
  m_scheduler->set_priorities(m_graph.bottom_levels(durations));
  m_priorities_dirty = false;
}

void Coordinator::apply_dep_failed()
{
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    auto& row = m_packages[node];
    const auto state = m_scheduler->state(node);
    if (state == sched::JobState::dep_failed && row.state == PkgState::needed) {
      row.state = PkgState::dep_failed;
      m_store.save_package(row);
      add_event("dep-failed", "", row.cpv, "a dependency is blocked");
    } else if (state == sched::JobState::needed && row.state == PkgState::dep_failed) {
      row.state = PkgState::needed;
      m_store.save_package(row);
      add_event("dep-restored", "", row.cpv, "no dependency is blocked any more");
    }
  }
}

double Coordinator::expected_seconds(const PackageRow& row) const
{
  if (auto it = m_history.find(cp_of(row.cpv)); it != m_history.end() && !it->second.empty()) {
    return median(it->second);
  }
  return row.plan_seconds > 0 ? row.plan_seconds : m_options.default_build_seconds;
}

double Coordinator::drone_speed(const Drone& drone) const
{
  const double speed = median(drone.speed_samples);
  return speed > 0 ? speed : 1.0;
}

// ---------------------------------------------------------------------------------------------
// Helpers

Coordinator::Drone* Coordinator::find_drone(const std::string& name)
{
  auto it = m_drones.find(name);
  return it == m_drones.end() ? nullptr : &it->second;
}

PackageRow* Coordinator::find_package(const std::string& cpv)
{
  auto it = m_by_cpv.find(cpv);
  return it == m_by_cpv.end() ? nullptr : &m_packages[it->second];
}

PackageRow* Coordinator::find_package(int64_t id)
{
  auto it = m_by_id.find(id);
  return it == m_by_id.end() ? nullptr : &m_packages[it->second];
}

void Coordinator::add_event(const std::string& kind, const std::string& drone, const std::string& package,
                            const std::string& detail)
{
  EventRow row{0, now(), kind, drone, package, detail};
  m_store.add_event(row);
  std::string subject = package;
  if (!drone.empty()) {
    subject += subject.empty() ? "drone " + drone : " on " + drone;
  }
  LOG_INFO("{}{}{}", kind, subject.empty() ? "" : " " + subject, detail.empty() ? "" : ": " + detail);
}

Result<> Coordinator::commit(const std::function<void()>& writes)
{
  auto ok = m_store.transaction(writes);
  if (!ok) {
    // Memory may be ahead of the database now: reload what the database holds.
    LOG_ERROR("state transition rolled back: {}", ok.error().message);
    m_packages = m_store.load_packages();
    m_edges = m_store.load_edges();
    m_leases.clear();
    for (auto& lease : m_store.load_open_leases()) {
      m_leases[lease.id] = lease;
    }
    for (auto& [name, drone] : m_drones) {
      drone.leases.clear();
    }
    for (const auto& [id, lease] : m_leases) {
      for (auto& [name, drone] : m_drones) {
        if (drone.row.id == lease.drone && lease.state != LeaseState::expired) {
          drone.leases.insert(id);
        }
      }
    }
    (void)m_store.transaction([&] { rebuild_graph(); });
    return ok;
  }
  return {};
}

void Coordinator::set_pkg_state(PackageRow& row, PkgState state)
{
  const auto old = row.state;
  row.state = state;
  m_store.save_package(row);
  const auto node = m_by_cpv.at(row.cpv);
  m_scheduler->set_state(node, job_state(row));
  if (state == PkgState::blocked || old == PkgState::blocked) {
    apply_dep_failed();
  }
}

void Coordinator::release_lease(LeaseRow& lease, LeaseState state, const std::string& result, const std::string& reason)
{
  lease.state = state;
  m_store.save_lease(lease);
  m_store.finish_build(lease.build, now(), result, std::max(0.0, now() - lease.created), reason, "");
  for (auto& [name, drone] : m_drones) {
    if (drone.row.id == lease.drone) {
      drone.leases.erase(lease.id);
    }
  }
}

void Coordinator::delete_artifact(PackageRow& row)
{
  if (row.artifact_path.empty()) {
    return;
  }
  std::error_code ec;
  std::filesystem::remove(m_options.staging_dir / row.artifact_path, ec);
  row.artifact_path.clear();
  row.sha256.clear();
  row.size = 0;
  row.build_id = 0;
  row.received_at = 0;
  row.built_by.clear();
  row.built_tree_timestamp.clear();
  row.index_entry.clear();
  row.released_in = 0;
  ++m_generation;
}

void Coordinator::ground(Drone& drone, const std::string& reason, bool by_operator)
{
  if (by_operator) {
    drone.operator_grounded = true;
    drone.row.grounded_until = 1e18;
    drone.row.probation = false;
  } else {
    drone.breaker.trip(now());
    drone.row.grounded_until = drone.breaker.open_until();
    drone.row.probation = drone.breaker.probation();
  }
  drone.row.consecutive_failures = drone.breaker.consecutive_failures();
  drone.probation_announced = false;
  m_store.save_drone(drone.row);
  add_event("grounded", drone.row.name, "", reason);
  // Its work goes back to the queue at once; the drone is told to drop it.
  const auto held = drone.leases;
  for (const auto& id : held) {
    auto it = m_leases.find(id);
    if (it == m_leases.end() || it->second.state != LeaseState::active) {
      continue;
    }
    auto& lease = it->second;
    release_lease(lease, LeaseState::cancelled, "cancelled", "drone grounded");
    if (auto* row = find_package(lease.package); row && row->state == PkgState::delegated) {
      set_pkg_state(*row, PkgState::needed);
      add_event("reclaimed", drone.row.name, row->cpv, "drone grounded");
    }
    drone.cancel.insert(id);
    m_leases.erase(it);
  }
}

// ---------------------------------------------------------------------------------------------
// Drones

Result<std::string> Coordinator::enroll(const std::string& name)
{
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_' || c == '.';
      })) {
    return fail(ErrorKind::invalid, "drone name '{}' must be 1-64 characters of [A-Za-z0-9._-]", name);
  }
  std::lock_guard lock(m_mutex);
  const auto token = "swd_" + random::hex_token(24);
  const auto hash = hash::hex_digest(hash::Algo::sha256, token);
  Drone* existing = find_drone(name);
  auto ok = commit([&] {
    if (existing) {
      // Re-enrolling replaces the token (the old one stops working at once).
      existing->row.token_hash = hash;
      m_store.save_drone(existing->row);
      add_event("re-enrolled", name, "", "new token issued");
    } else {
      DroneRow row;
      row.name = name;
      row.token_hash = hash;
      row.enrolled_at = now();
      m_store.save_drone(row);
      Drone drone{
        row, breaker::CircuitBreaker(m_options.drone_failure_limit, m_options.ground_cooldown), {}, {}, false, false,
        {}};
      m_drones.emplace(name, std::move(drone));
      add_event("enrolled", name, "", "");
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  return token;
}

std::optional<std::string> Coordinator::drone_for_token(const std::string& token)
{
  const auto hash = hash::hex_digest(hash::Algo::sha256, token);
  std::lock_guard lock(m_mutex);
  auto lookup = [&] {
    std::optional<std::string> found;
    for (const auto& [name, drone] : m_drones) {
      // Compare every entry: the time taken does not tell which one matched.
      if (secure::constant_time_equal(drone.row.token_hash, hash)) {
        found = name;
      }
    }
    return found;
  };
  if (auto found = lookup()) {
    return found;
  }
  // `swarm drone enroll` may have added or re-keyed a drone in the database meanwhile.
  try {
    for (auto& row : m_store.load_drones()) {
      auto it = m_drones.find(row.name);
      if (it == m_drones.end()) {
        Drone drone{
          row, breaker::CircuitBreaker(m_options.drone_failure_limit, m_options.ground_cooldown), {}, {}, false, false,
          {}};
        m_drones.emplace(row.name, std::move(drone));
      } else {
        it->second.row.token_hash = row.token_hash;
      }
    }
  } catch (const std::exception& e) {
    LOG_WARN("cannot re-read drones: {}", e.what());
  }
  return lookup();
}

Result<json> Coordinator::register_drone(const std::string& name, const DroneHello& hello)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  if (!hello.name.empty() && hello.name != name) {
    return fail(ErrorKind::forbidden, "this token belongs to drone {}, not {}", name, hello.name);
  }
  if (hello.slots < 1 || hello.slots > 256 || hello.cores < 0) {
    return fail(ErrorKind::invalid, "slots must be 1-256 and cores not negative");
  }
  auto ok = commit([&] {
    auto& row = drone->row;
    const bool was_online = row.online;
    row.cores = hello.cores;
    row.slots = hello.slots;
    row.ram_bytes = hello.ram_bytes;
    row.disk_free_bytes = hello.disk_free_bytes;
    row.tree_timestamp = hello.tree_timestamp;
    row.version = hello.version;
    row.last_seen = now();
    row.online = true;
    m_store.save_drone(row);
    add_event(was_online ? "re-registered" : "online", name, "",
              fmt::format("{} cores, {} slots, tree {}", hello.cores, hello.slots,
                          hello.tree_timestamp.empty() ? "unknown" : hello.tree_timestamp));
  });
  if (!ok) {
    return fail(ok.error());
  }
  m_changed.notify_all();
  json leases = json::array();
  for (const auto& id : drone->leases) {
    auto it = m_leases.find(id);
    if (it == m_leases.end()) {
      continue;
    }
    if (const auto* row = find_package(it->second.package)) {
      leases.push_back(to_json(view_of(it->second, *row)));
    }
  }
  return json{{"drone", name},
              {"heartbeat_interval", m_options.heartbeat_interval},
              {"lease_ttl", m_options.lease_ttl},
              {"claim_wait", m_options.claim_wait},
              {"leases", leases}};
}

Result<BeatReply> Coordinator::heartbeat(const std::string& name, const DroneBeat& beat)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  BeatReply reply;
  bool revived = false;
  auto ok = commit([&] {
    auto& row = drone->row;
    const double t = now();
    if (!row.online) {
      row.online = true;
      add_event("online", name, "", "heartbeat after silence");
    }
    row.last_seen = t;
    row.cpu_percent = beat.cpu_percent;
    row.mem_percent = beat.mem_percent;
    row.load1 = beat.load1;
    row.disk_free_bytes = beat.disk_free_bytes;
    if (beat.tree_timestamp) {
      row.tree_timestamp = *beat.tree_timestamp;
    }
    m_store.save_drone(row);
    for (const auto& id : beat.leases) {
      auto it = m_leases.find(id);
      if (it == m_leases.end() || it->second.drone != row.id) {
        reply.cancel.push_back(id); // closed, or not its own: stop working on it
        continue;
      }
      auto& lease = it->second;
      auto* package = find_package(lease.package);
      if (!package || (package->state == PkgState::received && lease.state != LeaseState::uploaded)) {
        reply.cancel.push_back(id);
        continue;
      }
      if (lease.state == LeaseState::active) {
        lease.expires = t + m_options.lease_ttl;
        m_store.save_lease(lease);
      } else if (lease.state == LeaseState::expired && package->state == PkgState::needed) {
        // The drone was only slow to speak up; nobody else took the package meanwhile.
        lease.state = LeaseState::active;
        lease.expires = t + m_options.lease_ttl;
        m_store.save_lease(lease);
        drone->leases.insert(id);
        set_pkg_state(*package, PkgState::delegated);
        add_event("revived", name, package->cpv, "lease extended after expiry");
        revived = true;
      }
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  reply.cancel.insert(reply.cancel.end(), drone->cancel.begin(), drone->cancel.end());
  drone->cancel.clear();
  std::sort(reply.cancel.begin(), reply.cancel.end());
  reply.cancel.erase(std::unique(reply.cancel.begin(), reply.cancel.end()), reply.cancel.end());
  const auto state = drone->operator_grounded ? breaker::BreakerState::open : drone->breaker.state(now());
  reply.state = state == breaker::BreakerState::open        ? "grounded"
                : state == breaker::BreakerState::half_open ? "probation"
                                                            : "online";
  reply.reason = drone_block_reason(*drone);
  if (revived) {
    m_changed.notify_all();
  }
  return reply;
}

std::string Coordinator::drone_block_reason(const Drone& drone) const
{
  if (m_paused) {
    return "paused by the operator";
  }
  if (drone.operator_grounded) {
    return "grounded by the operator";
  }
  const double t = now();
  if (drone.breaker.state(t) == breaker::BreakerState::open) {
    return fmt::format("grounded until {} after {} consecutive failures", iso_time(drone.breaker.open_until()),
                       drone.breaker.consecutive_failures());
  }
  if (!m_plan.tree_timestamp.empty() && drone.row.tree_timestamp != m_plan.tree_timestamp) {
    return fmt::format("tree timestamp {} differs from the plan's {}",
                       drone.row.tree_timestamp.empty() ? "unknown" : drone.row.tree_timestamp, m_plan.tree_timestamp);
  }
  int running = 0;
  for (const auto& id : drone.leases) {
    if (auto it = m_leases.find(id); it != m_leases.end() && it->second.state == LeaseState::active) {
      ++running;
    }
  }
  if (!drone.breaker.allows(t, running)) {
    return "on probation: one package at a time";
  }
  if (running >= drone.row.slots) {
    return fmt::format("all {} slots busy", drone.row.slots);
  }
  return "";
}

bool Coordinator::package_fits(const PackageRow& row, const Drone& drone) const
{
  auto usable = [&](const Drone& other) {
    return other.row.online && &other != &drone && drone_block_reason(other).empty();
  };
  // Busy is not unusable: a drone with every slot taken builds it as soon as one frees up.
  // Counting only idle drones handed a failed package straight back to the drone it failed on,
  // and after a few failures there it was blocked without ever being tried elsewhere.
  auto could_take = [&](const Drone& other) {
    if (!other.row.online || &other == &drone) {
      return false;
    }
    const auto reason = drone_block_reason(other);
    return reason.empty() || reason == fmt::format("all {} slots busy", other.row.slots);
  };
  if (row.failed_on.count(drone.row.name)) {
    // It failed here before: give another drone the chance, if there is one that could take it.
    for (const auto& [name, other] : m_drones) {
      if (could_take(other) && !row.failed_on.count(name)) {
        return false;
      }
    }
  }
  if (expected_seconds(row) >= m_options.heavy_build_seconds) {
    // Heavy packages prefer big drones: leave it for a bigger one that has a free slot.
    for (const auto& [name, other] : m_drones) {
      if (usable(other) && other.row.cores > drone.row.cores && !row.failed_on.count(name)) {
        return false;
      }
    }
  }
  return true;
}

std::vector<std::string> Coordinator::deps_of(const PackageRow& row) const
{
  const auto node = m_by_cpv.at(row.cpv);
  std::vector<std::pair<size_t, std::string>> ordered;
  for (const auto& edge : m_graph.needs(node)) {
    const auto& dep = m_packages[edge.to];
    if (dep.state == PkgState::received && !dep.artifact_path.empty()) {
      ordered.emplace_back(m_topo_position[edge.to], dep.cpv);
    }
  }
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> out;
  for (auto& [position, cpv] : ordered) {
    out.push_back(std::move(cpv));
  }
  return out;
}

LeaseView Coordinator::view_of(const LeaseRow& lease, const PackageRow& row) const
{
  LeaseView view;
  view.id = lease.id;
  view.cpv = row.cpv;
  view.slot = row.slot;
  view.repo = row.repo;
  view.use = row.use;
  view.deps = deps_of(row);
  view.expires_at = lease.expires;
  view.expected_seconds = expected_seconds(row);
  view.tree_timestamp = m_plan.tree_timestamp;
  return view;
}

std::optional<LeaseView> Coordinator::try_claim(Drone& drone, std::string& reason)
{
  reason = drone_block_reason(drone);
  if (!reason.empty()) {
    return std::nullopt;
  }
  const auto pick = m_scheduler->pick([&](dag::NodeId node) { return package_fits(m_packages[node], drone); });
  if (!pick) {
    reason = m_scheduler->ready_count() == 0 ? "no package ready" : "the ready packages wait for other drones";
    return std::nullopt;
  }
  auto& row = m_packages[*pick];
  std::optional<LeaseView> view;
  auto ok = commit([&] {
    const double t = now();
    LeaseRow lease;
    lease.id = random::hex_token(16);
    lease.package = row.id;
    lease.drone = drone.row.id;
    lease.created = t;
    lease.expires = t + m_options.lease_ttl;
    BuildRow build;
    build.package = row.id;
    build.drone = drone.row.id;
    build.lease = lease.id;
    build.started = t;
    build.result = "running";
    m_store.save_build(build);
    lease.build = build.id;
    m_store.save_lease(lease);
    set_pkg_state(row, PkgState::delegated);
    drone.leases.insert(lease.id);
    m_leases[lease.id] = lease;
    add_event("delegated", drone.row.name, row.cpv, fmt::format("lease {}", lease.id.substr(0, 8)));
    view = view_of(lease, row);
  });
  if (!ok) {
    reason = ok.error().message;
    return std::nullopt;
  }
  return view;
}

Result<ClaimReply> Coordinator::claim(const std::string& name, double wait)
{
  std::unique_lock lock(m_mutex);
  if (!find_drone(name)) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  wait = std::clamp(wait, 0.0, m_options.claim_wait);
  const auto deadline =
    std::chrono::steady_clock::now() +
    std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(wait));
  ClaimReply reply;
  while (true) {
    Drone* drone = find_drone(name);
    if (!drone) {
      return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
    }
    if (!drone->row.slots) {
      return fail(ErrorKind::conflict, "drone {} must register before claiming", name);
    }
    reply.lease = try_claim(*drone, reply.reason);
    if (reply.lease || m_shutdown) {
      return reply;
    }
    if (m_changed.wait_until(lock, deadline) == std::cv_status::timeout) {
      drone = find_drone(name);
      if (drone) {
        reply.lease = try_claim(*drone, reply.reason);
      }
      return reply;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Artifacts and reports

Result<UploadTicket> Coordinator::begin_upload(const std::string& lease_id, const std::string& name)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  std::optional<LeaseRow> lease;
  if (auto it = m_leases.find(lease_id); it != m_leases.end()) {
    lease = it->second;
  } else {
    lease = m_store.get_lease(lease_id);
  }
  if (!lease) {
    return fail(ErrorKind::not_found, "unknown lease {}", lease_id);
  }
  if (lease->drone != drone->row.id) {
    return fail(ErrorKind::forbidden, "lease {} belongs to another drone", lease_id);
  }
  const auto* row = find_package(lease->package);
  if (!row) {
    return fail(ErrorKind::conflict, "the package of lease {} is no longer in the plan", lease_id);
  }
  if (lease->state == LeaseState::returned || lease->state == LeaseState::cancelled ||
      lease->state == LeaseState::failed) {
    if (row->state != PkgState::received) {
      return fail(ErrorKind::conflict, "lease {} was {}", lease_id, to_string(lease->state));
    }
  }
  auto cpv = portage::parse_cpv(row->cpv);
  if (!cpv) {
    return fail(ErrorKind::internal, "stored package {} is not a valid cpv", row->cpv);
  }
  return UploadTicket{row->cpv, cpv->category, cpv->package};
}

Result<UploadReply> Coordinator::accept_artifact(const std::string& lease_id, const std::string& name,
                                                 const ArtifactInfo& artifact)
{
  std::unique_lock lock(m_mutex);
  auto discard = [&] {
    std::error_code ec;
    std::filesystem::remove(artifact.incoming_path, ec);
  };
  Drone* drone = find_drone(name);
  std::optional<LeaseRow> stored;
  LeaseRow* lease = nullptr;
  if (auto it = m_leases.find(lease_id); it != m_leases.end()) {
    lease = &it->second;
  } else if ((stored = m_store.get_lease(lease_id))) {
    lease = &*stored;
  }
  if (!drone || !lease || lease->drone != drone->row.id) {
    discard();
    return fail(ErrorKind::forbidden, "lease {} is not this drone's", lease_id);
  }
  PackageRow* row = find_package(lease->package);
  if (!row) {
    discard();
    return fail(ErrorKind::conflict, "the package of lease {} is no longer in the plan", lease_id);
  }
  if (row->state == PkgState::received) {
    discard();
    if (row->sha256 == artifact.sha256) {
      return UploadReply{true, row->artifact_path};
    }
    return fail(ErrorKind::conflict, "{} was already received from another build", row->cpv);
  }
  if (lease->state == LeaseState::returned || lease->state == LeaseState::cancelled ||
      lease->state == LeaseState::failed) {
    discard();
    return fail(ErrorKind::conflict, "lease {} was {}", lease_id, to_string(lease->state));
  }
  if (row->state == PkgState::blocked || row->state == PkgState::dep_failed || !row->in_plan) {
    discard();
    return fail(ErrorKind::conflict, "{} is {} and not wanted now", row->cpv, to_string(row->state));
  }

  const auto final_path = m_options.staging_dir / artifact.relative_path;
  if (auto ok = fs::make_dirs(final_path.parent_path()); !ok) {
    discard();
    return fail(ok.error());
  }
  std::error_code ec;
  std::filesystem::rename(artifact.incoming_path, final_path, ec);
  if (ec) {
    discard();
    return fail(ErrorKind::io, "cannot move the artifact into staging: {}", ec.message());
  }
  (void)fs::fsync_dir(final_path.parent_path());

  auto ok = commit([&] {
    const double t = now();
    row->artifact_path = artifact.relative_path;
    row->sha256 = artifact.sha256;
    row->size = artifact.size;
    row->build_id = artifact.build_id;
    row->received_at = t;
    row->built_by = name;
    row->built_tree_timestamp = drone->row.tree_timestamp;
    row->index_entry = artifact.index_entry.dump();
    row->released_in = 0;
    set_pkg_state(*row, PkgState::received);
    const bool stale = lease->state == LeaseState::expired;
    lease->state = LeaseState::uploaded;
    m_store.save_lease(*lease);
    if (stored) {
      m_leases[lease->id] = *lease;
    }
    add_event("received", name, row->cpv,
              fmt::format("{} ({}){}", artifact.relative_path, strings::human_bytes(artifact.size),
                          stale ? ", from an expired lease" : ""));
    // Anybody else still building it can stop.
    std::vector<std::string> others;
    for (const auto& [id, other] : m_leases) {
      if (id != lease_id && other.package == row->id && other.state != LeaseState::uploaded) {
        others.push_back(id);
      }
    }
    for (const auto& id : others) {
      auto& other = m_leases[id];
      release_lease(other, LeaseState::cancelled, "cancelled", "received from another build");
      for (auto& [drone_name, holder] : m_drones) {
        if (holder.row.id == other.drone) {
          holder.cancel.insert(id);
        }
      }
      m_leases.erase(id);
    }
    ++m_generation;
  });
  if (!ok) {
    std::filesystem::remove(final_path, ec);
    return fail(ok.error());
  }
  lock.unlock();
  m_changed.notify_all();
  return UploadReply{false, artifact.relative_path};
}

Result<json> Coordinator::report(const std::string& lease_id, const std::string& name, const BuildReport& report)
{
  std::unique_lock lock(m_mutex);
  Drone* drone = find_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  std::optional<LeaseRow> stored;
  LeaseRow* lease = nullptr;
  if (auto it = m_leases.find(lease_id); it != m_leases.end()) {
    lease = &it->second;
  } else if ((stored = m_store.get_lease(lease_id))) {
    lease = &*stored;
  }
  if (!lease) {
    return fail(ErrorKind::not_found, "unknown lease {}", lease_id);
  }
  if (lease->drone != drone->row.id) {
    return fail(ErrorKind::forbidden, "lease {} belongs to another drone", lease_id);
  }
  if (lease->state == LeaseState::completed || lease->state == LeaseState::failed) {
    return json{{"accepted", true}, {"duplicate", true}};
  }
  PackageRow* row = find_package(lease->package);
  const std::string cpv = row ? row->cpv : "";

  if (report.success) {
    if (lease->state != LeaseState::uploaded) {
      return fail(ErrorKind::conflict, "no artifact was received for lease {}: upload it before reporting success",
                  lease_id);
    }
    auto ok = commit([&] {
      lease->state = LeaseState::completed;
      m_store.save_lease(*lease);
      m_store.finish_build(lease->build, now(), "success", report.duration, "", report.log_tail);
      drone->leases.erase(lease_id);
      m_leases.erase(lease_id);
      if (row) {
        const double base = expected_seconds(*row);
        auto& samples = m_history[cp_of(row->cpv)];
        samples.push_back(report.duration);
        if (samples.size() > k_history_per_package) {
          samples.erase(samples.begin());
        }
        if (base > 0 && report.duration > 0) {
          drone->speed_samples.push_back(report.duration / base);
          if (drone->speed_samples.size() > k_speed_samples) {
            drone->speed_samples.erase(drone->speed_samples.begin());
          }
        }
      }
      const bool was_probation = drone->breaker.probation() && !drone->operator_grounded;
      drone->breaker.record_success();
      drone->row.consecutive_failures = 0;
      drone->row.probation = false;
      drone->row.grounded_until = drone->operator_grounded ? drone->row.grounded_until : 0;
      m_store.save_drone(drone->row);
      add_event("built", name, cpv, fmt::format("in {}", strings::human_duration(report.duration)));
      if (was_probation) {
        add_event("probation-passed", name, "", "back to full service");
      }
      m_priorities_dirty = true;
    });
    if (!ok) {
      return fail(ok.error());
    }
    lock.unlock();
    m_changed.notify_all();
    return json{{"accepted", true}};
  }

  if (lease->state == LeaseState::uploaded) {
    return fail(ErrorKind::conflict, "lease {} already delivered its artifact; it cannot fail now", lease_id);
  }
  const bool environment = is_environment_failure(report);
  const auto reason = report.reason.empty() ? std::string("build failed") : report.reason;
  auto ok = commit([&] {
    lease->state = LeaseState::failed;
    m_store.save_lease(*lease);
    m_store.finish_build(lease->build, now(), "failure", report.duration, reason, report.log_tail);
    drone->leases.erase(lease_id);
    m_leases.erase(lease_id);
    if (row && row->state != PkgState::received) {
      row->last_failure = reason;
      bool other_active = false; // someone else is building it right now
      for (const auto& [id, other] : m_leases) {
        other_active |= other.package == row->id && other.state == LeaseState::active;
      }
      const bool this_lease_holds_it = row->state == PkgState::delegated && !other_active;
      if (environment) {
        add_event("failed", name, cpv, "drone environment problem (not counted against the package): " + reason);
        if (this_lease_holds_it) {
          set_pkg_state(*row, PkgState::needed);
        }
      } else {
        breaker::PackageBreaker package_breaker(m_options.package_failure_drones);
        const bool block = package_breaker.record_failure(row->failed_on, row->failures, name);
        if (block && !other_active) {
          row->retry_at = now() + m_options.retry_backoff * std::pow(2.0, row->retries);
          set_pkg_state(*row, PkgState::blocked);
          add_event("blocked", name, cpv,
                    fmt::format("failed on {}: {}", strings::join({row->failed_on.begin(), row->failed_on.end()}, ", "),
                                reason));
        } else {
          if (this_lease_holds_it) {
            set_pkg_state(*row, PkgState::needed);
          } else {
            m_store.save_package(*row);
          }
          add_event("failed", name, cpv, reason);
        }
      }
    }
    if (drone->breaker.record_failure(now()) || drone->operator_grounded) {
      if (!drone->operator_grounded) {
        ground(*drone, fmt::format("{} consecutive failures", drone->breaker.consecutive_failures()), false);
      }
    } else {
      drone->row.consecutive_failures = drone->breaker.consecutive_failures();
      m_store.save_drone(drone->row);
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  lock.unlock();
  m_changed.notify_all();
  return json{{"accepted", true}};
}

Result<> Coordinator::return_lease(const std::string& lease_id, const std::string& name)
{
  std::unique_lock lock(m_mutex);
  Drone* drone = find_drone(name);
  auto it = m_leases.find(lease_id);
  if (!drone || it == m_leases.end()) {
    return fail(ErrorKind::not_found, "no open lease {}", lease_id);
  }
  if (it->second.drone != drone->row.id) {
    return fail(ErrorKind::forbidden, "lease {} belongs to another drone", lease_id);
  }
  if (it->second.state == LeaseState::uploaded) {
    return fail(ErrorKind::conflict, "lease {} already delivered its artifact", lease_id);
  }
  auto ok = commit([&] {
    auto lease = it->second;
    release_lease(lease, LeaseState::returned, "returned", "returned by the drone");
    m_leases.erase(lease_id);
    if (auto* row = find_package(lease.package); row && row->state == PkgState::delegated) {
      set_pkg_state(*row, PkgState::needed);
      add_event("returned", name, row->cpv, "handed back unbuilt");
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  lock.unlock();
  m_changed.notify_all();
  return {};
}

Result<std::filesystem::path> Coordinator::log_path(const std::string& lease_id, const std::string& name)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_drone(name);
  std::optional<LeaseRow> lease;
  if (auto it = m_leases.find(lease_id); it != m_leases.end()) {
    lease = it->second;
  } else {
    lease = m_store.get_lease(lease_id);
  }
  if (!drone || !lease) {
    return fail(ErrorKind::not_found, "unknown lease {}", lease_id);
  }
  if (lease->drone != drone->row.id) {
    return fail(ErrorKind::forbidden, "lease {} belongs to another drone", lease_id);
  }
  return m_options.logs_dir / fmt::format("{}.log", lease->build);
}

// ---------------------------------------------------------------------------------------------
// Plan and control

Result<PlanReply> Coordinator::submit_plan(const portage::Plan& plan, PlanMode mode, bool clear_staging)
{
  std::unique_lock lock(m_mutex);
  PlanReply reply;
  std::unordered_map<std::string, size_t> wanted;
  for (size_t i = 0; i < plan.packages.size(); ++i) {
    wanted[plan.packages[i].cpv] = i;
  }
  const bool replace = mode == PlanMode::replace;
  const auto tree_timestamp = replace || m_plan.tree_timestamp.empty() ? plan.tree_timestamp : m_plan.tree_timestamp;

  auto ok = commit([&] {
    auto cancel_leases_of = [&](const PackageRow& row, const std::string& why) {
      std::vector<std::string> ids;
      for (const auto& [id, lease] : m_leases) {
        if (lease.package == row.id && lease.state != LeaseState::uploaded) {
          ids.push_back(id);
        }
      }
      for (const auto& id : ids) {
        auto lease = m_leases[id];
        release_lease(lease, LeaseState::cancelled, "cancelled", why);
        for (auto& [name, drone] : m_drones) {
          if (drone.row.id == lease.drone) {
            drone.cancel.insert(id);
          }
        }
        m_leases.erase(id);
      }
    };

    // Packages the new plan no longer holds.
    std::vector<PackageRow> rows;
    for (auto& row : m_packages) {
      if (wanted.count(row.cpv) || !replace) {
        rows.push_back(row);
        continue;
      }
      cancel_leases_of(row, "no longer in the plan");
      if (!row.artifact_path.empty() && !clear_staging) {
        if (row.in_plan) {
          row.in_plan = false;
          m_store.save_package(row);
          reply.changed = true;
        }
        rows.push_back(row);
        continue;
      }
      delete_artifact(row);
      m_store.delete_package(row.id);
      ++reply.removed;
      reply.changed = true;
    }

    // Packages of the new plan: new ones, unchanged ones, and ones built differently.
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < rows.size(); ++i) {
      index[rows[i].cpv] = i;
    }
    for (size_t i = 0; i < plan.packages.size(); ++i) {
      const auto& pkg = plan.packages[i];
      auto use = pkg.use;
      std::sort(use.begin(), use.end());
      auto it = index.find(pkg.cpv);
      if (it == index.end()) {
        PackageRow row;
        row.cpv = pkg.cpv;
        row.slot = pkg.slot;
        row.repo = pkg.repo;
        row.use = use;
        row.plan_seconds = pkg.build_seconds;
        row.plan_position = static_cast<int64_t>(i);
        m_store.save_package(row);
        rows.push_back(row);
        index[pkg.cpv] = rows.size() - 1;
        ++reply.added;
        reply.changed = true;
        continue;
      }
      auto& row = rows[it->second];
      auto row_use = row.use;
      std::sort(row_use.begin(), row_use.end());
      const bool same = row.slot == pkg.slot && row.repo == pkg.repo && row_use == use;
      const bool stale = !row.artifact_path.empty() && !tree_timestamp.empty() && !row.built_tree_timestamp.empty() &&
                         row.built_tree_timestamp != tree_timestamp;
      bool touched = false;
      if (!same || stale) {
        cancel_leases_of(row, same ? "built from another tree" : "USE, slot or repo changed");
        delete_artifact(row);
        row.slot = pkg.slot;
        row.repo = pkg.repo;
        row.use = use;
        row.state = PkgState::needed;
        row.failures = 0;
        row.failed_on.clear();
        row.last_failure.clear();
        ++reply.reset;
        touched = true;
      } else {
        ++reply.kept;
      }
      if (!row.in_plan || (replace && row.plan_position != static_cast<int64_t>(i)) ||
          (pkg.build_seconds > 0 && row.plan_seconds != pkg.build_seconds)) {
        row.in_plan = true;
        if (replace) {
          row.plan_position = static_cast<int64_t>(i);
        }
        if (pkg.build_seconds > 0) {
          row.plan_seconds = pkg.build_seconds;
        }
        touched = true;
      }
      if (touched) {
        m_store.save_package(row);
        reply.changed = true;
      }
    }

    // Edges, by package id.
    std::unordered_map<std::string, int64_t> id_of;
    for (const auto& row : rows) {
      id_of[row.cpv] = row.id;
    }
    std::set<std::tuple<int64_t, int64_t, std::string>> edge_set;
    if (!replace) {
      for (const auto& edge : m_edges) {
        edge_set.emplace(edge.package, edge.needs, edge.kind);
      }
    }
    for (const auto& edge : plan.edges) {
      auto from = id_of.find(edge.package);
      auto to = id_of.find(edge.needs);
      if (from != id_of.end() && to != id_of.end()) {
        edge_set.emplace(from->second, to->second, kind_name(edge.kind));
      }
    }
    std::vector<EdgeRow> edges;
    for (const auto& [from, to, kind] : edge_set) {
      edges.push_back({from, to, kind});
    }
    auto same_edges = [&] {
      if (edges.size() != m_edges.size()) {
        return false;
      }
      for (size_t i = 0; i < edges.size(); ++i) {
        if (edges[i].package != m_edges[i].package || edges[i].needs != m_edges[i].needs ||
            edges[i].kind != m_edges[i].kind) {
          return false;
        }
      }
      return true;
    }();
    if (!same_edges) {
      m_store.replace_edges(edges);
      reply.changed = true;
    }

    PlanInfo info = m_plan;
    if (replace) {
      info.source = plan.source;
      info.tree_timestamp = plan.tree_timestamp;
      info.profile = plan.profile;
      info.merge_order = plan.merge_order;
    } else if (info.source.empty()) {
      info.source = plan.source;
      info.tree_timestamp = plan.tree_timestamp;
      info.profile = plan.profile;
    }
    if (info.source != m_plan.source || info.tree_timestamp != m_plan.tree_timestamp ||
        info.profile != m_plan.profile || info.merge_order != m_plan.merge_order) {
      reply.changed = true;
    }
    if (reply.changed) {
      info.submitted_at = now();
      m_store.set_meta("plan.source", info.source);
      m_store.set_meta("plan.tree_timestamp", info.tree_timestamp);
      m_store.set_meta("plan.profile", info.profile);
      m_store.set_meta("plan.merge_order", info.merge_order ? "1" : "0");
      m_store.set_meta("plan.submitted_at", fmt::format("{}", info.submitted_at));
      m_plan = info;
      std::sort(rows.begin(), rows.end(), [](const PackageRow& a, const PackageRow& b) { return a.id < b.id; });
      m_packages = std::move(rows);
      m_edges = std::move(edges);
      rebuild_graph();
      add_event(replace ? "plan" : "plan-add", "", "",
                fmt::format("{} packages: {} added, {} removed, {} rebuilt, {} kept", m_packages.size(), reply.added,
                            reply.removed, reply.reset, reply.kept));
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  reply.packages = m_packages.size();
  reply.warnings = m_warnings;
  lock.unlock();
  m_changed.notify_all();
  return reply;
}

// Cancels an open lease (its drone is told on its next heartbeat) and puts the package back in
// the queue. Returns the package when it went back to `needed`. Inside a commit().
PackageRow* Coordinator::cancel_and_requeue(const std::string& lease_id, const std::string& reason)
{
  auto lease = m_leases[lease_id];
  release_lease(lease, LeaseState::cancelled, "cancelled", reason);
  for (auto& [name, drone] : m_drones) {
    if (drone.row.id == lease.drone) {
      drone.cancel.insert(lease_id);
    }
  }
  m_leases.erase(lease_id);
  auto* row = find_package(lease.package);
  if (row == nullptr || row->state != PkgState::delegated) {
    return nullptr;
  }
  set_pkg_state(*row, PkgState::needed);
  return row;
}

Result<json> Coordinator::control(const std::string& action, const json& args)
{
  std::unique_lock lock(m_mutex);
  json result{{"action", action}};
  auto names_from = [&](const char* key) {
    std::vector<std::string> out;
    if (args.contains(key) && args[key].is_array()) {
      for (const auto& item : args[key]) {
        if (item.is_string()) {
          out.push_back(item.get<std::string>());
        }
      }
    }
    return out;
  };
  auto drone_arg = [&]() -> Result<Drone*> {
    const auto name = args.value("drone", std::string());
    Drone* drone = find_drone(name);
    if (!drone) {
      return fail(ErrorKind::not_found, "no drone named '{}'", name);
    }
    return drone;
  };

  Result<> ok;
  if (action == "pause" || action == "resume") {
    const bool pause = action == "pause";
    ok = commit([&] {
      if (m_paused != pause) {
        m_paused = pause;
        m_store.set_meta("paused", pause ? "1" : "0");
        add_event(action, "", "", "by the operator");
      }
    });
    result["paused"] = m_paused;
  } else if (action == "reset") {
    size_t returned = 0;
    ok = commit([&] {
      std::vector<std::string> ids;
      for (const auto& [id, lease] : m_leases) {
        if (lease.state != LeaseState::uploaded) {
          ids.push_back(id);
        }
      }
      for (const auto& id : ids) {
        if (cancel_and_requeue(id, "reset by the operator")) {
          ++returned;
        }
      }
      add_event("reset", "", "", fmt::format("{} packages back in the queue", returned));
    });
    result["returned"] = returned;
  } else if (action == "unblock" || action == "retry") {
    const auto wanted = names_from("packages");
    std::vector<std::string> done;
    for (const auto& cpv : wanted) {
      const auto* row = find_package(cpv);
      if (!row) {
        return fail(ErrorKind::not_found, "no package {} in the plan", cpv);
      }
      if (row->state != PkgState::blocked) {
        return fail(ErrorKind::conflict, "{} is {}, not blocked", cpv, to_string(row->state));
      }
    }
    ok = commit([&] {
      for (auto& row : m_packages) {
        if (row.state != PkgState::blocked) {
          continue;
        }
        if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), row.cpv) == wanted.end()) {
          continue;
        }
        row.failures = 0;
        row.failed_on.clear();
        set_pkg_state(row, PkgState::needed);
        add_event("unblocked", "", row.cpv, "by the operator");
        done.push_back(row.cpv);
      }
    });
    result["unblocked"] = done;
  } else if (action == "ground" || action == "unground") {
    auto drone = drone_arg();
    if (!drone) {
      return fail(drone.error());
    }
    ok = commit([&] {
      if (action == "ground") {
        ground(**drone, "by the operator", true);
      } else {
        (*drone)->operator_grounded = false;
        (*drone)->breaker.reset();
        (*drone)->row.grounded_until = 0;
        (*drone)->row.probation = false;
        (*drone)->row.consecutive_failures = 0;
        m_store.save_drone((*drone)->row);
        add_event("ungrounded", (*drone)->row.name, "", "by the operator");
      }
    });
    result["drone"] = (*drone)->row.name;
  } else if (action == "balance") {
    // Work held by drones that cannot make progress (offline, grounded, silent for two
    // heartbeats) goes back to the queue, where idle drones' long-polls pick it up at once.
    std::vector<std::string> moved;
    ok = commit([&] {
      const double t = now();
      std::vector<std::string> ids;
      for (const auto& [id, lease] : m_leases) {
        if (lease.state != LeaseState::active) {
          continue;
        }
        for (const auto& [name, drone] : m_drones) {
          if (drone.row.id != lease.drone) {
            continue;
          }
          const bool stuck = !drone.row.online || drone.operator_grounded ||
                             drone.breaker.state(t) == breaker::BreakerState::open ||
                             drone.row.last_seen < t - 2 * m_options.heartbeat_interval;
          if (stuck) {
            ids.push_back(id);
          }
        }
      }
      for (const auto& id : ids) {
        if (const auto* row = cancel_and_requeue(id, "rebalanced")) {
          add_event("rebalanced", "", row->cpv, "taken from a drone that cannot make progress");
          moved.push_back(row->cpv);
        }
      }
    });
    result["moved"] = moved;
  } else {
    return fail(ErrorKind::invalid,
                "unknown action '{}' (pause, resume, reset, unblock, retry, ground, unground, balance)", action);
  }
  if (!ok) {
    return fail(ok.error());
  }
  lock.unlock();
  m_changed.notify_all();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Periodic work

void Coordinator::tick()
{
  std::unique_lock lock(m_mutex);
  const double t = now();
  std::vector<std::string> expired;
  std::vector<std::string> unreported;
  std::vector<std::string> forgotten;
  for (const auto& [id, lease] : m_leases) {
    if (lease.state == LeaseState::active && lease.expires < t) {
      expired.push_back(id);
    } else if (lease.state == LeaseState::uploaded && lease.expires + m_options.lease_ttl < t) {
      unreported.push_back(id);
    } else if (lease.state == LeaseState::expired && lease.expires + k_expired_lease_memory < t) {
      forgotten.push_back(id);
    }
  }
  bool changed = false;
  if (!expired.empty() || !unreported.empty()) {
    changed = true;
    (void)commit([&] {
      for (const auto& id : expired) {
        auto& lease = m_leases[id];
        lease.state = LeaseState::expired;
        m_store.save_lease(lease);
        m_store.finish_build(lease.build, t, "expired", t - lease.created, "lease expired without heartbeats", "");
        std::string drone_name;
        for (auto& [name, drone] : m_drones) {
          if (drone.row.id == lease.drone) {
            drone.leases.erase(id);
            drone_name = name;
          }
        }
        if (auto* row = find_package(lease.package); row && row->state == PkgState::delegated) {
          bool other_active = false;
          for (const auto& [other_id, other] : m_leases) {
            other_active |= other_id != id && other.package == row->id && other.state == LeaseState::active;
          }
          if (!other_active) {
            set_pkg_state(*row, PkgState::needed);
          }
          add_event("expired", drone_name, row->cpv, "lease expired; back in the queue");
        }
      }
      for (const auto& id : unreported) {
        auto lease = m_leases[id];
        release_lease(lease, LeaseState::completed, "success", "artifact received; the drone never reported");
        m_leases.erase(id);
      }
    });
  }
  for (const auto& id : forgotten) {
    m_leases.erase(id);
  }
  if (m_priorities_dirty) {
    refresh_priorities();
  }
  // A grounded drone whose cool-down is over gets its probation package: wake the claims.
  for (auto& [name, drone] : m_drones) {
    if (!drone.operator_grounded && drone.breaker.probation() && !drone.probation_announced &&
        drone.breaker.state(t) == breaker::BreakerState::half_open) {
      drone.probation_announced = true;
      (void)commit([&] { add_event("probation", name, "", "cool-down over: one package on probation"); });
      changed = true;
    }
  }
  lock.unlock();
  if (changed) {
    m_changed.notify_all();
  }
}

void Coordinator::maintenance()
{
  std::unique_lock lock(m_mutex);
  const double t = now();
  bool changed = false;
  (void)commit([&] {
    for (auto& [name, drone] : m_drones) {
      if (!drone.row.online || drone.row.last_seen >= t - m_options.drone_timeout) {
        continue;
      }
      drone.row.online = false;
      m_store.save_drone(drone.row);
      add_event("offline", name, "", fmt::format("silent for {}", strings::human_duration(t - drone.row.last_seen)));
      const auto held = drone.leases;
      for (const auto& id : held) {
        auto it = m_leases.find(id);
        if (it == m_leases.end() || it->second.state != LeaseState::active) {
          continue;
        }
        auto& lease = it->second;
        lease.state = LeaseState::expired;
        m_store.save_lease(lease);
        m_store.finish_build(lease.build, t, "expired", t - lease.created, "drone went offline", "");
        drone.leases.erase(id);
        if (auto* row = find_package(lease.package); row && row->state == PkgState::delegated) {
          set_pkg_state(*row, PkgState::needed);
          add_event("reclaimed", name, row->cpv, "drone offline");
        }
      }
      changed = true;
    }
    if (m_options.auto_retry) {
      for (auto& row : m_packages) {
        if (row.state == PkgState::blocked && row.retry_at > 0 && row.retry_at <= t) {
          ++row.retries;
          row.failures = 0;
          row.failed_on.clear();
          row.retry_at = 0;
          set_pkg_state(row, PkgState::needed);
          add_event("auto-retry", "", row.cpv, fmt::format("retry {}", row.retries));
          changed = true;
        }
      }
    }
  });
  lock.unlock();
  if (changed) {
    m_changed.notify_all();
  }
}

// ---------------------------------------------------------------------------------------------
// Views

bool Coordinator::paused()
{
  std::lock_guard lock(m_mutex);
  return m_paused;
}

json Coordinator::drone_json(const Drone& drone)
{
  const double t = now();
  int running = 0;
  json leases = json::array();
  for (const auto& id : drone.leases) {
    auto it = m_leases.find(id);
    if (it == m_leases.end()) {
      continue;
    }
    if (it->second.state == LeaseState::active) {
      ++running;
    }
    const auto* row = find_package(it->second.package);
    leases.push_back({{"id", id},
                      {"cpv", row ? row->cpv : ""},
                      {"state", to_string(it->second.state)},
                      {"started", it->second.created},
                      {"expires", it->second.expires}});
  }
  std::string state = drone.row.online ? "online" : "offline";
  const auto breaker_state = drone.breaker.state(t);
  if (drone.operator_grounded || breaker_state == breaker::BreakerState::open) {
    state = "grounded";
  } else if (breaker_state == breaker::BreakerState::half_open && drone.row.online) {
    state = "probation";
  }
  if (drone.row.slots == 0) {
    state = "enrolled";
  }
  return json{{"name", drone.row.name},
              {"state", state},
              {"online", drone.row.online},
              {"reason", drone_block_reason(drone)},
              {"cores", drone.row.cores},
              {"slots", drone.row.slots},
              {"running", running},
              {"leases", leases},
              {"ram_bytes", drone.row.ram_bytes},
              {"disk_free_bytes", drone.row.disk_free_bytes},
              {"tree_timestamp", drone.row.tree_timestamp},
              {"tree_matches", m_plan.tree_timestamp.empty() || drone.row.tree_timestamp == m_plan.tree_timestamp},
              {"version", drone.row.version},
              {"last_seen", drone.row.last_seen},
              {"cpu_percent", drone.row.cpu_percent},
              {"mem_percent", drone.row.mem_percent},
              {"load1", drone.row.load1},
              {"consecutive_failures", drone.breaker.consecutive_failures()},
              {"grounded_until", drone.operator_grounded ? 0.0 : drone.breaker.open_until()},
              {"grounded_by_operator", drone.operator_grounded},
              {"speed", drone_speed(drone)}};
}

json Coordinator::package_json(const PackageRow& row) const
{
  json out{{"cpv", row.cpv},
           {"slot", row.slot},
           {"repo", row.repo},
           {"use", row.use},
           {"state", to_string(row.state)},
           {"in_plan", row.in_plan},
           {"expected_seconds", expected_seconds(row)},
           {"failures", row.failures},
           {"failed_on", row.failed_on},
           {"last_failure", row.last_failure}};
  if (auto it = m_by_cpv.find(row.cpv); it != m_by_cpv.end() && m_scheduler) {
    out["ready"] = m_scheduler->is_ready(it->second);
    out["waiting_for"] = m_scheduler->pending(it->second);
    out["priority"] = m_scheduler->priority(it->second);
  }
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

json Coordinator::status()
{
  std::lock_guard lock(m_mutex);
  std::map<std::string, size_t> counts{{"needed", 0}, {"ready", 0},   {"delegated", 0},  {"received", 0},
                                       {"failed", 0}, {"blocked", 0}, {"dep-failed", 0}, {"total", 0}};
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    const auto& row = m_packages[node];
    if (!row.in_plan) {
      continue;
    }
    ++counts["total"];
    ++counts[std::string(to_string(row.state))];
    if (m_scheduler->is_ready(node)) {
      ++counts["ready"];
    }
    if (row.state == PkgState::needed && row.failures > 0) {
      ++counts["failed"];
    }
  }
  // The operator's words for the protocol's states.
  counts["building"] = counts["delegated"];
  counts["complete"] = counts["received"];
  json drones = json::array();
  for (const auto& [name, drone] : m_drones) {
    drones.push_back(drone_json(drone));
  }
  return json{{"paused", m_paused},
              {"counts", counts},
              {"plan",
               {{"source", m_plan.source},
                {"tree_timestamp", m_plan.tree_timestamp},
                {"profile", m_plan.profile},
                {"merge_order", m_plan.merge_order},
                {"submitted_at", m_plan.submitted_at},
                {"edges", m_edges.size()},
                {"warnings", m_warnings}}},
              {"drones", drones},
              {"last_event", m_store.last_event_id()}};
}

json Coordinator::drones_view()
{
  std::lock_guard lock(m_mutex);
  json out = json::array();
  for (const auto& [name, drone] : m_drones) {
    out.push_back(drone_json(drone));
  }
  return out;
}

json Coordinator::packages_view(const std::string& state_filter)
{
  std::lock_guard lock(m_mutex);
  json out = json::array();
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    const auto& row = m_packages[node];
    if (!state_filter.empty()) {
      const bool match = state_filter == to_string(row.state) ||
                         (state_filter == "ready" && m_scheduler->is_ready(node)) ||
                         (state_filter == "failed" && row.state == PkgState::needed && row.failures > 0) ||
                         (state_filter == "building" && row.state == PkgState::delegated) ||
                         (state_filter == "complete" && row.state == PkgState::received);
      if (!match) {
        continue;
      }
    }
    out.push_back(package_json(row));
  }
  return out;
}

Result<json> Coordinator::package_view(const std::string& cpv)
{
  std::lock_guard lock(m_mutex);
  const auto* row = find_package(cpv);
  if (!row) {
    return fail(ErrorKind::not_found, "no package {}", cpv);
  }
  auto out = package_json(*row);
  const auto node = m_by_cpv.at(cpv);
  json needs = json::array();
  for (const auto& edge : m_graph.needs(node)) {
    needs.push_back({{"cpv", m_packages[edge.to].cpv},
                     {"kind", edge.strength == dag::Strength::build ? "build" : "runtime-closure"},
                     {"state", to_string(m_packages[edge.to].state)}});
  }
  json dependants = json::array();
  for (auto dependant : m_graph.dependants(node)) {
    dependants.push_back(m_packages[dependant].cpv);
  }
  out["needs"] = needs;
  out["dependants"] = dependants;
  out["transitive_dependants"] = m_graph.transitive_dependants(node).size();
  json plan_edges = json::array();
  for (const auto& edge : m_edges) {
    if (edge.package == row->id) {
      if (const auto* dep = find_package(edge.needs)) {
        plan_edges.push_back({{"needs", dep->cpv}, {"kind", edge.kind}});
      }
    }
  }
  out["plan_edges"] = plan_edges;
  json warnings = json::array();
  for (const auto& warning : m_warnings) {
    if (warning.find(cpv + " ") != std::string::npos) {
      warnings.push_back(warning);
    }
  }
  out["warnings"] = warnings;
  json builds = json::array();
  for (const auto& build : m_store.list_builds(row->id, 0, 20)) {
    std::string drone_name;
    for (const auto& [name, drone] : m_drones) {
      if (drone.row.id == build.drone) {
        drone_name = name;
      }
    }
    builds.push_back({{"id", build.id},
                      {"drone", drone_name},
                      {"started", build.started},
                      {"ended", build.ended},
                      {"result", build.result},
                      {"duration", build.duration},
                      {"reason", build.reason},
                      {"log_tail", build.log_tail}});
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

json Coordinator::builds_view(const std::string& package, const std::string& drone_name, size_t limit)
{
  std::lock_guard lock(m_mutex);
  int64_t package_id = 0;
  int64_t drone_id = 0;
  if (!package.empty()) {
    const auto* row = find_package(package);
    package_id = row ? row->id : -1;
  }
  if (!drone_name.empty()) {
    const auto* drone = find_drone(drone_name);
    drone_id = drone ? drone->row.id : -1;
  }
  json out = json::array();
  for (const auto& build : m_store.list_builds(package_id, drone_id, limit)) {
    std::string cpv;
    if (const auto* row = find_package(build.package)) {
      cpv = row->cpv;
    }
    std::string name;
    for (const auto& [n, d] : m_drones) {
      if (d.row.id == build.drone) {
        name = n;
      }
    }
    out.push_back({{"id", build.id},
                   {"package", cpv},
                   {"drone", name},
                   {"started", build.started},
                   {"ended", build.ended},
                   {"result", build.result},
                   {"duration", build.duration},
                   {"reason", build.reason}});
  }
  return out;
}

Result<std::filesystem::path> Coordinator::latest_log(const std::string& package, const std::string& drone)
{
  std::lock_guard lock(m_mutex);
  int64_t package_id = 0;
  int64_t drone_id = 0;
  if (!package.empty()) {
    const auto* row = find_package(package);
    if (!row) {
      return fail(ErrorKind::not_found, "no package {}", package);
    }
    package_id = row->id;
  }
  if (!drone.empty()) {
    const auto* d = find_drone(drone);
    if (!d) {
      return fail(ErrorKind::not_found, "no drone {}", drone);
    }
    drone_id = d->row.id;
  }
  const auto builds = m_store.list_builds(package_id, drone_id, 1);
  if (builds.empty()) {
    return fail(ErrorKind::not_found, "no build yet");
  }
  return m_options.logs_dir / fmt::format("{}.log", builds.front().id);
}

std::pair<std::string, int64_t> Coordinator::staging_index()
{
  std::lock_guard lock(m_mutex);
  if (m_index_generation == m_generation && !m_index_text.empty()) {
    return {m_index_text, m_index_timestamp};
  }
  portage::PackagesIndex index;
  for (const auto& row : m_packages) {
    if (row.state != PkgState::received || row.index_entry.empty()) {
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
  m_index_timestamp = std::max(wall, m_index_timestamp + 1);
  m_index_text = portage::write_packages_index(index, {m_index_timestamp});
  m_index_generation = m_generation;
  return {m_index_text, m_index_timestamp};
}

std::vector<PackageRow> Coordinator::received_packages()
{
  std::lock_guard lock(m_mutex);
  std::vector<PackageRow> out;
  for (const auto& row : m_packages) {
    if (!row.artifact_path.empty()) {
      out.push_back(row);
    }
  }
  return out;
}

} // namespace swarm::roles::orch

namespace swarm::roles::orch {

Result<LeaseView> Coordinator::lease_package(const std::string& name, const std::string& cpv)
{
  std::unique_lock lock(m_mutex);
  Drone* drone = find_drone(name);
  if (!drone) {
    return fail(ErrorKind::not_found, "drone {} is not enrolled", name);
  }
  PackageRow* row = find_package(cpv);
  if (!row || !row->in_plan) {
    return fail(ErrorKind::not_found, "no package {} in the plan", cpv);
  }
  if (row->state == PkgState::received) {
    return fail(ErrorKind::conflict, "{} is already built ({})", cpv, row->artifact_path);
  }
  if (row->state == PkgState::delegated) {
    return fail(ErrorKind::conflict, "{} is being built by a drone right now (`swarm reset` returns it first)", cpv);
  }
  std::optional<LeaseView> view;
  auto ok = commit([&] {
    const double t = now();
    const auto before = to_string(row->state);
    LeaseRow lease;
    lease.id = random::hex_token(16);
    lease.package = row->id;
    lease.drone = drone->row.id;
    lease.created = t;
    lease.expires = t + m_options.lease_ttl;
    BuildRow build;
    build.package = row->id;
    build.drone = drone->row.id;
    build.lease = lease.id;
    build.started = t;
    build.result = "running";
    m_store.save_build(build);
    lease.build = build.id;
    m_store.save_lease(lease);
    // A blocked package leaves blocked here, which also restores its dependants.
    row->failures = 0;
    row->failed_on.clear();
    set_pkg_state(*row, PkgState::delegated);
    drone->leases.insert(lease.id);
    m_leases[lease.id] = lease;
    add_event("delegated", name, row->cpv,
              fmt::format("lease {} by the operator (was {})", lease.id.substr(0, 8), before));
    view = view_of(lease, *row);
  });
  if (!ok) {
    return fail(ok.error());
  }
  lock.unlock();
  m_changed.notify_all();
  return *view;
}

} // namespace swarm::roles::orch

namespace swarm::roles::orch {

Coordinator::Snapshot Coordinator::snapshot()
{
  std::lock_guard lock(m_mutex);
  return Snapshot{m_packages, m_edges, m_plan};
}

} // namespace swarm::roles::orch
