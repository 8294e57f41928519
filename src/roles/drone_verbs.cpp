// `swarm drone`: the build daemon of a drone machine (src/roles/drone/).

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <pthread.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "core/build_info.hpp"
#include "core/exit_codes.hpp"
#include "core/log.hpp"
#include "core/subprocess.hpp"
#include "net/url.hpp"
#include "roles/drone/agent.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using namespace drone;

std::string default_drone_name()
{
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') {
    return "drone";
  }
  return buffer;
}

void add_drone_options(CLI::App& app, ConfigFlags& flags)
{
  bind_config_flag(app, flags, "--url", "drone.url");
  bind_config_flag(app, flags, "--name", "drone.name");
  bind_config_flag(app, flags, "--token", "drone.token");
  bind_config_flag(app, flags, "--slots", "drone.slots");
  bind_config_flag(app, flags, "--jobs", "drone.jobs");
  bind_config_flag(app, flags, "--spool", "drone.spool");
  bind_config_flag(app, flags, "--emerge", "drone.emerge");
  bind_config_flag(app, flags, "--portage-configroot", "drone.portage_configroot");
  bind_config_flag(app, flags, "--repo-dir", "drone.repo_dir");
  bind_config_flag(app, flags, "--tree-timestamp", "drone.tree_timestamp");
  bind_config_flag(app, flags, "--min-free-disk", "drone.min_free_disk");
  bind_config_flag(app, flags, "--drain", "drone.drain");
  bind_config_flag(app, flags, "--log", "drone.log");
}

// SIGTERM/SIGINT are blocked in every thread and taken by this thread with sigtimedwait, so
// nothing runs in a signal handler. The first signal stops claiming with the configured drain;
// a second one escalates to returning the running builds.
class SignalWatcher {
public:
  SignalWatcher(DroneAgent& agent, DrainMode drain) : m_agent(agent), m_drain(drain)
  {
    m_thread = std::thread([this] { watch(); });
  }
  ~SignalWatcher()
  {
    m_done = true;
    m_thread.join();
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Must run before any other thread is started, so that they all inherit the mask.
  static void block_signals()
  {
    sigset_t set = signal_set();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

private:
  static sigset_t signal_set()
  {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
  }

  void watch()
  {
    const sigset_t set = signal_set();
    int received = 0;
    while (!m_done) {
      timespec timeout{0, 200'000'000};
      const int signal = ::sigtimedwait(&set, nullptr, &timeout);
      if (signal < 0) {
        continue; // timeout or EINTR: look at m_done again
      }
      ++received;
      const auto* name = signal == SIGTERM ? "SIGTERM" : "SIGINT";
      if (received == 1 && m_drain == DrainMode::finish) {
        LOG_INFO("{}: no new work; finishing and uploading running builds (signal again to return them)", name);
        m_agent.request_stop(DrainMode::finish);
      } else {
        LOG_INFO("{}: no new work; killing running builds and returning their leases", name);
        m_agent.request_stop(DrainMode::return_leases);
      }
    }
  }

  DroneAgent& m_agent;
  DrainMode m_drain;
  std::atomic<bool> m_done{false};
  std::thread m_thread;
};

int run_drone(const VerbContext& context)
{
  const auto& config = context.config;
  const auto token = config.get("drone.token");
  if (token.empty()) {
    print_error("no drone token: pass --token, or set SWARM_DRONE_TOKEN or drone.token (`swarm drone enroll NAME` "
                "prints one)");
    return exit_code::k_usage;
  }
  log::add_secret(token);
  if (const auto& log_file = config.get("drone.log"); !log_file.empty()) {
    log::set_file(log_file);
  }

  const auto url = config.get("drone.url");
  if (auto parsed = net::url::parse(url); !parsed) {
    print_error(fmt::format("drone.url: {}", parsed.error().message));
    return exit_code::k_usage;
  }
  const auto drain = drain_mode_from_name(config.get("drone.drain"));
  if (!drain) {
    print_error(fmt::format("drone.drain must be 'finish' or 'return', not '{}'", config.get("drone.drain")));
    return exit_code::k_usage;
  }
  const auto slots_setting = config.get_int("drone.slots");
  const auto jobs_setting = config.get_int("drone.jobs");
  if (slots_setting < 0 || slots_setting > 1024 || jobs_setting < 0 || jobs_setting > 4096) {
    print_error("drone.slots and drone.jobs must be between 0 (automatic) and a sane maximum");
    return exit_code::k_usage;
  }

  DroneSettings settings;
  settings.name = config.get("drone.name").empty() ? default_drone_name() : config.get("drone.name");
  settings.version = build_info::k_version;
  settings.cores = cpu_count();
  settings.slots = slots_setting > 0 ? static_cast<int>(slots_setting) : std::max(1, settings.cores / 4);
  const int jobs = jobs_setting > 0 ? static_cast<int>(jobs_setting) : std::max(1, settings.cores / settings.slots);
  settings.spool = config.get("drone.spool");
  settings.repo_dir = config.get("drone.repo_dir");
  settings.tree_timestamp_override = config.get("drone.tree_timestamp");
  settings.min_free_disk = config.get_bytes("drone.min_free_disk");
  settings.drain = *drain;
  settings.ram_bytes = SystemStats().ram_bytes();

  BuildSettings build;
  build.emerge = config.get("drone.emerge");
  build.portage_configroot = config.get("drone.portage_configroot");
  build.pkgdir = Spool(settings.spool).pkgdir();
  build.jobs = jobs;
  build.token = token;

  SignalWatcher::block_signals();
  subprocess::SystemProcessRunner runner;
  Builder builder(runner, build);
  HttpOrchApi api(url, token);
  DroneAgent agent(settings, api, builder);
  int code = 0;
  {
    SignalWatcher watcher(agent, *drain);
    code = agent.run();
  }
  if (agent.left_threads_behind()) {
    // Workers still blocked in a long-poll cannot be interrupted; nothing of ours is pending
    // (every build is delivered or in the spool), so end the process here.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
  }
  return code;
}

} // namespace

void add_drone_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"drone",
                   "Run a build drone: claim packages from the orchestrator, build them with emerge, upload them",
                   add_drone_options, run_drone});
}

} // namespace swarm::roles
