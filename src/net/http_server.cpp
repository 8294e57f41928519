#include "net/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <regex>
#include <stdexcept>

#include <sys/socket.h>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "net/http_connections.hpp"
#include "net/http_error.hpp"
#include "net/url.hpp"

namespace swarm::net {

namespace {

// What the server reads and throws away of a body a handler did not want (refused, failed
// auth …) so that the client receives the answer: closing a socket with unread data makes the
// kernel send a reset, which can destroy the answer before the client reads it. Bigger bodies
// are not drained; the connection is closed instead.
constexpr uint64_t k_drain_cap = 4u << 20;
// …and for at most this long: a client trickling the body of a refused request must not hold
// a worker.
constexpr std::chrono::milliseconds k_drain_time{500};
// Largest body accepted on a method without a body route (GET, HEAD, OPTIONS): httplib would
// read it into memory.
constexpr uint64_t k_bodyless_limit = 64u << 10;

std::string lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::string> base64_decode(std::string_view text)
{
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : text) {
    int value = -1;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=') {
      ++padding;
      continue;
    } else {
      return std::nullopt;
    }
    if (padding > 0) {
      return std::nullopt; // data after padding
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  if (padding > 2) {
    return std::nullopt;
  }
  return out;
}

std::string_view reason_for(int status)
{
  switch (status) {
  case 400:
    return "bad request";
  case 401:
    return "unauthorized";
  case 403:
    return "forbidden";
  case 404:
    return "not found";
  case 405:
    return "method not allowed";
  case 413:
    return "request too large";
  case 414:
    return "request URI too long";
  case 416:
    return "range not satisfiable";
  case 503:
    return "service unavailable";
  default:
    return status >= 500 ? "internal error" : "request failed";
  }
}

void internal_error_response(httplib::Response& response)
{
  response = httplib::Response();
  json_response(response, 500, {{"error", "internal error"}, {"kind", "internal"}});
}

// Runs a handler so that nothing it throws reaches httplib (which would drop the connection)
// or kills the process: the exception is logged and the client gets a JSON 500.
template <class Function>
void guarded(const httplib::Request& request, httplib::Response& response, Function&& function)
{
  try {
    function();
  } catch (const Fatal& fatal) {
    if (fatal.error.kind == ErrorKind::internal || fatal.error.kind == ErrorKind::io) {
      LOG_ERROR("{} {}: {}", request.method, request.path, fatal.error.message);
    } else {
      LOG_INFO("{} {} refused: {}", request.method, request.path, fatal.error.message);
    }
    response = httplib::Response();
    error_response(response, fatal.error);
  } catch (const std::exception& exception) {
    LOG_ERROR("{} {}: internal error: {}", request.method, request.path, exception.what());
    internal_error_response(response);
  } catch (...) {
    LOG_ERROR("{} {}: internal error: unknown exception", request.method, request.path);
    internal_error_response(response);
  }
}

void observe(const RequestObserver& observer, const httplib::Request& request, const std::string& pattern,
             const httplib::Response& response)
{
  if (observer) {
    // httplib answers 200 for a handler that set no status.
    observer(request.method, pattern, response.status > 0 ? response.status : 200);
  }
}

} // namespace

// ---------------------------------------------------------------------------------------------
// RequestBody

RequestBody::RequestBody(const httplib::Request& request, const httplib::ContentReader& reader, uint64_t max_bytes)
    : m_reader(reader), m_max(max_bytes)
{
  if (request.has_header("Content-Length")) {
    m_declared = strings::parse_uint(strings::trim(request.get_header_value("Content-Length")));
  }
  const bool chunked = lower(request.get_header_value("Transfer-Encoding")).find("chunked") != std::string::npos;
  // A request with neither Content-Length nor chunked encoding has no body (RFC 9112 6.3);
  // httplib would instead read until the client closes.
  m_has_body = chunked || (m_declared && *m_declared > 0);
  if (chunked) {
    m_declared.reset();
  }
}

Result<uint64_t> RequestBody::read(const ChunkSink& sink)
{
  if (m_state != State::unread) {
    return fail(ErrorKind::internal, "request body read twice");
  }
  if (!m_has_body) {
    m_state = State::complete;
    return 0;
  }
  if (m_declared && *m_declared > m_max) {
    m_state = State::refused;
    return fail(ErrorKind::too_large, "request body of {} bytes is larger than the limit of {} bytes", *m_declared,
                m_max);
  }
  uint64_t total = 0;
  uint64_t dropped = 0;
  std::optional<Error> error;
  const bool ok = m_reader([&](const char* data, size_t size) {
    if (error) {
      dropped += size;
      return dropped <= k_drain_cap;
    }
    if (total + size > m_max) {
      error = Error{ErrorKind::too_large, fmt::format("request body is larger than the limit of {} bytes", m_max)};
      dropped += size;
      return dropped <= k_drain_cap;
    }
    total += size;
    if (auto written = sink(std::string_view(data, size)); !written) {
      // The rest is drained like a refused body (up to the cap) so that the client gets the answer.
      error = written.error();
      return true;
    }
    return true;
  });
  if (error) {
    m_state = ok ? State::complete : State::broken;
    return fail(*error);
  }
  if (!ok) {
    m_state = State::broken;
    return fail(ErrorKind::invalid, "request body broken off after {} bytes", total);
  }
  m_state = State::complete;
  return total;
}

Result<std::string> RequestBody::read_all()
{
  std::string out;
  auto read_bytes = read([&](std::string_view chunk) -> Result<> {
    out.append(chunk);
    return {};
  });
  if (!read_bytes) {
    return fail(read_bytes.error());
  }
  return out;
}

Result<nlohmann::json> RequestBody::read_json()
{
  auto text = read_all();
  if (!text) {
    return fail(text.error());
  }
  return parse_json(*text);
}

bool RequestBody::finish()
{
  switch (m_state) {
  case State::complete:
    return true;
  case State::broken:
    return false;
  case State::unread:
  case State::refused:
    break;
  }
  if (!m_has_body) {
    m_state = State::complete;
    return true;
  }
  if (m_declared && *m_declared > k_drain_cap) {
    m_state = State::broken;
    return false;
  }
  detail::limit_current_reads(k_drain_time);
  uint64_t dropped = 0;
  const bool ok = m_reader([&](const char*, size_t size) {
    dropped += size;
    return dropped <= k_drain_cap;
  });
  m_state = ok ? State::complete : State::broken;
  return ok;
}

// ---------------------------------------------------------------------------------------------
// HttpServer

struct HttpServer::Route {
  std::string method;
  std::regex pattern;
  uint64_t max_body_bytes = 0;
};

HttpServer::HttpServer(ServerOptions options) : m_options(std::move(options))
{
  const auto threads = static_cast<size_t>(std::max(1, m_options.threads));
  if (!m_options.tls_cert_file.empty() || !m_options.tls_key_file.empty()) {
    m_server = std::make_unique<httplib::SSLServer>(m_options.tls_cert_file.c_str(), m_options.tls_key_file.c_str());
    m_server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  } else {
    detail::ConnectionLimits limits;
    limits.workers = threads;
    limits.header_timeout = m_options.header_timeout;
    limits.keep_alive_timeout = m_options.keep_alive_timeout;
    limits.read_timeout = m_options.read_timeout;
    limits.write_timeout = m_options.write_timeout;
    limits.transfer_grace = m_options.transfer_grace;
    limits.min_transfer_rate = m_options.min_transfer_rate;
    limits.max_header_bytes = m_options.max_header_bytes;
    limits.max_connections_per_client = m_options.max_connections_per_client;
    limits.max_connections = m_options.max_connections;
    limits.keep_alive_max_requests = std::max<size_t>(1, m_options.keep_alive_max_requests);
    m_server = std::make_unique<detail::GuardedServer>(limits);
  }
  const auto seconds_and_micros = [](std::chrono::milliseconds duration) {
    return std::pair<time_t, time_t>(static_cast<time_t>(duration.count() / 1000),
                                     static_cast<time_t>((duration.count() % 1000) * 1000));
  };
  const auto [read_s, read_us] = seconds_and_micros(m_options.read_timeout);
  const auto [write_s, write_us] = seconds_and_micros(m_options.write_timeout);
  m_server->set_read_timeout(read_s, read_us);
  m_server->set_write_timeout(write_s, write_us);
  // (Used by httplib's own loop, with TLS, where an idle connection holds a thread: short.)
  const auto tls_keep_alive = std::min(m_options.keep_alive_timeout, std::chrono::milliseconds{5'000});
  m_server->set_keep_alive_timeout(static_cast<time_t>(std::max<int64_t>(1, (tls_keep_alive.count() + 999) / 1000)));
  m_server->set_keep_alive_max_count(m_options.keep_alive_max_requests);
  // Small JSON answers must not wait for Nagle (+ delayed ACK: 40 ms per request).
  m_server->set_tcp_nodelay(true);
  // httplib's default sets SO_REUSEPORT, which would let a second daemon bind the same port
  // and silently take half the connections. SO_REUSEADDR alone allows a quick restart.
  // It is also called for the listening socket only: remember it, to raise its backlog.
  m_server->set_socket_options([listen_fd = m_listen_fd](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd->store(sock);
  });
  // A body on a method that has no body route would be read into memory by httplib.
  m_server->set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    if (request.method == "POST" || request.method == "PUT" || request.method == "PATCH" ||
        request.method == "DELETE") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const bool chunked = lower(request.get_header_value("Transfer-Encoding")).find("chunked") != std::string::npos;
    const auto declared = strings::parse_uint(strings::trim(request.get_header_value("Content-Length")));
    if (chunked || (request.has_header("Content-Length") && (!declared || *declared > k_bodyless_limit))) {
      error_response(response, Error{ErrorKind::too_large,
                                     fmt::format("a {} request carries no body of this size", request.method)});
      response.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  m_server->set_logger([](const httplib::Request& request, const httplib::Response& response) {
    // The path only: never headers (credentials) or the query.
    LOG_DEBUG("http {} {} {} -> {}", peer_address(request), request.method, request.path, response.status);
  });
}

HttpServer::~HttpServer()
{
  stop();
}

HttpServer::Stats HttpServer::stats() const
{
  if (auto* guarded_server = dynamic_cast<detail::GuardedServer*>(m_server.get())) {
    const auto stats = guarded_server->stats();
    return {stats.waiting, stats.serving, stats.refused};
  }
  return {};
}

bool HttpServer::is_tls() const
{
  return !m_options.tls_cert_file.empty() || !m_options.tls_key_file.empty();
}

void HttpServer::get(const std::string& pattern, Handler handler)
{
  add_buffered("GET", pattern, std::move(handler));
}

void HttpServer::post(const std::string& pattern, Handler handler)
{
  add_buffered("POST", pattern, std::move(handler));
}

void HttpServer::put(const std::string& pattern, Handler handler)
{
  add_buffered("PUT", pattern, std::move(handler));
}

void HttpServer::del(const std::string& pattern, Handler handler)
{
  add_buffered("DELETE", pattern, std::move(handler));
}

void HttpServer::post_stream(const std::string& pattern, uint64_t max_body_bytes, StreamHandler handler)
{
  add_stream("POST", pattern, max_body_bytes, std::move(handler));
}

void HttpServer::put_stream(const std::string& pattern, uint64_t max_body_bytes, StreamHandler handler)
{
  add_stream("PUT", pattern, max_body_bytes, std::move(handler));
}

void HttpServer::del_stream(const std::string& pattern, uint64_t max_body_bytes, StreamHandler handler)
{
  add_stream("DELETE", pattern, max_body_bytes, std::move(handler));
}

void HttpServer::add_buffered(const std::string& method, const std::string& pattern, Handler handler)
{
  if (method == "GET") {
    m_server->Get(pattern, [handler = std::move(handler), observer = m_observer,
                            pattern](const httplib::Request& request, httplib::Response& response) {
      // httplib would cut any answer by the Range it parsed; file serving answers
      // ranges itself (from the header) and other answers ignore them.
      const_cast<httplib::Request&>(request).ranges.clear();
      guarded(request, response, [&] { handler(request, response); });
      observe(*observer, request, pattern, response);
    });
    return;
  }
  // httplib's buffering form reads a body of any size into memory (its only limit is
  // server-wide, and uploads need a large one), so the body is read here with this server's
  // JSON limit and placed where handlers expect it.
  add_stream(
    method, pattern, m_options.max_body_bytes,
    [handler = std::move(handler)](const httplib::Request& request, httplib::Response& response, RequestBody& body) {
      auto text = body.read_all();
      if (!text) {
        error_response(response, text.error());
        return;
      }
      // httplib passes `const Request&` but the object is its own mutable local.
      const_cast<httplib::Request&>(request).body = std::move(*text);
      handler(request, response);
    });
}

void HttpServer::add_stream(const std::string& method, const std::string& pattern, uint64_t max_body_bytes,
                            StreamHandler handler)
{
  auto route = std::make_unique<Route>();
  route->method = method;
  route->pattern = std::regex(pattern);
  route->max_body_bytes = max_body_bytes;
  m_routes.push_back(std::move(route));
  register_stream(method, pattern, max_body_bytes, std::move(handler));
}

void HttpServer::register_stream(const std::string& method, const std::string& pattern, uint64_t max_body_bytes,
                                 StreamHandler handler)
{
  auto wrapped = [handler = std::move(handler), max_body_bytes, observer = m_observer, pattern](
                   const httplib::Request& request, httplib::Response& response, const httplib::ContentReader& reader) {
    RequestBody body(request, reader, max_body_bytes);
    guarded(request, response, [&] { handler(request, response, body); });
    observe(*observer, request, pattern, response);
    if (!body.finish()) {
      response.set_header("Connection", "close");
    }
  };
  if (method == "POST") {
    m_server->Post(pattern, std::move(wrapped));
  } else if (method == "PUT") {
    m_server->Put(pattern, std::move(wrapped));
  } else if (method == "PATCH") {
    m_server->Patch(pattern, std::move(wrapped));
  } else {
    m_server->Delete(pattern, std::move(wrapped));
  }
}

int HttpServer::on_expect_continue(const httplib::Request& request, httplib::Response& response) const
{
  const auto declared = strings::parse_uint(strings::trim(request.get_header_value("Content-Length")));
  if (!declared) {
    return 100;
  }
  for (const auto& route : m_routes) {
    if (route->method == request.method && std::regex_match(request.path, route->pattern)) {
      if (*declared > route->max_body_bytes) {
        error_response(response, Error{ErrorKind::too_large,
                                       fmt::format("request body of {} bytes is larger than the limit of {} bytes",
                                                   *declared, route->max_body_bytes)});
        // httplib writes this early answer without computing its length; without one the
        // client would wait for the connection to close.
        response.set_header("Content-Length", std::to_string(response.body.size()));
        response.set_header("Connection", "close");
        return response.status;
      }
      return 100;
    }
  }
  return 100;
}

void HttpServer::install_fallbacks()
{
  if (m_fallbacks_installed) {
    return;
  }
  m_fallbacks_installed = true;
  // Unrouted bodies: without these catch-alls (registered last, so every real route matches
  // first) httplib would read the body of an unknown POST into memory before answering 404.
  const auto not_found = [](const httplib::Request& request, httplib::Response& response, RequestBody&) {
    error_response(response,
                   Error{ErrorKind::not_found, fmt::format("no such endpoint: {} {}", request.method, request.path)});
  };
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    register_stream(method, ".*", 0, not_found);
  }

  uint64_t largest = m_options.max_body_bytes;
  for (const auto& route : m_routes) {
    largest = std::max(largest, route->max_body_bytes);
  }
  m_server->set_payload_max_length(static_cast<size_t>(largest));
  m_server->set_expect_100_continue_handler([this](const httplib::Request& request, httplib::Response& response) {
    return on_expect_continue(request, response);
  });
  // httplib's own errors (404 for an unknown GET, 400 for a malformed request …) come with an
  // empty body: give them the JSON shape every client expects. Called for every status >= 400,
  // so leave the answers of handlers alone.
  m_server->set_error_handler(
    httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& response) {
      if (!response.body.empty() || response.content_provider_) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      json_response(response, response.status,
                    {{"error", reason_for(response.status)}, {"kind", kind_name(kind_for_status(response.status))}});
      return httplib::Server::HandlerResponse::Handled;
    }));
  m_server->set_exception_handler([](const httplib::Request& request, httplib::Response& response, std::exception_ptr) {
    LOG_ERROR("{} {}: internal error outside a handler", request.method, request.path);
    internal_error_response(response);
  });
}

Result<int> HttpServer::bind(const std::string& host, int port)
{
  if (m_bound) {
    return fail(ErrorKind::internal, "server already bound to port {}", m_port);
  }
  if (!m_server->is_valid()) {
    return fail(ErrorKind::invalid, "cannot load TLS certificate {} or key {}", m_options.tls_cert_file,
                m_options.tls_key_file);
  }
  errno = 0;
  if (port == 0) {
    const int actual = m_server->bind_to_any_port(host);
    if (actual <= 0) {
      return fail(ErrorKind::io, "cannot listen on {}: {}", url::format_host_port(host, 0), fs::errno_text(errno));
    }
    m_port = actual;
  } else {
    if (!m_server->bind_to_port(host, port)) {
      return fail(ErrorKind::io, "cannot listen on {}: {}", url::format_host_port(host, port),
                  errno != 0 ? fs::errno_text(errno) : "address unavailable");
    }
    m_port = port;
  }
  if (const int fd = m_listen_fd->load(); !detail::set_listen_backlog(fd, std::max(1, m_options.listen_backlog))) {
    LOG_WARN("cannot raise the listen backlog of port {} to {}: {}", m_port, m_options.listen_backlog,
             fs::errno_text(errno));
  }
  m_bound = true;
  return m_port;
}

Result<> HttpServer::listen_in_thread()
{
  if (!m_bound) {
    return fail(ErrorKind::internal, "listen before bind");
  }
  if (m_thread.joinable()) {
    return fail(ErrorKind::internal, "server already listening");
  }
  install_fallbacks();
  m_listen_done = false;
  m_thread = std::thread([this] {
    try {
      if (!m_server->listen_after_bind()) {
        LOG_ERROR("http server on port {} stopped with an error", m_port);
      }
    } catch (const std::exception& exception) {
      LOG_ERROR("http server on port {}: {}", m_port, exception.what());
    } catch (...) {
      LOG_ERROR("http server on port {}: unknown exception", m_port);
    }
    m_listen_done = true;
  });
  return {};
}

Result<> HttpServer::run()
{
  if (!m_bound) {
    return fail(ErrorKind::internal, "listen before bind");
  }
  install_fallbacks();
  m_listen_done = false;
  m_running_here = true;
  const bool ok = m_server->listen_after_bind();
  m_listen_done = true;
  if (!ok && !m_stopping) {
    return fail(ErrorKind::io, "http server on port {} stopped with an error", m_port);
  }
  return {};
}

void HttpServer::stop()
{
  std::lock_guard lock(m_stop_mutex);
  m_stopping = true;
  if (!m_bound) {
    return;
  }
  if (!m_thread.joinable() && !m_running_here) {
    // Bound but never served: httplib only closes its socket from a running loop.
    if (!listen_in_thread()) {
      return;
    }
  }
  // httplib's stop() does nothing until its loop has started (it does so at once); asking
  // earlier would leave the loop running forever.
  while (!m_server->is_running() && !m_listen_done) {
    std::this_thread::yield();
  }
  m_server->stop();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  m_bound = false;
}

// ---------------------------------------------------------------------------------------------
// Helpers

void json_response(httplib::Response& response, int status, const nlohmann::json& body)
{
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void error_response(httplib::Response& response, const Error& error)
{
  json_response(response, status_for(error.kind), {{"error", error.message}, {"kind", kind_name(error.kind)}});
  if (error.kind == ErrorKind::unauthorized) {
    // Python's urllib (Portage's index fetcher) and wget (its FETCHCOMMAND) send the userinfo
    // of a URL only in answer to a challenge.
    response.set_header("WWW-Authenticate", "Basic realm=\"swarm\"");
  }
}

std::optional<Credential> credential(const httplib::Request& request)
{
  const std::string header = request.get_header_value("Authorization");
  const std::string_view value = strings::trim(header);
  const size_t space = value.find(' ');
  if (space == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string scheme = lower(value.substr(0, space));
  const std::string_view rest = strings::trim(value.substr(space + 1));
  if (rest.empty()) {
    return std::nullopt;
  }
  if (scheme == "bearer") {
    return Credential{Credential::Scheme::bearer, "", std::string(rest)};
  }
  if (scheme == "basic") {
    auto decoded = base64_decode(rest);
    if (!decoded) {
      return std::nullopt;
    }
    const size_t colon = decoded->find(':');
    if (colon == std::string::npos || colon + 1 == decoded->size()) {
      return std::nullopt;
    }
    return Credential{Credential::Scheme::basic, decoded->substr(0, colon), decoded->substr(colon + 1)};
  }
  return std::nullopt;
}

std::string peer_address(const httplib::Request& request)
{
  return url::format_host_port(request.remote_addr, request.remote_port);
}

Result<nlohmann::json> parse_json(std::string_view text)
{
  // Nesting deeper than any message of the protocol is refused while parsing: a body of a
  // million '[' must not become a million nested values.
  constexpr int k_max_depth = 64;
  bool too_deep = false;
  try {
    auto parsed = nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > k_max_depth) {
        too_deep = true;
        throw std::length_error("too deep");
      }
      return true;
    });
    return parsed;
  } catch (const nlohmann::json::exception& exception) {
    return fail(ErrorKind::invalid, "body is not valid JSON: {}", exception.what());
  } catch (const std::length_error&) {
    if (too_deep) {
      return fail(ErrorKind::invalid, "body is not acceptable JSON: nested deeper than {} levels", k_max_depth);
    }
    throw;
  }
}

} // namespace swarm::net
