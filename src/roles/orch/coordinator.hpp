#pragma once
// The orchestrator's front: one mutex, one store transaction per state transition, and the
// waking of waiting claims. The state itself lives in parts with one concept each — the plan
// (plan_state.hpp), the drones (drones.hpp), the leases (leases.hpp) — and the JSON views of it
// in views.cpp. It knows nothing of HTTP (routes.cpp maps requests onto these calls).
//
// All or nothing: memory is a cache of the database. A transition changes memory and writes the
// same change through to the store inside one transaction; files (artifacts to delete) and
// notifications are touched only after the commit. If the transaction fails, memory is reloaded
// from the database, so it never holds what the database does not.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "net/protocol.hpp"
#include "portage/build_profile.hpp"
#include "roles/orch/drones.hpp"
#include "roles/orch/leases.hpp"
#include "roles/orch/model.hpp"
#include "roles/orch/plan_state.hpp"
#include "roles/orch/store.hpp"

namespace swarm::portage {
struct Plan;
struct BuildProfile;
} // namespace swarm::portage

namespace swarm::roles::orch {

struct CoordinatorOptions {
  std::filesystem::path data_dir; // each profile's staging is in it (roles/orch/profiles.hpp)
  std::filesystem::path logs_dir; // build logs, one file per build
  std::string staging_url;        // the default profile's staging binhost (others: profile_url)
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
  // How the token lookup learns of drones enrolled by another process (a second database
  // connection in the daemon); empty: only what this coordinator enrolled and loaded.
  DroneTokens::Refresh token_refresh;
  // Observers (empty: none). Called under the coordinator's lock: they must only record.
  std::function<void(const EventRow&)> on_event; // each event of a committed transition
  // A claim that waited got work this many seconds after the transition that woke it.
  std::function<void(double seconds)> on_claim_woken;
};

// What the API may stream an upload for, and what the GPKG must say it was built as.
struct UploadTicket {
  std::string cpv;                    // CAT/PF the GPKG's metadata must name
  std::string category;               // CAT
  std::string package;                // PN
  std::string profile;                // the swarm profile
  std::filesystem::path incoming_dir; // where the upload is received (the profile's staging/.incoming)
  std::string slot;
  std::string repo;
  std::vector<std::string> use;
  std::optional<portage::BuildProfile> build_profile; // its plan's, when one was captured
};

// A validated artifact waiting in staging/.incoming/.
struct ArtifactInfo {
  std::filesystem::path incoming_path;
  std::string relative_path; // CAT/PN/PF-BUILD_ID.gpkg.tar under staging/
  std::string sha256;
  uint64_t size = 0;
  int64_t build_id = 0;
  std::string index_entry; // JSON object: its Packages block (without PATH/MTIME: added when indexed)
  // Signed here after upload: its sha256 differs from the drone's file, so a retried upload of
  // the same lease is recognised by the lease, not by the hash.
  bool signed_here = false;
};

class Coordinator {
public:
  Coordinator(Store& store, CoordinatorOptions options);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Loads the state. As the running orchestrator (take_over), leases that were active get a
  // fresh lease_ttl and online drones a fresh silence count (they could not reach a dead
  // orchestrator); a CLI working on the data dir beside it (inspect) writes nothing while loading.
  enum class LoadMode { take_over, inspect };
  Result<> load(LoadMode mode = LoadMode::take_over);

  // Wakes every waiting claim (shutdown).
  void shutdown();
  // Ready to serve: loaded, not shutting down, and its store answers a query.
  Result<> ready();

