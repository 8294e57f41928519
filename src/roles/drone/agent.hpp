#pragma once
// The drone daemon: on start ends what a previous run left running (hygiene.hpp) and finishes
// what it left in the spool; registers with the orchestrator (retrying while it is
// unreachable), sends heartbeats, runs one worker per slot that long-polls for a lease, prepares
// it (its build profile, configuration and build root: lease_setup.hpp) or refuses it, builds
// it and delivers the result (upload, then report, retried with backoff until acknowledged).
// Stopping is cooperative: request_stop() from a signal thread, never from a signal handler.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "net/protocol.hpp"
#include "roles/drone/build_root.hpp"
#include "roles/drone/builder.hpp"
#include "roles/drone/lease_setup.hpp"
#include "roles/drone/orch_api.hpp"
#include "roles/drone/profile_cache.hpp"
#include "roles/drone/spool.hpp"
#include "roles/drone/system_stats.hpp"

namespace swarm::roles::drone {

class DroneMetrics;

// What SIGTERM does to running builds.
enum class DrainMode {
  finish,        // finish them, upload them, then exit
  return_leases, // kill them and give their leases back
};
std::optional<DrainMode> drain_mode_from_name(std::string_view name); // "finish" | "return"

struct DroneSettings {
  std::string name;
  std::string version;
  int cores = 1;
  int slots = 1;
  uint64_t ram_bytes = 0;
  std::filesystem::path spool;
  std::filesystem::path repo_dir;      // its metadata/timestamp.chk is the tree timestamp
  std::string tree_timestamp_override; // used instead when not empty
  uint64_t min_free_disk = 0;          // no claims below this much free spool disk
  DrainMode drain = DrainMode::finish;
  std::chrono::seconds claim_wait{20};        // asked of the long-poll (the orchestrator may cap it)
  std::chrono::milliseconds exit_grace{2000}; // how long a stopping drone waits for idle long-polls
  std::vector<std::string> profiles;          // the swarm profiles it builds for (empty: all)
  BuildRootSettings build_root;               // roots_dir empty: SPOOL/roots
  LeaseSetupSettings setup;                   // pkgdir empty: SPOOL/pkgdir
};

// Hooks for tests; empty ones get the real behaviour.
struct AgentHooks {
  // Free bytes of the spool's filesystem.
  std::function<Result<uint64_t>()> free_disk;
  // CPU/memory/load figures of a heartbeat.
  std::function<StatsSample()> stats;
  // Replaces every wait of the agent (backoff, idle, heartbeat interval); returns false when the
  // wait should end early. Tests record the durations and return at once.
  std::function<bool(std::chrono::milliseconds)> pause;
  // Counts builds and uploads and knows whether the drone is registered (drone.listen).
  DroneMetrics* metrics = nullptr;
};

// Refusal to claim for lack of disk: the reason, or nullopt when there is enough.
std::optional<std::string> disk_refusal(uint64_t free_bytes, uint64_t min_free_bytes);

// The tree timestamp: the override, else the first line of repo_dir/metadata/timestamp.chk
// ("" when it cannot be read).
std::string read_tree_timestamp(const std::filesystem::path& repo_dir, std::string_view override_value);

class DroneAgent {
public:
  DroneAgent(DroneSettings settings, OrchApi& api, Builder& builder, AgentHooks hooks = {});
  ~DroneAgent();
  DroneAgent(const DroneAgent&) = delete;
  DroneAgent& operator=(const DroneAgent&) = delete;

  // The whole life of the drone; returns the exit code (0 after a requested stop, 1 when the
  // orchestrator no longer knows this drone or refuses it, or on a broken spool).
  int run();

  // Stop claiming. `finish`: running builds complete and are delivered; `return_leases`: they
  // are killed and handed back. Thread-safe; a second call may escalate finish to return.
  void request_stop(DrainMode mode);

  // True when run() returned while worker threads were still blocked in a long-poll: the
  // caller must end the process (std::_Exit) instead of destroying the agent.
  bool left_threads_behind() const;

  // --- steps of run(), public for tests ---

  // Registers, retrying with backoff while the orchestrator is unreachable. nullopt when a
  // stop was requested first; an error when the orchestrator refuses this drone.
  Result<std::optional<net::Registration>> register_with_retry();

