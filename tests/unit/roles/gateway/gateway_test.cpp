#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <thread>

#include "core/config.hpp"
#include "core/fs.hpp"
#include "net/file_serving.hpp"
#include "net/protocol_version.hpp"
#include "roles/gateway/gateway.hpp"

using namespace swarm;
using namespace swarm::roles::gateway;
using namespace std::chrono_literals;

namespace {

Result<config::Config> load(std::map<std::string, std::string> flags)
{
  std::map<std::string, std::string> no_env;
  config::Sources sources;
  sources.flags = std::move(flags);
  sources.env_override = &no_env;
  return config::Config::load(sources);
}

// A stand-in orchestrator on a kernel-chosen port: /healthz, an echo of each /api call, and an
// upload route that counts the bytes it receives.
class FakeOrch {
public:
  explicit FakeOrch(std::string id) : m_id(std::move(id))
  {
    m_server.get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
      net::json_response(response, 200,
                         {{"status", "ok"},
                          {"role", "orch"},
                          {"version", "test"},
                          {"protocol", net::k_protocol_version},
                          {"orch_id", m_id},
                          {"paused", false},
                          {"production_url", "http://binhost.example/" + m_id + "/"}});
    });
    const auto echo = [this](const httplib::Request& request, httplib::Response& response) {
      ++m_calls;
      response.set_header("X-Swarm-Served-By", m_id);
      response.set_header("Set-Cookie", "no=thanks");
      net::json_response(response, request.has_param("status") ? std::stoi(request.get_param_value("status")) : 200,
                         {{"orch_id", m_id},
                          {"method", request.method},
                          {"target", request.target},
                          {"authorization", request.get_header_value("Authorization")},
                          {"swarm_header", request.get_header_value("X-Swarm-Test")},
                          {"cookie", request.get_header_value("Cookie")},
                          {"body", request.body}});
    };
    // The caller check the gateway makes before reading a body: "Bearer bad" is refused.
    m_server.get("/api/v1/whoami", [this](const httplib::Request& request, httplib::Response& response) {
      ++m_whoami;
      if (request.get_header_value("Authorization") == "Bearer bad") {
        net::error_response(response, {ErrorKind::unauthorized, "unknown token"});
        return;
      }
      net::json_response(response, 200, {{"role", "admin"}, {"drone", nullptr}});
    });
    m_server.get("/api/.*", echo);
    m_server.post("/api/.*", echo);
    m_server.del("/api/.*", echo);
    m_server.put_stream("/api/v1/leases/.*/artifact", 1ull << 30,
                        [this](const httplib::Request& request, httplib::Response& response, net::RequestBody& body) {
                          ++m_calls;
                          uint64_t checksum = 0;
                          auto size = body.read([&](std::string_view chunk) -> Result<> {
                            for (unsigned char c : chunk) {
                              checksum = checksum * 31 + c;
                            }
                            return {};
                          });
                          REQUIRE(size);
                          net::json_response(response, 201,
                                             {{"orch_id", m_id},
                                              {"size", *size},
                                              {"checksum", checksum},
                                              {"sha", request.get_header_value("X-Swarm-Sha256")},
                                              {"length", request.get_header_value("Content-Length")}});
                        });
    REQUIRE(m_server.bind("127.0.0.1", 0));
    REQUIRE(m_server.listen_in_thread());
  }

  std::string url() const { return fmt::format("http://127.0.0.1:{}", m_server.port()); }
  void kill() { m_server.stop(); }
  int calls() const { return m_calls; }
  int whoami_calls() const { return m_whoami; }

private:
  std::string m_id;
  std::atomic<int> m_calls{0};
  std::atomic<int> m_whoami{0};
  net::HttpServer m_server;
};

