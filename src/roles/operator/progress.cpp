#include "roles/operator/progress.hpp"

#include <fmt/format.h>

namespace swarm::roles::operator_cli {

size_t status_count(const nlohmann::json& status, const char* key)
{
  const auto counts = status.find("counts");
  if (counts == status.end() || !counts->is_object()) {
    return 0;
  }
  const auto it = counts->find(key);
  return it != counts->end() && it->is_number_unsigned() ? it->get<size_t>() : 0;
}

Progress progress_from_status(const nlohmann::json& status)
{
  Progress out;
  out.total = status_count(status, "total");
  out.complete = status_count(status, "received");
  out.building = status_count(status, "delegated");
  out.needed = status_count(status, "needed");
  out.failed = status_count(status, "failed");
  out.blocked = status_count(status, "blocked");
  out.dep_failed = status_count(status, "dep-failed");
  out.paused = status.value("paused", false);
  if (status.contains("drones") && status["drones"].is_array()) {
    for (const auto& drone : status["drones"]) {
      ++out.drones_total;
      if (drone.value("online", false)) {
        ++out.drones_online;
        out.slots_total += drone.value("slots", 0u);
        out.slots_busy += drone.value("running", 0u);
      }
    }
  }
  return out;
}

nlohmann::json progress_json(const Progress& progress)
{
  return {{"total", progress.total},
          {"complete", progress.complete},
          {"building", progress.building},
          {"needed", progress.needed},
          {"failed", progress.failed},
          {"blocked", progress.blocked},
          {"dep-failed", progress.dep_failed},
          {"drones_online", progress.drones_online},
          {"drones", progress.drones_total},
          {"slots_busy", progress.slots_busy},
          {"slots", progress.slots_total},
          {"paused", progress.paused},
          {"done", progress.done()}};
}

std::string progress_line(const Progress& progress, double elapsed_seconds)
{
  const double percent =
    progress.total == 0 ? 0.0 : 100.0 * static_cast<double>(progress.complete) / static_cast<double>(progress.total);
  return fmt::format("[{:6.1f}s] {:>5}/{} complete ({:5.1f}%)  building {}  failed {}  blocked {}  dep-failed {}  "
                     "drones {}/{}  slots {}/{}{}",
                     elapsed_seconds, progress.complete, progress.total, percent, progress.building, progress.failed,
                     progress.blocked, progress.dep_failed, progress.drones_online, progress.drones_total,
                     progress.slots_busy, progress.slots_total, progress.paused ? "  PAUSED" : "");
}

} // namespace swarm::roles::operator_cli
