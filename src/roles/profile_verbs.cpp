// `swarm profile show` and `swarm profile diff` (issue 9): the build profile a swarm profile's plan
// was computed with — settings, make.profile, package files, repositories — as the orchestrator
// stores it (by profile name or hash), or this machine's (a configuration root), and the
// differences between two of them.

#include <algorithm>
#include <optional>

#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "core/subprocess.hpp"
#include "net/protocol.hpp"
#include "portage/profile_warnings.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/build_profiles.hpp"
#include "roles/operator/profile_option.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using namespace operator_cli;

// One side of a comparison, or the profile shown: what it is and its build profile.
struct Side {
  std::string label; // "profile desktop", "build profile 3f2a…", "this machine (/)"
  std::string hash;  // of its build profile
  portage::BuildProfile build_profile;
  std::optional<SwarmProfile> profile; // when it is a swarm profile of the orchestrator
  std::string config_root;             // when it was captured here
};

bool is_hash(const std::string& text)
{
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// NAME, HASH or DIR, as `profile show` and `profile diff` take them: a path (starting with '/' or
// '.', which no profile name does) is a configuration root captured here; 64 hex digits are a
// build profile the orchestrator stores; anything else is a swarm profile's name.
// A swarm profile whose plan came without a build profile is an error, unless `optional`: then
// the side has no hash.
Side resolve_side(const VerbContext& context, const std::string& what, bool optional = false)
{
  if (what.starts_with('/') || what.starts_with('.')) {
    const auto root = config_root_argument(what);
    subprocess::SystemProcessRunner runner;
    auto profile = must(capture_local_profile(context.config, root, runner));
    auto hash = portage::build_profile_hash(profile);
    return {fmt::format("this machine ({})", root), std::move(hash), std::move(profile), std::nullopt, root};
  }
  auto client = make_client(context.config);
  if (is_hash(what)) {
    auto stored = must(client.get_json("/api/v1/profiles/" + what));
    auto profile = portage::build_profile_from_json(stored);
    if (!profile) {
      throw_error(ErrorKind::internal,
                  fmt::format("the build profile {} is unreadable: {}", what, profile.error().message));
    }
    if (portage::build_profile_hash(*profile) != what) {
      throw_error(ErrorKind::internal, fmt::format("the build profile stored as {} has another hash", what));
    }
    return {"build profile " + what.substr(0, 12), what, std::move(*profile), std::nullopt, ""};
  }
  if (!net::is_valid_profile_name(what)) {
    throw_error(ErrorKind::invalid,
                fmt::format("\"{}\" is neither a profile name, a build profile hash nor a directory", what));
  }
  auto profile = must(fetch_swarm_profile(client, what));
  if (!profile.build_profile && optional) {
    return {"profile " + what, "", {}, std::move(profile), ""};
  }
  if (!profile.build_profile) {
    throw_error(ErrorKind::conflict,
                fmt::format("profile {} has no build profile: its plan was submitted without one (`swarm fresh --from "
                            "FILE` without --config-root)",
                            what));
  }
  auto build_profile = std::move(*profile.build_profile);
  profile.build_profile.reset();
  auto hash = profile.hash;
  return {"profile " + what, std::move(hash), std::move(build_profile), std::move(profile), ""};
}

// --- profile show -----------------------------------------------------------------------------

struct ProfileShowOptions {
  bool json = false;
  std::string what = std::string(k_default_profile); // NAME, HASH or DIR
};

int run_profile_show(const VerbContext& context, const ProfileShowOptions& options)
{
  const auto side = resolve_side(context, options.what, true);
  const auto warnings = portage::native_flag_warnings(side.build_profile);
  if (options.json) {
    json out{{"build_profile_hash", side.hash},
             {"build_profile", side.hash.empty() ? json(nullptr) : portage::build_profile_to_json(side.build_profile)},
             {"warnings", warnings}};
    if (side.profile) {
      const auto& profile = *side.profile;
      out["name"] = profile.name;
      out["source"] = profile.source;
      out["tree_timestamp"] = profile.tree_timestamp;
      out["portage_profile"] = profile.portage_profile;
      out["submitted_at"] = profile.submitted_at;
      out["staging_url"] = profile.staging_url;
      out["production_url"] = profile.production_url;
    }
    if (!side.config_root.empty()) {
      out["config_root"] = side.config_root;
    }
    print_json(out);
    return exit_code::k_ok;
  }
  if (side.profile) {
    const auto& profile = *side.profile;
    fmt::print("profile       {}\n", profile.name);
    fmt::print("plan          {} (tree {}, submitted {})\n", profile.source.empty() ? "-" : profile.source,
               profile.tree_timestamp.empty() ? "unknown" : profile.tree_timestamp, utc_time(profile.submitted_at));
    fmt::print("production    {}\n", profile.production_url);
    fmt::print("staging       {}\n", profile.staging_url);
  } else {
    fmt::print("{}\n", side.label);
  }
  if (side.hash.empty()) {
    fmt::print("build profile none: the plan was submitted without one, so the drones build it with their own "
               "configuration (`{}` here sends this machine's)\n",
               profile_command("swarm fresh", side.profile->name));
    return exit_code::k_ok;
  }
  fmt::print("build profile {}\n{}", side.hash, describe_build_profile(side.build_profile));
  for (const auto& warning : warnings) {
    fmt::print("warning: {}\n", warning);
  }
  return exit_code::k_ok;
}

// --- profile diff -----------------------------------------------------------------------------

struct ProfileDiffOptions {
  bool json = false;
  std::string a; // NAME, HASH or DIR
  std::string b;
};

int run_profile_diff(const VerbContext& context, const ProfileDiffOptions& options)
{
  const auto a = resolve_side(context, options.a);
  const auto b = resolve_side(context, options.b);
  const auto differences = compare_build_profiles(a.build_profile, b.build_profile);
  const bool differ = differences_change_binaries(differences);
  if (options.json) {
    print_json(json{{"a", {{"label", a.label}, {"build_profile_hash", a.hash}}},
                    {"b", {{"label", b.label}, {"build_profile_hash", b.hash}}},
                    {"same", differences.empty()},
                    {"binaries_differ", differ},
                    {"differences", differences_to_json(differences)}});
    return differ ? exit_code::k_failure : exit_code::k_ok;
  }
  if (differences.empty()) {
    fmt::print("{} and {} have the same build configuration ({})\n", a.label, b.label, a.hash.substr(0, 12));
    return exit_code::k_ok;
  }
  fmt::print("A = {} ({})\nB = {} ({})\n", a.label, a.hash.substr(0, 12), b.label, b.hash.substr(0, 12));
  fmt::print("{}", describe_differences(differences));
  fmt::print("{} difference(s){}\n", differences.size(), differ ? "" : "; none of them changes a binary by itself");
  return differ ? exit_code::k_failure : exit_code::k_ok;
}

} // namespace

