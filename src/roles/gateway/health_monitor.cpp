#include "roles/gateway/health_monitor.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "net/protocol_version.hpp"

namespace swarm::roles::gateway {

namespace {

std::string json_string(const nlohmann::json& object, const char* key)
{
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string_view url_or_none(const std::vector<OrchestratorState>& states, std::optional<size_t> index)
{
  return index ? std::string_view(states[*index].spec.url) : std::string_view("none");
}

} // namespace

Result<OrchestratorInfo> parse_health_answer(const net::Response& response)
{
  if (response.status != 200) {
    return fail(ErrorKind::unavailable, "/healthz answered HTTP {}", response.status);
  }
  auto body = response.json();
  if (!body) {
    return fail(ErrorKind::unavailable, "/healthz: {}", body.error().message);
  }
  if (!body->is_object()) {
    return fail(ErrorKind::unavailable, "/healthz answer is not a JSON object");
  }
  if (json_string(*body, "status") != "ok") {
    return fail(ErrorKind::unavailable, "/healthz status is '{}', not 'ok'", json_string(*body, "status"));
  }
  // Another gateway (or anything else answering /healthz) must not be mistaken for an orchestrator.
  if (json_string(*body, "role") != "orch") {
    return fail(ErrorKind::unavailable, "not an orchestrator (role '{}')", json_string(*body, "role"));
  }
  const auto protocol = body->find("protocol");
  if (protocol == body->end() || !protocol->is_number_integer() ||
      protocol->get<int64_t>() != net::k_protocol_version) {
    return fail(ErrorKind::unavailable, "speaks protocol {}, not {}",
                protocol == body->end() ? "none" : protocol->dump(), net::k_protocol_version);
  }
  OrchestratorInfo info;
  info.orch_id = json_string(*body, "orch_id");
  const auto paused = body->find("paused");
  info.paused = paused != body->end() && paused->is_boolean() && paused->get<bool>();
  info.public_url = json_string(*body, "public_url");
  info.staging_url = json_string(*body, "staging_url");
  info.production_url = json_string(*body, "production_url");
  return info;
}

std::optional<size_t> choose_active(const std::vector<OrchestratorState>& states)
{
  std::optional<size_t> best;
  for (size_t i = 0; i < states.size(); ++i) {
    if (!states[i].healthy) {
      continue;
    }
    if (!best || ranks_higher(states[i].spec, states[*best].spec)) {
      best = i;
    }
  }
  return best;
}

nlohmann::json state_json(const OrchestratorState& state)
{
  nlohmann::json out{{"url", state.spec.url},
                     {"priority", state.spec.priority},
                     {"healthy", state.healthy},
                     {"last_check", nullptr},
                     {"last_error", state.last_error},
                     {"orch_id", nullptr},
                     {"paused", nullptr},
                     {"latency_ms", nullptr}};
  if (state.last_check) {
    out["last_check"] = std::chrono::duration<double>(state.last_check->time_since_epoch()).count();
  }
  if (state.info) {
    out["orch_id"] = state.info->orch_id;
    out["paused"] = state.info->paused;
  }
  if (state.latency_ms) {
    out["latency_ms"] = *state.latency_ms;
  }
  return out;
}

HealthMonitor::HealthMonitor(std::vector<OrchestratorSpec> specs, HealthProbe probe, std::chrono::milliseconds interval,
                             clock::Clock& clock)
    : m_probe(std::move(probe)), m_interval(interval), m_clock(clock)
{
  for (auto& spec : specs) {
    OrchestratorState state;
    state.spec = std::move(spec);
    m_states.push_back(std::move(state));
  }
}

HealthMonitor::~HealthMonitor()
{
  stop();
}

void HealthMonitor::start()
{
  std::lock_guard lock(m_mutex);
  if (!m_threads.empty() || m_stopping) {
    return;
  }
  for (size_t i = 0; i < m_states.size(); ++i) {
    m_threads.emplace_back([this, i] { loop(i); });
  }
}

bool HealthMonitor::wait_first_round(std::chrono::steady_clock::time_point deadline)
{
  std::unique_lock lock(m_mutex);
  return m_changed.wait_until(lock, deadline, [this] {
    return m_stopping || std::all_of(m_states.begin(), m_states.end(),
                                     [](const auto& state) { return state.last_check.has_value(); });
  });
}

void HealthMonitor::stop()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_all();
  for (auto& thread : m_threads) {
    if (thread.joinable()) {
      thread.join();
    }
  }
  m_threads.clear();
}

void HealthMonitor::loop(size_t index)
{
  while (true) {
    // A thread entry: nothing may escape it.
    try {
      check(index);
    } catch (const Fatal& fatal) {
      record(index, fail(fatal.error));
    } catch (const std::exception& exception) {
      record(index, fail(ErrorKind::internal, "health probe: {}", exception.what()));
    }
    std::unique_lock lock(m_mutex);
    // The real clock, not m_clock: this wait must wake at once on stop().
    if (m_changed.wait_for(lock, m_interval, [this] { return m_stopping; })) {
      return;
    }
  }
}

void HealthMonitor::check(size_t index)
{
  const auto started = m_clock.steady_now();
  const auto outcome = m_probe(index);
  const auto latency = std::chrono::duration<double, std::milli>(m_clock.steady_now() - started).count();
  record(index, outcome, latency);
}

void HealthMonitor::record(size_t index, const Result<OrchestratorInfo>& outcome, std::optional<double> latency_ms)
{
  {
    std::lock_guard lock(m_mutex);
    auto& state = m_states.at(index);
    const bool first = !state.last_check;
    const bool was_healthy = state.healthy;
    state.last_check = m_clock.now();
    if (outcome) {
      state.healthy = true;
      state.last_error.clear();
      state.info = *outcome;
      state.latency_ms = latency_ms;
      if (!was_healthy && !first) {
        LOG_INFO("orchestrator {} is healthy again", state.spec.url);
      }
    } else {
      state.healthy = false;
      state.last_error = outcome.error().message;
      state.latency_ms.reset();
      if (was_healthy || first) {
        LOG_WARN("orchestrator {} is unhealthy: {}", state.spec.url, state.last_error);
      }
    }
    update_active_locked();
  }
  m_changed.notify_all();
}

void HealthMonitor::mark_down(size_t index, const std::string& error)
{
  std::lock_guard lock(m_mutex);
  auto& state = m_states.at(index);
  if (state.healthy) {
    LOG_WARN("orchestrator {} is unreachable: {}", state.spec.url, error);
  }
  state.healthy = false;
  state.last_error = error;
  state.latency_ms.reset();
  update_active_locked();
}

void HealthMonitor::update_active_locked()
{
  // Until every orchestrator has been probed once, a lower-ranked one that answered first must
  // not become active only to be replaced a moment later (a false failover in the log).
  const bool all_checked =
    std::all_of(m_states.begin(), m_states.end(), [](const auto& state) { return state.last_check.has_value(); });
  if (!all_checked) {
    return;
  }
  const auto chosen = choose_active(m_states);
  if (!m_chose_once) {
    m_chose_once = true;
    m_active = chosen;
    if (chosen) {
      LOG_INFO("active orchestrator: {}", m_states[*chosen].spec.url);
    } else {
      LOG_WARN("no healthy orchestrator");
    }
    return;
  }
  if (chosen != m_active) {
    LOG_WARN("failover: {} → {}", url_or_none(m_states, m_active), url_or_none(m_states, chosen));
    m_active = chosen;
  }
}

std::optional<HealthMonitor::Active> HealthMonitor::active() const
{
  std::lock_guard lock(m_mutex);
  if (!m_active) {
    return std::nullopt;
  }
  const auto& state = m_states[*m_active];
  return Active{*m_active, state.spec.url, state.info};
}

std::vector<OrchestratorState> HealthMonitor::states() const
{
  std::lock_guard lock(m_mutex);
  return m_states;
}

} // namespace swarm::roles::gateway
