#include "roles/demo/demo.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <optional>
#include <regex>
#include <thread>

#include <sys/stat.h>

#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "net/http_client.hpp"
#include "net/protocol.hpp"
#include "portage/plan.hpp"
#include "roles/demo/embedded_plan.hpp"
#include "roles/demo/plan_bounds.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/release_steps.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles::demo {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The tree timestamp of the demo: the plan and every drone say the same.
constexpr std::string_view k_tree = "Tue, 01 Dec 2026 00:00:00 +0000";
constexpr std::string_view k_drone_names[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"};
// A run that makes no progress for this long is stuck (a bug, or a machine far too slow).
constexpr double k_stall_seconds = 120;

// Ctrl-C and SIGTERM only set this flag; every wait below polls it, so no child is orphaned.
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_signal(int)
{
  g_interrupted = 1;
}

// Installs the flag-setting handler for SIGINT/SIGTERM and restores the old ones on exit.
class SignalGuard {
public:
  SignalGuard()
  {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &m_old_int);
    ::sigaction(SIGTERM, &action, &m_old_term);
  }
  ~SignalGuard()
  {
    ::sigaction(SIGINT, &m_old_int, nullptr);
    ::sigaction(SIGTERM, &m_old_term, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

private:
  struct sigaction m_old_int {};
  struct sigaction m_old_term {};
};

// Progress and messages: stdout, or stderr when stdout carries the JSON summary.
class Printer {
public:
  explicit Printer(bool to_stderr) : m_out(to_stderr ? stderr : stdout) {}
  template <class... Args>
  void line(fmt::format_string<Args...> format, Args&&... args) const
  {
    fmt::print(m_out, "{}\n", fmt::format(format, std::forward<Args>(args)...));
    std::fflush(m_out);
  }

private:
  std::FILE* m_out;
};

// One child role: its process (in its own process group) and its log file.
struct Child {
  std::string name;
  subprocess::Process process;
  std::filesystem::path log;
  pid_t pid = 0;
  bool running = true;

  // False once the child has exited (reaped).
  bool alive()
  {
    if (running && process.wait_until(Clock::now())) {
      running = false;
    }
    return running;
  }
};

// The data directory: the kept one, or a temporary one removed at the end.
class DataDir {
public:
  explicit DataDir(const std::string& keep)
  {
    if (keep.empty()) {
      m_temp.emplace("swarm-demo");
      m_path = m_temp->path();
    } else {
      m_path = std::filesystem::absolute(keep);
    }
  }
  const std::filesystem::path& path() const { return m_path; }
  bool kept() const { return !m_temp; }

private:
  std::optional<fs::TempDir> m_temp;
  std::filesystem::path m_path;
};

class Demo {
public:
  Demo(const DemoOptions& options, const std::filesystem::path& dir)
      : m_options(options), m_dir(dir), m_print(options.json), m_self(self_executable())
  {}
  ~Demo() { stop_children(); }
  Demo(const Demo&) = delete;
  Demo& operator=(const Demo&) = delete;

  int run();

private:
  Result<> prepare();
  Result<Child*> spawn(const std::string& name, std::vector<std::string> argv,
                       std::map<std::string, std::string> env = {});
  Result<std::string> wait_for_ready(Child& child, const std::string& pattern, double timeout);
  Result<> start_orch();
  Result<> start_gateway();
  Result<> start_drones();
  Result<> wait_for_drones();
  Result<> submit_plan();
  Result<json> watch(double& makespan);
  json release_step();
  Result<> check_children();
  void stop_children();
  int finish(const json& summary, bool ok);

  bool sleep_for(double seconds) const;

  const DemoOptions& m_options;
  std::filesystem::path m_dir;
  Printer m_print;
  std::string m_self;
  portage::Plan m_plan;
  std::filesystem::path m_plan_file;
  std::filesystem::path m_emerge;
  std::vector<std::unique_ptr<Child>> m_children;
  std::string m_orch_url;
  std::string m_gateway_url;
  std::string m_admin_token;
  std::optional<net::HttpClient> m_orch;
  std::vector<std::pair<std::string, int>> m_drones; // name, slots
  Clock::time_point m_submitted;
};

// Sleeps in small steps; false when interrupted.
bool Demo::sleep_for(double seconds) const
{
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    if (g_interrupted) {
      return false;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(milliseconds(50), until - Clock::now()));
  }
  return !g_interrupted;
}

Result<> Demo::prepare()
{
  try {
    auto plan = portage::plan_from_json(json::parse(embedded_desktop_plan()));
    if (!plan) {
      return fail(ErrorKind::internal, "the embedded plan is invalid: {}", plan.error().message);
    }
    m_plan = std::move(*plan);
  } catch (const json::exception& e) {
    return fail(ErrorKind::internal, "the embedded plan is not JSON: {}", e.what());
  }
  m_plan.tree_timestamp = std::string(k_tree);

  if (auto made = fs::make_dirs(m_dir / "bin"); !made) {
    return made;
  }
  m_plan_file = m_dir / "plan.json";
  if (auto written = fs::write_file_atomic(m_plan_file, portage::plan_to_json(m_plan).dump()); !written) {
    return written;
  }
  // The drones' "emerge": the fake builder of this very binary.
  m_emerge = m_dir / "bin" / "emerge";
  if (auto written = fs::write_file_atomic(m_emerge, "#!/bin/sh\nexec \"$SWARM_BIN\" fake-emerge \"$@\"\n", 0755);
      !written) {
    return written;
  }
  return {};
}

Result<Child*> Demo::spawn(const std::string& name, std::vector<std::string> argv,
                           std::map<std::string, std::string> env)
{
  subprocess::Spec spec;
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  auto log = m_dir / "logs" / (name + ".log");
  if (auto made = fs::make_dirs(log.parent_path()); !made) {
    return fail(made.error());
  }
  spec.output_file = log;
  auto process = subprocess::Process::spawn(spec);
  if (!process) {
    return fail(process.error().kind, "cannot start {}: {}", name, process.error().message);
  }
  const auto pid = process->pid();
  m_children.push_back(std::make_unique<Child>(Child{name, std::move(*process), log, pid, true}));
  return m_children.back().get();
}

// Waits for the child's readiness line (a regex with one group, the port) in its log.
Result<std::string> Demo::wait_for_ready(Child& child, const std::string& pattern, double timeout)
{
  const std::regex regex(pattern);
  const auto deadline =
    Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  while (Clock::now() < deadline) {
    if (auto text = fs::read_file(child.log, 1u << 20)) {
      std::smatch match;
      if (std::regex_search(*text, match, regex)) {
        return match[1].str();
      }
    }
    if (!child.alive()) {
      return fail(ErrorKind::unavailable, "{} exited before it was ready (see {})", child.name, child.log.string());
    }
    if (!sleep_for(0.02)) {
      return fail(ErrorKind::unavailable, "interrupted");
    }
  }
  return fail(ErrorKind::unavailable, "{} not ready within {:.0f}s (see {})", child.name, timeout, child.log.string());
}

Result<> Demo::start_orch()
{
  const auto data = m_dir / "orch";
  // Short timers: a demo run is a minute, not a night.
  auto child = spawn("orch", {m_self, "orch", "--listen", "127.0.0.1:0", "--data-dir", data.string(), "--lease-ttl",
                              "10s", "--heartbeat-interval", "1s", "--claim-wait", "5s", "--maintenance-interval", "1s",
                              "--drone-timeout", "10s", "--threads", "64"});
  if (!child) {
    return fail(child.error());
  }
  auto port = wait_for_ready(**child, R"(orch ready on 127\.0\.0\.1:(\d+))", 30);
  if (!port) {
    return fail(port.error());
  }
  m_orch_url = "http://127.0.0.1:" + *port;
  auto token = fs::read_file(data / "admin.token", 4096);
  if (!token) {
    return fail(token.error());
  }
  m_admin_token = std::string(strings::trim(*token));
  net::ClientOptions client;
  client.base_url = m_orch_url;
  client.token = m_admin_token;
  client.timeout = milliseconds(60'000);
  m_orch.emplace(client);
  m_print.line("orch     {}  (data {})", m_orch_url, data.string());
  return {};
}

Result<> Demo::start_gateway()
{
  auto child = spawn("gateway", {m_self, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", m_orch_url,
                                 "--health-interval", "0.5s"});
  if (!child) {
    return fail(child.error());
  }
  auto port = wait_for_ready(**child, R"(gateway ready on 127\.0\.0\.1:(\d+))", 30);
  if (!port) {
    return fail(port.error());
  }
  m_gateway_url = "http://127.0.0.1:" + *port;
  // Drones go through the gateway: wait until it has picked the orchestrator.
  net::HttpClient gateway(net::ClientOptions{m_gateway_url, "", milliseconds(2000), milliseconds(2000), ""});
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (true) {
    auto health = gateway.get_json("/healthz");
    if (health && health->contains("active") && (*health)["active"].is_string()) {
      break;
    }
    if (Clock::now() > deadline) {
      return fail(ErrorKind::unavailable, "the gateway did not pick the orchestrator within 20s");
    }
    if (!sleep_for(0.05)) {
      return fail(ErrorKind::unavailable, "interrupted");
    }
  }
  m_print.line("gateway  {}", m_gateway_url);
  return {};
}

Result<> Demo::start_drones()
{
  for (size_t i = 0; i < m_options.drone_slots.size(); ++i) {
    const auto name = i < std::size(k_drone_names) ? std::string(k_drone_names[i]) : fmt::format("drone{}", i + 1);
    const int slots = m_options.drone_slots[i];
    net::EnrollRequest enroll;
    enroll.name = name;
    auto enrolled = operator_cli::post_message<net::EnrollReply>(*m_orch, "/api/v1/drones/enroll", enroll);
    if (!enrolled) {
      return fail(enrolled.error().kind, "enroll {}: {}", name, enrolled.error().message);
    }
    const auto base = m_dir / "drones" / name;
    for (const auto& dir : {base / "root", base / "configroot", base / "spool"}) {
      if (auto made = fs::make_dirs(dir); !made) {
        return fail(made.error());
      }
    }
    std::map<std::string, std::string> env{
      {"SWARM_DRONE_TOKEN", enrolled->message.token}, // not on argv, where `ps` shows it
      {"SWARM_BIN", m_self},
      {"SWARM_FAKE_PLAN", m_plan_file.string()},
      {"SWARM_FAKE_TIME_SCALE", fmt::format("{}", m_options.time_scale)},
      {"ROOT", (base / "root").string()},
    };
    auto child = spawn("drone-" + name,
                       {m_self, "drone", "--url", m_gateway_url, "--name", name, "--slots", std::to_string(slots),
                        "--spool", (base / "spool").string(), "--emerge", m_emerge.string(), "--portage-configroot",
                        (base / "configroot").string(), "--tree-timestamp", std::string(k_tree), "--min-free-disk",
                        "1M", "--drain", "return",
                        // The fake builder installs into ROOT (its own directory), never into
                        // this machine: no isolated build root needed (nor root privileges).
                        "--build-root", "host"},
                       std::move(env));
    if (!child) {
      return fail(child.error());
    }
    m_drones.emplace_back(name, slots);
    m_print.line("drone    {:<8} {} slot{}  (spool {})", name, slots, slots == 1 ? "" : "s", (base / "spool").string());
  }
  return {};
}

Result<> Demo::wait_for_drones()
{
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (true) {
    if (auto alive = check_children(); !alive) {
      return alive;
    }
    auto status = m_orch->get_json("/api/v1/status");
    if (status) {
      size_t online = 0;
      for (const auto& drone : (*status)["drones"]) {
        online += drone.value("online", false) && drone.value("state", std::string()) != "enrolled" ? 1 : 0;
      }
      if (online == m_drones.size()) {
        return {};
      }
    }
    if (Clock::now() > deadline) {
      return fail(ErrorKind::unavailable, "the drones did not all register within 30s (logs in {})",
                  (m_dir / "logs").string());
    }
    if (!sleep_for(0.05)) {
      return fail(ErrorKind::unavailable, "interrupted");
    }
  }
}

Result<> Demo::submit_plan()
{
  auto answer = operator_cli::submit_plan(*m_orch, m_plan, net::PlanRequest{});
  m_submitted = Clock::now();
  if (!answer) {
    return fail(answer.error().kind, "plan submission: {}", answer.error().message);
  }
  const auto& reply = answer->message;
  m_print.line("plan     {} packages, {} edges submitted ({} cycle edge{} broken)", reply.packages, m_plan.edges.size(),
               reply.warnings.size(), reply.warnings.size() == 1 ? "" : "s");
  return {};
}

Result<> Demo::check_children()
{
  for (auto& child : m_children) {
    if (!child->alive()) {
      return fail(ErrorKind::unavailable, "{} exited unexpectedly (see {})", child->name, child->log.string());
    }
  }
  return {};
}

// Polls the status until every package is received, or nothing more can be built. Prints a
// progress line every second; `makespan` is the time from submission to the last package.
Result<json> Demo::watch(double& makespan)
{
  auto next_line = Clock::now();
  auto last_progress = Clock::now();
  int64_t last_received = -1;
  while (true) {
    if (g_interrupted) {
      return fail(ErrorKind::unavailable, "interrupted");
    }
    if (auto alive = check_children(); !alive) {
      return fail(alive.error());
    }
    auto status = m_orch->get_json("/api/v1/status", net::CallOptions{milliseconds(10'000)});
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - m_submitted).count();
    if (status) {
      const auto& counts = (*status)["counts"];
      const auto total = counts.value("total", int64_t{0});
      const auto received = counts.value("received", int64_t{0});
      const auto delegated = counts.value("delegated", int64_t{0});
      const auto stuck = counts.value("blocked", int64_t{0}) + counts.value("dep-failed", int64_t{0});
      if (received != last_received) {
        last_received = received;
        last_progress = now;
      }
      const bool done = total > 0 && received == total;
      const bool dead_end = total > 0 && received + stuck == total && stuck > 0;
      if (now >= next_line || done || dead_end) {
        std::string per_drone;
        for (const auto& drone : (*status)["drones"]) {
          int running = 0;
          for (const auto& lease : drone.value("leases", json::array())) {
            running += lease.value("state", std::string()) == "active" ? 1 : 0;
          }
          per_drone +=
            fmt::format(" {}:{}/{}", drone.value("name", std::string("?")), running, drone.value("slots", 0));
        }
        m_print.line("[{:6.1f}s] received {:>4}/{}  building {:>2}  ready {:>3}{}  |{}", elapsed, received, total,
                     delegated, counts.value("ready", int64_t{0}),
                     stuck > 0 ? fmt::format("  blocked {}", stuck) : std::string(), per_drone);
        next_line = now + std::chrono::seconds(1);
      }
      if (done || dead_end) {
        makespan = elapsed;
        return *status;
      }
    }
    if (std::chrono::duration<double>(now - last_progress).count() > k_stall_seconds) {
      return fail(ErrorKind::unavailable, "no package received for {:.0f}s (logs in {})", k_stall_seconds,
                  (m_dir / "logs").string());
    }
    sleep_for(0.1);
  }
}

// The release workflow after a complete build: verify, then finalize (publish staging as the
// production binhost). Either endpoint may be missing from this build (404): say so and go on.
json Demo::release_step()
{
  json out{{"available", false}};
  net::CallOptions call;
  call.timeout = milliseconds(120'000);
  auto report = operator_cli::verify_staging(*m_orch, std::nullopt, call);
  if (!report && report.error().kind == ErrorKind::not_found) {
    m_print.line("verify/finalize: not available in this build");
    return out;
  }
  if (!report) {
    out["error"] = "verify: " + report.error().message;
    m_print.line("verify: failed: {}", out["error"].get<std::string>());
    return out;
  }
  out["verify"] = *report;
  m_print.line("verify   risk score {} (threshold {}): {}", report->value("score", json()).dump(),
               report->value("threshold", json()).dump(), report->value("pass", false) ? "pass" : "FAIL");
  // The demo's plan is a real binhost's index, which keeps several versions of some slots on
  // purpose; verify rightly flags them. When those are the only findings the demo does what an
  // operator would after reading them: finalize with --force, and says so.
  bool force = false;
  if (!report->value("pass", true) && report->contains("findings")) {
    force = std::all_of((*report)["findings"].begin(), (*report)["findings"].end(),
                        [](const json& finding) { return finding.value("kind", "") == "slot-conflict"; });
    if (force) {
      m_print.line("verify   every finding ({}) is a slot holding two versions, as in the binhost this plan "
                   "comes from; finalizing with --force",
                   (*report)["findings"].size());
    }
  }
  out["forced"] = force;
  net::FinalizeRequest request;
  request.force = force;
  auto finalized = operator_cli::finalize_release(*m_orch, request, call);
  if (!finalized && finalized.error().kind == ErrorKind::not_found) {
    m_print.line("verify/finalize: not available in this build");
    return out;
  }
  if (!finalized || !finalized->published()) {
    // A refusal (409: risk score above the threshold) is the release gate working, not a bug:
    // show its reason in one line; the findings are in the JSON summary.
    std::string reason =
      finalized ? finalized->body.value("error", fmt::format("HTTP {}", finalized->status)) : finalized.error().message;
    if (finalized) {
      out["findings"] = finalized->body.value("findings", json::array());
    }
    out["error"] = "finalize: " + reason;
    m_print.line("finalize refused: {}", reason);
    return out;
  }
  out["available"] = true;
  const auto& release = finalized->body;
  out["finalize"] = release;
  m_print.line("release  {} ({} packages) published at {}", release.value("release", std::string("?")),
               release.value("packages", json()).dump(), release.value("url", std::string("?")));
  return out;
}

// SIGTERM to every child at once (drones first: they stop claiming and return their leases),
// then each is waited for and killed with SIGKILL after a grace period.
void Demo::stop_children()
{
  for (auto it = m_children.rbegin(); it != m_children.rend(); ++it) {
    if ((*it)->alive()) {
      ::kill(-(*it)->pid, SIGTERM);
    }
  }
  for (auto it = m_children.rbegin(); it != m_children.rend(); ++it) {
    if ((*it)->running) {
      (*it)->process.kill(milliseconds(5000));
      (*it)->running = false;
    }
  }
}

int Demo::run()
{
  m_print.line("swarm demo: data in {}, time scale {}", m_dir.string(), m_options.time_scale);
  int slots = 0;
  for (const auto s : m_options.drone_slots) {
    slots += s;
  }
  const auto fail_with = [&](const Error& error) {
    if (!g_interrupted) {
      print_error(error.message);
    }
    stop_children();
    return g_interrupted ? 130
                         : (error.kind == ErrorKind::unavailable ? exit_code::k_unavailable : exit_code::k_failure);
  };
  for (auto step : {&Demo::prepare, &Demo::start_orch, &Demo::start_gateway, &Demo::start_drones,
                    &Demo::wait_for_drones, &Demo::submit_plan}) {
    if (auto ok = (this->*step)(); !ok) {
      return fail_with(ok.error());
    }
  }
  double makespan = 0;
  auto final_status = watch(makespan);
  if (!final_status) {
    return fail_with(final_status.error());
  }
  const auto& counts = (*final_status)["counts"];
  const auto total = counts.value("total", int64_t{0});
  const auto received = counts.value("received", int64_t{0});
  const bool complete = received == total;

  const auto bounds = plan_bounds(m_plan, m_options.time_scale, slots);
  const double lower = bounds.lower_bound();
  const double ratio = lower > 0 ? makespan / lower : 0;
  std::string staging_url;
  if (auto health = m_orch->get_json("/healthz")) {
    staging_url = health->value("staging_url", std::string());
  }
  const auto staging_dir = m_dir / "orch" / "staging";

  json summary{{"packages", received},
               {"total", total},
               {"blocked", counts.value("blocked", int64_t{0})},
               {"dep_failed", counts.value("dep-failed", int64_t{0})},
               {"complete", complete},
               {"time_scale", m_options.time_scale},
               {"slots", slots},
               {"makespan_seconds", makespan},
               {"critical_path_seconds", bounds.critical_path},
               {"work_per_slot_seconds", bounds.total_work / slots},
               {"lower_bound_seconds", lower},
               {"ratio", ratio},
               {"data_dir", m_dir.string()},
               {"kept", !m_options.keep_dir.empty()},
               {"staging_dir", staging_dir.string()},
               {"staging_url", staging_url},
               {"orch_url", m_orch_url},
               {"gateway_url", m_gateway_url}};
  json children = json::array();
  for (const auto& child : m_children) {
    children.push_back({{"name", child->name}, {"pid", child->pid}});
  }
  summary["children"] = children;

  m_print.line("");
  m_print.line(
    "built      {} of {} packages{}", received, total,
    complete ? ""
             : fmt::format(" ({} blocked, {} dep-failed)", counts.value("blocked", 0), counts.value("dep-failed", 0)));
  m_print.line("makespan   {:.1f}s on {} drones, {} slots", makespan, m_drones.size(), slots);
  m_print.line("bound      {:.1f}s = max(critical path {:.1f}s, work/slots {:.1f}s)  (build_seconds x {})", lower,
               bounds.critical_path, bounds.total_work / slots, m_options.time_scale);
  m_print.line("ratio      {:.2f} (makespan / lower bound; 1.00 is perfect)", ratio);
  m_print.line("staging    {}", staging_dir.string());
  m_print.line("           {}", staging_url);
  if (complete) {
    summary["release"] = release_step();
  }
  return finish(summary, complete);
}

int Demo::finish(const json& summary, bool ok)
{
  stop_children();
  if (m_options.json) {
    fmt::print("{}\n", summary.dump(2));
    std::fflush(stdout);
  }
  if (!ok) {
    print_error("some packages could not be built (see the drone logs)");
    return exit_code::k_failure;
  }
  return exit_code::k_ok;
}

} // namespace

int run_demo(const DemoOptions& options)
{
  if (options.time_scale < 0) {
    print_error("--time-scale must not be negative");
    return exit_code::k_usage;
  }
  if (options.drone_slots.empty() ||
      std::any_of(options.drone_slots.begin(), options.drone_slots.end(), [](int s) { return s < 1; })) {
    print_error("every drone needs at least one slot");
    return exit_code::k_usage;
  }
  if (!options.keep_dir.empty()) {
    std::error_code error;
    if (std::filesystem::exists(options.keep_dir, error) && !std::filesystem::is_empty(options.keep_dir, error)) {
      print_error(fmt::format("--keep {}: the directory is not empty (a demo starts from nothing)", options.keep_dir));
      return exit_code::k_usage;
    }
    if (auto made = fs::make_dirs(options.keep_dir); !made) {
      print_error(made.error().message);
      return exit_code::k_usage;
    }
  }
  g_interrupted = 0;
  SignalGuard signals;
  DataDir dir(options.keep_dir);
  int code = 0;
  {
    Demo demo(options, dir.path());
    code = demo.run();
  }
  if (g_interrupted) {
    print_error("interrupted; every child stopped");
    return 130;
  }
  if (dir.kept()) {
    fmt::print(options.json ? stderr : stdout, "kept       {}\n", dir.path().string());
  }
  return code;
}

} // namespace swarm::roles::demo
