#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "test_server.hpp"

using namespace swarm;
using namespace swarm::net;
using swarm::net::test::TestServer;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;

namespace {

ClientOptions options_for(const TestServer& server, std::string token = "")
{
  ClientOptions options;
  options.base_url = server.url("/api");
  options.token = std::move(token);
  options.timeout = 5s;
  return options;
}

// A 64-bit FNV-style hash over 8-byte words, fed chunks of any size: enough to tell whether two
// 50 MB streams are the same bytes, and fast enough to keep the test short.
struct StreamHash {
  uint64_t value = 1469598103934665603ull;
  std::string carry;
  void update(std::string_view data)
  {
    if (!carry.empty()) {
      const size_t take = std::min(data.size(), 8 - carry.size());
      carry.append(data.substr(0, take));
      data.remove_prefix(take);
      if (carry.size() < 8) {
        return;
      }
      mix(carry.data());
      carry.clear();
    }
    while (data.size() >= 8) {
      mix(data.data());
      data.remove_prefix(8);
    }
    carry.assign(data);
  }
  uint64_t finish()
  {
    for (unsigned char c : carry) {
      value = (value ^ c) * 1099511628211ull;
    }
    carry.clear();
    return value;
  }
  void mix(const char* word)
  {
    uint64_t bits = 0;
    std::memcpy(&bits, word, 8);
    value = (value ^ bits) * 1099511628211ull;
  }
};

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
uint64_t status_kib(std::string_view field)
{
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      const auto parts = strings::split_any(line.substr(field.size() + 1));
      return parts.empty() ? 0 : strings::parse_uint(parts[0]).value_or(0);
    }
  }
  return 0;
}

std::vector<std::string> names_in(const sfs::path& dir)
{
  std::vector<std::string> names;
  for (const auto& entry : sfs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace

TEST_CASE("http_client: a 50 MB put_file streams through with flat memory")
{
  fs::TempDir dir("swarm-client");
  const auto file = dir / "big.gpkg.tar";
  constexpr size_t k_size = 50u << 20;
  StreamHash sent;
  {
    // Plain writes (no fsync): the test is about the transfer, not the disk.
    std::ofstream out(file, std::ios::binary);
    std::string block(1u << 20, '\0');
    for (size_t i = 0; i < block.size(); ++i) {
      block[i] = static_cast<char>((i * 31 + i / 251) & 0xff);
    }
    for (size_t offset = 0; offset < k_size; offset += block.size()) {
      std::memcpy(block.data(), &offset, sizeof(offset)); // every block differs
      sent.update(block);
      out.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
    REQUIRE(out.good());
  }
  const uint64_t sent_hash = sent.finish();

  TestServer server;
  server.server.put_stream("/api/leases/([0-9]+)/artifact", 64u << 20,
                           [](const httplib::Request& request, httplib::Response& response, RequestBody& body) {
                             StreamHash received;
                             auto size = body.read([&](std::string_view chunk) -> Result<> {
                               received.update(chunk);
                               return {};
                             });
                             if (!size) {
                               error_response(response, size.error());
                               return;
                             }
                             json_response(response, 201,
                                           {{"lease", request.matches[1].str()},
                                            {"size", *size},
                                            {"hash", received.finish()},
                                            {"declared", request.get_header_value("X-Swarm-Sha256")}});
                           });
  server.start();
  const HttpClient client(options_for(server, "drone-token"));

  // Reset the peak RSS so that VmHWM measures this transfer only.
  const uint64_t before_kib = status_kib("VmRSS");
  const bool peak_reset = static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5");
  uint64_t last_progress = 0;
  bool monotonic = true;
  auto answer =
    client.put_file("/leases/42/artifact", file, {{"X-Swarm-Sha256", "abc123"}}, [&](uint64_t done, uint64_t total) {
      monotonic = monotonic && done >= last_progress && (total == 0 || total == k_size);
      last_progress = done;
    });
  REQUIRE(answer.has_value());
  CHECK(answer->status == 201);
  const auto body = answer->json().value();
  CHECK(body["lease"] == "42");
  CHECK(body["size"] == k_size);
  CHECK(body["hash"] == sent_hash);
  CHECK(body["declared"] == "abc123");
  CHECK(monotonic);
  CHECK(last_progress == k_size);

  const uint64_t after_kib = peak_reset ? status_kib("VmHWM") : status_kib("VmRSS");
  const uint64_t growth_kib = after_kib > before_kib ? after_kib - before_kib : 0;
  CAPTURE(before_kib);
  CAPTURE(after_kib);
  // Buffering the body anywhere would add at least its 50 MiB; streaming adds a few MiB (more
  // under sanitizers, whose shadow memory counts in RSS).
  CHECK(growth_kib < 25u * 1024);
}

TEST_CASE("http_client: get_to_file streams to disk and leaves nothing on failure")
{
  fs::TempDir dir("swarm-client");
  const std::string content(300'000, 'p');
  TestServer server;
  server.server.get("/api/file", [&](const httplib::Request&, httplib::Response& response) {
    response.set_content(content, "application/octet-stream");
  });
  server.start();
  const HttpClient client(options_for(server));

  uint64_t progressed = 0;
  auto fetched = client.get_to_file("/file", dir / "out", [&](uint64_t done, uint64_t) { progressed = done; });
  REQUIRE(fetched.has_value());
  CHECK(fetched->status == 200);
  CHECK(fetched->body.empty());
  CHECK(fs::read_file(dir / "out") == content);
  CHECK(progressed == content.size());

  auto missing = client.get_to_file("/missing", dir / "not-there");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().kind == ErrorKind::not_found);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"out"});

  CallOptions raw;
  raw.on_http_error = OnHttpError::return_response;
  auto raw_missing = client.get_to_file("/missing", dir / "not-there", {}, raw);
  REQUIRE(raw_missing.has_value());
  CHECK(raw_missing->status == 404);
  CHECK(raw_missing->json().value()["kind"] == "not_found");
  CHECK(names_in(dir.path()) == std::vector<std::string>{"out"});

  auto no_dir = client.get_to_file("/file", dir / "missing-dir" / "x");
  REQUIRE_FALSE(no_dir.has_value());
  CHECK(no_dir.error().kind == ErrorKind::io);

  // A failing sink aborts the transfer with the sink's error.
  auto refused =
    client.get_to_sink("/file", [](std::string_view) -> Result<> { return fail(ErrorKind::io, "disk full"); });
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message == "disk full");
}

