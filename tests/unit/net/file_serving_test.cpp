#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "core/fs.hpp"
#include "net/file_serving.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "test_server.hpp"

using namespace swarm;
using namespace swarm::net;
using swarm::net::test::raw_get;
using swarm::net::test::raw_status;
using swarm::net::test::TestServer;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;

namespace {

constexpr time_t k_mtime = 1'700'000'000; // Tue, 14 Nov 2023 22:13:20 GMT

void write_file(const sfs::path& path, std::string_view content)
{
  REQUIRE(fs::make_dirs(path.parent_path()));
  REQUIRE(fs::write_file_atomic(path, content));
  struct timespec times[2] = {{k_mtime, 0}, {k_mtime, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

// A binhost: root/{Packages, app-misc/foo/foo-1-1.gpkg.tar, sub/}, a file outside it, and
// symlinks inside pointing in and out.
struct Binhost {
  fs::TempDir dir{"swarm-files"};
  sfs::path root = dir / "root";
  TestServer server;
  HttpClient client{ClientOptions{.base_url = "", .token = "", .timeout = 5s, .connect_timeout = 5s, .ca_file = ""}};

  Binhost()
  {
    write_file(root / "Packages", "VERSION: 0\n");
    write_file(root / "app-misc" / "foo" / "foo-1-1.gpkg.tar", "0123456789");
    write_file(dir / "outside.txt", "secret");
    REQUIRE(fs::make_dirs(root / "sub"));
    sfs::create_symlink(dir / "outside.txt", root / "escape");
    sfs::create_symlink("app-misc/foo/foo-1-1.gpkg.tar", root / "inside-link");
    mount_files(server.server, "/binhost/", root);
    server.start();
    client = HttpClient(ClientOptions{
      .base_url = server.url("/binhost"), .token = "", .timeout = 5s, .connect_timeout = 5s, .ca_file = ""});
  }

  Result<Response> get(std::string_view path, HeaderList headers = {}, std::string_view method = "GET")
  {
    CallOptions call;
    call.on_http_error = OnHttpError::return_response;
    return client.request(method, path, {}, headers, call);
  }
};

} // namespace

TEST_CASE("file_serving: whole files with Last-Modified and content types")
{
  Binhost binhost;
  auto package = binhost.get("/app-misc/foo/foo-1-1.gpkg.tar");
  REQUIRE(package.has_value());
  CHECK(package->status == 200);
  CHECK(package->body == "0123456789");
  CHECK(package->header("Content-Type") == "application/octet-stream");
  CHECK(package->header("Content-Length") == "10");
  CHECK(package->header("Accept-Ranges") == "bytes");
  CHECK(package->header("Last-Modified") == "Tue, 14 Nov 2023 22:13:20 GMT");

  auto index = binhost.get("/Packages");
  REQUIRE(index.has_value());
  CHECK(index->status == 200);
  CHECK(index->body == "VERSION: 0\n");
  CHECK(index->header("Content-Type") == "text/plain");

  auto linked = binhost.get("/inside-link");
  REQUIRE(linked.has_value());
  CHECK(linked->status == 200);
  CHECK(linked->body == "0123456789");
}

TEST_CASE("file_serving: HEAD gives the headers without the body")
{
  Binhost binhost;
  auto head = binhost.get("/app-misc/foo/foo-1-1.gpkg.tar", {}, "HEAD");
  REQUIRE(head.has_value());
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->header("Content-Length") == "10");
  CHECK(head->header("Last-Modified") == "Tue, 14 Nov 2023 22:13:20 GMT");
  CHECK(binhost.get("/missing", {}, "HEAD")->status == 404);
}

TEST_CASE("file_serving: byte ranges")
{
  Binhost binhost;
  const std::string path = "/app-misc/foo/foo-1-1.gpkg.tar";
  struct Case {
    const char* range;
    int status;
    const char* body;
    const char* content_range;
  };
  for (const Case& c : {
         Case{"bytes=2-4", 206, "234", "bytes 2-4/10"}, Case{"bytes=7-", 206, "789", "bytes 7-9/10"},
         Case{"bytes=-3", 206, "789", "bytes 7-9/10"}, Case{"bytes=-30", 206, "0123456789", "bytes 0-9/10"},
         Case{"bytes=8-100", 206, "89", "bytes 8-9/10"}, Case{"bytes=0-0", 206, "0", "bytes 0-0/10"},
         Case{"bytes=10-", 416, nullptr, "bytes */10"}, Case{"bytes=20-30", 416, nullptr, "bytes */10"},
         Case{"bytes=-0", 416, nullptr, "bytes */10"},
         Case{"bytes=0-1,4-5", 200, "0123456789", ""}, // several ranges: ignored
       }) {
    CAPTURE(c.range);
    auto answer = binhost.get(path, {{"Range", c.range}});
    REQUIRE(answer.has_value());
    CHECK(answer->status == c.status);
    if (c.body != nullptr) {
      CHECK(answer->body == c.body);
      CHECK(answer->header("Content-Length") == std::to_string(std::string_view(c.body).size()));
    } else {
      CHECK(answer->json().value()["kind"] == "invalid");
    }
    CHECK(answer->header("Content-Range") == c.content_range);
  }
  // Invalid Range syntax is ignored (RFC 9110 14.2): the whole file, never 416.
  for (const char* invalid : {"bytes=abc", "bytes=5-3", "items=0-1", "bytes=", "bytes=-", "bytes=1-2-3"}) {
    CAPTURE(invalid);
    auto whole = binhost.get(path, {{"Range", invalid}});
    REQUIRE(whole.has_value());
    CHECK(whole->status == 200);
    CHECK(whole->body == "0123456789");
    CHECK(whole->header("Content-Range").empty());
  }
  // Range is defined for GET only: HEAD answers as a whole GET would (RFC 9110 14.2).
  auto head = binhost.get(path, {{"Range", "bytes=2-4"}}, "HEAD");
  REQUIRE(head.has_value());
  CHECK(head->status == 200);
  CHECK(head->header("Content-Length") == "10");
  CHECK(head->body.empty());
  // If-Range with the current date honours the range; with another date it sends everything.
  CHECK(binhost.get(path, {{"Range", "bytes=2-4"}, {"If-Range", "Tue, 14 Nov 2023 22:13:20 GMT"}})->status == 206);
  auto changed = binhost.get(path, {{"Range", "bytes=2-4"}, {"If-Range", "Mon, 13 Nov 2023 22:13:20 GMT"}});
  CHECK(changed->status == 200);
  CHECK(changed->body == "0123456789");
}

TEST_CASE("file_serving: If-Modified-Since")
{
  Binhost binhost;
  const std::string path = "/Packages";
  auto same = binhost.get(path, {{"If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT"}});
  REQUIRE(same.has_value());
  CHECK(same->status == 304);
  CHECK(same->body.empty());
  CHECK(binhost.get(path, {{"If-Modified-Since", "Wed, 15 Nov 2023 00:00:00 GMT"}})->status == 304);
  auto older = binhost.get(path, {{"If-Modified-Since", "Tue, 14 Nov 2023 22:13:19 GMT"}});
  CHECK(older->status == 200);
  CHECK(older->body == "VERSION: 0\n");
  CHECK(binhost.get(path, {{"If-Modified-Since", "not a date"}})->status == 200);
  CHECK(binhost.get(path, {{"If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 XYZ"}})->status == 200);
  CHECK(binhost.get(path, {{"If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT, Wed"}})->status == 200);
  // If-None-Match present: If-Modified-Since is ignored (RFC 9110 13.1.3).
  CHECK(
    binhost.get(path, {{"If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT"}, {"If-None-Match", "\"x\""}})->status ==
    200);
}

TEST_CASE("file_serving: traversal, absolute paths, escapes and directories are refused")
{
  Binhost binhost;
  const int port = binhost.server.port;
  CHECK(raw_status(raw_get(port, "/binhost/Packages")) == 200);
  for (const char* target :
       {"/binhost/../outside.txt", "/binhost/%2e%2e/outside.txt", "/binhost/%2E%2E/outside.txt",
        "/binhost/app-misc/../../outside.txt", "/binhost/app-misc/foo/%2e%2e/%2e%2e/../outside.txt",
        "/binhost//etc/passwd", "/binhost/%2fetc/passwd"}) {
    CAPTURE(target);
    const std::string answer = raw_get(port, target);
    CHECK(raw_status(answer) == 400);
    CHECK(answer.find("secret") == std::string::npos);
  }
  for (const char* target :
       {"/binhost/escape", "/binhost/sub", "/binhost/sub/", "/binhost/", "/binhost/missing", "/binhost/app-misc"}) {
    CAPTURE(target);
    const std::string answer = raw_get(port, target);
    CHECK(raw_status(answer) == 404);
    CHECK(answer.find("secret") == std::string::npos);
  }
}

TEST_CASE("file_serving: a symlinked root is resolved per request, one version per response")
{
  fs::TempDir dir("swarm-files");
  const std::string a(1u << 20, 'A');
  const std::string b(1u << 20, 'B');
  write_file(dir / "releases" / "1" / "big.gpkg.tar", a);
  write_file(dir / "releases" / "1" / "id", "1");
  write_file(dir / "releases" / "2" / "big.gpkg.tar", b);
  write_file(dir / "releases" / "2" / "id", "2");
  REQUIRE(fs::replace_symlink_atomically("releases/1", dir / "production"));
  TestServer server;
  mount_files(server.server, "/production", dir / "production");
  server.start();
  const HttpClient client(ClientOptions{
    .base_url = server.url("/production"), .token = "", .timeout = 5s, .connect_timeout = 5s, .ca_file = ""});
  CHECK(client.request("GET", "/id")->body == "1");
  REQUIRE(fs::replace_symlink_atomically("releases/2", dir / "production"));
  CHECK(client.request("GET", "/id")->body == "2");

  // Switch the release while a response is streaming: it stays the version it started as.
  std::string received;
  bool switched = false;
  auto streamed = client.get_to_sink("/big.gpkg.tar", [&](std::string_view chunk) -> Result<> {
    if (!switched) {
      switched = true;
      if (auto swapped = fs::replace_symlink_atomically("releases/1", dir / "production"); !swapped) {
        return swapped;
      }
    }
    received.append(chunk);
    return {};
  });
  REQUIRE(streamed.has_value());
  CHECK(switched);
  CHECK(received.size() == b.size());
  CHECK(received == b);
  CHECK(client.request("GET", "/id")->body == "1");

  // Nothing published yet: 404, not a crash.
  REQUIRE(fs::replace_symlink_atomically("releases/none", dir / "production"));
  CHECK(client.request("GET", "/id", {}, {}, CallOptions{.timeout = {}, .on_http_error = OnHttpError::return_response})
          ->status == 404);
}

TEST_CASE("file_serving: a gate decides who may fetch")
{
  fs::TempDir dir("swarm-files");
  write_file(dir / "Packages", "x");
  TestServer server;
  mount_files(server.server, "/staging", dir.path(), [](const httplib::Request& request, httplib::Response& response) {
    const auto found = credential(request);
    if (!found || found->token != "drone-token") {
      error_response(response, Error{ErrorKind::unauthorized, "drone token required"});
      return false;
    }
    return true;
  });
  server.start();
  const HttpClient anonymous(
    ClientOptions{.base_url = server.url(), .token = "", .timeout = 5s, .connect_timeout = 5s, .ca_file = ""});
  auto refused = anonymous.request("GET", "/staging/Packages");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::unauthorized);
  auto allowed =
    anonymous.request("GET", fmt::format("http://drone:drone-token@127.0.0.1:{}/staging/Packages", server.port));
  REQUIRE(allowed.has_value());
  CHECK(allowed->body == "x");
}

TEST_CASE("file_serving: HTTP dates")
{
  const auto epoch = std::chrono::system_clock::from_time_t(784111777);
  CHECK(http_date(epoch) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == epoch);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == epoch);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == epoch);
  CHECK(parse_http_date(http_date(std::chrono::system_clock::from_time_t(k_mtime))) ==
        std::chrono::system_clock::from_time_t(k_mtime));
  CHECK_FALSE(parse_http_date("yesterday").has_value());
  CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC").has_value());
  CHECK_FALSE(parse_http_date("Sun, 06 Xyz 1994 08:49:37 GMT").has_value());
}

TEST_CASE("file_serving: range header parsing")
{
  using Kind = RangeRequest::Kind;
  CHECK(parse_range("bytes=0-99", 1000).kind == Kind::partial);
  CHECK(parse_range("bytes=0-99", 1000).length == 100);
  CHECK(parse_range("bytes=990-", 1000).offset == 990);
  CHECK(parse_range("bytes=990-", 1000).length == 10);
  CHECK(parse_range("bytes=-1", 1000).offset == 999);
  CHECK(parse_range("bytes=1000-", 1000).kind == Kind::unsatisfiable);
  CHECK(parse_range("bytes=0-", 0).kind == Kind::unsatisfiable);
  CHECK(parse_range("bytes=-5", 0).kind == Kind::unsatisfiable);
  CHECK(parse_range("bytes=5-2", 1000).kind == Kind::whole);
  CHECK(parse_range("items=0-1", 1000).kind == Kind::whole);
  CHECK(parse_range("bytes=a-b", 1000).kind == Kind::whole);
  CHECK(parse_range("bytes=0-1,5-6", 1000).kind == Kind::whole);
}
