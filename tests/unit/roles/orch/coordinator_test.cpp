#include <doctest/doctest.h>

#include "roles/orch/coordinator_fixture.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using nlohmann::json;
using swarm::test::chain_plan;
using swarm::test::CoordinatorFixture;
using swarm::test::flat_plan;
using swarm::test::plan_package;

TEST_CASE("coordinator: a package is handed out only after everything it waits for is received")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
  f.add_drone("d1", 2);
  // a and r are ready; b waits for a; c waits for b and for r (runtime closure of b).
  auto first = f.claim("d1");
  auto second = f.claim("d1");
  std::set<std::string> got{first.cpv, second.cpv};
  CHECK(got == std::set<std::string>{"dev-libs/a-1", "dev-libs/r-1"});
  CHECK(f.no_claim("d1").code == net::ClaimCode::slots_full);
  f.build(first, "d1");
  f.build(second, "d1");
  auto b = f.claim("d1");
  CHECK(b.cpv == "dev-libs/b-1");
  CHECK(b.deps == std::vector<std::string>{"dev-libs/a-1"});
  CHECK(b.staging_url == "http://127.0.0.1:1/staging/test");
  const auto waiting = f.no_claim("d1");
  CHECK(waiting.code == net::ClaimCode::waiting_for_dependencies);
  f.build(b, "d1");
  auto c = f.claim("d1");
  CHECK(c.cpv == "app-misc/c-1");
  // c builds with b, and installing b needs its runtime dependency r.
  CHECK(std::set<std::string>(c.deps.begin(), c.deps.end()) == std::set<std::string>{"dev-libs/b-1", "dev-libs/r-1"});
  f.build(c, "d1");
  auto status = f.coordinator->status();
  CHECK(status["counts"]["received"] == 4);
  CHECK(status["counts"]["needed"] == 0);
  CHECK(f.no_claim("d1").code == net::ClaimCode::nothing_to_build);
}

TEST_CASE("coordinator: dependants are released when the upload is accepted, before the report")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
  f.add_drone("d1", 2);
  auto first = f.claim("d1");
  auto second = f.claim("d1");
  const auto& a = first.cpv == "dev-libs/a-1" ? first : second;
  f.upload(a, "d1");
  CHECK(f.state_of("dev-libs/a-1") == "received");
  // b needs a (and r's closure only for c): ready now, though a's build was never reported.
  auto b = f.claim("d1");
  CHECK(b.cpv == "dev-libs/b-1");
}

TEST_CASE("coordinator: the critical path goes first")
{
  CoordinatorFixture f;
  portage::Plan plan;
  for (auto [cpv, seconds] : std::vector<std::pair<const char*, double>>{
         {"a/short-1", 10}, {"a/long-1", 100}, {"a/after-long-1", 500}, {"a/lone-1", 300}}) {
    plan.packages.push_back(plan_package(cpv, seconds));
  }
  plan.edges.push_back({"a/after-long-1", "a/long-1", portage::EdgeKind::depend});
  f.submit(plan);
  f.add_drone("d1", 3);
  CHECK(f.claim("d1").cpv == "a/long-1");  // 100 + 500 ahead of it
  CHECK(f.claim("d1").cpv == "a/lone-1");  // 300
  CHECK(f.claim("d1").cpv == "a/short-1"); // 10
}

TEST_CASE("coordinator: an expired lease returns the package; a late result is still taken")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
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
  auto again = f.coordinator->report(lease.id, "slow", CoordinatorFixture::success());
  REQUIRE(again.has_value());
  CHECK(again->duplicate);
}

TEST_CASE("coordinator: a drone may not act on another drone's lease")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
  f.add_drone("d1");
  f.add_drone("d2");
  auto lease = f.claim("d1");
  auto ticket = f.coordinator->begin_upload(lease.id, "d2");
  REQUIRE_FALSE(ticket.has_value());
  CHECK(ticket.error().kind == ErrorKind::forbidden);
  auto report = f.coordinator->report(lease.id, "d2", CoordinatorFixture::failure());
  REQUIRE_FALSE(report.has_value());
  CHECK(report.error().kind == ErrorKind::forbidden);
  CHECK(f.coordinator->begin_upload("nope", "d1").error().kind == ErrorKind::not_found);
  CHECK(f.coordinator->return_lease(lease.id, "d2").error().kind == ErrorKind::forbidden);
}

