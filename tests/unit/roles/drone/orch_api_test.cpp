#include <doctest/doctest.h>

#include <mutex>

#include "core/fs.hpp"
#include "net/http_server.hpp"
#include "net/protocol_version.hpp"
#include "roles/drone/orch_api.hpp"

using namespace swarm;
using namespace swarm::roles::drone;
using nlohmann::json;

TEST_CASE("orch_api: a lease is read as the protocol's LEASE; unsafe ids and bad fields are errors")
{
  const auto text = R"({"id": "L-17", "cpv": "dev-libs/foo-1.2-r1", "slot": "0/1.2", "repo": "gentoo",
                        "use": ["a", "b"], "deps": ["sys-libs/zlib-1.3", "dev-libs/bar-2"],
                        "expires_at": 1700000123.5, "expected_seconds": 42.5,
                        "staging_url": "http://o:1/staging/x", "tree_timestamp": "Mon, 01 Jan 2024"})";
  auto lease = read_message<net::Lease>(json::parse(text));
  REQUIRE(lease.has_value());
  CHECK(lease->id == "L-17");
  CHECK(lease->cpv == "dev-libs/foo-1.2-r1");
  CHECK(lease->slot == "0/1.2");
  CHECK(lease->use == std::vector<std::string>{"a", "b"});
  CHECK(lease->deps == std::vector<std::string>{"sys-libs/zlib-1.3", "dev-libs/bar-2"});
  CHECK(lease->expires_at == 1700000123.5); // a double now, on both sides
  CHECK(lease->expected_seconds == 42.5);
  CHECK(lease->staging_url == "http://o:1/staging/x");
  const json wire = *lease;
  auto again = read_message<net::Lease>(wire);
  REQUIRE(again.has_value());
  CHECK(json(*again) == wire);
  // The former name, kept for build-local, reads the same.
  CHECK(json(lease_from_json(json::parse(text)).value()) == wire);

  const auto refusal = [](const json& body) {
    Result<net::Lease> read;
    CHECK_NOTHROW(read = read_message<net::Lease>(body));
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().kind == ErrorKind::invalid);
    return read.error().message;
  };
  CHECK(refusal(json::parse(R"({"id": "../etc", "cpv": "a/b-1"})")) == "lease id \"../etc\" is not acceptable");
  CHECK(refusal(json::parse(R"({"id": "x", "cpv": ""})")) == "field 'cpv' is required");
  CHECK(refusal(json::parse(R"({"id": "x", "cpv": "a/b-1", "deps": "a/c-1"})")) ==
        "field 'deps' must be a list of strings");
  CHECK(refusal(json::parse(R"({"id": 42, "cpv": "a/b-1"})")) == "field 'id' must be a string"); // ids are text
  CHECK(refusal(json::parse(R"({"id": "x", "cpv": "a/b-1", "expires_at": "soon"})")) ==
        "field 'expires_at' must be a number");
  CHECK(refusal(json::parse(R"([1])")) == "a lease must be a JSON object");
  CHECK(refusal(json()) == "a lease must be a JSON object");

  CHECK(net::is_safe_lease_id("abc-DEF_0.9"));
  CHECK_FALSE(net::is_safe_lease_id(""));
  CHECK_FALSE(net::is_safe_lease_id("."));
  CHECK_FALSE(net::is_safe_lease_id(".."));
  CHECK_FALSE(net::is_safe_lease_id("a/b"));
  CHECK_FALSE(net::is_safe_lease_id("a b"));
  CHECK_FALSE(net::is_safe_lease_id(std::string(129, 'a')));
}

TEST_CASE("orch_api: registration and heartbeat answers; malformed ones are errors, never exceptions")
{
  auto registration = read_message<net::Registration>(json::parse(
    R"({"drone": "d1", "heartbeat_interval": 3, "lease_ttl": 30, "claim_wait": 20,
        "staging_url": "http://o/staging/abc", "leases": [{"id": "L1", "cpv": "a/b-1"}]})"));
  REQUIRE(registration.has_value());
  CHECK(registration->heartbeat_interval == 3);
  CHECK(registration->staging_url == "http://o/staging/abc");
  REQUIRE(registration->leases.size() == 1);
  CHECK(registration->leases[0].id == "L1");
  CHECK(registration_from_json(json::parse(R"({"heartbeat_interval": 3})")).has_value());

  for (const auto* body :
       {R"({"heartbeat_interval": 0})", R"({"heartbeat_interval": "3"})", R"({"leases": [{"id": "L1"}]})",
        R"({"leases": {"id": "L1", "cpv": "a/b-1"}})", R"({"staging_url": 5})", R"("registered")", "null"}) {
    CAPTURE(body);
    Result<net::Registration> read;
    CHECK_NOTHROW(read = read_message<net::Registration>(json::parse(body)));
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().kind == ErrorKind::invalid);
  }

  auto reply = read_message<net::HeartbeatReply>(json::parse(R"({"state": "online", "cancel": ["L1", "L2"]})"));
  REQUIRE(reply.has_value());
  CHECK(reply->state == "online");
  CHECK(reply->cancel == std::vector<std::string>{"L1", "L2"});
  CHECK_FALSE(read_message<net::HeartbeatReply>(json::parse(R"({"cancel": ["L1", 7]})")).has_value());
  CHECK_FALSE(read_message<net::HeartbeatReply>(json::parse(R"({"state": ["online"]})")).has_value());
}

