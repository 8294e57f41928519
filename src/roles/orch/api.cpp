#include "roles/orch/api.hpp"
#include "roles/orch/api_context.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "core/secure.hpp"
#include "core/strings.hpp"
#include "net/file_serving.hpp"
#include "net/protocol_version.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "portage/plan.hpp"

namespace swarm::roles::orch {

using nlohmann::json;

namespace {

constexpr uint64_t k_log_chunk_limit = 1u << 20;
constexpr uint64_t k_log_file_limit = 64u << 20;

template <class T>
Result<T> field(const json& body, const char* key, T fallback)
{
  if (!body.contains(key) || body[key].is_null()) {
    return fallback;
  }
  try {
    return body[key].get<T>();
  } catch (const json::exception&) {
    return fail(ErrorKind::invalid, "field '{}' has the wrong type", key);
  }
}

// Streams an upload into .incoming/, checks the declared hashes and the GPKG, and returns what
// the coordinator needs to take it. The file is removed on every failure.
Result<ArtifactInfo> ingest(net::RequestBody& body, const httplib::Request& request, const UploadTicket& ticket,
                            const std::string& lease, const ApiOptions& options, int& status)
{
  const auto declared_sha256 = lower(request.get_header_value("X-Swarm-Sha256"));
  const auto declared_xxh3 = lower(request.get_header_value("X-Swarm-Xxh3-128"));
  if (declared_sha256.size() != 64 || declared_xxh3.size() != 32) {
    return fail(ErrorKind::invalid, "X-Swarm-Sha256 and X-Swarm-Xxh3-128 headers (hex) are required");
  }
  const auto path = options.incoming_dir / fmt::format("{}-{}.part", lease, random::hex_token(4));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return fail(ErrorKind::io, "cannot create {}: {}", path.string(), std::strerror(errno));
  }
  auto remove_file = [&] {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  };
  hash::MultiHasher hasher({hash::Algo::sha256, hash::Algo::xxh3_128});
  auto received = body.read([&](std::string_view chunk) -> Result<> {
    hasher.update(chunk);
    const char* data = chunk.data();
    size_t left = chunk.size();
    while (left > 0) {
      const auto written = ::write(fd, data, left);
      if (written < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail(ErrorKind::io, "writing the upload: {}", std::strerror(errno));
      }
      data += written;
      left -= static_cast<size_t>(written);
    }
    return {};
  });
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!received) {
    remove_file();
    return fail(received.error());
  }
  if (!synced) {
    remove_file();
    return fail(ErrorKind::io, "cannot fsync the upload");
  }
  const auto digests = hasher.finish();
  if (digests.at(hash::Algo::sha256) != declared_sha256 || digests.at(hash::Algo::xxh3_128) != declared_xxh3) {
    remove_file();
    return fail(ErrorKind::invalid,
                "hash mismatch: the upload does not match the declared X-Swarm-Sha256/X-Swarm-Xxh3-128 "
                "(received sha256 {})",
                digests.at(hash::Algo::sha256));
  }
  portage::GpkgOptions gpkg_options;
  gpkg_options.expect_cpv = ticket.cpv;
  gpkg_options.file_digests = {hash::Algo::md5, hash::Algo::sha1};
  auto report = portage::validate_gpkg(path, gpkg_options);
  if (!report) {
    remove_file();
    return fail(report.error());
  }
  if (!report->valid) {
    remove_file();
    status = 422;
    return fail(ErrorKind::invalid, "not a valid GPKG for {}: {}", ticket.cpv, report->reason);
  }
  const auto build_id = strings::parse_int(report->metadata["BUILD_ID"]);
  if (!build_id || *build_id < 1) {
    remove_file();
    status = 422;
    return fail(ErrorKind::invalid, "the GPKG has no BUILD_ID (build with FEATURES=binpkg-multi-instance)");
  }
  const auto pf = report->metadata["PF"];
  ArtifactInfo artifact;
  artifact.incoming_path = path;
  artifact.relative_path = fmt::format("{}/{}/{}-{}.gpkg.tar", ticket.category, ticket.package, pf, *build_id);
  artifact.sha256 = digests.at(hash::Algo::sha256);
  artifact.size = report->size;
  artifact.build_id = *build_id;
  auto entry = portage::index_entry_for_gpkg(path, artifact.relative_path, *report);
  if (!entry) {
    remove_file();
    return fail(entry.error());
  }
  artifact.index_entry = json::object();
  for (const auto& [key, value] : *entry) {
    artifact.index_entry[key] = value;
  }
  return artifact;
}

} // namespace

std::string staging_url(const ApiOptions& options)
{
  return fmt::format("{}/staging/{}", options.public_url, options.orch_id);
}

std::string production_url(const ApiOptions& options)
{
  return options.public_url + "/production";
}