  // Finishes the leases a previous run left in the spool (upload, report) and returns those
  // whose build never ended, plus `registered` leases the spool does not know.
  void resume(const std::vector<net::Lease>& registered);

  // What one claim attempt came to. An idle claim logs "no work: CODE: REASON" at info level
  // when its code differs from the previous claim's (a lease in between counts as a change), so
  // a drone waiting out a pause says so once, not at every long-poll.
  enum class ClaimStatus { lease, idle, no_disk, unavailable, stopped, fatal };
  struct ClaimStep {
    ClaimStatus status = ClaimStatus::idle;
    std::optional<net::Lease> lease;
    net::ClaimCode code = net::ClaimCode::none; // idle: why the orchestrator gave no lease
    std::string reason;
  };
  ClaimStep claim_step();

  // Prepares a claimed lease (or refuses it), builds it and delivers the result.
  void work_lease(const net::Lease& lease);

  // Tells the orchestrator this drone will not build `lease` (retrying while it does not
  // answer, returning the lease when it never does) and forgets it. False when the
  // orchestrator rejects the refusal: the caller then reports the lease failed.
  bool refuse(const net::Lease& lease, const Refusal& refusal);

  // Uploads (phase built) then reports (built/uploaded/failed), retrying transient failures
  // with backoff; removes the work dir once the orchestrator has acknowledged the report (or
  // refused the lease for good). Returns when done, or when the lease was cancelled or the
  // drone is aborting (the spool then keeps it for the next start).
  void deliver(LeaseState state);

  // One heartbeat; applies its cancellations. False when the drone must exit (unknown).
  bool heartbeat_once();

  // Whether a stop was requested (readiness).
  bool stop_requested() const { return stopping(); }

  // Lease ids this drone is working on (building or delivering).
  std::vector<std::string> active_leases() const;

  const Spool& spool() const { return m_spool; }
  const BuildRoots& build_roots() const { return m_roots; }
  int exit_code() const;

private:
  struct Active {
    std::stop_source stop; // kills the build
    bool cancelled = false;
  };
  struct Worker {
    std::thread thread;
    bool in_claim = false;
    bool exited = false;
  };

  std::shared_ptr<Active> track(const std::string& lease_id);
  void untrack(const std::string& lease_id);
  bool is_cancelled(const std::shared_ptr<Active>& active) const;
  // Waits `duration` unless `interrupted()` becomes true (then returns false).
  bool pause(std::chrono::milliseconds duration, const std::function<bool()>& interrupted);
  bool stopping() const;
  bool aborting() const;
  void fatal(std::string_view why);
  void give_back(const std::string& lease_id, int attempts);
  void worker_loop(size_t index);
  void heartbeat_loop(double interval_seconds);
  void deliver_tracked(LeaseState state, const std::shared_ptr<Active>& active);
  net::RegisterRequest register_request() const;
  // Spool lock, hygiene, the host-mode warning: false when the drone must not start.
  bool start_up();
  // Logs why a claim gave no work, unless the last claim said the same (see ClaimStep).
  void note_no_work(net::ClaimCode code, std::string_view reason);
  uint64_t free_disk() const;

  DroneSettings m_settings;
  OrchApi& m_api;
  Builder& m_builder;
  AgentHooks m_hooks;
  Spool m_spool;
  SystemStats m_stats;
  BuildRoots m_roots;
  ProfileCache m_profiles;
  LeaseSetup m_setup;
  UniqueFd m_spool_lock;
  std::string m_staging_url;

  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::map<std::string, std::shared_ptr<Active>> m_active;
  std::vector<std::unique_ptr<Worker>> m_workers;
  std::thread m_heartbeat;
  bool m_stopping = false;
  bool m_aborting = false; // drain=return or fatal: builds killed, retries cut short
  bool m_fatal = false;
  bool m_done = false; // run() is ending: the heartbeat stops
  bool m_left_behind = false;
  bool m_disk_refused = false;
  net::ClaimCode m_last_claim_code = net::ClaimCode::none; // of the last answered claim
  int m_exit_code = 0;

  // Giving a lease back is a courtesy (it expires anyway): a few attempts only.
  static constexpr int k_return_attempts = 3;
};

} // namespace swarm::roles::drone
