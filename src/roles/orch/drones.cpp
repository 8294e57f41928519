#include "roles/orch/drones.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "core/stats.hpp"

#include "core/hash.hpp"

namespace swarm::roles::orch {

namespace {

constexpr double k_operator_grounded = 1e17; // grounded_until at or above this: by the operator

std::string iso_time(double epoch)
{
  const auto seconds = static_cast<time_t>(epoch);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec);
}

} // namespace

double Drone::speed() const
{
  const double value = stats::median(speed_samples);
  return value > 0 ? value : 1.0;
}

bool Drone::serves(const std::string& profile) const
{
  return row.profiles.empty() || std::find(row.profiles.begin(), row.profiles.end(), profile) != row.profiles.end();
}

std::string Drone::state(double now) const
{
  if (row.revoked_at > 0) {
    return "revoked";
  }
  if (row.slots == 0) {
    return "enrolled";
  }
  const auto breaker_state = breaker.state(now);
  if (operator_grounded || breaker_state == breaker::BreakerState::open) {
    return "grounded";
  }
  if (!row.online) {
    return "offline";
  }
  return breaker_state == breaker::BreakerState::half_open ? "probation" : "online";
}

// ---------------------------------------------------------------------------------------------
// DroneRegistry

Drone DroneRegistry::make(DroneRow row) const
{
  Drone drone{std::move(row), breaker::CircuitBreaker(m_failure_limit, m_cooldown), {}, {}, false, false, {}, {}};
  drone.breaker.restore(drone.row.consecutive_failures, drone.row.grounded_until, drone.row.probation);
  drone.operator_grounded = drone.row.grounded_until >= k_operator_grounded;
  return drone;
}

void DroneRegistry::assign(std::vector<DroneRow> rows)
{
  std::map<std::string, Drone, std::less<>> next;
  for (auto& row : rows) {
    auto drone = make(std::move(row));
    if (auto it = m_by_name.find(drone.row.name); it != m_by_name.end() && it->second.row.id == drone.row.id) {
      drone.speed_samples = std::move(it->second.speed_samples);
      drone.cancel = std::move(it->second.cancel);
      drone.probation_announced = it->second.probation_announced;
      drone.refused = std::move(it->second.refused);
    }
    auto name = drone.row.name;
    next.emplace(std::move(name), std::move(drone));
  }
  m_by_name = std::move(next);
  reindex();
}

Drone& DroneRegistry::add(DroneRow row)
{
  auto name = row.name;
  auto [it, inserted] = m_by_name.insert_or_assign(std::move(name), make(std::move(row)));
  reindex();
  return it->second;
}

void DroneRegistry::reindex()
{
  m_by_id.clear();
  for (auto& [name, drone] : m_by_name) {
    m_by_id[drone.row.id] = &drone;
  }
}

Drone* DroneRegistry::find(int64_t id)
{
  auto it = m_by_id.find(id);
  return it == m_by_id.end() ? nullptr : it->second;
}

Drone* DroneRegistry::find(std::string_view name)
{
  auto it = m_by_name.find(name);
  return it == m_by_name.end() ? nullptr : &it->second;
}

const Drone* DroneRegistry::find(int64_t id) const
{
  return const_cast<DroneRegistry*>(this)->find(id);
}

const Drone* DroneRegistry::find(std::string_view name) const
{
  return const_cast<DroneRegistry*>(this)->find(name);
}

std::string DroneRegistry::name_of(int64_t id) const
{
  const auto* drone = find(id);
  return drone ? drone->row.name : std::string();
}

// ---------------------------------------------------------------------------------------------
// Blocks

Block block_of(const Drone& drone, bool paused, const std::string& plan_tree_timestamp, int running, double now)
{
  using net::ClaimCode;
  if (paused) {
    return {ClaimCode::paused, "paused by the operator"};
  }
  if (drone.operator_grounded) {
    return {ClaimCode::grounded, "grounded by the operator"};
  }
  if (drone.breaker.state(now) == breaker::BreakerState::open) {
    return {ClaimCode::grounded,
            fmt::format("grounded until {} after {} consecutive failures", iso_time(drone.breaker.open_until()),
                        drone.breaker.consecutive_failures())};
  }
  if (!plan_tree_timestamp.empty() && drone.row.tree_timestamp != plan_tree_timestamp) {
    return {ClaimCode::tree_mismatch,
            fmt::format("tree timestamp {} differs from the plan's {}",
                        drone.row.tree_timestamp.empty() ? "unknown" : drone.row.tree_timestamp, plan_tree_timestamp)};
  }
  if (!drone.breaker.allows(now, running)) {
    return {ClaimCode::probation, "on probation: one package at a time"};
  }
  if (running >= drone.row.slots) {
    return {ClaimCode::slots_full, fmt::format("all {} slots busy", drone.row.slots)};
  }
  return {};
}

bool is_valid_drone_name(std::string_view name)
{
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// ---------------------------------------------------------------------------------------------
// DroneTokens

void DroneTokens::replace(Snapshot snapshot)
{
  std::unordered_map<std::string, std::string> by_hash;
  for (auto& [hash, name] : snapshot.tokens) {
    by_hash[std::move(hash)] = std::move(name);
  }
  std::unique_lock lock(m_mutex);
  m_by_hash = std::move(by_hash);
  m_generation = std::move(snapshot.generation);
}

void DroneTokens::set(const std::string& token_hash, const std::string& drone, const std::string& generation)
{
  std::unique_lock lock(m_mutex);
  std::erase_if(m_by_hash, [&](const auto& entry) { return entry.second == drone; });
  m_by_hash[token_hash] = drone;
  m_generation = generation;
}

std::optional<std::string> DroneTokens::drone_for_hash(const std::string& hash) const
{
  std::shared_lock lock(m_mutex);
  auto it = m_by_hash.find(hash);
  return it == m_by_hash.end() ? std::nullopt : std::optional(it->second);
}

std::optional<std::string> DroneTokens::drone_for(const std::string& token)
{
  // Looked up by the SHA-256 of the token: timing can tell an attacker nothing about a token.
  const auto hash = hash::hex_digest(hash::Algo::sha256, token);
  if (auto found = drone_for_hash(hash)) {
    return found;
  }
  if (!m_refresh) {
    return std::nullopt;
  }
  std::lock_guard refreshing(m_refresh_mutex);
  std::string known;
  {
    std::shared_lock lock(m_mutex);
    known = m_generation;
  }
  if (auto snapshot = m_refresh(known)) {
    replace(std::move(*snapshot));
  }
  return drone_for_hash(hash);
}

} // namespace swarm::roles::orch
