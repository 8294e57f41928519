// All or nothing: every transition of the coordinator, with the store made to fail at each of
// its writes in turn. After each failure, memory must equal what a fresh load from the database
// gives, the database must be as before the transition, and no record may name a file that is
// gone.
#include <doctest/doctest.h>

#include <functional>
#include <stdexcept>

#include "roles/orch/coordinator_fixture.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using nlohmann::json;
using swarm::test::chain_plan;
using swarm::test::CoordinatorFixture;
using swarm::test::flat_plan;

namespace {

// Every artifact the database names is on disk.
void check_files_named_exist(CoordinatorFixture& f, const json& dump)
{
  for (const auto& row : dump["packages"]) {
    const auto path = row["artifact_path"].get<std::string>();
    if (!path.empty()) {
      INFO("the database names ", path);
      CHECK(std::filesystem::exists(f.staging() / path));
    }
  }
}

// For n = 1, 2, …: a new fixture, `setup`, then `transition` with every store write from the
// n-th on failing. Ends when the transition no longer reaches an n-th write (it then succeeded).
void check_all_or_nothing(const std::function<void(CoordinatorFixture&)>& setup,
                          const std::function<void(CoordinatorFixture&)>& transition,
                          const std::function<void(CoordinatorFixture&)>& configure = {})
{
  for (int n = 1; n < 10'000; ++n) {
    CoordinatorFixture f;
    if (configure) {
      configure(f);
      f.open();
    }
    setup(f);
    const auto before = f.fresh_dump();
    int writes = 0;
    bool fired = false;
    f.store->set_write_hook([&](std::string_view operation) {
      if (++writes >= n) {
        fired = true;
        throw std::runtime_error(fmt::format("injected failure at write {} ({})", writes, operation));
      }
    });
    transition(f);
    f.store->set_write_hook({});
    INFO("failure injected from write ", n);
    const auto memory = f.coordinator->state_dump();
    const auto stored = f.fresh_dump();
    INFO("memory differs from the database by ", json::diff(stored, memory).dump());
    CHECK(memory == stored);
    check_files_named_exist(f, stored);
    if (!fired) {
      CHECK(n > 1); // the transition wrote something, so some failure was injected above
      CHECK(stored != before);
      return;
    }
    CHECK(stored == before);
  }
  FAIL("the transition never completed");
}

// The chain plan and drone d1 with two slots.
void chain_and_drone(CoordinatorFixture& f)
{
  f.submit(chain_plan());
  f.add_drone("d1", 2);
}

// … and both its slots building.
void two_running(CoordinatorFixture& f)
{
  chain_and_drone(f);
  f.claim("d1");
  f.claim("d1");
}

struct Leases {
  net::Lease first;
  net::Lease second;
};

} // namespace

TEST_CASE("all or nothing: claim")
{
  check_all_or_nothing(chain_and_drone, [](CoordinatorFixture& f) { (void)f.coordinator->claim("d1", 0); });
}

TEST_CASE("all or nothing: upload accepted")
{
  Leases leases;
  check_all_or_nothing(
    [&](CoordinatorFixture& f) {
      f.submit(chain_plan());
      f.add_drone("d1", 2);
      f.add_drone("d2", 1);
      leases.first = f.claim("d1");
    },
    [&](CoordinatorFixture& f) {
      auto artifact = f.artifact_for(leases.first);
      if (f.coordinator->begin_upload(leases.first.id, "d1")) {
        const bool accepted = f.coordinator->accept_artifact(leases.first.id, "d1", artifact).has_value();
        // A refused artifact is not left in staging.
        CHECK(std::filesystem::exists(f.staging() / artifact.relative_path) == accepted);
      }
    });
}

TEST_CASE("all or nothing: report of a success")
{
  Leases leases;
  check_all_or_nothing(
    [&](CoordinatorFixture& f) {
      chain_and_drone(f);
      leases.first = f.claim("d1");
      f.upload(leases.first, "d1");
    },
    [&](CoordinatorFixture& f) { (void)f.coordinator->report(leases.first.id, "d1", CoordinatorFixture::success()); });
}

TEST_CASE("all or nothing: report of a failure that blocks the package and grounds the drone")
{
  Leases leases;
  check_all_or_nothing(
    [&](CoordinatorFixture& f) {
      f.submit(flat_plan(3));
      f.add_drone("d1", 2);
      f.add_drone("d2", 2);
      // p0 fails on d2 first; d1 then fails another package, and finally p0: p0 has failed on two
      // drones (blocked) and d1 twice in a row (grounded, with drone_failure_limit 2).
      auto first = f.claim("d2");
      auto second = f.claim("d2");
      f.fail(first, "d2");
      f.build(second, "d2");
      leases.first = f.claim("d1");
      leases.second = f.claim("d1");
      if (leases.first.cpv != first.cpv) {
        std::swap(leases.first, leases.second);
      }
      REQUIRE(leases.first.cpv == first.cpv);
      f.fail(leases.second, "d1");
    },
    [&](CoordinatorFixture& f) { (void)f.coordinator->report(leases.first.id, "d1", CoordinatorFixture::failure()); },
    [](CoordinatorFixture& f) { f.options.drone_failure_limit = 2; });
}

