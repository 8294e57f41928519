#pragma once
// One build of a lease with real Portage (DESIGN "Drone build step"): with a private
// configuration root whose binrepos.conf holds the staging binhost (roles/drone/config_root),
// `emerge --usepkgonly --getbinpkgonly --nodeps` for the build dependencies, `emerge
// --buildpkgonly --nodeps` for the package — each through the build-root helper when the lease
// has one — then the new PKGDIR/CAT/PN/PF-BUILD_ID.gpkg.tar found, validated, hashed and moved
// into the work dir, and PKGDIR/Packages made to list only what is still there. Processes run
// through the ProcessRunner seam, argv only, never a shell.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/subprocess.hpp"
#include "net/protocol.hpp"
#include "portage/pkgdir.hpp"
#include "portage/version.hpp"

namespace swarm::roles::drone {

struct BuildSettings {
  std::string emerge = "/usr/bin/emerge";         // drone.emerge
  std::filesystem::path portage_configroot = "/"; // drone.portage_configroot
  std::filesystem::path pkgdir;                   // SPOOL/pkgdir
  int jobs = 1;                                   // MAKEOPTS -jN
  std::string token;                              // the drone token, for the staging URL
  std::filesystem::path repo_dir;                 // build(lease, staging_url, …): the USE pin's md5-cache
};

// Whether the dependency step skips what the root already has installed.
enum class DepsInstall {
  skip_installed, // --noreplace: the drone's own system, or a kept root whose deps are trusted
  reinstall,      // a fresh root: the plan's binaries replace whatever version the base has
};

// How one lease's emerges run.
struct BuildEnvironment {
  std::filesystem::path configroot; // PORTAGE_CONFIGROOT of both runs (a private root)
  std::vector<std::string> wrapper; // argv placed before emerge's (the helper, up to its "--")
  std::vector<std::string> unset;   // variables of the drone's environment emerge must not see
  DepsInstall deps = DepsInstall::skip_installed;
};

struct EmergeCommands {
  std::optional<subprocess::Spec> install_deps; // step 1, only when the lease has deps
  subprocess::Spec build;                       // step 2
};

// The argv and environment of both emerge runs for `lease`. Every atom is re-parsed and passed
// as `=cat/pkg-ver`; a cpv that does not parse (or has no category) is an invalid error.
// Output routing, cwd and the stop token are left for the caller to fill in.
Result<EmergeCommands> emerge_commands(const BuildSettings& settings, const net::Lease& lease);

// The same commands as `environment` runs them: its PORTAGE_CONFIGROOT, its wrapper before
// each argv, its variables unset, and --noreplace dropped when dependencies are reinstalled.
void apply_environment(EmergeCommands& commands, const BuildEnvironment& environment);

// The [swarm-staging] repo: the staging URL with `drone:TOKEN@` as userinfo (Portage sends it
// as HTTP Basic), unsigned packages accepted, preferred over any other binhost.
Result<std::string> staging_binrepos_text(std::string_view staging_url, std::string_view token);

// The package this build produced: the highest BUILD_ID among the PKGDIR files of `cpv`
// (portage::package_files) not in `before`, the file names that existed when the build started.
// nullopt when the build produced none.
std::optional<portage::PackageFile> find_new_artifact(const std::filesystem::path& pkgdir, const portage::Cpv& cpv,
                                                      const std::set<std::string>& before);

// The line of a failed emerge's output that best says why (a missing binary, a missing build
// dependency, Portage's ERROR lines …), trimmed to at most 300 bytes; "" for an empty log.
std::string telling_line(std::string_view log_text);

// True when the output says the drone itself lacks something (a dependency outside the plan
// that is not installed): a drone environment problem, not the package's.
bool is_environment_problem(std::string_view log_text);

struct BuildOutcome {
  enum class Status { success, failure, stopped };
  Status status = Status::failure;
  std::filesystem::path artifact; // success: moved into the work dir
  std::string sha256;
  std::string xxh3_128;
  uint64_t size = 0;
  std::string reason; // failure: one line
  double seconds = 0;
};

class Builder {
public:
  Builder(subprocess::ProcessRunner& runner, BuildSettings settings);

  // Runs both steps for `lease` as `environment` says, appending emerge's output to
  // `log_path`; the artifact ends up in `work_dir`. A stop request kills emerge's process group
  // (Status::stopped).
  BuildOutcome build(const net::Lease& lease, const BuildEnvironment& environment,
                     const std::filesystem::path& work_dir, const std::filesystem::path& log_path,
                     std::stop_token stop);

  // The same on this machine's own system (no build root) with a private configuration root in
  // WORK_DIR/configroot: a copy of settings().portage_configroot with the staging binhost and
  // the lease's USE pin (from settings().repo_dir). What `swarm build-local` runs.
  BuildOutcome build(const net::Lease& lease, const std::string& staging_url, const std::filesystem::path& work_dir,
                     const std::filesystem::path& log_path, std::stop_token stop);

  const BuildSettings& settings() const { return m_settings; }

private:
  subprocess::ProcessRunner& m_runner;
  BuildSettings m_settings;
};

} // namespace swarm::roles::drone
