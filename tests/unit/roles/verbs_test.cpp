#include <doctest/doctest.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "net/test_server.hpp"
#include "roles/verbs.hpp"

using namespace swarm;
using namespace swarm::roles;

namespace {

struct Outcome {
  int code = 0;
  std::string out;
  std::string err;
};

std::string read_all(FILE* file)
{
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
    text.append(buffer, n);
  }
  return text;
}

// `swarm ARGS…` through the verb registry, in this process, with stdout and stderr captured.
Outcome run_swarm(std::vector<std::string> args)
{
  args.insert(args.begin(), "swarm");
  std::vector<char*> argv;
  for (auto& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  std::cout.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  FILE* out = std::tmpfile();
  FILE* err = std::tmpfile();
  REQUIRE(out);
  REQUIRE(err);
  const int saved_out = ::dup(STDOUT_FILENO);
  const int saved_err = ::dup(STDERR_FILENO);
  ::dup2(::fileno(out), STDOUT_FILENO);
  ::dup2(::fileno(err), STDERR_FILENO);
  Outcome outcome;
  outcome.code = roles::main(static_cast<int>(args.size()), argv.data());
  std::cout.flush();
  std::cerr.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(saved_out, STDOUT_FILENO);
  ::dup2(saved_err, STDERR_FILENO);
  ::close(saved_out);
  ::close(saved_err);
  outcome.out = read_all(out);
  outcome.err = read_all(err);
  std::fclose(out);
  std::fclose(err);
  return outcome;
}

// Exit 2, nothing on stdout, and exactly one line on stderr: "swarm: error: …" containing `what`.
void check_usage_error(const std::vector<std::string>& args, const std::string& what)
{
  INFO("swarm " << strings::join(args, " "));
  const auto outcome = run_swarm(args);
  INFO("stderr: " << outcome.err);
  CHECK(outcome.code == exit_code::k_usage);
  CHECK(outcome.out.empty());
  CHECK(outcome.err.starts_with("swarm: error: "));
  CHECK(std::count(outcome.err.begin(), outcome.err.end(), '\n') == 1);
  CHECK(outcome.err.find(what) != std::string::npos);
}

struct TestOptions {
  std::string name;
  int count = 3;
  bool json = false;
};

} // namespace

TEST_CASE("verbs: bad option values are refused before the verb runs, in one line, exit 2")
{
  fs::TempDir dir("swarm-verbs-test");
  check_usage_error({"demo", "--time-scale", "-1"}, "--time-scale: must be a number >= 0");
  check_usage_error({"demo", "--time-scale", "fast"}, "--time-scale: must be a number >= 0");
  check_usage_error({"demo", "--drones", "4,0"}, "--drones: takes slot counts from 1 to 64");
  check_usage_error({"demo", "--drones", "4,x,1"}, "--drones: takes slot counts from 1 to 64");
  check_usage_error({"verify", "--threshold", "101"}, "--threshold");
  check_usage_error({"release", "--threshold", "-1"}, "--threshold");
  check_usage_error({"release", "--wait-timeout", "soon"}, "--wait-timeout");
  check_usage_error({"release", "--wait-timeout", "-5"}, "--wait-timeout");
  check_usage_error({"monitor", "--interval", "0"}, "--interval");
  check_usage_error({"history", "--limit", "many"}, "--limit");
  check_usage_error({"portage", "index", dir.path().string(), "--timestamp", "-5"},
                    "--timestamp: wants seconds since the epoch, not '-5'");
}

TEST_CASE("verbs: a misspelt or missing option is a usage error")
{
  check_usage_error({"status", "--jsn"}, "--jsn");
  check_usage_error({"portage", "vercmp", "1.0"}, "b is required");
  check_usage_error({"statsu"}, "did you mean 'status'?");
}

TEST_CASE("verbs: typed options reach run()")
{
  const auto vercmp = run_swarm({"portage", "vercmp", "1.0", "1.0_p0"});
  CHECK(vercmp.code == exit_code::k_ok);
  CHECK(vercmp.out == "-1\n");
  // Positional and option values land in their fields; empty means "not given".
  const auto atom = run_swarm({"portage", "atom", "dev-libs/A:=", "--eapi", "4"});
  CHECK(atom.code == exit_code::k_usage);
  CHECK(atom.err.find("invalid atom") != std::string::npos);
  const auto any_eapi = run_swarm({"portage", "atom", "dev-libs/A:="});
  CHECK(any_eapi.code == exit_code::k_ok);
  CHECK(nlohmann::json::parse(any_eapi.out)["slot_operator"] == "=");
}

