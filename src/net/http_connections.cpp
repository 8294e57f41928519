#include "net/http_connections.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "core/log.hpp"

namespace swarm::net::detail {

using Clock = std::chrono::steady_clock;

struct Connection {
  int fd = -1;
  std::string client; // the peer's address, the key of the per-client budget
  std::string remote_ip;
  int remote_port = 0;
  std::string buffer;  // received and not yet consumed from `consumed` on
  size_t consumed = 0; // bytes of `buffer` httplib has read
  Clock::time_point deadline;
  bool got_bytes = false; // a byte arrived since the connection was parked
  size_t requests = 0;
};

class ConnectionStream;

namespace {

constexpr size_t k_recv_chunk = 16u << 10;
constexpr auto k_poller_tick = std::chrono::milliseconds(100);

thread_local ConnectionStream* t_current = nullptr;

// Where the header block at the start of `buffer` ends (after its empty line), if it has.
std::optional<size_t> find_header_end(std::string_view buffer)
{
  for (size_t i = buffer.find('\n'); i != std::string_view::npos; i = buffer.find('\n', i + 1)) {
    if (i + 1 < buffer.size() && buffer[i + 1] == '\n') {
      return i + 2;
    }
    if (i + 2 < buffer.size() && buffer[i + 1] == '\r' && buffer[i + 2] == '\n') {
      return i + 3;
    }
  }
  return std::nullopt;
}

std::string ascii_lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim_header_space(std::string_view text)
{
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

// Sends a complete small answer without waiting, then closes: for connections refused before
// any worker looks at them. What the client sent is read first so that closing does not reset
// the connection (which can destroy the answer before the client reads it).
void answer_and_close(int fd, int status, std::string_view reason, std::string_view message)
{
  std::array<char, 4096> sink{};
  while (::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
  }
  const std::string body = fmt::format(R"({{"error":"{}","kind":"{}"}})", message,
                                       status == 503 ? "unavailable" : (status == 408 ? "timeout" : "invalid"));
  const std::string answer = fmt::format(
    "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}", status,
    reason, body.size(), status == 503 ? "Retry-After: 1\r\n" : "", body);
  (void)::send(fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  while (::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
  }
  ::close(fd);
}

void peer_of(int fd, std::string& ip, int& port)
{
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return;
  }
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size());
    port = ntohs(in->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text.data(), text.size());
    port = ntohs(in6->sin6_port);
  }
  ip = text.data();
}

void raise_open_file_limit()
{
  static std::once_flag once;
  std::call_once(once, [] {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
      limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 1u << 16);
      (void)::setrlimit(RLIMIT_NOFILE, &limit);
    }
  });
}

} // namespace

// The stream httplib reads a request from and writes its answer to: the connection's buffered
// bytes first, then the socket, each wait bounded by the limits of the module comment.
class ConnectionStream : public httplib::Stream {
public:
  ConnectionStream(Connection& connection, const ConnectionLimits& limits) : m_c(connection), m_limits(limits) {}

  void begin_request()
  {
    m_read_start.reset();
    m_read_bytes = 0;
    m_write_start.reset();
    m_written = 0;
    m_hard_read_deadline.reset();
  }

  void limit_reads(std::chrono::milliseconds limit)
  {
    const auto deadline = Clock::now() + limit;
    if (!m_hard_read_deadline || deadline < *m_hard_read_deadline) {
      m_hard_read_deadline = deadline;
    }
  }

