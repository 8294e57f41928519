#pragma once
// Rate limiting of failed authentication, per client address and in memory: after `max_failures`
// wrong credentials within `window`, an address is refused (429 with Retry-After) until the
// oldest of them is older than the window. Successful authentication is never counted, and one
// address's failures never affect another's.

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace httplib {
struct Request;
struct Response;
} // namespace httplib

namespace swarm::net {

class AuthFailureLimiter {
public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    int max_failures = 10; // 0: no limit
    std::chrono::seconds window{60};
    size_t max_addresses = 100'000; // memory bound: past it, addresses without recent failures go
  };

  explicit AuthFailureLimiter(Options options) : m_options(options) {}

  bool enabled() const { return m_options.max_failures > 0; }
  // Whole seconds until `address` may try again, when it is refused now.
  std::optional<int> blocked(const std::string& address, Clock::time_point now = Clock::now());
  // A wrong credential from `address`.
  void failed(const std::string& address, Clock::time_point now = Clock::now());
  // Addresses with failures remembered (for tests and metrics).
  size_t tracked() const;

private:
  void forget_old(std::deque<Clock::time_point>& failures, Clock::time_point now) const;

  Options m_options;
  mutable std::mutex m_mutex;
  std::unordered_map<std::string, std::deque<Clock::time_point>> m_failures;
};

// Answers 429 Too Many Requests with Retry-After: `seconds` and a JSON error.
void too_many_failures_response(httplib::Response& response, int seconds);

} // namespace swarm::net