GatewayOptions options_for(const std::vector<std::pair<std::string, int>>& orchestrators)
{
  GatewayOptions options;
  options.port = 0;
  // Long: in these tests only calls that fail mark an orchestrator down.
  options.health_interval = 60s;
  options.health_timeout = 2s;
  options.threads = 8;
  for (size_t i = 0; i < orchestrators.size(); ++i) {
    options.orchestrators.push_back({orchestrators[i].first, orchestrators[i].second, i});
  }
  return options;
}

net::CallOptions raw_answers()
{
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  return call;
}

net::HttpClient client_for(const Gateway& gateway, std::string token = "")
{
  net::ClientOptions options;
  options.base_url = fmt::format("http://127.0.0.1:{}", gateway.port());
  options.token = std::move(token);
  options.timeout = 10s;
  return net::HttpClient(options);
}

nlohmann::json json_of(const Result<net::Response>& response)
{
  REQUIRE(response);
  auto parsed = response->json();
  REQUIRE(parsed);
  return *parsed;
}

} // namespace

TEST_CASE("gateway: options from the configuration")
{
  auto defaults = load({});
  REQUIRE(defaults);
  auto options = gateway_options(*defaults);
  REQUIRE(options);
  CHECK(options->host == "127.0.0.1");
  CHECK(options->port == 7000);
  REQUIRE(options->orchestrators.size() == 1);
  CHECK(options->orchestrators[0].url == "http://127.0.0.1:7070");
  CHECK(options->health_interval == 2s);
  CHECK(options->health_timeout == 1s);
  CHECK(options->threads == 128);

  auto custom = load({{"gateway.listen", "0.0.0.0:0"},
                      {"gateway.orchestrators", "http://a:1 100, http://b:2 50"},
                      {"gateway.health_interval", "300ms"}});
  REQUIRE(custom);
  auto parsed = gateway_options(*custom);
  REQUIRE(parsed);
  CHECK(parsed->host == "0.0.0.0");
  CHECK(parsed->port == 0);
  REQUIRE(parsed->orchestrators.size() == 2);
  CHECK(parsed->orchestrators[1].priority == 50);
  CHECK(parsed->health_interval == 300ms);

  for (const std::map<std::string, std::string>& bad :
       {std::map<std::string, std::string>{{"gateway.listen", "nowhere"}},
        {{"gateway.listen", ":0"}},
        {{"gateway.orchestrators", "http://a:1 high"}},
        {{"gateway.orchestrators", " , "}},
        {{"gateway.health_interval", "0s"}},
        {{"gateway.threads", "0"}}}) {
    CAPTURE(bad.begin()->second);
    auto config = load(bad);
    REQUIRE(config);
    auto refused = gateway_options(*config);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == ErrorKind::invalid);
    CHECK(refused.error().message.find('\n') == std::string::npos);
  }
}

