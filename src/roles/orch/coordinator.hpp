#pragma once
// The orchestrator's brain: the plan as a DAG, who builds what, leases, breakers and the
// events, kept in memory and written through to the Store one transaction per transition.
// It knows nothing of HTTP; api.cpp turns requests into these calls. Thread-safe: every public
// method takes the one mutex (claims wait on a condition variable without holding it).

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/circuit_breaker.hpp"
#include "core/dag.hpp"
#include "core/error.hpp"
#include "core/scheduler.hpp"
#include "portage/plan.hpp"
#include "roles/orch/model.hpp"
#include "roles/orch/store.hpp"

namespace swarm::roles::orch {

struct CoordinatorOptions {
  std::filesystem::path staging_dir; // staging/ (artifacts are renamed into it under the lock)
  std::filesystem::path logs_dir;    // build logs, one file per build
  double lease_ttl = 120;
  double heartbeat_interval = 10;
  double drone_timeout = 90;
  double claim_wait = 25;
  double default_build_seconds = 120;
  double heavy_build_seconds = 1200;
  double ground_cooldown = 300;
  double retry_backoff = 1800;
  int drone_failure_limit = 5;
  int package_failure_drones = 2;
  bool auto_retry = false;
  std::function<double()> now; // epoch seconds; defaults to the system clock
};

// What a drone says when it registers.
struct DroneHello {
  std::string name;
  int protocol = 0;
  std::string version;
  int cores = 0;
  int slots = 0;
  uint64_t ram_bytes = 0;
  uint64_t disk_free_bytes = 0;
  std::string tree_timestamp;
};

struct DroneBeat {
  double cpu_percent = 0;
  double mem_percent = 0;
  double load1 = 0;
  uint64_t disk_free_bytes = 0;
  std::optional<std::string> tree_timestamp;
  std::vector<std::string> leases; // the leases it is working on
};

struct BeatReply {
  std::string state; // online, grounded
  std::string reason;
  std::vector<std::string> cancel;
};

// A lease as the drone sees it.
struct LeaseView {
  std::string id;
  std::string cpv;
  std::string slot;
  std::string repo;
  std::vector<std::string> use;
  std::vector<std::string> deps; // install these first, in this order
  double expires_at = 0;
  double expected_seconds = 0;
  std::string tree_timestamp;
};
nlohmann::json to_json(const LeaseView& lease);

struct ClaimReply {
  std::optional<LeaseView> lease;
  std::string reason; // why there is none
};

// What the API may stream an upload for.
struct UploadTicket {
  std::string cpv;      // CAT/PF the GPKG's metadata must name
  std::string category; // CAT
  std::string package;  // PN
};

// A validated artifact waiting in staging/.incoming/.
struct ArtifactInfo {
  std::filesystem::path incoming_path;
  std::string relative_path; // CAT/PN/PF-BUILD_ID.gpkg.tar under staging/
  std::string sha256;
  uint64_t size = 0;
  int64_t build_id = 0;
  nlohmann::json index_entry; // its Packages block (without PATH/MTIME: added when indexed)
};

struct UploadReply {
  bool duplicate = false;
  std::string relative_path;
};

struct BuildReport {
  bool success = false;
  double duration = 0;
  std::string log_tail;
  std::string reason;
};

enum class PlanMode { replace, add };

struct PlanReply {
  size_t packages = 0;
  size_t added = 0;
  size_t removed = 0;
  size_t kept = 0;
  size_t reset = 0;
  bool changed = false;
  std::vector<std::string> warnings;
};

class Coordinator {
public:
  Coordinator(Store& store, CoordinatorOptions options);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Loads the state. As the running orchestrator (take_over), leases that were active get a
  // fresh lease_ttl (their drones may be waiting for this orchestrator to come back); a CLI
  // working on the data dir beside it (inspect) writes nothing while loading.
  enum class LoadMode { take_over, inspect };
  Result<> load(LoadMode mode = LoadMode::take_over);

  // Wakes every waiting claim (shutdown).
  void shutdown();

  // --- drones ---
  // Creates a drone identity and returns its token (shown once; only its hash is stored).
  Result<std::string> enroll(const std::string& name);
  // The drone a token belongs to (constant-time comparison of hashes).
  std::optional<std::string> drone_for_token(const std::string& token);
  Result<nlohmann::json> register_drone(const std::string& drone, const DroneHello& hello);
  Result<BeatReply> heartbeat(const std::string& drone, const DroneBeat& beat);
  // Long-poll: returns a lease as soon as one is possible, or after `wait` seconds.
  Result<ClaimReply> claim(const std::string& drone, double wait);
  Result<UploadTicket> begin_upload(const std::string& lease, const std::string& drone);
  // Takes a validated artifact: renames it into staging and marks the package received.
  Result<UploadReply> accept_artifact(const std::string& lease, const std::string& drone, const ArtifactInfo& artifact);
  Result<nlohmann::json> report(const std::string& lease, const std::string& drone, const BuildReport& report);
  Result<> return_lease(const std::string& lease, const std::string& drone);
  // Where the log of this lease's build is appended (checks the drone owns the lease).
  Result<std::filesystem::path> log_path(const std::string& lease, const std::string& drone);

