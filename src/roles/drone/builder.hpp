#pragma once
// One build of a lease with real Portage (DESIGN "Drone build step"): the staging binhost in a
// private binrepos.conf, `emerge --usepkgonly --getbinpkgonly --nodeps` for the build
// dependencies, `emerge --buildpkgonly --nodeps` for the package, then the new
// PKGDIR/CAT/PN/PF-BUILD_ID.gpkg.tar found, validated, hashed and moved into the work dir.
// Processes run through the ProcessRunner seam, argv only, never a shell.

#include <cstdint>
#include <filesystem>
#include <mutex>
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
};

struct EmergeCommands {
  std::optional<subprocess::Spec> install_deps; // step 1, only when the lease has deps
  subprocess::Spec build;                       // step 2
};

// The argv and environment of both emerge runs for `lease`. Every atom is re-parsed and passed
// as `=cat/pkg-ver`; a cpv that does not parse (or has no category) is an invalid error.
// Output routing, cwd and the stop token are left for the caller to fill in.
Result<EmergeCommands> emerge_commands(const BuildSettings& settings, const net::Lease& lease);

// ${configroot}/etc/portage/binrepos.conf/swarm-staging.conf
std::filesystem::path staging_binrepos_path(const std::filesystem::path& portage_configroot);

// The [swarm-staging] repo: the staging URL with `drone:TOKEN@` as userinfo (Portage sends it
// as HTTP Basic), unsigned packages accepted, preferred over any other binhost.
Result<std::string> staging_binrepos_text(std::string_view staging_url, std::string_view token);

// Writes it (mode 0600: it holds the token), creating the binrepos.conf directory. Fails with a
// clear message when binrepos.conf is a plain file.
Result<> write_staging_binrepos(const std::filesystem::path& portage_configroot, std::string_view staging_url,
                                std::string_view token);

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

  // Runs both steps for `lease`, appending emerge's output to `log_path`; the artifact ends up
  // in `work_dir`. A stop request kills emerge's process group (Status::stopped).
  BuildOutcome build(const net::Lease& lease, const std::string& staging_url, const std::filesystem::path& work_dir,
                     const std::filesystem::path& log_path, std::stop_token stop);

  // Writes the staging binrepos.conf unless the same text is already there. Thread-safe.
  Result<> ensure_staging_binrepos(const std::string& staging_url);

  const BuildSettings& settings() const { return m_settings; }

private:
  subprocess::ProcessRunner& m_runner;
  BuildSettings m_settings;
  std::mutex m_binrepos_mutex;
  std::string m_binrepos_written;
};

} // namespace swarm::roles::drone
