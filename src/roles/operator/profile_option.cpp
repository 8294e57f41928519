#include "roles/operator/profile_option.hpp"

#include <algorithm>
#include <array>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/strings.hpp"
#include "net/protocol.hpp"

namespace swarm::roles::operator_cli {

namespace {

// The verbs that take --profile (the others act on the whole swarm).
constexpr std::array<std::string_view, 19> k_profile_verbs = {
  "status", "monitor",     "verify",      "finalize",    "releases", "rollback", "release",
  "fresh",  "unblock",     "fix-blocked", "build-local", "logs",     "history",  "drones",
  "submit", "sync-verify", "queue",       "profile",     "client"};

} // namespace

void add_profile_option(CLI::App& app, std::string& profile, const std::string& help)
{
  app.add_option("--profile", profile, help)
    ->type_name("NAME")
    ->check(
      [](const std::string& name) {
        return net::is_valid_profile_name(name)
                 ? std::string()
                 : fmt::format("\"{}\" is not a profile name (1-64 of A-Z a-z 0-9 . _ -, not starting with . or -)",
                               name);
      },
      "NAME");
}

std::string profile_path(std::string path, const std::string& profile)
{
  if (profile.empty() || profile == k_default_profile) {
    return path;
  }
  path += path.find('?') == std::string::npos ? '?' : '&';
  return path + "profile=" + profile; // profile names need no escaping
}

std::string profile_command(const std::string& command, const std::string& profile)
{
  if (profile.empty() || profile == k_default_profile || command.find("--profile") != std::string::npos) {
    return command;
  }
  const auto words = strings::split_any(command);
  if (words.size() < 2 || words[0] != "swarm" ||
      std::find(k_profile_verbs.begin(), k_profile_verbs.end(), words[1]) == k_profile_verbs.end()) {
    return command;
  }
  return command + " --profile " + profile;
}

nlohmann::json drones_serving(const nlohmann::json& drones, const std::string& profile)
{
  auto out = nlohmann::json::array();
  if (!drones.is_array()) {
    return out;
  }
  for (const auto& drone : drones) {
    const auto profiles = drone.is_object() ? drone.value("profiles", nlohmann::json::array()) : nlohmann::json();
    if (!profiles.is_array() || profiles.empty() ||
        std::find(profiles.begin(), profiles.end(), nlohmann::json(profile)) != profiles.end()) {
      out.push_back(drone);
    }
  }
  return out;
}

} // namespace swarm::roles::operator_cli
