#include "net/auth_limiter.hpp"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "net/http_server.hpp"

namespace swarm::net {

void AuthFailureLimiter::forget_old(std::deque<Clock::time_point>& failures, Clock::time_point now) const
{
  while (!failures.empty() && failures.front() + m_options.window <= now) {
    failures.pop_front();
  }
}

std::optional<int> AuthFailureLimiter::blocked(const std::string& address, Clock::time_point now)
{
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_failures.find(address);
  if (it == m_failures.end()) {
    return std::nullopt;
  }
  forget_old(it->second, now);
  if (it->second.empty()) {
    m_failures.erase(it);
    return std::nullopt;
  }
  const auto max = static_cast<size_t>(m_options.max_failures);
  if (it->second.size() < max) {
    return std::nullopt;
  }
  // Free again once enough failures have aged out of the window to leave room for one more.
  const auto until = it->second[it->second.size() - max] + m_options.window;
  const auto left = std::chrono::ceil<std::chrono::seconds>(until - now).count();
  return static_cast<int>(std::max<int64_t>(1, left));
}

void AuthFailureLimiter::failed(const std::string& address, Clock::time_point now)
{
  if (!enabled()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  if (m_failures.size() >= m_options.max_addresses && !m_failures.contains(address)) {
    for (auto it = m_failures.begin(); it != m_failures.end();) {
      forget_old(it->second, now);
      it = it->second.empty() ? m_failures.erase(it) : std::next(it);
    }
    if (m_failures.size() >= m_options.max_addresses) {
      return; // every remembered address is failing now: this one is not remembered
    }
  }
  auto& failures = m_failures[address];
  forget_old(failures, now);
  failures.push_back(now);
  // Only the newest max_failures matter; an address cannot grow its entry without bound.
  while (failures.size() > static_cast<size_t>(m_options.max_failures)) {
    failures.pop_front();
  }
}

size_t AuthFailureLimiter::tracked() const
{
  std::lock_guard lock(m_mutex);
  return m_failures.size();
}

void too_many_failures_response(httplib::Response& response, int seconds)
{
  response.set_header("Retry-After", std::to_string(seconds));
  json_response(response, 429,
                {{"error", fmt::format("too many failed authentications from this address; retry in {} s", seconds)},
                 {"kind", "rate_limited"}});
}

} // namespace swarm::net
