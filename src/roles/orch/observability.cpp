#include "roles/orch/observability.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "roles/orch/coordinator.hpp"

namespace swarm::roles::orch {

namespace {

using nlohmann::json;

constexpr double k_day = 86400;
constexpr std::chrono::milliseconds k_plan_check_spacing{250};
// Package states as the metrics name them (every one is present, so the series sum to the plan).
constexpr std::string_view k_package_states[] = {"needed", "delegated", "received", "blocked", "dep-failed"};

double epoch_now()
{
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string webhook_time(double seconds)
{
  const auto whole = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

} // namespace

Result<ObservabilityOptions> observability_options(const config::Config& config)
{
  ObservabilityOptions out;
  out.data_dir = config.get("orch.data_dir");
  out.disk_low = config.get_bytes("orch.disk_low");
  const auto after = config.get_seconds("orch.no_release_after");
  if (after < 0 || after > 3650 * k_day) {
    return fail(ErrorKind::invalid, "orch.no_release_after must be between 0 and 3650d, not {}s", after);
  }
  out.no_release_after = after;
  const auto queue = config.get_int("orch.webhook_queue");
  if (queue < 1 || queue > 1'000'000) {
    return fail(ErrorKind::invalid, "orch.webhook_queue must be between 1 and 1000000, not {}", queue);
  }
  out.webhook_options.queue_limit = static_cast<size_t>(queue);
  const std::vector<std::string_view> known(std::begin(k_webhook_events), std::end(k_webhook_events));
  for (const auto& name : config.instances("webhook")) {
    std::vector<std::string> events;
    for (const auto& part : strings::split(config.get_or("webhook." + name + ".events", "*"), ',')) {
      if (auto item = std::string(strings::trim(part)); !item.empty()) {
        events.push_back(std::move(item));
      }
    }
    auto target = net::make_webhook_target(name, config.get_or("webhook." + name + ".url", ""), events,
                                           config.get_or("webhook." + name + ".header", ""), known);
    if (!target) {
      return fail(target.error());
    }
    out.webhooks.push_back(std::move(*target));
  }
  return out;
}

Observability::Observability(Coordinator& coordinator, ObservabilityOptions options)
    : m_coordinator(coordinator), m_options(std::move(options)),
      m_webhooks(m_options.webhooks, m_options.webhook_options, &m_registry),
      m_http(m_registry.counter("swarm_http_requests_total",
                                "HTTP requests answered, by route pattern, method and status code",
                                {"route", "method", "code"})),
      m_builds(m_registry.counter("swarm_builds_total", "Build results reported by drones", {"result"})),
      m_build_duration(m_registry.histogram("swarm_build_duration_seconds", "Build time reported by drones",
                                            metrics::build_duration_buckets(), {"result"})),
      m_claim_wait(m_registry.histogram("swarm_claim_wait_seconds",
                                        "How long a claim long-poll waited before it got work",
                                        metrics::latency_buckets())),
      m_wakeup(
        m_registry.histogram("swarm_claim_wakeup_latency_seconds",
                             "Time from work becoming ready to a waiting claim having taken it (after being woken)",
                             metrics::latency_buckets())),
      m_upload_bytes(m_registry.counter("swarm_upload_bytes_total", "Artifact bytes accepted into staging")),
      m_upload_failures(m_registry.counter("swarm_upload_failures_total", "Artifact uploads refused or broken off")),
      m_lease_expiries(m_registry.counter("swarm_lease_expiries_total", "Leases that expired without a heartbeat")),
      m_breaker_trips(m_registry.counter("swarm_circuit_breaker_trips_total",
                                         "Drones grounded by their circuit breaker (consecutive failures)")),
      m_releases(m_registry.counter("swarm_releases_total", "Releases finalized", {"profile"})),
      m_last_release(m_registry.gauge("swarm_last_release_timestamp_seconds",
                                      "Unix time of the latest release of a profile", {"profile"})),
      m_packages(m_registry.gauge("swarm_packages", "Packages of the current plans by state", {"profile", "state"})),
      m_drones(m_registry.gauge("swarm_drones", "Enrolled drones by state", {"state"})),
      m_staging_free(m_registry.gauge("swarm_staging_free_bytes", "Free bytes of the staging filesystem")),
      m_events(m_registry.counter("swarm_webhook_events_total", "Webhook events raised, by event", {"event"}))
{
  for (const auto* result : {"success", "failure"}) {
    m_builds.add({result}, 0);
  }
  m_upload_bytes.add(0);
  m_upload_failures.add(0);
  m_lease_expiries.add(0);
  m_breaker_trips.add(0);
  m_registry.on_collect([this] {
    auto profiles = m_coordinator.profiles_view();
    m_packages.clear();
    for (const auto& profile : profiles) {
      const auto name = profile.value("name", std::string());
      const auto& counts = profile.at("counts");
      for (const auto state : k_package_states) {
        const auto key = std::string(state);
        m_packages.set({name, key}, counts.contains(key) ? counts.at(key).get<double>() : 0.0);
      }
    }
    std::map<std::string, double> drones{
      {"enrolled", 0}, {"online", 0}, {"probation", 0}, {"grounded", 0}, {"offline", 0}};
    for (const auto& drone : m_coordinator.drones_view()) {
      if (drone.contains("state") && drone.at("state").is_string()) {
        drones[drone.at("state").get<std::string>()] += 1;
      }
    }
    m_drones.clear();
    for (const auto& [state, count] : drones) {
      m_drones.set({state}, count);
    }
    if (auto free = fs::free_disk_bytes(m_options.data_dir)) {
      m_staging_free.set(static_cast<double>(*free));
    }
    LastReleases last_release;
    {
      std::lock_guard lock(m_mutex);
      last_release = m_last_release_fn;
    }
    if (last_release) {
      for (const auto& [profile, time] : last_release()) {
        m_last_release.set({profile}, time);
      }
    }
  });
}

Observability::~Observability()
{
  stop();
}

void Observability::set_last_release(LastReleases last_release)
{
  std::lock_guard lock(m_mutex);
  m_last_release_fn = std::move(last_release);
}

void Observability::start()
{
  {
    std::lock_guard lock(m_mutex);
    if (m_started) {
      return;
    }
    m_started = true;
    m_stopping = false;
  }
  m_started_at = epoch_now();
  check_plans(false);
  m_webhooks.start();
  m_thread = std::thread([this] { run(); });
}

void Observability::stop()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  m_webhooks.stop();
}

void Observability::notify(std::string_view event, const std::string& profile, const json& details)
{
  m_events.add({std::string(event)});
  const double now = epoch_now();
  m_webhooks.send(event, json{{"event", event},
                              {"time", webhook_time(now)},
                              {"timestamp", now},
                              {"profile", profile.empty() ? json(nullptr) : json(profile)},
                              {"orchestrator", m_options.orchestrator_url},
                              {"details", details}});
}

void Observability::on_event(const EventRow& row)
{
  const auto& kind = row.kind;
  if (kind == "expired") {
    m_lease_expiries.add();
  } else if (kind == "grounded" && row.detail != "by the operator") {
    m_breaker_trips.add();
  }
  if (kind == "grounded") {
    notify("drone-grounded", "", json{{"drone", row.drone}, {"reason", row.detail}});
  } else if (kind == "offline") {
    notify("drone-offline", "", json{{"drone", row.drone}, {"reason", row.detail}});
  } else if (kind == "online" || kind == "ungrounded" || kind == "probation-passed") {
    notify("drone-back", "", json{{"drone", row.drone}, {"reason", row.detail}, {"after", kind}});
  }
  // What may complete a plan, or make a complete one incomplete again (not every delegation: the
  // check reads every package of the plan).
  const bool plan_change = kind == "received" || kind == "blocked" || kind == "dep-failed" || kind == "unblocked" ||
                           kind == "reset" || kind == "plan" || kind == "auto-retry";
  if (kind == "blocked" || plan_change) {
    {
      std::lock_guard lock(m_mutex);
      if (kind == "blocked") {
        m_pending.push_back(row); // its profile is looked up on the checking thread
      }
      m_plans_dirty = m_plans_dirty || plan_change;
    }
    m_changed.notify_all();
  }
}

void Observability::on_claim_woken(double seconds)
{
  m_wakeup.observe(std::max(0.0, seconds));
}

void Observability::on_request(std::string_view method, std::string_view route, int status)
{
  m_http.add({std::string(route), std::string(method), std::to_string(status)});
}

void Observability::on_claim(double waited_seconds, bool got_work)
{
  if (got_work) {
    m_claim_wait.observe(std::max(0.0, waited_seconds));
  }
}

void Observability::on_report(bool success, double duration_seconds)
{
  const char* result = success ? "success" : "failure";
  m_builds.add({result});
  if (duration_seconds >= 0) {
    m_build_duration.observe({result}, duration_seconds);
  }
}

void Observability::on_upload(uint64_t bytes, bool ok)
{
  if (ok) {
    m_upload_bytes.add(static_cast<double>(bytes));
  } else {
    m_upload_failures.add();
  }
}

void Observability::on_release(const std::string& profile, const json& details)
{
  m_releases.add({profile});
  notify("release-finalized", profile, details);
}

void Observability::on_verify_failed(const std::string& profile, const json& details)
{
  notify("verify-failed", profile, details);
}

void Observability::run()
{
  auto next_check = std::chrono::steady_clock::now();
  std::unique_lock lock(m_mutex);
  while (!m_stopping) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_check) {
      lock.unlock();
      try {
        check_disk();
        check_releases();
        check_plans(true);
      } catch (const std::exception& e) {
        LOG_ERROR("observability checks: {}", e.what());
      }
      lock.lock();
      next_check = std::chrono::steady_clock::now() + m_options.check_interval;
      continue;
    }
    if (m_pending.empty() && !m_plans_dirty) {
      m_changed.wait_until(lock, next_check);
      continue;
    }
    // Plan checks at most every k_plan_check_spacing: a busy plan ends many builds a second.
    if (m_pending.empty() && now < m_last_plan_check + k_plan_check_spacing) {
      m_changed.wait_until(lock, std::min(next_check, m_last_plan_check + k_plan_check_spacing));
      continue;
    }
    auto pending = std::move(m_pending);
    m_pending.clear();
    const bool dirty = m_plans_dirty;
    m_plans_dirty = false;
    lock.unlock();
    try {
      for (const auto& row : pending) {
        resolve_blocked(row);
      }
      if (dirty) {
        check_plans(true);
        m_last_plan_check = std::chrono::steady_clock::now();
      }
    } catch (const std::exception& e) {
      LOG_ERROR("observability: {}", e.what());
    }
    lock.lock();
  }
}

