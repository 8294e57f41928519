#include <doctest/doctest.h>

#include <fstream>

#include "core/fs.hpp"
#include "roles/orch/coordinator.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using nlohmann::json;

namespace {

// A coordinator on a fresh database with a hand-driven clock.
struct CoordinatorFixture {
  fs::TempDir dir;
  double clock = 1'000'000;
  std::unique_ptr<Store> store;
  std::unique_ptr<Coordinator> coordinator;

  CoordinatorFixture() { open(); }

  void open()
  {
    coordinator.reset();
    store.reset();
    store = std::move(*Store::open((dir.path() / "state.db").string()));
    CoordinatorOptions options;
    options.staging_dir = dir.path() / "staging";
    options.logs_dir = dir.path() / "logs";
    options.lease_ttl = 60;
    options.drone_timeout = 90;
    options.claim_wait = 0;
    options.now = [this] { return clock; };
    coordinator = std::make_unique<Coordinator>(*store, options);
    REQUIRE(coordinator->load().has_value());
  }

  std::string add_drone(const std::string& name, int slots = 1, int cores = 4, const std::string& tree = "")
  {
    auto token = coordinator->enroll(name);
    REQUIRE(token.has_value());
    DroneHello hello;
    hello.name = name;
    hello.cores = cores;
    hello.slots = slots;
    hello.tree_timestamp = tree;
    REQUIRE(coordinator->register_drone(name, hello).has_value());
    return *token;
  }

  LeaseView claim(const std::string& drone)
  {
    auto reply = coordinator->claim(drone, 0);
    REQUIRE(reply.has_value());
    REQUIRE_MESSAGE(reply->lease.has_value(), reply->reason);
    return *reply->lease;
  }

  std::string no_claim(const std::string& drone)
  {
    auto reply = coordinator->claim(drone, 0);
    REQUIRE(reply.has_value());
    CHECK_FALSE(reply->lease.has_value());
    return reply->reason;
  }

  // Delivers a (fake) artifact for the lease and reports success.
  void build(const LeaseView& lease, const std::string& drone, const std::string& content = "gpkg")
  {
    auto ticket = coordinator->begin_upload(lease.id, drone);
    REQUIRE(ticket.has_value());
    auto incoming = dir.path() / "incoming";
    REQUIRE(fs::make_dirs(incoming).has_value());
    ArtifactInfo artifact;
    artifact.incoming_path = incoming / lease.id;
    std::ofstream(artifact.incoming_path) << content;
    const auto pf = lease.cpv.substr(lease.cpv.find('/') + 1);
    artifact.relative_path = ticket->category + "/" + ticket->package + "/" + pf + "-1.gpkg.tar";
    artifact.sha256 = "sha-" + lease.cpv + content;
    artifact.size = content.size();
    artifact.build_id = 1;
    artifact.index_entry = json{{"CPV", lease.cpv}, {"SIZE", std::to_string(content.size())}};
    auto accepted = coordinator->accept_artifact(lease.id, drone, artifact);
    REQUIRE(accepted.has_value());
    auto reported = coordinator->report(lease.id, drone, BuildReport{true, 10, "ok", ""});
    REQUIRE(reported.has_value());
  }

  void fail(const LeaseView& lease, const std::string& drone, const std::string& log = "compile error")
  {
    auto reported = coordinator->report(lease.id, drone, BuildReport{false, 5, log, "emerge exited 1"});
    REQUIRE(reported.has_value());
  }

  std::string state_of(const std::string& cpv)
  {
    auto view = coordinator->package_view(cpv);
    REQUIRE(view.has_value());
    return (*view)["state"].get<std::string>();
  }
};

portage::Plan chain_plan()
{
  // c waits for b waits for a (build edges); b runs with r (runtime).
  portage::Plan plan;
  plan.source = "test";
  for (const auto* cpv : {"dev-libs/a-1", "dev-libs/b-1", "app-misc/c-1", "dev-libs/r-1"}) {
    portage::PlanPackage pkg;
    pkg.cpv = cpv;
    pkg.slot = "0";
    pkg.repo = "gentoo";
    pkg.build_seconds = 60;
    plan.packages.push_back(pkg);
  }
  plan.edges.push_back({"dev-libs/b-1", "dev-libs/a-1", portage::EdgeKind::depend});
  plan.edges.push_back({"app-misc/c-1", "dev-libs/b-1", portage::EdgeKind::bdepend});
  plan.edges.push_back({"dev-libs/b-1", "dev-libs/r-1", portage::EdgeKind::rdepend});
  return plan;
}

} // namespace