TEST_CASE("coordinator: five consecutive failures ground a drone and its work goes elsewhere")
{
  CoordinatorFixture f;
  f.submit(flat_plan(8));
  f.add_drone("bad", 1);
  f.add_drone("good", 1);
  // Each failure sends the package to another drone, so bad never gets the same one twice.
  std::set<std::string> failed;
  for (int i = 0; i < 5; ++i) {
    auto lease = f.claim("bad");
    CHECK(failed.insert(lease.cpv).second);
    f.fail(lease, "bad");
  }
  CHECK(f.no_claim("bad").code == net::ClaimCode::grounded);
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
  f.submit(chain_plan());
  f.add_drone("d1", 1);
  f.add_drone("d2", 1);
  // Build r first so only a is ready.
  net::Lease lease = f.claim("d1");
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
  CHECK(f.no_claim("d1").code == net::ClaimCode::left_for_other_drones);
  auto second = f.claim("d2");
  CHECK(second.cpv == "dev-libs/a-1");
  f.fail(second, "d2");
  CHECK(f.state_of("dev-libs/a-1") == "blocked");
  CHECK(f.state_of("dev-libs/b-1") == "dep-failed");
  CHECK(f.state_of("app-misc/c-1") == "dep-failed");
  auto unblocked = f.coordinator->unblock(net::UnblockRequest{{"dev-libs/a-1"}});
  REQUIRE(unblocked.has_value());
  CHECK(unblocked->unblocked == std::vector<std::string>{"dev-libs/a-1"});
  CHECK(f.state_of("dev-libs/a-1") == "needed");
  CHECK(f.state_of("app-misc/c-1") == "needed");
}

TEST_CASE("coordinator: unblock names only blocked packages of the plan, and an empty list means all")
{
  CoordinatorFixture f;
  f.submit(flat_plan(2));
  f.add_drone("d1", 1);
  f.add_drone("d2", 1);
  CHECK(f.coordinator->unblock(net::UnblockRequest{{"app-misc/nope-1"}}).error().kind == ErrorKind::not_found);
  CHECK(f.coordinator->unblock(net::UnblockRequest{{"app-misc/p0-1"}}).error().kind == ErrorKind::conflict);
  for (const auto* drone : {"d1", "d2", "d1", "d2"}) {
    if (auto reply = f.coordinator->claim(drone, 0); reply && reply->lease) {
      f.fail(*reply->lease, drone);
    }
  }
  REQUIRE(f.coordinator->status()["counts"]["blocked"] == 2);
  auto all = f.coordinator->unblock(net::UnblockRequest{});
  REQUIRE(all.has_value());
  CHECK(all->unblocked.size() == 2);
  CHECK(f.coordinator->status()["counts"]["blocked"] == 0);
}

TEST_CASE("coordinator: restart loses nothing")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
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

TEST_CASE("coordinator: a drone whose tree differs from the plan's gets no work")
{
  CoordinatorFixture f;
  auto plan = chain_plan();
  plan.tree_timestamp = "Tue, 01 Dec 2026 00:00:00 +0000";
  f.submit(plan);
  f.add_drone("old", 1, 4, "Mon, 30 Nov 2026 00:00:00 +0000");
  const auto refused = f.no_claim("old");
  CHECK(refused.code == net::ClaimCode::tree_mismatch);
  CHECK(refused.reason.find("differs from the plan") != std::string::npos);
  f.add_drone("new", 1, 4, plan.tree_timestamp);
  f.claim("new");
}

TEST_CASE("coordinator: a paused queue hands out nothing, with the reason")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
  f.add_drone("d1", 1);
  REQUIRE(f.coordinator->set_paused(true)->paused);
  CHECK(f.no_claim("d1").code == net::ClaimCode::paused);
  REQUIRE_FALSE(f.coordinator->set_paused(false)->paused);
  f.claim("d1");
}

TEST_CASE("coordinator: a silent drone goes offline and its leases come back")
{
  CoordinatorFixture f;
  f.submit(chain_plan());
  f.add_drone("d1", 1);
  auto lease = f.claim("d1");
  f.clock += 91;
  f.coordinator->maintenance();
  CHECK(f.state_of(lease.cpv) == "needed");
  CHECK(f.coordinator->drones_view()[0]["state"] == "offline");
}

TEST_CASE("coordinator: a drone going offline does not requeue a package another lease is building")
{
  // Two active leases on one package (a database from before this check, or a crash between an
  // expiry and a revival): the offline drone's lease ends, the other keeps the package.
  CoordinatorFixture f;
  f.submit(flat_plan(1));
  f.add_drone("gone", 1);
  f.add_drone("busy", 1);
  auto lease = f.claim("gone");
  REQUIRE(f.store->transaction([&] {
    LeaseRow second;
    second.id = "00000000000000000000000000000002";
    second.package = f.store->load_packages().front().id;
    for (const auto& row : f.store->load_drones()) {
      if (row.name == "busy") {
        second.drone = row.id;
      }
    }
    second.created = f.clock;
    second.expires = f.clock + 600;
    f.store->save_lease(second);
  }));
  f.open();
  // "busy" keeps heartbeating; "gone" falls silent.
  f.clock += 60;
  REQUIRE(f.coordinator->heartbeat("busy", net::HeartbeatRequest{0, 0, 0, 0, {}, {"00000000000000000000000000000002"}})
            .has_value());
  f.clock += 40;
  f.coordinator->maintenance();
  CHECK(f.coordinator->drones_view()[1]["name"] == "gone");
  CHECK(f.coordinator->drones_view()[1]["state"] == "offline");
  CHECK(f.state_of(lease.cpv) == "delegated");
  CHECK(f.no_claim("busy").code == net::ClaimCode::slots_full);
}

