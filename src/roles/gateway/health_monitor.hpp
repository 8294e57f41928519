#pragma once
// Which orchestrator the gateway sends to. Each orchestrator is probed (GET /healthz) on its own
// thread every interval, so a hung one delays no other; the active orchestrator is the
// highest-ranked healthy one. A proxied call that cannot reach an orchestrator marks it down at
// once, without waiting for the next probe. Every change of the active one is logged.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "net/http_client.hpp"
#include "roles/gateway/orchestrator_list.hpp"

namespace swarm::roles::gateway {

// What an orchestrator's /healthz says about itself.
struct OrchestratorInfo {
  std::string orch_id;
  bool paused = false;
  std::string public_url;
  std::string staging_url;
  std::string production_url;
};

// Reads a /healthz answer: healthy only with status 200 and a JSON object saying
// status "ok", role "orch" and our protocol version; the error says what was wrong.
Result<OrchestratorInfo> parse_health_answer(const net::Response& response);

struct OrchestratorState {
  OrchestratorSpec spec;
  bool healthy = false;
  std::optional<clock::SystemTime> last_check; // none before the first probe
  std::string last_error;                      // of the last failed probe or call; "" when healthy
  std::optional<OrchestratorInfo> info;        // from the last successful probe
  std::optional<double> latency_ms;            // of the last successful probe
};

// The active orchestrator: the healthy one that ranks highest (priority, then list order);
// none when none is healthy. Pure.
std::optional<size_t> choose_active(const std::vector<OrchestratorState>& states);

// The JSON of one orchestrator in GET /status: url, priority, healthy, last_check (epoch
// seconds or null), last_error, orch_id, paused, latency_ms.
nlohmann::json state_json(const OrchestratorState& state);

// Probes one orchestrator; the seam unit tests replace.
using HealthProbe = std::function<Result<OrchestratorInfo>(size_t index)>;

class HealthMonitor {
public:
  HealthMonitor(std::vector<OrchestratorSpec> specs, HealthProbe probe, std::chrono::milliseconds interval,
                clock::Clock& clock = clock::system_clock());
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Starts one probing thread per orchestrator (the first probe at once).
  void start();
  // Waits until every orchestrator has been probed once, or `deadline`; false on timeout.
  bool wait_first_round(std::chrono::steady_clock::time_point deadline);
  // Stops and joins the threads. Idempotent.
  void stop();

  // Probes orchestrator `index` now, on the calling thread, and records the result.
  void check(size_t index);
  // Records a probe's outcome (what check() does after probing).
  void record(size_t index, const Result<OrchestratorInfo>& outcome, std::optional<double> latency_ms = std::nullopt);
  // A proxied call could not reach orchestrator `index`: unhealthy until a probe succeeds.
  void mark_down(size_t index, const std::string& error);

  struct Active {
    size_t index = 0;
    std::string url;
    std::optional<OrchestratorInfo> info;
  };
  // The orchestrator to send to now, if any is healthy.
  std::optional<Active> active() const;
  // A copy of every orchestrator's state, in configured order.
  std::vector<OrchestratorState> states() const;

private:
  // Recomputes the active orchestrator and logs a change. Called with m_mutex held.
  void update_active_locked();
  void loop(size_t index);

  HealthProbe m_probe;
  std::chrono::milliseconds m_interval;
  clock::Clock& m_clock;

  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<OrchestratorState> m_states;
  std::optional<size_t> m_active;
  bool m_chose_once = false;
  bool m_stopping = false;
  std::vector<std::thread> m_threads;
};

} // namespace swarm::roles::gateway
