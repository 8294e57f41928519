#include <doctest/doctest.h>

#include <vector>

#include "roles/drone/backoff.hpp"

using namespace swarm::roles::drone;
using namespace std::chrono_literals;

TEST_CASE("backoff: 1 s doubling, capped at 60 s, reset after a success")
{
  Backoff backoff;
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 9; ++i) {
    waits.push_back(backoff.next());
  }
  CHECK(waits == std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s});
  backoff.reset();
  CHECK(backoff.next() == 1s);
  CHECK(backoff.next() == 2s);

  Backoff custom(250ms, 1s);
  CHECK(custom.next() == 250ms);
  CHECK(custom.next() == 500ms);
  CHECK(custom.next() == 1s);
  CHECK(custom.next() == 1s);
}