void Observability::resolve_blocked(const EventRow& row)
{
  // The event names the package; the profile is the one whose blocked packages list it.
  std::string profile;
  for (const auto& entry : m_coordinator.profiles_view()) {
    const auto name = entry.value("name", std::string());
    for (const auto& package : m_coordinator.packages_view(name, "blocked")) {
      if (package.value("cpv", std::string()) == row.package) {
        profile = name;
        break;
      }
    }
    if (!profile.empty()) {
      break;
    }
  }
  notify("package-blocked", profile, json{{"package", row.package}, {"drone", row.drone}, {"reason", row.detail}});
}

void Observability::check_plans(bool announce)
{
  for (const auto& entry : m_coordinator.profiles_view()) {
    const auto name = entry.value("name", std::string());
    const auto counts = entry.value("counts", json::object());
    const auto count = [&](const char* key) { return counts.value(key, int64_t{0}); };
    const bool complete = count("total") > 0 && count("needed") == 0 && count("delegated") == 0;
    auto [it, added] = m_complete.try_emplace(name, complete);
    if (!added && complete && !it->second && announce) {
      notify("plan-complete", name,
             json{{"total", count("total")},
                  {"received", count("received")},
                  {"blocked", count("blocked")},
                  {"dep_failed", count("dep-failed")}});
    }
    it->second = complete;
  }
}