TEST_CASE("all or nothing: lease expiry")
{
  check_all_or_nothing(
    [](CoordinatorFixture& f) {
      two_running(f);
      f.clock += 61;
    },
    [](CoordinatorFixture& f) { f.coordinator->tick(); });
}

TEST_CASE("all or nothing: return of a lease")
{
  Leases leases;
  check_all_or_nothing(
    [&](CoordinatorFixture& f) {
      chain_and_drone(f);
      leases.first = f.claim("d1");
    },
    [&](CoordinatorFixture& f) { (void)f.coordinator->return_lease(leases.first.id, "d1"); });
}

TEST_CASE("all or nothing: reset")
{
  check_all_or_nothing(two_running, [](CoordinatorFixture& f) { (void)f.coordinator->reset(); });
}

TEST_CASE("all or nothing: ground by the operator")
{
  check_all_or_nothing(two_running,
                       [](CoordinatorFixture& f) { (void)f.coordinator->ground(net::GroundRequest{"d1"}); });
}

TEST_CASE("all or nothing: pause")
{
  // The regression: a failed transaction left the pause in memory only.
  check_all_or_nothing([](CoordinatorFixture& f) { f.submit(chain_plan()); },
                       [](CoordinatorFixture& f) {
                         const auto reply = f.coordinator->set_paused(true);
                         CHECK(f.coordinator->paused() == reply.has_value());
                       });
}

TEST_CASE("all or nothing: unblock")
{
  check_all_or_nothing(
    [](CoordinatorFixture& f) {
      f.submit(chain_plan());
      f.add_drone("d1", 2);
      f.add_drone("d2", 2);
      for (const auto* drone : {"d1", "d1", "d2", "d2"}) {
        if (auto reply = f.coordinator->claim(drone, 0); reply && reply->lease) {
          f.fail(*reply->lease, drone);
        }
      }
      REQUIRE(f.coordinator->status()["counts"]["blocked"] == 2);
    },
    [](CoordinatorFixture& f) { (void)f.coordinator->unblock(net::UnblockRequest{}); });
}

TEST_CASE("all or nothing: plan submission that rebuilds and removes built packages")
{
  // The regression: artifacts were deleted inside the transaction, so a rollback left records
  // naming files that were gone.
  check_all_or_nothing(
    [](CoordinatorFixture& f) {
      f.submit(flat_plan(3));
      f.add_drone("d1", 3);
      for (int i = 0; i < 3; ++i) {
        f.build(f.claim("d1"), "d1");
      }
    },
    [](CoordinatorFixture& f) {
      auto plan = flat_plan(2);
      plan.packages[0].use = {"ssl"};
      plan.packages.push_back(swarm::test::plan_package("app-misc/new-1"));
      (void)f.coordinator->submit_plan(plan, net::PlanMode::replace, true);
    });
}

TEST_CASE("all or nothing: a drone going offline")
{
  check_all_or_nothing(
    [](CoordinatorFixture& f) {
      two_running(f);
      f.clock += 91;
    },
    [](CoordinatorFixture& f) { f.coordinator->maintenance(); });
}

TEST_CASE("all or nothing: balance, enrollment, registration and heartbeat")
{
  check_all_or_nothing(
    [](CoordinatorFixture& f) {
      two_running(f);
      f.clock += 25;
    },
    [](CoordinatorFixture& f) { (void)f.coordinator->balance(); });
  check_all_or_nothing([](CoordinatorFixture&) {},
                       [](CoordinatorFixture& f) { (void)f.coordinator->enroll("new-drone"); });
  check_all_or_nothing([](CoordinatorFixture& f) { REQUIRE(f.coordinator->enroll("d1").has_value()); },
                       [](CoordinatorFixture& f) {
                         net::RegisterRequest hello;
                         hello.name = "d1";
                         hello.slots = 2;
                         (void)f.coordinator->register_drone("d1", hello);
                       });
  Leases leases;
  check_all_or_nothing(
    [&](CoordinatorFixture& f) {
      chain_and_drone(f);
      leases.first = f.claim("d1");
      f.clock += 61;
      f.coordinator->tick(); // expired: a heartbeat revives it
    },
    [&](CoordinatorFixture& f) {
      (void)f.coordinator->heartbeat("d1", net::HeartbeatRequest{1, 2, 3, 4, {"T"}, {leases.first.id}});
    });
}