TEST_CASE("coordinator: balance moves work off drones that cannot make progress, and only those")
{
  CoordinatorFixture f;
  f.submit(flat_plan(3));
  f.add_drone("stuck", 1);
  f.add_drone("fine", 1);
  auto stuck_lease = f.claim("stuck");
  auto fine_lease = f.claim("fine");
  // Nothing to move while both speak up.
  auto none = f.coordinator->balance();
  REQUIRE(none.has_value());
  CHECK(none->moved.empty());
  // "stuck" is silent for more than two heartbeats; "fine" heartbeats.
  f.clock += 25;
  REQUIRE(f.coordinator->heartbeat("fine", net::HeartbeatRequest{0, 0, 0, 0, {}, {fine_lease.id}}).has_value());
  auto moved = f.coordinator->balance();
  REQUIRE(moved.has_value());
  CHECK(moved->moved == std::vector<std::string>{stuck_lease.cpv});
  CHECK(f.state_of(stuck_lease.cpv) == "needed");
  CHECK(f.state_of(fine_lease.cpv) == "delegated");
  // The stuck drone is told to drop it; the package goes to whoever asks next.
  auto beat = f.coordinator->heartbeat("stuck", net::HeartbeatRequest{0, 0, 0, 0, {}, {stuck_lease.id}});
  REQUIRE(beat.has_value());
  CHECK(beat->cancel == std::vector<std::string>{stuck_lease.id});
  f.add_drone("idle", 2);
  const std::set<std::string> taken{f.claim("idle").cpv, f.claim("idle").cpv};
  CHECK(taken.count(stuck_lease.cpv) == 1);
}

TEST_CASE("coordinator: auto-retry brings a blocked package back after a backoff that doubles")
{
  CoordinatorFixture f;
  f.options.auto_retry = true;
  f.options.retry_backoff = 100;
  f.open();
  f.submit(flat_plan(1));
  f.add_drone("d1", 1);
  f.add_drone("d2", 1);
  auto block = [&] {
    f.fail(f.claim("d1"), "d1");
    f.fail(f.claim("d2"), "d2");
    REQUIRE(f.state_of("app-misc/p0-1") == "blocked");
  };
  block();
  f.clock += 99;
  f.coordinator->maintenance();
  CHECK(f.state_of("app-misc/p0-1") == "blocked");
  f.clock += 2;
  f.coordinator->maintenance();
  CHECK(f.state_of("app-misc/p0-1") == "needed");
  // Second time: twice the wait.
  block();
  f.clock += 150;
  f.coordinator->maintenance();
  CHECK(f.state_of("app-misc/p0-1") == "blocked");
  f.clock += 51;
  f.coordinator->maintenance();
  CHECK(f.state_of("app-misc/p0-1") == "needed");
  // Without auto-retry a blocked package stays blocked.
  f.options.auto_retry = false;
  f.open();
  block();
  f.clock += 100000;
  f.coordinator->maintenance();
  CHECK(f.state_of("app-misc/p0-1") == "blocked");
}

TEST_CASE("coordinator: submitting the same plan twice changes nothing the second time")
{
  CoordinatorFixture f;
  auto first = f.coordinator->submit_plan(chain_plan(), net::PlanMode::replace, true);
  REQUIRE(first.has_value());
  CHECK(first->changed);
  CHECK(first->added == 4);
  f.add_drone("d1");
  auto lease = f.claim("d1");
  f.build(lease, "d1");
  auto second = f.coordinator->submit_plan(chain_plan(), net::PlanMode::replace, true);
  REQUIRE(second.has_value());
  CHECK_FALSE(second->changed);
  CHECK(second->kept == 4);
  CHECK(f.state_of(lease.cpv) == "received");
}

