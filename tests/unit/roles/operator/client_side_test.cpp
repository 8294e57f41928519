#include <doctest/doctest.h>

#include "roles/operator/client_side.hpp"

using namespace swarm::roles::operator_cli;
using nlohmann::json;

TEST_CASE("client side: emerge argv, never through a shell")
{
  CHECK(pretend_argv("/usr/bin/emerge") == std::vector<std::string>{"/usr/bin/emerge", "--pretend", "--verbose",
                                                                    "--update", "--deep", "--newuse", "@world"});
  CHECK(client_update_argv("emerge") ==
        std::vector<std::string>{"emerge", "--getbinpkg", "--update", "--deep", "--newuse", "@world"});
}

TEST_CASE("client side: binrepos.conf text")
{
  const auto text = binrepos_conf_text("http://orch.lan:7070/production", "http://gw.lan:7000");
  REQUIRE(text);
  CHECK(text->find("\n[swarm]\npriority = 10\nsync-uri = http://orch.lan:7070/production\n") != std::string::npos);
  CHECK(text->find("verify-signature = false\n") != std::string::npos);
  CHECK(text->starts_with("# Written by `swarm client setup` from http://gw.lan:7000"));
  CHECK_FALSE(binrepos_conf_text("ftp://x/", "g"));
  CHECK_FALSE(binrepos_conf_text("http://x/\n[evil]", "g"));
}

TEST_CASE("client side: drone trees against the plan's")
{
  const std::string tree = "Tue, 01 Dec 2026 00:00:00 +0000";
  json drones = json::array({
    {{"name", "d1"}, {"state", "online"}, {"online", true}, {"tree_timestamp", tree}},
    {{"name", "d2"}, {"state", "online"}, {"online", true}, {"tree_timestamp", "old"}},
    {{"name", "d3"}, {"state", "offline"}, {"online", false}, {"tree_timestamp", "old"}},
    {{"name", "local-box"}, {"state", "online"}, {"online", true}, {"tree_timestamp", "x"}},
    {{"name", "new"}, {"state", "enrolled"}, {"online", false}, {"tree_timestamp", ""}},
  });
  auto check = check_drone_trees(drones, tree);
  CHECK(check.matching == std::vector<std::string>{"d1"});
  CHECK(check.mismatching == std::vector<std::string>{"d2 (old)"});
  CHECK(check.offline == std::vector<std::string>{"d3 (old)"});
  CHECK_FALSE(check.refuse);
  CHECK(check.message.find("1 of 2 online drones") != std::string::npos);

  drones.erase(0);
  check = check_drone_trees(drones, tree);
  CHECK(check.refuse);
  CHECK(check_drone_trees(json::array(), tree).message.empty());
}

TEST_CASE("client side: package arguments")
{
  CHECK(cpv_argument("=dev-libs/foo-1.0-r1").value() == "dev-libs/foo-1.0-r1");
  CHECK(cpv_argument("dev-libs/foo-1.0").value() == "dev-libs/foo-1.0");
  CHECK_FALSE(cpv_argument("dev-libs/foo"));
  CHECK_FALSE(cpv_argument("foo-1.0"));
  CHECK_FALSE(cpv_argument("=dev-libs/foo-1.0; rm -rf /"));
}