TEST_CASE("gateway: proxies to the active orchestrator and passes method, target, headers, status and body")
{
  FakeOrch primary("primary");
  FakeOrch standby("standby");
  Gateway gateway(options_for({{standby.url(), 50}, {primary.url(), 100}}));
  REQUIRE(gateway.start());
  const auto client = client_for(gateway);

  auto health = json_of(client.request("GET", "/healthz"));
  CHECK(health["role"] == "gateway");
  CHECK(health["status"] == "ok");
  CHECK(health["protocol"] == net::k_protocol_version);
  CHECK(health["active"] == primary.url());

  const net::HeaderList headers{{"Authorization", "Bearer tok"}, {"X-Swarm-Test", "yes"}, {"Cookie", "c=1"}};
  auto answer = client.request("GET", "/api/v1/packages?state=needed&x=a%20b", {}, headers);
  REQUIRE(answer);
  CHECK(answer->status == 200);
  CHECK(answer->header("X-Swarm-Served-By") == "primary");
  CHECK(answer->header("Set-Cookie").empty());
  CHECK(answer->header("Content-Type") == "application/json");
  auto echoed = json_of(answer);
  CHECK(echoed["orch_id"] == "primary");
  CHECK(echoed["method"] == "GET");
  CHECK(echoed["target"] == "/api/v1/packages?state=needed&x=a%20b");
  CHECK(echoed["authorization"] == "Bearer tok");
  CHECK(echoed["swarm_header"] == "yes");
  CHECK(echoed["cookie"] == "");

  auto posted = client.request("POST", "/api/v1/control/pause?status=409", R"({"a": 1})",
                               {{"Content-Type", "application/json"}, {"Authorization", "Bearer tok"}}, raw_answers());
  REQUIRE(posted);
  CHECK(posted->status == 409);
  auto posted_json = json_of(posted);
  CHECK(posted_json["method"] == "POST");
  CHECK(posted_json["body"] == R"({"a": 1})");

  auto head = client.request("HEAD", "/api/v1/status");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());

  auto deleted = json_of(client.request("DELETE", "/api/v1/thing", {}, {{"Authorization", "Bearer tok"}}));
  CHECK(deleted["method"] == "DELETE");

  auto status = json_of(client.request("GET", "/status"));
  CHECK(status["active"] == primary.url());
  REQUIRE(status["orchestrators"].size() == 2);
  CHECK(status["orchestrators"][0]["url"] == standby.url());
  CHECK(status["orchestrators"][0]["healthy"] == true);
  CHECK(status["orchestrators"][1]["orch_id"] == "primary");
  CHECK(status["orchestrators"][1]["priority"] == 100);

  auto binhost = json_of(client.request("GET", "/binhost"));
  CHECK(binhost["url"] == "http://binhost.example/primary/");
  CHECK(binhost["orchestrator"] == primary.url());
  CHECK(binhost["profile"] == "default");
  // Another profile's production lies under /p/NAME/ of the same host.
  auto desktop = json_of(client.request("GET", "/binhost?profile=desktop"));
  CHECK(desktop["url"] == "http://binhost.example/p/desktop/primary/");
  CHECK(desktop["profile"] == "desktop");
  net::CallOptions returning;
  returning.on_http_error = net::OnHttpError::return_response;
  auto bad = client.request("GET", "/binhost?profile=..%2Fx", {}, {}, returning);
  REQUIRE(bad);
  CHECK(bad->status == 400);

  // Sent raw (curl would normalise the dots away before sending).
  httplib::Client raw_client("127.0.0.1", gateway.port());
  auto escape = raw_client.Get("/api/../healthz");
  REQUIRE(escape);
  CHECK(escape->status == 400);
  CHECK(standby.calls() == 0);
  gateway.stop();
}

TEST_CASE("gateway: uploads bigger than the spool threshold are streamed through intact")
{
  FakeOrch orch("only");
  Gateway gateway(options_for({{orch.url(), 0}}));
  REQUIRE(gateway.start());
  const auto client = client_for(gateway, "tok");

  fs::TempDir dir("gateway-test");
  const auto file = dir / "big.gpkg.tar";
  std::string content;
  content.reserve(3u << 20);
  uint64_t expected_checksum = 0;
  for (size_t i = 0; i < (3u << 20) + 17; ++i) {
    const auto c = static_cast<char>((i * 7 + i / 1000) & 0xff);
    content.push_back(c);
    expected_checksum = expected_checksum * 31 + static_cast<unsigned char>(c);
  }
  REQUIRE(fs::write_file_atomic(file, content));

  auto answer = client.put_file("/api/v1/leases/7/artifact", file, {{"X-Swarm-Sha256", "feed"}});
  REQUIRE(answer);
  CHECK(answer->status == 201);
  auto body = json_of(answer);
  CHECK(body["size"] == content.size());
  CHECK(body["checksum"] == expected_checksum);
  CHECK(body["sha"] == "feed");
  CHECK(body["length"] == std::to_string(content.size()));

  // A small one stays in memory on the way.
  REQUIRE(fs::write_file_atomic(file, "tiny"));
  auto small = json_of(client.put_file("/api/v1/leases/8/artifact", file));
  CHECK(small["size"] == 4);
  gateway.stop();
}

