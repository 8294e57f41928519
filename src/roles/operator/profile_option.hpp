#pragma once
// The swarm profile an operator verb acts on: `--profile NAME` (default `default`), and how the
// name travels — `?profile=NAME` on the read-only views, a field of the request bodies, and
// `--profile NAME` in the commands the verbs suggest. The default profile is left out of URLs
// and commands, so they read as they did before profiles existed.

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "roles/verbs.hpp"

namespace swarm::roles::operator_cli {

inline constexpr std::string_view k_default_profile = "default";

// Adds `--profile NAME` to `app`, bound to `profile`; a name that is not 1-64 of [A-Za-z0-9._-]
// (not starting with '.' or '-') is a usage error.
void add_profile_option(CLI::App& app, std::string& profile, const std::string& help);

// `path` with `profile=NAME` added to its query ("?" or "&"); unchanged for the default profile.
std::string profile_path(std::string path, const std::string& profile);

// A suggested command for `profile`: `swarm verify` → `swarm verify --profile NAME`; commands of
// verbs without profiles (pause, ground, drone enroll, …) and the default profile stay as they are.
std::string profile_command(const std::string& command, const std::string& profile);

// The drones (entries of GET /api/v1/drones or /status) that build for `profile`: those that
// declared it, or declared none (they serve every profile).
nlohmann::json drones_serving(const nlohmann::json& drones, const std::string& profile);

} // namespace swarm::roles::operator_cli
