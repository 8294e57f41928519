#include <doctest/doctest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "roles/operator/monitor_screen.hpp"

using namespace swarm::roles::operator_cli::monitor;
using nlohmann::json;

namespace {

const std::string k_ellipsis = "\xE2\x80\xA6";

std::string text_of(const Line& line)
{
  std::string out;
  for (const auto& span : line) {
    out += span.text;
  }
  return out;
}

// The span holding `text` on the line that holds `row`, or nullptr.
const Span* span_with(const std::vector<Line>& lines, const std::string& row, const std::string& text)
{
  for (const auto& line : lines) {
    if (text_of(line).find(row) == std::string::npos) {
      continue;
    }
    for (const auto& span : line) {
      if (span.text.find(text) != std::string::npos) {
        return &span;
      }
    }
  }
  return nullptr;
}

json status_json()
{
  auto drone = [](const std::string& name, const std::string& state, int running, json leases) {
    return json{{"name", name},        {"state", state},      {"online", state != "offline"},
                {"cores", 16},         {"slots", 2},          {"running", running},
                {"cpu_percent", 87.4}, {"mem_percent", 41.0}, {"leases", leases}};
  };
  auto lease = [](const std::string& cpv, double elapsed, double expected) {
    return json{{"cpv", cpv}, {"state", "active"}, {"elapsed", elapsed}, {"expected_seconds", expected}};
  };
  return json{
    {"paused", false},
    {"profile", "default"},
    {"counts",
     {{"total", 948u},
      {"received", 312u},
      {"needed", 620u},
      {"ready", 9u},
      {"delegated", 3u},
      {"blocked", 1u},
      {"dep-failed", 12u},
      {"failed", 2u}}},
    {"remaining", {{"critical_path_seconds", 5400.0}, {"work_seconds", 36000.0}}},
    {"orchestrator", {{"version", "0.1.0"}, {"orch_id", "abc"}}},
    {"drones",
     {drone("alpha", "online", 2,
            {lease("dev-qt/qtwebengine-6.7.2-r1-with-a-very-long-version-suffix", 1830, 5400),
             lease("kde-plasma/plasma-workspace-6.1.4", 65, 900)}),
      drone("beta", "online", 0, json::array()), drone("gamma", "grounded", 0, json::array()),
      drone("delta", "offline", 0, json::array()), drone("eps", "online", 1, {lease("app-misc/x-1", 5, 60)})}}};
}

Model sample_model(size_t events = 30)
{
  Model model;
  model.url = "http://127.0.0.1:8080";
  model.now = 1'800'000'000;
  model.gateway = "ok, active orchestrator http://10.0.0.2:8081";
  apply_status(model, status_json());
  for (size_t i = 0; i < events; ++i) {
    model.events.push_back({model.now - 60 + static_cast<double>(i), i % 2 ? "received" : "delegated", "alpha",
                            "app-misc/e" + std::to_string(i) + "-1", ""});
  }
  model.rate_per_hour = 120;
  return model;
}

} // namespace

TEST_CASE("monitor screen: long names end in an ellipsis at exactly the width, short ones are kept")
{
  CHECK(ellipsize("app-misc/foo-1", 20) == "app-misc/foo-1");
  CHECK(ellipsize("app-misc/foo-1", 14) == "app-misc/foo-1");
  CHECK(ellipsize("app-misc/foo-1", 8) == "app-mis" + k_ellipsis);
  CHECK(display_width(ellipsize("app-misc/foo-1", 8)) == 8);
  CHECK(ellipsize("abc", 1) == k_ellipsis);
  CHECK(ellipsize("abc", 0).empty());
  // Cutting text that already holds a multi-byte character never splits it.
  CHECK(ellipsize("ab" + k_ellipsis + "cdef", 4) == "ab" + k_ellipsis + k_ellipsis);
  CHECK(fit("ab", 5) == "ab   ");
  CHECK(fit("ab", 5, true) == "   ab");
  CHECK(fit("abcdefgh", 5) == "abcd" + k_ellipsis);
}