  // --- drones ---
  // Creates a drone identity, or gives an existing one a new token (the old one stops working),
  // and returns the token (shown once; only its hash is stored).
  Result<std::string> enroll(const std::string& name);
  // The drone a token belongs to. Never takes the coordinator's lock.
  std::optional<std::string> drone_for_token(const std::string& token);
  // Takes a drone's token away at once (its next call gets 401), cancels its leases back into
  // the queue and marks it revoked; `swarm drone enroll` gives it a new token. The leases requeued.
  Result<int> revoke(const std::string& name);
  // A read-only token named `name` (a new one replaces the old): shown once, stored hashed.
  Result<std::string> create_reader_token(const std::string& name);
  Result<> delete_reader_token(const std::string& name);
  // The read-only token's name, when `token` is one. Never takes the coordinator's lock.
  std::optional<std::string> reader_for_token(const std::string& token) const;
  // [{"name", "role", "created_at"}], never a token or its hash.
  nlohmann::json tokens_view();
  Result<net::Registration> register_drone(const std::string& drone, const net::RegisterRequest& hello);
  Result<net::HeartbeatReply> heartbeat(const std::string& drone, const net::HeartbeatRequest& beat);
  // Long-poll: returns a lease as soon as one is possible, or after `wait` seconds with the
  // reason there is none.
  Result<net::ClaimReply> claim(const std::string& drone, double wait);
  Result<UploadTicket> begin_upload(const std::string& lease, const std::string& drone);
  // Takes a validated artifact: renames it into staging and marks the package received, which
  // releases its dependants at once.
  Result<net::UploadReply> accept_artifact(const std::string& lease, const std::string& drone,
                                           const ArtifactInfo& artifact);
  // An artifact whose metadata does not say it was built as asked (`differences`): it never
  // reaches staging; the lease ends, the package goes back to the queue, and it counts against
  // the drone, not the package.
  Result<> reject_artifact(const std::string& lease, const std::string& drone,
                           const std::vector<std::string>& differences);
  // The drone cannot build the lease as its profile asks: back to the queue, uncounted, and no
  // more of that profile for this drone until it registers again.
  Result<> refuse(const std::string& lease, const std::string& drone, const net::RefuseRequest& refusal);
  Result<net::ReportReply> report(const std::string& lease, const std::string& drone, const net::ReportRequest& report);
  Result<> return_lease(const std::string& lease, const std::string& drone);
  // Where the log of this lease's build is appended (checks the drone owns the lease).
  Result<std::filesystem::path> log_path(const std::string& lease, const std::string& drone);
  // A lease on exactly `cpv` for `drone` (`swarm build-local`): the package may be needed, failed,
  // blocked or dep-failed (the operator builds it by hand); not one that is delegated or received.
  Result<net::Lease> lease_package(const std::string& drone, const std::string& profile, const std::string& cpv);

  // --- plan and control (each its own transition) ---
  // The plan of `profile`, computed with `build_profile` when the client captured one.
  Result<net::PlanReply> submit_plan(const portage::Plan& plan, net::PlanMode mode, bool clear_staging,
                                     const std::string& profile = "default",
                                     const std::optional<portage::BuildProfile>& build_profile = std::nullopt);
  // A captured configuration, as stored (JSON text).
  Result<std::string> build_profile(const std::string& hash);
  Result<net::PauseReply> set_paused(bool paused);
  // Every open lease back to the queue; built packages stay.
  Result<net::ResetReply> reset();
  // Blocked packages (all when the list is empty) back to the queue with a clean failure count.
  Result<net::UnblockReply> unblock(const net::UnblockRequest& request);
  Result<net::GroundReply> ground(const net::GroundRequest& request);
  Result<net::GroundReply> unground(const net::GroundRequest& request);
  // Work held by drones that cannot make progress (offline, grounded, silent for two
  // heartbeats) back to the queue, where idle drones' claims pick it up at once.
  Result<net::BalanceReply> balance();

  // --- periodic work ---
  void tick();        // every second: lease expiry, priority refresh, probation announcements
  void maintenance(); // every maintenance_interval: offline drones, auto-retry, orphan artifacts

  // --- views (views.cpp); each for one profile where it says so ---
  nlohmann::json status(const std::string& profile = "default");
  nlohmann::json drones_view();
  // Every profile with a plan: name, build profile, counts.
  nlohmann::json profiles_view();
  nlohmann::json packages_view(const std::string& profile, const std::string& state_filter);
  Result<nlohmann::json> package_view(const std::string& profile, const std::string& cpv);
  nlohmann::json events_view(int64_t since, size_t limit);
  nlohmann::json builds_view(const std::string& profile, const std::string& package, const std::string& drone,
                             size_t limit);
  bool paused();
  // A profile's plan by dependency level (views_plan.cpp): per level the counts by state, the
  // blocked packages and why, and what each waiting package waits for.
  nlohmann::json plan_view(const std::string& profile);

  // --- news: long-polls wait for something new (an event, log bytes) ---
  // A count that grows with every committed transition that logged events and every log append.
  uint64_t news();
  // Waits until the count passes `seen`, `seconds` pass or the coordinator shuts down; the count.
  uint64_t wait_news(uint64_t seen, double seconds);
  void announce_news();

  // --- build logs (log_store.hpp) ---
  struct BuildRef {
    int64_t build = 0;
    std::string package; // CAT/PF
    std::string drone;
    std::string result; // running, success, failure, expired, returned, cancelled
    std::string reason;
    double ended = 0; // 0 while running
  };
  // The latest build of a package or a drone (or both), or with `build` that build (it must be
  // of that package or drone): not_found when there is none.
  Result<BuildRef> latest_build(const std::string& profile, const std::string& package, const std::string& drone,
                                int64_t build = 0);
  // Builds whose logs the retention keeps: those of open leases (`running`) and the latest build
  // of every blocked package (`keep`).
  struct LogKeepers {
    std::set<int64_t> running;
    std::set<int64_t> keep;
  };
  LogKeepers log_keepers();
  // Everything held in memory that is also stored, canonically: equal to the same of a fresh
  // load from the database (tests compare the two after injected write failures).
  nlohmann::json state_dump();

