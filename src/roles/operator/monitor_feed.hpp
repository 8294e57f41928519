#pragma once
// Where `swarm monitor` gets its picture, without reading everything each tick: the events are
// polled incrementally (GET /api/v1/events?since=LAST) every tick; the status (counts, drones with
// their builds, cpu and memory, the time left) is fetched again when events arrived, at most once
// a second, and at least every five seconds (cpu and memory change without an event); the health
// of the gateway and orchestrator every five seconds. Between two status fetches the elapsed time
// of running builds advances on the local clock. The keys' actions go to the admin API.

#include <chrono>
#include <deque>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "net/http_client.hpp"
#include "roles/operator/monitor_screen.hpp"

namespace swarm::roles::operator_cli::monitor {

class Feed {
public:
  using Clock = std::chrono::steady_clock;

  Feed(const net::HttpClient& client, std::string profile);

  // The first full read (health, status, the latest events); an unreachable orchestrator or an
  // answer that is not a status is the error, for the verb to end with.
  Result<> start();
  // One tick: whatever is due as described above. Errors show in the health line; true when
  // anything changed.
  bool poll();
  // The model as of now (running builds' elapsed time advanced since the last status).
  Model model() const;
  // The last status answer, as received.
  const nlohmann::json& status() const;

  // The keys' actions; each answers with the line the screen shows (and whether it failed).
  struct Outcome {
    std::string message;
    bool failed = false;
  };
  Outcome balance();
  Outcome unblock_all();
  Outcome pause_or_resume();
  Outcome reset();

private:
  Result<> fetch_status();
  void fetch_health();
  bool fetch_events();
  std::string with_profile(const std::string& path) const;

  const net::HttpClient& m_client;
  std::string m_profile;
  Model m_model;
  std::unique_ptr<nlohmann::json> m_status;
  int64_t m_last_event = 0;
  std::deque<double> m_completions; // times of "received" events
  Clock::time_point m_status_at{}, m_health_at{}, m_events_at{};
  bool m_events_pending = false; // events arrived since the last status
};

} // namespace swarm::roles::operator_cli::monitor
