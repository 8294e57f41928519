#include <doctest/doctest.h>

#include "roles/gateway/orchestrator_list.hpp"

using namespace swarm;
using namespace swarm::roles::gateway;

TEST_CASE("orchestrator_list: URL with and without priority")
{
  auto plain = parse_orchestrator("http://10.0.0.1:7070", 3);
  REQUIRE(plain);
  CHECK(plain->url == "http://10.0.0.1:7070");
  CHECK(plain->priority == 0);
  CHECK(plain->position == 3);

  auto ranked = parse_orchestrator("  https://orch.example:8443/swarm/ \t 100 ", 0);
  REQUIRE(ranked);
  CHECK(ranked->url == "https://orch.example:8443/swarm"); // trailing '/' dropped
  CHECK(ranked->priority == 100);

  auto negative = parse_orchestrator("http://h:1 -5", 1);
  REQUIRE(negative);
  CHECK(negative->priority == -5);
}

TEST_CASE("orchestrator_list: bad items are refused with a message naming them")
{
  for (const char* bad :
       {"", "   ", "orch.example:7070", "ftp://h/", "http://h:1 high", "http://h:1 10 20", "http://h:1 1.5",
        "http://h:1 99999999999", "http://user:secret@h:1", "http://h:1/?x=1", "http://h:99999"}) {
    CAPTURE(bad);
    auto parsed = parse_orchestrator(bad, 0);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().kind == ErrorKind::invalid);
  }
  // A token in the URL never reaches the message.
  auto with_secret = parse_orchestrator("http://user:secret@h:1", 0);
  REQUIRE_FALSE(with_secret);
  CHECK(with_secret.error().message.find("secret") == std::string::npos);
}

TEST_CASE("orchestrator_list: list parsing keeps order and refuses empty lists and duplicates")
{
  auto list = parse_orchestrators({"http://a:1 50", "http://b:2", "http://c:3 100"});
  REQUIRE(list);
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].url == "http://a:1");
  CHECK((*list)[0].priority == 50);
  CHECK((*list)[1].priority == 0);
  CHECK((*list)[1].position == 1);
  CHECK((*list)[2].position == 2);

  CHECK_FALSE(parse_orchestrators({}));
  auto duplicate = parse_orchestrators({"http://a:1 5", "http://a:1/ 7"});
  REQUIRE_FALSE(duplicate);
  CHECK(duplicate.error().message.find("twice") != std::string::npos);
  auto bad_item = parse_orchestrators({"http://a:1", "http://b:2 x"});
  REQUIRE_FALSE(bad_item);
  CHECK(bad_item.error().message.find("'x'") != std::string::npos);
}

TEST_CASE("orchestrator_list: ranking is priority, then list order")
{
  const OrchestratorSpec first{"http://a", 0, 0};
  const OrchestratorSpec second{"http://b", 0, 1};
  const OrchestratorSpec high{"http://c", 10, 2};
  CHECK(ranks_higher(first, second));
  CHECK_FALSE(ranks_higher(second, first));
  CHECK(ranks_higher(high, first));
  CHECK_FALSE(ranks_higher(first, high));
  CHECK_FALSE(ranks_higher(first, first));
}
