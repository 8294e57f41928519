#pragma once
// Internal to src/net (http_server.cpp): how the plain-HTTP server holds its connections so that
// hostile clients cannot take it down. httplib gives every accepted connection a pool thread
// until it closes, so 140 clients sending a partial request held 128 threads. Here:
//
// - Connections waiting for a request (new ones, and kept-alive ones between requests) sit in
//   one poller thread, which reads their request headers into memory. Only a connection whose
//   whole header block has arrived takes a worker thread. A header block must arrive within
//   header_timeout of the connection opening (or of its first byte, on a kept-alive connection);
//   an idle kept-alive connection is closed after keep_alive_timeout; a header block larger than
//   max_header_bytes is answered 431.
// - On a worker, a body must arrive at an average of at least min_transfer_rate after a grace
//   period (elapsed ≤ grace + bytes / rate); an answer must be taken at the same rate. A single
//   read or write also stalls at most read_timeout / write_timeout.
// - Connections per client address (all of its open connections, waiting or served) and in total
//   have a budget: past it a connection is answered 503 at once and closed.
// - The listening socket's backlog is raised from httplib's 5.
// - A Range header httplib cannot parse is removed before httplib sees it (RFC 9110: an invalid
//   Range is ignored; httplib would answer 416).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <httplib.h>

namespace swarm::net::detail {

struct ConnectionLimits {
  size_t workers = 16;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds keep_alive_timeout{30'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds transfer_grace{30'000};
  uint64_t min_transfer_rate = 64u << 10; // bytes per second
  size_t max_header_bytes = 64u << 10;
  size_t max_connections_per_client = 256; // 0: no budget
  size_t max_connections = 10'000;
  size_t keep_alive_max_requests = 1000;
};

struct Connection;

// Counters, for tests and benchmarks.
struct ConnectionStats {
  size_t waiting = 0; // connections in the poller (no thread)
  size_t serving = 0; // connections on a worker
  uint64_t refused = 0;
  uint64_t timed_out = 0;
};

// An httplib::Server whose connections are served as described above.
class GuardedServer : public httplib::Server {
public:
  explicit GuardedServer(ConnectionLimits limits);
  ~GuardedServer() override;
  GuardedServer(const GuardedServer&) = delete;
  GuardedServer& operator=(const GuardedServer&) = delete;

  ConnectionStats stats() const;

private:
  friend class ConnectionQueue;
  bool process_and_close_socket(socket_t sock) override;

  void start();
  void shutdown();
  void poller_loop();
  void worker_loop();
  void serve(std::unique_ptr<Connection> connection);
  void park(std::unique_ptr<Connection> connection);
  void close_connection(std::unique_ptr<Connection> connection);
  void on_readable(int fd);
  void expire();

  ConnectionLimits m_limits;
  mutable std::mutex m_mutex;
  std::condition_variable m_ready_changed;
  std::unordered_map<int, std::unique_ptr<Connection>> m_waiting; // by fd, in the poller
  std::deque<std::unique_ptr<Connection>> m_ready;                // header complete, for a worker
  std::map<std::string, size_t> m_per_client;
  size_t m_total = 0;
  size_t m_serving = 0;
  uint64_t m_refused = 0;
  uint64_t m_timed_out = 0;
  int m_epoll = -1;
  int m_wake = -1;
  bool m_started = false;
  std::atomic<bool> m_stopping{false};
  std::thread m_poller;
  std::vector<std::thread> m_workers;
};

// Raises the backlog of a listening socket (Linux updates it on a second listen()).
bool set_listen_backlog(int fd, int backlog);

// On a worker of a GuardedServer: from now on, reads of the current request fail after `limit`
// (draining the body of a refused request must not hold the worker for long). Elsewhere: nothing.
void limit_current_reads(std::chrono::milliseconds limit);

// Removes from a header block the Range fields httplib's parser would refuse. Exposed for tests.
std::string drop_invalid_ranges(std::string_view header_block);

} // namespace swarm::net::detail
