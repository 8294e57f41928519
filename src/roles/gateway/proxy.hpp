#pragma once
// The gateway's /api/* proxy: each call goes to the active orchestrator with the same method,
// path and query and the headers that matter; the answer's status, body and Content-Type come
// back. Large request bodies (artifact uploads, GBs) are spooled to a temporary file and
// streamed upstream, never held whole in memory; answers are JSON and are buffered. A call that
// cannot reach its orchestrator marks it down at once; an idempotent one is retried once on the
// next healthy orchestrator.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <httplib.h>

#include "core/error.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "roles/gateway/health_monitor.hpp"

namespace swarm::roles::gateway {

// Request bodies up to this size are kept in memory; bigger ones go to a spool file.
inline constexpr uint64_t k_spool_threshold = 1u << 20;
// Upstream time limit of a call without a `wait` parameter (releases can take a while).
inline constexpr std::chrono::milliseconds k_default_upstream_timeout{300'000};
// Added to a long-poll's `wait` for the orchestrator to answer after waiting.
inline constexpr std::chrono::milliseconds k_long_poll_margin{15'000};

// The request headers sent upstream: Authorization, Content-Type, Accept and X-Swarm-*.
// Content-Length is left to the client, which sets it from the very bytes it sends; hop-by-hop
// headers (Host, Connection, Transfer-Encoding, Expect …) belong to each connection.
net::HeaderList forwarded_request_headers(const httplib::Headers& headers);

// True for the answer headers passed back besides Content-Type: WWW-Authenticate (the Basic
// challenge Portage needs), Retry-After and X-Swarm-*.
bool is_forwarded_response_header(std::string_view name);

// Upstream time limit for a call whose query has `wait` = `wait_param` ("" when absent): a
// long-poll gets its wait plus k_long_poll_margin, anything else k_default_upstream_timeout.
std::chrono::milliseconds upstream_timeout(std::string_view wait_param);

// How long the gateway trusts a credential the orchestrator accepted (GET /api/v1/whoami).
inline constexpr std::chrono::seconds k_admitted_ttl{30};

// `target` with its `wait` query parameter set to 0 (a long-poll answered at once).
std::string without_wait(std::string_view target);

// GET and HEAD: safe to send again to another orchestrator.
bool is_idempotent(std::string_view method);

// The path and query to request upstream: the raw request target, which must be below /api/
// and hold no "." or ".." segment (`decoded_path` is the server's decoded path, checked too).
Result<std::string> upstream_target(std::string_view decoded_path, std::string_view raw_target);

// The upstream path of a binhost file the gateway serves (GET/HEAD of a production binhost:
// /production/… or /p/PROFILE/production/…): the raw request path without its query, which must
// hold no "." or ".." segment (`decoded_path`, the server's decoded path, is checked too).
Result<std::string> binhost_file_target(std::string_view decoded_path, std::string_view raw_target);

// The request headers a binhost file request sends upstream: Authorization (Portage's Basic
// credentials for a private binhost), the conditional and range headers (If-Modified-Since,
// If-Range, Range) and Accept.
net::HeaderList forwarded_file_request_headers(const httplib::Headers& headers);

// True for the answer headers of a binhost file passed back besides Content-Type: those of
// is_forwarded_response_header and Last-Modified, Content-Range, Accept-Ranges, ETag.
bool is_forwarded_file_response_header(std::string_view name);

class Proxy {
public:
  // `upstreams[i]` talks to orchestrator i of `monitor`; spool files go to `spool_dir`. At most
  // `max_long_polls` calls with a `wait` wait at once (0: any); the others are passed on with
  // wait=0, so that long-polls cannot take every server thread.
  Proxy(HealthMonitor& monitor, const std::vector<net::HttpClient>& upstreams, std::filesystem::path spool_dir,
        size_t max_long_polls = 0);

  // A call whose body, if any, is already in request.body (GET, HEAD, DELETE).
  void forward(const httplib::Request& request, httplib::Response& response) const;
  // A call with a streamed body (POST, PUT, PATCH).
  void forward_stream(const httplib::Request& request, httplib::Response& response, net::RequestBody& body) const;
  // GET or HEAD of a production binhost file from the active orchestrator (a client that reached
  // the gateway over HTTPS fetches its binhost through it). The body is spooled to an unlinked
  // file in the spool directory and streamed from there: a package may be gigabytes.
  void forward_file(const httplib::Request& request, httplib::Response& response) const;

private:
  struct Body;
  void send(const httplib::Request& request, httplib::Response& response, const Body& body) const;
  Result<Body> read_body(const httplib::Request& request, net::RequestBody& body) const;
  // Before a byte of a body is read: the caller's credential must be one the orchestrator
  // accepts (GET /api/v1/whoami, remembered for k_admitted_ttl). False when refused (answered).
  bool admit_body(const httplib::Request& request, httplib::Response& response) const;
  // A call to `active` failed with `error`: answers 502 when the orchestrator answered in a way
  // that cannot be passed on, or marks it down (and answers 503 on the last attempt). True when
  // another attempt may follow. `what` names the route kind in the log.
  bool upstream_failed(std::string_view what, const httplib::Request& request, httplib::Response& response,
                       const HealthMonitor::Active& active, const Error& error, bool last_attempt) const;

  HealthMonitor& m_monitor;
  const std::vector<net::HttpClient>& m_upstreams;
  std::filesystem::path m_spool_dir;
  size_t m_max_long_polls;
  mutable std::atomic<size_t> m_long_polls{0};
  mutable std::mutex m_mutex;
  // SHA-256 of an accepted Authorization header → until when it is trusted.
  mutable std::unordered_map<std::string, std::chrono::steady_clock::time_point> m_admitted;
};

} // namespace swarm::roles::gateway
