#include <doctest/doctest.h>

#include "roles/operator/next_action.hpp"

using namespace swarm::roles::operator_cli;
using nlohmann::json;

namespace {

json drone(const std::string& name, const std::string& state, bool online = true, bool tree_matches = true)
{
  return json{
    {"name", name}, {"state", state}, {"online", online}, {"tree_matches", tree_matches}, {"tree_timestamp", "T"}};
}

json status(size_t total, size_t received, size_t needed, size_t delegated, size_t blocked, json drones)
{
  return json{{"paused", false},
              {"counts",
               {{"total", total},
                {"received", received},
                {"needed", needed},
                {"delegated", delegated},
                {"blocked", blocked},
                {"dep-failed", 0}}},
              {"drones", std::move(drones)}};
}

json releases(size_t unreleased, json current = "R1")
{
  return json{{"unreleased", unreleased}, {"current", current}};
}

} // namespace

TEST_CASE("next action: building with healthy drones needs nothing")
{
  const auto action = next_action(status(10, 4, 4, 2, 0, {drone("d1", "online")}), releases(4));
  CHECK(action.state == "building");
  CHECK_FALSE(action.attention);
}

TEST_CASE("next action: blocked packages → fix-blocked")
{
  const auto action = next_action(status(10, 8, 0, 0, 1, {drone("d1", "online")}), releases(8));
  CHECK(action.state == "blocked");
  CHECK(action.attention);
  CHECK(action.commands == std::vector<std::string>{"swarm fix-blocked"});
}

TEST_CASE("next action: all built and not released → verify then finalize")
{
  const auto action = next_action(status(10, 10, 0, 0, 0, {drone("d1", "online")}), releases(10, nullptr));
  CHECK(action.state == "all-built");
  CHECK(action.attention);
  CHECK(action.commands == std::vector<std::string>{"swarm verify", "swarm finalize"});
}

TEST_CASE("next action: all built and released → nothing to do")
{
  const auto action = next_action(status(10, 10, 0, 0, 0, {drone("d1", "online")}), releases(0));
  CHECK(action.state == "released");
  CHECK_FALSE(action.attention);
  CHECK(action.message.find("nothing to do") != std::string::npos);
}

TEST_CASE("next action: no plan → nothing to do")
{
  const auto action = next_action(status(0, 0, 0, 0, 0, json::array()), releases(0, nullptr));
  CHECK(action.state == "no-plan");
  CHECK_FALSE(action.attention);
}

TEST_CASE("next action: grounded or offline drones with work left name the drone")
{
  const auto grounded =
    next_action(status(10, 2, 8, 0, 0, {drone("d1", "grounded"), drone("d2", "online")}), releases(2));
  CHECK(grounded.state == "drones");
  CHECK(grounded.attention);
  CHECK(grounded.message.find("d1") != std::string::npos);
  CHECK(std::find(grounded.commands.begin(), grounded.commands.end(), "swarm unground d1") != grounded.commands.end());

  const auto offline = next_action(status(10, 2, 8, 0, 0, {drone("d3", "offline", false)}), releases(2));
  CHECK(offline.state == "drones");
  CHECK(offline.message.find("offline") != std::string::npos);
  CHECK(offline.message.find("d3") != std::string::npos);

  // Nothing left to build: an offline drone does not need the operator now.
  const auto idle = next_action(status(10, 10, 0, 0, 0, {drone("d3", "offline", false)}), releases(0));
  CHECK(idle.state == "released");
}

TEST_CASE("next action: a drone on another tree → sync-verify")
{
  const auto action = next_action(status(10, 2, 8, 0, 0, {drone("d1", "online", true, false)}), releases(2));
  CHECK(action.state == "tree-mismatch");
  CHECK(action.attention);
  CHECK(action.commands == std::vector<std::string>{"swarm sync-verify"});
}

TEST_CASE("next action: paused comes first")
{
  auto state = status(10, 2, 8, 0, 1, {drone("d1", "online")});
  state["paused"] = true;
  const auto action = next_action(state, releases(2));
  CHECK(action.state == "paused");
  CHECK(action.commands == std::vector<std::string>{"swarm resume"});
}
