// `swarm drone`: the build daemon of a drone machine (src/roles/drone/); `swarm drone
// reset-root`; and the hidden helper every emerge of a drone runs through, `swarm drone-root`.

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
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/mount_table.hpp"
#include "core/secrets.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "net/http_server.hpp"
#include "net/url.hpp"
#include "roles/drone/agent.hpp"
#include "roles/drone/build_root.hpp"
#include "roles/drone/drone_facts.hpp"
#include "roles/drone/drone_metrics.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

// Named, so that the using-directive stays here when a unity batch joins this file's anonymous
// namespace with its neighbours'.
namespace drone_verbs {
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
  bind_config_flag(app, flags, "--token-file", "drone.token_file");
  bind_config_flag(app, flags, "--ca", "drone.ca");
  bind_config_flag(app, flags, "--slots", "drone.slots");
  bind_config_flag(app, flags, "--jobs", "drone.jobs");
  bind_config_flag(app, flags, "--spool", "drone.spool");
  bind_config_flag(app, flags, "--listen", "drone.listen");
  bind_config_flag(app, flags, "--emerge", "drone.emerge");
  bind_config_flag(app, flags, "--portage-configroot", "drone.portage_configroot");
  bind_config_flag(app, flags, "--repo-dir", "drone.repo_dir");
  bind_config_flag(app, flags, "--tree-timestamp", "drone.tree_timestamp");
  bind_config_flag(app, flags, "--min-free-disk", "drone.min_free_disk");
  bind_config_flag(app, flags, "--drain", "drone.drain");
  bind_config_flag(app, flags, "--log", "drone.log");
  bind_config_flag(app, flags, "--build-root", "drone.build_root");
  bind_config_flag(app, flags, "--build-cache", "drone.build_cache");
  bind_config_flag(app, flags, "--profiles", "drone.profiles");
  // Repeatable: `--build-base /srv/stage3 --build-base server=/srv/stage3-server`.
  const auto* key = config::find_key("drone.build_base");
  app
    .add_option_function<std::vector<std::string>>(
      "--build-base",
      [&flags](const std::vector<std::string>& values) { flags["drone.build_base"] = strings::join(values, ","); },
      fmt::format("{} [drone.build_base] (repeat it)", key->help))
    ->allow_extra_args(false);
}

