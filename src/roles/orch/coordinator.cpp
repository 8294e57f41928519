// The coordinator's front: loading, transactions, the shared transition steps (states, events,
// the one end of a lease, grounding) and the periodic work. Drones, leases and control
// transitions are in coordinator_*.cpp, the views in views.cpp.
#include "roles/orch/coordinator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "roles/orch/profiles.hpp"

#include <nlohmann/json.hpp>

namespace swarm::roles::orch {

namespace {

constexpr double k_expired_lease_memory = 86400; // how long a late result is still awaited
constexpr double k_operator_grounded_until = 1e18;

} // namespace

Coordinator::Coordinator(Store& store, CoordinatorOptions options)
    : m_store(store), m_options(std::move(options)), m_plan(m_options.default_build_seconds),
      m_drones(m_options.drone_failure_limit, m_options.ground_cooldown), m_tokens(m_options.token_refresh)
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
  announce_news();
}

uint64_t Coordinator::news()
{
  std::lock_guard lock(m_news_mutex);
  return m_news;
}

uint64_t Coordinator::wait_news(uint64_t seen, double seconds)
{
  std::unique_lock lock(m_news_mutex);
  m_news_changed.wait_for(lock, std::chrono::duration<double>(std::max(0.0, seconds)), [&] { return m_news != seen; });
  return m_news;
}

void Coordinator::announce_news()
{
  {
    std::lock_guard lock(m_news_mutex);
    ++m_news;
  }
  m_news_changed.notify_all();
}

