// `swarm monitor`: live progress of the plan until it is done (or stuck), for a terminal or a
// log file. One line per interval; with --json one JSON object per line (NDJSON).
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/exit_codes.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/progress.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

struct MonitorOptions {
  double interval = 2.0; // seconds between updates
  bool once = false;
  bool json = false;
};

int run_monitor(const VerbContext& context, const MonitorOptions& options)
{
  auto client = operator_cli::make_client(context.config);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto status = operator_cli::must(client.get_json("/api/v1/status"));
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
      if (!options.json) {
        fmt::print("{}\n", progress.stuck() ? "plan stopped: blocked packages remain — run `swarm fix-blocked`"
                                            : "plan complete — next: `swarm verify`, then `swarm finalize`");
      }
      return progress.stuck() ? exit_code::k_status_attention : exit_code::k_ok;
    }
    if (options.once) {
      return exit_code::k_ok;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(options.interval));
  }
}

} // namespace

void add_monitor_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<MonitorOptions>(
    "monitor", "Follow the plan's progress live until it is complete (or stuck on blocked packages)",
    [](CLI::App& app, ConfigFlags& flags, MonitorOptions& options) {
      operator_cli::add_client_flags(app, flags);
      app.add_option("--interval", options.interval, "Seconds between updates (default 2)")->check(CLI::PositiveNumber);
      app.add_flag("--once", options.once, "Print one update and exit");
      add_json_flag(app, options.json);
    },
    run_monitor));
}

} // namespace swarm::roles
