// `swarm profile show` and `swarm profile diff` (issue 9): the build profile a swarm profile's plan
// was computed with — settings, make.profile, package files, repositories — as the orchestrator
// stores it, or this machine's (`--config-root DIR`), and the differences between two of them.

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

// One side of a comparison, or the profile shown: a name and its build profile.
struct Side {
  std::string label; // "profile desktop", "this machine (/)"
  std::string hash;  // of its build profile
  portage::BuildProfile build_profile;
};

Side swarm_side(const net::HttpClient& client, const std::string& name)
{
  auto profile = must(fetch_swarm_profile(client, name));
  if (!profile.build_profile) {
    throw_error(ErrorKind::conflict,
                fmt::format("profile {} has no build profile: its plan was submitted without one (`swarm fresh --from "
                            "FILE` without --config-root)",
                            name));
  }
  return {"profile " + name, profile.hash, std::move(*profile.build_profile)};
}

Side local_side(const VerbContext& context, const std::string& config_root)
{
  subprocess::SystemProcessRunner runner;
  auto profile = must(capture_local_profile(context.config, config_root, runner));
  auto hash = portage::build_profile_hash(profile);
  return {fmt::format("this machine ({})", config_root), std::move(hash), std::move(profile)};
}

// --- profile show -----------------------------------------------------------------------------

struct ProfileShowOptions {
  bool json = false;
  std::string name = std::string(k_default_profile);
  std::string config_root; // "": the orchestrator's profile `name`
};

int run_profile_show(const VerbContext& context, const ProfileShowOptions& options)
{
  if (!options.config_root.empty()) {
    const auto side = local_side(context, options.config_root);
    const auto warnings = portage::native_flag_warnings(side.build_profile);
    if (options.json) {
      print_json(json{{"config_root", options.config_root},
                      {"build_profile_hash", side.hash},
                      {"build_profile", portage::build_profile_to_json(side.build_profile)},
                      {"warnings", warnings}});
      return exit_code::k_ok;
    }
    fmt::print("{}  (build profile {})\n{}", side.label, side.hash.substr(0, 12),
               describe_build_profile(side.build_profile));
    for (const auto& warning : warnings) {
      fmt::print("warning: {}\n", warning);
    }
    return exit_code::k_ok;
  }
  auto client = make_client(context.config);
  const auto profile = must(fetch_swarm_profile(client, options.name));
  if (options.json) {
    print_json(json{{"name", profile.name},
                    {"build_profile_hash", profile.hash},
                    {"source", profile.source},
                    {"tree_timestamp", profile.tree_timestamp},
                    {"portage_profile", profile.portage_profile},
                    {"submitted_at", profile.submitted_at},
                    {"staging_url", profile.staging_url},
                    {"production_url", profile.production_url},
                    {"build_profile",
                     profile.build_profile ? portage::build_profile_to_json(*profile.build_profile) : json(nullptr)}});
    return exit_code::k_ok;
  }
  fmt::print("profile       {}\n", profile.name);
  fmt::print("plan          {} (tree {}, submitted {})\n", profile.source.empty() ? "-" : profile.source,
             profile.tree_timestamp.empty() ? "unknown" : profile.tree_timestamp, utc_time(profile.submitted_at));
  fmt::print("production    {}\n", profile.production_url);
  fmt::print("staging       {}\n", profile.staging_url);
  if (!profile.build_profile) {
    fmt::print("build profile none: the plan was submitted without one, so the drones build it with their own "
               "configuration (`{}` here sends this machine's)\n",
               profile_command("swarm fresh", profile.name));
    return exit_code::k_ok;
  }
  fmt::print("build profile {}\n{}", profile.hash, describe_build_profile(*profile.build_profile));
  return exit_code::k_ok;
}

// --- profile diff -----------------------------------------------------------------------------

struct ProfileDiffOptions {
  bool json = false;
  std::vector<std::string> names; // A B, or A alone with --config-root
  std::string config_root;        // "": both sides are the orchestrator's profiles
};

int run_profile_diff(const VerbContext& context, const ProfileDiffOptions& options)
{
  const size_t wanted = options.config_root.empty() ? 2 : 1;
  if (options.names.size() != wanted) {
    throw_error(ErrorKind::invalid, options.config_root.empty()
                                      ? "name two profiles (swarm profile diff A B), or one and --config-root DIR"
                                      : "with --config-root, name one profile: swarm profile diff A --config-root DIR");
  }
  for (const auto& name : options.names) {
    if (!net::is_valid_profile_name(name)) {
      throw_error(ErrorKind::invalid, fmt::format("\"{}\" is not a profile name", name));
    }
  }
  auto client = make_client(context.config);
  const auto a = swarm_side(client, options.names[0]);
  const auto b =
    options.config_root.empty() ? swarm_side(client, options.names[1]) : local_side(context, options.config_root);
  const auto differences = compare_build_profiles(a.build_profile, b.build_profile);
  const bool same = differences.empty();
  if (options.json) {
    print_json(json{{"a", {{"label", a.label}, {"build_profile_hash", a.hash}}},
                    {"b", {{"label", b.label}, {"build_profile_hash", b.hash}}},
                    {"same", same},
                    {"differences", differences_to_json(differences)}});
    return same ? exit_code::k_ok : exit_code::k_failure;
  }
  if (same) {
    fmt::print("{} and {} have the same build profile ({})\n", a.label, b.label, a.hash.substr(0, 12));
    return exit_code::k_ok;
  }
  fmt::print("A = {} ({})\nB = {} ({})\n", a.label, a.hash.substr(0, 12), b.label, b.hash.substr(0, 12));
  fmt::print("{}", describe_differences(differences));
  fmt::print("{} difference(s)\n", differences.size());
  return exit_code::k_failure;
}

} // namespace

void add_profile_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(
    {"profile", "Build profiles: the configuration each swarm profile's plan was computed with", nullptr, nullptr});
  verbs.push_back(make_verb<ProfileShowOptions>(
    "profile show", "Show a profile's build profile (settings, make.profile, package files, repositories)",
    [](CLI::App& app, ConfigFlags& flags, ProfileShowOptions& options) {
      add_client_flags(app, flags);
      add_json_flag(app, options.json);
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      app.add_option("name", options.name, "Profile name (default: default)")->check([](const std::string& name) {
        return net::is_valid_profile_name(name) ? std::string() : fmt::format("\"{}\" is not a profile name", name);
      });
      app.add_option("--config-root", options.config_root,
                     "Show this machine's instead, captured from DIR/etc/portage as PORTAGE_CONFIGROOT means it");
    },
    run_profile_show));
  verbs.push_back(make_verb<ProfileDiffOptions>(
    "profile diff",
    "Compare two profiles' build profiles, or one with this machine's (--config-root); exit 0 the same, 1 different",
    [](CLI::App& app, ConfigFlags& flags, ProfileDiffOptions& options) {
      add_client_flags(app, flags);
      add_json_flag(app, options.json);
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      app.add_option("profiles", options.names, "A B: two profile names (A alone with --config-root)")->required();
      app.add_option("--config-root", options.config_root,
                     "Compare A with this machine's configuration: DIR/etc/portage as PORTAGE_CONFIGROOT means it");
    },
    run_profile_diff));
}

} // namespace swarm::roles