void add_profile_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(
    {"profile", "Build profiles: the configuration each swarm profile's plan was computed with", nullptr, nullptr});
  const std::string what = "NAME (a swarm profile), HASH (a stored build profile) or DIR (a configuration root here, "
                           "DIR/etc/portage as PORTAGE_CONFIGROOT means it; starts with / or .)";
  verbs.push_back(make_verb<ProfileShowOptions>(
    "profile show", "Show a build profile: settings, make.profile, package files, repositories",
    [what](CLI::App& app, ConfigFlags& flags, ProfileShowOptions& options) {
      add_client_flags(app, flags);
      add_json_flag(app, options.json);
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      app.add_option("profile", options.what, what + " (default: default)");
    },
    run_profile_show));
  verbs.push_back(make_verb<ProfileDiffOptions>(
    "profile diff", "Compare two build profiles (exit 0 when none of the differences changes a binary, 1 otherwise)",
    [what](CLI::App& app, ConfigFlags& flags, ProfileDiffOptions& options) {
      add_client_flags(app, flags);
      add_json_flag(app, options.json);
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      app.add_option("a", options.a, "A: " + what)->required();
      app.add_option("b", options.b, "B: the same kinds as A")->required();
    },
    run_profile_diff));
}

} // namespace swarm::roles
