#pragma once
// Webhooks: events POSTed as JSON to configured URLs from one background thread. send() only
// enqueues (a bounded queue: past its limit the oldest delivery is dropped and counted), so a
// slow or dead receiver never blocks the caller; a failed delivery (no answer, or not 2xx) is
// retried with exponential backoff up to a number of attempts.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"

namespace swarm::metrics {
class Registry;
class Family;
} // namespace swarm::metrics

namespace swarm::net {

class HttpClient;

struct WebhookTarget {
  std::string name; // the NAME of [webhook.NAME]
  std::string url;
  std::vector<std::string> events; // empty or "*": every event
  std::string header_name;         // optional extra header (a shared secret)
  std::string header_value;

  bool wants(std::string_view event) const;
};

// A target from its configuration; `known_events` checks the events list (a typo is an error).
Result<WebhookTarget> make_webhook_target(const std::string& name, const std::string& url,
                                          const std::vector<std::string>& events, const std::string& header,
                                          const std::vector<std::string_view>& known_events);

struct WebhookOptions {
  size_t queue_limit = 1000;
  int max_attempts = 8;
  std::chrono::milliseconds first_backoff{1'000}; // doubles after each failed attempt
  std::chrono::milliseconds max_backoff{300'000};
  std::chrono::milliseconds timeout{10'000}; // of one delivery
};

class WebhookSender {
public:
  // `registry` (optional) gets swarm_webhook_deliveries_total{result}, swarm_webhook_dropped_total
  // and swarm_webhook_queue.
  WebhookSender(std::vector<WebhookTarget> targets, WebhookOptions options, metrics::Registry* registry = nullptr);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  void start();
  // Ends the thread; deliveries still queued are given up (logged).
  void stop();

  // Queues `body` for every target that wants `event`. Never waits for the network.
  void send(std::string_view event, const nlohmann::json& body);

  bool empty() const { return m_targets.empty(); }
  uint64_t dropped() const;

private:
  struct Delivery {
    size_t target = 0;
    std::string event;
    std::string body;
    int attempt = 0;
    std::chrono::steady_clock::time_point due;
  };
  void run();
  bool deliver(const Delivery& delivery);

  std::vector<WebhookTarget> m_targets;
  std::vector<std::unique_ptr<HttpClient>> m_clients;
  WebhookOptions m_options;
  metrics::Family* m_delivered = nullptr;
  metrics::Family* m_dropped_metric = nullptr;
  metrics::Family* m_queue_metric = nullptr;

  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::deque<Delivery> m_queue;
  uint64_t m_dropped = 0;
  bool m_stopping = false;
  std::thread m_thread;
};

} // namespace swarm::net
