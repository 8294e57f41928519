#include "roles/operator/monitor_screen.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace swarm::roles::operator_cli::monitor {

namespace {

constexpr std::string_view k_ellipsis = "\xE2\x80\xA6"; // U+2026, one column

bool is_continuation(char c)
{
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// "05:29:02", the UTC time of day of `epoch`.
std::string clock_time(double epoch)
{
  const auto seconds = static_cast<time_t>(epoch);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:02}:{:02}:{:02}", utc.tm_hour, utc.tm_min, utc.tm_sec);
}

// `line` cut to `width` columns: the span that crosses the edge ends in an ellipsis.
Line clip(Line line, size_t width)
{
  Line out;
  size_t used = 0;
  for (auto& span : line) {
    const size_t columns = display_width(span.text);
    if (used + columns <= width) {
      used += columns;
      out.push_back(std::move(span));
      continue;
    }
    if (used < width) {
      out.push_back({ellipsize(span.text, width - used), span.color});
    }
    break;
  }
  return out;
}

std::string percent(double value)
{
  return fmt::format("{:.0f}%", std::clamp(value, 0.0, 100.0));
}

struct Columns {
  size_t name = 6, package = 12;
  static constexpr size_t cores = 5, slots = 5, status = 9, time = 13, cpu = 4, mem = 4;
  // Everything but the name and the package, separators included.
  static constexpr size_t fixed = cores + slots + status + time + cpu + mem + 7;
};

Columns columns_for(const Model& model, size_t width)
{
  Columns columns;
  for (const auto& drone : model.drones) {
    columns.name = std::max(columns.name, display_width(drone.name));
  }
  columns.name = std::min<size_t>(columns.name, 16);
  const size_t rest = width > Columns::fixed + columns.name ? width - Columns::fixed - columns.name : 0;
  columns.package = std::max<size_t>(rest, 8);
  return columns;
}

std::string job_time(const Job& job)
{
  return format_duration(job.elapsed) + "/" + format_duration(job.expected);
}

Line drone_line(const DroneView& drone, const Columns& c)
{
  const auto status = drone_status(drone);
  const Job* job = drone.jobs.empty() ? nullptr : &drone.jobs.front();
  std::string tail = " " + fit(job ? job_time(*job) : "", Columns::time, true);
  const bool live = drone.state != "offline" && drone.state != "enrolled";
  tail += " " + fit(live ? percent(drone.cpu_percent) : "-", Columns::cpu, true);
  tail += " " + fit(live ? percent(drone.mem_percent) : "-", Columns::mem, true);
  return {{fit(drone.name, c.name) + " " + fit(std::to_string(drone.cores), Columns::cores, true) + " " +
             fit(fmt::format("{}/{}", drone.running, drone.slots), Columns::slots, true) + " ",
           Color::normal},
          {fit(status, Columns::status), status_color(status)},
          {" " + fit(job ? job->cpv : "", c.package) + tail, Color::normal}};
}

Line job_line(const Job& job, const Columns& c)
{
  const size_t indent = c.name + Columns::cores + Columns::slots + Columns::status + 4;
  return {{std::string(indent, ' ') + fit(job.cpv, c.package) + " " + fit(job_time(job), Columns::time, true),
           Color::normal}};
}

Line header_line(const Columns& c)
{
  return {{fit("DRONE", c.name) + " " + fit("CORES", Columns::cores, true) + " " + fit("SLOTS", Columns::slots, true) +
             " " + fit("STATUS", Columns::status) + " " + fit("PACKAGE", c.package) + " " +
             fit("ELAPSED/EXP", Columns::time, true) + " " + fit("CPU", Columns::cpu, true) + " " +
             fit("MEM", Columns::mem, true),
           Color::title}};
}

Line event_line(const EventView& event)
{
  std::string text = clock_time(event.time) + " ";
  Line out{{text, Color::dim}, {fit(event.kind, 10), event_color(event.kind)}};
  std::string rest = " " + (event.drone.empty() ? std::string("-") : event.drone);
  if (!event.package.empty()) {
    rest += " " + event.package;
  }
  if (!event.detail.empty()) {
    rest += " " + event.detail;
  }
  out.push_back({rest, Color::normal});
  return out;
}

Line count_line(const Model& model)
{
  const auto& p = model.progress;
  auto count = [](std::string_view name, size_t value, Color when_nonzero = Color::normal) {
    return Span{fmt::format("{} {}  ", name, value), value > 0 ? when_nonzero : Color::normal};
  };
  return {count("needed", p.needed),
          count("ready", model.ready),
          count("building", p.building, Color::good),
          count("complete", p.complete),
          count("failed", p.failed, Color::warn),
          count("blocked", p.blocked, Color::bad),
          count("dep-failed", p.dep_failed, Color::bad)};
}

// "PAUSED" first: it must survive the cut at 80 columns.
Line pace_line(const Model& model)
{
  const auto& p = model.progress;
  Line out;
  if (p.paused) {
    out.push_back({"PAUSED  ", Color::warn});
  }
  out.push_back({model.rate_per_hour < 0 ? std::string("rate ?/h") : fmt::format("rate {:.0f}/h", model.rate_per_hour),
                 Color::normal});
  const double eta = eta_seconds(model);
  if (p.done()) {
    out.push_back({p.stuck() ? "  plan stopped: blocked packages remain" : "  plan complete",
                   p.stuck() ? Color::bad : Color::good});
  } else if (eta < 0) {
    out.push_back({"  ETA ? (no drone online)", Color::warn});
  } else {
    out.push_back({fmt::format("  ETA {} (critical path {}, work {} / {} slots)", format_duration(eta),
                               format_duration(model.critical_path_seconds), format_duration(model.work_seconds),
                               model.usable_slots),
                   Color::normal});
  }
  return out;
}

} // namespace

