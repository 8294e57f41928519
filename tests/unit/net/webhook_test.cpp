#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/metrics.hpp"
#include "net/webhook.hpp"

using namespace swarm;

namespace {

const std::vector<std::string_view> k_events{"plan-complete", "package-blocked"};

} // namespace

TEST_CASE("webhook: targets from their configuration")
{
  auto target =
    net::make_webhook_target("ci", "http://127.0.0.1:9/hook", {"plan-complete"}, "X-Secret:  s3cret value", k_events);
  REQUIRE(target.has_value());
  CHECK(target->header_name == "X-Secret");
  CHECK(target->header_value == "s3cret value");
  CHECK(target->wants("plan-complete"));
  CHECK(!target->wants("package-blocked"));

  auto every = net::make_webhook_target("all", "https://example.org/", {"*"}, "", k_events);
  REQUIRE(every.has_value());
  CHECK(every->wants("package-blocked"));
  CHECK(every->header_name.empty());

  CHECK(!net::make_webhook_target("x", "", {}, "", k_events));
  CHECK(!net::make_webhook_target("x", "not a url", {}, "", k_events));
  auto typo = net::make_webhook_target("x", "http://h/", {"plan-done"}, "", k_events);
  REQUIRE(!typo);
  CHECK(typo.error().message.find("plan-done") != std::string::npos);
  CHECK(!net::make_webhook_target("x", "http://h/", {}, "no colon", k_events));
  CHECK(!net::make_webhook_target("x", "http://h/", {}, "Bad Name: v", k_events));
}

TEST_CASE("webhook: a full queue drops the oldest delivery and counts it")
{
  metrics::Registry registry;
  auto target = net::make_webhook_target("t", "http://127.0.0.1:9/", {"*"}, "", k_events);
  REQUIRE(target.has_value());
  net::WebhookOptions options;
  options.queue_limit = 2;
  net::WebhookSender sender({*target}, options, &registry); // never started: nothing is sent
  for (int i = 0; i < 5; ++i) {
    sender.send("plan-complete", nlohmann::json{{"n", i}});
  }
  CHECK(sender.dropped() == 3);
  const auto text = registry.render();
  CHECK(text.find("swarm_webhook_dropped_total 3\n") != std::string::npos);
  CHECK(text.find("swarm_webhook_queue 2\n") != std::string::npos);
}