void Observability::check_disk()
{
  auto free = fs::free_disk_bytes(m_options.data_dir);
  if (!free || m_options.disk_low == 0) {
    return;
  }
  const bool low = *free < m_options.disk_low;
  if (low && !m_disk_low) {
    notify("disk-low", "",
           json{{"path", m_options.data_dir.string()}, {"free_bytes", *free}, {"threshold_bytes", m_options.disk_low}});
  }
  m_disk_low = low;
}

void Observability::check_releases()
{
  if (m_options.no_release_after <= 0) {
    return;
  }
  LastReleases last_release;
  {
    std::lock_guard lock(m_mutex);
    last_release = m_last_release_fn;
  }
  std::optional<double> last;
  for (const auto& [profile, time] : last_release ? last_release() : std::map<std::string, double>{}) {
    last = std::max(last.value_or(0.0), time);
  }
  const double since = last.value_or(m_started_at);
  const double now = epoch_now();
  if (now - since < m_options.no_release_after || now - m_last_no_release < k_day) {
    return;
  }
  m_last_no_release = now;
  notify("no-release", "",
         json{{"days", m_options.no_release_after / k_day},
              {"last_release", last ? json(webhook_time(*last)) : json(nullptr)},
              {"since", webhook_time(since)}});
}

} // namespace swarm::roles::orch