TEST_CASE("verbs: config-key flags are the first configuration source")
{
  const auto shown = run_swarm({"config", "show", "--json"});
  REQUIRE(shown.code == exit_code::k_ok);
  bool found = false;
  for (const auto& key : nlohmann::json::parse(shown.out)) {
    if (key["key"] == "client.url") {
      found = true;
      CHECK(key["origin"] != "flag");
    }
  }
  CHECK(found);

  CLI::App app;
  ConfigFlags flags;
  bind_config_flag(app, flags, "--url", "client.url");
  app.parse(std::vector<std::string>{"http://gateway.lan:7000", "--url"});
  CHECK(flags == ConfigFlags{{"client.url", "http://gateway.lan:7000"}});
  CHECK_THROWS_AS(bind_config_flag(app, flags, "--nope", "client.no_such_key"), Fatal);
}

TEST_CASE("verbs: make_verb binds one options struct to add_options and run, fresh for each parse")
{
  int runs = 0;
  TestOptions seen;
  const auto verb = make_verb<TestOptions>(
    "test", "a verb for this test",
    [](CLI::App& app, ConfigFlags&, TestOptions& options) {
      app.add_option("name", options.name);
      app.add_option("--count", options.count);
      add_json_flag(app, options.json);
    },
    [&](const VerbContext&, const TestOptions& options) {
      ++runs;
      seen = options;
      return 7;
    });
  const VerbContext context{};
  {
    CLI::App app;
    ConfigFlags flags;
    verb.add_options(app, flags);
    app.parse(std::vector<std::string>{"--json", "5", "--count", "box"}); // CLI11 parses from the back
    CHECK(verb.run(context) == 7);
    CHECK(seen.name == "box");
    CHECK(seen.count == 5);
    CHECK(seen.json);
  }
  {
    CLI::App app;
    ConfigFlags flags;
    verb.add_options(app, flags);
    app.parse(std::vector<std::string>{});
    verb.run(context);
    CHECK(seen.name.empty());
    CHECK(seen.count == 3);
    CHECK_FALSE(seen.json);
  }
  CHECK(runs == 2);
}

TEST_CASE("verbs: --yes is a Confirm, not a bool")
{
  CLI::App app;
  Confirm confirm = Confirm::ask;
  add_yes_flag(app, confirm);
  app.parse(std::vector<std::string>{"-y"});
  CHECK(confirm == Confirm::assume_yes);
}

TEST_CASE("verbs: an answer that is not the protocol's message is one error line and exit 1")
{
  net::test::TestServer server;
  server.server.post("/api/v1/control/balance", [](const httplib::Request&, httplib::Response& response) {
    net::json_response(response, 200, {{"moved", 3}});
  });
  server.server.post("/api/v1/control/pause", [](const httplib::Request&, httplib::Response& response) {
    net::json_response(response, 200, {{"action", "pause"}, {"paused", true}});
  });
  server.start();
  const fs::TempDir dir("swarm-verbs-token");
  const auto token_file = (dir.path() / "token").string();
  REQUIRE(fs::write_file_atomic(token_file, "t0k\n", 0600));
  const auto balance = run_swarm({"balance", "--url", server.url(), "--token-file", token_file});
  INFO("stderr: " << balance.err);
  CHECK(balance.code == exit_code::k_failure);
  CHECK(balance.out.empty());
  CHECK(balance.err.starts_with("swarm: error: the answer to POST /api/v1/control/balance"));
  CHECK(balance.err.find("'moved'") != std::string::npos);
  CHECK(std::count(balance.err.begin(), balance.err.end(), '\n') == 1);

  const auto pause = run_swarm({"pause", "--url", server.url(), "--token-file", token_file});
  CHECK(pause.code == exit_code::k_ok);
  CHECK(pause.out == "paused: drones get no new work (running builds finish)\n");
  const auto as_json = run_swarm({"pause", "--url", server.url(), "--token-file", token_file, "--json"});
  CHECK(nlohmann::json::parse(as_json.out) == nlohmann::json{{"action", "pause"}, {"paused", true}});
}