  bool is_readable() const override { return m_c.consumed < m_c.buffer.size() || wait(POLLIN); }
  bool is_writable() const override { return wait(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override
  {
    if (size == 0) {
      return 0;
    }
    if (m_c.consumed < m_c.buffer.size()) {
      const size_t n = std::min(size, m_c.buffer.size() - m_c.consumed);
      std::memcpy(ptr, m_c.buffer.data() + m_c.consumed, n);
      m_c.consumed += n;
      return static_cast<ssize_t>(n);
    }
    if (!m_read_start) {
      m_read_start = Clock::now();
    }
    while (true) {
      if (!wait(POLLIN)) {
        return -1;
      }
      ssize_t n = 0;
      if (size >= k_recv_chunk) {
        n = ::recv(m_c.fd, ptr, size, MSG_DONTWAIT);
        if (n > 0) {
          m_read_bytes += static_cast<uint64_t>(n);
          return n;
        }
      } else {
        std::array<char, k_recv_chunk> chunk{};
        n = ::recv(m_c.fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (n > 0) {
          m_read_bytes += static_cast<uint64_t>(n);
          m_c.buffer.assign(chunk.data(), static_cast<size_t>(n));
          m_c.consumed = 0;
          return read(ptr, size);
        }
      }
      if (n == 0) {
        return 0;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return -1;
      }
    }
  }

  ssize_t write(const char* ptr, size_t size) override
  {
    if (!m_write_start) {
      m_write_start = Clock::now();
    }
    while (true) {
      if (!wait(POLLOUT)) {
        return -1;
      }
      const ssize_t n = ::send(m_c.fd, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        m_written += static_cast<uint64_t>(n);
        return n;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return -1;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override
  {
    ip = m_c.remote_ip;
    port = m_c.remote_port;
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override
  {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (::getsockname(m_c.fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (address.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
      ::inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size());
      port = ntohs(in->sin_port);
    } else if (address.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text.data(), text.size());
      port = ntohs(in6->sin6_port);
    }
    ip = text.data();
  }

  socket_t socket() const override { return m_c.fd; }

private:
  // The end of a transfer that started at `start` and has moved `bytes` so far.
  Clock::time_point rate_deadline(Clock::time_point start, uint64_t bytes) const
  {
    const uint64_t rate = std::max<uint64_t>(1, m_limits.min_transfer_rate);
    const auto allowed = std::chrono::milliseconds(std::min<uint64_t>(bytes, uint64_t(1) << 50) * 1000 / rate);
    return start + m_limits.transfer_grace + allowed;
  }

  // Waits until the socket is ready for `events`, at most until the current limit.
  bool wait(short events) const
  {
    const auto now = Clock::now();
    Clock::time_point limit;
    if (events == POLLIN) {
      limit = now + m_limits.read_timeout;
      if (m_read_start) {
        limit = std::min(limit, rate_deadline(*m_read_start, m_read_bytes));
      }
      if (m_hard_read_deadline) {
        limit = std::min(limit, *m_hard_read_deadline);
      }
    } else {
      limit = now + m_limits.write_timeout;
      if (m_write_start) {
        limit = std::min(limit, rate_deadline(*m_write_start, m_written));
      }
    }
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - Clock::now()).count();
      if (left <= 0) {
        return false;
      }
      pollfd item{m_c.fd, events, 0};
      const int ready = ::poll(&item, 1, static_cast<int>(std::min<int64_t>(left, 1'000)));
      if (ready > 0) {
        return (item.revents & (events | POLLERR | POLLHUP)) != 0;
      }
      if (ready < 0 && errno != EINTR) {
        return false;
      }
    }
  }

  Connection& m_c;
  const ConnectionLimits& m_limits;
  std::optional<Clock::time_point> m_read_start;
  uint64_t m_read_bytes = 0;
  std::optional<Clock::time_point> m_write_start;
  uint64_t m_written = 0;
  std::optional<Clock::time_point> m_hard_read_deadline;
};

// httplib's accept loop hands each accepted socket to its task queue: this one runs the hand-off
// (registering the connection with the poller) at once, on the accept thread.
class ConnectionQueue : public httplib::TaskQueue {
public:
  explicit ConnectionQueue(GuardedServer& server) : m_server(server) { m_server.start(); }
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { m_server.shutdown(); }

private:
  GuardedServer& m_server;
};

std::string drop_invalid_ranges(std::string_view header_block)
{
  std::string out;
  out.reserve(header_block.size());
  size_t start = 0;
  bool first = true;
  while (start < header_block.size()) {
    size_t end = header_block.find('\n', start);
    end = end == std::string_view::npos ? header_block.size() : end + 1;
    const auto line = header_block.substr(start, end - start);
    start = end;
    if (!first) {
      const size_t colon = line.find(':');
      if (colon != std::string_view::npos && ascii_lower(trim_header_space(line.substr(0, colon))) == "range") {
        httplib::Ranges ranges;
        if (!httplib::detail::parse_range_header(std::string(trim_header_space(line.substr(colon + 1))), ranges)) {
          continue;
        }
      }
    }
    first = false;
    out.append(line);
  }
  return out;
}

bool set_listen_backlog(int fd, int backlog)
{
  return fd >= 0 && ::listen(fd, backlog) == 0;
}

void limit_current_reads(std::chrono::milliseconds limit)
{
  if (t_current != nullptr) {
    t_current->limit_reads(limit);
  }
}

GuardedServer::GuardedServer(ConnectionLimits limits) : m_limits(limits)
{
  m_limits.workers = std::max<size_t>(1, m_limits.workers);
  raise_open_file_limit();
  new_task_queue = [this] { return new ConnectionQueue(*this); };
}

GuardedServer::~GuardedServer()
{
  shutdown();
}

ConnectionStats GuardedServer::stats() const
{
  std::lock_guard lock(m_mutex);
  return {m_waiting.size() + m_ready.size(), m_serving, m_refused, m_timed_out};
}

void GuardedServer::start()
{
  std::lock_guard lock(m_mutex);
  if (m_started) {
    return;
  }
  m_started = true;
  m_stopping = false;
  m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
  m_wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = m_wake;
  ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_wake, &event);
  m_poller = std::thread([this] { poller_loop(); });
  for (size_t i = 0; i < m_limits.workers; ++i) {
    m_workers.emplace_back([this] { worker_loop(); });
  }
}

void GuardedServer::shutdown()
{
  {
    std::lock_guard lock(m_mutex);
    if (!m_started) {
      return;
    }
    m_stopping = true;
  }
  const uint64_t one = 1;
  (void)::write(m_wake, &one, sizeof(one));
  m_ready_changed.notify_all();
  for (auto& worker : m_workers) {
    worker.join();
  }
  m_workers.clear();
  if (m_poller.joinable()) {
    m_poller.join();
  }
  std::unique_lock lock(m_mutex);
  std::vector<std::unique_ptr<Connection>> left;
  for (auto& [fd, connection] : m_waiting) {
    left.push_back(std::move(connection));
  }
  m_waiting.clear();
  for (auto& connection : m_ready) {
    left.push_back(std::move(connection));
  }
  m_ready.clear();
  lock.unlock();
  for (auto& connection : left) {
    close_connection(std::move(connection));
  }
  ::close(m_epoll);
  ::close(m_wake);
  lock.lock();
  m_epoll = m_wake = -1;
  m_started = false;
}

bool GuardedServer::process_and_close_socket(socket_t sock)
{
  auto connection = std::make_unique<Connection>();
  connection->fd = sock;
  peer_of(sock, connection->remote_ip, connection->remote_port);
  connection->client = connection->remote_ip;
  connection->deadline = Clock::now() + m_limits.header_timeout;
  std::unique_lock lock(m_mutex);
  if (m_stopping) {
    lock.unlock();
    ::close(sock);
    return false;
  }
  auto& from_client = m_per_client[connection->client];
  if (m_total >= m_limits.max_connections ||
      (m_limits.max_connections_per_client > 0 && from_client >= m_limits.max_connections_per_client)) {
    const bool per_client = m_total < m_limits.max_connections;
    if (from_client == 0) {
      m_per_client.erase(connection->client);
    }
    if ((m_refused++ & 1023) == 0) {
      LOG_WARN("refusing a connection from {}: {}", connection->client,
               per_client ? "too many connections from this address" : "too many connections");
    }
    lock.unlock();
    answer_and_close(sock, 503, "Service Unavailable",
                     per_client ? "too many connections from this address" : "too many connections");
    return false;
  }
  ++from_client;
  ++m_total;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP;
  event.data.fd = sock;
  m_waiting.emplace(sock, std::move(connection));
  ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, sock, &event);
  return true;
}

void GuardedServer::close_connection(std::unique_ptr<Connection> connection)
{
  if (!connection) {
    return;
  }
  ::shutdown(connection->fd, SHUT_RDWR);
  ::close(connection->fd);
  std::lock_guard lock(m_mutex);
  auto it = m_per_client.find(connection->client);
  if (it != m_per_client.end() && --it->second == 0) {
    m_per_client.erase(it);
  }
  --m_total;
}

void GuardedServer::park(std::unique_ptr<Connection> connection)
{
  const auto now = Clock::now();
  connection->got_bytes = !connection->buffer.empty();
  connection->deadline = now + (connection->got_bytes ? m_limits.header_timeout : m_limits.keep_alive_timeout);
  std::unique_lock lock(m_mutex);
  if (m_stopping) {
    lock.unlock();
    close_connection(std::move(connection));
    return;
  }
  const int fd = connection->fd;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP;
  event.data.fd = fd;
  m_waiting.emplace(fd, std::move(connection));
  ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event);
}

void GuardedServer::poller_loop()
{
  std::array<epoll_event, 256> events{};
  auto next_expiry = Clock::now() + k_poller_tick;
  while (!m_stopping) {
    const int count =
      ::epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), static_cast<int>(k_poller_tick.count()));
    for (int i = 0; i < count; ++i) {
      if (events[static_cast<size_t>(i)].data.fd == m_wake) {
        uint64_t value = 0;
        (void)::read(m_wake, &value, sizeof(value));
        continue;
      }
      on_readable(events[static_cast<size_t>(i)].data.fd);
    }
    if (Clock::now() >= next_expiry) {
      expire();
      next_expiry = Clock::now() + k_poller_tick;
    }
  }
}

void GuardedServer::on_readable(int fd)
{
  std::unique_lock lock(m_mutex);
  auto it = m_waiting.find(fd);
  if (it == m_waiting.end()) {
    return;
  }
  Connection& c = *it->second;
  bool closed = false;
  std::array<char, k_recv_chunk> chunk{};
  while (c.buffer.size() <= m_limits.max_header_bytes) {
    const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n > 0) {
      if (!c.got_bytes) {
        c.got_bytes = true;
        c.deadline = std::min(c.deadline, Clock::now() + m_limits.header_timeout);
        if (c.requests > 0) {
          c.deadline = Clock::now() + m_limits.header_timeout; // a kept-alive connection's next request
        }
      }
      c.buffer.append(chunk.data(), static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    break;
  }
  const auto end = find_header_end(c.buffer);
  if (!end && !closed && c.buffer.size() <= m_limits.max_header_bytes) {
    return; // more to come
  }
  auto connection = std::move(it->second);
  m_waiting.erase(it);
  ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, fd, nullptr);
  if (end) {
    // Served even if the client already half-closed: it may wait for the answer.
    const auto block = std::string_view(connection->buffer).substr(0, *end);
    if (block.find("ange") != std::string_view::npos) {
      connection->buffer.replace(0, *end, drop_invalid_ranges(block));
    }
    m_ready.push_back(std::move(connection));
    lock.unlock();
    m_ready_changed.notify_one();
    return;
  }
  lock.unlock();
  if (closed) {
    close_connection(std::move(connection));
    return;
  }
  // A header block larger than the limit.
  const int sock = connection->fd;
  connection->fd = -1;
  close_connection(std::move(connection));
  answer_and_close(sock, 431, "Request Header Fields Too Large", "request header fields too large");
}

void GuardedServer::expire()
{
  const auto now = Clock::now();
  std::vector<std::unique_ptr<Connection>> expired;
  {
    std::lock_guard lock(m_mutex);
    for (auto it = m_waiting.begin(); it != m_waiting.end();) {
      if (it->second->deadline <= now) {
        ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, it->first, nullptr);
        if (it->second->got_bytes) {
          ++m_timed_out;
        }
        expired.push_back(std::move(it->second));
        it = m_waiting.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& connection : expired) {
    if (connection->got_bytes) {
      // A request that did not arrive in time: 408 (RFC 9110 15.5.9).
      const int sock = connection->fd;
      connection->fd = -1;
      close_connection(std::move(connection));
      answer_and_close(sock, 408, "Request Timeout", "the request headers did not arrive in time");
    } else {
      close_connection(std::move(connection)); // an idle kept-alive or silent connection
    }
  }
}

void GuardedServer::worker_loop()
{
  while (true) {
    std::unique_ptr<Connection> connection;
    {
      std::unique_lock lock(m_mutex);
      m_ready_changed.wait(lock, [&] { return m_stopping || !m_ready.empty(); });
      if (m_stopping) {
        return;
      }
      connection = std::move(m_ready.front());
      m_ready.pop_front();
      ++m_serving;
    }
    serve(std::move(connection));
    std::lock_guard lock(m_mutex);
    --m_serving;
  }
}

void GuardedServer::serve(std::unique_ptr<Connection> connection)
{
  ConnectionStream stream(*connection, m_limits);
  t_current = &stream;
  while (true) {
    stream.begin_request();
    ++connection->requests;
    const bool last = m_stopping || connection->requests >= m_limits.keep_alive_max_requests;
    bool closed = false;
    bool ok = false;
    try {
      ok = process_request(stream, last, closed, {});
    } catch (const std::exception& exception) {
      LOG_ERROR("http connection from {}: {}", connection->client, exception.what());
    } catch (...) {
      LOG_ERROR("http connection from {}: unknown exception", connection->client);
    }
    if (!ok || closed || last || m_stopping) {
      break;
    }
    connection->buffer.erase(0, connection->consumed);
    connection->consumed = 0;
    if (const auto end = find_header_end(connection->buffer)) {
      const auto block = std::string_view(connection->buffer).substr(0, *end);
      if (block.find("ange") != std::string_view::npos) {
        connection->buffer.replace(0, *end, drop_invalid_ranges(block));
      }
      continue; // a pipelined request, already here
    }
    t_current = nullptr;
    park(std::move(connection));
    return;
  }
  t_current = nullptr;
  close_connection(std::move(connection));
}

} // namespace swarm::net::detail