  // --- plan and control ---
  Result<PlanReply> submit_plan(const portage::Plan& plan, PlanMode mode, bool clear_staging);
  Result<nlohmann::json> control(const std::string& action, const nlohmann::json& args);

  // A lease on exactly `cpv` for `drone` (`swarm build-local`): the package may be needed, failed,
  // blocked or dep-failed (the operator builds it by hand); not one that is delegated or received.
  // Its artifact then goes through the normal upload and report path.
  Result<LeaseView> lease_package(const std::string& drone, const std::string& cpv);

  // --- periodic work ---
  void tick();        // every second: lease expiry, priority refresh
  void maintenance(); // every maintenance_interval: offline drones, probation, auto-retry

  // --- views ---
  nlohmann::json status();
  nlohmann::json drones_view();
  nlohmann::json packages_view(const std::string& state_filter);
  Result<nlohmann::json> package_view(const std::string& cpv);
  nlohmann::json events_view(int64_t since, size_t limit);
  nlohmann::json builds_view(const std::string& package, const std::string& drone, size_t limit);
  Result<std::filesystem::path> latest_log(const std::string& package, const std::string& drone);
  bool paused();

  // The staging binhost's Packages index and its TIMESTAMP, regenerated only after a change.
  std::pair<std::string, int64_t> staging_index();
  // Every received artifact (path relative to staging, sha256, size, release), for verify/finalize.
  std::vector<PackageRow> received_packages();
  // Every package row, the plan's edges (by package id) and the plan, copied under one lock: a
  // consistent picture for verify and finalize (roles/orch/verify.cpp, release.cpp).
  struct Snapshot {
    std::vector<PackageRow> packages;
    std::vector<EdgeRow> edges;
    PlanInfo plan;
  };
  Snapshot snapshot();

private:
  struct Drone {
    DroneRow row;
    breaker::CircuitBreaker breaker;
    std::set<std::string> leases; // open leases held
    std::set<std::string> cancel; // leases to tell it to drop at the next heartbeat
    bool operator_grounded = false;
    bool probation_announced = false;
    std::vector<double> speed_samples; // actual / expected, newest last
  };

  double now() const;
  Drone* find_drone(const std::string& name);
  PackageRow* find_package(const std::string& cpv);
  PackageRow* find_package(int64_t id);
  void add_event(const std::string& kind, const std::string& drone, const std::string& package,
                 const std::string& detail);
  void flush_events();
  Result<> commit(const std::function<void()>& writes);

  void rebuild_graph();
  void refresh_priorities();
  sched::JobState job_state(const PackageRow& row) const;
  double expected_seconds(const PackageRow& row) const;
  double drone_speed(const Drone& drone) const;
  std::string drone_block_reason(const Drone& drone) const;
  bool package_fits(const PackageRow& row, const Drone& drone) const;
  std::optional<LeaseView> try_claim(Drone& drone, std::string& reason);
  std::vector<std::string> deps_of(const PackageRow& row) const;
  LeaseView view_of(const LeaseRow& lease, const PackageRow& row) const;

  // Transitions that several entry points share. They write through the store (inside the
  // caller's transaction) and update memory.
  void release_lease(LeaseRow& lease, LeaseState state, const std::string& result, const std::string& reason);
  PackageRow* cancel_and_requeue(const std::string& lease_id, const std::string& reason);
  void ground(Drone& drone, const std::string& reason, bool by_operator);
  void apply_dep_failed();
  void set_pkg_state(PackageRow& row, PkgState state);
  void delete_artifact(PackageRow& row);

  nlohmann::json drone_json(const Drone& drone);
  nlohmann::json package_json(const PackageRow& row) const;

  Store& m_store;
  CoordinatorOptions m_options;
  std::mutex m_mutex;
  std::condition_variable m_changed; // any change that may make a claim possible
  bool m_shutdown = false;

  PlanInfo m_plan;
  bool m_paused = false;
  std::vector<PackageRow> m_packages; // index = dag node id
  std::unordered_map<std::string, dag::NodeId> m_by_cpv;
  std::unordered_map<int64_t, dag::NodeId> m_by_id;
  std::vector<EdgeRow> m_edges;
  dag::Graph m_graph;
  std::unique_ptr<sched::KahnScheduler> m_scheduler;
  std::vector<size_t> m_topo_position;
  std::vector<std::string> m_warnings; // broken cycle edges, for status and the plan view
  bool m_priorities_dirty = false;

  std::map<std::string, Drone> m_drones;
  std::unordered_map<std::string, LeaseRow> m_leases;   // open leases (active, uploaded, expired)
  std::map<std::string, std::vector<double>> m_history; // cp → successful build durations

  std::vector<EventRow> m_pending_events; // written inside the current transaction
  uint64_t m_generation = 1;              // bumps when the staging content changes
  uint64_t m_index_generation = 0;
  std::string m_index_text;
  int64_t m_index_timestamp = 0;
};

} // namespace swarm::roles::orch