TEST_CASE("monitor screen: durations read at a glance")
{
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(45) == "45s");
  CHECK(format_duration(725) == "12m05s");
  CHECK(format_duration(3 * 3600 + 7 * 60 + 30) == "3h07m");
  CHECK(format_duration(2 * 86400 + 4 * 3600) == "2d04h");
  CHECK(format_duration(-1) == "?");
}

TEST_CASE("monitor screen: a drone's status and its colour")
{
  DroneView drone;
  drone.state = "online";
  drone.running = 1;
  CHECK(drone_status(drone) == "building");
  CHECK(status_color("building") == Color::good);
  drone.running = 0;
  CHECK(drone_status(drone) == "idle");
  CHECK(status_color("idle") == Color::warn);
  drone.state = "grounded";
  CHECK(drone_status(drone) == "grounded");
  CHECK(status_color("grounded") == Color::bad);
  CHECK(status_color("offline") == Color::bad);
  CHECK(event_color("blocked") == Color::bad);
  CHECK(event_color("received") == Color::good);
}

TEST_CASE("monitor screen: the ETA is the critical path or the work over the slots, whichever is longer")
{
  Model model;
  model.critical_path_seconds = 600;
  model.work_seconds = 910;
  model.usable_slots = 1;
  CHECK(eta_seconds(model) == doctest::Approx(910));
  model.usable_slots = 4;
  CHECK(eta_seconds(model) == doctest::Approx(600)); // 910/4 is shorter than the chain
  model.usable_slots = 0;
  CHECK(eta_seconds(model) < 0); // no slot online: not known
  model.work_seconds = 0;
  CHECK(eta_seconds(model) == 0);
}

TEST_CASE("monitor screen: progress bar and rate")
{
  CHECK(progress_bar(0.5, 12) == "[#####-----]");
  CHECK(progress_bar(0, 6) == "[----]");
  CHECK(progress_bar(1, 6) == "[####]");
  const double now = 10'000;
  // The one outside the 15-minute window does not count: 3 in the last 600 s.
  CHECK(rate_per_hour({now - 1800, now - 600, now - 300, now - 60}, now) == doctest::Approx(18));
  CHECK(rate_per_hour({now - 60}, now) < 0);
}

TEST_CASE("monitor screen: the status answer fills the model")
{
  const auto model = sample_model();
  CHECK(model.progress.total == 948);
  CHECK(model.progress.complete == 312);
  CHECK(model.ready == 9);
  CHECK(model.critical_path_seconds == doctest::Approx(5400));
  REQUIRE(model.drones.size() == 5);
  CHECK(model.drones[0].name == "alpha");
  CHECK(model.drones[0].cores == 16);
  REQUIRE(model.drones[0].jobs.size() == 2);
  CHECK(model.drones[0].jobs[1].cpv == "kde-plasma/plasma-workspace-6.1.4");
  CHECK(model.drones[0].jobs[0].expected == doctest::Approx(5400));
  CHECK(model.orchestrator.starts_with("ok"));
}

TEST_CASE("monitor screen: 80x24 holds everything, nothing wraps")
{
  const auto model = sample_model();
  const auto lines = layout(model, 80, 24, true);
  REQUIRE(lines.size() == 24);
  for (const auto& line : lines) {
    CHECK(display_width(text_of(line)) <= 80);
  }
  std::string screen;
  for (const auto& line : lines) {
    screen += text_of(line) + "\n";
  }
  for (const char* name : {"alpha", "beta", "gamma", "delta", "eps"}) {
    CHECK(screen.find(name) != std::string::npos);
  }
  CHECK(screen.find("312/948 complete") != std::string::npos);
  CHECK(screen.find("needed 620") != std::string::npos);
  CHECK(screen.find("blocked 1") != std::string::npos);
  CHECK(screen.find("rate 120/h") != std::string::npos);
  // ETA: 36000 s of work on the 6 slots of drones that can build (not the grounded one's) is
  // 6000 s, longer than the 5400 s chain.
  CHECK(screen.find("ETA 1h40m") != std::string::npos);
  CHECK(text_of(lines.back()).find("q quit") == 0);
  // The long package is cut with an ellipsis in its column; the second build has its own row.
  CHECK(screen.find("dev-qt/qtwebengine-6.7.2") != std::string::npos);
  CHECK(screen.find("suffix") == std::string::npos);
  CHECK(screen.find("30m30s/1h30m") != std::string::npos);
  CHECK(screen.find("kde-plasma/plasma-workspac" + k_ellipsis) != std::string::npos);
  const auto* alpha = span_with(lines, "alpha", "building");
  REQUIRE(alpha != nullptr);
  CHECK(alpha->color == Color::good);
  const auto* beta = span_with(lines, "beta", "idle");
  REQUIRE(beta != nullptr);
  CHECK(beta->color == Color::warn);
  const auto* gamma = span_with(lines, "gamma", "grounded");
  REQUIRE(gamma != nullptr);
  CHECK(gamma->color == Color::bad);
  const auto* delta = span_with(lines, "delta", "offline");
  REQUIRE(delta != nullptr);
  CHECK(delta->color == Color::bad);
  // The newest events fill what is left; the oldest do not fit.
  CHECK(screen.find("app-misc/e29-1") != std::string::npos);
  CHECK(screen.find("app-misc/e0-1 ") == std::string::npos);
}

