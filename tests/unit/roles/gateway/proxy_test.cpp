#include <doctest/doctest.h>

#include <algorithm>

#include "roles/gateway/proxy.hpp"

using namespace swarm;
using namespace swarm::roles::gateway;
using namespace std::chrono_literals;

namespace {

bool has(const net::HeaderList& headers, std::string_view name, std::string_view value)
{
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& header) { return header.first == name && header.second == value; });
}

} // namespace

TEST_CASE("proxy: only the headers that matter go upstream")
{
  const httplib::Headers incoming{{"Authorization", "Bearer drone-token"},
                                  {"Content-Type", "application/json"},
                                  {"Accept", "application/json"},
                                  {"X-Swarm-Sha256", "ab12"},
                                  {"x-swarm-xxh3-128", "cd34"},
                                  {"Content-Length", "42"},
                                  {"Host", "gateway:7000"},
                                  {"Connection", "keep-alive"},
                                  {"Transfer-Encoding", "chunked"},
                                  {"Expect", "100-continue"},
                                  {"Cookie", "a=b"},
                                  {"X-Forwarded-For", "10.0.0.9"},
                                  {"X-Swarmish", "no"}};
  const auto forwarded = forwarded_request_headers(incoming);
  CHECK(forwarded.size() == 5);
  CHECK(has(forwarded, "Authorization", "Bearer drone-token"));
  CHECK(has(forwarded, "Content-Type", "application/json"));
  CHECK(has(forwarded, "Accept", "application/json"));
  CHECK(has(forwarded, "X-Swarm-Sha256", "ab12"));
  CHECK(has(forwarded, "x-swarm-xxh3-128", "cd34"));
  // Content-Length is set by the client from the bytes it sends (the same count); hop-by-hop
  // and unrelated headers stay behind.
  for (const char* dropped : {"Content-Length", "Host", "Connection", "Transfer-Encoding", "Expect", "Cookie",
                              "X-Forwarded-For", "X-Swarmish"}) {
    CAPTURE(dropped);
    CHECK(
      std::none_of(forwarded.begin(), forwarded.end(), [&](const auto& header) { return header.first == dropped; }));
  }
}

TEST_CASE("proxy: answer headers passed back")
{
  CHECK(is_forwarded_response_header("WWW-Authenticate"));
  CHECK(is_forwarded_response_header("retry-after"));
  CHECK(is_forwarded_response_header("X-Swarm-Lease"));
  CHECK_FALSE(is_forwarded_response_header("Content-Length"));
  CHECK_FALSE(is_forwarded_response_header("Connection"));
  CHECK_FALSE(is_forwarded_response_header("Set-Cookie"));
  CHECK_FALSE(is_forwarded_response_header("Content-Type")); // set with the body
}

TEST_CASE("proxy: upstream timeout follows a long-poll's wait")
{
  CHECK(upstream_timeout("") == k_default_upstream_timeout);
  CHECK(upstream_timeout("soon") == k_default_upstream_timeout);
  CHECK(upstream_timeout("-3") == k_default_upstream_timeout);
  CHECK(upstream_timeout("25") == 25s + k_long_poll_margin);
  CHECK(upstream_timeout("0") == k_long_poll_margin);
  CHECK(upstream_timeout("1.5") == 1500ms + k_long_poll_margin);
  CHECK(upstream_timeout("1e300") == 86'400s + k_long_poll_margin);
}

TEST_CASE("proxy: only GET and HEAD are retried elsewhere")
{
  CHECK(is_idempotent("GET"));
  CHECK(is_idempotent("HEAD"));
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    CAPTURE(method);
    CHECK_FALSE(is_idempotent(method));
  }
}

TEST_CASE("proxy: the upstream target is the raw path and query below /api/")
{
  auto plain = upstream_target("/api/v1/claim", "/api/v1/claim?wait=25");
  REQUIRE(plain);
  CHECK(*plain == "/api/v1/claim?wait=25");
  // Percent-encoding is passed on as the client sent it.
  auto encoded = upstream_target("/api/v1/packages/dev-libs/foo-1", "/api/v1/packages/dev-libs%2Ffoo-1?x=a%20b");
  REQUIRE(encoded);
  CHECK(*encoded == "/api/v1/packages/dev-libs%2Ffoo-1?x=a%20b");

  auto escape = upstream_target("/api/../staging/x/Packages", "/api/../staging/x/Packages");
  REQUIRE_FALSE(escape);
  CHECK(escape.error().kind == ErrorKind::invalid);
  CHECK_FALSE(upstream_target("/api/../production/", "/api/%2E%2E/production/"));
  CHECK_FALSE(upstream_target("/api/./v1/status", "/api/./v1/status"));
  CHECK_FALSE(upstream_target("/api/v1/status", "http://elsewhere/api/v1/status"));
  // The dashboard's page and files, and nothing else outside /api/.
  CHECK(upstream_target("/", "/").value_or("") == "/");
  CHECK(upstream_target("/dashboard/app.js", "/dashboard/app.js").value_or("") == "/dashboard/app.js");
  CHECK_FALSE(upstream_target("/dashboard/../staging/x/Packages", "/dashboard/../staging/x/Packages"));
  CHECK_FALSE(upstream_target("/staging/x/Packages", "/staging/x/Packages"));
  CHECK_FALSE(upstream_target("/", "http://elsewhere/"));
  CHECK_FALSE(upstream_target("/healthz", "/healthz"));
  // A dot inside a segment is fine.
  CHECK(upstream_target("/api/v1/packages/dev-libs/foo-1.2", "/api/v1/packages/dev-libs/foo-1.2"));
}

TEST_CASE("proxy: binhost file targets are production paths without dot segments")
{
  CHECK(binhost_file_target("/production/Packages", "/production/Packages?x=1").value() == "/production/Packages");
  CHECK(
    binhost_file_target("/p/desktop/production/cat/a-1.gpkg.tar", "/p/desktop/production/cat/a-1.gpkg.tar").value() ==
    "/p/desktop/production/cat/a-1.gpkg.tar");
  CHECK(binhost_file_target("/staging/x/Packages", "/staging/x/Packages").error().kind == ErrorKind::not_found);
  CHECK(binhost_file_target("/p//production/x", "/p//production/x").error().kind == ErrorKind::not_found);
  CHECK(binhost_file_target("/p/x/staging/y", "/p/x/staging/y").error().kind == ErrorKind::not_found);
  CHECK(binhost_file_target("/production/../api/v1/status", "/production/../api/v1/status").error().kind ==
        ErrorKind::invalid);
  CHECK(binhost_file_target("/production/../x", "/production/%2e%2e/x").error().kind == ErrorKind::invalid);
}

TEST_CASE("proxy: binhost file headers")
{
  httplib::Headers headers{{"Authorization", "Basic dTpw"},
                           {"Range", "bytes=0-9"},
                           {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"},
                           {"If-Range", "x"},
                           {"Cookie", "c=1"},
                           {"Host", "gw"}};
  const auto forwarded = forwarded_file_request_headers(headers);
  CHECK(forwarded.size() == 4);
  for (const auto& [name, value] : forwarded) {
    CHECK(name != "Cookie");
    CHECK(name != "Host");
  }
  CHECK(is_forwarded_file_response_header("Last-Modified"));
  CHECK(is_forwarded_file_response_header("content-range"));
  CHECK(is_forwarded_file_response_header("WWW-Authenticate"));
  CHECK_FALSE(is_forwarded_file_response_header("Set-Cookie"));
  CHECK_FALSE(is_forwarded_file_response_header("Content-Length"));
}
