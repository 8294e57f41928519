#include "roles/gateway/gateway.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>

#include <pthread.h>

#include "core/build_info.hpp"
#include "core/exit_codes.hpp"
#include "core/log.hpp"
#include "net/protocol.hpp"
#include "net/protocol_version.hpp"
#include "net/url.hpp"
#include "roles/orch/profiles.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles::gateway {

namespace {

// Upload routes accept bodies up to this. The orchestrator enforces its own limit
// (orch.max_upload); this one only bounds what the gateway spools to its disk.
constexpr uint64_t k_max_spooled_upload = 64ull << 30;

std::chrono::milliseconds to_millis(double seconds)
{
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

Result<net::url::HostPort> parse_listen(std::string_view text)
{
  auto parsed = net::url::parse_listen_address(text);
  if (!parsed) {
    return fail(ErrorKind::invalid, "bad gateway.listen {:?}: {}", text, parsed.error().message);
  }
  return parsed;
}

std::vector<net::HttpClient> make_upstreams(const GatewayOptions& options)
{
  std::vector<net::HttpClient> out;
  for (const auto& spec : options.orchestrators) {
    net::ClientOptions client;
    client.base_url = spec.url;
    client.ca_file = options.ca_file;
    // No token of our own: each call carries its caller's Authorization header.
    client.timeout = k_default_upstream_timeout;
    client.connect_timeout = std::max(options.health_timeout, std::chrono::milliseconds{1'000});
    out.emplace_back(std::move(client));
  }
  return out;
}

net::ServerOptions server_options(const GatewayOptions& options)
{
  net::ServerOptions out;
  out.threads = options.threads;
  out.max_connections_per_client = options.max_connections_per_client;
  out.tls_cert_file = options.tls_cert_file;
  out.tls_key_file = options.tls_key_file;
  return out;
}

} // namespace

std::string gateway_authority(std::string_view host_header, const std::string& listen_host, int port)
{
  const auto valid = !host_header.empty() && host_header.size() <= 255 &&
                     std::all_of(host_header.begin(), host_header.end(), [](unsigned char c) {
                       return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
                     });
  if (valid) {
    return std::string(host_header);
  }
  return net::url::format_host_port(listen_host, port);
}

Result<GatewayOptions> gateway_options(const config::Config& config)
{
  GatewayOptions out;
  auto listen = parse_listen(config.get("gateway.listen"));
  if (!listen) {
    return fail(listen.error());
  }
  out.host = listen->host;
  out.port = listen->port;
  auto orchestrators = parse_orchestrators(config.get_list("gateway.orchestrators"));
  if (!orchestrators) {
    return fail(ErrorKind::invalid, "gateway.orchestrators: {}", orchestrators.error().message);
  }
  out.orchestrators = std::move(*orchestrators);
  out.health_interval = to_millis(config.get_seconds("gateway.health_interval"));
  out.health_timeout = to_millis(config.get_seconds("gateway.health_timeout"));
  if (out.health_interval.count() <= 0) {
    return fail(ErrorKind::invalid, "gateway.health_interval must be positive");
  }
  if (out.health_timeout.count() <= 0) {
    return fail(ErrorKind::invalid, "gateway.health_timeout must be positive");
  }
  const auto threads = config.get_int("gateway.threads");
  if (threads < 1 || threads > 100'000) {
    return fail(ErrorKind::invalid, "gateway.threads must be between 1 and 100000, not {}", threads);
  }
  out.threads = static_cast<int>(threads);
  out.max_connections_per_client =
    static_cast<size_t>(std::max<int64_t>(0, config.get_int("gateway.max_connections_per_client")));
  out.auth_failure_limit = static_cast<int>(std::max<int64_t>(0, config.get_int("gateway.auth_failure_limit")));
  out.ca_file = config.get("gateway.ca");
  out.tls_cert_file = config.get("gateway.tls_cert");
  out.tls_key_file = config.get("gateway.tls_key");
  if (out.tls_cert_file.empty() != out.tls_key_file.empty()) {
    return fail(ErrorKind::invalid, "gateway.tls_cert and gateway.tls_key go together");
  }
  return out;
}

Gateway::Gateway(GatewayOptions options)
    : m_options(std::move(options)), m_upstreams(make_upstreams(m_options)),
      m_monitor(
        m_options.orchestrators,
        [this](size_t index) -> Result<OrchestratorInfo> {
          net::CallOptions call;
          call.timeout = m_options.health_timeout;
          call.on_http_error = net::OnHttpError::return_response;
          auto answer = m_upstreams.at(index).request("GET", "/healthz", {}, {{"Accept", "application/json"}}, call);
          if (!answer) {
            return fail(answer.error());
          }
          return parse_health_answer(*answer);
        },
        m_options.health_interval),
      m_spool("swarm-gateway"),
      m_proxy(
        m_monitor, m_upstreams, m_spool.path(),
        static_cast<size_t>(std::max(m_options.threads / 2, m_options.threads - std::max(8, m_options.threads / 4)))),
      m_server(server_options(m_options))
{
  m_http =
    &m_metrics.counter("swarm_http_requests_total", "HTTP requests answered, by route pattern, method and status code",
                       {"route", "method", "code"});
  m_up = &m_metrics.gauge("swarm_gateway_orchestrator_up", "1 when the orchestrator's last health check passed",
                          {"orchestrator"});
  m_active = &m_metrics.gauge("swarm_gateway_orchestrator_active", "1 for the orchestrator calls are proxied to",
                              {"orchestrator"});
  m_latency = &m_metrics.gauge("swarm_gateway_orchestrator_probe_seconds",
                               "Duration of the orchestrator's last successful health check", {"orchestrator"});
  m_metrics.on_collect([this] { collect_metrics(); });
  m_server.set_observer([this](std::string_view method, std::string_view route, int status) {
    m_http->add({std::string(route), std::string(method), std::to_string(status)});
  });
  add_routes();
}

void Gateway::collect_metrics()
{
  const auto active = m_monitor.active();
  m_up->clear();
  m_active->clear();
  m_latency->clear();
  for (const auto& state : m_monitor.states()) {
    m_up->set({state.spec.url}, state.healthy ? 1 : 0);
    m_active->set({state.spec.url}, active && active->url == state.spec.url ? 1 : 0);
    if (state.latency_ms) {
      m_latency->set({state.spec.url}, *state.latency_ms / 1000.0);
    }
  }
}

Gateway::~Gateway()
{
  stop();
}

template <class Forward>
void Gateway::limited(const httplib::Request& request, httplib::Response& response, Forward&& forward)
{
  const bool has_credential = request.has_header("Authorization");
  if (has_credential) {
    if (auto wait = m_auth_failures.blocked(request.remote_addr)) {
      net::too_many_failures_response(response, *wait);
      return;
    }
  }
  forward();
  if (has_credential && response.status == 401) {
    m_auth_failures.failed(request.remote_addr);
  }
}

void Gateway::add_routes()
{
  m_server.get("/healthz", [this](const httplib::Request&, httplib::Response& response) { healthz(response); });
  m_server.get("/readyz", [this](const httplib::Request&, httplib::Response& response) { readyz(response); });
  m_server.get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(m_metrics.render(), std::string(metrics::k_content_type));
  });
  m_server.get("/status", [this](const httplib::Request&, httplib::Response& response) { status(response); });
  m_server.get("/binhost",
               [this](const httplib::Request& request, httplib::Response& response) { binhost(request, response); });
  // The production binhosts, from the active orchestrator: what /binhost hands out when this
  // gateway serves HTTPS.
  const auto files = [this](const httplib::Request& request, httplib::Response& response) {
    limited(request, response, [&] { m_proxy.forward_file(request, response); });
  };
  m_server.get("/production/.*", files);
  m_server.get("/p/[^/]+/production/.*", files);

  const std::string api = "/api/.*";
  const auto buffered = [this](const httplib::Request& request, httplib::Response& response) {
    limited(request, response, [&] { m_proxy.forward(request, response); });
  };
  const auto streamed = [this](const httplib::Request& request, httplib::Response& response, net::RequestBody& body) {
    limited(request, response, [&] { m_proxy.forward_stream(request, response, body); });
  };
  m_server.get(api, buffered); // HEAD too
  // The orchestrator's web dashboard: its page and files.
  m_server.get("/", buffered);
  m_server.get("/dashboard/.*", buffered);
  // Bodies are read only once the caller is known (Proxy::admit_body).
  m_server.del_stream(api, net::ServerOptions{}.max_body_bytes, streamed);
  m_server.post_stream(api, net::ServerOptions{}.max_body_bytes, streamed);
  m_server.put_stream(api, k_max_spooled_upload, streamed);
  // The wrapper has no PATCH route; the protocol uses none, but the proxy passes every method.
  m_server.native().Patch(
    api, [this](const httplib::Request& request, httplib::Response& response, const httplib::ContentReader& reader) {
      net::RequestBody body(request, reader, net::ServerOptions{}.max_body_bytes);
      try {
        limited(request, response, [&] { m_proxy.forward_stream(request, response, body); });
      } catch (const std::exception& exception) {
        LOG_ERROR("{} {}: internal error: {}", request.method, request.path, exception.what());
        response = httplib::Response();
        net::json_response(response, 500, {{"error", "internal error"}, {"kind", "internal"}});
      }
      if (!body.finish()) {
        response.set_header("Connection", "close");
      }
    });
}

void Gateway::healthz(httplib::Response& response) const
{
  const auto active = m_monitor.active();
  net::json_response(response, 200,
                     {{"status", "ok"},
                      {"role", "gateway"},
                      {"version", build_info::k_version},
                      {"protocol", net::k_protocol_version},
                      {"active", active ? nlohmann::json(active->url) : nlohmann::json(nullptr)}});
}

void Gateway::readyz(httplib::Response& response) const
{
  const auto active = m_monitor.active();
  if (!active) {
    net::json_response(response, 503,
                       {{"status", "not ready"}, {"role", "gateway"}, {"reason", "no healthy orchestrator"}});
    return;
  }
  net::json_response(response, 200, {{"status", "ready"}, {"role", "gateway"}, {"active", active->url}});
}

void Gateway::status(httplib::Response& response) const
{
  const auto active = m_monitor.active();
  auto orchestrators = nlohmann::json::array();
  for (const auto& state : m_monitor.states()) {
    orchestrators.push_back(state_json(state));
  }
  net::json_response(response, 200,
                     {{"role", "gateway"},
                      {"version", build_info::k_version},
                      {"protocol", net::k_protocol_version},
                      {"active", active ? nlohmann::json(active->url) : nlohmann::json(nullptr)},
                      {"orchestrators", std::move(orchestrators)}});
}

void Gateway::binhost(const httplib::Request& request, httplib::Response& response) const
{
  const auto profile =
    request.has_param("profile") ? request.get_param_value("profile") : std::string(orch::k_default_profile);
  if (!net::is_valid_profile_name(profile)) {
    net::json_response(response, 400,
                       {{"error", fmt::format("\"{}\" is not a profile name (1-64 of A-Z a-z 0-9 . _ -)", profile)},
                        {"kind", "invalid"}});
    return;
  }
  const auto active = m_monitor.active();
  if (!active) {
    net::json_response(response, 503, {{"error", "no healthy orchestrator"}, {"kind", "unavailable"}});
    return;
  }
  // An orchestrator that does not announce its production URL serves it at /production/.
  std::string url = active->info ? active->info->production_url : std::string();
  if (url.empty()) {
    url = net::url::join(active->url, "/production/");
  }
  // Served over HTTPS, the gateway hands out its own URL and serves the files itself: a client
  // that verified the gateway's certificate fetches its packages the same way, not in plain HTTP
  // from an orchestrator it may not even reach (and keeps them across a failover).
  const bool through_gateway = !m_options.tls_cert_file.empty();
  if (through_gateway) {
    url = fmt::format("https://{}/production",
                      gateway_authority(request.get_header_value("Host"), m_options.host, m_server.port()));
  }
  // Another profile's production lies under /p/NAME/ of the same orchestrator: the rule the
  // orchestrator's own URLs follow (roles/orch/profiles.hpp). Whether the profile has a release yet
  // only the orchestrator knows; `swarm client setup` checks the URL.
  net::json_response(response, 200,
                     {{"url", orch::profile_url(url, profile)},
                      {"profile", profile},
                      {"orchestrator", active->url},
                      {"through_gateway", through_gateway}});
}

Result<int> Gateway::start()
{
  auto port = m_server.bind(m_options.host, m_options.port);
  if (!port) {
    return fail(port.error());
  }
  m_monitor.start();
  // Serving before the first round would answer 503 (or pick a lower-ranked orchestrator) for
  // a moment; each probe is bounded by the health timeout, so this wait is too.
  const auto deadline = std::chrono::steady_clock::now() + m_options.health_timeout + std::chrono::seconds{2};
  if (!m_monitor.wait_first_round(deadline)) {
    LOG_WARN("not every orchestrator answered its first health check in time");
  }
  if (auto listening = m_server.listen_in_thread(); !listening) {
    m_monitor.stop();
    return fail(listening.error());
  }
  return *port;
}

void Gateway::stop()
{
  m_monitor.stop();
  m_server.stop();
}

int run_gateway(const config::Config& config)
{
  auto options = gateway_options(config);
  if (!options) {
    print_error(options.error().message);
    return exit_code::k_usage;
  }
  if (const auto& log_file = config.get("gateway.log"); !log_file.empty()) {
    log::set_file(log_file);
  }
  // A client that goes away mid-answer must cost a failed write, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Blocked before any thread starts, so every thread inherits the mask and the signals wait
  // for sigwait below instead of interrupting a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Gateway gateway(std::move(*options));
  auto port = gateway.start();
  if (!port) {
    print_error(port.error().message);
    return port.error().kind == ErrorKind::invalid ? exit_code::k_usage : exit_code::k_failure;
  }
  LOG_INFO("gateway ready on {}", net::url::format_host_port(gateway.host(), *port));

  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  LOG_INFO("stopping on {}", received == SIGTERM ? "SIGTERM" : "SIGINT");
  gateway.stop();
  LOG_INFO("gateway stopped");
  return exit_code::k_ok;
}

} // namespace swarm::roles::gateway
