#include "roles/drone/drone_metrics.hpp"

#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "net/http_server.hpp"
#include "net/url.hpp"

namespace swarm::roles::drone {

DroneMetrics::DroneMetrics()
    : m_builds(m_registry.counter("swarm_drone_builds_total", "Builds this drone finished, by result", {"result"})),
      m_build_duration(m_registry.histogram("swarm_drone_build_duration_seconds", "Build time on this drone",
                                            metrics::build_duration_buckets(), {"result"})),
      m_uploads(m_registry.counter("swarm_drone_uploads_total",
                                   "Artifact upload attempts by result (ok, retry, refused)", {"result"})),
      m_upload_bytes(m_registry.counter("swarm_drone_upload_bytes_total", "Artifact bytes uploaded"))
{
  for (const auto* result : {"success", "failure"}) {
    m_builds.add({result}, 0);
  }
  for (const auto* result : {"ok", "retry", "refused"}) {
    m_uploads.add({result}, 0);
  }
  m_upload_bytes.add(0);
}

void DroneMetrics::build_finished(bool success, double seconds)
{
  const char* result = success ? "success" : "failure";
  m_builds.add({result});
  if (seconds >= 0) {
    m_build_duration.observe({result}, seconds);
  }
}

void DroneMetrics::upload(const char* result, uint64_t bytes)
{
  m_uploads.add({result});
  if (bytes > 0) {
    m_upload_bytes.add(static_cast<double>(bytes));
  }
}

Result<std::unique_ptr<net::HttpServer>> start_drone_listener(const std::string& listen, DroneMetrics& metrics,
                                                              DroneProbe probe)
{
  auto address = net::url::parse_listen_address(listen);
  if (!address) {
    return fail(ErrorKind::invalid, "bad drone.listen {:?}: {}", listen, address.error().message);
  }
  auto& registry = metrics.registry();
  auto& http =
    registry.counter("swarm_http_requests_total", "HTTP requests answered, by route pattern, method and status code",
                     {"route", "method", "code"});
  auto& spool_free = registry.gauge("swarm_drone_spool_free_bytes", "Free bytes of the spool's filesystem");
  auto& slots = registry.gauge("swarm_drone_slots", "Build slots of this drone");
  auto& busy = registry.gauge("swarm_drone_slots_busy", "Build slots working on a lease");
  auto& registered = registry.gauge("swarm_drone_registered", "1 once registered with the orchestrator");
  auto shared = std::make_shared<DroneProbe>(std::move(probe));
  registry.on_collect([shared, &metrics, &spool_free, &slots, &busy, &registered] {
    if (auto bytes = shared->spool_free ? shared->spool_free() : Result<uint64_t>(0)) {
      spool_free.set(static_cast<double>(*bytes));
    }
    slots.set(shared->slots_total);
    busy.set(shared->slots_busy ? shared->slots_busy() : 0);
    registered.set(metrics.registered() ? 1 : 0);
  });

  net::ServerOptions options;
  options.threads = 4;
  options.max_connections_per_client = 16;
  auto server = std::make_unique<net::HttpServer>(options);
  server->set_observer([&http](std::string_view method, std::string_view route, int status) {
    http.add({std::string(route), std::string(method), std::to_string(status)});
  });
  server->get("/healthz", [shared](const httplib::Request&, httplib::Response& response) {
    net::json_response(response, 200, {{"status", "ok"}, {"role", "drone"}, {"name", shared->name}});
  });
  server->get("/readyz", [shared, &metrics](const httplib::Request&, httplib::Response& response) {
    const bool stopping = shared->stopping && shared->stopping();
    if (!metrics.registered() || stopping) {
      net::json_response(response, 503,
                         {{"status", "not ready"},
                          {"role", "drone"},
                          {"name", shared->name},
                          {"reason", stopping ? "stopping" : "not registered with the orchestrator"}});
      return;
    }
    net::json_response(response, 200, {{"status", "ready"}, {"role", "drone"}, {"name", shared->name}});
  });
  server->get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry.render(), std::string(metrics::k_content_type));
  });
  auto port = server->bind(address->host, address->port);
  if (!port) {
    return fail(port.error().kind, "cannot listen on {}: {}", listen, port.error().message);
  }
  if (auto started = server->listen_in_thread(); !started) {
    return fail(started.error());
  }
  LOG_INFO("drone listening on {}", net::url::format_host_port(address->host, *port));
  return server;
}

} // namespace swarm::roles::drone
