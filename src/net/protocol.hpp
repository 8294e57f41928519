#pragma once
// The wire protocol (docs/protocol.md), defined once: every message the orchestrator, drones,
// the gateway and the CLI exchange, with its JSON form. Each type has to_json/from_json found by
// argument-dependent lookup, so `json j = message` and `j.get<Message>()` work. from_json is
// strict about what it reads: a field of the wrong type or out of range throws Fatal with an
// ErrorKind::invalid one-line message naming the field (an HTTP route answers it with 400);
// unknown fields are ignored, absent optional fields take the defaults below.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace swarm::net {

// --- drones (D→O, drone token) ------------------------------------------------------------------

// A package handed to one drone. `deps` are the plan packages to install before building `cpv`
// (its build dependencies and their runtime closure, never `cpv` itself), in dependency order.
struct Lease {
  std::string id;
  std::string cpv;
  std::string slot;
  std::string repo;
  std::vector<std::string> use;
  std::vector<std::string> deps;
  double expires_at = 0; // epoch seconds
  double expected_seconds = 0;
  std::string staging_url;
  std::string tree_timestamp;
  std::string profile = "default"; // the swarm profile the package is built for
  std::string profile_hash;        // its build profile (GET /api/v1/profiles/HASH); "" when none
};
void to_json(nlohmann::json& out, const Lease& lease);
void from_json(const nlohmann::json& in, Lease& lease); // id must be safe as a file name, cpv present

// A swarm profile name: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-' (it names directories
// and URL paths).
bool is_valid_profile_name(std::string_view name);

// True for lease ids usable as a directory name: 1–128 of [A-Za-z0-9._-], not "." or "..".
bool is_safe_lease_id(std::string_view id);

// POST /api/v1/drones/register
struct RegisterRequest {
  std::string name;
  int protocol = 0; // filled with k_protocol_version by to_json
  std::string version;
  int cores = 0;
  int slots = 1; // 1-256
  uint64_t ram_bytes = 0;
  uint64_t disk_free_bytes = 0;
  std::string tree_timestamp;
  std::vector<std::string> profiles;   // the swarm profiles it builds for; empty: all
  std::string build_root = "isolated"; // "isolated" (private overlay per build) or "host"
  std::string chost;                   // what its build base produces ("" when unknown)
};
void to_json(nlohmann::json& out, const RegisterRequest& request);
void from_json(const nlohmann::json& in, RegisterRequest& request);

struct Registration {
  std::string drone;
  double heartbeat_interval = 10;
  double lease_ttl = 120;
  double claim_wait = 20;
  std::string staging_url;
  std::vector<Lease> leases; // the drone's leases that are still open
};
void to_json(nlohmann::json& out, const Registration& registration);
void from_json(const nlohmann::json& in, Registration& registration);

// POST /api/v1/drones/heartbeat
struct HeartbeatRequest {
  double cpu_percent = 0; // 0-100 (a busy box may report a little over)
  double mem_percent = 0;
  double load1 = 0;
  uint64_t disk_free_bytes = 0;
  std::optional<std::string> tree_timestamp; // absent: unchanged
  std::vector<std::string> leases;           // the leases it is working on
};
void to_json(nlohmann::json& out, const HeartbeatRequest& request);
void from_json(const nlohmann::json& in, HeartbeatRequest& request);

struct HeartbeatReply {
  std::string state; // online, probation, grounded
  std::string reason;
  std::vector<std::string> cancel; // leases to stop working on
};
void to_json(nlohmann::json& out, const HeartbeatReply& reply);
void from_json(const nlohmann::json& in, HeartbeatReply& reply);

// Why a claim returned no lease (docs/protocol.md lists them). The wire form is the snake_case
// name; a code this build does not know reads as `other`.
enum class ClaimCode {
  none,                     // a lease was given
  paused,                   // the operator paused the queue
  grounded,                 // the drone is grounded (circuit breaker or operator)
  probation,                // on probation after grounding: one package at a time
  tree_mismatch,            // its Portage tree differs from the plan's
  slots_full,               // every slot it registered is busy
  nothing_to_build,         // no package of the plan is waiting to be built
  waiting_for_dependencies, // packages wait, but none has all its dependencies yet
  left_for_other_drones,    // the ready packages go to other drones (failed here, heavy)
  shutting_down,            // the orchestrator is stopping
  state_unavailable,        // the state database refused the write; try again
  other,
};
std::string_view to_string(ClaimCode code);
ClaimCode parse_claim_code(std::string_view text);

// POST /api/v1/claim?wait=SECONDS
struct ClaimReply {
  std::optional<Lease> lease;
  ClaimCode code = ClaimCode::none;
  std::string reason; // the code in words, with details ("tree X differs from the plan's Y")
};
void to_json(nlohmann::json& out, const ClaimReply& reply);
void from_json(const nlohmann::json& in, ClaimReply& reply);

// PUT /api/v1/leases/{id}/artifact
struct UploadReply {
  bool received = true;
  bool duplicate = false; // this very artifact was taken before
  std::string path;       // CAT/PN/PF-BUILD_ID.gpkg.tar under staging
  std::string sha256;
  uint64_t size = 0;
};
void to_json(nlohmann::json& out, const UploadReply& reply);
void from_json(const nlohmann::json& in, UploadReply& reply);

// POST /api/v1/leases/{id}/report
enum class BuildResult { success, failure };
struct ReportRequest {
  BuildResult result = BuildResult::failure;
  double duration_seconds = 0; // 0 to 30 days
  std::string log_tail;        // the orchestrator keeps the last 256 KiB
  std::string reason;
};
void to_json(nlohmann::json& out, const ReportRequest& request);
void from_json(const nlohmann::json& in, ReportRequest& request);