void apply_status(Model& model, const nlohmann::json& status)
{
  model.progress = progress_from_status(status);
  model.ready = status_count(status, "ready");
  model.profile = status.value("profile", model.profile);
  const auto remaining = status.value("remaining", nlohmann::json::object());
  model.critical_path_seconds = remaining.value("critical_path_seconds", 0.0);
  model.work_seconds = remaining.value("work_seconds", 0.0);
  if (const auto orch = status.find("orchestrator"); orch != status.end() && orch->is_object()) {
    model.orchestrator = fmt::format("ok (version {}, id {})", orch->value("version", std::string("?")),
                                     orch->value("orch_id", std::string("?")));
    model.orchestrator_ok = true;
  }
  model.drones.clear();
  model.usable_slots = 0;
  const auto drones = status.value("drones", nlohmann::json::array());
  for (const auto& drone : drones) {
    DroneView view;
    view.name = drone.value("name", std::string());
    view.cores = drone.value("cores", 0);
    view.slots = drone.value("slots", 0);
    view.running = drone.value("running", 0);
    view.state = drone.value("state", std::string());
    view.cpu_percent = drone.value("cpu_percent", 0.0);
    view.mem_percent = drone.value("mem_percent", 0.0);
    for (const auto& lease : drone.value("leases", nlohmann::json::array())) {
      view.jobs.push_back(
        {lease.value("cpv", std::string()), lease.value("elapsed", 0.0), lease.value("expected_seconds", 0.0)});
    }
    if (view.state == "online" || view.state == "probation") {
      model.usable_slots += static_cast<size_t>(std::max(view.slots, 0));
    }
    model.drones.push_back(std::move(view));
  }
}

EventView event_from_json(const nlohmann::json& event)
{
  return {event.value("time", 0.0), event.value("kind", std::string()), event.value("drone", std::string()),
          event.value("package", std::string()), event.value("detail", std::string())};
}

size_t display_width(std::string_view text)
{
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return !is_continuation(c); }));
}

