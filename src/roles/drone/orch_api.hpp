#pragma once
// The drone's side of the wire protocol (docs/protocol.md, "Drones"): the messages it sends and
// receives, and the OrchApi seam through which it talks to the orchestrator (or a gateway), so
// the agent's retry and resume logic is tested with an in-memory fake.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/http_client.hpp"

namespace swarm::roles::drone {

// A package handed to this drone (protocol LEASE).
struct Lease {
  std::string id;
  std::string cpv;
  std::string slot;
  std::string repo;
  std::vector<std::string> use;
  std::vector<std::string> deps; // in dependency order
  int64_t expires_at = 0;
  double expected_seconds = 0;
  std::string staging_url;
  std::string tree_timestamp;
};

// True for ids we may use as a directory name in the spool: 1–128 of [A-Za-z0-9._-], not "."
// or "..".
bool is_safe_lease_id(std::string_view id);

// Reads a LEASE object; the id must be safe and the cpv present. Missing optional fields get
// their defaults.
Result<Lease> lease_from_json(const nlohmann::json& json);
nlohmann::json lease_to_json(const Lease& lease);

struct RegisterRequest {
  std::string name;
  std::string version;
  int cores = 1;
  int slots = 1;
  uint64_t ram_bytes = 0;
  uint64_t disk_free_bytes = 0;
  std::string tree_timestamp;
};
nlohmann::json register_request_to_json(const RegisterRequest& request);

struct Registration {
  std::string drone;
  double heartbeat_interval = 10;
  double lease_ttl = 120;
  double claim_wait = 20;
  std::string staging_url;
  std::vector<Lease> leases; // still valid leases of this drone
};
Result<Registration> registration_from_json(const nlohmann::json& json);

struct HeartbeatRequest {
  double cpu_percent = 0;
  double mem_percent = 0;
  double load1 = 0;
  uint64_t disk_free_bytes = 0;
  std::string tree_timestamp;
  std::vector<std::string> leases;
};
nlohmann::json heartbeat_request_to_json(const HeartbeatRequest& request);

struct HeartbeatAnswer {
  std::string state; // online | grounded | offline
  std::string reason;
  std::vector<std::string> cancel;
};
Result<HeartbeatAnswer> heartbeat_answer_from_json(const nlohmann::json& json);

enum class ReportResult { success, failure };

struct ReportRequest {
  ReportResult result = ReportResult::failure;
  double duration_seconds = 0;
  std::string log_tail;
  std::string reason;
};
nlohmann::json report_request_to_json(const ReportRequest& request);

// An HTTP answer of any status: the caller decides what it means.
struct Answer {
  int status = 0;
  nlohmann::json body; // null when the body is empty or not JSON
  std::string message; // the body's "error", or a short description of the status

  bool ok() const { return status >= 200 && status < 300; }
};

// Every call returns the answer whatever its status; an Error only when no answer came
// (connection refused, timeout: ErrorKind::unavailable) or the request could not be made.
class OrchApi {
public:
  virtual ~OrchApi() = default;
  virtual Result<Answer> register_drone(const RegisterRequest& request) = 0;
  virtual Result<Answer> heartbeat(const HeartbeatRequest& request) = 0;
  // Long-poll: waits up to `wait` for a lease.
  virtual Result<Answer> claim(std::chrono::seconds wait) = 0;
  // Streams the file with its declared hashes.
  virtual Result<Answer> upload_artifact(const std::string& lease_id, const std::filesystem::path& file,
                                         const std::string& sha256, const std::string& xxh3_128) = 0;
  virtual Result<Answer> report(const std::string& lease_id, const ReportRequest& request) = 0;
  virtual Result<Answer> send_log(const std::string& lease_id, std::string_view chunk) = 0;
  virtual Result<Answer> return_lease(const std::string& lease_id) = 0;
};

// OrchApi over HTTP (net::HttpClient), authenticated with the drone token.
class HttpOrchApi final : public OrchApi {
public:
  // `base_url`: the gateway or orchestrator. The token is sent as a bearer token and never logged.
  HttpOrchApi(std::string base_url, std::string token);

  Result<Answer> register_drone(const RegisterRequest& request) override;
  Result<Answer> heartbeat(const HeartbeatRequest& request) override;
  Result<Answer> claim(std::chrono::seconds wait) override;
  Result<Answer> upload_artifact(const std::string& lease_id, const std::filesystem::path& file,
                                 const std::string& sha256, const std::string& xxh3_128) override;
  Result<Answer> report(const std::string& lease_id, const ReportRequest& request) override;
  Result<Answer> send_log(const std::string& lease_id, std::string_view chunk) override;
  Result<Answer> return_lease(const std::string& lease_id) override;

private:
  Result<Answer> post_json(const std::string& path, const nlohmann::json& body,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  net::HttpClient m_client;
};

// What a caller should do with the result of a call.
enum class Verdict {
  done,          // 2xx
  retry,         // no answer (unavailable), 5xx, 408, 429: try again later
  drone_unknown, // 401: this drone's token is no longer valid here
  rejected,      // any other 4xx, or a request that could not be made: give up
};
Verdict verdict_of(const Result<Answer>& result);

// "no answer: …" or "HTTP 422: …", for logs.
std::string describe(const Result<Answer>& result);

} // namespace swarm::roles::drone
