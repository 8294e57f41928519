#include <doctest/doctest.h>

#include "core/circuit_breaker.hpp"

using namespace swarm::breaker;

TEST_CASE("circuit_breaker: five failures ground, cool-down, one probation job")
{
  CircuitBreaker b(5, 300);
  for (int i = 0; i < 4; ++i) {
    CHECK_FALSE(b.record_failure(100));
  }
  CHECK(b.state(100) == BreakerState::closed);
  CHECK(b.record_failure(100));
  CHECK(b.state(100) == BreakerState::open);
  CHECK_FALSE(b.allows(399, 0));
  CHECK(b.state(401) == BreakerState::half_open);
  CHECK(b.allows(401, 0));
  CHECK_FALSE(b.allows(401, 1)); // only one probation package
  // Probation failure grounds again at once.
  CHECK(b.record_failure(401));
  CHECK(b.state(402) == BreakerState::open);
  // Probation success closes it.
  CHECK(b.state(702) == BreakerState::half_open);
  b.record_success();
  CHECK(b.state(702) == BreakerState::closed);
  CHECK(b.consecutive_failures() == 0);
  CHECK(b.allows(702, 3));
}

TEST_CASE("circuit_breaker: a success resets the consecutive count")
{
  CircuitBreaker b(3, 10);
  b.record_failure(0);
  b.record_failure(0);
  b.record_success();
  CHECK_FALSE(b.record_failure(0));
  CHECK(b.state(0) == BreakerState::closed);
}

TEST_CASE("circuit_breaker: a package failing on two different drones is blocked")
{
  PackageBreaker p(2);
  std::set<std::string> drones;
  int failures = 0;
  CHECK_FALSE(p.record_failure(drones, failures, "a"));
  CHECK_FALSE(p.record_failure(drones, failures, "a")); // same drone twice is not enough…
  CHECK(p.record_failure(drones, failures, "a"));       // …but a third time in total is
  std::set<std::string> other;
  int f2 = 0;
  CHECK_FALSE(p.record_failure(other, f2, "a"));
  CHECK(p.record_failure(other, f2, "b"));
}