// What the drone needs to know before it starts: its Portage (portageq), the filesystems an
// isolated root over / must cover, whether such roots can be set up at all, and the CHOST of
// each build base. Prints what is wrong and returns false when the drone must not start.
bool prepare_build_roots(DroneSettings& settings, subprocess::ProcessRunner& runner, const std::string& emerge)
{
  auto& roots = settings.build_root;
  auto& setup = settings.setup;
  const auto portageq = portageq_beside(emerge);
  auto facts = query_drone_facts(runner, portageq, setup.drone_configroot);
  if (facts) {
    setup.facts = std::move(*facts);
  } else {
    LOG_WARN("cannot ask this drone's Portage about itself ({}); leases with a build profile will be refused",
             facts.error().message);
  }
  setup.base_chosts["/"] = setup.facts.chost;
  if (roots.mode == BuildRootMode::host) {
    return true;
  }
  if (::geteuid() != 0) {
    print_error("isolated build roots need root (mount namespaces, overlayfs); run the drone as root, or pass "
                "--build-root host to build on this machine's own system");
    return false;
  }
  // What is bound into every root need not (and must not) be a layer of its own.
  std::vector<std::filesystem::path> excluded{settings.spool, setup.facts.distdir, setup.facts.portage_tmpdir};
  for (const auto& repository : setup.facts.repositories.repositories) {
    excluded.push_back(setup.facts.repositories.location(repository.name));
  }
  std::erase_if(excluded, [](const auto& path) { return path.empty(); });
  if (auto table = mounts::read_mount_table()) {
    auto below = base_submounts(*table, excluded);
    roots.base_submounts = std::move(below.directories);
    roots.base_file_mounts = std::move(below.files);
  } else {
    LOG_WARN("cannot read the mount table ({}); isolated roots over / cover its root filesystem only",
             table.error().message);
  }
  std::vector<std::filesystem::path> bases{roots.bases.fallback};
  for (const auto& [profile, base] : roots.bases.per_profile) {
    bases.push_back(base);
  }
  const BuildRoots probe_roots(roots);
  for (const auto& base : bases) {
    if (setup.base_chosts.contains(base) && base != "/") {
      continue;
    }
    if (auto probed = probe_roots.probe(runner, base); !probed) {
      print_error(fmt::format("{}. The drone needs root, overlayfs and mount namespaces for isolated build roots; "
                              "pass --build-root host to build on this machine's own system instead",
                              probed.error().message));
      return false;
    }
    if (base == "/") {
      continue;
    }
    // What another base produces: ask its own Portage, inside a root over it.
    auto scratch = probe_roots.scratch_root(base, "chost");
    if (!scratch) {
      print_error(scratch.error().message);
      return false;
    }
    auto wrapper = probe_roots.wrap(&*scratch, "", {});
    auto base_facts = query_drone_facts(runner, portageq, "/", wrapper);
    std::optional<RootUse> owned(std::move(*scratch));
    probe_roots.release(owned);
    if (base_facts) {
      setup.base_chosts[base] = base_facts->chost;
    } else {
      LOG_WARN("cannot learn the CHOST of the build base {} ({}); leases with a build profile that build on it will "
               "be refused",
               base.string(), base_facts.error().message);
      setup.base_chosts[base] = "";
    }
  }
  return true;
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
  auto chosen = secrets::choose_token(config, "drone.token", "drone.token_file", config::env_get(secrets::k_token_env));
  if (!chosen) {
    print_error(chosen.error().message);
    return exit_code::k_usage;
  }
  const auto token = chosen->token;
  if (token.empty()) {
    print_error("no drone token: pass --token-file FILE, or set SWARM_TOKEN or drone.token_file (`swarm drone enroll "
                "NAME` prints one)");
    return exit_code::k_usage;
  }
  log::add_secret(token);
  if (chosen->from_flag) {
    fmt::print(stderr, "swarm: {}\n", secrets::token_flag_warning());
  }
  if (!chosen->token_file.empty()) {
    if (auto warning = secrets::tighten(chosen->token_file, 0600)) {
      fmt::print(stderr, "swarm: warning: {}\n", *warning);
    }
  }
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

  const auto mode = build_root_mode_from_name(config.get("drone.build_root"));
  if (!mode) {
    print_error(fmt::format("drone.build_root must be 'isolated' or 'host', not '{}'", config.get("drone.build_root")));
    return exit_code::k_usage;
  }
  const auto cache = build_cache_from_name(config.get("drone.build_cache"));
  if (!cache) {
    print_error(
      fmt::format("drone.build_cache must be 'discard' or 'keep', not '{}'", config.get("drone.build_cache")));
    return exit_code::k_usage;
  }
  auto bases = parse_build_bases(config.get_list("drone.build_base"));
  if (!bases) {
    print_error(bases.error().message);
    return exit_code::k_usage;
  }
  for (const auto& profile : config.get_list("drone.profiles")) {
    if (!net::is_valid_profile_name(profile)) {
      print_error(fmt::format("drone.profiles: '{}' is not a profile name", profile));
      return exit_code::k_usage;
    }
  }

  DroneSettings settings;
  settings.name = config.get("drone.name").empty() ? default_drone_name() : config.get("drone.name");
  settings.version = build_info::k_version;
  settings.cores = cpu_count();
  settings.slots = slots_setting > 0 ? static_cast<int>(slots_setting) : std::max(1, settings.cores / 4);
  const int jobs = jobs_setting > 0 ? static_cast<int>(jobs_setting) : std::max(1, settings.cores / settings.slots);
  // Absolute: these paths are bound into build roots at the same place.
  settings.spool = std::filesystem::absolute(config.get("drone.spool")).lexically_normal();
  settings.repo_dir = config.get("drone.repo_dir");
  settings.tree_timestamp_override = config.get("drone.tree_timestamp");
  settings.min_free_disk = config.get_bytes("drone.min_free_disk");
  settings.drain = *drain;
  settings.ram_bytes = SystemStats().ram_bytes();
  settings.profiles = config.get_list("drone.profiles");
  settings.build_root.mode = *mode;
  settings.build_root.cache = *cache;
  settings.build_root.bases = std::move(*bases);
  settings.build_root.roots_dir = settings.spool / "roots";
  settings.build_root.helper = self_executable();
  settings.setup.drone_configroot = std::filesystem::absolute(config.get("drone.portage_configroot"));
  settings.setup.pkgdir = Spool(settings.spool).pkgdir();
  settings.setup.fallback_repo_dir = config.get("drone.repo_dir");
  settings.setup.token = token;

  BuildSettings build;
  build.emerge = config.get("drone.emerge");
  build.portage_configroot = settings.setup.drone_configroot;
  build.pkgdir = settings.setup.pkgdir;
  build.jobs = jobs;
  build.token = token;
  build.repo_dir = settings.setup.fallback_repo_dir;

  SignalWatcher::block_signals();
  subprocess::SystemProcessRunner runner;
  if (!prepare_build_roots(settings, runner, build.emerge)) {
    return exit_code::k_failure;
  }
  Builder builder(runner, build);
  HttpOrchApi api(url, token, config.get("drone.ca"));
  DroneMetrics metrics;
  AgentHooks hooks;
  hooks.metrics = &metrics;
  DroneAgent agent(settings, api, builder, hooks);
  std::unique_ptr<net::HttpServer> listener;
  if (const auto& listen = config.get("drone.listen"); !listen.empty()) {
    DroneProbe probe;
    probe.name = settings.name;
    probe.slots_total = settings.slots;
    probe.slots_busy = [&agent] { return static_cast<int>(agent.active_leases().size()); };
    probe.spool_free = [spool = settings.spool] { return fs::free_disk_bytes(spool); };
    probe.stopping = [&agent] { return agent.stop_requested(); };
    auto started = start_drone_listener(listen, metrics, std::move(probe));
    if (!started) {
      print_error(started.error().message);
      return started.error().kind == ErrorKind::invalid ? exit_code::k_usage : exit_code::k_failure;
    }
    listener = std::move(*started);
  }
  int code = 0;
  {
    SignalWatcher watcher(agent, *drain);
    code = agent.run();
  }
  metrics.set_registered(false);
  if (listener) {
    listener->stop();
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

struct ResetRootOptions {
  std::string profile;
  bool json = false;
};

int run_reset_root(const VerbContext& context, const ResetRootOptions& options)
{
  const auto spool = std::filesystem::absolute(context.config.get("drone.spool"));
  const auto& profile = options.profile;
  if (!profile.empty() && !net::is_valid_profile_name(profile)) {
    print_error(fmt::format("'{}' is not a profile name", profile));
    return exit_code::k_usage;
  }
  auto removed = reset_caches(spool / "roots", profile);
  if (!removed) {
    print_error(removed.error().message);
    return exit_code::k_failure;
  }
  if (options.json) {
    fmt::print("{{\"removed\": {}}}\n", *removed);
  } else {
    fmt::print("removed {} kept build root{}{}\n", *removed, *removed == 1 ? "" : "s",
               profile.empty() ? std::string() : " of profile " + profile);
  }
  return exit_code::k_ok;
}

// `swarm drone-root ARGS…`: everything after the verb is the helper's own syntax.
struct DroneRootOptions {
  std::vector<std::string> helper_args;
};

int run_drone_root(const DroneRootOptions& options)
{
  auto request = parse_helper_args(options.helper_args);
  if (!request) {
    std::fprintf(stderr, "swarm: drone-root: %s\n", request.error().message.c_str());
    return k_helper_setup_failed;
  }
  return run_helper(*request);
}

} // namespace
} // namespace drone_verbs

