#include "roles/orch/daemon.hpp"

#include <atomic>
#include <csignal>
#include <thread>

#include <sys/stat.h>

#include "core/build_info.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "core/secrets.hpp"
#include "core/strings.hpp"
#include "net/http_server.hpp"
#include "net/protocol.hpp"
#include "net/url.hpp"
#include "roles/orch/api.hpp"
#include "roles/orch/coordinator.hpp"
#include "roles/orch/log_store.hpp"
#include "roles/orch/observability.hpp"
#include "roles/orch/signing.hpp"
#include "roles/orch/store.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles::orch {

namespace {

// The admin token: configured, or the one in data_dir/admin.token (created on first start,
// readable by root only).
Result<std::string> admin_token(const config::Config& config, const std::filesystem::path& data_dir)
{
  if (!config.get("orch.admin_token").empty()) {
    return config.get("orch.admin_token");
  }
  const auto path = data_dir / "admin.token";
  if (auto existing = fs::read_file(path, 4096)) {
    const auto token = std::string(strings::trim(*existing));
    if (!token.empty()) {
      return token;
    }
  }
  const auto token = "swa_" + random::hex_token(24);
  if (auto written = fs::write_file_atomic(path, token + "\n", 0600); !written) {
    return fail(written.error());
  }
  LOG_INFO("created the admin token in {}", path.string());
  return token;
}

// The id in the staging URL path: Portage caches a binhost index by host and path.
Result<std::string> orch_id(Store& store)
{
  if (auto id = store.get_meta("orch_id")) {
    return *id;
  }
  const auto id = random::hex_token(6);
  auto ok = store.transaction([&] { store.set_meta("orch_id", id); });
  if (!ok) {
    return fail(ok.error());
  }
  return id;
}

CoordinatorOptions coordinator_options(const config::Config& config, const std::filesystem::path& data_dir)
{
  CoordinatorOptions options;
  options.data_dir = data_dir;
  options.logs_dir = data_dir / "logs";
  options.lease_ttl = config.get_seconds("orch.lease_ttl");
  options.heartbeat_interval = config.get_seconds("orch.heartbeat_interval");
  options.drone_timeout = config.get_seconds("orch.drone_timeout");
  options.claim_wait = config.get_seconds("orch.claim_wait");
  options.default_build_seconds = config.get_seconds("orch.default_build_seconds");
  options.heavy_build_seconds = config.get_seconds("orch.heavy_build_seconds");
  options.ground_cooldown = config.get_seconds("orch.ground_cooldown");
  options.retry_backoff = config.get_seconds("orch.retry_backoff");
  options.drone_failure_limit = static_cast<int>(config.get_int("orch.drone_failure_limit"));
  options.package_failure_drones = static_cast<int>(config.get_int("orch.package_failure_drones"));
  options.auto_retry = config.get_bool("orch.auto_retry");
  return options;
}

// The enrolled drones' token hashes, unless their generation is still `known`.
std::optional<DroneTokens::Snapshot> read_drone_tokens(Store& store, const std::string& known)
{
  try {
    auto generation = store.get_meta("drones.generation").value_or("");
    if (generation == known) {
      return std::nullopt;
    }
    DroneTokens::Snapshot snapshot{std::move(generation), {}};
    for (const auto& row : store.load_drones()) {
      snapshot.tokens.emplace_back(row.token_hash, row.name);
    }
    return snapshot;
  } catch (const std::exception& e) {
    LOG_WARN("cannot read the enrolled drones: {}", e.what());
    return std::nullopt;
  }
}

// The data dir 0700; the database (with its -wal and -shm), the admin token and the log 0600:
// a looser mode found at start-up is tightened, with a warning.
void tighten_private_files(const std::filesystem::path& data_dir)
{
  std::vector<std::pair<std::filesystem::path, unsigned>> paths{{data_dir, 0700},
                                                                {data_dir / "logs", 0700},
                                                                {data_dir / "admin.token", 0600},
                                                                {data_dir / "state.db", 0600},
                                                                {data_dir / "state.db-wal", 0600},
                                                                {data_dir / "state.db-shm", 0600}};
  for (const auto& [path, mode] : paths) {
    if (auto warning = secrets::tighten(path, mode)) {
      LOG_WARN("{}", *warning);
    }
  }
}

// The state database, created private (SQLite gives its -wal and -shm the database's mode).
Result<std::unique_ptr<Store>> open_private_store(const std::filesystem::path& path)
{
  const secrets::ScopedUmask private_files(077);
  return Store::open(path.string());
}

// Blocks SIGTERM/SIGINT in every thread (call before starting any) and waits for one.
sigset_t termination_signals()
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

} // namespace

