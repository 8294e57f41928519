#pragma once
// Helpers of the net tests: a server on 127.0.0.1 with a kernel-chosen port, and a raw HTTP
// exchange over a socket for requests a client library would normalise ("/../").

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/strings.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"

namespace swarm::net::test {

struct TestServer {
  HttpServer server;
  int port = 0;

  explicit TestServer(ServerOptions options = {}) : server(std::move(options)) {}

  void start()
  {
    auto bound = server.bind("127.0.0.1", 0);
    REQUIRE(bound.has_value());
    port = *bound;
    REQUIRE(server.listen_in_thread().has_value());
  }

  std::string url(std::string_view path = "") const { return fmt::format("http://127.0.0.1:{}{}", port, path); }

  // A client of this server sending `token` (none when empty).
  HttpClient client(std::string token = "") const
  {
    ClientOptions options;
    options.base_url = url();
    options.token = std::move(token);
    return HttpClient(options);
  }
};

// Sends `request_text` as is and returns everything the server answers until it closes.
inline std::string raw_request(int port, const std::string& request_text)
{
  const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(sock >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  size_t sent = 0;
  while (sent < request_text.size()) {
    const ssize_t n = ::send(sock, request_text.data() + sent, request_text.size() - sent, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(sock, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      break;
    }
    answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(sock);
  return answer;
}

// GET `target` exactly as written, with Connection: close.
inline std::string raw_get(int port, std::string_view target)
{
  return raw_request(port, fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target));
}

// The status code of a raw answer, or 0.
inline int raw_status(std::string_view answer)
{
  if (!answer.starts_with("HTTP/1.1 ") || answer.size() < 12) {
    return 0;
  }
  return static_cast<int>(strings::parse_int(answer.substr(9, 3)).value_or(0));
}

} // namespace swarm::net::test
