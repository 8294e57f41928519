#pragma once
// The HTTP(S) client of drones, the gateway and the CLI, over libcurl: bound to a base URL and
// an optional bearer token, JSON calls, streaming upload from a file and download to a file
// (never whole in memory), per-call timeouts for long-polls. Thread-safe: each thread makes its
// calls on its own curl handle, kept from call to call so that its connections are reused
// (keep-alive), so several threads may share one client. Tokens are never logged.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace swarm::net {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Response {
  int status = 0;
  std::string body;
  HeaderList headers; // as received, in order

  // First header with this name (case-insensitive), or "".
  std::string header(std::string_view name) const;
  bool ok() const { return status >= 200 && status < 300; }
  // The body as JSON (invalid when it is not).
  Result<nlohmann::json> json() const;
};

struct ClientOptions {
  // "http://127.0.0.1:8080" or "https://orch.example:8443/prefix"; paths are joined to it.
  std::string base_url;
  // Sent as "Authorization: Bearer TOKEN" to URLs below base_url only.
  std::string token;
  // Whole-call limit for ordinary calls; for file transfers, the longest stall tolerated.
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds connect_timeout{10'000};
  // CA bundle to verify an HTTPS server with (a self-signed orchestrator); empty: the system's.
  std::string ca_file;
};

// What a non-2xx answer becomes.
enum class OnHttpError {
  fail,            // an Error: message from the JSON {"error"} body, kind from the status
  return_response, // the Response, for callers that look at the status themselves
};

struct CallOptions {
  // Overrides ClientOptions::timeout for this call (a long-poll waits longer than a call).
  std::optional<std::chrono::milliseconds> timeout;
  OnHttpError on_http_error = OnHttpError::fail;
  // Bodies kept in memory are refused (too_large) beyond this.
  uint64_t max_response_bytes = 64u << 20;
};

// Called during transfers with bytes done and the total (0 while unknown).
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

class HttpClient {
public:
  explicit HttpClient(ClientOptions options);

  // GET/POST with JSON; the answer's body parsed as JSON (an empty body gives null).
  Result<nlohmann::json> get_json(std::string_view path, const CallOptions& call = {}) const;
  Result<nlohmann::json> post_json(std::string_view path, const nlohmann::json& body,
                                   const CallOptions& call = {}) const;

  // Any method with an in-memory body. Connection failures and timeouts are
  // ErrorKind::unavailable with curl's message.
  Result<Response> request(std::string_view method, std::string_view path, std::string_view body = {},
                           const HeaderList& headers = {}, const CallOptions& call = {}) const;

  // PUT of a file streamed from disk with its Content-Length. ClientOptions::timeout is the
  // longest stall allowed, not a limit on the whole upload (unless call.timeout is set).
  Result<Response> put_file(std::string_view path, const std::filesystem::path& file, const HeaderList& headers = {},
                            const ProgressCallback& progress = {}, const CallOptions& call = {}) const;

  // GET streamed into `destination` through a temporary file renamed into place on success
  // (nothing is left behind on failure). `url` is a path below base_url or an absolute URL.
  // The Response carries status and headers; its body stays empty.
  Result<Response> get_to_file(std::string_view url, const std::filesystem::path& destination,
                               const ProgressCallback& progress = {}, const CallOptions& call = {}) const;

  // GET streamed chunk by chunk to `sink` (a 2xx body only; an error answer is handled as in
  // request()). A sink error aborts the transfer and is returned. `headers` are sent as given.
  Result<Response> get_to_sink(std::string_view url, const std::function<Result<>(std::string_view)>& sink,
                               const CallOptions& call = {}, const HeaderList& headers = {}) const;

  const std::string& base_url() const { return m_options.base_url; }
  // base_url joined with `path`, or `path` itself when it is an absolute URL.
  std::string url_for(std::string_view path) const;

private:
  struct Transfer;
  Result<Response> perform(Transfer& transfer) const;

  ClientOptions m_options;
};

// The Error an answer stands for: the JSON body's "error" as message (else the status and the
// start of the body), the kind from the JSON "kind" or else from the status.
Error error_from_response(const Response& response, std::string_view method, std::string_view url);

} // namespace swarm::net
