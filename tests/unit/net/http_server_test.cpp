#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/subprocess.hpp"
#include "net/http_client.hpp"
#include "net/http_error.hpp"
#include "net/http_server.hpp"
#include "test_server.hpp"

using namespace swarm;
using namespace swarm::net;
using swarm::net::test::TestServer;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

CallOptions raw_call()
{
  CallOptions call;
  call.on_http_error = OnHttpError::return_response;
  return call;
}

} // namespace

TEST_CASE("http_server: JSON round trip and port 0 gives the real port")
{
  TestServer server;
  server.server.post("/api/echo", [](const httplib::Request& request, httplib::Response& response) {
    auto body = parse_json(request.body);
    if (!body) {
      error_response(response, body.error());
      return;
    }
    (*body)["echoed"] = true;
    json_response(response, 200, *body);
  });
  server.server.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    json_response(response, 200, {{"status", "ok"}});
  });
  server.start();
  CHECK(server.port > 0);
  CHECK(server.server.port() == server.port);
  CHECK_FALSE(server.server.is_tls());

  const auto client = server.client();
  auto answer = client.post_json("/api/echo", {{"name", "drone-1"}, {"slots", 4}});
  REQUIRE(answer.has_value());
  CHECK((*answer)["name"] == "drone-1");
  CHECK((*answer)["slots"] == 4);
  CHECK((*answer)["echoed"] == true);
  CHECK(client.get_json("/healthz").value()["status"] == "ok");

  auto not_json = client.request("POST", "/api/echo", "{broken", {{"Content-Type", "application/json"}});
  REQUIRE_FALSE(not_json.has_value());
  CHECK(not_json.error().kind == ErrorKind::invalid);
  CHECK(not_json.error().message.find("not valid JSON") != std::string::npos);
}

TEST_CASE("http_server: every ErrorKind survives the round trip")
{
  TestServer server;
  server.server.get("/fail/(\\w+)", [](const httplib::Request& request, httplib::Response& response) {
    const auto kind = kind_from_name(request.matches[1].str());
    error_response(response, Error{kind.value_or(ErrorKind::internal), "it went wrong: " + request.matches[1].str()});
  });
  server.start();
  const auto client = server.client();
  for (const ErrorKind kind :
       {ErrorKind::invalid, ErrorKind::unauthorized, ErrorKind::forbidden, ErrorKind::not_found, ErrorKind::conflict,
        ErrorKind::too_large, ErrorKind::io, ErrorKind::unavailable, ErrorKind::internal}) {
    const std::string name(kind_name(kind));
    CAPTURE(name);
    auto mapped = client.get_json("/fail/" + name);
    REQUIRE_FALSE(mapped.has_value());
    CHECK(mapped.error().kind == kind);
    CHECK(mapped.error().message == "it went wrong: " + name);

    auto raw = client.request("GET", "/fail/" + name, {}, {}, raw_call());
    REQUIRE(raw.has_value());
    CHECK(raw->status == status_for(kind));
    CHECK(raw->header("content-type") == "application/json");
    CHECK(raw->json().value()["kind"] == name);
  }
  auto unauthorized = client.request("GET", "/fail/unauthorized", {}, {}, raw_call());
  CHECK(unauthorized->header("WWW-Authenticate") == "Basic realm=\"swarm\"");
}

