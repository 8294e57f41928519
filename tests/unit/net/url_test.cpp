#include <doctest/doctest.h>

#include "net/url.hpp"

using namespace swarm;
using namespace swarm::net::url;

TEST_CASE("url: parse")
{
  auto plain = parse("http://127.0.0.1:8080/api/v1?x=1#frag");
  REQUIRE(plain.has_value());
  CHECK(plain->scheme == "http");
  CHECK(plain->host == "127.0.0.1");
  CHECK(plain->port == 8080);
  CHECK(plain->path == "/api/v1?x=1");
  CHECK(plain->userinfo.empty());
  CHECK(plain->origin() == "http://127.0.0.1:8080");

  auto secure = parse("HTTPS://drone:t%40k@orch.example");
  REQUIRE(secure.has_value());
  CHECK(secure->scheme == "https");
  CHECK(secure->port == 443);
  CHECK(secure->userinfo == "drone:t%40k");
  CHECK(secure->host == "orch.example");
  CHECK(secure->path.empty());

  auto v6 = parse("http://[::1]:9/x");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");
  CHECK(v6->origin() == "http://[::1]:9");
  CHECK(parse("http://h?q")->path == "/?q");

  CHECK_FALSE(parse("ftp://h/x").has_value());
  CHECK_FALSE(parse("/just/a/path").has_value());
  CHECK_FALSE(parse("http://:80/").has_value());
  CHECK_FALSE(parse("http://h:99999/").has_value());
}

TEST_CASE("url: join, userinfo and redaction")
{
  CHECK(join("http://h:1/api/", "/v1/status") == "http://h:1/api/v1/status");
  CHECK(join("http://h:1", "v1") == "http://h:1/v1");
  CHECK(join("http://h:1/", "") == "http://h:1/");
  CHECK(is_absolute("https://h/x"));
  CHECK_FALSE(is_absolute("/x"));
  CHECK_FALSE(is_absolute("Packages"));

  CHECK(with_userinfo("http://127.0.0.1:8080/staging/abc", "drone-1", "p@ss:w/rd").value() ==
        "http://drone-1:p%40ss%3Aw%2Frd@127.0.0.1:8080/staging/abc");
  CHECK(with_userinfo("http://old:x@h/p", "new", "y").value() == "http://new:y@h/p");
  CHECK_FALSE(with_userinfo("not a url", "a", "b").has_value());

  CHECK(redact("http://drone:secret@h:1/p?q") == "http://***@h:1/p?q");
  CHECK(redact("http://h:1/p@x") == "http://h:1/p@x");
  CHECK(redact("no url") == "no url");

  CHECK(percent_encode("a b/ü~") == "a%20b%2F%C3%BC~");
  CHECK(percent_decode("a%20b%2f").value() == "a b/");
  CHECK_FALSE(percent_decode("%2").has_value());
  CHECK_FALSE(percent_decode("%zz").has_value());
}

TEST_CASE("url: host and port")
{
  auto plain = parse_host_port("127.0.0.1:8080");
  REQUIRE(plain.has_value());
  CHECK(plain->host == "127.0.0.1");
  CHECK(plain->port == 8080);
  CHECK(parse_host_port("[::1]:80")->host == "::1");
  CHECK(parse_host_port("orch.example", 443)->port == 443);
  CHECK_FALSE(parse_host_port("orch.example").has_value());
  CHECK_FALSE(parse_host_port("h:").has_value());
  CHECK_FALSE(parse_host_port("h:0").has_value());
  CHECK_FALSE(parse_host_port("h:65536").has_value());
  CHECK(parse_listen_address("127.0.0.1:0")->port == 0);
  CHECK(parse_listen_address("[::1]:0")->host == "::1");
  CHECK(parse_listen_address("127.0.0.1:7000")->port == 7000);
  CHECK_FALSE(parse_listen_address("127.0.0.1").has_value());
  CHECK_FALSE(parse_listen_address(":0").has_value());
  CHECK_FALSE(parse_host_port(":80").has_value());
  CHECK_FALSE(parse_host_port("::1:80").has_value());
  CHECK_FALSE(parse_host_port("[::1").has_value());
  CHECK(format_host_port("::1", 80) == "[::1]:80");
  CHECK(format_host_port("h", 80) == "h:80");
}
