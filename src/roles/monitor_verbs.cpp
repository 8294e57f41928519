// `swarm monitor`: the plan's progress live. On a terminal a full screen (roles/operator/
// monitor_tui.hpp) until `q`; without one, or with --once, one plain snapshot of the same
// picture; with --json one JSON object per interval (NDJSON) and with --lines one progress line
// per interval (for a log file), both until the plan is done (or stuck).
#include <chrono>
#include <cstdio>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/exit_codes.hpp"
#include "net/protocol.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/monitor_feed.hpp"
#include "roles/operator/monitor_tui.hpp"
#include "roles/operator/profile_option.hpp"
#include "roles/operator/progress.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

struct MonitorOptions {
  double interval = 2.0; // seconds between updates of --json and --lines
  bool once = false;
  bool json = false;
  bool lines = false;
  std::string profile; // empty: the default profile
};

constexpr size_t k_snapshot_width = 100;

// The line after the plan is done, and the exit code it stands for.
int done_code(const operator_cli::Progress& progress, bool print, const std::string& profile)
{
  if (print) {
    fmt::print("{}\n", progress.stuck() ? fmt::format("plan stopped: blocked packages remain — run `{}`",
                                                      operator_cli::profile_command("swarm fix-blocked", profile))
                                        : fmt::format("plan complete — next: `{}`, then `{}`",
                                                      operator_cli::profile_command("swarm verify", profile),
                                                      operator_cli::profile_command("swarm finalize", profile)));
  }
  return progress.stuck() ? exit_code::k_status_attention : exit_code::k_ok;
}

// --json and --lines: one update per interval until the plan is done.
int run_follow(const net::HttpClient& client, const MonitorOptions& options, const std::string& status_path)
{
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto status = operator_cli::must(client.get_json(status_path));
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto progress = operator_cli::progress_from_status(status);
    if (options.json) {
      auto line = operator_cli::progress_json(progress);
      line["elapsed"] = elapsed;
      fmt::print("{}\n", line.dump());
    } else {
      fmt::print("{}\n", operator_cli::progress_line(progress, elapsed));
    }
    std::fflush(stdout);
    if (progress.total > 0 && progress.done()) {
      return done_code(progress, !options.json, options.profile);
    }
    if (options.once) {
      return exit_code::k_ok;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(options.interval));
  }
}

int run_monitor(const VerbContext& context, const MonitorOptions& options)
{
  if (!options.profile.empty() && !net::is_valid_profile_name(options.profile)) {
    throw Fatal{Error{ErrorKind::invalid, fmt::format("\"{}\" is not a profile name", options.profile)}};
  }
  const auto client = operator_cli::make_client(context.config);
  if (options.json || options.lines) {
    return run_follow(client, options,
                      options.profile.empty() ? "/api/v1/status" : "/api/v1/status?profile=" + options.profile);
  }
  operator_cli::monitor::Feed feed(client, options.profile);
  if (auto started = feed.start(); !started) {
    throw Fatal{started.error()};
  }
  if (!options.once && isatty(STDIN_FILENO) != 0 && isatty(STDOUT_FILENO) != 0) {
    return operator_cli::monitor::run_tui(feed);
  }
  const auto model = feed.model();
  fmt::print("{}", operator_cli::monitor::plain_text(operator_cli::monitor::layout(model, k_snapshot_width, 0, false)));
  const auto& progress = model.progress;
  return progress.total > 0 && progress.done() ? done_code(progress, true, options.profile) : exit_code::k_ok;
}

} // namespace

void add_monitor_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<MonitorOptions>(
    "monitor",
    "Watch the swarm live: a full screen on a terminal (q quit, b balance, u unblock all, p pause/resume, R reset), "
    "else one snapshot",
    [](CLI::App& app, ConfigFlags& flags, MonitorOptions& options) {
      operator_cli::add_client_flags(app, flags);
      operator_cli::add_profile_option(app, options.profile, "The swarm profile to watch (default: default)");
      app.add_option("--interval", options.interval, "Seconds between updates of --json and --lines (default 2)")
        ->check(CLI::PositiveNumber);
      app.add_flag("--once", options.once, "Print one snapshot (with --json or --lines: one update) and exit");
      app.add_flag("--lines", options.lines,
                   "One progress line per interval until the plan is complete or stuck (for a log file)");
      add_json_flag(app, options.json);
    },
    run_monitor));
}

} // namespace swarm::roles