TEST_CASE("http_server: unknown routes answer JSON 404 without reading bodies")
{
  TestServer server;
  server.start();
  const auto client = server.client();
  auto get = client.get_json("/nope");
  REQUIRE_FALSE(get.has_value());
  CHECK(get.error().kind == ErrorKind::not_found);

  auto post = client.request("POST", "/nope", std::string(100'000, 'x'), {}, raw_call());
  REQUIRE(post.has_value());
  CHECK(post->status == 404);
  CHECK(post->json().value()["kind"] == "not_found");
  CHECK(client.request("PUT", "/nope", "x", {}, raw_call())->status == 404);
  CHECK(client.request("DELETE", "/nope", {}, {}, raw_call())->status == 404);
}

TEST_CASE("http_server: an exception in a handler is a logged JSON 500 and the server keeps serving")
{
  log::set_level(log::Level::error);
  TestServer server;
  server.server.get("/throw", [](const httplib::Request&, httplib::Response& response) {
    response.set_header("X-Half-Done", "yes");
    throw std::runtime_error("boom");
  });
  server.server.post("/fatal", [](const httplib::Request&, httplib::Response&) {
    throw Fatal{Error{ErrorKind::conflict, "plan changed under us"}};
  });
  server.server.get("/int", [](const httplib::Request&, httplib::Response&) { throw 42; });
  server.server.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    json_response(response, 200, {{"status", "ok"}});
  });
  server.start();
  const auto client = server.client();
  for (int i = 0; i < 3; ++i) {
    auto raw = client.request("GET", "/throw", {}, {}, raw_call());
    REQUIRE(raw.has_value());
    CHECK(raw->status == 500);
    CHECK(raw->json().value() == json{{"error", "internal error"}, {"kind", "internal"}});
    CHECK(raw->header("X-Half-Done").empty()); // a half-built answer is discarded
  }
  auto fatal = client.post_json("/fatal", json::object());
  REQUIRE_FALSE(fatal.has_value());
  CHECK(fatal.error().kind == ErrorKind::conflict);
  CHECK(fatal.error().message == "plan changed under us");
  CHECK(client.request("GET", "/int", {}, {}, raw_call())->status == 500);
  CHECK(client.get_json("/healthz").value()["status"] == "ok");
}

TEST_CASE("http_server: Bearer and Basic credentials are extracted")
{
  TestServer server;
  server.server.get("/whoami", [](const httplib::Request& request, httplib::Response& response) {
    const auto found = credential(request);
    if (!found) {
      error_response(response, Error{ErrorKind::unauthorized, "credentials required"});
      return;
    }
    json_response(response, 200,
                  {{"scheme", found->scheme == Credential::Scheme::bearer ? "bearer" : "basic"},
                   {"user", found->user},
                   {"token", found->token}});
  });
  server.start();

  auto bearer = server.client("tok-123").get_json("/whoami");
  REQUIRE(bearer.has_value());
  CHECK(*bearer == json{{"scheme", "bearer"}, {"user", ""}, {"token", "tok-123"}});

  const auto anonymous = server.client();
  // "drone-1:pa:ss" in base64: the password may itself contain ':'.
  auto basic = anonymous.request("GET", "/whoami", {}, {{"Authorization", "Basic ZHJvbmUtMTpwYTpzcw=="}});
  REQUIRE(basic.has_value());
  CHECK(basic->json().value() == json{{"scheme", "basic"}, {"user", "drone-1"}, {"token", "pa:ss"}});

  // What Portage does with a binhost URL carrying userinfo.
  auto from_url = anonymous.request("GET", fmt::format("http://drone-2:s3cret@127.0.0.1:{}/whoami", server.port));
  REQUIRE(from_url.has_value());
  CHECK(from_url->json().value() == json{{"scheme", "basic"}, {"user", "drone-2"}, {"token", "s3cret"}});

  for (const char* bad : {"Basic !!!notbase64", "Basic ZHJvbmU=", "Bearer", "Token abc", ""}) {
    CAPTURE(bad);
    HeaderList headers;
    if (*bad != '\0') {
      headers.emplace_back("Authorization", bad);
    }
    auto answer = anonymous.request("GET", "/whoami", {}, headers);
    REQUIRE_FALSE(answer.has_value());
    CHECK(answer.error().kind == ErrorKind::unauthorized);
  }
}