TEST_CASE("coordinator: a package is handed out only after everything it waits for is received")
{
  CoordinatorFixture f;
  REQUIRE(f.coordinator->submit_plan(chain_plan(), PlanMode::replace, false).has_value());
  f.add_drone("d1", 2);
  // a and r are ready; b waits for a; c waits for b and for r (runtime closure of b).
  auto first = f.claim("d1");
  auto second = f.claim("d1");
  std::set<std::string> got{first.cpv, second.cpv};
  CHECK(got == std::set<std::string>{"dev-libs/a-1", "dev-libs/r-1"});
  CHECK(f.no_claim("d1").find("slots busy") != std::string::npos);
  f.build(first, "d1");
  f.build(second, "d1");
  auto b = f.claim("d1");
  CHECK(b.cpv == "dev-libs/b-1");
  CHECK(b.deps == std::vector<std::string>{"dev-libs/a-1"});
  CHECK(f.no_claim("d1") == "no package ready");
  f.build(b, "d1");
  auto c = f.claim("d1");
  CHECK(c.cpv == "app-misc/c-1");
  // c builds with b, and installing b needs its runtime dependency r.
  CHECK(std::set<std::string>(c.deps.begin(), c.deps.end()) == std::set<std::string>{"dev-libs/b-1", "dev-libs/r-1"});
  f.build(c, "d1");
  auto status = f.coordinator->status();
  CHECK(status["counts"]["received"] == 4);
  CHECK(status["counts"]["needed"] == 0);
}

TEST_CASE("coordinator: the critical path goes first")
{
  CoordinatorFixture f;
  portage::Plan plan;
  for (auto [cpv, seconds] : std::vector<std::pair<const char*, double>>{
         {"a/short-1", 10}, {"a/long-1", 100}, {"a/after-long-1", 500}, {"a/lone-1", 300}}) {
    portage::PlanPackage pkg;
    pkg.cpv = cpv;
    pkg.slot = "0";
    pkg.repo = "gentoo";
    pkg.build_seconds = seconds;
    plan.packages.push_back(pkg);
  }
  plan.edges.push_back({"a/after-long-1", "a/long-1", portage::EdgeKind::depend});
  REQUIRE(f.coordinator->submit_plan(plan, PlanMode::replace, false).has_value());
  f.add_drone("d1", 3);
  CHECK(f.claim("d1").cpv == "a/long-1");  // 100 + 500 ahead of it
  CHECK(f.claim("d1").cpv == "a/lone-1");  // 300
  CHECK(f.claim("d1").cpv == "a/short-1"); // 10
}

TEST_CASE("coordinator: an expired lease returns the package; a late result is still taken")
{
  CoordinatorFixture f;
  REQUIRE(f.coordinator->submit_plan(chain_plan(), PlanMode::replace, false).has_value());
  f.add_drone("slow", 1);
  f.add_drone("fast", 1);
  auto lease = f.claim("slow");
  f.clock += 61;
  f.coordinator->tick();
  CHECK(f.state_of(lease.cpv) == "needed");
  // The late result arrives before anyone else delivered it: accepted.
  f.build(lease, "slow");
  CHECK(f.state_of(lease.cpv) == "received");
  // A repeated report is a no-op.
  auto again = f.coordinator->report(lease.id, "slow", BuildReport{true, 10, "", ""});
  REQUIRE(again.has_value());
  CHECK((*again)["duplicate"] == true);
}

TEST_CASE("coordinator: a drone may not act on another drone's lease")
{
  CoordinatorFixture f;
  REQUIRE(f.coordinator->submit_plan(chain_plan(), PlanMode::replace, false).has_value());
  f.add_drone("d1");
  f.add_drone("d2");
  auto lease = f.claim("d1");
  auto ticket = f.coordinator->begin_upload(lease.id, "d2");
  REQUIRE_FALSE(ticket.has_value());
  CHECK(ticket.error().kind == ErrorKind::forbidden);
  auto report = f.coordinator->report(lease.id, "d2", BuildReport{false, 1, "", ""});
  REQUIRE_FALSE(report.has_value());
  CHECK(report.error().kind == ErrorKind::forbidden);
  CHECK(f.coordinator->begin_upload("nope", "d1").error().kind == ErrorKind::not_found);
  // Tokens identify drones.
  CHECK_FALSE(f.coordinator->drone_for_token("swd_wrong").has_value());
}

TEST_CASE("coordinator: five consecutive failures ground a drone and its work goes elsewhere")
{
  CoordinatorFixture f;
  portage::Plan plan;
  for (int i = 0; i < 8; ++i) {
    portage::PlanPackage pkg;
    pkg.cpv = fmt::format("app-misc/p{}-1", i);
    pkg.slot = "0";
    pkg.repo = "gentoo";
    plan.packages.push_back(pkg);
  }
  REQUIRE(f.coordinator->submit_plan(plan, PlanMode::replace, false).has_value());
  f.add_drone("bad", 1);
  f.add_drone("good", 1);
  // Each failure sends the package to another drone, so bad never gets the same one twice.
  std::set<std::string> failed;
  for (int i = 0; i < 5; ++i) {
    auto lease = f.claim("bad");
    CHECK(failed.insert(lease.cpv).second);
    f.fail(lease, "bad");
  }
  CHECK(f.no_claim("bad").find("grounded") != std::string::npos);
  // Nothing is blocked: each package failed on one drone only.
  CHECK(f.coordinator->status()["counts"]["blocked"] == 0);
  for (int i = 0; i < 8; ++i) {
    f.build(f.claim("good"), "good");
  }
  CHECK(f.coordinator->status()["counts"]["received"] == 8);
  // After the cool-down: one probation package.
  f.clock += 301;
  f.coordinator->tick();
  auto drones = f.coordinator->drones_view();
  CHECK(drones[0]["name"] == "bad");
  CHECK(drones[0]["state"] == "probation");
}

