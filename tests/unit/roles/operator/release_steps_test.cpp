#include <doctest/doctest.h>

#include <mutex>

#include <nlohmann/json.hpp>

#include "net/test_server.hpp"
#include "roles/operator/release_steps.hpp"

using namespace swarm;
using namespace swarm::roles::operator_cli;
using nlohmann::json;

namespace {

const std::string k_tree = "Tue, 01 Dec 2026 00:00:00 +0000";

json drone_on_tree(const std::string& name, const std::string& state, bool online, const std::string& tree)
{
  return {{"name", name}, {"state", state}, {"online", online}, {"tree_timestamp", tree}};
}

portage::Plan one_package_plan()
{
  portage::Plan plan;
  plan.source = "test";
  plan.tree_timestamp = k_tree;
  portage::PlanPackage package;
  package.cpv = "app-misc/hello-1";
  package.slot = "0";
  package.repo = "gentoo";
  plan.packages.push_back(package);
  return plan;
}

} // namespace

TEST_CASE("release steps: sync-verify checks the online drones, lists the offline ones")
{
  const json drones = json::array({
    drone_on_tree("d1", "online", true, k_tree),
    drone_on_tree("d2", "online", true, "old"),
    drone_on_tree("d3", "offline", false, "old"),
    drone_on_tree("d4", "grounded", true, "old"), // grounded but heartbeating: its tree is current, and wrong
    drone_on_tree("local-box", "online", true, "x"),
    drone_on_tree("new", "enrolled", false, ""),
  });
  const auto check = sync_verify(drones, k_tree);
  CHECK_FALSE(check.ok());
  CHECK(check.plan_tree == k_tree);
  CHECK(check.matching == std::vector<std::string>{"d1"});
  CHECK(check.mismatching == std::vector<std::string>{"d2 (old)", "d4 (old)"});
  CHECK(check.offline == std::vector<std::string>{"d3 (old)"});
  CHECK_FALSE(check.refuse);
  CHECK(check.message.find("2 of 3 online drones") != std::string::npos);
  std::vector<std::string> listed;
  for (const auto& row : check.drones) {
    listed.push_back(row.name);
  }
  CHECK(listed == std::vector<std::string>{"d1", "d2", "d3", "d4"}); // local-* and never-registered left out
  CHECK_FALSE(check.drones[2].online);
  CHECK_FALSE(check.drones[2].matches);
}

TEST_CASE("release steps: sync-verify passes an offline drone on another tree, and a local build identity")
{
  const json drones = json::array({
    drone_on_tree("d1", "online", true, k_tree),
    drone_on_tree("d3", "offline", false, "old"),
    drone_on_tree("local-box", "online", true, "x"),
  });
  const auto check = sync_verify(drones, k_tree);
  CHECK(check.ok());
  CHECK(check.message.empty());
  CHECK(check.offline == std::vector<std::string>{"d3 (old)"});
}

TEST_CASE("release steps: sync-verify without a plan tree, or without drones")
{
  const json drones =
    json::array({drone_on_tree("d1", "online", true, "any"), drone_on_tree("d2", "online", true, "")});
  CHECK(sync_verify(drones, "").ok());
  CHECK(sync_verify(drones, "").matching.size() == 2);
  CHECK(sync_verify(json::array(), k_tree).ok());
  CHECK(sync_verify(json(nullptr), k_tree).ok());

  // Nobody online on the plan's tree: fresh refuses such a plan.
  const auto none = sync_verify(json::array({drone_on_tree("d2", "online", true, "old")}), k_tree);
  CHECK(none.refuse);
  CHECK_FALSE(none.ok());
}