TEST_CASE("gateway: an unreachable orchestrator is marked down at once; GET retries, POST gets 503")
{
  FakeOrch primary("primary");
  FakeOrch standby("standby");
  Gateway gateway(options_for({{primary.url(), 100}, {standby.url(), 50}}));
  REQUIRE(gateway.start());
  const auto client = client_for(gateway);
  CHECK(json_of(client.request("GET", "/api/v1/status"))["orch_id"] == "primary");

  primary.kill();
  // No health check runs in between (interval 60 s): the failed call itself fails over.
  auto retried = json_of(client.request("GET", "/api/v1/status"));
  CHECK(retried["orch_id"] == "standby");
  auto status = json_of(client.request("GET", "/status"));
  CHECK(status["active"] == standby.url());
  CHECK(status["orchestrators"][0]["healthy"] == false);
  CHECK(status["orchestrators"][0]["last_error"] != "");

  standby.kill();
  const auto raw = raw_answers();
  auto post = client.request("POST", "/api/v1/claim?wait=1", "{}",
                             {{"Content-Type", "application/json"}, {"Authorization", "Bearer tok"}}, raw);
  REQUIRE(post);
  CHECK(post->status == 503);
  CHECK(json_of(post)["kind"] == "unavailable");

  auto none = client.request("GET", "/api/v1/status", {}, {}, raw);
  REQUIRE(none);
  CHECK(none->status == 503);
  CHECK(json_of(none)["error"] == "no healthy orchestrator");
  auto binhost = client.request("GET", "/binhost", {}, {}, raw);
  REQUIRE(binhost);
  CHECK(binhost->status == 503);
  CHECK(json_of(client.request("GET", "/healthz"))["active"].is_null());
  gateway.stop();
}

TEST_CASE("gateway: no byte of a body is read before the caller is authenticated")
{
  FakeOrch orch("only");
  Gateway gateway(options_for({{orch.url(), 0}}));
  REQUIRE(gateway.start());
  const auto anonymous = client_for(gateway);
  const auto raw = raw_answers();

  // No credential: 401 from the gateway itself, nothing reaches the orchestrator.
  auto refused = anonymous.request("POST", "/api/v1/plan", R"({"plan": {}})", {}, raw);
  REQUIRE(refused);
  CHECK(refused->status == 401);
  CHECK(refused->header("WWW-Authenticate") == "Basic realm=\"swarm\"");
  CHECK(json_of(refused)["kind"] == "unauthorized");
  CHECK(orch.calls() == 0);
  CHECK(orch.whoami_calls() == 0);

  // A credential the orchestrator refuses: its 401 is passed back, the call never forwarded.
  auto bad = client_for(gateway, "bad").request("POST", "/api/v1/plan", R"({"plan": {}})", {}, raw);
  REQUIRE(bad);
  CHECK(bad->status == 401);
  CHECK(json_of(bad)["error"] == "unknown token");
  CHECK(orch.calls() == 0);
  CHECK(orch.whoami_calls() == 1);

  // An accepted one is checked once, then trusted for a while.
  const auto good = client_for(gateway, "tok");
  for (int i = 0; i < 3; ++i) {
    auto posted = good.request("POST", "/api/v1/plan", R"({"plan": {}})", {}, raw);
    REQUIRE(posted);
    CHECK(posted->status == 200);
  }
  CHECK(orch.calls() == 3);
  CHECK(orch.whoami_calls() == 2);

  // A GET has no body to protect and is passed on as before.
  CHECK(anonymous.request("GET", "/api/v1/status", {}, {}, raw)->status == 200);

  // A claim past the long-poll cap is passed on without its wait.
  CHECK(without_wait("/api/v1/claim?wait=25&x=1") == "/api/v1/claim?wait=0&x=1");
  CHECK(without_wait("/api/v1/claim") == "/api/v1/claim");
  gateway.stop();
}

