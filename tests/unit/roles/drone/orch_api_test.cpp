#include <doctest/doctest.h>

#include <mutex>

#include "core/fs.hpp"
#include "net/http_server.hpp"
#include "net/protocol_version.hpp"
#include "roles/drone/orch_api.hpp"

using namespace swarm;
using namespace swarm::roles::drone;
using nlohmann::json;

TEST_CASE("orch_api: lease JSON, with unsafe ids refused")
{
  const auto text = R"({"id": "L-17", "cpv": "dev-libs/foo-1.2-r1", "slot": "0/1.2", "repo": "gentoo",
                        "use": ["a", "b"], "deps": ["sys-libs/zlib-1.3", "dev-libs/bar-2"],
                        "expires_at": 1700000123, "expected_seconds": 42.5,
                        "staging_url": "http://o:1/staging/x", "tree_timestamp": "Mon, 01 Jan 2024"})";
  auto lease = lease_from_json(json::parse(text));
  REQUIRE(lease.has_value());
  CHECK(lease->id == "L-17");
  CHECK(lease->cpv == "dev-libs/foo-1.2-r1");
  CHECK(lease->slot == "0/1.2");
  CHECK(lease->use == std::vector<std::string>{"a", "b"});
  CHECK(lease->deps == std::vector<std::string>{"sys-libs/zlib-1.3", "dev-libs/bar-2"});
  CHECK(lease->expires_at == 1700000123);
  CHECK(lease->expected_seconds == 42.5);
  CHECK(lease->staging_url == "http://o:1/staging/x");
  auto again = lease_from_json(lease_to_json(*lease));
  REQUIRE(again.has_value());
  CHECK(lease_to_json(*again) == lease_to_json(*lease));

  CHECK(lease_from_json(json::parse(R"({"id": 42, "cpv": "a/b-1"})"))->id == "42");
  CHECK_FALSE(lease_from_json(json::parse(R"({"id": "../etc", "cpv": "a/b-1"})")).has_value());
  CHECK_FALSE(lease_from_json(json::parse(R"({"id": "x", "cpv": ""})")).has_value());
  CHECK_FALSE(lease_from_json(json::parse(R"({"id": "x", "cpv": "a/b-1", "deps": "a/c-1"})")).has_value());
  CHECK_FALSE(lease_from_json(json::parse(R"([1])")).has_value());

  CHECK(is_safe_lease_id("abc-DEF_0.9"));
  CHECK_FALSE(is_safe_lease_id(""));
  CHECK_FALSE(is_safe_lease_id("."));
  CHECK_FALSE(is_safe_lease_id(".."));
  CHECK_FALSE(is_safe_lease_id("a/b"));
  CHECK_FALSE(is_safe_lease_id("a b"));
  CHECK_FALSE(is_safe_lease_id(std::string(129, 'a')));
}

TEST_CASE("orch_api: register, heartbeat and report messages")
{
  RegisterRequest request{"d1", "0.1.0", 8, 2, 1024, 2048, "ts"};
  const auto body = register_request_to_json(request);
  CHECK(body["protocol"] == net::k_protocol_version);
  CHECK(body["name"] == "d1");
  CHECK(body["cores"] == 8);
  CHECK(body["slots"] == 2);
  CHECK(body["ram_bytes"] == 1024);
  CHECK(body["disk_free_bytes"] == 2048);
  CHECK(body["tree_timestamp"] == "ts");

  auto registration = registration_from_json(json::parse(
    R"({"drone": "d1", "heartbeat_interval": 3, "lease_ttl": 30, "claim_wait": 20,
        "staging_url": "http://o/staging/abc", "leases": [{"id": "L1", "cpv": "a/b-1"}]})"));
  REQUIRE(registration.has_value());
  CHECK(registration->heartbeat_interval == 3);
  CHECK(registration->staging_url == "http://o/staging/abc");
  REQUIRE(registration->leases.size() == 1);
  CHECK(registration->leases[0].id == "L1");
  CHECK_FALSE(registration_from_json(json::parse(R"({"heartbeat_interval": 0})")).has_value());

  auto answer = heartbeat_answer_from_json(json::parse(R"({"state": "online", "cancel": ["L1", 7]})"));
  REQUIRE(answer.has_value());
  CHECK(answer->cancel == std::vector<std::string>{"L1", "7"});

  const auto report = report_request_to_json({ReportResult::failure, 12.5, "tail", "why"});
  CHECK(report == json{{"result", "failure"}, {"duration_seconds", 12.5}, {"log_tail", "tail"}, {"reason", "why"}});
  CHECK(report_request_to_json({ReportResult::success, 1, "", ""})["result"] == "success");
}

