#pragma once
// Progress of a plan as the operator sees it, from GET /api/v1/status: one line for `swarm
// monitor` and `swarm demo`, or a JSON object.

#include <string>

#include <nlohmann/json.hpp>

namespace swarm::roles::operator_cli {

struct Progress {
  size_t total = 0, complete = 0, building = 0, needed = 0, failed = 0, blocked = 0, dep_failed = 0;
  size_t drones_online = 0, drones_total = 0, slots_busy = 0, slots_total = 0;
  bool paused = false;

  // Nothing left that can still be built: every package is complete, blocked or dep-failed.
  bool done() const { return total > 0 && complete + blocked + dep_failed == total; }
  // Done, but not everything got built.
  bool stuck() const { return done() && complete < total; }
};

// status["counts"][key], 0 when absent.
size_t status_count(const nlohmann::json& status, const char* key);

Progress progress_from_status(const nlohmann::json& status);
nlohmann::json progress_json(const Progress& progress);
// "[ 12.0s]  312/948 complete (32.9%)  building 6  blocked 0  dep-failed 0  drones 4/4  slots 6/9"
std::string progress_line(const Progress& progress, double elapsed_seconds);

} // namespace swarm::roles::operator_cli
