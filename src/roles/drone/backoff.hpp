#pragma once
// Exponential backoff for calls to an orchestrator that may be down: 1 s, 2 s, 4 s … capped at
// 60 s, for as long as it takes (an artifact waits in the spool until it is acknowledged).

#include <chrono>

namespace swarm::roles::drone {

class Backoff {
public:
  using Duration = std::chrono::milliseconds;

  explicit Backoff(Duration first = std::chrono::seconds{1}, Duration cap = std::chrono::seconds{60});

  // The wait before the next attempt; each call doubles the following one, up to the cap.
  Duration next();
  // After a success: the next failure waits `first` again.
  void reset();

private:
  Duration m_first;
  Duration m_cap;
  Duration m_next;
};

} // namespace swarm::roles::drone
