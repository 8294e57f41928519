#include "roles/operator/monitor_feed.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "net/protocol.hpp"
#include "roles/operator/api_client.hpp"

namespace swarm::roles::operator_cli::monitor {

namespace {

constexpr auto k_tick = std::chrono::milliseconds(900);       // events: a little under a second
constexpr auto k_status_min = std::chrono::milliseconds(900); // status after events, at most this often
constexpr auto k_status_max = std::chrono::seconds(5);        // status at least this often
constexpr auto k_health_every = std::chrono::seconds(5);
constexpr size_t k_events_kept = 200;
constexpr int64_t k_events_at_start = 200; // the latest events read at start (shown, and the rate)
constexpr double k_rate_window = 900;      // seconds of completions the rate is measured over

net::CallOptions monitor_call()
{
  net::CallOptions call;
  call.timeout = std::chrono::seconds(5);
  return call;
}

double monitor_wall_now()
{
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace

Feed::Feed(const net::HttpClient& client, std::string profile)
    : m_client(client), m_profile(std::move(profile)), m_status(std::make_unique<nlohmann::json>())
{
  m_model.url = client.base_url();
  m_model.profile = m_profile.empty() ? std::string("default") : m_profile;
}

std::string Feed::with_profile(const std::string& path) const
{
  return m_profile.empty() ? path : path + "?profile=" + m_profile;
}

const nlohmann::json& Feed::status() const
{
  return *m_status;
}

Result<> Feed::start()
{
  fetch_health();
  if (auto status = fetch_status(); !status) {
    return status;
  }
  const int64_t last = m_status->value("last_event", int64_t{0});
  m_last_event = std::max<int64_t>(0, last - k_events_at_start);
  fetch_events();
  return {};
}

Result<> Feed::fetch_status()
{
  auto status = m_client.get_json(with_profile("/api/v1/status"), monitor_call());
  m_status_at = Clock::now();
  m_events_pending = false;
  if (!status) {
    m_model.orchestrator = "unreachable: " + status.error().message;
    m_model.orchestrator_ok = false;
    return fail(status.error());
  }
  if (!status->is_object() || !status->contains("counts")) {
    return fail(unreadable_answer("GET /api/v1/status", "no counts"));
  }
  *m_status = std::move(*status);
  apply_status(m_model, *m_status);
  return {};
}

void Feed::fetch_health()
{
  m_health_at = Clock::now();
  net::CallOptions call = monitor_call();
  call.on_http_error = net::OnHttpError::return_response;
  auto health = m_client.request("GET", "/healthz", {}, {}, call);
  if (!health || !health->ok()) {
    const auto why = health ? fmt::format("HTTP {}", health->status) : health.error().message;
    (m_model.gateway.empty() ? m_model.orchestrator : m_model.gateway) = "unreachable: " + why;
    (m_model.gateway.empty() ? m_model.orchestrator_ok : m_model.gateway_ok) = false;
    return;
  }
  const auto body = health->json().value_or(nlohmann::json::object());
  if (body.value("role", std::string()) != "gateway") {
    m_model.gateway.clear();
    return;
  }
  const auto active = body.find("active");
  m_model.gateway_ok = active != body.end() && active->is_string();
  m_model.gateway = m_model.gateway_ok ? "ok, active orchestrator " + active->get<std::string>()
                                       : std::string("no healthy orchestrator");
}

bool Feed::fetch_events()
{
  m_events_at = Clock::now();
  auto answer = m_client.get_json(fmt::format("/api/v1/events?since={}&limit=500", m_last_event), monitor_call());
  if (!answer || !answer->is_object()) {
    return false;
  }
  const auto events = answer->value("events", nlohmann::json::array());
  for (const auto& event : events) {
    auto view = event_from_json(event);
    if (view.kind == "received") {
      m_completions.push_back(view.time);
    }
    m_model.events.push_back(std::move(view));
    m_last_event = std::max(m_last_event, event.value("id", m_last_event));
  }
  while (m_model.events.size() > k_events_kept) {
    m_model.events.erase(m_model.events.begin());
  }
  const double now = monitor_wall_now();
  while (!m_completions.empty() && m_completions.front() < now - k_rate_window) {
    m_completions.pop_front();
  }
  if (!events.empty()) {
    m_events_pending = true;
  }
  return !events.empty();
}

bool Feed::poll()
{
  const auto now = Clock::now();
  bool changed = false;
  if (now - m_events_at >= k_tick) {
    changed = fetch_events();
  }
  const auto since_status = now - m_status_at;
  if ((m_events_pending && since_status >= k_status_min) || since_status >= k_status_max || !m_model.orchestrator_ok) {
    if (since_status >= k_status_min) {
      (void)fetch_status();
      changed = true;
    }
  }
  if (now - m_health_at >= k_health_every) {
    fetch_health();
    changed = true;
  }
  return changed;
}

Model Feed::model() const
{
  Model out = m_model;
  const double advanced = std::chrono::duration<double>(Clock::now() - m_status_at).count();
  for (auto& drone : out.drones) {
    for (auto& job : drone.jobs) {
      job.elapsed += advanced;
    }
  }
  out.now = monitor_wall_now();
  out.rate_per_hour = rate_per_hour({m_completions.begin(), m_completions.end()}, out.now, k_rate_window);
  return out;
}

// --- the keys' actions (POST /api/v1/control/ACTION, as `swarm balance` etc.) -----------------

namespace {

template <class Reply>
Result<Reply> post_control(const net::HttpClient& client, const std::string& action, const nlohmann::json& body)
{
  auto answer = post_message<Reply>(client, "/api/v1/control/" + action, body);
  if (!answer) {
    return fail(answer.error());
  }
  return std::move(answer->message);
}

} // namespace

Feed::Outcome Feed::balance()
{
  auto reply = post_control<net::BalanceReply>(m_client, "balance", nlohmann::json::object());
  if (!reply) {
    return {"balance failed: " + reply.error().message, true};
  }
  m_status_at = {};
  return {fmt::format("balance: {} package(s) moved back to the queue", reply->moved.size())};
}

Feed::Outcome Feed::unblock_all()
{
  net::UnblockRequest request;
  request.profile = m_model.profile;
  auto reply = post_control<net::UnblockReply>(m_client, "unblock", request);
  if (!reply) {
    return {"unblock failed: " + reply.error().message, true};
  }
  m_status_at = {};
  return {reply->unblocked.empty() ? std::string("unblock: no package was blocked")
                                   : fmt::format("unblock: {} package(s) unblocked", reply->unblocked.size())};
}

Feed::Outcome Feed::pause_or_resume()
{
  const bool pause = !m_model.progress.paused;
  auto reply = post_control<net::PauseReply>(m_client, pause ? "pause" : "resume", nlohmann::json::object());
  if (!reply) {
    return {fmt::format("{} failed: {}", pause ? "pause" : "resume", reply.error().message), true};
  }
  m_model.progress.paused = reply->paused;
  m_status_at = {};
  return {reply->paused ? "paused: drones get no new work (running builds finish)" : "resumed: drones get work again"};
}

Feed::Outcome Feed::reset()
{
  auto reply = post_control<net::ResetReply>(m_client, "reset", nlohmann::json::object());
  if (!reply) {
    return {"reset failed: " + reply.error().message, true};
  }
  m_status_at = {};
  return {fmt::format("reset: {} package(s) back in the queue; built packages kept", reply->returned)};
}

} // namespace swarm::roles::operator_cli::monitor
