#include <doctest/doctest.h>

#include "roles/orch/coordinator_fixture.hpp"

using namespace swarm;
using swarm::test::CoordinatorFixture;
using swarm::test::plan_package;

TEST_CASE("coordinator views: status says the critical path and the work left over expected durations")
{
  CoordinatorFixture f;
  portage::Plan plan;
  for (auto [cpv, seconds] : std::vector<std::pair<const char*, double>>{
         {"a/short-1", 10}, {"a/long-1", 100}, {"a/after-long-1", 500}, {"a/lone-1", 300}, {"a/stuck-1", 50}}) {
    plan.packages.push_back(plan_package(cpv, seconds));
  }
  plan.edges.push_back({"a/after-long-1", "a/long-1", portage::EdgeKind::depend});
  f.submit(plan);
  auto remaining = f.coordinator->status()["remaining"];
  CHECK(remaining["critical_path_seconds"].get<double>() == doctest::Approx(600)); // long, then after-long
  CHECK(remaining["work_seconds"].get<double>() == doctest::Approx(960));

  f.add_drone("d1", 3);
  const auto lease = f.claim("d1");
  REQUIRE(lease.cpv == "a/long-1");
  f.clock += 40;
  // A running build counts what is left of its expected time; the drone's lease says both.
  auto status = f.coordinator->status();
  CHECK(status["remaining"]["critical_path_seconds"].get<double>() == doctest::Approx(560));
  CHECK(status["remaining"]["work_seconds"].get<double>() == doctest::Approx(920));
  const auto& leases = status["drones"][0]["leases"];
  REQUIRE(leases.size() == 1);
  CHECK(leases[0]["elapsed"].get<double>() == doctest::Approx(40));
  CHECK(leases[0]["expected_seconds"].get<double>() == doctest::Approx(100));
  // Past its expected time a build counts nothing more.
  f.clock += 200;
  CHECK(f.coordinator->status()["remaining"]["critical_path_seconds"].get<double>() == doctest::Approx(500));

  f.build(lease, "d1");
  const auto after = f.claim("d1");
  REQUIRE(after.cpv == "a/after-long-1");
  f.build(after, "d1");
  // Left: lone (300), stuck (50), short (10), side by side.
  remaining = f.coordinator->status()["remaining"];
  CHECK(remaining["critical_path_seconds"].get<double>() == doctest::Approx(300));
  CHECK(remaining["work_seconds"].get<double>() == doctest::Approx(360));
}
