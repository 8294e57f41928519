#include "roles/gateway/proxy.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"

namespace swarm::roles::gateway {

namespace {

std::string lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool has_dot_segment(std::string_view path)
{
  for (const auto& segment : strings::split(path, '/')) {
    if (segment == "." || segment == "..") {
      return true;
    }
  }
  return false;
}

void unavailable(httplib::Response& response, std::string message)
{
  net::json_response(response, 503, {{"error", std::move(message)}, {"kind", "unavailable"}});
}

} // namespace

net::HeaderList forwarded_request_headers(const httplib::Headers& headers)
{
  net::HeaderList out;
  for (const auto& [name, value] : headers) {
    const auto key = lower(name);
    if (key == "authorization" || key == "content-type" || key == "accept" || key.starts_with("x-swarm-")) {
      out.emplace_back(name, value);
    }
  }
  return out;
}

bool is_forwarded_response_header(std::string_view name)
{
  const auto key = lower(name);
  // The dashboard's security headers pass too.
  return key == "www-authenticate" || key == "retry-after" || key.starts_with("x-swarm-") ||
         key == "content-security-policy" || key == "x-content-type-options" || key == "x-frame-options" ||
         key == "referrer-policy" || key == "cache-control";
}

std::chrono::milliseconds upstream_timeout(std::string_view wait_param)
{
  const auto wait = strings::parse_double(strings::trim(wait_param));
  if (!wait || !std::isfinite(*wait) || *wait < 0) {
    return k_default_upstream_timeout;
  }
  // The orchestrator caps the wait itself (orch.claim_wait); a silly value must not overflow here.
  const double capped = std::min(*wait, 86'400.0);
  return std::chrono::milliseconds(static_cast<int64_t>(capped * 1000)) + k_long_poll_margin;
}

std::string without_wait(std::string_view target)
{
  const size_t question = target.find('?');
  if (question == std::string_view::npos) {
    return std::string(target);
  }
  std::string out(target.substr(0, question + 1));
  bool first = true;
  for (const auto& parameter : strings::split(target.substr(question + 1), '&')) {
    if (!first) {
      out += '&';
    }
    first = false;
    out += std::string_view(parameter).starts_with("wait=") ? std::string_view("wait=0") : std::string_view(parameter);
  }
  return out;
}

bool is_idempotent(std::string_view method)
{
  return method == "GET" || method == "HEAD";
}

Result<std::string> upstream_target(std::string_view decoded_path, std::string_view raw_target)
{
  // Only origin-form targets ("/api/…?…", and the dashboard's "/" and "/dashboard/…"): an
  // absolute-form one would name another host.
  const auto raw_path = raw_target.substr(0, raw_target.find('?'));
  const auto dashboard = [](std::string_view path) { return path == "/" || path.starts_with("/dashboard/"); };
  const bool api = raw_target.starts_with("/api/") && decoded_path.starts_with("/api/");
  if (!api && !(dashboard(raw_path) && dashboard(decoded_path))) {
    return fail(ErrorKind::not_found, "no such endpoint: {}", decoded_path);
  }
  // Dot segments would let "/api/../staging/…" reach a path outside the API once normalised
  // upstream, carrying the caller's credentials there.
  if (has_dot_segment(decoded_path) || has_dot_segment(raw_path)) {
    return fail(ErrorKind::invalid, "path with '.' or '..' segments: {}", decoded_path);
  }
  return std::string(raw_target);
}

Result<std::string> binhost_file_target(std::string_view decoded_path, std::string_view raw_target)
{
  const auto raw_path = raw_target.substr(0, raw_target.find('?'));
  const auto binhost = [](std::string_view path) {
    if (path.starts_with("/production/")) {
      return true;
    }
    if (!path.starts_with("/p/")) {
      return false;
    }
    const auto slash = path.find('/', 3);
    return slash != std::string_view::npos && slash > 3 && path.substr(slash).starts_with("/production/");
  };
  if (!binhost(raw_path) || !binhost(decoded_path)) {
    return fail(ErrorKind::not_found, "no such endpoint: {}", decoded_path);
  }
  if (has_dot_segment(decoded_path) || has_dot_segment(raw_path)) {
    return fail(ErrorKind::invalid, "path with '.' or '..' segments: {}", decoded_path);
  }
  return std::string(raw_path);
}

net::HeaderList forwarded_file_request_headers(const httplib::Headers& headers)
{
  net::HeaderList out;
  for (const auto& [name, value] : headers) {
    const auto key = lower(name);
    if (key == "authorization" || key == "accept" || key == "if-modified-since" || key == "if-range" ||
        key == "range") {
      out.emplace_back(name, value);
    }
  }
  return out;
}

bool is_forwarded_file_response_header(std::string_view name)
{
  const auto key = lower(name);
  return is_forwarded_response_header(name) || key == "last-modified" || key == "content-range" ||
         key == "accept-ranges" || key == "etag";
}

// A request body: in memory, or (large uploads) in a spool file removed when this goes away.
struct Proxy::Body {
  std::string memory;
  std::optional<fs::AtomicFileWriter> spool;
};

Proxy::Proxy(HealthMonitor& monitor, const std::vector<net::HttpClient>& upstreams, std::filesystem::path spool_dir,
             size_t max_long_polls)
    : m_monitor(monitor), m_upstreams(upstreams), m_spool_dir(std::move(spool_dir)), m_max_long_polls(max_long_polls)
{}

bool Proxy::admit_body(const httplib::Request& request, httplib::Response& response) const
{
  const auto authorization = request.get_header_value("Authorization");
  if (authorization.empty()) {
    net::error_response(response, Error{ErrorKind::unauthorized, "a token is required"});
    return false;
  }
  const auto key = hash::hex_digest(hash::Algo::sha256, authorization);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(m_mutex);
    if (auto it = m_admitted.find(key); it != m_admitted.end() && it->second > now) {
      return true;
    }
  }
  const auto active = m_monitor.active();
  if (!active) {
    unavailable(response, "no healthy orchestrator");
    return false;
  }
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  call.timeout = std::chrono::milliseconds{10'000};
  auto answer =
    m_upstreams.at(active->index)
      .request(
        "GET", "/api/v1/whoami", {},
        {{"Authorization", authorization}, {"Accept", "application/json"}, {"X-Forwarded-For", request.remote_addr}},
        call);
  if (!answer) {
    if (answer.error().kind == ErrorKind::unavailable) {
      m_monitor.mark_down(active->index, answer.error().message);
    }
    unavailable(response,
                fmt::format("cannot check the caller with orchestrator {}: {}", active->url, answer.error().message));
    return false;
  }
  if (answer->status == 200) {
    // A read-only token may not send bodies anywhere: refused here, before any is spooled.
    const auto who = nlohmann::json::parse(answer->body, nullptr, false);
    if (who.is_object() && who.value("role", "") == "reader") {
      net::error_response(response, Error{ErrorKind::forbidden, "a read-only token cannot do this"});
      return false;
    }
    std::lock_guard lock(m_mutex);
    if (m_admitted.size() >= 4096) {
      m_admitted.clear();
    }
    m_admitted[key] = now + k_admitted_ttl;
    return true;
  }
  if (answer->status == 401 || answer->status == 403) {
    response.status = answer->status;
    for (const auto& [name, value] : answer->headers) {
      if (is_forwarded_response_header(name)) {
        response.set_header(name, value);
      }
    }
    response.set_content(std::move(answer->body), "application/json");
    return false;
  }
  net::json_response(response, 502,
                     {{"error", fmt::format("orchestrator {} cannot check the caller (HTTP {} from /api/v1/whoami)",
                                            active->url, answer->status)},
                      {"kind", "unavailable"}});
  return false;
}

void Proxy::forward(const httplib::Request& request, httplib::Response& response) const
{
  Body body;
  body.memory = request.body;
  send(request, response, body);
}

void Proxy::forward_stream(const httplib::Request& request, httplib::Response& response, net::RequestBody& body) const
{
  // Refused before reading: an upload of gigabytes must not be spooled for nobody.
  if (!m_monitor.active()) {
    unavailable(response, "no healthy orchestrator");
    return;
  }
  if (body.has_body() && !admit_body(request, response)) {
    return;
  }
  auto read = read_body(request, body);
  if (!read) {
    const auto& error = read.error();
    if (error.message.find(fs::errno_text(ENOSPC)) != std::string::npos ||
        error.message.find(fs::errno_text(EDQUOT)) != std::string::npos) {
      LOG_ERROR("no space left in the gateway's spool {}: {}", m_spool_dir.string(), error.message);
      response.set_header("Retry-After", "60");
      net::json_response(
        response, 507,
        {{"error", fmt::format("no space left in the gateway's spool: {}", error.message)}, {"kind", "no_space"}});
      return;
    }
    net::error_response(response, error);
    return;
  }
  send(request, response, *read);
}

Result<Proxy::Body> Proxy::read_body(const httplib::Request& request, net::RequestBody& body) const
{
  // net::HttpClient streams a file upstream for PUT only (put_file), which is what artifact
  // uploads use; the bodies of other methods are JSON or log chunks, bounded by their route's
  // limit (the protocol's 16 MiB), and stay in memory.
  const bool may_spool = request.method == "PUT";
  Body out;
  auto read = body.read([&](std::string_view chunk) -> Result<> {
    if (out.spool) {
      return out.spool->write(chunk);
    }
    if (!may_spool || out.memory.size() + chunk.size() <= k_spool_threshold) {
      out.memory.append(chunk);
      return {};
    }
    auto spool = fs::AtomicFileWriter::create(m_spool_dir / "upload", 0600);
    if (!spool) {
      return fail(spool.error());
    }
    out.spool.emplace(std::move(*spool));
    if (auto written = out.spool->write(out.memory); !written) {
      return written;
    }
    out.memory = std::string(); // releases the buffer
    return out.spool->write(chunk);
  });
  if (!read) {
    return fail(read.error());
  }
  return out;
}

void Proxy::send(const httplib::Request& request, httplib::Response& response, const Body& body) const
{
  auto target = upstream_target(request.path, request.target);
  if (!target) {
    net::error_response(response, target.error());
    return;
  }
  // A long-poll holds a thread here for its whole wait: past the cap, it is asked not to wait.
  struct LongPoll {
    std::atomic<size_t>& count;
    bool active = false;
    ~LongPoll()
    {
      if (active) {
        --count;
      }
    }
  } long_poll{m_long_polls};
  const auto wait = strings::parse_double(request.get_param_value("wait"));
  if (m_max_long_polls > 0 && wait && *wait > 0) {
    if (++m_long_polls > m_max_long_polls) {
      --m_long_polls;
      *target = without_wait(*target);
    } else {
      long_poll.active = true;
    }
  }
  auto headers = forwarded_request_headers(request.headers);
  // The client's address, for the orchestrator's failed-authentication limit (orch.trusted_proxies).
  headers.emplace_back("X-Forwarded-For", request.remote_addr);
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  if (!body.spool) {
    // A spooled upload keeps the client's stall timeout instead: it takes as long as it takes.
    call.timeout = upstream_timeout(request.get_param_value("wait"));
  }

  const int attempts = is_idempotent(request.method) ? 2 : 1;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const auto active = m_monitor.active();
    if (!active) {
      unavailable(response, "no healthy orchestrator");
      return;
    }
    const auto& upstream = m_upstreams.at(active->index);
    auto answer = body.spool ? upstream.put_file(*target, body.spool->temp_path(), headers, {}, call)
                             : upstream.request(request.method, *target, body.memory, headers, call);
    if (answer) {
      response.status = answer->status;
      for (const auto& [name, value] : answer->headers) {
        if (is_forwarded_response_header(name)) {
          response.set_header(name, value);
        }
      }
      auto content_type = answer->header("Content-Type");
      response.set_content(std::move(answer->body), content_type.empty() ? "application/octet-stream" : content_type);
      return;
    }
    if (!upstream_failed("proxy", request, response, *active, answer.error(), attempt + 1 == attempts)) {
      return;
    }
  }
}

bool Proxy::upstream_failed(std::string_view what, const httplib::Request& request, httplib::Response& response,
                            const HealthMonitor::Active& active, const Error& error, bool last_attempt) const
{
  if (error.kind != ErrorKind::unavailable) {
    // The orchestrator answered, but not in a way we can pass on (an answer too large to buffer …).
    LOG_WARN("{} {} {} via {}: {}", what, request.method, request.path, active.url, error.message);
    net::json_response(
      response, 502,
      {{"error", fmt::format("orchestrator {}: {}", active.url, error.message)}, {"kind", "unavailable"}});
    return false;
  }
  LOG_WARN("{} {} {}: orchestrator {} unreachable: {}", what, request.method, request.path, active.url, error.message);
  m_monitor.mark_down(active.index, error.message);
  if (last_attempt) {
    unavailable(response, fmt::format("orchestrator {} unreachable: {}", active.url, error.message));
    return false;
  }
  return true;
}

namespace {

// An unlinked file in `directory` that holds one answer's body while it is sent on.
Result<UniqueFd> binhost_spool_file(const std::filesystem::path& directory)
{
  std::string name = (directory / "binhost.XXXXXX").string();
  UniqueFd fd(::mkostemp(name.data(), O_CLOEXEC));
  if (!fd) {
    return fail(ErrorKind::io, "cannot create a spool file in {}: {}", directory.string(), fs::errno_text(errno));
  }
  ::unlink(name.c_str());
  return fd;
}

Result<> write_spool(int fd, std::string_view data)
{
  while (!data.empty()) {
    const ssize_t wrote = ::write(fd, data.data(), data.size());
    if (wrote < 0 && errno == EINTR) {
      continue;
    }
    if (wrote <= 0) {
      return fail(ErrorKind::io, "cannot write the gateway's spool: {}", fs::errno_text(errno));
    }
    data.remove_prefix(static_cast<size_t>(wrote));
  }
  return {};
}

} // namespace

void Proxy::forward_file(const httplib::Request& request, httplib::Response& response) const
{
  auto target = binhost_file_target(request.path, request.target);
  if (!target) {
    net::error_response(response, target.error());
    return;
  }
  auto headers = forwarded_file_request_headers(request.headers);
  headers.emplace_back("X-Forwarded-For", request.remote_addr);
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  const bool head = request.method == "HEAD";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto active = m_monitor.active();
    if (!active) {
      unavailable(response, "no healthy orchestrator");
      return;
    }
    const auto& upstream = m_upstreams.at(active->index);
    std::shared_ptr<UniqueFd> spool;
    Result<net::Response> answer = fail(ErrorKind::internal, "not sent");
    if (head) {
      answer = upstream.request("HEAD", *target, {}, headers, call);
    } else {
      auto file = binhost_spool_file(m_spool_dir);
      if (!file) {
        LOG_ERROR("{}", file.error().message);
        net::error_response(response, file.error());
        return;
      }
      spool = std::make_shared<UniqueFd>(std::move(*file));
      const std::function<Result<>(std::string_view)> sink = [&](std::string_view chunk) {
        return write_spool(spool->get(), chunk);
      };
      answer = upstream.get_to_sink(*target, sink, call, headers);
    }
    if (answer) {
      response.status = answer->status;
      for (const auto& [name, value] : answer->headers) {
        if (is_forwarded_file_response_header(name)) {
          response.set_header(name, value);
        }
      }
      auto content_type = answer->header("Content-Type");
      if (content_type.empty()) {
        content_type = "application/octet-stream";
      }
      if (!answer->ok()) {
        response.set_content(std::move(answer->body), content_type);
        return;
      }
      // HEAD: the length a GET would send, no body (the server never calls the provider).
      uint64_t length = 0;
      if (head) {
        length = strings::parse_uint(answer->header("Content-Length")).value_or(0);
      } else {
        const off_t end = ::lseek(spool->get(), 0, SEEK_END);
        length = end > 0 ? static_cast<uint64_t>(end) : 0;
      }
      if (length == 0) {
        response.set_content("", content_type);
        return;
      }
      response.set_content_provider(
        static_cast<size_t>(length), content_type, [spool](size_t position, size_t left, httplib::DataSink& out) {
          if (!spool) {
            return false;
          }
          std::array<char, 64 * 1024> buffer;
          ssize_t got = 0;
          do {
            got = ::pread(spool->get(), buffer.data(), std::min(left, buffer.size()), static_cast<off_t>(position));
          } while (got < 0 && errno == EINTR);
          return got > 0 && out.write(buffer.data(), static_cast<size_t>(got));
        });
      return;
    }
    if (!upstream_failed("binhost", request, response, *active, answer.error(), attempt == 1)) {
      return;
    }
  }
}

} // namespace swarm::roles::gateway
