#include <doctest/doctest.h>

#include "net/auth_limiter.hpp"

using swarm::net::AuthFailureLimiter;
using namespace std::chrono_literals;

TEST_CASE("auth limiter: the 11th failure in a minute is refused, for that address only")
{
  AuthFailureLimiter limiter({.max_failures = 10, .window = 60s});
  const auto t0 = AuthFailureLimiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 10; ++i) {
    CHECK_FALSE(limiter.blocked("10.0.0.1", t0 + std::chrono::seconds(i)));
    limiter.failed("10.0.0.1", t0 + std::chrono::seconds(i));
  }
  // Blocked until the oldest failure (t0) leaves the window: 60 s after it, seen from t0 + 10 s.
  const auto wait = limiter.blocked("10.0.0.1", t0 + 10s);
  REQUIRE(wait);
  CHECK(*wait == 50);
  CHECK_FALSE(limiter.blocked("10.0.0.2", t0 + 10s));
  // Once the oldest ages out, one more try is allowed; a failure blocks again.
  CHECK_FALSE(limiter.blocked("10.0.0.1", t0 + 60s));
  limiter.failed("10.0.0.1", t0 + 60s);
  REQUIRE(limiter.blocked("10.0.0.1", t0 + 60s));
  CHECK(*limiter.blocked("10.0.0.1", t0 + 60s) == 1);
  // A quiet minute forgets the address.
  CHECK_FALSE(limiter.blocked("10.0.0.1", t0 + 200s));
  CHECK(limiter.tracked() == 0);
}

TEST_CASE("auth limiter: fewer failures than the limit, or a limit of 0, never block")
{
  AuthFailureLimiter limiter({.max_failures = 3, .window = 60s});
  const auto t0 = AuthFailureLimiter::Clock::time_point{} + 1000s;
  limiter.failed("a", t0);
  limiter.failed("a", t0 + 1s);
  CHECK_FALSE(limiter.blocked("a", t0 + 2s));
  limiter.failed("a", t0 + 70s); // the first two aged out
  CHECK_FALSE(limiter.blocked("a", t0 + 71s));

  AuthFailureLimiter off({.max_failures = 0});
  for (int i = 0; i < 100; ++i) {
    off.failed("a", t0);
  }
  CHECK_FALSE(off.blocked("a", t0));
  CHECK(off.tracked() == 0);
}

TEST_CASE("auth limiter: memory stays bounded by max_addresses")
{
  AuthFailureLimiter limiter({.max_failures = 2, .window = 60s, .max_addresses = 100});
  const auto t0 = AuthFailureLimiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 1000; ++i) {
    limiter.failed("addr" + std::to_string(i), t0);
  }
  CHECK(limiter.tracked() <= 100);
  // Old entries make room for new ones once they leave the window.
  limiter.failed("late", t0 + 61s);
  CHECK(limiter.tracked() == 1);
}
