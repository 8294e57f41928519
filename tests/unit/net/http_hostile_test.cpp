// The server against hostile clients: slow headers, trickled bodies, too many connections from
// one address, invalid Range headers, bodies on GET; and the client's connection reuse.
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/subprocess.hpp"
#include "net/http_client.hpp"
#include "net/http_connections.hpp"
#include "net/http_server.hpp"
#include "test_server.hpp"

using namespace swarm;
using namespace swarm::net;
using swarm::net::test::TestServer;
using namespace std::chrono_literals;

namespace {

// A raw client socket. Reads give up after a minute: only a hang guard (a server that never
// answers fails the test instead of blocking it), never a latency check.
class RawSocket {
public:
  explicit RawSocket(int port, const char* source = nullptr)
  {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    timeval guard{60, 0};
    ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  ~RawSocket()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }

  bool send(std::string_view text)
  {
    size_t sent = 0;
    while (sent < text.size()) {
      const ssize_t n = ::send(m_fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Everything until the server closes (or the hang guard fires: then `hung` is set).
  std::string read_all(bool* hung = nullptr)
  {
    std::string out;
    char buffer[4096];
    while (true) {
      const ssize_t n = ::recv(m_fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        out.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && hung != nullptr) {
        *hung = true;
      }
      return out;
    }
  }

  // Reads until `marker` has arrived (or the server closes).
  std::string read_until(std::string_view marker)
  {
    std::string out;
    char buffer[4096];
    while (out.find(marker) == std::string::npos) {
      const ssize_t n = ::recv(m_fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        break;
      }
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

private:
  int m_fd = -1;
};

HttpClient hostile_client(const TestServer& server)
{
  ClientOptions options;
  options.base_url = server.url();
  options.timeout = 30s;
  return HttpClient(options);
}

void add_hostile_healthz(TestServer& server)
{
  server.server.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    json_response(response, 200, {{"status", "ok"}});
  });
}

} // namespace

TEST_CASE("http_server: connections waiting for their headers hold no worker thread")
{
  ServerOptions options;
  options.threads = 2;
  TestServer server(options);
  add_hostile_healthz(server);
  server.start();
  // Far more half-sent requests than workers: each would have held a thread until it closed.
  std::vector<std::unique_ptr<RawSocket>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawSocket>(server.port));
    REQUIRE(slow.back()->send("POST /api/v1/claim HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  const auto client = hostile_client(server);
  for (int i = 0; i < 5; ++i) {
    auto answer = client.get_json("/healthz");
    REQUIRE(answer.has_value());
    CHECK((*answer)["status"] == "ok");
  }
  CHECK(server.server.stats().serving <= 1);
  CHECK(server.server.stats().waiting >= 40);
}

TEST_CASE("http_server: headers that do not arrive in time get 408 and the connection closes")
{
  ServerOptions options;
  options.header_timeout = 200ms;
  TestServer server(options);
  add_hostile_healthz(server);
  server.start();
  RawSocket slow(server.port);
  REQUIRE(slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  bool hung = false;
  const auto answer = slow.read_all(&hung);
  CHECK_FALSE(hung);
  CHECK(test::raw_status(answer) == 408);
  // A connection that never sends a byte is closed silently.
  RawSocket silent(server.port);
  CHECK(silent.read_all(&hung).empty());
  CHECK_FALSE(hung);
}

TEST_CASE("http_server: a body trickled slower than the minimum rate is cut off")
{
  ServerOptions options;
  options.read_timeout = 3600s; // a stall alone would hold the worker for an hour
  options.transfer_grace = 200ms;
  options.min_transfer_rate = 1u << 20;
  TestServer server(options);
  std::atomic<bool> broken{false};
  server.server.post_stream("/upload", 1u << 30,
                            [&](const httplib::Request&, httplib::Response& response, RequestBody& body) {
                              auto read = body.read([](std::string_view) -> Result<> { return {}; });
                              broken = !read.has_value();
                              json_response(response, read ? 200 : 400, {{"ok", read.has_value()}});
                            });
  server.start();
  RawSocket trickler(server.port);
  REQUIRE(trickler.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n0123456789"));
  bool hung = false;
  trickler.read_all(&hung);
  CHECK_FALSE(hung);
  CHECK(broken);
}

TEST_CASE("http_server: a client address has a budget of connections")
{
  ServerOptions options;
  options.max_connections_per_client = 3;
  TestServer server(options);
  add_hostile_healthz(server);
  server.start();
  std::vector<std::unique_ptr<RawSocket>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawSocket>(server.port, "127.0.0.7"));
  }
  // The connections are counted once accepted: wait for that, not for a time.
  while (server.server.stats().waiting < 3) {
    std::this_thread::sleep_for(5ms);
  }
  RawSocket extra(server.port, "127.0.0.7");
  REQUIRE(extra.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto refused = extra.read_all();
  CHECK(test::raw_status(refused) == 503);
  CHECK(refused.find("too many connections from this address") != std::string::npos);
  CHECK(server.server.stats().refused >= 1);
  // Another address is not affected.
  const auto answer = test::raw_get(server.port, "/healthz");
  CHECK(test::raw_status(answer) == 200);
  // Once one closes, the address may connect again.
  held.pop_back();
  while (server.server.stats().waiting > 2) {
    std::this_thread::sleep_for(5ms);
  }
  RawSocket again(server.port, "127.0.0.7");
  REQUIRE(again.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(test::raw_status(again.read_all()) == 200);
}

TEST_CASE("http_server: header blocks past the limit get 431; bodies on GET are refused")
{
  ServerOptions options;
  options.max_header_bytes = 4096;
  TestServer server(options);
  add_hostile_healthz(server);
  server.start();
  RawSocket big(server.port);
  REQUIRE(big.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8192, 'a')));
  CHECK(test::raw_status(big.read_all()) == 431);

  RawSocket with_body(server.port);
  REQUIRE(with_body.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc"));
  const auto answer = with_body.read_all();
  CHECK(test::raw_status(answer) == 413);
}

TEST_CASE("http_server: pipelined and kept-alive requests on one connection")
{
  TestServer server;
  add_hostile_healthz(server);
  server.start();
  RawSocket socket(server.port);
  REQUIRE(socket.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = socket.read_until("}");
  CHECK(test::raw_status(first) == 200);
  auto second = first.substr(first.find('}') + 1);
  if (second.find('}') == std::string::npos) {
    second += socket.read_until("}");
  }
  CHECK(test::raw_status(second) == 200);
  // After a pause (the connection waits in the poller, no thread), a third request.
  while (server.server.stats().serving > 0) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(socket.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(test::raw_status(socket.read_all()) == 200);
}

TEST_CASE("http_server: the listen backlog is raised for a fleet")
{
  ServerOptions options;
  options.listen_backlog = 777;
  TestServer server(options);
  add_hostile_healthz(server);
  server.start();
  // Linux shows a listening socket's backlog as its Send-Q.
  const auto out = subprocess::run_capture({"ss", "-Hltn", fmt::format("sport = :{}", server.port)});
  if (!out.has_value() || !out->success()) {
    MESSAGE("ss is not available: backlog not checked");
    return;
  }
  CHECK(out->output.find(" 777 ") != std::string::npos);
}

TEST_CASE("http_server: invalid Range headers are dropped before httplib sees them")
{
  using detail::drop_invalid_ranges;
  CHECK(drop_invalid_ranges("GET / HTTP/1.1\r\nRange: bytes=0-4\r\n\r\n") ==
        "GET / HTTP/1.1\r\nRange: bytes=0-4\r\n\r\n");
  CHECK(drop_invalid_ranges("GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=abc\r\nAccept: */*\r\n\r\n") ==
        "GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  CHECK(drop_invalid_ranges("GET / HTTP/1.1\r\nrange: bytes=5-3\r\n\r\n") == "GET / HTTP/1.1\r\n\r\n");
  CHECK(drop_invalid_ranges("GET / HTTP/1.1\r\nRange: items=0-1\r\n\r\n") == "GET / HTTP/1.1\r\n\r\n");
  CHECK(drop_invalid_ranges("GET / HTTP/1.1\r\nX-Range: junk\r\n\r\n") == "GET / HTTP/1.1\r\nX-Range: junk\r\n\r\n");
}

TEST_CASE("http_server: JSON nested beyond any message is refused")
{
  CHECK(parse_json(std::string(100, '[') + std::string(100, ']')).error().message.find("deeper") != std::string::npos);
  CHECK(parse_json(std::string(200'000, '[')).has_value() == false);
  CHECK(parse_json("[[[[1]]]]").has_value());
}

TEST_CASE("http_client: a thread's calls reuse one kept-alive connection")
{
  TestServer server;
  server.server.get("/peer", [](const httplib::Request& request, httplib::Response& response) {
    json_response(response, 200, {{"peer", peer_address(request)}});
  });
  server.start();
  const auto client = hostile_client(server);
  std::set<std::string> peers;
  for (int i = 0; i < 5; ++i) {
    auto answer = client.get_json("/peer");
    REQUIRE(answer.has_value());
    peers.insert((*answer)["peer"].get<std::string>());
  }
  CHECK(peers.size() == 1);
  // Another thread has a connection of its own.
  std::string other;
  std::thread([&] { other = (*client.get_json("/peer"))["peer"].get<std::string>(); }).join();
  CHECK(peers.count(other) == 0);
}
