#pragma once
// The configuration a build runs with: a private PORTAGE_CONFIGROOT per lease, written into the
// lease's work dir, so a build never reads (or writes) the drone's own /etc/portage and
// concurrent builds never see each other's settings.
//
// With a build profile: the drone's make.conf keeps its machine-local settings and takes every
// setting that changes a binary from the profile (portage::profile_make_conf), make.profile
// points into the drone's copy of the profile's repository, the profile's package.* files and
// env/ replace the drone's, repos.conf lists the profile's repositories at the drone's
// locations. Without one: a copy of the drone's own configuration. Either way binrepos.conf is
// a directory holding only the staging repository (a drone's own binrepos.conf, file or
// directory, is never read: build dependencies come from staging), and package.use ends with
// `zz-swarm-pin`, which pins the leased package's USE to the plan's.

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "net/protocol.hpp"
#include "portage/build_profile.hpp"
#include "roles/drone/drone_facts.hpp"

namespace swarm::roles::drone {

// Why a lease cannot be built as its profile asks (net::RefuseRequest).
struct Refusal {
  std::string code; // chost_unsupported, repository_missing, profile_unavailable, build_root_unavailable, other
  std::string reason;
  bool operator==(const Refusal&) const = default;
};

// The first reason this drone cannot honour `profile` on a build base producing `base_chost`
// ("" when unknown), nullopt when it can.
std::optional<Refusal> check_profile(const portage::BuildProfile& profile, const DroneFacts& facts,
                                     std::string_view base_chost);

// The drone's make.conf as Portage reads it: CONFIGROOT/etc/make.conf, then
// The repositories a build with `profile` reads: those it names and its make.profile's; empty
// (every repository of the drone) without a profile.
std::set<std::string> profile_repositories(const portage::BuildProfile* profile);

// CONFIGROOT/etc/portage/make.conf (a file, or a directory of files in name order).
Result<std::string> read_machine_make_conf(const std::filesystem::path& configroot);

// The USE pin of the leased package: its IUSE from `repo_dir`'s md5-cache, each flag on as the
// plan says and off otherwise. Without a cache entry only the plan's enabled flags are pinned
// (on), and `note` says so. "" when there is nothing to pin.
std::string use_pin_for(const net::Lease& lease, const std::filesystem::path& repo_dir, std::string* note);

struct ConfigRootInputs {
  std::filesystem::path drone_configroot = "/";   // the drone's own PORTAGE_CONFIGROOT
  const DroneFacts* facts = nullptr;              // its repositories (may be unknown)
  const portage::BuildProfile* profile = nullptr; // nullptr: the drone's own configuration
  std::string staging_binrepos;                   // binrepos.conf/swarm-staging.conf ("": none)
  std::string use_pin;                            // package.use/zz-swarm-pin ("": none)
};

// Writes DIR/etc/portage afresh from `inputs` (what DIR held before is removed).
Result<> write_config_root(const std::filesystem::path& dir, const ConfigRootInputs& inputs);

} // namespace swarm::roles::drone