int run_daemon(const config::Config& config)
{
  if (!config.get("orch.log").empty()) {
    log::set_file(config.get("orch.log"));
  }
  // Webhooks and thresholds: a typo is refused before anything is created.
  auto observed = observability_options(config);
  if (!observed) {
    print_error(observed.error().message);
    return exit_code::k_usage;
  }
  const std::filesystem::path data_dir = config.get("orch.data_dir");
  {
    // The data dir holds the database, the admin token and build logs: private from creation.
    const secrets::ScopedUmask private_files(077);
    for (const auto& dir : {data_dir, data_dir / "staging" / ".incoming", data_dir / "logs", data_dir / "releases"}) {
      if (auto made = fs::make_dirs(dir); !made) {
        print_error(fmt::format("cannot create {}: {}", dir.string(), made.error().message));
        return exit_code::k_usage;
      }
    }
  }
  tighten_private_files(data_dir);
  // Partial uploads of a previous run: their drones will send them again.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir / "staging" / ".incoming", ec)) {
    std::filesystem::remove(entry.path(), ec);
  }

  auto listen = net::url::parse_listen_address(config.get("orch.listen"));
  if (!listen) {
    print_error(fmt::format("orch.listen: {}", listen.error().message));
    return exit_code::k_usage;
  }
  auto token = admin_token(config, data_dir);
  if (!token) {
    print_error(token.error().message);
    return exit_code::k_failure;
  }
  log::add_secret(*token);

  auto store = open_private_store(data_dir / "state.db");
  if (!store) {
    print_error(store.error().message);
    return exit_code::k_failure;
  }
  auto id = orch_id(**store);
  if (!id) {
    print_error(id.error().message);
    return exit_code::k_failure;
  }
  // Token lookups read enrollments made by `swarm drone enroll` through their own connection,
  // so a client sending unknown tokens never waits for (or holds) the coordinator's lock.
  auto token_store = open_private_store(data_dir / "state.db");
  if (!token_store) {
    print_error(token_store.error().message);
    return exit_code::k_failure;
  }
  auto options = coordinator_options(config, data_dir);
  options.token_refresh = [store = token_store->get()](const std::string& known) {
    return read_drone_tokens(*store, known);
  };

  const auto signals = termination_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  net::ServerOptions server_options;
  server_options.threads = static_cast<int>(std::max<int64_t>(8, config.get_int("orch.threads")));
  server_options.read_timeout = std::chrono::milliseconds(60'000);
  server_options.write_timeout = std::chrono::milliseconds(60'000);
  server_options.max_connections_per_client =
    static_cast<size_t>(std::max<int64_t>(0, config.get_int("orch.max_connections_per_client")));
  server_options.header_timeout =
    std::chrono::milliseconds(static_cast<int64_t>(std::max(0.1, config.get_seconds("orch.header_timeout")) * 1000));
  server_options.min_transfer_rate = std::max<uint64_t>(1, config.get_bytes("orch.min_transfer_rate"));
  server_options.tls_cert_file = config.get("orch.tls_cert");
  server_options.tls_key_file = config.get("orch.tls_key");
  net::HttpServer server(server_options);
  auto port = server.bind(listen->host, listen->port);
  if (!port) {
    print_error(fmt::format("cannot listen on {}: {}", config.get("orch.listen"), port.error().message));
    return exit_code::k_failure;
  }

  ApiOptions api;
  api.admin_token = *token;
  api.public_status = config.get_bool("orch.public_status");
  api.public_binhost = config.get_bool("orch.public_binhost");
  api.max_upload = config.get_bytes("orch.max_upload");
  api.orch_id = *id;
  api.version = build_info::k_version;
  api.public_url = config.get("orch.public_url");
  if (api.public_url.empty()) {
    api.public_url =
      fmt::format("{}://{}", server.is_tls() ? "https" : "http", net::url::format_host_port(listen->host, *port));
  }
  while (!api.public_url.empty() && api.public_url.back() == '/') {
    api.public_url.pop_back();
  }
  api.data_dir = data_dir;
  api.keep_releases = static_cast<int>(config.get_int("orch.keep_releases"));
  api.risk_threshold = static_cast<int>(config.get_int("orch.risk_threshold"));
  api.max_long_polls = static_cast<int>(config.get_int("orch.max_long_polls"));
  api.auth_failure_limit = static_cast<int>(config.get_int("orch.auth_failure_limit"));
  api.trusted_proxies = config.get_list("orch.trusted_proxies");
  auto signing_mode = BinhostSigner::parse_mode(config.get("orch.signing"));
  if (!signing_mode) {
    print_error(signing_mode.error().message);
    return exit_code::k_usage;
  }
  api.signer = std::make_shared<BinhostSigner>(data_dir, *signing_mode);
  if (auto key = api.signer->active_key(); !key) {
    print_error(key.error().message);
    return exit_code::k_usage;
  } else if (!*key) {
    LOG_INFO("the binhost is unsigned (no key in {}; `swarm key create` makes one)", keyring_dir(data_dir).string());
  }
  if (api.max_long_polls <= 0) {
    const int threads = server_options.threads;
    api.max_long_polls = std::max(threads / 2, threads - std::max(8, threads / 4));
  }
  options.staging_url = staging_url(api);
  observed->data_dir = data_dir;
  observed->orchestrator_url = api.public_url;
  // The coordinator reports to it from the first transition (loading may log events).
  std::unique_ptr<Observability> observability;
  options.on_event = [&observability](const EventRow& row) {
    if (observability) {
      observability->on_event(row);
    }
  };
  options.on_claim_woken = [&observability](double seconds) {
    if (observability) {
      observability->on_claim_woken(seconds);
    }
  };
  Coordinator coordinator(**store, std::move(options));
  observability = std::make_unique<Observability>(coordinator, std::move(*observed));
  if (auto loaded = coordinator.load(); !loaded) {
    print_error(loaded.error().message);
    return exit_code::k_failure;
  }
  install_routes(server, coordinator, api, observability.get());
  server.set_observer([&observability](std::string_view method, std::string_view route, int status) {
    observability->on_request(method, route, status);
  });
  observability->start();

  if (auto started = server.listen_in_thread(); !started) {
    print_error(started.error().message);
    return exit_code::k_failure;
  }

  std::atomic<bool> stopping{false};
  std::mutex wake_mutex;
  std::condition_variable wake;
  const double maintenance_interval = std::max(0.05, config.get_seconds("orch.maintenance_interval"));
  const double tick_interval = std::clamp(config.get_seconds("orch.lease_ttl") / 4, 0.05, 1.0);
  const LogStore logs(data_dir / "logs");
  LogRetention log_retention;
  log_retention.keep_days = static_cast<double>(config.get_int("logs.keep_days"));
  log_retention.max_bytes = config.get_bytes("logs.max_bytes");
  std::thread periodic([&] {
    auto next_maintenance = std::chrono::steady_clock::now();
    auto next_log_sweep = std::chrono::steady_clock::now();
    while (!stopping) {
      try {
        coordinator.tick();
        if (std::chrono::steady_clock::now() >= next_maintenance) {
          coordinator.maintenance();
          if (std::chrono::steady_clock::now() >= next_log_sweep) {
            const auto keepers = coordinator.log_keepers();
            logs.sweep(keepers.running, keepers.keep,
                       std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(),
                       log_retention);
            next_log_sweep = std::chrono::steady_clock::now() + std::chrono::seconds(60);
          }
          next_maintenance =
            std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                 std::chrono::duration<double>(maintenance_interval));
        }
      } catch (const std::exception& e) {
        LOG_ERROR("internal error in periodic work: {}", e.what());
      }
      std::unique_lock lock(wake_mutex);
      wake.wait_for(lock, std::chrono::duration<double>(tick_interval), [&] { return stopping.load(); });
    }
  });

  LOG_INFO("orch ready on {}", net::url::format_host_port(listen->host, *port));
  LOG_INFO("staging binhost {}, production binhost {}", staging_url(api), production_url(api));

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LOG_INFO("signal {}: shutting down", signal_number);
  stopping = true;
  wake.notify_all();
  coordinator.shutdown();
  server.stop();
  periodic.join();
  api.signer->stop(); // no gpg-agent outlives the orchestrator
  observability->stop();
  LOG_INFO("orch stopped");
  return exit_code::k_ok;
}

