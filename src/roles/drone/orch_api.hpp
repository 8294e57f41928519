#pragma once
// The drone's side of the wire protocol (docs/protocol.md, "Drones"; the messages are
// net/protocol.hpp's): the OrchApi seam through which it talks to the orchestrator (or a
// gateway), so the agent's retry and resume logic is tested with an in-memory fake, and how an
// answer is read.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

// The full header: Answer holds a body, and read_message is a template.
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/http_client.hpp"
#include "net/protocol.hpp"

namespace swarm::roles::drone {

// Reads a protocol message (net/protocol.hpp) from an answer body or a stored file. A body that
// is not that message is an invalid error, never an exception: a broken or foreign peer must not
// crash the drone.
template <class Message>
Result<Message> read_message(const nlohmann::json& body)
{
  try {
    return body.template get<Message>();
  } catch (const Fatal& fatal) {
    return fail(fatal.error);
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorKind::invalid, "{}", e.what());
  }
}

// The drone's former names of the protocol messages, for callers outside the drone (build-local
// in roles/operator_verbs.cpp); the drone itself uses the net:: names.
using Lease = net::Lease;
using RegisterRequest = net::RegisterRequest;
using Registration = net::Registration;
using HeartbeatRequest = net::HeartbeatRequest;
using ReportRequest = net::ReportRequest;
using ReportResult = net::BuildResult;
// read_message<net::Lease> and read_message<net::Registration>, under their former names.
Result<net::Lease> lease_from_json(const nlohmann::json& json);
Result<net::Registration> registration_from_json(const nlohmann::json& json);

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
  virtual Result<Answer> register_drone(const net::RegisterRequest& request) = 0;
  virtual Result<Answer> heartbeat(const net::HeartbeatRequest& request) = 0;
  // Long-poll: waits up to `wait` for a lease.
  virtual Result<Answer> claim(std::chrono::seconds wait) = 0;
  // Streams the file with its declared hashes.
  virtual Result<Answer> upload_artifact(const std::string& lease_id, const std::filesystem::path& file,
                                         const std::string& sha256, const std::string& xxh3_128) = 0;
  virtual Result<Answer> report(const std::string& lease_id, const net::ReportRequest& request) = 0;
  virtual Result<Answer> send_log(const std::string& lease_id, std::string_view chunk) = 0;
  virtual Result<Answer> return_lease(const std::string& lease_id) = 0;
  // GET /api/v1/profiles/{hash}: the build profile (portage/build_profile.hpp JSON).
  virtual Result<Answer> fetch_profile(const std::string& hash) = 0;
  // POST /api/v1/leases/{id}/refuse: this drone cannot build the lease as its profile asks.
  virtual Result<Answer> refuse_lease(const std::string& lease_id, const net::RefuseRequest& request) = 0;
};

// OrchApi over HTTP (net::HttpClient), authenticated with the drone token.
class HttpOrchApi final : public OrchApi {
public:
  // `base_url`: the gateway or orchestrator. The token is sent as a bearer token and never logged.
  // ca_file: PEM CA bundle for an https:// orchestrator or gateway ("": the system's).
  HttpOrchApi(std::string base_url, std::string token, std::string ca_file = "");

  Result<Answer> register_drone(const net::RegisterRequest& request) override;
  Result<Answer> heartbeat(const net::HeartbeatRequest& request) override;
  Result<Answer> claim(std::chrono::seconds wait) override;
  Result<Answer> upload_artifact(const std::string& lease_id, const std::filesystem::path& file,
                                 const std::string& sha256, const std::string& xxh3_128) override;
  Result<Answer> report(const std::string& lease_id, const net::ReportRequest& request) override;
  Result<Answer> send_log(const std::string& lease_id, std::string_view chunk) override;
  Result<Answer> return_lease(const std::string& lease_id) override;
  Result<Answer> fetch_profile(const std::string& hash) override;
  Result<Answer> refuse_lease(const std::string& lease_id, const net::RefuseRequest& request) override;

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
