#pragma once
// What a drone counts for GET /metrics, and its optional listener (drone.listen) serving
// /healthz (alive), /readyz (registered with its orchestrator) and /metrics.

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "core/metrics.hpp"

namespace swarm::net {
class HttpServer;
}

namespace swarm::roles::drone {

class DroneMetrics {
public:
  DroneMetrics();

  void build_finished(bool success, double seconds);
  // result: "ok" (accepted), "retry" (to be tried again), "refused" (for good)
  void upload(const char* result, uint64_t bytes = 0);
  void set_registered(bool registered) { m_registered = registered; }
  bool registered() const { return m_registered; }

  metrics::Registry& registry() { return m_registry; }

private:
  metrics::Registry m_registry;
  metrics::Family& m_builds;
  metrics::Family& m_build_duration;
  metrics::Family& m_uploads;
  metrics::Family& m_upload_bytes;
  std::atomic<bool> m_registered{false};
};

// What the listener reads at each scrape.
struct DroneProbe {
  std::string name;
  int slots_total = 0;
  std::function<int()> slots_busy;
  std::function<Result<uint64_t>()> spool_free;
  std::function<bool()> stopping;
};

// Serves /healthz, /readyz and /metrics on `listen` (HOST:PORT, port 0: any) on a background
// thread; logs "drone listening on HOST:PORT". The server stops when the returned object goes.
Result<std::unique_ptr<net::HttpServer>> start_drone_listener(const std::string& listen, DroneMetrics& metrics,
                                                              DroneProbe probe);

} // namespace swarm::roles::drone
