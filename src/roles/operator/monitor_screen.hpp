#pragma once
// What `swarm monitor` shows, without a terminal: the model read from the orchestrator's answers
// (status, health, events) and a pure layout of it into lines of coloured spans for a screen of
// WIDTH×HEIGHT. The ncurses layer (monitor_tui.cpp) only paints these lines; the plain snapshot
// prints them without colour. Unit-tested (tests/unit/monitor_screen_test.cpp).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "roles/operator/progress.hpp"

namespace swarm::roles::operator_cli::monitor {

// The colours of the screen; the terminal layer maps them to colour pairs.
enum class Color { normal, good, warn, bad, dim, title };

struct Span {
  std::string text;
  Color color = Color::normal;
};
using Line = std::vector<Span>;

// A build a drone runs: how long it has run and how long it is expected to take.
struct Job {
  std::string cpv;
  double elapsed = 0, expected = 0;
};

struct DroneView {
  std::string name;
  int cores = 0, slots = 0, running = 0;
  std::string state; // the orchestrator's: online, probation, grounded, offline, enrolled
  std::vector<Job> jobs;
  double cpu_percent = 0, mem_percent = 0;
};

struct EventView {
  double time = 0;
  std::string kind, drone, package, detail;
};

struct Model {
  std::string url, profile = "default";
  // Health: `gateway` is empty when the URL is an orchestrator's; otherwise "ok …" or the error.
  std::string gateway, orchestrator;
  bool gateway_ok = true, orchestrator_ok = true;
  Progress progress;
  size_t ready = 0;
  double critical_path_seconds = 0, work_seconds = 0; // status "remaining"
  double rate_per_hour = -1;                          // negative: not known yet
  size_t usable_slots = 0;                            // of drones online or on probation
  std::vector<DroneView> drones;
  std::vector<EventView> events; // oldest first; the layout shows the newest that fit
  std::string message;           // the answer to the last key, or the reset question
  Color message_color = Color::normal;
  double now = 0; // epoch seconds, for the clock of the title
};

// Fills the counts, drones and remaining time of `model` from GET /api/v1/status.
void apply_status(Model& model, const nlohmann::json& status);
// An event of GET /api/v1/events.
EventView event_from_json(const nlohmann::json& event);

// Display columns of UTF-8 text (one per code point: package names are ASCII, the ellipsis is one).
size_t display_width(std::string_view text);
// `text` cut to `width` columns, its last one an ellipsis when it was longer; never wrapped.
std::string ellipsize(std::string_view text, size_t width);
// `text` cut or padded with spaces to exactly `width` columns; `right` aligns it to the right.
std::string fit(std::string_view text, size_t width, bool right = false);

// "45s", "12m05s", "3h07m", "2d04h"; "?" when not known (negative).
std::string format_duration(double seconds);

// What a drone is doing in the monitor's words: building, idle, probation, grounded, offline,
// enrolled; and its colour (building green, idle yellow, grounded or offline red).
std::string drone_status(const DroneView& drone);
Color status_color(std::string_view status);
Color event_color(std::string_view kind);

// When the plan should be done: the longer of the critical path of what is left and the work
// left spread over the slots of drones that can build (online or on probation) (both over learned durations). 0 when nothing is left,
// negative when no slot is online to do what is left.
double eta_seconds(const Model& model);

// "[#####-----]" of `width` columns for `fraction` (0…1).
std::string progress_bar(double fraction, size_t width);

// Completed packages per hour over the last `window` seconds of `completions` (epoch times),
// measured up to `now`; negative when fewer than two completions are known.
double rate_per_hour(const std::vector<double>& completions, double now, double window = 900);

// The screen: at most `height` lines (0: as many as the model needs, for the plain snapshot), each
// at most `width` columns. `keys` adds the key help line at the bottom.
std::vector<Line> layout(const Model& model, size_t width, size_t height, bool keys);

// The lines' text without colour, one per line (the plain snapshot).
std::string plain_text(const std::vector<Line>& lines);

} // namespace swarm::roles::operator_cli::monitor