std::string ellipsize(std::string_view text, size_t width)
{
  if (display_width(text) <= width) {
    return std::string(text);
  }
  if (width == 0) {
    return {};
  }
  // Keep width-1 code points, then the ellipsis.
  size_t kept = 0, end = 0;
  while (end < text.size()) {
    size_t next = end + 1;
    while (next < text.size() && is_continuation(text[next])) {
      ++next;
    }
    if (kept + 1 > width - 1) {
      break;
    }
    ++kept;
    end = next;
  }
  return std::string(text.substr(0, end)) + std::string(k_ellipsis);
}

std::string fit(std::string_view text, size_t width, bool right)
{
  auto out = ellipsize(text, width);
  const std::string pad(width - display_width(out), ' ');
  return right ? pad + out : out + pad;
}

std::string format_duration(double seconds)
{
  if (!(seconds >= 0) || std::isinf(seconds)) {
    return "?";
  }
  const auto s = static_cast<long long>(std::llround(seconds));
  if (s < 60) {
    return fmt::format("{}s", s);
  }
  if (s < 3600) {
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  }
  if (s < 86400) {
    return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  }
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string drone_status(const DroneView& drone)
{
  if (drone.state == "online") {
    return drone.running > 0 ? "building" : "idle";
  }
  return drone.state.empty() ? std::string("?") : drone.state;
}

Color status_color(std::string_view status)
{
  if (status == "building") {
    return Color::good;
  }
  if (status == "idle" || status == "probation") {
    return Color::warn;
  }
  if (status == "grounded" || status == "offline") {
    return Color::bad;
  }
  return Color::dim;
}

Color event_color(std::string_view kind)
{
  for (std::string_view bad : {"blocked", "failed", "grounded", "offline", "misbuilt", "expired", "dep-failed"}) {
    if (kind == bad) {
      return Color::bad;
    }
  }
  for (std::string_view warn : {"pause", "reset", "reclaimed", "rebalanced", "returned", "probation", "auto-retry"}) {
    if (kind == warn) {
      return Color::warn;
    }
  }
  return kind == "received" || kind == "online" ? Color::good : Color::normal;
}

double eta_seconds(const Model& model)
{
  if (model.work_seconds <= 0) {
    return 0;
  }
  if (model.usable_slots == 0) {
    return -1;
  }
  return std::max(model.critical_path_seconds, model.work_seconds / static_cast<double>(model.usable_slots));
}

std::string progress_bar(double fraction, size_t width)
{
  if (width < 2) {
    return std::string(width, '[');
  }
  const size_t inner = width - 2;
  const auto filled = static_cast<size_t>(std::floor(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(inner)));
  return "[" + std::string(filled, '#') + std::string(inner - filled, '-') + "]";
}

double rate_per_hour(const std::vector<double>& completions, double now, double window)
{
  size_t count = 0;
  double first = now;
  for (const double time : completions) {
    if (time >= now - window && time <= now) {
      ++count;
      first = std::min(first, time);
    }
  }
  if (count < 2 || now <= first) {
    return -1;
  }
  return static_cast<double>(count) * 3600.0 / (now - first);
}

std::vector<Line> layout(const Model& model, size_t width, size_t height, bool keys)
{
  std::vector<Line> top;
  const std::string clock = model.now > 0 ? clock_time(model.now) + " UTC" : "";
  const std::string title = fmt::format("swarm monitor  {}  profile {}", model.url, model.profile);
  const size_t clock_columns = clock.empty() ? 0 : display_width(clock) + 2;
  top.push_back({{fit(title, width > clock_columns ? width - clock_columns : 0), Color::title},
                 {clock.empty() ? "" : "  " + clock, Color::dim}});
  Line health;
  if (!model.gateway.empty()) {
    health.push_back({"gateway ", Color::normal});
    health.push_back({model.gateway + "  ", model.gateway_ok ? Color::good : Color::bad});
  }
  health.push_back({"orchestrator ", Color::normal});
  health.push_back({model.orchestrator, model.orchestrator_ok ? Color::good : Color::bad});
  top.push_back(std::move(health));
  const auto& p = model.progress;
  const double fraction = p.total == 0 ? 0.0 : static_cast<double>(p.complete) / static_cast<double>(p.total);
  const auto counts = fmt::format(" {}/{} complete ({:.1f}%)", p.complete, p.total, 100.0 * fraction);
  const size_t bar = width > display_width(counts) + 10 ? width - display_width(counts) : 10;
  top.push_back({{progress_bar(fraction, bar), p.done() ? Color::good : Color::normal}, {counts, Color::normal}});
  top.push_back(count_line(model));
  top.push_back(pace_line(model));
  top.push_back({});

  std::vector<Line> bottom;
  if (!model.message.empty()) {
    bottom.push_back({{model.message, model.message_color}});
  }
  if (keys) {
    bottom.push_back({{"q quit  b balance  u unblock all  p pause/resume  R reset", Color::dim}});
  }

  const auto columns = columns_for(model, width);
  std::vector<Line> table{header_line(columns)};
  if (model.drones.empty()) {
    table.push_back({{"no drone enrolled yet", Color::dim}});
  }
  // Rows for the drones and events between the top and the bottom (unbounded without a height):
  // every drone gets its line first, then the events at least three, then the drones' further
  // builds, then the events the rest.
  const size_t fixed = top.size() + bottom.size() + 1 /* table header */ + 2 /* blank, EVENTS */;
  const size_t room = height == 0 ? SIZE_MAX : (height > fixed ? height - fixed : 0);
  const size_t event_floor = std::min<size_t>({3, model.events.size(), room});
  const size_t drone_room = room == SIZE_MAX ? SIZE_MAX : room - event_floor;
  const size_t drone_lines = model.drones.size();
  size_t shown_drones = drone_lines;
  if (drone_lines > drone_room) {
    shown_drones = drone_room > 0 ? drone_room - 1 : 0; // the last row says how many are left out
  }
  size_t job_room = drone_room == SIZE_MAX ? SIZE_MAX : drone_room - std::min(drone_room, drone_lines);
  size_t used = 0;
  for (size_t i = 0; i < shown_drones; ++i) {
    const auto& drone = model.drones[i];
    table.push_back(drone_line(drone, columns));
    ++used;
    for (size_t j = 1; j < drone.jobs.size() && job_room > 0; ++j, --job_room, ++used) {
      table.push_back(job_line(drone.jobs[j], columns));
    }
  }
  if (shown_drones < drone_lines && drone_room > 0) {
    table.push_back(
      {{fmt::format("{} more drone(s) {} widen or heighten the terminal", drone_lines - shown_drones, k_ellipsis),
        Color::dim}});
    ++used;
  }
  const size_t event_room = room == SIZE_MAX ? std::min<size_t>(model.events.size(), 10) : room - std::min(room, used);
  std::vector<Line> out = std::move(top);
  for (auto& line : table) {
    out.push_back(std::move(line));
  }
  out.push_back({});
  out.push_back({{"LATEST EVENTS", Color::title}});
  const size_t shown_events = std::min(event_room, model.events.size());
  for (size_t i = model.events.size() - shown_events; i < model.events.size(); ++i) {
    out.push_back(event_line(model.events[i]));
  }
  if (height > 0) {
    while (out.size() + bottom.size() < height) {
      out.push_back({});
    }
  }
  for (auto& line : bottom) {
    out.push_back(std::move(line));
  }
  if (height > 0 && out.size() > height) {
    out.resize(height);
  }
  for (auto& line : out) {
    line = clip(std::move(line), width);
  }
  return out;
}

std::string plain_text(const std::vector<Line>& lines)
{
  std::string out;
  for (const auto& line : lines) {
    std::string text;
    for (const auto& span : line) {
      text += span.text;
    }
    while (!text.empty() && text.back() == ' ') {
      text.pop_back();
    }
    out += text + "\n";
  }
  return out;
}

} // namespace swarm::roles::operator_cli::monitor