TEST_CASE("coordinator: a package failing on two drones is blocked, its dependants dep-failed")
{
  CoordinatorFixture f;
  REQUIRE(f.coordinator->submit_plan(chain_plan(), PlanMode::replace, false).has_value());
  f.add_drone("d1", 1);
  f.add_drone("d2", 1);
  // Build r first so only a is ready.
  LeaseView lease = f.claim("d1");
  if (lease.cpv == "dev-libs/r-1") {
    f.build(lease, "d1");
    lease = f.claim("d1");
  } else {
    f.build(f.claim("d2"), "d2");
  }
  REQUIRE(lease.cpv == "dev-libs/a-1");
  f.fail(lease, "d1");
  CHECK(f.state_of("dev-libs/a-1") == "needed");
  // d1 failed it: it goes to d2 rather than back to d1.
  CHECK(f.no_claim("d1") == "the ready packages wait for other drones");
  auto second = f.claim("d2");
  CHECK(second.cpv == "dev-libs/a-1");
  f.fail(second, "d2");
  CHECK(f.state_of("dev-libs/a-1") == "blocked");
  CHECK(f.state_of("dev-libs/b-1") == "dep-failed");
  CHECK(f.state_of("app-misc/c-1") == "dep-failed");
  auto unblocked = f.coordinator->control("unblock", json{{"packages", {"dev-libs/a-1"}}});
  REQUIRE(unblocked.has_value());
  CHECK(f.state_of("dev-libs/a-1") == "needed");
  CHECK(f.state_of("app-misc/c-1") == "needed");
}

TEST_CASE("coordinator: restart loses nothing")
{
  CoordinatorFixture f;
  REQUIRE(f.coordinator->submit_plan(chain_plan(), PlanMode::replace, false).has_value());
  f.add_drone("d1", 2);
  auto first = f.claim("d1");
  f.build(first, "d1");
  auto running = f.claim("d1");
  f.open(); // a new coordinator on the same database
  CHECK(f.state_of(first.cpv) == "received");
  CHECK(f.state_of(running.cpv) == "delegated");
  // The running lease survived and can still deliver.
  f.build(running, "d1");
  CHECK(f.state_of(running.cpv) == "received");
  CHECK(f.coordinator->status()["counts"]["received"] == 2);
}

TEST_CASE("coordinator: submitting the same plan twice changes nothing the second time")
{
  CoordinatorFixture f;
  auto first = f.coordinator->submit_plan(chain_plan(), PlanMode::replace, true);
  REQUIRE(first.has_value());
  CHECK(first->changed);
  CHECK(first->added == 4);
  f.add_drone("d1");
  auto lease = f.claim("d1");
  f.build(lease, "d1");
  auto second = f.coordinator->submit_plan(chain_plan(), PlanMode::replace, true);
  REQUIRE(second.has_value());
  CHECK_FALSE(second->changed);
  CHECK(f.state_of(lease.cpv) == "received");
  // A changed USE set means a rebuild.
  auto plan = chain_plan();
  plan.packages[0].use = {"ssl"};
  auto third = f.coordinator->submit_plan(plan, PlanMode::replace, true);
  REQUIRE(third.has_value());
  CHECK(third->changed);
  CHECK(third->reset == (lease.cpv == "dev-libs/a-1" ? 1u : 1u));
  CHECK(f.state_of("dev-libs/a-1") == "needed");
}

TEST_CASE("coordinator: a drone whose tree differs from the plan's gets no work")
{
  CoordinatorFixture f;
  auto plan = chain_plan();
  plan.tree_timestamp = "Tue, 01 Dec 2026 00:00:00 +0000";
  REQUIRE(f.coordinator->submit_plan(plan, PlanMode::replace, false).has_value());
  f.add_drone("old", 1, 4, "Mon, 30 Nov 2026 00:00:00 +0000");
  CHECK(f.no_claim("old").find("differs from the plan") != std::string::npos);
  f.add_drone("new", 1, 4, plan.tree_timestamp);
  f.claim("new");
}

TEST_CASE("coordinator: a silent drone goes offline and its leases come back")
{
  CoordinatorFixture f;
  REQUIRE(f.coordinator->submit_plan(chain_plan(), PlanMode::replace, false).has_value());
  f.add_drone("d1", 1);
  auto lease = f.claim("d1");
  f.clock += 91;
  f.coordinator->maintenance();
  CHECK(f.state_of(lease.cpv) == "needed");
  CHECK(f.coordinator->drones_view()[0]["state"] == "offline");
}
