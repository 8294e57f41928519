#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/protocol.hpp"
#include "net/protocol_version.hpp"

using namespace swarm;
using namespace swarm::net;
using nlohmann::json;

namespace {

// The message from_json refuses `body` with, or "" when it accepts it.
template <class T>
std::string refusal(const json& body)
{
  try {
    (void)body.get<T>();
    return "";
  } catch (const Fatal& fatal) {
    CHECK(fatal.error.kind == ErrorKind::invalid);
    return fatal.error.message;
  }
}

} // namespace

TEST_CASE("protocol: a lease goes through JSON unchanged, expires_at keeps its fraction")
{
  Lease lease;
  lease.id = "0123abcd";
  lease.cpv = "dev-libs/foo-1.2";
  lease.slot = "0/1";
  lease.repo = "gentoo";
  lease.use = {"a", "b"};
  lease.deps = {"dev-libs/bar-1"};
  lease.expires_at = 1'800'000'000.25;
  lease.expected_seconds = 12.5;
  lease.staging_url = "http://127.0.0.1:1/staging/x";
  lease.tree_timestamp = "Sat, 01 Mar 2026 00:45:01 +0000";
  const json wire = lease;
  const auto back = wire.get<Lease>();
  CHECK(back.id == lease.id);
  CHECK(back.cpv == lease.cpv);
  CHECK(back.slot == lease.slot);
  CHECK(back.use == lease.use);
  CHECK(back.deps == lease.deps);
  CHECK(back.expires_at == lease.expires_at);
  CHECK(back.expected_seconds == lease.expected_seconds);
  CHECK(back.staging_url == lease.staging_url);
  CHECK(back.tree_timestamp == lease.tree_timestamp);
}

TEST_CASE("protocol: a lease id must be usable as a file name and the cpv present")
{
  CHECK(refusal<Lease>(json{{"id", "../x"}, {"cpv", "a/b-1"}}).find("not acceptable") != std::string::npos);
  CHECK(refusal<Lease>(json{{"id", "abc"}}) == "field 'cpv' is required");
  CHECK(refusal<Lease>(json{{"id", "abc"}, {"cpv", "a/b-1"}, {"use", "x"}}) == "field 'use' must be a list of strings");
  CHECK(refusal<Lease>(json::array()) == "a lease must be a JSON object");
}

TEST_CASE("protocol: registration checks types and ranges and stamps the protocol version")
{
  RegisterRequest request;
  request.name = "d1";
  request.cores = 8;
  request.slots = 2;
  request.ram_bytes = 1ull << 34;
  const json wire = request;
  CHECK(wire["protocol"] == k_protocol_version);
  const auto back = wire.get<RegisterRequest>();
  CHECK(back.protocol == k_protocol_version);
  CHECK(back.slots == 2);
  CHECK(back.ram_bytes == 1ull << 34);

  CHECK(refusal<RegisterRequest>(json{{"ram_bytes", -1}}) == "field 'ram_bytes' must be a whole number, not negative");
  CHECK(refusal<RegisterRequest>(json{{"slots", 0}}) == "field 'slots' must be an integer from 1 to 256");
  CHECK(refusal<RegisterRequest>(json{{"slots", 2.5}}) == "field 'slots' must be an integer from 1 to 256");
  CHECK(refusal<RegisterRequest>(json{{"name", 5}}) == "field 'name' must be a string");
  CHECK(refusal<RegisterRequest>(json{{"cores", 18446744073709551615ull}}) ==
        "field 'cores' must be an integer from 0 to 65536");
}

TEST_CASE("protocol: a report's duration must be a real, bounded number")
{
  CHECK(refusal<ReportRequest>(json{{"result", "success"}, {"duration_seconds", 1e308}}) ==
        "field 'duration_seconds' must be a number from 0 to 2592000");
  CHECK(refusal<ReportRequest>(json{{"result", "success"}, {"duration_seconds", -1}}) != "");
  CHECK(refusal<ReportRequest>(json{{"result", "maybe"}}) == "field 'result' must be \"success\" or \"failure\"");
  const auto report = json{{"result", "failure"}, {"duration_seconds", 3}, {"reason", "x"}}.get<ReportRequest>();
  CHECK(report.result == BuildResult::failure);
  CHECK(report.duration_seconds == 3);
}

