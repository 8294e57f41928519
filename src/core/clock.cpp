#include "core/clock.hpp"

#include <thread>

namespace swarm::clock {

double Clock::now_seconds() const
{
  return std::chrono::duration<double>(now().time_since_epoch()).count();
}

SystemTime SystemClock::now() const
{
  return std::chrono::system_clock::now();
}

SteadyTime SystemClock::steady_now() const
{
  return std::chrono::steady_clock::now();
}

void SystemClock::sleep_until(SteadyTime deadline)
{
  std::this_thread::sleep_until(deadline);
}

Clock& system_clock()
{
  static SystemClock instance;
  return instance;
}

ManualClock::ManualClock(SystemTime start, ManualSleep sleep) : m_now(start), m_sleep(sleep)
{}

SystemTime ManualClock::now() const
{
  std::lock_guard lock(m_mutex);
  return m_now;
}

SteadyTime ManualClock::steady_now() const
{
  std::lock_guard lock(m_mutex);
  return m_steady;
}

void ManualClock::sleep_until(SteadyTime deadline)
{
  std::unique_lock lock(m_mutex);
  if (m_steady >= deadline) {
    return;
  }
  if (m_sleep == ManualSleep::advance) {
    const auto step = deadline - m_steady;
    m_steady = deadline;
    m_now += std::chrono::duration_cast<SystemTime::duration>(step);
    m_changed.notify_all();
    return;
  }
  m_changed.wait(lock, [&] { return m_steady >= deadline; });
}

void ManualClock::advance(Duration duration)
{
  {
    std::lock_guard lock(m_mutex);
    m_steady += duration;
    m_now += std::chrono::duration_cast<SystemTime::duration>(duration);
  }
  m_changed.notify_all();
}

void ManualClock::set_now(SystemTime time)
{
  std::lock_guard lock(m_mutex);
  m_now = time;
}

} // namespace swarm::clock