void install_routes(net::HttpServer& server, Coordinator& coordinator, const ApiOptions& options)
{
  auto api = std::make_shared<Api>(Api{coordinator, options});
  install_release_routes(server, api);
  install_operator_routes(server, api);

  server.get("/healthz", [api](const httplib::Request&, httplib::Response& response) {
    auto body = api->info();
    body.erase("data_dir");
    body["status"] = "ok";
    body["role"] = "orch";
    net::json_response(response, 200, body);
  });

  server.get("/api/v1/info", [api](const httplib::Request& request, httplib::Response& response) {
    if (api->reader(request, response)) {
      net::json_response(response, 200, api->info());
    }
  });

  // --- drones ---
  server.post("/api/v1/drones/register", [api](const httplib::Request& request, httplib::Response& response) {
    auto drone = api->drone(request, response);
    if (!drone) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    DroneHello hello;
    auto name = field<std::string>(*body, "name", "");
    auto protocol = field<int>(*body, "protocol", 0);
    auto version = field<std::string>(*body, "version", "");
    auto cores = field<int>(*body, "cores", 0);
    auto slots = field<int>(*body, "slots", 1);
    auto ram = field<uint64_t>(*body, "ram_bytes", 0);
    auto disk = field<uint64_t>(*body, "disk_free_bytes", 0);
    auto tree = field<std::string>(*body, "tree_timestamp", "");
    for (const auto* error :
         {name ? nullptr : &name.error(), protocol ? nullptr : &protocol.error(), version ? nullptr : &version.error(),
          cores ? nullptr : &cores.error(), slots ? nullptr : &slots.error(), ram ? nullptr : &ram.error(),
          disk ? nullptr : &disk.error(), tree ? nullptr : &tree.error()}) {
      if (error) {
        return net::error_response(response, *error);
      }
    }
    if (*protocol != net::k_protocol_version) {
      return net::error_response(
        response, {ErrorKind::conflict, fmt::format("protocol {} is not supported (this orchestrator speaks {})",
                                                    *protocol, net::k_protocol_version)});
    }
    hello = DroneHello{*name, *protocol, *version, *cores, *slots, *ram, *disk, *tree};
    auto result = api->coordinator.register_drone(*drone, hello);
    if (result) {
      (*result)["staging_url"] = staging_url(api->options);
      for (auto& lease : (*result)["leases"]) {
        lease["staging_url"] = staging_url(api->options);
      }
    }
    reply(response, result);
  });

  server.post("/api/v1/drones/heartbeat", [api](const httplib::Request& request, httplib::Response& response) {
    auto drone = api->drone(request, response);
    if (!drone) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    DroneBeat beat;
    try {
      beat.cpu_percent = body->value("cpu_percent", 0.0);
      beat.mem_percent = body->value("mem_percent", 0.0);
      beat.load1 = body->value("load1", 0.0);
      beat.disk_free_bytes = body->value("disk_free_bytes", uint64_t{0});
      if (body->contains("tree_timestamp") && (*body)["tree_timestamp"].is_string()) {
        beat.tree_timestamp = (*body)["tree_timestamp"].get<std::string>();
      }
      beat.leases = body->value("leases", std::vector<std::string>{});
    } catch (const json::exception&) {
      return net::error_response(response, {ErrorKind::invalid, "malformed heartbeat"});
    }
    auto result = api->coordinator.heartbeat(*drone, beat);
    if (!result) {
      return net::error_response(response, result.error());
    }
    net::json_response(response, 200,
                       json{{"state", result->state}, {"reason", result->reason}, {"cancel", result->cancel}});
  });

  server.post("/api/v1/drones/enroll", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->admin(request, response)) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    const auto name = body->value("name", std::string());
    auto token = api->coordinator.enroll(name);
    if (!token) {
      return net::error_response(response, token.error());
    }
    net::json_response(response, 200, json{{"name", name}, {"token", *token}});
  });

  server.post("/api/v1/claim", [api](const httplib::Request& request, httplib::Response& response) {
    auto drone = api->drone(request, response);
    if (!drone) {
      return;
    }
    double wait = 0;
    if (request.has_param("wait")) {
      auto parsed = strings::parse_double(request.get_param_value("wait"));
      if (!parsed || *parsed < 0) {
        return net::error_response(response, {ErrorKind::invalid, "wait must be a number of seconds"});
      }
      wait = *parsed;
    }
    auto result = api->coordinator.claim(*drone, wait);
    if (!result) {
      return net::error_response(response, result.error());
    }
    json body{{"lease", nullptr}, {"reason", result->reason}};
    if (result->lease) {
      body["lease"] = to_json(*result->lease);
      body["lease"]["staging_url"] = staging_url(api->options);
      body["reason"] = "";
    }
    net::json_response(response, 200, body);
  });

  server.put_stream(
    "/api/v1/leases/([0-9a-f]+)/artifact", options.max_upload,
    [api](const httplib::Request& request, httplib::Response& response, net::RequestBody& body) {
      auto drone = api->drone(request, response);
      if (!drone) {
        return;
      }
      const std::string lease = request.matches[1];
      auto ticket = api->coordinator.begin_upload(lease, *drone);
      if (!ticket) {
        return net::error_response(response, ticket.error());
      }
      int status = 0;
      auto artifact = ingest(body, request, *ticket, lease, api->options, status);
      if (!artifact) {
        if (status == 422) {
          return net::json_response(response, 422, json{{"error", artifact.error().message}, {"kind", "invalid"}});
        }
        return net::error_response(response, artifact.error());
      }
      auto accepted = api->coordinator.accept_artifact(lease, *drone, *artifact);
      if (!accepted) {
        return net::error_response(response, accepted.error());
      }
      if (accepted->duplicate) {
        return net::json_response(response, 200,
                                  json{{"received", true}, {"duplicate", true}, {"path", accepted->relative_path}});
      }
      net::json_response(response, 201,
                         json{{"received", true},
                              {"path", accepted->relative_path},
                              {"sha256", artifact->sha256},
                              {"size", artifact->size}});
    });

  server.post("/api/v1/leases/([0-9a-f]+)/report", [api](const httplib::Request& request, httplib::Response& response) {
    auto drone = api->drone(request, response);
    if (!drone) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    BuildReport report;
    const auto result = body->value("result", std::string());
    if (result != "success" && result != "failure") {
      return net::error_response(response, {ErrorKind::invalid, "result must be \"success\" or \"failure\""});
    }
    report.success = result == "success";
    try {
      report.duration = body->value("duration_seconds", 0.0);
      report.log_tail = body->value("log_tail", std::string());
      report.reason = body->value("reason", std::string());
    } catch (const json::exception&) {
      return net::error_response(response, {ErrorKind::invalid, "malformed report"});
    }
    if (report.log_tail.size() > (256u << 10)) {
      report.log_tail = report.log_tail.substr(report.log_tail.size() - (256u << 10));
    }
    reply(response, api->coordinator.report(request.matches[1], *drone, report));
  });

  server.post_stream(
    "/api/v1/leases/([0-9a-f]+)/log", k_log_chunk_limit,
    [api](const httplib::Request& request, httplib::Response& response, net::RequestBody& body) {
      auto drone = api->drone(request, response);
      if (!drone) {
        return;
      }
      auto path = api->coordinator.log_path(request.matches[1], *drone);
      if (!path) {
        return net::error_response(response, path.error());
      }
      auto text = body.read_all();
      if (!text) {
        return net::error_response(response, text.error());
      }
      std::error_code ec;
      std::filesystem::create_directories(path->parent_path(), ec);
      const auto size = std::filesystem::file_size(*path, ec);
      if (!ec && size > k_log_file_limit) {
        return net::json_response(response, 200, json{{"stored", false}, {"reason", "log limit reached"}});
      }
      const int fd = ::open(path->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        return net::error_response(response, {ErrorKind::io, "cannot open the build log"});
      }
      const auto written = ::write(fd, text->data(), text->size());
      ::close(fd);
      net::json_response(response, 200, json{{"stored", written == static_cast<ssize_t>(text->size())}});
    });

  server.post("/api/v1/leases/([0-9a-f]+)/return", [api](const httplib::Request& request, httplib::Response& response) {
    auto drone = api->drone(request, response);
    if (!drone) {
      return;
    }
    auto result = api->coordinator.return_lease(request.matches[1], *drone);
    if (!result) {
      return net::error_response(response, result.error());
    }
    net::json_response(response, 200, json{{"returned", true}});
  });

  // --- plan and control ---
  server.post("/api/v1/plan", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->admin(request, response)) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    if (!body->contains("plan")) {
      return net::error_response(response, {ErrorKind::invalid, "the body needs a \"plan\" object"});
    }
    auto plan = portage::plan_from_json((*body)["plan"]);
    if (!plan) {
      return net::error_response(response, {ErrorKind::invalid, "invalid plan: " + plan.error().message});
    }
    const auto mode_text = body->value("mode", std::string("replace"));
    if (mode_text != "replace" && mode_text != "add") {
      return net::error_response(response, {ErrorKind::invalid, "mode must be \"replace\" or \"add\""});
    }
    const bool clear = body->value("clear_staging", false);
    auto result = api->coordinator.submit_plan(*plan, mode_text == "add" ? PlanMode::add : PlanMode::replace, clear);
    if (!result) {
      return net::error_response(response, result.error());
    }
    net::json_response(response, 200,
                       json{{"packages", result->packages},
                            {"added", result->added},
                            {"removed", result->removed},
                            {"kept", result->kept},
                            {"reset", result->reset},
                            {"changed", result->changed},
                            {"warnings", result->warnings}});
  });

  server.post("/api/v1/control/([a-z-]+)", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->admin(request, response)) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    reply(response, api->coordinator.control(request.matches[1], *body));
  });

  // --- views ---
  server.get("/api/v1/status", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->reader(request, response)) {
      return;
    }
    auto body = api->coordinator.status();
    body["orchestrator"] = api->info();
    net::json_response(response, 200, body);
  });
  server.get("/api/v1/drones", [api](const httplib::Request& request, httplib::Response& response) {
    if (api->reader(request, response)) {
      net::json_response(response, 200, json{{"drones", api->coordinator.drones_view()}});
    }
  });
  server.get("/api/v1/packages", [api](const httplib::Request& request, httplib::Response& response) {
    if (api->reader(request, response)) {
      net::json_response(response, 200,
                         json{{"packages", api->coordinator.packages_view(request.get_param_value("state"))}});
    }
  });
  server.get("/api/v1/packages/(.+)", [api](const httplib::Request& request, httplib::Response& response) {
    if (api->reader(request, response)) {
      reply(response, api->coordinator.package_view(request.matches[1]));
    }
  });
  server.get("/api/v1/events", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->reader(request, response)) {
      return;
    }
    const auto since = strings::parse_int(request.get_param_value("since")).value_or(0);
    const auto limit = strings::parse_int(request.get_param_value("limit")).value_or(500);
    net::json_response(response, 200,
                       api->coordinator.events_view(since, static_cast<size_t>(std::clamp<int64_t>(limit, 1, 5000))));
  });
  server.get("/api/v1/builds", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->reader(request, response)) {
      return;
    }
    const auto limit = strings::parse_int(request.get_param_value("limit")).value_or(100);
    net::json_response(
      response, 200,
      json{{"builds", api->coordinator.builds_view(request.get_param_value("package"), request.get_param_value("drone"),
                                                   static_cast<size_t>(std::clamp<int64_t>(limit, 1, 10000)))}});
  });
  server.get("/api/v1/logs", [api](const httplib::Request& request, httplib::Response& response) {
    if (!api->reader(request, response)) {
      return;
    }
    auto path = api->coordinator.latest_log(request.get_param_value("package"), request.get_param_value("drone"));
    if (!path) {
      return net::error_response(response, path.error());
    }
    const auto offset = strings::parse_uint(request.get_param_value("offset")).value_or(0);
    std::string text;
    const int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buffer[65536];
      off_t position = static_cast<off_t>(offset);
      while (text.size() < (4u << 20)) {
        const auto n = ::pread(fd, buffer, sizeof buffer, position);
        if (n <= 0) {
          break;
        }
        text.append(buffer, static_cast<size_t>(n));
        position += n;
      }
      ::close(fd);
    }
    json body{
      {"path", path->filename().string()}, {"offset", offset}, {"next_offset", offset + text.size()}, {"text", text}};
    net::json_response(response, 200, body);
  });

  // --- binhosts ---
  const auto staging_prefix = fmt::format("/staging/{}", options.orch_id);
  auto staging_gate = [api](const httplib::Request& request, httplib::Response& response) {
    const auto caller = api->identify(request);
    if (caller.role == Role::none) {
      net::error_response(response, {ErrorKind::unauthorized, "the staging binhost needs a drone token"});
      return false;
    }
    const std::string path = request.path;
    if (path.find("/.") != std::string::npos) {
      net::error_response(response, {ErrorKind::not_found, "not found"});
      return false;
    }
    return true;
  };
  server.get(staging_prefix + "/Packages",
             [api, staging_gate](const httplib::Request& request, httplib::Response& response) {
               if (!staging_gate(request, response)) {
                 return;
               }
               auto [text, timestamp] = api->coordinator.staging_index();
               const auto modified = std::chrono::system_clock::time_point(std::chrono::seconds(timestamp));
               if (request.has_header("If-Modified-Since")) {
                 if (auto since = net::parse_http_date(request.get_header_value("If-Modified-Since"));
                     since && modified <= *since) {
                   response.status = 304;
                   return;
                 }
               }
               response.set_header("Last-Modified", net::http_date(modified));
               response.set_content(text, "text/plain; charset=utf-8");
             });
  net::mount_files(server, staging_prefix, options.staging_dir, staging_gate);
  net::mount_files(server, "/production", options.production_link,
                   [api](const httplib::Request& request, httplib::Response& response) {
                     if (api->options.public_binhost) {
                       return true;
                     }
                     return api->reader(request, response);
                   });
}

} // namespace swarm::roles::orch
