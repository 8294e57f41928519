#include <doctest/doctest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "roles/operator/profile_option.hpp"

using namespace swarm::roles::operator_cli;
using nlohmann::json;

TEST_CASE("profile option: --profile NAME, checked")
{
  CLI::App app;
  std::string profile = "default";
  add_profile_option(app, profile, "the profile");
  app.parse(std::vector<std::string>{"desktop", "--profile"}); // CLI11 takes the vector reversed
  CHECK(profile == "desktop");
  CLI::App bad;
  std::string other;
  add_profile_option(bad, other, "the profile");
  CHECK_THROWS_AS(bad.parse(std::vector<std::string>{"../x", "--profile"}), CLI::ValidationError);
  CHECK_THROWS_AS(bad.parse(std::vector<std::string>{".hidden", "--profile"}), CLI::ValidationError);
}

TEST_CASE("profile option: paths and suggested commands name the profile, the default stays as it was")
{
  CHECK(profile_path("/api/v1/status", "default") == "/api/v1/status");
  CHECK(profile_path("/api/v1/status", "desktop") == "/api/v1/status?profile=desktop");
  CHECK(profile_path("/api/v1/packages?state=blocked", "desktop") == "/api/v1/packages?state=blocked&profile=desktop");
  CHECK(profile_command("swarm verify", "desktop") == "swarm verify --profile desktop");
  CHECK(profile_command("swarm finalize --yes", "desktop") == "swarm finalize --yes --profile desktop");
  CHECK(profile_command("swarm verify", "default") == "swarm verify");
  CHECK(profile_command("swarm pause", "desktop") == "swarm pause"); // swarm-wide
  CHECK(profile_command("swarm drone enroll NAME", "desktop") == "swarm drone enroll NAME");
  CHECK(profile_command("emerge --sync", "desktop") == "emerge --sync");
  CHECK(profile_command("swarm unblock --profile x", "desktop") == "swarm unblock --profile x");
}

TEST_CASE("profile option: the drones that build for a profile")
{
  const json drones = json::array({json{{"name", "all"}}, json{{"name", "empty"}, {"profiles", json::array()}},
                                   json{{"name", "desk"}, {"profiles", {"desktop"}}},
                                   json{{"name", "srv"}, {"profiles", {"server", "default"}}}});
  auto names = [](const json& list) {
    std::vector<std::string> out;
    for (const auto& d : list) {
      out.push_back(d["name"]);
    }
    return out;
  };
  CHECK(names(drones_serving(drones, "desktop")) == std::vector<std::string>{"all", "empty", "desk"});
  CHECK(names(drones_serving(drones, "default")) == std::vector<std::string>{"all", "empty", "srv"});
  CHECK(drones_serving(json::object(), "x").empty());
}