Result<> Coordinator::ready()
{
  std::lock_guard lock(m_mutex);
  if (!m_loaded) {
    return fail(ErrorKind::unavailable, "the state is not loaded yet");
  }
  if (m_shutdown) {
    return fail(ErrorKind::unavailable, "shutting down");
  }
  if (m_stale) {
    return fail(ErrorKind::unavailable, "the state must be reloaded after a failed transaction");
  }
  try {
    (void)m_store.get_meta("orch_id");
  } catch (const std::exception& e) {
    return fail(ErrorKind::unavailable, "the state database does not answer: {}", e.what());
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Loading and transactions

std::vector<DepFlip> Coordinator::read_state()
{
  m_paused = m_store.get_meta("paused").value_or("0") == "1";
  auto flips = m_plan.assign(m_store.load_plans(), m_store.load_packages(), m_store.load_edges());
  m_plan.load_history(m_store.load_success_durations());
  m_build_profiles.clear();

  auto rows = m_store.load_drones();
  DroneTokens::Snapshot tokens;
  tokens.generation = m_store.get_meta("drones.generation").value_or("");
  for (const auto& row : rows) {
    tokens.tokens.emplace_back(row.token_hash, row.name);
  }
  m_drones.assign(std::move(rows));
  m_tokens.replace(std::move(tokens));
  {
    std::map<std::string, TokenRow> readers;
    for (auto& row : m_store.load_tokens()) {
      auto hash = row.token_hash;
      readers.emplace(std::move(hash), std::move(row));
    }
    std::unique_lock reader_lock(m_reader_mutex);
    m_reader_tokens = std::move(readers);
  }

  m_leases.clear();
  for (auto& lease : m_store.load_open_leases()) {
    if (auto* drone = m_drones.find(lease.drone); drone && lease.state != LeaseState::expired) {
      drone->leases.insert(lease.id);
    }
    m_leases.put(lease);
  }
  ++m_generation;
  return flips;
}

Result<> Coordinator::load(LoadMode mode)
{
  std::lock_guard lock(m_mutex);
  std::vector<DepFlip> flips;
  try {
    flips = read_state();
  } catch (const std::exception& e) {
    return fail(ErrorKind::io, "cannot load state: {}", e.what());
  }
  m_loaded = true;
  if (mode == LoadMode::inspect) {
    return {};
  }
  return transact([&](Transition& tx) {
    save_flips(tx, flips);
    const double t = now();
    // Drones could not reach a dead orchestrator: count their silence from now, or the first
    // maintenance would take them offline and reclaim their leases.
    for (auto& [name, drone] : m_drones.all()) {
      if (drone.row.online && drone.row.last_seen < t) {
        drone.row.last_seen = t;
        m_store.save_drone(drone.row);
      }
    }
    for (const auto& id : m_leases.select([](const LeaseRow& lease) { return lease.state == LeaseState::active; })) {
      auto* lease = m_leases.find(id);
      lease->expires = std::max(lease->expires, t + m_options.lease_ttl);
      m_store.save_lease(*lease);
    }
  });
}

void Coordinator::reload_after_failure()
{
  try {
    const auto flips = read_state();
    m_stale = false;
    if (!flips.empty()) {
      // The database disagreed with itself (a blocked package's dependants): write what it implies.
      (void)m_store.transaction([&] {
        for (const auto& flip : flips) {
          m_store.save_package(*flip.row);
        }
      });
    }
  } catch (const std::exception& e) {
    LOG_ERROR("cannot reload the state after a failed transaction: {}", e.what());
    m_stale = true;
  }
}

Result<> Coordinator::ensure_fresh()
{
  if (m_stale) {
    reload_after_failure();
    if (m_stale) {
      return fail(ErrorKind::io, "the state database cannot be read");
    }
  }
  return {};
}

Result<> Coordinator::transact(const std::function<void(Transition&)>& body)
{
  if (auto fresh = ensure_fresh(); !fresh) {
    return fresh;
  }
  Transition tx;
  Result<> committed;
  try {
    committed = m_store.transaction([&] { body(tx); });
  } catch (...) {
    // Not an error of the store (Fatal from a check, a bug): SQLite rolled back; so does memory.
    reload_after_failure();
    throw;
  }
  if (!committed) {
    LOG_ERROR("state transition rolled back: {}", committed.error().message);
    reload_after_failure();
    return committed;
  }
  for (const auto& row : tx.events) {
    std::string subject = row.package;
    if (!row.drone.empty()) {
      subject += subject.empty() ? "drone " + row.drone : " on " + row.drone;
    }
    LOG_INFO("{}{}{}", row.kind, subject.empty() ? "" : " " + subject, row.detail.empty() ? "" : ": " + row.detail);
    if (m_options.on_event) {
      m_options.on_event(row);
    }
  }
  for (const auto& effect : tx.after_commit) {
    effect();
  }
  if (tx.staging_changed) {
    ++m_generation;
  }
  if (tx.wake) {
    m_last_wake = std::chrono::steady_clock::now();
    m_changed.notify_all();
  }
  if (!tx.events.empty()) {
    announce_news();
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Transition steps

void Coordinator::event(Transition& tx, const std::string& kind, const std::string& drone, const std::string& package,
                        const std::string& detail)
{
  EventRow row{0, now(), kind, drone, package, detail};
  m_store.add_event(row);
  tx.events.push_back(std::move(row));
}

void Coordinator::save_flips(Transition& tx, const std::vector<DepFlip>& flips)
{
  for (const auto& flip : flips) {
    m_store.save_package(*flip.row);
    if (flip.failed) {
      event(tx, "dep-failed", "", flip.row->cpv, "a dependency is blocked");
    } else {
      event(tx, "dep-restored", "", flip.row->cpv, "no dependency is blocked any more");
    }
  }
}

void Coordinator::set_state(Transition& tx, PackageRow& row, PkgState state)
{
  const auto flips = m_plan.set_state(row, state);
  m_store.save_package(row);
  save_flips(tx, flips);
  tx.wake = true;
}

void Coordinator::remove_artifact_after_commit(Transition& tx, const std::string& profile,
                                               const std::string& relative_path)
{
  if (relative_path.empty()) {
    return;
  }
  // Only once the database no longer names it: a crash in between leaves an orphan file (verify
  // reports it, maintenance removes it), never a record without its file.
  tx.after_commit.push_back([path = staging_dir(profile) / relative_path] {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  });
  tx.staging_changed = true;
}

// The one way a lease ends. Builds get their result, the drone forgets the lease (and is told
// to stop a cancelled one), an expired lease stays open for a late result, and the package goes
// back to the queue when asked and nobody else is building it.
Coordinator::Ended Coordinator::end_lease(Transition& tx, LeaseRow lease, LeaseEnd how, const std::string& reason,
                                          Requeue requeue, double duration, const std::string& log_tail)
{
  const double t = now();
  lease.state = lease_state_of(how);
  m_store.save_lease(lease);
  m_store.finish_build(lease.build, t, build_result_of(how),
                       duration >= 0 ? duration : std::max(0.0, t - lease.created), reason, log_tail);
  if (auto* drone = m_drones.find(lease.drone)) {
    drone->leases.erase(lease.id);
    if (how == LeaseEnd::cancelled) {
      tx.after_commit.push_back([this, drone_id = lease.drone, id = lease.id] {
        if (auto* holder = m_drones.find(drone_id)) {
          holder->cancel.insert(id);
        }
      });
    }
  }
  if (how == LeaseEnd::expired) {
    m_leases.put(lease);
  } else {
    m_leases.erase(lease.id);
  }
  Ended ended;
  ended.package = m_plan.find(lease.package);
  ended.held =
    ended.package && ended.package->state == PkgState::delegated && !m_leases.other_active(lease.package, lease.id);
  if (ended.held && requeue == Requeue::yes) {
    set_state(tx, *ended.package, PkgState::needed);
  }
  tx.wake = true;
  return ended;
}

void Coordinator::ground_drone(Transition& tx, Drone& drone, const std::string& reason, bool by_operator)
{
  if (by_operator) {
    drone.operator_grounded = true;
    drone.row.grounded_until = k_operator_grounded_until;
    drone.row.probation = false;
    // As a load from the store would set it: open until the operator says otherwise.
    drone.breaker.restore(drone.breaker.consecutive_failures(), drone.row.grounded_until, false);
  } else {
    drone.breaker.trip(now());
    drone.row.grounded_until = drone.breaker.open_until();
    drone.row.probation = drone.breaker.probation();
  }
  drone.row.consecutive_failures = drone.breaker.consecutive_failures();
  drone.probation_announced = false;
  m_store.save_drone(drone.row);
  event(tx, "grounded", drone.row.name, "", reason);
  // Its work goes back to the queue at once; the drone is told to drop it.
  for (const auto& id : m_leases.select(
         [&](const LeaseRow& lease) { return lease.drone == drone.row.id && lease.state == LeaseState::active; })) {
    const auto ended = end_lease(tx, *m_leases.find(id), LeaseEnd::cancelled, "drone grounded", Requeue::yes);
    if (ended.held) {
      event(tx, "reclaimed", drone.row.name, ended.package->cpv, "drone grounded");
    }
  }
}

std::optional<LeaseRow> Coordinator::find_lease(const std::string& id)
{
  if (const auto* open = m_leases.find(id)) {
    return *open;
  }
  return m_store.get_lease(id);
}

Result<std::pair<Drone*, LeaseRow>> Coordinator::owned_lease(const std::string& id, const std::string& name)
{
  Drone* drone = find_or_load_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  auto lease = find_lease(id);
  if (!lease) {
    return fail(ErrorKind::not_found, "unknown lease {}", id);
  }
  if (lease->drone != drone->row.id) {
    return fail(ErrorKind::forbidden, "lease {} belongs to another drone", id);
  }
  return std::pair{drone, std::move(*lease)};
}

Drone* Coordinator::find_or_load_drone(const std::string& name)
{
  if (auto* drone = m_drones.find(name)) {
    if (drone->row.revoked_at > 0) {
      // Enrolled again by `swarm drone enroll` in another process: the revocation is over.
      try {
        if (auto row = m_store.load_drone(name); row && row->revoked_at == 0) {
          drone->row.token_hash = row->token_hash;
          drone->row.revoked_at = 0;
        }
      } catch (const std::exception& e) {
        LOG_WARN("cannot read drone {}: {}", name, e.what());
      }
    }
    return drone;
  }
  // Enrolled by `swarm drone enroll` in another process since this one loaded.
  try {
    if (auto row = m_store.load_drone(name)) {
      return &m_drones.add(std::move(*row));
    }
  } catch (const std::exception& e) {
    LOG_WARN("cannot read drone {}: {}", name, e.what());
  }
  return nullptr;
}

int Coordinator::running_of(const Drone& drone) const
{
  int running = 0;
  for (const auto& id : drone.leases) {
    if (const auto* lease = m_leases.find(id); lease && lease->state == LeaseState::active) {
      ++running;
    }
  }
  return running;
}

Block Coordinator::block_of(const Drone& drone) const
{
  // Its tree must be the plan's of some profile it builds for; the first such plan names the
  // tree it should have.
  std::string tree;
  for (const auto& [profile, info] : m_plan.infos()) {
    if (!drone.serves(profile) || info.tree_timestamp.empty()) {
      continue;
    }
    if (info.tree_timestamp == drone.row.tree_timestamp) {
      tree.clear();
      break;
    }
    if (tree.empty()) {
      tree = info.tree_timestamp;
    }
  }
  return orch::block_of(drone, m_paused, tree, running_of(drone), now());
}

Block Coordinator::profile_block(const Drone& drone, const std::string& profile) const
{
  if (!drone.serves(profile)) {
    return {net::ClaimCode::left_for_other_drones, fmt::format("it does not build for profile {}", profile)};
  }
  if (auto it = drone.refused.find(profile); it != drone.refused.end()) {
    return {net::ClaimCode::left_for_other_drones, fmt::format("it refused profile {}: {}", profile, it->second)};
  }
  const auto tree = m_plan.info(profile).tree_timestamp;
  if (!tree.empty() && tree != drone.row.tree_timestamp) {
    return {net::ClaimCode::tree_mismatch,
            fmt::format("tree timestamp {} differs from the plan's {} (profile {})",
                        drone.row.tree_timestamp.empty() ? "unknown" : drone.row.tree_timestamp, tree, profile)};
  }
  return {};
}

std::filesystem::path Coordinator::staging_dir(const std::string& profile) const
{
  return profile_path(m_options.data_dir, profile, "staging");
}

std::string Coordinator::staging_url(const std::string& profile) const
{
  return profile_url(m_options.staging_url, profile);
}

std::optional<portage::BuildProfile> Coordinator::load_build_profile(const std::string& hash)
{
  if (hash.empty()) {
    return std::nullopt;
  }
  if (auto it = m_build_profiles.find(hash); it != m_build_profiles.end()) {
    return it->second;
  }
  const auto text = m_store.load_build_profile(hash);
  if (!text) {
    return std::nullopt;
  }
  auto parsed = portage::build_profile_from_json(nlohmann::json::parse(*text, nullptr, false));
  if (!parsed) {
    LOG_ERROR("stored build profile {} does not parse: {}", hash, parsed.error().message);
    return std::nullopt;
  }
  m_build_profiles.emplace(hash, *parsed);
  return std::move(*parsed);
}

// ---------------------------------------------------------------------------------------------
// Periodic work

void Coordinator::tick()
{
  std::lock_guard lock(m_mutex);
  const double t = now();
  const auto expired =
    m_leases.select([&](const LeaseRow& lease) { return lease.state == LeaseState::active && lease.expires < t; });
  const auto unreported = m_leases.select([&](const LeaseRow& lease) {
    return lease.state == LeaseState::uploaded && lease.expires + m_options.lease_ttl < t;
  });
  if (!expired.empty() || !unreported.empty()) {
    (void)transact([&](Transition& tx) {
      for (const auto& id : expired) {
        const auto ended =
          end_lease(tx, *m_leases.find(id), LeaseEnd::expired, "lease expired without heartbeats", Requeue::yes);
        if (ended.package) {
          event(tx, "expired", m_drones.name_of(m_leases.find(id)->drone), ended.package->cpv,
                "lease expired; back in the queue");
        }
      }
      for (const auto& id : unreported) {
        end_lease(tx, *m_leases.find(id), LeaseEnd::completed, "artifact received; the drone never reported",
                  Requeue::no);
      }
    });
  }
  // Expired leases are kept a day for a late result, then forgotten (memory only: the stored
  // lease still answers a late report).
  for (const auto& id : m_leases.select([&](const LeaseRow& lease) {
         return lease.state == LeaseState::expired && lease.expires + k_expired_lease_memory < t;
       })) {
    m_leases.erase(id);
  }
  if (m_plan.priorities_dirty()) {
    m_plan.refresh_priorities();
  }
  // A grounded drone whose cool-down is over gets its probation package: wake the claims.
  for (auto& [name, drone] : m_drones.all()) {
    if (!drone.operator_grounded && drone.breaker.probation() && !drone.probation_announced &&
        drone.breaker.state(t) == breaker::BreakerState::half_open) {
      auto ok = transact([&](Transition& tx) {
        event(tx, "probation", name, "", "cool-down over: one package on probation");
        tx.wake = true;
      });
      if (ok) {
        if (auto* again = m_drones.find(std::string_view(name))) {
          again->probation_announced = true;
        }
      }
    }
  }
}

void Coordinator::maintenance()
{
  std::lock_guard lock(m_mutex);
  const double t = now();
  (void)transact([&](Transition& tx) {
    for (auto& [name, drone] : m_drones.all()) {
      if (!drone.row.online || drone.row.last_seen >= t - m_options.drone_timeout) {
        continue;
      }
      drone.row.online = false;
      m_store.save_drone(drone.row);
      event(tx, "offline", name, "", fmt::format("silent for {}", strings::human_duration(t - drone.row.last_seen)));
      for (const auto& id : m_leases.select(
             [&](const LeaseRow& lease) { return lease.drone == drone.row.id && lease.state == LeaseState::active; })) {
        const auto ended = end_lease(tx, *m_leases.find(id), LeaseEnd::expired, "drone went offline", Requeue::yes);
        if (ended.held) {
          event(tx, "reclaimed", name, ended.package->cpv, "drone offline");
        }
      }
    }
    if (m_options.auto_retry) {
      for (auto& row : m_plan.packages()) {
        if (row.state == PkgState::blocked && row.retry_at > 0 && row.retry_at <= t) {
          ++row.retries;
          row.failures = 0;
          row.failed_on.clear();
          row.retry_at = 0;
          set_state(tx, row, PkgState::needed);
          event(tx, "auto-retry", "", row.cpv, fmt::format("retry {}", row.retries));
        }
      }
    }
  });
  remove_orphan_artifacts();
}

// Artifacts in staging that no package names: left by a crash between an upload's rename and its
// commit, or a removal's commit and its unlink. Runs under the lock, so an upload in progress
// (rename and commit happen under it too) is never mistaken for one.
void Coordinator::remove_orphan_artifacts()
{
  std::map<std::string, std::set<std::string>> named; // profile → artifacts its packages name
  for (const auto& [profile, info] : m_plan.infos()) {
    named[profile];
  }
  named[k_default_profile];
  for (const auto& row : m_plan.packages()) {
    if (!row.artifact_path.empty()) {
      named[row.profile].insert(row.artifact_path);
    }
  }
  std::vector<std::pair<std::string, std::string>> orphans; // (profile, relative path)
  for (const auto& [profile, paths] : named) {
    const auto root = staging_dir(profile);
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      const auto name = it->path().filename().string();
      if (it->is_directory() && name.starts_with(".")) {
        it.disable_recursion_pending(); // .incoming: uploads being received
        continue;
      }
      if (!it->is_regular_file() || !name.ends_with(".gpkg.tar")) {
        continue;
      }
      const auto relative = std::filesystem::relative(it->path(), root, ec).generic_string();
      if (!ec && !paths.count(relative)) {
        orphans.emplace_back(profile, relative);
      }
    }
  }
  if (orphans.empty()) {
    return;
  }
  (void)transact([&](Transition& tx) {
    for (const auto& [profile, relative] : orphans) {
      event(tx, "orphan-removed", "", "", fmt::format("{}: no package names it (profile {})", relative, profile));
      remove_artifact_after_commit(tx, profile, relative);
    }
  });
}

} // namespace swarm::roles::orch