TEST_CASE("http_server: streamed bodies obey their limit with 413")
{
  TestServer server;
  std::atomic<uint64_t> received{0};
  server.server.put_stream("/upload", 1000,
                           [&](const httplib::Request&, httplib::Response& response, RequestBody& body) {
                             auto size = body.read([&](std::string_view chunk) -> Result<> {
                               received += chunk.size();
                               return {};
                             });
                             if (!size) {
                               error_response(response, size.error());
                               return;
                             }
                             json_response(response, 201, {{"size", *size}});
                           });
  server.server.post_stream("/chunked", 1000,
                            [](const httplib::Request&, httplib::Response& response, RequestBody& body) {
                              auto text = body.read_all();
                              if (!text) {
                                error_response(response, text.error());
                                return;
                              }
                              json_response(response, 200, {{"size", text->size()}});
                            });
  server.server.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    json_response(response, 200, {{"status", "ok"}});
  });
  server.start();
  const auto client = server.client();

  CHECK(client.request("PUT", "/upload", std::string(1000, 'a'))->json().value()["size"] == 1000);
  CHECK(received == 1000);

  // Small enough to be sent at once: refused on Content-Length, drained, answered.
  auto small = client.request("PUT", "/upload", std::string(5000, 'a'));
  REQUIRE_FALSE(small.has_value());
  CHECK(small.error().kind == ErrorKind::too_large);
  CHECK(received == 1000); // nothing of it reached the sink

  // Chunked (no Content-Length): the limit is found while reading.
  httplib::Client raw("127.0.0.1", server.port);
  const std::string chunk(700, 'b');
  auto chunked = raw.Post(
    "/chunked",
    [&](size_t offset, httplib::DataSink& sink) {
      if (offset < 7 * chunk.size()) {
        sink.write(chunk.data(), chunk.size());
      } else {
        sink.done();
      }
      return true;
    },
    "application/octet-stream");
  REQUIRE(chunked);
  CHECK(chunked->status == 413);
  CHECK(json::parse(chunked->body)["kind"] == "too_large");

  auto chunked_ok = raw.Post(
    "/chunked",
    [&](size_t offset, httplib::DataSink& sink) {
      if (offset == 0) {
        sink.write(chunk.data(), chunk.size());
      } else {
        sink.done();
      }
      return true;
    },
    "application/octet-stream");
  REQUIRE(chunked_ok);
  CHECK(chunked_ok->status == 200);
  CHECK(json::parse(chunked_ok->body)["size"] == 700);

  CHECK(client.get_json("/healthz").value()["status"] == "ok");
}

TEST_CASE("http_server: a large announced body is refused before it is sent")
{
  TestServer server;
  std::atomic<bool> handler_ran{false};
  server.server.put_stream("/upload", 1u << 20,
                           [&](const httplib::Request&, httplib::Response& response, RequestBody& body) {
                             handler_ran = true;
                             auto size = body.read([](std::string_view) -> Result<> { return {}; });
                             if (!size) {
                               error_response(response, size.error());
                               return;
                             }
                             json_response(response, 201, {{"size", *size}});
                           });
  server.start();
  // curl announces bodies over 1 MiB with "Expect: 100-continue"; the server answers 413 at
  // once, the handler never runs and curl never sends the body.
  const auto started = std::chrono::steady_clock::now();
  const auto client = server.client();
  fs::TempDir dir("swarm-http");
  {
    auto writer = fs::AtomicFileWriter::create(dir / "big");
    REQUIRE(writer.has_value());
    const std::string block(1u << 20, 'z');
    for (int i = 0; i < 3; ++i) {
      REQUIRE(writer->write(block));
    }
    REQUIRE(writer->commit());
  }
  auto upload = client.put_file("/upload", dir / "big");
  REQUIRE_FALSE(upload.has_value());
  CHECK(upload.error().kind == ErrorKind::too_large);
  CHECK(upload.error().message.find("larger than the limit") != std::string::npos);
  CHECK_FALSE(handler_ran);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("http_server: buffered bodies are limited by max_body_bytes")
{
  ServerOptions options;
  options.max_body_bytes = 100;
  TestServer server(options);
  server.server.post("/json", [](const httplib::Request& request, httplib::Response& response) {
    json_response(response, 200, {{"size", request.body.size()}});
  });
  server.start();
  const auto client = server.client();
  CHECK(client.request("POST", "/json", std::string(100, 'x'))->json().value()["size"] == 100);
  auto refused = client.request("POST", "/json", std::string(101, 'x'));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::too_large);
  CHECK(client.request("POST", "/json", "")->json().value()["size"] == 0);
}

