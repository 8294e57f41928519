#pragma once
// The drones the orchestrator knows: their stored rows, circuit breakers and open leases,
// indexed by id and by name; why one may not take work now; and DroneTokens, the token → drone
// lookup every authenticated request makes, which never takes the coordinator's lock.

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/circuit_breaker.hpp"
#include "net/protocol.hpp"
#include "roles/orch/model.hpp"

namespace swarm::roles::orch {

struct Drone {
  DroneRow row;
  breaker::CircuitBreaker breaker;
  std::set<std::string> leases;               // open leases it holds (active or uploaded)
  std::set<std::string> cancel;               // leases to tell it to drop at its next heartbeat
  bool operator_grounded = false;             // grounded by `swarm ground` until `swarm unground`
  bool probation_announced = false;           // the "probation" event was sent for this cool-down
  std::map<std::string, std::string> refused; // profile → why it refused it (until it registers again)
  std::vector<double> speed_samples;          // actual / expected build time, newest last

  // Median of the speed samples (1 when there are none): 2 means it builds half as fast.
  double speed() const;
  // It builds for this profile (it serves all when it named none).
  bool serves(const std::string& profile) const;
  // "online", "offline", "grounded", "probation", "enrolled" (never registered) or "revoked".
  std::string state(double now) const;
};

class DroneRegistry {
public:
  DroneRegistry(int failure_limit, double cooldown) : m_failure_limit(failure_limit), m_cooldown(cooldown) {}

  // Replaces the rows; what is not stored (speed samples, pending cancellations) is kept for
  // drones that stay.
  void assign(std::vector<DroneRow> rows);
  Drone& add(DroneRow row);

  Drone* find(int64_t id);
  Drone* find(std::string_view name);
  const Drone* find(int64_t id) const;
  const Drone* find(std::string_view name) const;
  std::string name_of(int64_t id) const;

  // In name order.
  std::map<std::string, Drone, std::less<>>& all() { return m_by_name; }
  const std::map<std::string, Drone, std::less<>>& all() const { return m_by_name; }

private:
  Drone make(DroneRow row) const;
  void reindex();

  int m_failure_limit;
  double m_cooldown;
  std::map<std::string, Drone, std::less<>> m_by_name;
  std::unordered_map<int64_t, Drone*> m_by_id;
};

// Why a drone gets no work now, or code none.
struct Block {
  net::ClaimCode code = net::ClaimCode::none;
  std::string reason;
  explicit operator bool() const { return code != net::ClaimCode::none; }
};

// `running`: its active leases. Order: paused, grounded, tree, probation, slots.
Block block_of(const Drone& drone, bool paused, const std::string& plan_tree_timestamp, int running, double now);

// True when drone names are valid: 1-64 of [A-Za-z0-9._-].
bool is_valid_drone_name(std::string_view name);

// Token → drone name, for every authenticated request. Lookups take a shared lock of its own,
// never the coordinator's, so a client sending bad tokens cannot slow the drones down. A miss
// asks `refresh` (at most one at a time) whether the enrolled drones changed elsewhere
// (`swarm drone enroll` beside the daemon); it answers cheaply when nothing did.
class DroneTokens {
public:
  struct Snapshot {
    std::string generation;
    std::vector<std::pair<std::string, std::string>> tokens; // (token hash, drone name)
  };
  // Given the generation known, a newer snapshot, or nothing when it is unchanged.
  using Refresh = std::function<std::optional<Snapshot>(const std::string& known_generation)>;

  explicit DroneTokens(Refresh refresh = {}) : m_refresh(std::move(refresh)) {}

  void replace(Snapshot snapshot);
  // After this process enrolled `drone`: its token, and the generation it stored.
  void set(const std::string& token_hash, const std::string& drone, const std::string& generation);
  // The drone whose token this is.
  std::optional<std::string> drone_for(const std::string& token);
  // The drone whose token has this SHA-256 (hex), as known now (no refresh).
  std::optional<std::string> drone_for_hash(const std::string& hash) const;

private:
  Refresh m_refresh;
  mutable std::shared_mutex m_mutex;
  std::unordered_map<std::string, std::string> m_by_hash;
  std::string m_generation;
  std::mutex m_refresh_mutex;
};

} // namespace swarm::roles::orch
