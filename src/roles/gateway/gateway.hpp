#pragma once
// The gateway daemon: stateless front of one or more orchestrators. Serves /healthz, /readyz
// (503 while no orchestrator is healthy), /metrics, /status
// (every orchestrator's health), /binhost[?profile=NAME] (the active orchestrator's production
// binhost URL for a swarm profile; the gateway's own when it serves HTTPS), the production
// binhosts (/production/…, /p/NAME/production/…) and proxies /api/* to the active orchestrator
// (roles/gateway/proxy.hpp).

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/metrics.hpp"
#include "net/auth_limiter.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "roles/gateway/health_monitor.hpp"
#include "roles/gateway/orchestrator_list.hpp"
#include "roles/gateway/proxy.hpp"

namespace swarm::roles::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 7000; // 0: the kernel chooses
  std::vector<OrchestratorSpec> orchestrators;
  std::chrono::milliseconds health_interval{2'000};
  std::chrono::milliseconds health_timeout{1'000};
  int threads = 128;
  size_t max_connections_per_client = 256; // 0: any
  int auth_failure_limit = 10;             // wrong credentials per client address and minute (0: any)
  std::string ca_file;                     // verifies https:// orchestrators ("": the system's CAs)
  std::string tls_cert_file, tls_key_file; // serve HTTPS when set
};

// host[:port] of the URL a client reached the gateway at: its Host header when that is a plain
// host and port, else the listen address (`listen_host`:`port`).
std::string gateway_authority(std::string_view host_header, const std::string& listen_host, int port);

// The gateway.* keys checked and converted; invalid with a one-line message otherwise.
Result<GatewayOptions> gateway_options(const config::Config& config);

class Gateway {
public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds, probes every orchestrator once (bounded by the health timeout), then serves on a
  // background thread and keeps probing. Returns the port listened on.
  Result<int> start();
  // Stops probing and serving; calls in flight finish first. Idempotent.
  void stop();

  int port() const { return m_server.port(); }
  const std::string& host() const { return m_options.host; }

private:
  void add_routes();
  void healthz(httplib::Response& response) const;
  void readyz(httplib::Response& response) const;
  void collect_metrics();
  void status(httplib::Response& response) const;
  // GET /binhost[?profile=NAME]: the active orchestrator's production URL for the profile
  // (default: `default`), or with TLS the gateway's own (https://HOST/production, served through
  // it); 400 for a malformed name, 503 without a healthy orchestrator.
  void binhost(const httplib::Request& request, httplib::Response& response) const;
  // /api/* through the proxy, unless the client's address sent too many wrong credentials.
  template <class Forward>
  void limited(const httplib::Request& request, httplib::Response& response, Forward&& forward);

  GatewayOptions m_options;
  std::vector<net::HttpClient> m_upstreams;
  HealthMonitor m_monitor;
  fs::TempDir m_spool;
  Proxy m_proxy;
  net::HttpServer m_server;
  // Clients sending wrong credentials (answered 401 upstream) are answered 429 for a while.
  net::AuthFailureLimiter m_auth_failures{{.max_failures = std::max(0, m_options.auth_failure_limit)}};
  metrics::Registry m_metrics;
  metrics::Family* m_http = nullptr;
  metrics::Family* m_up = nullptr;
  metrics::Family* m_active = nullptr;
  metrics::Family* m_latency = nullptr;
};

// `swarm gateway`: runs until SIGTERM or SIGINT, printing `gateway ready on HOST:PORT` once
// serving. Returns the exit code (0 after a signal, 2 for bad configuration).
int run_gateway(const config::Config& config);

} // namespace swarm::roles::gateway
