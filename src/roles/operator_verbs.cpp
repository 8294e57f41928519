// The operator's verbs (issue 4), every one a client of the gateway or an orchestrator
// (client.url, admin token): plan work (`fresh`, `submit`, `queue add`), steer it (`unblock`,
// `reset`, `balance`, `pause`, `resume`, `ground`, `unground`), diagnose it (`fix-blocked`) and
// build by hand (`build-local`); the plan verbs act on one swarm profile (`--profile`, issue 9).
// The views are in view_verbs.cpp, the desktop side in client_verbs.cpp, `status` in
// status_verbs.cpp; verify, finalize and the `release` pipeline in release_verbs.cpp. fresh runs
// the same step functions as `release` (roles/operator/release_steps.hpp).

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "core/build_info.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "net/protocol.hpp"
#include "portage/md5_cache.hpp"
#include "portage/plan.hpp"
#include "roles/drone/builder.hpp"
#include "roles/drone/orch_api.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/build_profiles.hpp"
#include "roles/operator/client_side.hpp"
#include "roles/operator/failure_class.hpp"
#include "roles/operator/profile_option.hpp"
#include "roles/operator/release_steps.hpp"
#include "roles/operator/world_plan.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using namespace operator_cli;

// --- shared helpers ---------------------------------------------------------------------------

std::string sanitized_host_name()
{
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') {
    return "localhost";
  }
  std::string name = buffer;
  for (auto& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      c = '-';
    }
  }
  return name.substr(0, 50);
}

// The flags of a verb that talks to the gateway or an orchestrator and reports: where, and --json.
void client_verb(CLI::App& app, ConfigFlags& flags, bool& json_output)
{
  add_client_flags(app, flags);
  add_json_flag(app, json_output);
}

// POST /api/v1/control/ACTION with `body`, the answer read as the protocol message `Reply`.
template <class Reply>
Answer<Reply> control(const VerbContext& context, const std::string& action, const json& body = json::object())
{
  auto client = make_client(context.config);
  return must(post_message<Reply>(client, "/api/v1/control/" + action, body));
}

// The plan text a verb prints after a submission.
void print_plan_reply(const net::PlanReply& reply)
{
  fmt::print("plan: {} packages ({} added, {} removed, {} to rebuild, {} kept)\n", reply.packages, reply.added,
             reply.removed, reply.reset, reply.kept);
  for (const auto& warning : reply.warnings) {
    fmt::print("warning: {}\n", warning);
  }
  if (!reply.changed) {
    fmt::print("nothing changed: the orchestrator already has this plan\n");
  }
}

// --- fresh ----------------------------------------------------------------------------------

struct FreshOptions {
  bool json = false;
  Confirm confirm = Confirm::ask;
  std::string from; // saved emerge output; "": run emerge
  bool force = false;
  std::string profile = std::string(k_default_profile);
  std::optional<std::string> config_root; // given explicitly; else "/" when emerge runs here
};

/*
 * fresh: the @world plan of this machine's configuration for one swarm profile. The merge list
 * comes from emerge --pretend run with PORTAGE_CONFIGROOT=--config-root (or a saved output), and
 * the build profile — the configuration that changes a binary — is captured from the same root
 * and travels with the plan, so the drones build what this machine would. A saved output alone
 * may come from anywhere: then no build profile unless --config-root names where it came from.
 * Only the drones serving the profile are checked for the plan's tree.
 */
