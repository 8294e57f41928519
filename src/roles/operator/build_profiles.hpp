#pragma once
// Build profiles as the operator verbs meet them (portage/build_profile.hpp): this machine's,
// captured through portageq (client.portageq) from a configuration root, and a swarm profile's,
// stored content-addressed on the orchestrator with its plan. `fresh` and `release` send the
// first; `profile show`, `profile diff` and `client check` compare the two.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/subprocess.hpp"
#include "net/http_client.hpp"
#include "portage/build_profile.hpp"

namespace swarm::roles::operator_cli {

// A --config-root argument as Portage wants PORTAGE_CONFIGROOT: absolute, normalised ("" → "/").
std::string config_root_argument(const std::string& text);

// This machine's build profile: PORTAGE_CONFIGROOT=`config_root` ("/": Portage's default) as
// client.portageq reports it, with the package files of its etc/portage.
Result<portage::BuildProfile> capture_local_profile(const config::Config& config, const std::string& config_root,
                                                    subprocess::ProcessRunner& runner);

// Whether `fresh` and `release` send this machine's build profile with the plan, and from which
// configuration root: when a config root is given explicitly, or else when emerge runs here
// (from "/"); not for a saved emerge output or a plan file alone, which may come from another
// machine. nullopt: no build profile.
std::optional<std::string> build_profile_root(bool runs_emerge_here, const std::optional<std::string>& config_root);

// The build profile that goes with a plan, as build_profile_root() decides, and what a drone could
// not reproduce of it (portage/profile_warnings.hpp).
struct PlanBuildProfile {
  std::optional<portage::BuildProfile> profile; // none: the drones build with their own configuration
  std::string config_root;                      // where it was captured
  std::vector<std::string> warnings;            // one line each (-march=native, …)
};
Result<PlanBuildProfile> plan_build_profile(const config::Config& config, bool runs_emerge_here,
                                            const std::optional<std::string>& config_root,
                                            subprocess::ProcessRunner& runner);

// One swarm profile of the orchestrator (GET /api/v1/profiles) and, when its plan came with one,
// its build profile (GET /api/v1/profiles/HASH, checked against the hash).
struct SwarmProfile {
  std::string name;
  std::string hash; // "" when the plan was submitted without a build profile
  std::string source;
  std::string tree_timestamp;
  std::string portage_profile;
  double submitted_at = 0;
  std::string staging_url;
  std::string production_url;
  std::optional<portage::BuildProfile> build_profile;
};

// `name` as the orchestrator has it; not_found naming the profiles it has when it has no such one.
Result<SwarmProfile> fetch_swarm_profile(const net::HttpClient& client, const std::string& name);

// One difference between two build profiles (A and B). A setting shows both values, or, for a
// long one or a set of words (USE, each USE_EXPAND variable, FEATURES, ACCEPT_KEYWORDS), the words
// only one side has; a package file shows the lines only one side has.
struct ProfileDifference {
  std::string what;                   // "CFLAGS: \"-O2\" → \"-O3\"", "package.use/desktop: differs"
  std::vector<std::string> only_in_a; // words or lines (trimmed, non-empty) that B lacks
  std::vector<std::string> only_in_b; // and those A lacks
  // False for a difference that does not change a binary by itself: a repository's tree
  // timestamp (packages of another tree are other versions, which `client update` finds).
  bool changes_binaries = true;
};

// Every difference of `b` from `a`; empty when they are the same. USE, the USE_EXPAND variables,
// FEATURES and ACCEPT_KEYWORDS compare as sets of words (their order means nothing).
std::vector<ProfileDifference> compare_build_profiles(const portage::BuildProfile& a, const portage::BuildProfile& b);

// Whether any of `differences` changes a binary.
bool differences_change_binaries(const std::vector<ProfileDifference>& differences);

// The differences for a terminal: each on a line, a file's lines under it as "- " (A) and "+ " (B).
std::string describe_differences(const std::vector<ProfileDifference>& differences);

// [{"what", "only_in_a", "only_in_b", "changes_binaries"}…] for --json.
nlohmann::json differences_to_json(const std::vector<ProfileDifference>& differences);

// The build profile for a terminal: make.profile, the settings, each file with its lines, and the
// repositories, one item a line under four headings.
std::string describe_build_profile(const portage::BuildProfile& profile);

} // namespace swarm::roles::operator_cli