TEST_CASE("protocol: control bodies of the wrong type are refused, never widened")
{
  // A string where a list belongs used to unblock every blocked package.
  CHECK(refusal<UnblockRequest>(json{{"packages", "app-misc/p1-1"}}) == "field 'packages' must be a list of strings");
  CHECK(json::object().get<UnblockRequest>().packages.empty());
  CHECK(refusal<PlanRequest>(json{{"clear_staging", "yes"}}) == "field 'clear_staging' must be true or false");
  CHECK(refusal<PlanRequest>(json{{"mode", "merge"}}) == "field 'mode' must be \"replace\" or \"add\"");
  CHECK(refusal<EnrollRequest>(json{{"name", 5}}) == "field 'name' must be a string");
  CHECK(refusal<GroundRequest>(json{{"drone", 5}}) == "field 'drone' must be a string");
  CHECK(refusal<GroundRequest>(json::object()) == "field 'drone' is required");
  CHECK(refusal<FinalizeRequest>(json{{"threshold", 101}}) == "field 'threshold' must be an integer from 0 to 100");
  CHECK(refusal<RollbackRequest>(json{{"release", 7}}) == "field 'release' must be a string");
}

TEST_CASE("protocol: a claim without a lease carries a code and its text")
{
  ClaimReply reply;
  reply.code = ClaimCode::tree_mismatch;
  reply.reason = "tree A differs from the plan's B";
  const json wire = reply;
  CHECK(wire["lease"].is_null());
  CHECK(wire["code"] == "tree_mismatch");
  const auto back = wire.get<ClaimReply>();
  CHECK_FALSE(back.lease.has_value());
  CHECK(back.code == ClaimCode::tree_mismatch);
  CHECK(back.reason == reply.reason);
  CHECK(parse_claim_code("something_new") == ClaimCode::other);
  for (auto code : {ClaimCode::paused, ClaimCode::grounded, ClaimCode::probation, ClaimCode::slots_full,
                    ClaimCode::nothing_to_build, ClaimCode::waiting_for_dependencies, ClaimCode::left_for_other_drones,
                    ClaimCode::shutting_down, ClaimCode::state_unavailable}) {
    CHECK(parse_claim_code(to_string(code)) == code);
  }
}

TEST_CASE("protocol: heartbeat keeps 'tree unchanged' apart from 'tree empty'")
{
  HeartbeatRequest beat;
  beat.leases = {"l1"};
  json wire = beat;
  CHECK_FALSE(wire.contains("tree_timestamp"));
  CHECK_FALSE(wire.get<HeartbeatRequest>().tree_timestamp.has_value());
  beat.tree_timestamp = "";
  wire = beat;
  REQUIRE(wire.get<HeartbeatRequest>().tree_timestamp.has_value());
  CHECK(refusal<HeartbeatRequest>(json{{"leases", {1, 2}}}) == "field 'leases' must be a list of strings");
}

TEST_CASE("protocol: huge numbers, long texts and long lists are refused")
{
  CHECK(refusal<RegisterRequest>(json{{"ram_bytes", 18446744073709551615ull}}) ==
        "field 'ram_bytes' must be a whole number from 0 to 1152921504606846976");
  CHECK(refusal<RegisterRequest>(json{{"ram_bytes", 1e308}}) ==
        "field 'ram_bytes' must be a whole number, not negative");
  CHECK(refusal<RegisterRequest>(json{{"ram_bytes", "16G"}}) ==
        "field 'ram_bytes' must be a whole number, not negative");
  CHECK(refusal<HeartbeatRequest>(json{{"disk_free_bytes", 1ull << 61}}) != "");
  CHECK(refusal<HeartbeatRequest>(json{{"cpu_percent", 1e308}}) ==
        "field 'cpu_percent' must be a number from 0 to 1000");
  CHECK(refusal<HeartbeatRequest>(json{{"load1", "high"}}) == "field 'load1' must be a number");
  CHECK(refusal<RegisterRequest>(json{{"name", std::string(70'000, 'd')}}) ==
        "field 'name' is longer than 65536 bytes");
  CHECK(refusal<UnblockRequest>(json{{"packages", json::array({std::string(70'000, 'p')})}}) ==
        "field 'packages' has an entry longer than 65536 bytes");
  CHECK(refusal<UnblockRequest>(json{{"packages", json(std::vector<std::string>(100'001, "a/b-1"))}}) ==
        "field 'packages' has more than 100000 entries");
  // A log tail may be long (it is cut to its end later), within its own limit.
  const auto report = json{{"result", "failure"}, {"log_tail", std::string(1u << 20, 'x')}}.get<ReportRequest>();
  CHECK(report.log_tail.size() == 1u << 20);
}