int run_fresh(const VerbContext& context, const FreshOptions& options)
{
  WorldPlanSource source{context.config.get("client.emerge"), context.config.get("client.repo_dir"), options.from,
                         options.config_root.value_or("/")};
  auto plan = must(compute_world_plan(source));
  if (plan.packages.empty()) {
    fmt::print(stderr, "note: the merge list has no package to build from source\n");
  }
  subprocess::SystemProcessRunner runner;
  const auto build = must(plan_build_profile(context.config, options.from.empty(), options.config_root, runner));

  auto client = make_client(context.config);
  const auto drones = must(client.get_json("/api/v1/drones"));
  const auto trees =
    sync_verify(drones_serving(drones.value("drones", json::array()), options.profile), plan.tree_timestamp);
  if (!trees.message.empty()) {
    if (trees.refuse && !options.force) {
      throw_error(ErrorKind::conflict,
                  trees.message + " — no drone could build this plan; sync them first, or pass --force");
    }
    fmt::print(stderr, "warning: {}\n", trees.message);
  }
  if (trees.matching.empty() && trees.mismatching.empty()) {
    fmt::print(stderr, "warning: no drone building for profile {} is online; the plan waits for one\n",
               options.profile);
  }
  for (const auto& warning : build.warnings) {
    fmt::print(stderr, "warning: {}\n", warning);
  }
  if (!build.profile) {
    fmt::print(stderr, "note: no build profile goes with this plan (a saved emerge output without --config-root): "
                       "the drones build it with their own configuration\n");
  }

  if (!confirm(options.confirm,
               fmt::format("Replace the plan of profile {} with {} packages and clear unreleased artifacts that are "
                           "not in it from its staging?",
                           options.profile, plan.packages.size()))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto reply = must(submit_fresh_plan(client, plan, options.profile, build.profile ? &*build.profile : nullptr));
  const auto hash = build.profile ? portage::build_profile_hash(*build.profile) : std::string();
  if (options.json) {
    auto out = reply.json;
    out["profile"] = options.profile;
    out["build_profile"] = hash;
    out["config_root"] = build.config_root;
    out["warnings_local"] = build.warnings;
    out["tree_timestamp"] = plan.tree_timestamp;
    out["drones"] = {{"matching", trees.matching}, {"mismatching", trees.mismatching}, {"offline", trees.offline}};
    print_json(out);
    return exit_code::k_ok;
  }
  fmt::print("profile: {}{}\n", options.profile,
             hash.empty() ? std::string(" (no build profile)")
                          : fmt::format(" (build profile {} from {})", hash.substr(0, 12), build.config_root));
  fmt::print("tree: {}\n", plan.tree_timestamp.empty() ? "unknown (no metadata/timestamp.chk)" : plan.tree_timestamp);
  if (!plan.unresolved.empty()) {
    fmt::print("{} dependencies are outside the plan (assumed installed on the drones)\n", plan.unresolved.size());
  }
  print_plan_reply(reply.message);
  return exit_code::k_ok;
}

// --- submit / queue add -----------------------------------------------------------------------

// Adds the packages of `plan` to the orchestrator's plan and prints the answer (`--json` of
// `options`: as it came).
template <class Options>
int submit_added(const VerbContext& context, const portage::Plan& plan, const Options& options)
{
  auto client = make_client(context.config);
  net::PlanRequest request;
  request.mode = net::PlanMode::add;
  request.clear_staging = false;
  request.profile = options.profile;
  const auto reply = must(submit_plan(client, plan, request));
  if (options.json) {
    print_json(reply.json);
  } else {
    print_plan_reply(reply.message);
  }
  return exit_code::k_ok;
}

struct SubmitOptions {
  bool json = false;
  std::string plan; // PLAN.json
  std::string profile = std::string(k_default_profile);
};

int run_submit(const VerbContext& context, const SubmitOptions& options)
{
  return submit_added(context, must(read_plan_file(options.plan)), options);
}

std::string first_line_of(const std::filesystem::path& path)
{
  auto text = fs::read_file(path, 64u << 10);
  if (!text) {
    return {};
  }
  const auto lines = strings::split(*text, '\n');
  return lines.empty() ? std::string() : std::string(strings::trim(lines.front()));
}

struct QueueAddOptions {
  bool json = false;
  std::vector<std::string> atoms; // =CAT/PKG-VER
  std::string profile = std::string(k_default_profile);
};

int run_queue_add(const VerbContext& context, const QueueAddOptions& options)
{
  const std::filesystem::path repo_dir = context.config.get("client.repo_dir");
  portage::Plan plan;
  plan.source = "swarm queue add";
  plan.tree_timestamp = first_line_of(repo_dir / "metadata/timestamp.chk");
  auto repo_name = first_line_of(repo_dir / "profiles/repo_name");
  for (const auto& atom : options.atoms) {
    const auto cpv = must(cpv_argument(atom));
    portage::PlanPackage package;
    package.cpv = cpv;
    package.slot = "0";
    package.repo = repo_name.empty() ? std::string("gentoo") : repo_name;
    package.duration_source = "unknown";
    if (auto entry = portage::read_md5_cache(repo_dir, cpv)) {
      if (!entry->get("SLOT").empty()) {
        package.slot = strings::split(entry->get("SLOT"), '/').front();
      }
    } else {
      fmt::print(stderr, "note: no md5-cache entry for {} under {}: slot 0, no dependencies\n", cpv, repo_dir.string());
    }
    plan.packages.push_back(std::move(package));
  }
  return submit_added(context, plan, options);
}

// --- fix-blocked ----------------------------------------------------------------------------

// Up to `count` lines ending at the evidence line (or the last lines when there is none).
std::string excerpt(const std::string& log, const std::string& evidence, size_t count = 6)
{
  auto lines = strings::split(log, '\n');
  std::erase_if(lines, [](const std::string& line) { return strings::trim(line).empty(); });
  size_t end = lines.size();
  if (!evidence.empty()) {
    for (size_t i = lines.size(); i-- > 0;) {
      if (lines[i].find(evidence.substr(0, std::min<size_t>(evidence.size(), 80))) != std::string::npos) {
        end = std::min(lines.size(), i + 2);
        break;
      }
    }
  }
  const size_t begin = end > count ? end - count : 0;
  std::vector<std::string> picked(lines.begin() + static_cast<std::ptrdiff_t>(begin),
                                  lines.begin() + static_cast<std::ptrdiff_t>(end));
  for (auto& line : picked) {
    if (line.size() > 200) {
      line = line.substr(0, 200) + "…";
    }
  }
  return strings::join(picked, "\n");
}

struct FixBlockedOptions {
  bool json = false;
  std::string profile = std::string(k_default_profile);
};

int run_fix_blocked(const VerbContext& context, const FixBlockedOptions& options)
{
  auto client = make_client(context.config);
  const auto& profile = options.profile;
  const auto blocked =
    must(client.get_json(profile_path("/api/v1/packages?state=blocked", profile))).value("packages", json::array());
  json report = json::array();
  for (const auto& item : blocked) {
    const auto cpv = item.value("cpv", std::string());
    const auto detail = must(client.get_json(profile_path("/api/v1/packages/" + url_encode(cpv), profile)));
    std::string log;
    std::vector<std::string> reasons;
    for (const auto& build : detail.value("builds", json::array())) {
      if (build.value("result", std::string()) != "failure") {
        continue;
      }
      log += build.value("log_tail", std::string()) + "\n";
      reasons.push_back(build.value("reason", std::string()));
    }
    if (strings::trim(log).empty()) {
      // No tail in the reports: the latest build log the orchestrator keeps.
      if (auto logs = client.get_json(profile_path("/api/v1/logs?tail=65536&package=" + url_encode(cpv), profile));
          logs) {
        log = logs->value("text", std::string());
      }
    }
    std::string all = log;
    for (const auto& reason : reasons) {
      all += reason + "\n";
    }
    all += detail.value("last_failure", std::string());
    const auto diagnosis = classify_failure(all, cpv);
    const auto step = next_step(diagnosis.kind, cpv);
    std::vector<std::string> cycles;
    for (const auto& warning : detail.value("warnings", json::array())) {
      cycles.push_back(warning.get<std::string>());
    }
    report.push_back({{"cpv", cpv},
                      {"class", failure_class_name(diagnosis.kind)},
                      {"label", failure_class_label(diagnosis.kind)},
                      {"evidence", diagnosis.evidence},
                      {"drones", detail.value("failed_on", json::array())},
                      {"last_failure", detail.value("last_failure", std::string())},
                      {"excerpt", excerpt(strings::trim(log).empty() ? all : log, diagnosis.evidence)},
                      {"cycles", cycles},
                      {"dependants", detail.value("transitive_dependants", 0)},
                      {"advice", step.advice},
                      {"command", profile_command(step.command, profile)}});
  }
  if (options.json) {
    print_json(json{{"blocked", report}});
    return exit_code::k_ok;
  }
  if (report.empty()) {
    fmt::print("no package is blocked\n");
    return exit_code::k_ok;
  }
  for (const auto& entry : report) {
    std::vector<std::string> drones;
    for (const auto& d : entry["drones"]) {
      drones.push_back(d.get<std::string>());
    }
    fmt::print("{}  [{}]\n", entry["cpv"].get<std::string>(), entry["label"].get<std::string>());
    fmt::print("  failed on:  {}\n", drones.empty() ? std::string("-") : strings::join(drones, ", "));
    fmt::print("  blocks:     {} dependant package(s)\n", entry["dependants"].get<int>());
    if (!entry["evidence"].get<std::string>().empty()) {
      fmt::print("  cause:      {}\n", entry["evidence"].get<std::string>());
    }
    for (const auto& cycle : entry["cycles"]) {
      fmt::print("  cycle:      {}\n", cycle.get<std::string>());
    }
    const auto text = entry["excerpt"].get<std::string>();
    if (!text.empty()) {
      fmt::print("  log:\n");
      for (const auto& line : strings::split(text, '\n')) {
        fmt::print("    | {}\n", line);
      }
    }
    fmt::print("  fix:        {}\n", entry["advice"].get<std::string>());
    fmt::print("  then run:   {}\n\n", entry["command"].get<std::string>());
  }
  fmt::print("{} blocked package(s)\n", report.size());
  return exit_code::k_ok;
}

// --- control ----------------------------------------------------------------------------------

struct UnblockOptions {
  bool json = false;
  std::vector<std::string> packages; // CAT/PKG-VER; none: every blocked one
  std::string profile = std::string(k_default_profile);
};

int run_unblock(const VerbContext& context, const UnblockOptions& options)
{
  net::UnblockRequest request;
  request.profile = options.profile;
  for (const auto& atom : options.packages) {
    request.packages.push_back(must(cpv_argument(atom)));
  }
  const auto reply = control<net::UnblockReply>(context, "unblock", request);
  if (options.json) {
    print_json(reply.json);
    return exit_code::k_ok;
  }
  if (reply.message.unblocked.empty()) {
    fmt::print("no package was blocked\n");
  }
  for (const auto& cpv : reply.message.unblocked) {
    fmt::print("unblocked {}\n", cpv);
  }
  return exit_code::k_ok;
}

struct ResetOptions {
  bool json = false;
  Confirm confirm = Confirm::ask;
};

int run_reset(const VerbContext& context, const ResetOptions& options)
{
  if (!confirm(options.confirm, "Return all in-flight work to the queue (drones stop their running builds)?")) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto reply = control<net::ResetReply>(context, "reset");
  if (options.json) {
    print_json(reply.json);
  } else {
    fmt::print("{} package(s) back in the queue; built packages kept\n", reply.message.returned);
  }
  return exit_code::k_ok;
}

int run_balance(const VerbContext& context, const JsonOptions& options)
{
  const auto reply = control<net::BalanceReply>(context, "balance");
  if (options.json) {
    print_json(reply.json);
    return exit_code::k_ok;
  }
  fmt::print("{} package(s) moved from drones that cannot make progress back to the queue\n",
             reply.message.moved.size());
  for (const auto& cpv : reply.message.moved) {
    fmt::print("  {}\n", cpv);
  }
  return exit_code::k_ok;
}

enum class Queue { pause, resume };

int run_pause(const VerbContext& context, const JsonOptions& options, Queue queue)
{
  const auto reply = control<net::PauseReply>(context, queue == Queue::pause ? "pause" : "resume");
  if (options.json) {
    print_json(reply.json);
  } else {
    fmt::print("{}\n", reply.message.paused ? "paused: drones get no new work (running builds finish)"
                                            : "resumed: drones get work again");
  }
  return exit_code::k_ok;
}

struct GroundOptions {
  bool json = false;
  Confirm confirm = Confirm::ask; // ground only
  std::string drone;
};

enum class Grounding { ground, unground };

int run_ground(const VerbContext& context, const GroundOptions& options, Grounding grounding)
{
  const bool ground = grounding == Grounding::ground;
  if (ground && !confirm(options.confirm,
                         fmt::format("Ground drone {} (its running builds go back to the queue)?", options.drone))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  net::GroundRequest request;
  request.drone = options.drone;
  const auto reply = control<net::GroundReply>(context, ground ? "ground" : "unground", request);
  if (options.json) {
    print_json(reply.json);
  } else {
    fmt::print("{} {}\n", ground ? "grounded" : "ungrounded",
               reply.message.drone.empty() ? options.drone : reply.message.drone);
  }
  return exit_code::k_ok;
}

// --- build-local --------------------------------------------------------------------------------

struct BuildLocalOptions {
  bool json = false;
  std::string profile = std::string(k_default_profile);
  std::string portage_configroot; // "": /
  std::string atom;               // =CAT/PKG-VER
};

int run_build_local(const VerbContext& context, const BuildLocalOptions& options)
{
  const auto& config = context.config;
  const auto cpv = must(cpv_argument(options.atom));
  const auto url = config.get("client.url");
  const std::filesystem::path repo_dir = config.get("client.repo_dir");
  const auto identity = "local-" + sanitized_host_name();
  auto admin = make_client(config);
  net::LocalBuildRequest request;
  request.drone = identity;
  request.package = cpv;
  request.profile = options.profile;
  const auto granted = must(post_message<net::LocalBuildReply>(admin, "/api/v1/operator/local-build", request));
  const auto& token = granted.message.token;
  log::add_secret(token);
  auto lease = must(drone::lease_from_json(json(granted.message.lease)));
  fmt::print(stderr, "building {} here as drone {} (lease {})\n", cpv, identity, lease.id.substr(0, 8));

  drone::HttpOrchApi api(url, token);
  drone::RegisterRequest hello;
  hello.name = identity;
  hello.version = build_info::k_version;
  hello.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  hello.slots = 1;
  hello.tree_timestamp = first_line_of(repo_dir / "metadata/timestamp.chk");
  const auto registered = api.register_drone(hello);
  if (drone::verdict_of(registered) != drone::Verdict::done) {
    throw_error(ErrorKind::unavailable, "cannot register " + identity + ": " + drone::describe(registered));
  }
  const auto registration = must(drone::registration_from_json(registered->body));

  // Heartbeats keep the lease while emerge runs (a kernel module can take a while).
  std::jthread beats(
    [&api, &lease, interval = registration.heartbeat_interval, tree = hello.tree_timestamp](std::stop_token stop) {
      while (!stop.stop_requested()) {
        drone::HeartbeatRequest beat;
        beat.tree_timestamp = tree;
        beat.leases = {lease.id};
        (void)api.heartbeat(beat);
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(interval);
        while (!stop.stop_requested() && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });

  fs::TempDir work("swarm-build-local");
  drone::BuildSettings settings;
  settings.emerge = config.get("client.emerge");
  settings.portage_configroot = options.portage_configroot.empty() ? "/" : options.portage_configroot;
  settings.pkgdir = work / "pkgdir";
  settings.jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  settings.token = token;
  subprocess::SystemProcessRunner runner;
  drone::Builder builder(runner, settings);
  const auto log_path = work / "build.log";
  const auto staging = lease.staging_url.empty() ? registration.staging_url : lease.staging_url;
  const auto outcome = builder.build(lease, staging, work / "out", log_path, {});

  // The log, as a drone ships it.
  const auto log_text = fs::read_file(log_path).value_or(std::string());
  for (size_t at = 0; at < log_text.size(); at += 512u << 10) {
    (void)api.send_log(lease.id, std::string_view(log_text).substr(at, 512u << 10));
  }
  const auto tail = log_text.substr(log_text.size() > (64u << 10) ? log_text.size() - (64u << 10) : 0);
  drone::ReportRequest report;
  report.duration_seconds = outcome.seconds;
  report.log_tail = tail;
  if (outcome.status != drone::BuildOutcome::Status::success) {
    report.result = drone::ReportResult::failure;
    report.reason = outcome.reason;
    (void)api.report(lease.id, report);
    beats.request_stop();
    fmt::print(stderr, "{}", tail.substr(tail.size() > 3000 ? tail.size() - 3000 : 0));
    throw_error(ErrorKind::conflict, fmt::format("building {} failed: {}", cpv, outcome.reason));
  }
  const auto uploaded = api.upload_artifact(lease.id, outcome.artifact, outcome.sha256, outcome.xxh3_128);
  if (drone::verdict_of(uploaded) != drone::Verdict::done) {
    beats.request_stop();
    throw_error(ErrorKind::conflict, fmt::format("the orchestrator did not take {}: {}",
                                                 outcome.artifact.filename().string(), drone::describe(uploaded)));
  }
  report.result = drone::ReportResult::success;
  const auto reported = api.report(lease.id, report);
  beats.request_stop();
  if (drone::verdict_of(reported) != drone::Verdict::done) {
    throw_error(ErrorKind::conflict, "the report was not accepted: " + drone::describe(reported));
  }
  const auto path = uploaded->body.is_object() ? uploaded->body.value("path", std::string()) : std::string();
  if (options.json) {
    print_json(json{{"cpv", cpv},
                    {"drone", identity},
                    {"path", path},
                    {"sha256", outcome.sha256},
                    {"size", outcome.size},
                    {"seconds", outcome.seconds}});
  } else {
    fmt::print("built {} in {}; in staging as {}\n", cpv, strings::human_duration(outcome.seconds), path);
  }
  return exit_code::k_ok;
}

} // namespace

void add_operator_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<FreshOptions>(
    "fresh", "Plan everything @world needs from emerge --pretend here and the md5-cache; replace the plan",
    [](CLI::App& app, ConfigFlags& flags, FreshOptions& options) {
      client_verb(app, flags, options.json);
      add_yes_flag(app, options.confirm);
      bind_config_flag(app, flags, "--emerge", "client.emerge");
      bind_config_flag(app, flags, "--repo-dir", "client.repo_dir");
      app.add_option("--from", options.from,
                     "Saved `emerge --pretend --verbose --update --deep --newuse @world` output instead of running "
                     "emerge");
      app.add_flag("--force", options.force, "Submit even when no online drone has the plan's Portage tree");
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      add_profile_option(app, options.profile, "The swarm profile whose plan this is (default: default)");
      app.add_option_function<std::string>(
        "--config-root",
        [&options](const std::string& root) { options.config_root = operator_cli::config_root_argument(root); },
        "Plan and capture the build profile of DIR/etc/portage, as PORTAGE_CONFIGROOT means it (default /; with "
        "--from, no build profile unless given)");
    },
    run_fresh));
  verbs.push_back(make_verb<SubmitOptions>(
    "submit", "Add the packages of a plan file (swarm portage plan JSON) to the current plan",
    [](CLI::App& app, ConfigFlags& flags, SubmitOptions& options) {
      client_verb(app, flags, options.json);
      app.add_option("plan", options.plan, "PLAN.json")->required();
      add_profile_option(app, options.profile, "The swarm profile whose plan gets the packages (default: default)");
    },
    run_submit));
  verbs.push_back({"queue", "The build queue", nullptr, nullptr});
  verbs.push_back(make_verb<QueueAddOptions>(
    "queue add", "Add packages (=CAT/PKG-VER) to the plan without resetting it",
    [](CLI::App& app, ConfigFlags& flags, QueueAddOptions& options) {
      client_verb(app, flags, options.json);
      bind_config_flag(app, flags, "--repo-dir", "client.repo_dir");
      app.add_option("atoms", options.atoms, "=CAT/PKG-VER …")->required();
      add_profile_option(app, options.profile, "The swarm profile whose plan gets the packages (default: default)");
    },
    run_queue_add));
  verbs.push_back(make_verb<FixBlockedOptions>(
    "fix-blocked", "For each blocked package: why (from its log), where it failed, and the command to run next",
    [](CLI::App& app, ConfigFlags& flags, FixBlockedOptions& options) {
      client_verb(app, flags, options.json);
      add_profile_option(app, options.profile, "The profile whose blocked packages to look at (default: default)");
    },
    run_fix_blocked));
  verbs.push_back(make_verb<UnblockOptions>(
    "unblock", "Give blocked packages (all when none named) another try",
    [](CLI::App& app, ConfigFlags& flags, UnblockOptions& options) {
      client_verb(app, flags, options.json);
      app.add_option("packages", options.packages, "CAT/PKG-VER … (default: every blocked one)");
      add_profile_option(app, options.profile, "The profile of the packages (default: default)");
    },
    run_unblock));
  verbs.push_back(make_verb<ResetOptions>(
    "reset", "Return all in-flight work to the queue; built packages are kept",
    [](CLI::App& app, ConfigFlags& flags, ResetOptions& options) {
      client_verb(app, flags, options.json);
      add_yes_flag(app, options.confirm);
    },
    run_reset));
  verbs.push_back(make_verb<JsonOptions>(
    "balance", "Move work held by drones that cannot make progress back to the queue for idle drones",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); },
    run_balance));
  verbs.push_back(make_verb<JsonOptions>(
    "pause", "Hand out no new work (running builds finish)",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); },
    [](const VerbContext& context, const JsonOptions& options) { return run_pause(context, options, Queue::pause); }));
  verbs.push_back(make_verb<JsonOptions>(
    "resume", "Hand out work again after `pause`",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); },
    [](const VerbContext& context, const JsonOptions& options) { return run_pause(context, options, Queue::resume); }));
  verbs.push_back(make_verb<GroundOptions>(
    "ground", "Take a drone out of service (its running work goes back to the queue)",
    [](CLI::App& app, ConfigFlags& flags, GroundOptions& options) {
      client_verb(app, flags, options.json);
      add_yes_flag(app, options.confirm);
      app.add_option("drone", options.drone, "Drone name")->required();
    },
    [](const VerbContext& context, const GroundOptions& options) {
      return run_ground(context, options, Grounding::ground);
    }));
  verbs.push_back(make_verb<GroundOptions>(
    "unground", "Return a grounded drone to service",
    [](CLI::App& app, ConfigFlags& flags, GroundOptions& options) {
      client_verb(app, flags, options.json);
      app.add_option("drone", options.drone, "Drone name")->required();
    },
    [](const VerbContext& context, const GroundOptions& options) {
      return run_ground(context, options, Grounding::unground);
    }));
  verbs.push_back(make_verb<BuildLocalOptions>(
    "build-local", "Build one package on this machine with emerge (as a drone would) and upload it to staging",
    [](CLI::App& app, ConfigFlags& flags, BuildLocalOptions& options) {
      client_verb(app, flags, options.json);
      bind_config_flag(app, flags, "--emerge", "client.emerge");
      bind_config_flag(app, flags, "--repo-dir", "client.repo_dir");
      app.add_option("--portage-configroot", options.portage_configroot,
                     "PORTAGE_CONFIGROOT whose binrepos.conf gets the staging repo (default /)");
      app.add_option("atom", options.atom, "=CAT/PKG-VER")->required();
      add_profile_option(app, options.profile, "The profile whose plan has the package (default: default)");
    },
    run_build_local));
}

} // namespace swarm::roles