TEST_CASE("orch_api: what each answer means for a retry")
{
  const auto with_status = [](int status) { return Result<Answer>(Answer{status, {}, ""}); };
  CHECK(verdict_of(with_status(200)) == Verdict::done);
  CHECK(verdict_of(with_status(201)) == Verdict::done);
  CHECK(verdict_of(with_status(500)) == Verdict::retry);
  CHECK(verdict_of(with_status(502)) == Verdict::retry);
  CHECK(verdict_of(with_status(503)) == Verdict::retry);
  CHECK(verdict_of(with_status(429)) == Verdict::retry);
  CHECK(verdict_of(with_status(401)) == Verdict::drone_unknown);
  CHECK(verdict_of(with_status(403)) == Verdict::rejected);
  CHECK(verdict_of(with_status(404)) == Verdict::rejected);
  CHECK(verdict_of(with_status(409)) == Verdict::rejected);
  CHECK(verdict_of(with_status(422)) == Verdict::rejected);
  CHECK(verdict_of(Result<Answer>(fail(ErrorKind::unavailable, "connection refused"))) == Verdict::retry);
  CHECK(verdict_of(Result<Answer>(fail(ErrorKind::io, "cannot read"))) == Verdict::rejected);
  CHECK(describe(Result<Answer>(Answer{422, {}, "bad gpkg"})) == "HTTP 422: bad gpkg");
}

TEST_CASE("orch_api: HTTP calls carry the token, the hashes and the claim wait")
{
  struct Seen {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::string artifact;
  } seen;
  net::HttpServer server;
  const auto record = [&seen](const httplib::Request& request, std::string extra) {
    std::lock_guard lock(seen.mutex);
    seen.lines.push_back(
      fmt::format("{} {} auth={} {}", request.method, request.path, request.get_header_value("Authorization"), extra));
  };
  server.post(R"(/api/v1/claim)", [&](const httplib::Request& request, httplib::Response& response) {
    record(request, "wait=" + request.get_param_value("wait"));
    net::json_response(response, 200, {{"lease", nullptr}, {"reason", "no package ready"}});
  });
  server.put_stream(R"(/api/v1/leases/([^/]+)/artifact)", 1u << 20,
                    [&](const httplib::Request& request, httplib::Response& response, net::RequestBody& body) {
                      auto data = body.read_all();
                      record(request, fmt::format("sha={} xxh={}", request.get_header_value("X-Swarm-Sha256"),
                                                  request.get_header_value("X-Swarm-Xxh3-128")));
                      {
                        std::lock_guard lock(seen.mutex);
                        seen.artifact = data.value_or("");
                      }
                      net::json_response(response, 409, {{"error", "already received"}, {"kind", "conflict"}});
                    });
  server.post(R"(/api/v1/leases/([^/]+)/log)", [&](const httplib::Request& request, httplib::Response& response) {
    record(request, request.get_header_value("Content-Type") + " " + request.body);
    net::json_response(response, 200, json::object());
  });
  auto port = server.bind("127.0.0.1", 0);
  REQUIRE(port.has_value());
  REQUIRE(server.listen_in_thread().has_value());

  fs::TempDir dir("orch-api");
  REQUIRE(fs::write_file_atomic(dir / "a.gpkg.tar", "artifact bytes").has_value());
  HttpOrchApi api(fmt::format("http://127.0.0.1:{}", *port), "tok123");
  auto claim = api.claim(std::chrono::seconds{3});
  REQUIRE(claim.has_value());
  CHECK(claim->status == 200);
  CHECK(claim->body["reason"] == "no package ready");
  auto upload = api.upload_artifact("L1", dir / "a.gpkg.tar", "aa11", "bb22");
  REQUIRE(upload.has_value());
  CHECK(upload->status == 409);
  CHECK(upload->message == "already received");
  auto log = api.send_log("L1", "line one\n");
  REQUIRE(log.has_value());
  CHECK(log->ok());
  server.stop();

  REQUIRE(seen.lines.size() == 3);
  CHECK(seen.lines[0] == "POST /api/v1/claim auth=Bearer tok123 wait=3");
  CHECK(seen.lines[1] == "PUT /api/v1/leases/L1/artifact auth=Bearer tok123 sha=aa11 xxh=bb22");
  CHECK(seen.lines[2] == "POST /api/v1/leases/L1/log auth=Bearer tok123 text/plain; charset=utf-8 line one\n");
  CHECK(seen.artifact == "artifact bytes");

  // Nobody listening: no answer, to be retried.
  HttpOrchApi down(fmt::format("http://127.0.0.1:{}", *port), "tok123");
  CHECK(verdict_of(down.claim(std::chrono::seconds{1})) == Verdict::retry);
}