struct ReportReply {
  bool accepted = true;
  bool duplicate = false; // the lease had been reported before
};
void to_json(nlohmann::json& out, const ReportReply& reply);
void from_json(const nlohmann::json& in, ReportReply& reply);

// POST /api/v1/leases/{id}/refuse: the drone cannot build the lease as its profile asks and
// will not build something else. The package goes back to the queue without counting as a
// failure, and the drone gets no more packages of that profile until it registers again.
// Codes: chost_unsupported, repository_missing, profile_unavailable, build_root_unavailable, other.
struct RefuseRequest {
  std::string code;
  std::string reason;
};
void to_json(nlohmann::json& out, const RefuseRequest& request);
void from_json(const nlohmann::json& in, RefuseRequest& request);

// --- plan and control (C→O, admin token) ----------------------------------------------------

// POST /api/v1/drones/enroll
struct EnrollRequest {
  std::string name; // 1-64 of [A-Za-z0-9._-]
};
void to_json(nlohmann::json& out, const EnrollRequest& request);
void from_json(const nlohmann::json& in, EnrollRequest& request);

struct EnrollReply {
  std::string name;
  std::string token; // shown once
};
void to_json(nlohmann::json& out, const EnrollReply& reply);
void from_json(const nlohmann::json& in, EnrollReply& reply);

// POST /api/v1/plan. The body also holds "plan": the plan's own JSON (portage/plan.hpp), which
// the orchestrator reads with portage::plan_from_json.
enum class PlanMode { replace, add };
// It may also hold "build_profile": the client's captured configuration (portage/build_profile.hpp).
struct PlanRequest {
  PlanMode mode = PlanMode::replace;
  bool clear_staging = false;
  std::string profile = "default"; // the swarm profile whose plan this is ([A-Za-z0-9._-], 1-64)
};
void to_json(nlohmann::json& out, const PlanRequest& request);
void from_json(const nlohmann::json& in, PlanRequest& request);

struct PlanReply {
  size_t packages = 0;
  size_t added = 0;
  size_t removed = 0;
  size_t kept = 0;
  size_t reset = 0; // to be built again (USE, slot, repository or tree changed)
  bool changed = false;
  std::vector<std::string> warnings;
};
void to_json(nlohmann::json& out, const PlanReply& reply);
void from_json(const nlohmann::json& in, PlanReply& reply);

// POST /api/v1/control/pause and /resume (no body)
struct PauseReply {
  bool paused = false;
};
void to_json(nlohmann::json& out, const PauseReply& reply);
void from_json(const nlohmann::json& in, PauseReply& reply);

// POST /api/v1/control/reset (no body)
struct ResetReply {
  size_t returned = 0;
};
void to_json(nlohmann::json& out, const ResetReply& reply);
void from_json(const nlohmann::json& in, ResetReply& reply);

// POST /api/v1/control/unblock and /retry
struct UnblockRequest {
  std::vector<std::string> packages; // CAT/PF; empty: every blocked package of the profile
  std::string profile = "default";
};
void to_json(nlohmann::json& out, const UnblockRequest& request);
void from_json(const nlohmann::json& in, UnblockRequest& request);

struct UnblockReply {
  std::vector<std::string> unblocked;
};
void to_json(nlohmann::json& out, const UnblockReply& reply);
void from_json(const nlohmann::json& in, UnblockReply& reply);

// POST /api/v1/control/ground and /unground
struct GroundRequest {
  std::string drone;
};
void to_json(nlohmann::json& out, const GroundRequest& request);
void from_json(const nlohmann::json& in, GroundRequest& request);

struct GroundReply {
  std::string drone;
  bool grounded = false;
};
void to_json(nlohmann::json& out, const GroundReply& reply);
void from_json(const nlohmann::json& in, GroundReply& reply);

// POST /api/v1/control/balance (no body)
struct BalanceReply {
  std::vector<std::string> moved; // packages taken from drones that cannot make progress
};
void to_json(nlohmann::json& out, const BalanceReply& reply);
void from_json(const nlohmann::json& in, BalanceReply& reply);

// POST /api/v1/operator/local-build
struct LocalBuildRequest {
  std::string drone;   // local-HOST
  std::string package; // CAT/PF
  std::string profile = "default";
};
void to_json(nlohmann::json& out, const LocalBuildRequest& request);
void from_json(const nlohmann::json& in, LocalBuildRequest& request);

struct LocalBuildReply {
  std::string drone;
  std::string token;
  Lease lease;
};
void to_json(nlohmann::json& out, const LocalBuildReply& reply);
void from_json(const nlohmann::json& in, LocalBuildReply& reply);

// --- releases (C→O, admin token) ----------------------------------------------------------------

// POST /api/v1/releases/finalize
struct FinalizeRequest {
  bool force = false;
  std::optional<int> threshold; // 0-100; absent: orch.risk_threshold
  std::string profile = "default";
};
void to_json(nlohmann::json& out, const FinalizeRequest& request);
void from_json(const nlohmann::json& in, FinalizeRequest& request);

// POST /api/v1/releases/rollback
struct RollbackRequest {
  std::optional<std::string> release; // absent: the release before the current one
  std::string profile = "default";
};
void to_json(nlohmann::json& out, const RollbackRequest& request);
void from_json(const nlohmann::json& in, RollbackRequest& request);

} // namespace swarm::net