TEST_CASE("http_server: peer address, and a long-poll holds one pool thread only")
{
  ServerOptions options;
  options.threads = 2;
  TestServer server(options);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> waiting;
  server.server.get("/claim", [&](const httplib::Request&, httplib::Response& response) {
    waiting.set_value();
    released.wait();
    json_response(response, 200, {{"lease", nullptr}});
  });
  server.server.get("/peer", [](const httplib::Request& request, httplib::Response& response) {
    json_response(response, 200, {{"peer", peer_address(request)}});
  });
  server.start();
  const auto client = server.client();
  auto poll = std::async(std::launch::async, [&] { return client.get_json("/claim"); });
  waiting.get_future().wait();
  auto peer = client.get_json("/peer");
  REQUIRE(peer.has_value());
  CHECK((*peer)["peer"].get<std::string>().starts_with("127.0.0.1:"));
  release.set_value();
  auto claimed = poll.get();
  REQUIRE(claimed.has_value());
  CHECK((*claimed)["lease"].is_null());
  // The workers are joined before the promises above go: the handler's last touch of `released`
  // reached this thread only through a socket, which TSan cannot see.
  server.server.stop();
}

TEST_CASE("http_server: a port in use is an error, stop is clean and idempotent")
{
  TestServer first;
  first.start();
  HttpServer second;
  auto taken = second.bind("127.0.0.1", first.port);
  REQUIRE_FALSE(taken.has_value());
  CHECK(taken.error().kind == ErrorKind::io);
  CHECK(taken.error().message.find(fmt::format("127.0.0.1:{}", first.port)) != std::string::npos);

  first.server.stop();
  first.server.stop();
  const auto client = first.client();
  auto refused = client.get_json("/");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::unavailable);

  // Bound but never served: stopping must not hang, and the port is released.
  HttpServer idle;
  auto port = idle.bind("127.0.0.1", 0);
  REQUIRE(port.has_value());
  idle.stop();
  HttpServer again;
  CHECK(again.bind("127.0.0.1", *port).has_value());
}

TEST_CASE("http_server: run() serves on the calling thread until stopped")
{
  HttpServer server;
  server.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    json_response(response, 200, {{"status", "ok"}});
  });
  auto port = server.bind("127.0.0.1", 0);
  REQUIRE(port.has_value());
  auto serving = std::async(std::launch::async, [&] { return server.run(); });
  ClientOptions options;
  options.base_url = fmt::format("http://127.0.0.1:{}", *port);
  CHECK(HttpClient(options).get_json("/healthz").value()["status"] == "ok");
  server.stop();
  CHECK(serving.get().has_value());
}

TEST_CASE("http_server: HTTPS with a certificate and key")
{
  fs::TempDir dir("swarm-tls");
  const auto cert = dir / "cert.pem";
  const auto key = dir / "key.pem";
  auto made =
    subprocess::run_capture({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                             "-nodes", "-keyout", key.string(), "-out", cert.string(), "-days", "1", "-subj",
                             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  if (!made || !made->success()) {
    MESSAGE("openssl is not available: TLS test skipped");
    return;
  }
  ServerOptions options;
  options.tls_cert_file = cert.string();
  options.tls_key_file = key.string();
  HttpServer server(options);
  CHECK(server.is_tls());
  server.get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    json_response(response, 200, {{"status", "ok"}});
  });
  auto port = server.bind("127.0.0.1", 0);
  REQUIRE(port.has_value());
  REQUIRE(server.listen_in_thread().has_value());

  ClientOptions client_options;
  client_options.base_url = fmt::format("https://127.0.0.1:{}", *port);
  client_options.ca_file = cert.string();
  CHECK(HttpClient(client_options).get_json("/healthz").value()["status"] == "ok");

  client_options.ca_file.clear(); // not trusted by the system
  auto untrusted = HttpClient(client_options).get_json("/healthz");
  REQUIRE_FALSE(untrusted.has_value());
  CHECK(untrusted.error().kind == ErrorKind::unavailable);

  ServerOptions broken;
  broken.tls_cert_file = (dir / "missing.pem").string();
  broken.tls_key_file = key.string();
  HttpServer bad(broken);
  auto refused = bad.bind("127.0.0.1", 0);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::invalid);
}
