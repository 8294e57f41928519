#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"

using namespace swarm::metrics;

TEST_CASE("metrics: counters render with HELP, TYPE and escaped labels")
{
  Registry registry;
  auto& builds = registry.counter("swarm_test_builds_total", "Builds by result.\nSecond line", {"result"});
  builds.add({"success"});
  builds.add({"success"}, 2);
  builds.add({"fail\"ed\\"});
  builds.add({"success"}, -5); // ignored: counters only go up
  CHECK(builds.value({"success"}) == 3);
  const auto text = registry.render();
  CHECK(text.find("# HELP swarm_test_builds_total Builds by result.\\nSecond line\n") != std::string::npos);
  CHECK(text.find("# TYPE swarm_test_builds_total counter\n") != std::string::npos);
  CHECK(text.find("swarm_test_builds_total{result=\"success\"} 3\n") != std::string::npos);
  CHECK(text.find("swarm_test_builds_total{result=\"fail\\\"ed\\\\\"} 1\n") != std::string::npos);
}

TEST_CASE("metrics: gauges set, add and clear; unlabelled series have no braces")
{
  Registry registry;
  auto& free_bytes = registry.gauge("swarm_test_free_bytes", "Free bytes.");
  free_bytes.set(1.5);
  free_bytes.add(-0.5);
  CHECK(registry.render().find("swarm_test_free_bytes 1\n") != std::string::npos);
  free_bytes.clear();
  CHECK(registry.render().find("\nswarm_test_free_bytes ") == std::string::npos);
  // Unlabelled families are exposed as 0 before their first update.
  registry.histogram("swarm_test_idle_seconds", "Idle.", {1});
  CHECK(registry.render().find("swarm_test_idle_seconds_count 0\n") != std::string::npos);
  CHECK(&registry.gauge("swarm_test_free_bytes", "again") == &free_bytes);
}

TEST_CASE("metrics: histograms are cumulative, with +Inf, _sum and _count")
{
  Registry registry;
  auto& wait = registry.histogram("swarm_test_wait_seconds", "Wait.", {0.1, 1, 10}, {"kind"});
  wait.observe({"a"}, 0.05);
  wait.observe({"a"}, 0.1); // on the bound: counted in le="0.1"
  wait.observe({"a"}, 5);
  wait.observe({"a"}, 100);
  const auto text = registry.render();
  CHECK(text.find("# TYPE swarm_test_wait_seconds histogram\n") != std::string::npos);
  CHECK(text.find("swarm_test_wait_seconds_bucket{kind=\"a\",le=\"0.1\"} 2\n") != std::string::npos);
  CHECK(text.find("swarm_test_wait_seconds_bucket{kind=\"a\",le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("swarm_test_wait_seconds_bucket{kind=\"a\",le=\"10\"} 3\n") != std::string::npos);
  CHECK(text.find("swarm_test_wait_seconds_bucket{kind=\"a\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(text.find("swarm_test_wait_seconds_sum{kind=\"a\"} 105.15\n") != std::string::npos);
  CHECK(text.find("swarm_test_wait_seconds_count{kind=\"a\"} 4\n") != std::string::npos);
  CHECK(wait.value({"a"}) == 4);
}

TEST_CASE("metrics: collectors run before each render")
{
  Registry registry;
  auto& scraped = registry.gauge("swarm_test_scrapes", "Scrapes.");
  int calls = 0;
  registry.on_collect([&] { scraped.set(++calls); });
  CHECK(registry.render().find("swarm_test_scrapes 1\n") != std::string::npos);
  CHECK(registry.render().find("swarm_test_scrapes 2\n") != std::string::npos);
}

TEST_CASE("metrics: values and names")
{
  CHECK(format_value(3) == "3");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(1.0 / 0.0) == "+Inf");
  CHECK(escape_label_value("a\nb") == "a\\nb");
  Registry registry;
  CHECK_THROWS(registry.counter("9bad", "x"));
  CHECK_THROWS(registry.counter("bad-name", "x"));
  registry.counter("swarm_twice_total", "x");
  CHECK_THROWS(registry.gauge("swarm_twice_total", "x"));
}

TEST_CASE("metrics: concurrent updates are all counted")
{
  Registry registry;
  auto& hits = registry.counter("swarm_test_hits_total", "Hits.", {"route"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hits, t] {
      for (int i = 0; i < 1000; ++i) {
        hits.add({t % 2 == 0 ? "even" : "odd"});
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(hits.value({"even"}) == 2000);
  CHECK(hits.value({"odd"}) == 2000);
}
