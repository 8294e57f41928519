#include <doctest/doctest.h>

#include <thread>

#include "core/clock.hpp"

using namespace swarm::clock;
using namespace std::chrono_literals;

TEST_CASE("clock: ManualClock moves only when told")
{
  ManualClock clock(SystemTime{std::chrono::seconds{1000}});
  const auto steady = clock.steady_now();
  CHECK(clock.now_seconds() == doctest::Approx(1000));
  clock.advance(1500ms);
  CHECK(clock.now_seconds() == doctest::Approx(1001.5));
  CHECK(clock.steady_now() - steady == 1500ms);

  // The default sleep jumps time forward instead of blocking.
  clock.sleep_for(10s);
  CHECK(clock.now_seconds() == doctest::Approx(1011.5));

  // A wall-clock jump leaves steady time alone.
  const auto before = clock.steady_now();
  clock.set_now(SystemTime{std::chrono::seconds{5}});
  CHECK(clock.now_seconds() == doctest::Approx(5));
  CHECK(clock.steady_now() == before);
}

TEST_CASE("clock: ManualClock in wait mode blocks sleepers until advanced")
{
  ManualClock clock(SystemTime{}, ManualSleep::wait);
  const auto deadline = clock.steady_now() + 5s;
  std::thread sleeper([&] { clock.sleep_until(deadline); });
  clock.advance(2s);
  clock.advance(3s); // reaches the deadline: the sleeper returns, join does not hang
  sleeper.join();
  CHECK(clock.steady_now() >= deadline);
}

TEST_CASE("clock: SystemClock is the real time")
{
  Clock& clock = system_clock();
  const auto before = clock.steady_now();
  clock.sleep_for(1ms);
  CHECK(clock.steady_now() > before);
  const double wall = clock.now_seconds();
  CHECK(wall > 1.6e9);
}