TEST_CASE("monitor screen: PAUSED is never cut off at 80 columns")
{
  auto model = sample_model();
  model.progress.paused = true;
  model.work_seconds = 9'999'999;
  model.critical_path_seconds = 9'999'999;
  const auto text = plain_text(layout(model, 80, 24, true));
  CHECK(text.find("PAUSED") != std::string::npos);
}

TEST_CASE("monitor screen: at 80 columns the table's columns line up")
{
  const auto lines = layout(sample_model(), 80, 24, true);
  size_t header = 0;
  while (header < lines.size() && text_of(lines[header]).find("DRONE") != 0) {
    ++header;
  }
  REQUIRE(header < lines.size());
  const auto head = text_of(lines[header]);
  const auto row = text_of(lines[header + 1]);
  CHECK(display_width(head) == 80);
  CHECK(display_width(row) == 80);
  CHECK(head.find("PACKAGE") == row.find("dev-qt/"));
  CHECK(head.rfind("MEM") + 3 == head.size());
  CHECK(row.ends_with("41%"));
  CHECK(row.find(k_ellipsis) != std::string::npos);
}

TEST_CASE("monitor screen: more drones than rows say how many are left out; events keep three rows")
{
  auto model = sample_model();
  for (int i = 0; i < 30; ++i) {
    model.drones.push_back({"extra" + std::to_string(i), 4, 1, 0, "online", {}, 10, 10});
  }
  const auto lines = layout(model, 80, 24, true);
  REQUIRE(lines.size() == 24);
  std::string screen;
  for (const auto& line : lines) {
    screen += text_of(line) + "\n";
  }
  CHECK(screen.find("more drone(s)") != std::string::npos);
  CHECK(screen.find("app-misc/e29-1") != std::string::npos);
  CHECK(screen.find("app-misc/e27-1") != std::string::npos);
}

TEST_CASE("monitor screen: a tiny or a wide terminal")
{
  const auto model = sample_model();
  for (auto [width, height] : std::vector<std::pair<size_t, size_t>>{{20, 5}, {40, 10}, {200, 60}}) {
    const auto lines = layout(model, width, height, true);
    CHECK(lines.size() == height);
    for (const auto& line : lines) {
      CHECK(display_width(text_of(line)) <= width);
    }
  }
  // Wide: the long name fits whole.
  const auto wide = plain_text(layout(model, 200, 60, true));
  CHECK(wide.find("very-long-version-suffix") != std::string::npos);
}

TEST_CASE("monitor screen: the plain snapshot has every drone, the latest ten events and no keys")
{
  auto model = sample_model();
  model.message = "balance: 0 package(s) moved back to the queue";
  const auto text = plain_text(layout(model, 100, 0, false));
  CHECK(text.find("312/948 complete") != std::string::npos);
  CHECK(text.find("delta") != std::string::npos);
  CHECK(text.find("q quit") == std::string::npos);
  CHECK(text.find("app-misc/e29-1") != std::string::npos);
  CHECK(text.find("app-misc/e20-1") != std::string::npos);
  CHECK(text.find("app-misc/e19-1") == std::string::npos);
  CHECK(text.find(" \n") == std::string::npos); // no trailing blanks
}
