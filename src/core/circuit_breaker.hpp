#pragma once
// Self-healing breakers. CircuitBreaker: a drone with N consecutive failures is grounded
// (open) for a cool-down, then gets one probation job (half-open); a success closes it, a
// failure opens it again. PackageBreaker: a job that failed on K different workers is the
// job's fault, not the workers'.

#include <set>
#include <string>

namespace swarm::breaker {

enum class BreakerState { closed, open, half_open };

class CircuitBreaker {
public:
  CircuitBreaker(int failure_limit, double cooldown_seconds)
      : m_failure_limit(failure_limit), m_cooldown(cooldown_seconds)
  {}

  // Restores persisted fields.
  void restore(int consecutive_failures, double open_until, bool probation)
  {
    m_failures = consecutive_failures;
    m_open_until = open_until;
    m_probation = probation;
  }

  BreakerState state(double now) const
  {
    if (m_open_until > now) {
      return BreakerState::open;
    }
    return m_probation ? BreakerState::half_open : BreakerState::closed;
  }

  // May a new job start, given how many this worker runs now? Half-open allows exactly one.
  bool allows(double now, int running) const
  {
    switch (state(now)) {
    case BreakerState::closed:
      return true;
    case BreakerState::half_open:
      return running == 0;
    case BreakerState::open:
      return false;
    }
    return false;
  }

  void record_success()
  {
    m_failures = 0;
    m_probation = false;
  }

  // Returns true when this failure trips the breaker (the worker is grounded now).
  bool record_failure(double now)
  {
    ++m_failures;
    if (m_probation || m_failures >= m_failure_limit) {
      trip(now);
      return true;
    }
    return false;
  }

  // Grounds now (operator action or tripping).
  void trip(double now)
  {
    m_open_until = now + m_cooldown;
    m_probation = true; // after the cool-down, one probation job decides
  }

  // Operator: back to normal at once.
  void reset()
  {
    m_failures = 0;
    m_open_until = 0;
    m_probation = false;
  }

  int consecutive_failures() const { return m_failures; }
  double open_until() const { return m_open_until; }
  bool probation() const { return m_probation; }

private:
  int m_failure_limit;
  double m_cooldown;
  int m_failures = 0;
  double m_open_until = 0;
  bool m_probation = false;
};

class PackageBreaker {
public:
  explicit PackageBreaker(int distinct_workers) : m_limit(distinct_workers) {}

  // Records a failure; true when the job must be blocked: it failed on `distinct_workers`
  // different workers, or (when there are too few workers to tell) one more time than that
  // in total.
  bool record_failure(std::set<std::string>& failed_on, int& failures, const std::string& worker) const
  {
    failed_on.insert(worker);
    ++failures;
    return static_cast<int>(failed_on.size()) >= m_limit || failures > m_limit;
  }

private:
  int m_limit;
};

} // namespace swarm::breaker