int enroll_locally(const std::string& data_dir, const std::string& name, bool as_json)
{
  const auto db = std::filesystem::path(data_dir) / "state.db";
  if (!std::filesystem::exists(db)) {
    print_error(fmt::format("no orchestrator state in {} (start `swarm orch` once, or pass --data-dir)", data_dir));
    return exit_code::k_usage;
  }
  auto store = Store::open(db.string());
  if (!store) {
    print_error(store.error().message);
    return exit_code::k_failure;
  }
  // Through a Coordinator on the same database: the same checks and records as the API, and the
  // running daemon's token lookup notices the new generation of drones at the next unknown token.
  CoordinatorOptions options;
  options.data_dir = data_dir;
  options.logs_dir = std::filesystem::path(data_dir) / "logs";
  Coordinator coordinator(**store, options);
  if (auto loaded = coordinator.load(Coordinator::LoadMode::inspect); !loaded) {
    print_error(loaded.error().message);
    return exit_code::k_failure;
  }
  auto token = coordinator.enroll(name);
  if (!token) {
    print_error(token.error().message);
    return token.error().kind == ErrorKind::invalid ? exit_code::k_usage : exit_code::k_failure;
  }
  if (as_json) {
    fmt::print("{}\n", nlohmann::json(net::EnrollReply{name, *token}).dump());
  } else {
    fmt::print("{}\n", *token);
  }
  return exit_code::k_ok;
}

} // namespace swarm::roles::orch
