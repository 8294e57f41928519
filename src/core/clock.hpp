#pragma once
// Time as a seam: code that waits, expires leases or stamps events asks a Clock, so tests can
// drive time by hand with a ManualClock instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace swarm::clock {

using SystemTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
public:
  virtual ~Clock() = default;

  // Wall-clock time (timestamps, lease expiry stored on disk).
  virtual SystemTime now() const = 0;
  // Monotonic time (timeouts, intervals); never jumps.
  virtual SteadyTime steady_now() const = 0;
  // Returns once steady_now() >= deadline.
  virtual void sleep_until(SteadyTime deadline) = 0;

  void sleep_for(Duration duration) { sleep_until(steady_now() + duration); }
  // now() as seconds since the epoch, the unit the scheduler and breakers work in.
  double now_seconds() const;
};

class SystemClock final : public Clock {
public:
  SystemTime now() const override;
  SteadyTime steady_now() const override;
  void sleep_until(SteadyTime deadline) override;
};

// The process-wide real clock, for code that is handed no other.
Clock& system_clock();

// What ManualClock::sleep_until does with a deadline in the future.
enum class ManualSleep {
  advance, // jumps time forward to the deadline and returns at once (single-threaded tests)
  wait,    // blocks until another thread advances time past the deadline
};

// A clock that only moves when told. Thread-safe.
class ManualClock final : public Clock {
public:
  explicit ManualClock(SystemTime start = SystemTime{std::chrono::seconds{1'700'000'000}},
                       ManualSleep sleep = ManualSleep::advance);

  SystemTime now() const override;
  SteadyTime steady_now() const override;
  void sleep_until(SteadyTime deadline) override;

  // Moves both the wall clock and the steady clock forward and wakes sleepers it passes.
  void advance(Duration duration);
  // Sets the wall clock only (a wall-clock jump; steady time is unaffected).
  void set_now(SystemTime time);

private:
  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  SystemTime m_now;
  SteadyTime m_steady{};
  ManualSleep m_sleep;
};

} // namespace swarm::clock