TEST_CASE("gateway: serves the active orchestrator's production binhost files: whole, ranges, conditionals, HEAD")
{
  fs::TempDir dir("gateway-binhost");
  std::string content;
  for (size_t i = 0; i < (3u << 20) + 5; ++i) {
    content.push_back(static_cast<char>((i * 13 + i / 4096) & 0xff));
  }
  REQUIRE(fs::make_dirs(dir / "cat" / "pkg"));
  REQUIRE(fs::write_file_atomic(dir / "cat" / "pkg" / "pkg-1-1.gpkg.tar", content));
  REQUIRE(fs::write_file_atomic(dir / "Packages", "PACKAGES: 1\n"));
  net::HttpServer orch;
  orch.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    net::json_response(response, 200,
                       {{"status", "ok"},
                        {"role", "orch"},
                        {"protocol", net::k_protocol_version},
                        {"orch_id", "o"},
                        {"production_url", "http://orch.example:7070/production"}});
  });
  net::mount_files(orch, "/production", dir.path());
  net::mount_files(orch, "/p/desktop/production", dir.path());
  REQUIRE(orch.bind("127.0.0.1", 0));
  REQUIRE(orch.listen_in_thread());
  Gateway gateway(options_for({{fmt::format("http://127.0.0.1:{}", orch.port()), 0}}));
  REQUIRE(gateway.start());
  const auto client = client_for(gateway);

  // Without TLS the gateway hands out the orchestrator's URL, as before.
  auto binhost = json_of(client.request("GET", "/binhost"));
  CHECK(binhost["url"] == "http://orch.example:7070/production");
  CHECK(binhost["through_gateway"] == false);

  auto whole = client.request("GET", "/production/cat/pkg/pkg-1-1.gpkg.tar");
  REQUIRE(whole);
  CHECK(whole->status == 200);
  CHECK(whole->body.size() == content.size());
  CHECK(whole->body == content);
  const auto last_modified = whole->header("Last-Modified");
  CHECK_FALSE(last_modified.empty());

  auto index = client.request("GET", "/p/desktop/production/Packages");
  REQUIRE(index);
  CHECK(index->status == 200);
  CHECK(index->body == "PACKAGES: 1\n");

  auto range = client.request("GET", "/production/cat/pkg/pkg-1-1.gpkg.tar", {}, {{"Range", "bytes=10-19"}});
  REQUIRE(range);
  CHECK(range->status == 206);
  CHECK(range->body == content.substr(10, 10));
  CHECK(range->header("Content-Range") == fmt::format("bytes 10-19/{}", content.size()));

  auto unchanged =
    client.request("GET", "/production/Packages", {}, {{"If-Modified-Since", last_modified}}, raw_answers());
  REQUIRE(unchanged);
  CHECK(unchanged->status == 304);
  CHECK(unchanged->body.empty());

  auto head = client.request("HEAD", "/production/cat/pkg/pkg-1-1.gpkg.tar");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->header("Content-Length") == std::to_string(content.size()));

  auto missing = client.request("GET", "/production/cat/none.gpkg.tar", {}, {}, raw_answers());
  REQUIRE(missing);
  CHECK(missing->status == 404);
  httplib::Client raw_client("127.0.0.1", gateway.port());
  auto escape = raw_client.Get("/production/../healthz");
  REQUIRE(escape);
  CHECK(escape->status == 400);
  gateway.stop();
  orch.stop();
}

TEST_CASE("gateway: the authority of the URL it hands out over TLS")
{
  CHECK(gateway_authority("gw.example:7443", "0.0.0.0", 7443) == "gw.example:7443");
  CHECK(gateway_authority("[::1]:7443", "0.0.0.0", 7443) == "[::1]:7443");
  CHECK(gateway_authority("", "127.0.0.1", 7443) == "127.0.0.1:7443");
  CHECK(gateway_authority("evil/path?x", "127.0.0.1", 7443) == "127.0.0.1:7443");
  CHECK(gateway_authority("a b", "::1", 7443) == "[::1]:7443");
}
