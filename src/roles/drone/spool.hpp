#pragma once
// The drone's spool: PKGDIR for emerge, and one work directory per lease holding the build
// log, the finished artifact and a small JSON state file, so that a restarted drone knows what
// to finish (upload, report) and what to hand back (a build that never ended).
//
//   SPOOL/pkgdir/                  PKGDIR of every build
//   SPOOL/leases/ID/state.json     LeaseState, replaced atomically at each step
//   SPOOL/leases/ID/build.log      emerge's output (both steps)
//   SPOOL/leases/ID/PF-N.gpkg.tar  the artifact, until the orchestrator acknowledges it

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "net/protocol.hpp"

namespace swarm::roles::drone {

// How far a lease got; each phase is written before the next step starts.
enum class LeasePhase {
  building, // claimed, emerge may be running: never finished if found at start
  failed,   // the build failed; the failure report is not acknowledged yet
  built,    // the artifact is in the work dir, not acknowledged yet
  uploaded, // the orchestrator has the artifact; the success report is not acknowledged yet
};
std::string_view lease_phase_name(LeasePhase phase); // "building", "failed", "built", "uploaded"
std::optional<LeasePhase> lease_phase_from_name(std::string_view name);

struct LeaseState {
  net::Lease lease;
  LeasePhase phase = LeasePhase::building;
  int64_t started_at = 0; // epoch seconds
  double duration_seconds = 0;
  std::string reason;   // failed: one line saying why
  std::string artifact; // built: file name inside the work dir, "PF-BUILD_ID.gpkg.tar"
  std::string sha256;
  std::string xxh3_128;
  uint64_t size = 0;
};

// The state file's JSON: the lease as on the wire (net::Lease), its phase and what the build
// gave. Reading refuses a lease the protocol would refuse (an unsafe id, no cpv) and an artifact
// name that leaves the work dir; files of earlier versions (expires_at an integer) still read.
nlohmann::json lease_state_to_json(const LeaseState& state);
Result<LeaseState> lease_state_from_json(const nlohmann::json& json);

// What a starting drone does with a lease it finds in its spool.
enum class ResumeAction {
  return_lease, // the build never finished: give the lease back, remove the work dir
  upload,       // upload the artifact, then report success
  report,       // report (success after an acknowledged upload, or the failure)
};
ResumeAction resume_action(LeasePhase phase);

class Spool {
public:
  explicit Spool(std::filesystem::path root);

  // Creates the spool, its pkgdir and leases directories.
  Result<> prepare() const;

  const std::filesystem::path& root() const { return m_root; }
  std::filesystem::path pkgdir() const;
  std::filesystem::path work_dir(std::string_view lease_id) const;
  std::filesystem::path log_path(std::string_view lease_id) const;
  std::filesystem::path state_path(std::string_view lease_id) const;
  // The artifact of a built lease (empty when it has none).
  std::filesystem::path artifact_path(const LeaseState& state) const;

  // Creates the lease's work dir and writes its state (durably, atomically).
  Result<> save(const LeaseState& state) const;
  Result<LeaseState> load(std::string_view lease_id) const;

  // Every lease work dir, sorted by id: its state, or why it cannot be read (a crash between
  // mkdir and the first state write leaves a dir without one).
  struct Entry {
    std::string id;
    Result<LeaseState> state;
  };
  std::vector<Entry> scan() const;

  // Removes the lease's work dir with everything in it (no error if it is gone).
  Result<> remove(std::string_view lease_id) const;

private:
  std::filesystem::path m_root;
};

// The last `max_bytes` of a file, starting after the first newline of that window when there
// is one (so the tail starts on a line); "" when the file cannot be read.
std::string read_tail(const std::filesystem::path& path, uint64_t max_bytes);

} // namespace swarm::roles::drone
