#include <doctest/doctest.h>

#include <regex>
#include <set>

#include "core/config.hpp"

using namespace swarm::config;

TEST_CASE("config: the key table is consistent")
{
  std::set<std::string_view> names;
  const std::regex name_pattern("^[a-z]+\\.(\\*\\.)?[a-z_]+$");
  for (const auto& key : keys()) {
    INFO(key.name);
    CHECK(names.insert(key.name).second);
    CHECK(std::regex_match(std::string(key.name), name_pattern));
    CHECK(!key.help.empty());
    CHECK(check_value(key.type, key.default_value).has_value());
  }
}

TEST_CASE("config: flag beats env beats file beats default")
{
  std::map<std::string, std::string> env{{"SWARM_ORCH_LISTEN", "127.0.0.1:9"}, {"SWARM_ORCH_THREADS", "7"}};
  Sources sources;
  sources.env_override = &env;
  sources.flags["orch.listen"] = "127.0.0.1:1";
  auto config = Config::load(sources);
  REQUIRE(config.has_value());
  CHECK(config->get("orch.listen") == "127.0.0.1:1");
  CHECK(config->value("orch.listen").origin == Origin::flag);
  CHECK(config->get_int("orch.threads") == 7);
  CHECK(config->value("orch.threads").origin == Origin::env);
  CHECK(config->value("orch.threads").where == "SWARM_ORCH_THREADS");
  CHECK(config->value("orch.data_dir").origin == Origin::default_value);
}

TEST_CASE("config: file values, sections and line numbers")
{
  auto parsed = parse_file_text("# comment\n[orch]\nlisten = 0.0.0.0:7070\n\n[drone]\nslots = \"3\"\n");
  REQUIRE(parsed.has_value());
  CHECK(parsed->at("orch.listen").first == "0.0.0.0:7070");
  CHECK(parsed->at("orch.listen").second == 3);
  CHECK(parsed->at("drone.slots").first == "3");
}

TEST_CASE("config: unknown keys and bad values are errors naming the key")
{
  CHECK_FALSE(parse_file_text("[orch]\nlisen = x\n").has_value());
  CHECK_FALSE(parse_file_text("[orch]\nlisten\n").has_value());
  std::map<std::string, std::string> env{{"SWARM_ORCH_THREADS", "many"}};
  Sources sources;
  sources.env_override = &env;
  auto config = Config::load(sources);
  REQUIRE_FALSE(config.has_value());
  CHECK(config.error().message.find("orch.threads") != std::string::npos);
  CHECK(config.error().message.find("SWARM_ORCH_THREADS") != std::string::npos);
}

TEST_CASE("config: env names are derived from key names")
{
  CHECK(env_name("orch.listen") == "SWARM_ORCH_LISTEN");
  CHECK(env_name("drone.min_free_disk") == "SWARM_DRONE_MIN_FREE_DISK");
}

TEST_CASE("config: families of keys (webhook.NAME.url) from the file")
{
  auto parsed = parse_file_text("[webhook.ci]\nurl = http://x/\nevents = *\n[webhook.chat-2]\nurl = http://y/\n");
  REQUIRE(parsed.has_value());
  CHECK(parsed->at("webhook.ci.url").first == "http://x/");
  CHECK(find_key("webhook.ci.url") != nullptr);
  CHECK(find_key("webhook.ci.nope") == nullptr);
  CHECK(find_key("webhook.a.b.url") == nullptr);
  CHECK(matches_key("webhook.*.url", "webhook.chat-2.url"));
  CHECK(!matches_key("webhook.*.url", "webhook..url"));
}
