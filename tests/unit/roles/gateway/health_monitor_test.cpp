#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>

#include "net/protocol_version.hpp"
#include "roles/gateway/health_monitor.hpp"

using namespace swarm;
using namespace swarm::roles::gateway;
using namespace std::chrono_literals;

namespace {

OrchestratorState state(std::string url, int priority, size_t position, bool healthy)
{
  OrchestratorState out;
  out.spec = OrchestratorSpec{std::move(url), priority, position};
  out.healthy = healthy;
  return out;
}

net::Response answer(int status, std::string body)
{
  net::Response out;
  out.status = status;
  out.body = std::move(body);
  return out;
}

OrchestratorInfo info(std::string id)
{
  OrchestratorInfo out;
  out.orch_id = std::move(id);
  return out;
}

// A probe whose answers the test sets per orchestrator.
struct FakeProbe {
  std::mutex mutex;
  std::map<size_t, bool> up;
  std::atomic<int> calls{0};

  HealthProbe probe()
  {
    return [this](size_t index) -> Result<OrchestratorInfo> {
      ++calls;
      std::lock_guard lock(mutex);
      if (up[index]) {
        return info(fmt::format("orch-{}", index));
      }
      return fail(ErrorKind::unavailable, "connection refused");
    };
  }
};

} // namespace

TEST_CASE("health_monitor: the active orchestrator is the highest-ranked healthy one")
{
  CHECK_FALSE(choose_active({}));
  CHECK_FALSE(choose_active({state("http://a", 100, 0, false), state("http://b", 50, 1, false)}));
  CHECK(choose_active({state("http://a", 100, 0, true), state("http://b", 50, 1, true)}) == 0u);
  CHECK(choose_active({state("http://a", 100, 0, false), state("http://b", 50, 1, true)}) == 1u);
  // Priority beats order; order breaks ties.
  CHECK(choose_active({state("http://a", 1, 0, true), state("http://b", 5, 1, true)}) == 1u);
  CHECK(choose_active({state("http://a", 0, 0, true), state("http://b", 0, 1, true), state("http://c", 0, 2, true)}) ==
        0u);
  CHECK(choose_active({state("http://a", 0, 0, false), state("http://b", 0, 1, true), state("http://c", 0, 2, true)}) ==
        1u);
  CHECK(choose_active(
          {state("http://a", -1, 0, true), state("http://b", 0, 1, false), state("http://c", 0, 2, true)}) == 2u);
}

TEST_CASE("health_monitor: /healthz answers")
{
  const auto good = fmt::format(R"({{"status": "ok", "role": "orch", "version": "0.1.0", "protocol": {},
    "orch_id": "abc", "paused": true, "public_url": "http://p", "staging_url": "http://p/staging/abc/",
    "production_url": "http://p/production/"}})",
                                net::k_protocol_version);
  auto parsed = parse_health_answer(answer(200, good));
  REQUIRE(parsed);
  CHECK(parsed->orch_id == "abc");
  CHECK(parsed->paused);
  CHECK(parsed->production_url == "http://p/production/");
  CHECK(parsed->staging_url == "http://p/staging/abc/");

  CHECK_FALSE(parse_health_answer(answer(503, good)));
  CHECK_FALSE(parse_health_answer(answer(200, "not json")));
  CHECK_FALSE(parse_health_answer(answer(200, "[1]")));
  CHECK_FALSE(parse_health_answer(answer(200, R"({"status": "draining", "role": "orch", "protocol": 1})")));
  auto gateway = parse_health_answer(answer(200, R"({"status": "ok", "role": "gateway", "protocol": 1})"));
  REQUIRE_FALSE(gateway);
  CHECK(gateway.error().message.find("gateway") != std::string::npos);
  auto other_protocol = parse_health_answer(answer(200, R"({"status": "ok", "role": "orch", "protocol": 99})"));
  REQUIRE_FALSE(other_protocol);
  CHECK(other_protocol.error().message.find("99") != std::string::npos);
}

TEST_CASE("health_monitor: no active orchestrator until each has been probed, then failover and back")
{
  FakeProbe fake;
  fake.up = {{0, true}, {1, true}};
  clock::ManualClock clock;
  HealthMonitor monitor({{"http://primary", 100, 0}, {"http://standby", 50, 1}}, fake.probe(), 1s, clock);

  // The standby answering first must not become active before the primary was asked.
  monitor.check(1);
  CHECK_FALSE(monitor.active());
  monitor.check(0);
  REQUIRE(monitor.active());
  CHECK(monitor.active()->url == "http://primary");
  CHECK(monitor.active()->info->orch_id == "orch-0");

  fake.up[0] = false;
  monitor.check(0);
  REQUIRE(monitor.active());
  CHECK(monitor.active()->index == 1u);
  const auto states = monitor.states();
  CHECK_FALSE(states[0].healthy);
  CHECK(states[0].last_error == "connection refused");
  CHECK_FALSE(states[0].latency_ms);
  CHECK(states[1].healthy);

  fake.up[0] = true;
  monitor.check(0);
  CHECK(monitor.active()->index == 0u);

  // A proxied call that cannot connect takes it out at once; the next good probe brings it back.
  monitor.mark_down(0, "connection reset");
  CHECK(monitor.active()->index == 1u);
  CHECK(monitor.states()[0].last_error == "connection reset");
  monitor.mark_down(1, "connection reset");
  CHECK_FALSE(monitor.active());
  monitor.check(1);
  CHECK(monitor.active()->index == 1u);
  monitor.check(0);
  CHECK(monitor.active()->index == 0u);
}

TEST_CASE("health_monitor: status JSON of one orchestrator")
{
  clock::ManualClock clock(clock::SystemTime{std::chrono::seconds{1'700'000'000}});
  HealthMonitor monitor(
    {{"http://a:1", 7, 0}}, [](size_t) -> Result<OrchestratorInfo> { return info("id-a"); }, 1s, clock);
  auto before = state_json(monitor.states()[0]);
  CHECK(before["url"] == "http://a:1");
  CHECK(before["priority"] == 7);
  CHECK(before["healthy"] == false);
  CHECK(before["last_check"].is_null());
  CHECK(before["orch_id"].is_null());

  monitor.check(0);
  auto after = state_json(monitor.states()[0]);
  CHECK(after["healthy"] == true);
  CHECK(after["last_check"].get<double>() == doctest::Approx(1'700'000'000));
  CHECK(after["orch_id"] == "id-a");
  CHECK(after["last_error"] == "");
  CHECK(after["latency_ms"].is_number());
}

TEST_CASE("health_monitor: threads probe every orchestrator and stop promptly")
{
  FakeProbe fake;
  fake.up = {{0, false}, {1, true}};
  HealthMonitor monitor({{"http://a", 0, 0}, {"http://b", 0, 1}}, fake.probe(), 10ms);
  monitor.start();
  REQUIRE(monitor.wait_first_round(std::chrono::steady_clock::now() + 5s));
  REQUIRE(monitor.active());
  CHECK(monitor.active()->index == 1u);
  {
    std::lock_guard lock(fake.mutex);
    fake.up[0] = true;
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (monitor.active()->index != 0u && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms); // polling with a deadline
  }
  CHECK(monitor.active()->index == 0u);
  const auto started = std::chrono::steady_clock::now();
  monitor.stop();
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  const int calls = fake.calls;
  CHECK(calls >= 3);
}
