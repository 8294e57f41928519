#pragma once
// The orchestrator seen from outside: its Prometheus metrics (GET /metrics) and its webhooks.
// The coordinator reports events and claim wake-ups while holding its lock, so those calls only
// record (a counter, a queue entry); everything that needs the coordinator's views, a disk or
// the network runs on this class's own thread or on the webhook sender's.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "core/metrics.hpp"
#include "net/webhook.hpp"
#include "roles/orch/model.hpp"

namespace swarm::config {
class Config;
}

namespace swarm::roles::orch {

class Coordinator;

// Every webhook event the orchestrator sends.
inline constexpr std::string_view k_webhook_events[] = {"plan-complete",     "package-blocked", "drone-grounded",
                                                        "drone-offline",     "drone-back",      "disk-low",
                                                        "release-finalized", "verify-failed",   "no-release"};

struct ObservabilityOptions {
  std::filesystem::path data_dir;                   // staging lives here: its free space is watched
  std::string orchestrator_url;                     // named in each webhook body
  uint64_t disk_low = 5ull << 30;                   // free staging bytes under which disk-low fires
  double no_release_after = 7 * 86400.0;            // seconds; 0: never
  std::chrono::milliseconds check_interval{30'000}; // disk and release checks
  std::vector<net::WebhookTarget> webhooks;
  net::WebhookOptions webhook_options;
};

// The webhook targets and options of the [webhook.NAME] sections and orch.* keys.
Result<ObservabilityOptions> observability_options(const config::Config& config);

class Observability {
public:
  Observability(Coordinator& coordinator, ObservabilityOptions options);
  ~Observability();
  Observability(const Observability&) = delete;
  Observability& operator=(const Observability&) = delete;

  // Starts the checking thread and the webhook sender (after the coordinator is loaded).
  void start();
  void stop();

  // --- from the coordinator (under its lock: record only) ---
  void on_event(const EventRow& row);
  void on_claim_woken(double seconds);

  // --- from the API ---
  void on_request(std::string_view method, std::string_view route, int status);
  void on_claim(double waited_seconds, bool got_work);
  void on_report(bool success, double duration_seconds);
  void on_upload(uint64_t bytes, bool ok);
  void on_release(const std::string& profile, const nlohmann::json& details);
  void on_verify_failed(const std::string& profile, const nlohmann::json& details);
  // The time of the latest release of each profile that has one (unix seconds); set by the API.
  using LastReleases = std::function<std::map<std::string, double>()>;
  void set_last_release(LastReleases last_release);

  // Sends a webhook event now (enqueue only).
  void notify(std::string_view event, const std::string& profile, const nlohmann::json& details);

  metrics::Registry& registry() { return m_registry; }
  std::string render() { return m_registry.render(); }

private:
  void run();
  void check_plans(bool announce);
  void check_disk();
  void check_releases();
  void resolve_blocked(const EventRow& row);

  Coordinator& m_coordinator;
  ObservabilityOptions m_options;
  metrics::Registry m_registry;
  net::WebhookSender m_webhooks;

  metrics::Family& m_http;
  metrics::Family& m_builds;
  metrics::Family& m_build_duration;
  metrics::Family& m_claim_wait;
  metrics::Family& m_wakeup;
  metrics::Family& m_upload_bytes;
  metrics::Family& m_upload_failures;
  metrics::Family& m_lease_expiries;
  metrics::Family& m_breaker_trips;
  metrics::Family& m_releases;
  metrics::Family& m_last_release;
  metrics::Family& m_packages;
  metrics::Family& m_drones;
  metrics::Family& m_staging_free;
  metrics::Family& m_events;

  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::deque<EventRow> m_pending; // events whose webhook needs a look at the coordinator
  bool m_plans_dirty = false;
  bool m_stopping = false;
  bool m_started = false;
  std::thread m_thread;
  LastReleases m_last_release_fn;

  // Owned by the checking thread.
  std::map<std::string, bool> m_complete; // profile → its plan was complete at the last check
  bool m_disk_low = false;
  std::chrono::steady_clock::time_point m_last_plan_check{};
  double m_started_at = 0;
  double m_last_no_release = 0;
};

} // namespace swarm::roles::orch
