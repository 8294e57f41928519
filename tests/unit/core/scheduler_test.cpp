#include <doctest/doctest.h>

#include "core/scheduler.hpp"

using namespace swarm;
using sched::JobState;

TEST_CASE("scheduler: a job is ready only when everything it waits for is done")
{
  dag::Graph g(3);
  g.add_edge(0, 1, dag::Strength::build); // 0 waits for 1
  g.add_edge(0, 2, dag::Strength::build); // and for 2
  sched::KahnScheduler s(g, {1, 5, 3});
  CHECK(s.ready() == std::vector<dag::NodeId>{1, 2}); // priority order
  s.set_state(1, JobState::running);
  CHECK(s.ready() == std::vector<dag::NodeId>{2});
  s.set_state(1, JobState::done);
  CHECK_FALSE(s.is_ready(0));
  s.set_state(2, JobState::done);
  CHECK(s.is_ready(0));
  // A lease returned: a done job going back to needed makes its dependant wait again.
  s.set_state(2, JobState::needed);
  CHECK_FALSE(s.is_ready(0));
  CHECK(s.pending(0) == 1);
}

TEST_CASE("scheduler: pick respects eligibility and priority")
{
  dag::Graph g(3);
  sched::KahnScheduler s(g, {1, 9, 5});
  CHECK(s.pick([](dag::NodeId) { return true; }) == 1u);
  CHECK(s.pick([](dag::NodeId n) { return n != 1; }) == 2u);
  CHECK_FALSE(s.pick([](dag::NodeId) { return false; }).has_value());
}

TEST_CASE("scheduler: blocking a job fails its dependants, unblocking restores them")
{
  // 2 waits for 1 waits for 0; 3 waits for 0 as well.
  dag::Graph g(4);
  g.add_edge(2, 1, dag::Strength::build);
  g.add_edge(1, 0, dag::Strength::build);
  g.add_edge(3, 0, dag::Strength::build);
  sched::KahnScheduler s(g, {4, 3, 2, 1});
  s.set_state(0, JobState::blocked);
  CHECK(s.state(1) == JobState::dep_failed);
  CHECK(s.state(2) == JobState::dep_failed);
  CHECK(s.state(3) == JobState::dep_failed);
  CHECK(s.ready_count() == 0);
  s.set_state(0, JobState::needed);
  CHECK(s.state(1) == JobState::needed);
  CHECK(s.state(2) == JobState::needed);
  CHECK(s.is_ready(0));
}