TEST_CASE("release steps: fresh submits the plan as a replacement and reads the PlanReply")
{
  net::test::TestServer server;
  std::mutex mutex;
  json received;
  server.server.post("/api/v1/plan", [&](const httplib::Request& request, httplib::Response& response) {
    std::lock_guard lock(mutex);
    received = json::parse(request.body);
    net::json_response(response, 200,
                       {{"packages", 1},
                        {"added", 1},
                        {"removed", 0},
                        {"kept", 0},
                        {"reset", 0},
                        {"changed", true},
                        {"warnings", json::array({"a cycle was broken"})},
                        {"extra", "ignored"}});
  });
  server.start();
  const auto client = server.client("admin");
  portage::BuildProfile build_profile;
  build_profile.settings["CFLAGS"] = "-O2 -pipe";
  const auto reply = submit_fresh_plan(client, one_package_plan(), "desktop", &build_profile);
  REQUIRE(reply);
  CHECK(reply->message.packages == 1);
  CHECK(reply->message.added == 1);
  CHECK(reply->message.changed);
  CHECK(reply->message.warnings == std::vector<std::string>{"a cycle was broken"});
  CHECK(reply->json.value("extra", "") == "ignored"); // --json prints the answer as it came
  std::lock_guard lock(mutex);
  CHECK(received["mode"] == "replace");
  CHECK(received["clear_staging"] == true);
  CHECK(received["plan"]["tree_timestamp"] == k_tree);
  CHECK(received["plan"]["packages"][0]["cpv"] == "app-misc/hello-1");
  CHECK(received["profile"] == "desktop");
  CHECK(received["build_profile"]["settings"]["CFLAGS"] == "-O2 -pipe");
}

TEST_CASE("release steps: an answer that is not the protocol's message is an error naming the call and the field")
{
  net::test::TestServer server;
  server.server.post("/api/v1/plan", [](const httplib::Request&, httplib::Response& response) {
    net::json_response(response, 200, {{"packages", "many"}});
  });
  server.start();
  const auto client = server.client("admin");
  net::PlanRequest add;
  add.mode = net::PlanMode::add;
  const auto reply = submit_plan(client, one_package_plan(), add);
  REQUIRE_FALSE(reply);
  CHECK(reply.error().kind == ErrorKind::internal);
  CHECK(reply.error().message.find("POST /api/v1/plan") != std::string::npos);
  CHECK(reply.error().message.find("'packages'") != std::string::npos);
}

TEST_CASE("release steps: verify asks with the threshold given, else the orchestrator's")
{
  net::test::TestServer server;
  server.server.get("/api/v1/verify", [](const httplib::Request& request, httplib::Response& response) {
    net::json_response(
      response, 200,
      {{"score", 20},
       {"threshold", request.has_param("threshold") ? std::stoi(request.get_param_value("threshold")) : 15},
       {"pass", false},
       {"findings", json::array()}});
  });
  server.start();
  const auto client = server.client("admin");
  CHECK(verify_staging(client, std::nullopt).value()["threshold"] == 15);
  CHECK(verify_staging(client, 30).value()["threshold"] == 30);
}

TEST_CASE("release steps: finalize sends force and threshold; a refusal is an outcome, a failure an error")
{
  net::test::TestServer server;
  std::mutex mutex;
  std::vector<json> requests;
  server.server.post("/api/v1/releases/finalize", [&](const httplib::Request& request, httplib::Response& response) {
    std::lock_guard lock(mutex);
    requests.push_back(json::parse(request.body));
    const auto& body = requests.back();
    if (body.value("force", false)) {
      net::json_response(response, 500, {{"error", "cannot write releases/"}, {"kind", "io"}});
    } else if (body.contains("threshold")) {
      net::json_response(response, 200, {{"release", "20261201-000000"}, {"packages", 1}});
    } else {
      net::json_response(response, 409,
                         {{"error", "the current release already lists exactly these packages"},
                          {"kind", "conflict"},
                          {"reason", "nothing_new"}});
    }
  });
  server.start();
  const auto client = server.client("admin");

  const auto refused = finalize_release(client, net::FinalizeRequest{});
  REQUIRE(refused);
  CHECK_FALSE(refused->published());
  CHECK(refused->reason() == "nothing_new");

  net::FinalizeRequest with_threshold;
  with_threshold.threshold = 30;
  const auto published = finalize_release(client, with_threshold);
  REQUIRE(published);
  CHECK(published->published());
  CHECK(published->reason().empty());
  CHECK(published->body["release"] == "20261201-000000");

  net::FinalizeRequest forced;
  forced.force = true;
  const auto failed = finalize_release(client, forced);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message == "cannot write releases/");

  std::lock_guard lock(mutex);
  REQUIRE(requests.size() == 3);
  CHECK(requests[0] == json{{"force", false}, {"profile", "default"}});
  CHECK(requests[1] == json{{"force", false}, {"profile", "default"}, {"threshold", 30}});
  CHECK(requests[2] == json{{"force", true}, {"profile", "default"}});
}