  // A profile's staging binhost Packages index and its TIMESTAMP, regenerated only after a change.
  std::pair<std::string, int64_t> staging_index(const std::string& profile);
  // Every package of the profile with an artifact, for verify and finalize.
  std::vector<PackageRow> received_packages(const std::string& profile);
  // A profile's package rows, its plan's edges (by package id), the plan and its build profile,
  // copied under one lock: a consistent picture for verify and finalize (verify.cpp, release.cpp).
  struct Snapshot {
    std::vector<PackageRow> packages;
    std::vector<EdgeRow> edges;
    PlanInfo plan;
    std::optional<portage::BuildProfile> build_profile;
  };
  Snapshot snapshot(const std::string& profile);
  // Where a profile's artifacts are.
  std::filesystem::path staging_dir(const std::string& profile) const;

private:
  // What one transition did besides writing the store: events to log and effects (file removal,
  // cancellations to tell drones) to run only once it is committed.
  struct Transition {
    std::vector<EventRow> events;
    std::vector<std::function<void()>> after_commit;
    bool wake = false;            // claims may find work now
    bool staging_changed = false; // the staging index must be rebuilt
  };
  enum class Requeue { yes, no };
  struct Ended {
    PackageRow* package = nullptr; // the lease's package, if still in the plan
    bool held = false;             // the package was delegated to this lease alone
  };

  double now() const;
  Result<> transact(const std::function<void(Transition&)>& body);
  // Reads everything from the store into memory; the dep-failed flips the blocked packages imply.
  std::vector<DepFlip> read_state();
  void reload_after_failure();
  Result<> ensure_fresh();

  void event(Transition& tx, const std::string& kind, const std::string& drone, const std::string& package,
             const std::string& detail);
  void set_state(Transition& tx, PackageRow& row, PkgState state);
  void save_flips(Transition& tx, const std::vector<DepFlip>& flips);
  Ended end_lease(Transition& tx, LeaseRow lease, LeaseEnd how, const std::string& reason, Requeue requeue,
                  double duration = -1, const std::string& log_tail = "");
  void ground_drone(Transition& tx, Drone& drone, const std::string& reason, bool by_operator);
  void remove_artifact_after_commit(Transition& tx, const std::string& profile, const std::string& relative_path);
  std::optional<LeaseRow> find_lease(const std::string& id); // open, else stored
  // The drone `name` and its lease `id` (open or stored): forbidden when the drone is not
  // enrolled or the lease is another drone's, not_found when there is no such lease.
  Result<std::pair<Drone*, LeaseRow>> owned_lease(const std::string& id, const std::string& name);
  Drone* find_or_load_drone(const std::string& name);

  std::optional<portage::BuildProfile> load_build_profile(const std::string& hash);
  std::string staging_url(const std::string& profile) const;
  // May `drone` build packages of `profile` now (it serves it, did not refuse it, and its tree
  // is the plan's)? The refusal as a Block when not.
  Block profile_block(const Drone& drone, const std::string& profile) const;
  int running_of(const Drone& drone) const;
  Block block_of(const Drone& drone) const;
  bool package_fits(const PackageRow& row, const Drone& drone) const;
  std::optional<net::Lease> try_claim(Drone& drone, net::ClaimCode& code, std::string& reason);
  LeaseRow open_lease(Transition& tx, Drone& drone, PackageRow& row);
  net::Lease lease_view(const LeaseRow& lease, const PackageRow& row) const;
  void remove_orphan_artifacts();

  Store& m_store;
  CoordinatorOptions m_options;
  std::mutex m_mutex;
  std::condition_variable m_changed;                   // any change that may make a claim possible
  std::chrono::steady_clock::time_point m_last_wake{}; // of the latest transition that woke claims
  bool m_loaded = false;
  bool m_shutdown = false;
  std::mutex m_news_mutex; // after m_mutex when both are taken
  std::condition_variable m_news_changed;
  uint64_t m_news = 0;
  bool m_stale = false; // a reload after a failed transaction failed too: reload before use

  PlanState m_plan;
  DroneRegistry m_drones;
  LeaseBook m_leases;
  DroneTokens m_tokens;
  mutable std::shared_mutex m_reader_mutex;
  std::map<std::string, TokenRow> m_reader_tokens; // by token hash (read-only tokens)
  bool m_paused = false;

  uint64_t m_generation = 1; // bumps when any staging content changes
  struct StagingIndex {
    uint64_t generation = 0;
    std::string text;
    int64_t timestamp = 0;
  };
  std::map<std::string, StagingIndex> m_indexes;                 // by profile
  std::map<std::string, portage::BuildProfile> m_build_profiles; // parsed, by hash
};

} // namespace swarm::roles::orch