TEST_CASE("orch_api: a claim answer carries a reason code; an old orchestrator's reads as `other`")
{
  const auto claim = [](std::string_view text) { return read_message<net::ClaimReply>(json::parse(text)); };
  auto paused = claim(R"({"lease": null, "code": "paused", "reason": "the queue is paused"})");
  REQUIRE(paused.has_value());
  CHECK_FALSE(paused->lease.has_value());
  CHECK(paused->code == net::ClaimCode::paused);
  CHECK(paused->reason == "the queue is paused");
  CHECK(claim(R"({"lease": null, "code": "waiting_for_dependencies", "reason": "x"})")->code ==
        net::ClaimCode::waiting_for_dependencies);
  CHECK(claim(R"({"lease": null, "code": "tree_mismatch", "reason": "x"})")->code == net::ClaimCode::tree_mismatch);

  auto old = claim(R"({"lease": null, "reason": "no package ready"})");
  REQUIRE(old.has_value());
  CHECK(old->code == net::ClaimCode::other);
  CHECK(old->reason == "no package ready");
  CHECK(claim(R"({"lease": null, "code": "a_code_from_the_future", "reason": "x"})")->code == net::ClaimCode::other);

  auto leased = claim(R"({"lease": {"id": "L1", "cpv": "a/b-1", "expires_at": 1700000000}})");
  REQUIRE(leased.has_value());
  REQUIRE(leased->lease.has_value());
  CHECK(leased->lease->id == "L1");
  CHECK(leased->code == net::ClaimCode::none);

  for (const auto* body : {R"({"lease": {"id": "../x", "cpv": "a/b-1"}})", R"({"lease": "L1"})",
                           R"({"lease": null, "code": 3})", R"({"lease": null, "reason": ["busy"]})", R"([])"}) {
    CAPTURE(body);
    Result<net::ClaimReply> read;
    CHECK_NOTHROW(read = claim(body));
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().kind == ErrorKind::invalid);
  }
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
  // The JSON messages go out as the protocol defines them (net/protocol.hpp).
  server.post(R"(/api/v1/drones/(register|heartbeat))",
              [&](const httplib::Request& request, httplib::Response& response) {
                record(request, request.body);
                net::json_response(response, 200, json::object());
              });
  server.post(R"(/api/v1/leases/([^/]+)/report)", [&](const httplib::Request& request, httplib::Response& response) {
    record(request, request.body);
    net::json_response(response, 200, {{"accepted", true}});
  });
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
  net::RegisterRequest hello;
  hello.name = "d1";
  hello.version = "0.1.0";
  hello.cores = 8;
  hello.slots = 2;
  hello.ram_bytes = 1024;
  hello.disk_free_bytes = 2048;
  hello.tree_timestamp = "ts";
  REQUIRE(api.register_drone(hello).has_value());
  net::HeartbeatRequest beat;
  beat.cpu_percent = 12.5;
  beat.tree_timestamp = "";
  beat.leases = {"L1"};
  REQUIRE(api.heartbeat(beat).has_value());
  net::ReportRequest report{net::BuildResult::failure, 12.5, "tail \xff", "why"};
  REQUIRE(api.report("L1", report).has_value());
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

  REQUIRE(seen.lines.size() == 6);
  const auto body_of = [](const std::string& line) { return json::parse(line.substr(line.find(" {"))); };
  CHECK(seen.lines[0].starts_with("POST /api/v1/drones/register auth=Bearer tok123 {"));
  CHECK(body_of(seen.lines[0]) == json{{"name", "d1"},
                                       {"protocol", net::k_protocol_version},
                                       {"version", "0.1.0"},
                                       {"cores", 8},
                                       {"slots", 2},
                                       {"ram_bytes", 1024},
                                       {"disk_free_bytes", 2048},
                                       {"tree_timestamp", "ts"},
                                       {"profiles", json::array()},
                                       {"build_root", "isolated"},
                                       {"chost", ""}});
  CHECK(seen.lines[1].starts_with("POST /api/v1/drones/heartbeat auth=Bearer tok123 {"));
  // An unreadable tree timestamp still goes out, as "": the orchestrator then knows it is unknown.
  CHECK(body_of(seen.lines[1]) == json{{"cpu_percent", 12.5},
                                       {"mem_percent", 0.0},
                                       {"load1", 0.0},
                                       {"disk_free_bytes", 0},
                                       {"tree_timestamp", ""},
                                       {"leases", {"L1"}}});
  CHECK(seen.lines[2].starts_with("POST /api/v1/leases/L1/report auth=Bearer tok123 {"));
  // A log tail cut inside a UTF-8 sequence still goes out (the byte replaced).
  CHECK(body_of(seen.lines[2]) ==
        json{{"result", "failure"}, {"duration_seconds", 12.5}, {"log_tail", "tail \ufffd"}, {"reason", "why"}});
  CHECK(seen.lines[3] == "POST /api/v1/claim auth=Bearer tok123 wait=3");
  CHECK(seen.lines[4] == "PUT /api/v1/leases/L1/artifact auth=Bearer tok123 sha=aa11 xxh=bb22");
  CHECK(seen.lines[5] == "POST /api/v1/leases/L1/log auth=Bearer tok123 text/plain; charset=utf-8 line one\n");
  CHECK(seen.artifact == "artifact bytes");

  // Nobody listening: no answer, to be retried.
  HttpOrchApi down(fmt::format("http://127.0.0.1:{}", *port), "tok123");
  CHECK(verdict_of(down.claim(std::chrono::seconds{1})) == Verdict::retry);
}