TEST_CASE("coordinator: a changed USE set, slot, repository or Portage tree means a rebuild")
{
  CoordinatorFixture f;
  auto plan = flat_plan(4);
  plan.tree_timestamp = "T1";
  f.submit(plan);
  f.add_drone("d1", 4, 4, "T1");
  std::vector<net::Lease> leases;
  for (int i = 0; i < 4; ++i) {
    leases.push_back(f.claim("d1"));
  }
  for (const auto& lease : leases) {
    f.build(lease, "d1");
  }
  const auto artifact = f.staging() / "app-misc/p0/p0-1-1.gpkg.tar";
  REQUIRE(std::filesystem::exists(artifact));

  auto changed = plan;
  changed.packages[0].use = {"ssl"};
  changed.packages[1].slot = "2";
  changed.packages[2].repo = "overlay";
  auto reply = f.coordinator->submit_plan(changed, net::PlanMode::replace, false);
  REQUIRE(reply.has_value());
  CHECK(reply->reset == 3);
  CHECK(reply->kept == 1);
  CHECK(f.state_of("app-misc/p0-1") == "needed");
  CHECK(f.state_of("app-misc/p1-1") == "needed");
  CHECK(f.state_of("app-misc/p2-1") == "needed");
  CHECK(f.state_of("app-misc/p3-1") == "received");
  // The stale artifact is gone from staging, with its record.
  CHECK_FALSE(std::filesystem::exists(artifact));
  CHECK_FALSE((*f.coordinator->package_view("default", "app-misc/p0-1")).contains("artifact"));

  // A new Portage tree: what was built from the old one is built again.
  changed.tree_timestamp = "T2";
  auto tree = f.coordinator->submit_plan(changed, net::PlanMode::replace, false);
  REQUIRE(tree.has_value());
  CHECK(tree->reset == 1);
  CHECK(f.state_of("app-misc/p3-1") == "needed");
}

TEST_CASE("coordinator: a package that leaves the plan keeps its artifact out of the plan, or loses it")
{
  CoordinatorFixture f;
  f.submit(flat_plan(2));
  f.add_drone("d1", 2);
  f.build(f.claim("d1"), "d1");
  f.build(f.claim("d1"), "d1");
  auto smaller = flat_plan(1);
  auto kept = f.coordinator->submit_plan(smaller, net::PlanMode::replace, false);
  REQUIRE(kept.has_value());
  CHECK(kept->removed == 0);
  CHECK((*f.coordinator->package_view("default", "app-misc/p1-1"))["in_plan"] == false);
  CHECK(std::filesystem::exists(f.staging() / "app-misc/p1/p1-1-1.gpkg.tar"));
  auto cleared = f.coordinator->submit_plan(smaller, net::PlanMode::replace, true);
  REQUIRE(cleared.has_value());
  CHECK(cleared->removed == 1);
  CHECK_FALSE(f.coordinator->package_view("default", "app-misc/p1-1").has_value());
  CHECK_FALSE(std::filesystem::exists(f.staging() / "app-misc/p1/p1-1-1.gpkg.tar"));
}

TEST_CASE("coordinator: ground and unground by the operator")
{
  CoordinatorFixture f;
  f.submit(flat_plan(2));
  f.add_drone("d1", 2);
  auto lease = f.claim("d1");
  auto grounded = f.coordinator->ground(net::GroundRequest{"d1"});
  REQUIRE(grounded.has_value());
  CHECK(grounded->grounded);
  CHECK(f.state_of(lease.cpv) == "needed");
  CHECK(f.no_claim("d1").code == net::ClaimCode::grounded);
  CHECK(f.coordinator->ground(net::GroundRequest{"nobody"}).error().kind == ErrorKind::not_found);
  // A restart keeps it grounded.
  f.open();
  CHECK(f.no_claim("d1").code == net::ClaimCode::grounded);
  REQUIRE(f.coordinator->unground(net::GroundRequest{"d1"}).has_value());
  f.claim("d1");
}

TEST_CASE("coordinator: reset returns every running build and keeps what was built")
{
  CoordinatorFixture f;
  f.submit(flat_plan(3));
  f.add_drone("d1", 3);
  auto built = f.claim("d1");
  f.build(built, "d1");
  auto a = f.claim("d1");
  auto b = f.claim("d1");
  auto reply = f.coordinator->reset();
  REQUIRE(reply.has_value());
  CHECK(reply->returned == 2);
  CHECK(f.state_of(a.cpv) == "needed");
  CHECK(f.state_of(b.cpv) == "needed");
  CHECK(f.state_of(built.cpv) == "received");
  auto beat = f.coordinator->heartbeat("d1", net::HeartbeatRequest{0, 0, 0, 0, {}, {a.id, b.id}});
  REQUIRE(beat.has_value());
  CHECK(beat->cancel.size() == 2);
}

TEST_CASE("coordinator: a drone returning a lease hands the package straight to the next claim")
{
  CoordinatorFixture f;
  f.submit(flat_plan(1));
  f.add_drone("d1", 1);
  f.add_drone("d2", 1);
  auto lease = f.claim("d1");
  CHECK(f.no_claim("d2").code == net::ClaimCode::nothing_to_build);
  REQUIRE(f.coordinator->return_lease(lease.id, "d1").has_value());
  CHECK(f.claim("d2").cpv == lease.cpv);
}
