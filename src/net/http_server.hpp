#pragma once
// The HTTP(S) server every daemon uses: a wrapper over cpp-httplib that sizes the thread pool
// (a long-poll holds a pool thread for its whole wait), sets timeouts at run time (the library's
// compile-time defaults are baked into its .so), never buffers a request body it was not asked
// to, turns every exception in a handler into a logged JSON 500, and answers errors as
// {"error": "…", "kind": "…"} with the status of their ErrorKind.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace swarm::net {

struct ServerOptions {
  // Requests served at once (worker threads): size it for the long-polls it must hold
  // (drones × slots) plus headroom. Connections waiting for a request hold no thread (plain
  // HTTP; with TLS, httplib's own pool holds every connection on a thread until it closes).
  int threads = 16;
  // The longest a single read or write may stall.
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  // Idle time before a kept-alive connection is closed (it holds no thread meanwhile).
  std::chrono::milliseconds keep_alive_timeout{30'000};
  size_t keep_alive_max_requests = 1000;
  // A request's header block must arrive within this of the connection opening (or, on a
  // kept-alive connection, of its first byte): else 408 and close.
  std::chrono::milliseconds header_timeout{10'000};
  // Bodies and answers must move at an average of min_transfer_rate bytes/s after
  // transfer_grace (elapsed ≤ grace + bytes / rate): a client trickling bytes is cut off.
  std::chrono::milliseconds transfer_grace{30'000};
  uint64_t min_transfer_rate = 64u << 10;
  // Open connections per client address (0: no budget) and in total; past either, 503.
  size_t max_connections_per_client = 256;
  size_t max_connections = 10'000;
  size_t max_header_bytes = 64u << 10; // larger header blocks: 431
  int listen_backlog = 1024;
  // Limit of the bodies of buffered routes (post/put/del); streaming routes name their own.
  uint64_t max_body_bytes = 16u << 20;
  // Both set: serve HTTPS with this certificate chain and private key (PEM files).
  std::string tls_cert_file;
  std::string tls_key_file;
};

// Consumes one chunk of a streamed body; an error stops the transfer.
using ChunkSink = std::function<Result<>(std::string_view chunk)>;

// The body of a request to a streaming route, read on demand and at most once. Enforces the
// route's byte limit: a body that declares or turns out to be longer is ErrorKind::too_large
// (answer it with error_response → 413).
class RequestBody {
public:
  RequestBody(const httplib::Request& request, const httplib::ContentReader& reader, uint64_t max_bytes);

  // Streams the body to `sink` chunk by chunk (never whole in memory); the byte count on
  // success. Fails with too_large past the limit, with the sink's error if the sink fails,
  // and with invalid if the client breaks off.
  Result<uint64_t> read(const ChunkSink& sink);
  // The whole body in memory (same limit).
  Result<std::string> read_all();
  // The body parsed as JSON (invalid when it is not).
  Result<nlohmann::json> read_json();

  // Content-Length, when the client sent one (not for chunked bodies).
  std::optional<uint64_t> declared_length() const { return m_declared; }
  // Whether the request has a body at all (a non-zero Content-Length, or chunked).
  bool has_body() const { return m_has_body; }
  uint64_t max_bytes() const { return m_max; }

  // For the server: reads and discards what the handler left unread (up to a small cap) so the
  // client receives the answer instead of a connection reset. False when the connection cannot
  // be reused.
  bool finish();

private:
  enum class State { unread, complete, refused, broken };
  const httplib::ContentReader& m_reader;
  uint64_t m_max;
  std::optional<uint64_t> m_declared;
  bool m_has_body = false;
  State m_state = State::unread;
};

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
using StreamHandler = std::function<void(const httplib::Request&, httplib::Response&, RequestBody&)>;
// Told of every routed request once answered: its method, the PATTERN of the route that served it
// (never the raw path, so metrics labelled with it stay bounded) and the status.
using RequestObserver = std::function<void(std::string_view method, std::string_view pattern, int status)>;

class HttpServer {
public:
  explicit HttpServer(ServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes: `pattern` is a regular expression matched against the whole decoded path
  // (captures in request.matches). Every handler runs inside a guard: an exception is logged
  // and answered with a JSON 500. HEAD requests are routed to the GET handlers.
  void get(const std::string& pattern, Handler handler);
  // The body is read into request.body first, refused with 413 past ServerOptions::max_body_bytes.
  void post(const std::string& pattern, Handler handler);
  void put(const std::string& pattern, Handler handler);
  void del(const std::string& pattern, Handler handler);
  // The handler reads the body itself through RequestBody, limited to `max_body_bytes`; a
  // client announcing a longer body with "Expect: 100-continue" gets 413 before it sends it.
  void post_stream(const std::string& pattern, uint64_t max_body_bytes, StreamHandler handler);
  void put_stream(const std::string& pattern, uint64_t max_body_bytes, StreamHandler handler);
  void del_stream(const std::string& pattern, uint64_t max_body_bytes, StreamHandler handler);

  // Sets the observer of answered requests (before serving starts; routes added before or after).
  void set_observer(RequestObserver observer) { *m_observer = std::move(observer); }

  // Binds and listens on host:port; port 0 lets the kernel choose. Returns the actual port.
  // Connections are queued from here on, and served once listening starts.
  Result<int> bind(const std::string& host, int port);
  // Serves on a background thread until stop().
  Result<> listen_in_thread();
  // Serves on the calling thread until stop() is called from another.
  Result<> run();
  // Stops accepting, lets requests in flight finish (their handlers must return: wake any
  // long-poll first) and joins the serving thread. Idempotent.
  void stop();

  int port() const { return m_port; }
  bool is_tls() const;
  // Connections waiting for a request and being served (plain HTTP only; zeros with TLS).
  struct Stats {
    size_t waiting = 0;
    size_t serving = 0;
    uint64_t refused = 0;
  };
  Stats stats() const;
  // The wrapped server, for what this wrapper does not cover.
  httplib::Server& native() { return *m_server; }

private:
  struct Route;
  void add_buffered(const std::string& method, const std::string& pattern, Handler handler);
  void add_stream(const std::string& method, const std::string& pattern, uint64_t max_body_bytes,
                  StreamHandler handler);
  void register_stream(const std::string& method, const std::string& pattern, uint64_t max_body_bytes,
                       StreamHandler handler);
  void install_fallbacks();
  int on_expect_continue(const httplib::Request& request, httplib::Response& response) const;

  ServerOptions m_options;
  std::unique_ptr<httplib::Server> m_server;
  std::vector<std::unique_ptr<Route>> m_routes;
  std::shared_ptr<RequestObserver> m_observer = std::make_shared<RequestObserver>();
  std::thread m_thread;
  std::mutex m_stop_mutex;
  std::atomic<bool> m_listen_done{false};
  std::atomic<bool> m_running_here{false};
  std::atomic<bool> m_stopping{false};
  int m_port = 0;
  std::shared_ptr<std::atomic<int>> m_listen_fd = std::make_shared<std::atomic<int>>(-1);
  bool m_bound = false;
  bool m_fallbacks_installed = false;
};

// Answers `status` with a JSON body.
void json_response(httplib::Response& response, int status, const nlohmann::json& body);

// Answers an Error: status from its kind (net/http_error.hpp) and body
// {"error": message, "kind": kind}. A 401 also carries a Basic challenge, without which
// Portage's fetchers never send the credentials of a binhost URL.
void error_response(httplib::Response& response, const Error& error);

// A request's credential: "Authorization: Bearer TOKEN", or HTTP Basic where the password is
// the token (Portage sends a URL's userinfo that way).
struct Credential {
  enum class Scheme { bearer, basic };
  Scheme scheme = Scheme::bearer;
  std::string user; // Basic only
  std::string token;
};
std::optional<Credential> credential(const httplib::Request& request);

// "ip:port" of the client (brackets around IPv6).
std::string peer_address(const httplib::Request& request);

// Parses a JSON text; ErrorKind::invalid with the parser's message when it is not JSON.
Result<nlohmann::json> parse_json(std::string_view text);

} // namespace swarm::net