TEST_CASE("http_client: the token goes to our own server only")
{
  TestServer server;
  const auto echo_auth = [](const httplib::Request& request, httplib::Response& response) {
    json_response(response, 200, {{"authorization", request.get_header_value("Authorization")}});
  };
  server.server.get("/api/whoami", echo_auth);
  server.server.get("/elsewhere", echo_auth);
  server.server.get("/api-other", echo_auth);
  server.start();
  const HttpClient client(options_for(server, "t0k"));
  CHECK(client.get_json("/whoami").value()["authorization"] == "Bearer t0k");
  CHECK(client.get_json(server.url("/api/whoami")).value()["authorization"] == "Bearer t0k");
  CHECK(client.get_json(server.url("/elsewhere")).value()["authorization"] == "");
  CHECK(client.get_json(server.url("/api-other")).value()["authorization"] == "");
  // An explicit Authorization header wins.
  auto own = client.request("GET", "/whoami", {}, {{"Authorization", "Bearer other"}});
  CHECK(own->json().value()["authorization"] == "Bearer other");
  CHECK(client.url_for("/whoami") == server.url("/api/whoami"));
  CHECK(client.base_url() == server.url("/api"));
}

TEST_CASE("http_client: error answers that are not ours")
{
  TestServer server;
  server.server.get("/api/proxy", [](const httplib::Request&, httplib::Response& response) {
    response.status = 502;
    response.set_content("<html>Bad Gateway</html>\n", "text/html");
  });
  server.server.get("/api/teapot", [](const httplib::Request&, httplib::Response& response) { response.status = 418; });
  server.start();
  const HttpClient client(options_for(server));
  auto proxy = client.get_json("/proxy");
  REQUIRE_FALSE(proxy.has_value());
  CHECK(proxy.error().kind == ErrorKind::unavailable);
  CHECK(proxy.error().message.find("HTTP 502") != std::string::npos);
  CHECK(proxy.error().message.find("Bad Gateway") != std::string::npos);
  auto teapot = client.get_json("/teapot");
  REQUIRE_FALSE(teapot.has_value());
  CHECK(teapot.error().kind == ErrorKind::invalid);
}