void add_drone_verbs(std::vector<Verb>& verbs)
{
  using namespace drone_verbs;
  verbs.push_back({"drone",
                   "Run a build drone: claim packages from the orchestrator, build them with emerge, upload them",
                   add_drone_options, run_drone});
  verbs.push_back(make_verb<ResetRootOptions>(
    "drone reset-root", "Remove the build roots a drone keeps per profile (drone.build_cache=keep), or one profile's",
    [](CLI::App& app, ConfigFlags& flags, ResetRootOptions& options) {
      app.add_option("--profile", options.profile, "Swarm profile (default: every profile)");
      bind_config_flag(app, flags, "--spool", "drone.spool");
      add_json_flag(app, options.json);
    },
    [](const VerbContext& context, const ResetRootOptions& options) { return run_reset_root(context, options); }));
  auto root = make_verb<DroneRootOptions>(
    "drone-root", "Run a drone's emerge in its build root (the drone runs this; not for people)",
    [](CLI::App& app, ConfigFlags&, DroneRootOptions& options) {
      app.prefix_command();
      app.allow_extras();
      app.fallthrough(false);
      app.parse_complete_callback([&app, &options] { options.helper_args = app.remaining(); });
    },
    [](const VerbContext&, const DroneRootOptions& options) { return run_drone_root(options); });
  root.hidden = true;
  verbs.push_back(std::move(root));
}

} // namespace swarm::roles
