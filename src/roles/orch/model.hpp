#pragma once
// The orchestrator's records: what the store persists and the coordinator keeps in memory.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::roles::orch {

// needed → delegated (a lease) → received; a failure returns it to needed until the package
// breaker blocks it; dependants of a blocked package are dep_failed.
enum class PkgState { needed, delegated, received, blocked, dep_failed };

// active → uploaded (artifact taken) → completed (reported); or → expired / returned / failed /
// cancelled. Only an active or expired lease may still deliver an artifact.
enum class LeaseState { active, uploaded, completed, expired, returned, failed, cancelled };

std::string_view to_string(PkgState state);
std::string_view to_string(LeaseState state);
std::optional<PkgState> parse_pkg_state(std::string_view text);
std::optional<LeaseState> parse_lease_state(std::string_view text);

struct PackageRow {
  int64_t id = 0;
  std::string profile = "default"; // the swarm profile whose plan it is in
  std::string cpv;
  std::string slot;
  std::string repo;
  std::vector<std::string> use;
  double plan_seconds = 0;   // the plan's expected duration (0: unknown)
  int64_t plan_position = 0; // index in the submitted plan (Portage's merge order when it has one)
  bool in_plan = true;       // false: kept only because it was built (not in the current plan)
  PkgState state = PkgState::needed;
  int failures = 0;
  std::set<std::string> failed_on; // drone names
  std::string last_failure;        // reason of the last failure
  double retry_at = 0;             // auto-retry of a blocked package not before this time
  int retries = 0;
  // The artifact, once received.
  std::string artifact_path; // relative to staging/
  std::string sha256;
  uint64_t size = 0;
  int64_t build_id = 0;
  double received_at = 0;
  std::string built_by;
  std::string built_tree_timestamp;
  std::string index_entry; // JSON object: the Packages block of this artifact
  int64_t released_in = 0; // release that first published it (0: unreleased)
};

struct EdgeRow {
  int64_t package = 0; // waits …
  int64_t needs = 0;   // … for this one
  std::string kind;    // DEPEND, BDEPEND, IDEPEND, RDEPEND, PDEPEND
};

struct DroneRow {
  int64_t id = 0;
  std::string name;
  std::string token_hash; // SHA-256 hex of the token
  double enrolled_at = 0;
  int cores = 0;
  int slots = 0;
  uint64_t ram_bytes = 0;
  uint64_t disk_free_bytes = 0;
  std::string tree_timestamp;
  std::string version;
  double last_seen = 0;
  bool online = false;
  int consecutive_failures = 0;
  double grounded_until = 0;
  bool probation = false;
  double cpu_percent = 0;
  double mem_percent = 0;
  double load1 = 0;
  std::vector<std::string> profiles; // swarm profiles it builds for; empty: all
  std::string build_root;            // "isolated" or "host" (as it registered)
  std::string chost;
  double revoked_at = 0; // when `swarm drone revoke` took its token away (0: not revoked)
};

// A token that is not a drone's: today a read-only one (`swarm token create --read-only`).
struct TokenRow {
  std::string name;
  std::string token_hash; // SHA-256 hex of the token
  std::string role;       // "reader"
  double created_at = 0;
};

struct LeaseRow {
  std::string id;
  int64_t package = 0;
  int64_t drone = 0;
  double created = 0;
  double expires = 0;
  LeaseState state = LeaseState::active;
  int64_t build = 0; // builds.id of this attempt
};

struct BuildRow {
  int64_t id = 0;
  int64_t package = 0;
  int64_t drone = 0;
  std::string lease;
  double started = 0;
  double ended = 0;   // 0 while running
  std::string result; // running, success, failure, expired, returned, cancelled
  double duration = 0;
  std::string reason;
  std::string log_tail;
};

struct EventRow {
  int64_t id = 0;
  double time = 0;
  std::string kind;
  std::string drone;
  std::string package;
  std::string detail;
};

// The plan of one swarm profile.
struct PlanInfo {
  std::string profile = "default"; // the swarm profile
  std::string source;
  std::string tree_timestamp;
  std::string portage_profile; // the make.profile the plan was computed with ("default/linux/amd64/23.0")
  bool merge_order = false;
  double submitted_at = 0;
  std::string build_profile; // hash of the captured configuration (build_profiles table); "" when none
};

} // namespace swarm::roles::orch