TEST_CASE("http_client: error_from_response")
{
  Response response;
  response.status = 500;
  response.body = R"({"error": "disk full", "kind": "io"})";
  Error error = error_from_response(response, "PUT", "http://u:secret@h:1/x");
  CHECK(error.kind == ErrorKind::io); // the kind tells io from internal
  CHECK(error.message == "disk full");
  response.body = "";
  response.status = 401;
  error = error_from_response(response, "PUT", "http://u:secret@h:1/x");
  CHECK(error.kind == ErrorKind::unauthorized);
  CHECK(error.message == "HTTP 401 from PUT http://***@h:1/x");
}

TEST_CASE("http_client: timeouts, per-call overrides for long-polls, and a dead server")
{
  TestServer server;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  server.server.post("/api/claim", [&](const httplib::Request& request, httplib::Response& response) {
    const auto wait_ms = strings::parse_int(request.get_param_value("wait_ms")).value_or(0);
    released.wait_for(std::chrono::milliseconds(wait_ms));
    json_response(response, 200, {{"lease", nullptr}});
  });
  server.start();
  ClientOptions options = options_for(server);
  options.timeout = 100ms;
  const HttpClient client(options);

  auto timed_out = client.post_json("/claim?wait_ms=2000", json::object());
  REQUIRE_FALSE(timed_out.has_value());
  CHECK(timed_out.error().kind == ErrorKind::unavailable);
  CHECK(timed_out.error().message.find("timed out") != std::string::npos);

  CallOptions long_poll;
  long_poll.timeout = 3s;
  auto waited = client.post_json("/claim?wait_ms=250", json::object(), long_poll);
  REQUIRE(waited.has_value());
  CHECK((*waited)["lease"].is_null());
  release.set_value(); // frees the handler still waiting for the timed-out call

  server.server.stop();
  auto refused = client.get_json("/status");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::unavailable);
  CHECK(refused.error().message.find(fmt::format("127.0.0.1:{}", server.port)) != std::string::npos);

  const HttpClient bad_scheme(ClientOptions{.base_url = fmt::format("gopher://127.0.0.1:{}", server.port),
                                            .token = "",
                                            .timeout = 1s,
                                            .connect_timeout = 1s,
                                            .ca_file = ""});
  CHECK_FALSE(bad_scheme.get_json("/x").has_value());
}

TEST_CASE("http_client: methods, headers, raw answers and size limits")
{
  TestServer server;
  server.server.put("/api/thing", [](const httplib::Request& request, httplib::Response& response) {
    response.set_header("X-Seen", request.get_header_value("X-Custom"));
    json_response(response, 200, {{"method", request.method}, {"body", request.body}});
  });
  server.server.del("/api/thing", [](const httplib::Request& request, httplib::Response& response) {
    json_response(response, 200, {{"method", request.method}, {"body", request.body}});
  });
  server.server.get("/api/big", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(100'000, 'b'), "text/plain");
  });
  server.start();
  const HttpClient client(options_for(server));
  auto put = client.request("PUT", "/thing", "payload", {{"X-Custom", "yes"}});
  REQUIRE(put.has_value());
  CHECK(put->json().value() == json{{"method", "PUT"}, {"body", "payload"}});
  CHECK(put->header("x-seen") == "yes");
  CHECK(put->header("X-SEEN") == "yes");
  CHECK(put->header("absent").empty());
  auto del = client.request("DELETE", "/thing");
  REQUIRE(del.has_value());
  CHECK(del->json().value() == json{{"method", "DELETE"}, {"body", ""}});

  CallOptions small;
  small.max_response_bytes = 1000;
  auto big = client.request("GET", "/big", {}, {}, small);
  REQUIRE_FALSE(big.has_value());
  CHECK(big.error().kind == ErrorKind::too_large);
  CHECK(client.request("GET", "/big")->body.size() == 100'000);
}

TEST_CASE("http_client: one client shared by several threads")
{
  TestServer server;
  std::atomic<int> hits{0};
  server.server.post("/api/heartbeat", [&](const httplib::Request& request, httplib::Response& response) {
    ++hits;
    json_response(response, 200, {{"echo", parse_json(request.body).value()["n"]}});
  });
  server.start();
  const HttpClient client(options_for(server, "tok"));
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const int n = t * 100 + i;
        auto answer = client.post_json("/heartbeat", {{"n", n}});
        if (answer && (*answer)["echo"] == n) {
          ++correct;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(correct == 60);
  CHECK(hits == 60);
}
