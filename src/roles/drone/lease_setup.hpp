#pragma once
// Everything a lease needs before its first emerge: its build profile (fetched once, checked
// against its hash), the decision whether this drone can honour it (else a refusal with a
// reason code), its private configuration root with the USE pin, and its build root.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/protocol.hpp"
#include "roles/drone/build_root.hpp"
#include "roles/drone/builder.hpp"
#include "roles/drone/config_root.hpp"
#include "roles/drone/drone_facts.hpp"
#include "roles/drone/profile_cache.hpp"

namespace swarm::roles::drone {

struct LeaseSetupSettings {
  std::filesystem::path drone_configroot = "/"; // drone.portage_configroot
  std::filesystem::path pkgdir;                 // the spool's PKGDIR (bound into the root)
  std::filesystem::path fallback_repo_dir;      // drone.repo_dir: the pin's md5-cache when portageq is unknown
  std::string token;                            // for the staging URL in binrepos.conf
  DroneFacts facts;
  std::map<std::filesystem::path, std::string> base_chosts; // build base → its CHOST (the drone's own for "/")
};

// A lease ready to build: how its emerges run, and the root they run in (released by finish()).
struct PreparedLease {
  BuildEnvironment environment;
  std::optional<RootUse> root;
  std::vector<std::string> notes; // for the build log (a pin that could not be complete …)
};

struct SetupOutcome {
  std::optional<PreparedLease> prepared;
  std::optional<Refusal> refusal; // the drone cannot build it as asked: refuse the lease
  std::string failure;            // neither: something broke (a full disk …); the build fails
};

class LeaseSetup {
public:
  LeaseSetup(LeaseSetupSettings settings, ProfileCache& profiles, BuildRoots& roots);

  // Prepares `lease` in `work_dir` (its configuration root goes to WORK_DIR/configroot, the
  // process group record to WORK_DIR/emerge.pgid).
  SetupOutcome prepare(const net::Lease& lease, const std::string& staging_url, const std::filesystem::path& work_dir);

  // Discards (or unlocks) the lease's root.
  void finish(PreparedLease& prepared) const;

  const LeaseSetupSettings& settings() const { return m_settings; }

private:
  std::vector<isolation::Bind> binds(const portage::BuildProfile* profile,
                                     const std::filesystem::path& configroot) const;

  LeaseSetupSettings m_settings;
  ProfileCache& m_profiles;
  BuildRoots& m_roots;
};

// The record file of a lease's emerge process group, in its work dir.
std::filesystem::path process_record_path(const std::filesystem::path& work_dir);

} // namespace swarm::roles::drone
