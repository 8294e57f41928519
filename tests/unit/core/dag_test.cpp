#include <doctest/doctest.h>

#include <algorithm>

#include "core/dag.hpp"

using namespace swarm::dag;

TEST_CASE("dag: edges are deduplicated and keep the stronger strength")
{
  Graph g(3);
  g.add_edge(0, 1, Strength::closure);
  g.add_edge(0, 1, Strength::build);
  g.add_edge(0, 1, Strength::closure);
  g.add_edge(2, 2, Strength::build); // self edge ignored
  CHECK(g.edge_count() == 1);
  CHECK(g.needs(0).front().strength == Strength::build);
  CHECK(g.dependants(1) == std::vector<NodeId>{0});
  g.remove_edge(0, 1);
  CHECK(g.edge_count() == 0);
  CHECK(g.dependants(1).empty());
}

TEST_CASE("dag: topological order, bottom levels and transitive sets")
{
  // 0 waits for 1, 1 waits for 2, 3 waits for 2.
  Graph g(4);
  g.add_edge(0, 1, Strength::build);
  g.add_edge(1, 2, Strength::build);
  g.add_edge(3, 2, Strength::build);
  const auto order = g.topological_order();
  REQUIRE(order.size() == 4);
  auto pos = [&](NodeId n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  CHECK(pos(2) < pos(1));
  CHECK(pos(1) < pos(0));
  CHECK(pos(2) < pos(3));
  const std::vector<double> durations{10, 20, 30, 100};
  const auto levels = g.bottom_levels(durations);
  CHECK(levels[0] == 10);
  CHECK(levels[1] == 30);
  CHECK(levels[2] == 130); // 2 → 3 is the longest chain after it
  CHECK(levels[3] == 100);
  CHECK(g.transitive_dependants(2) == std::vector<NodeId>{0, 1, 3});
  CHECK(g.transitive_needs(0) == std::vector<NodeId>{2, 1});
}

TEST_CASE("dag: cycles are found and broken, closure edges first")
{
  // 0 ⇄ 1 via a closure edge and a build edge: only the closure edge goes.
  Graph g(2);
  g.add_edge(0, 1, Strength::build);
  g.add_edge(1, 0, Strength::closure);
  CHECK(g.cycles().size() == 1);
  const auto broken = g.break_cycles();
  REQUIRE(broken.size() == 1);
  CHECK(broken[0].from == 1);
  CHECK(broken[0].to == 0);
  CHECK(broken[0].strength == Strength::closure);
  CHECK(g.cycles().empty());
  CHECK(g.has_edge(0, 1));
}

TEST_CASE("dag: a build cycle is broken where Portage's merge order deferred it")
{
  // ffmpeg(0) → libsdl2(1) → pipewire(2) → ffmpeg(0); Portage merged pipewire, libsdl2, ffmpeg.
  Graph g(3);
  g.add_edge(0, 1, Strength::build);
  g.add_edge(1, 2, Strength::build);
  g.add_edge(2, 0, Strength::build);
  const std::vector<size_t> merge_position{2, 1, 0};
  const auto broken = g.break_cycles(merge_position);
  REQUIRE(broken.size() == 1);
  CHECK(broken[0].from == 2); // pipewire no longer waits for ffmpeg
  CHECK(broken[0].to == 0);
  CHECK(g.topological_order().size() == 3);
}

TEST_CASE("dag: without a merge order the most depended-on member is built last in its cycle")
{
  // Cycle 0 → 1 → 2 → 0; nodes 3 and 4 also wait for 1, so 1 has the most dependants.
  Graph g(5);
  g.add_edge(0, 1, Strength::build);
  g.add_edge(1, 2, Strength::build);
  g.add_edge(2, 0, Strength::build);
  g.add_edge(3, 1, Strength::build);
  g.add_edge(4, 1, Strength::build);
  const auto broken = g.break_cycles();
  REQUIRE(broken.size() == 1);
  CHECK(broken[0].from == 0);
  CHECK(broken[0].to == 1);
  CHECK(g.cycles().empty());
  CHECK(g.has_edge(3, 1)); // outside packages still wait for it
  CHECK(!broken[0].reason.empty());
}

TEST_CASE("dag: nested cycles never stall")
{
  // A dense strongly connected blob of 6 nodes.
  Graph g(6);
  for (NodeId a = 0; a < 6; ++a) {
    for (NodeId b = 0; b < 6; ++b) {
      g.add_edge(a, b, (a + b) % 2 ? Strength::build : Strength::closure);
    }
  }
  g.break_cycles();
  CHECK(g.cycles().empty());
  CHECK(g.topological_order().size() == 6);
}

TEST_CASE("dag: runtime closure of build dependencies")
{
  // X(0) builds with Y(1); Y runs with Z(2); Z runs with W(3) and with X itself.
  const std::vector<std::pair<NodeId, NodeId>> build{{0, 1}};
  const std::vector<std::pair<NodeId, NodeId>> runtime{{1, 2}, {2, 3}, {2, 0}};
  const auto g = with_runtime_closure(4, build, runtime);
  CHECK(g.has_edge(0, 1));
  CHECK(g.needs(0).front().strength == Strength::build);
  CHECK(g.has_edge(0, 2));
  CHECK(g.has_edge(0, 3));
  CHECK_FALSE(g.has_edge(0, 0));
  CHECK(g.edge_count() == 3);
}
