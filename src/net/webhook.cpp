#include "net/webhook.hpp"

#include <algorithm>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/strings.hpp"
#include "net/http_client.hpp"
#include "net/url.hpp"

namespace swarm::net {

bool WebhookTarget::wants(std::string_view event) const
{
  return events.empty() ||
         std::ranges::any_of(events, [&](const std::string& wanted) { return wanted == "*" || wanted == event; });
}

Result<WebhookTarget> make_webhook_target(const std::string& name, const std::string& url,
                                          const std::vector<std::string>& events, const std::string& header,
                                          const std::vector<std::string_view>& known_events)
{
  WebhookTarget target;
  target.name = name;
  target.url = url;
  if (url.empty()) {
    return fail(ErrorKind::invalid, "webhook.{}.url is not set", name);
  }
  auto parsed = url::parse(url);
  if (!parsed) {
    return fail(ErrorKind::invalid, "webhook.{}.url: {}", name, parsed.error().message);
  }
  for (const auto& event : events) {
    if (event != "*" && std::ranges::find(known_events, std::string_view(event)) == known_events.end()) {
      return fail(ErrorKind::invalid, "webhook.{}.events: unknown event '{}' (known: {})", name, event,
                  fmt::join(known_events, ", "));
    }
  }
  target.events = events;
  if (!header.empty()) {
    const auto colon = header.find(':');
    const auto header_name =
      colon == std::string::npos ? std::string_view() : strings::trim(std::string_view(header).substr(0, colon));
    if (header_name.empty() || header_name.find_first_of(" \t\r\n") != std::string_view::npos ||
        header.find_first_of("\r\n") != std::string::npos) {
      return fail(ErrorKind::invalid, "webhook.{}.header must be 'Name: value'", name);
    }
    target.header_name = std::string(header_name);
    target.header_value = std::string(strings::trim(std::string_view(header).substr(colon + 1)));
  }
  return target;
}

WebhookSender::WebhookSender(std::vector<WebhookTarget> targets, WebhookOptions options, metrics::Registry* registry)
    : m_targets(std::move(targets)), m_options(options)
{
  for (const auto& target : m_targets) {
    ClientOptions client;
    client.base_url = target.url;
    client.timeout = m_options.timeout;
    client.connect_timeout = std::min(m_options.timeout, std::chrono::milliseconds{5'000});
    m_clients.push_back(std::make_unique<HttpClient>(std::move(client)));
  }
  if (registry) {
    m_delivered =
      &registry->counter("swarm_webhook_deliveries_total",
                         "Webhook delivery attempts by result (delivered, retry, failed: given up)", {"result"});
    m_dropped_metric =
      &registry->counter("swarm_webhook_dropped_total", "Webhook deliveries dropped because the queue was full");
    m_queue_metric = &registry->gauge("swarm_webhook_queue", "Webhook deliveries waiting");
    m_dropped_metric->add(0);
    m_queue_metric->set(0);
  }
}

WebhookSender::~WebhookSender()
{
  stop();
}

void WebhookSender::start()
{
  std::lock_guard lock(m_mutex);
  if (m_thread.joinable() || m_targets.empty()) {
    return;
  }
  m_stopping = false;
  m_thread = std::thread([this] { run(); });
}

void WebhookSender::stop()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  std::lock_guard lock(m_mutex);
  if (!m_queue.empty()) {
    LOG_WARN("{} webhook deliveries not sent before stopping", m_queue.size());
    m_queue.clear();
  }
}

uint64_t WebhookSender::dropped() const
{
  std::lock_guard lock(m_mutex);
  return m_dropped;
}

void WebhookSender::send(std::string_view event, const nlohmann::json& body)
{
  if (m_targets.empty()) {
    return;
  }
  const auto text = body.dump();
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < m_targets.size(); ++i) {
      if (!m_targets[i].wants(event)) {
        continue;
      }
      while (m_options.queue_limit > 0 && m_queue.size() >= m_options.queue_limit) {
        m_queue.pop_front();
        ++m_dropped;
        if (m_dropped_metric) {
          m_dropped_metric->add();
        }
      }
      m_queue.push_back(Delivery{i, std::string(event), text, 0, now});
    }
    if (m_queue_metric) {
      m_queue_metric->set(static_cast<double>(m_queue.size()));
    }
  }
  m_changed.notify_all();
}

bool WebhookSender::deliver(const Delivery& delivery)
{
  const auto& target = m_targets[delivery.target];
  HeaderList headers{{"Content-Type", "application/json"}, {"User-Agent", "swarm-webhook"}};
  if (!target.header_name.empty()) {
    headers.emplace_back(target.header_name, target.header_value);
  }
  CallOptions call;
  call.on_http_error = OnHttpError::return_response;
  call.max_response_bytes = 1u << 20;
  auto answer = m_clients[delivery.target]->request("POST", target.url, delivery.body, headers, call);
  if (answer && answer->ok()) {
    LOG_DEBUG("webhook {}: {} delivered", target.name, delivery.event);
    return true;
  }
  LOG_WARN("webhook {}: {} not delivered (attempt {}): {}", target.name, delivery.event, delivery.attempt + 1,
           answer ? fmt::format("HTTP {}", answer->status) : answer.error().message);
  return false;
}

void WebhookSender::run()
{
  std::unique_lock lock(m_mutex);
  while (!m_stopping) {
    if (m_queue.empty()) {
      m_changed.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
      continue;
    }
    auto next = std::ranges::min_element(m_queue, {}, &Delivery::due);
    const auto now = std::chrono::steady_clock::now();
    if (next->due > now) {
      m_changed.wait_until(lock, next->due);
      continue;
    }
    Delivery delivery = std::move(*next);
    m_queue.erase(next);
    if (m_queue_metric) {
      m_queue_metric->set(static_cast<double>(m_queue.size()));
    }
    lock.unlock();
    const bool delivered = deliver(delivery);
    lock.lock();
    if (delivered) {
      if (m_delivered) {
        m_delivered->add({"delivered"});
      }
      continue;
    }
    if (delivery.attempt + 1 >= m_options.max_attempts || m_stopping) {
      LOG_ERROR("webhook {}: giving up on {} after {} attempts", m_targets[delivery.target].name, delivery.event,
                delivery.attempt + 1);
      if (m_delivered) {
        m_delivered->add({"failed"});
      }
      continue;
    }
    if (m_delivered) {
      m_delivered->add({"retry"});
    }
    auto backoff = m_options.first_backoff * (int64_t{1} << std::min(delivery.attempt, 20));
    backoff = std::min(backoff, m_options.max_backoff);
    ++delivery.attempt;
    delivery.due = std::chrono::steady_clock::now() + backoff;
    if (m_options.queue_limit > 0 && m_queue.size() >= m_options.queue_limit) {
      ++m_dropped;
      if (m_dropped_metric) {
        m_dropped_metric->add();
      }
      continue;
    }
    m_queue.push_back(std::move(delivery));
    if (m_queue_metric) {
      m_queue_metric->set(static_cast<double>(m_queue.size()));
    }
  }
}

} // namespace swarm::net
