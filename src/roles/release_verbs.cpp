// Release verbs: verify, finalize, releases, rollback and the unattended `release` pipeline for
// cron. They talk to client.url (a gateway or an orchestrator). `release` runs the very steps of
// `sync-verify`, `fresh`, `verify` and `finalize` (roles/operator/release_steps.hpp).
#include <chrono>
#include <ctime>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "core/strings.hpp"
#include "net/protocol.hpp"
#include "portage/plan.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/release_steps.hpp"
#include "roles/operator/world_plan.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using operator_cli::confirm;
using operator_cli::make_client;
using operator_cli::must;
using operator_cli::print_json;

// `--threshold N` (0–100) into `threshold`; absent: the orchestrator's orch.risk_threshold.
void add_threshold_option(CLI::App& app, std::optional<int>& threshold, const std::string& help)
{
  app
    .add_option_function<int>(
      "--threshold", [&threshold](const int& value) { threshold = value; }, help)
    ->check(CLI::Range(0, 100));
}

std::string utc_now()
{
  const auto seconds = std::time(nullptr);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec);
}

void print_findings(const json& report)
{
  const auto findings = report.value("findings", json::array());
  if (findings.empty()) {
    fmt::print("no findings\n");
    return;
  }
  fmt::print("{:>6}  {:<17} {:<40} {}\n", "WEIGHT", "KIND", "PACKAGE", "DETAIL");
  for (const auto& finding : findings) {
    fmt::print("{:>6.1f}  {:<17} {:<40} {}\n", finding.value("weight", 0.0), finding.value("kind", std::string()),
               finding.value("package", std::string()), finding.value("detail", std::string()));
  }
}

void print_verify(const json& report)
{
  fmt::print("risk score {} (threshold {}): {}\n", report.value("score", 0), report.value("threshold", 0),
             report.value("pass", false) ? "PASS" : "FAIL");
  print_findings(report);
}

// --- verify / finalize / releases / rollback ---------------------------------------------------

struct VerifyOptions {
  bool json = false;
  std::optional<int> threshold; // absent: the orchestrator's orch.risk_threshold
};

int run_verify(const VerbContext& context, const VerifyOptions& options)
{
  auto client = make_client(context.config);
  const auto report = must(operator_cli::verify_staging(client, options.threshold));
  if (options.json) {
    print_json(report);
  } else {
    print_verify(report);
  }
  return report.value("pass", false) ? exit_code::k_ok : exit_code::k_failure;
}

void print_release(const json& release)
{
  fmt::print("release {} published: {} packages ({} added, {} rebuilt, {} removed) at {}\n",
             release.value("release", std::string()), release.value("packages", 0),
             release.value("added", json::array()).size(), release.value("rebuilt", json::array()).size(),
             release.value("removed", json::array()).size(), release.value("url", std::string()));
}

struct FinalizeOptions {
  bool json = false;
  Confirm confirm = Confirm::ask;
  bool force = false; // publish even above the risk threshold
};

int run_finalize(const VerbContext& context, const FinalizeOptions& options)
{
  auto client = make_client(context.config);
  if (!confirm(options.confirm, "Publish staging as a new production release?")) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  net::FinalizeRequest request;
  request.force = options.force;
  const auto outcome = must(operator_cli::finalize_release(client, request));
  auto body = outcome.body;
  body["status"] = outcome.status;
  if (!outcome.published()) {
    if (options.json) {
      print_json(body);
    } else if (body.contains("findings")) {
      print_findings(body);
    }
    print_error(body.value("error", std::string("finalize refused")));
    return exit_code::k_failure;
  }
  if (options.json) {
    print_json(body);
  } else {
    if (body.value("forced", false)) {
      fmt::print("forced past risk score {} (threshold {})\n", body.value("score", 0), body.value("threshold", 0));
    }
    print_release(body);
  }
  return exit_code::k_ok;
}

int run_releases(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto body = must(client.get_json("/api/v1/releases"));
  if (options.json) {
    print_json(body);
    return exit_code::k_ok;
  }
  const auto releases = body.value("releases", json::array());
  if (releases.empty()) {
    fmt::print("no release yet (`swarm finalize` publishes one)\n");
    return exit_code::k_ok;
  }
  fmt::print("  {:<20} {:<20} {:>8} {:>6} {:>8} {:>8}\n", "RELEASE", "CREATED", "PACKAGES", "ADDED", "REBUILT",
             "REMOVED");
  for (const auto& release : releases) {
    fmt::print("{} {:<20} {:<19}  {:>8} {:>6} {:>8} {:>8}\n", release.value("current", false) ? "*" : " ",
               release.value("id", std::string()), operator_cli::utc_time(release.value("created", 0.0)),
               release.value("packages", 0), release.value("added", json::array()).size(),
               release.value("rebuilt", json::array()).size(), release.value("removed", json::array()).size());
  }
  fmt::print("* = production ({}); {} built package(s) not released\n", body.value("url", std::string()),
             body.value("unreleased", 0));
  return exit_code::k_ok;
}

struct RollbackOptions {
  bool json = false;
  Confirm confirm = Confirm::ask;
  std::string release; // "": the release before the current one
};

int run_rollback(const VerbContext& context, const RollbackOptions& options)
{
  auto client = make_client(context.config);
  const auto& id = options.release;
  if (!confirm(options.confirm, id.empty() ? std::string("Point production back at the previous release?")
                                           : fmt::format("Point production at release {}?", id))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  net::RollbackRequest request;
  if (!id.empty()) {
    request.release = id;
  }
  const auto body = must(client.post_json("/api/v1/releases/rollback", request));
  if (options.json) {
    print_json(body);
  } else {
    fmt::print("production now publishes release {} ({} packages; was {})\n", body.value("release", std::string()),
               body.value("packages", 0), body.value("previous", std::string()));
  }
  return exit_code::k_ok;
}

// --- release: the unattended pipeline -------------------------------------------------------

struct ReleaseOptions {
  std::string from;             // saved emerge output; "": run emerge here
  std::string plan;             // plan JSON to submit instead of planning @world here
  double wait_timeout = 3600;   // seconds the build may take
  std::optional<int> threshold; // verify's and finalize's; absent: the orchestrator's
};

/*
 * sync-verify → fresh → wait → verify → finalize, each step the same function its own verb runs
 * (release_steps.hpp). Each step prints one line; the exit code says where it stopped
 * (core/exit_codes.hpp k_release_*). Re-running after any failure is safe: the plan submission is
 * idempotent (same plan: nothing changes, built packages stay built), verify only reads, and
 * finalize refuses to publish a release identical to the current one. sync-verify compares the
 * drones with the plan about to be submitted: after `emerge --sync` everywhere, the plan the
 * orchestrator still has is the old tree's.
 */
int run_release(const VerbContext& context, const ReleaseOptions& options)
{
  const auto& config = context.config;
  fmt::print("STARTED swarm release at {} against {}\n", utc_now(), config.get("client.url"));
  std::fflush(stdout);
  auto client = make_client(config);
  auto stop = [&](int code, const std::string& why) {
    fmt::print("STOPPED {} (exit {})\n", why, code);
    std::fflush(stdout);
    return code;
  };
  // An unreachable gateway or orchestrator ends the pipeline with exit 3 wherever it happens;
  // any other failure of a step is that step's exit code.
  auto reachable = [&](auto result, const char* what) {
    if (!result && result.error().kind == ErrorKind::unavailable) {
      throw Fatal{Error{ErrorKind::unavailable, fmt::format("{}: {}", what, result.error().message)}};
    }
    return result;
  };

  // The plan to submit: --plan, else the @world plan computed here once the orchestrator is known
  // to answer. Failing to compute it is the pipeline's "fresh failed", not bad input: cron must
  // be able to tell.
  std::optional<portage::Plan> plan;
  if (!options.plan.empty()) {
    plan = must(operator_cli::read_plan_file(options.plan));
  }
  auto status = reachable(client.get_json("/api/v1/status"), "status");
  if (!status) {
    return stop(exit_code::k_release_sync_mismatch, "sync-verify: " + status.error().message);
  }
  if (!plan) {
    auto computed =
      operator_cli::compute_world_plan({config.get("client.emerge"), config.get("client.repo_dir"), options.from});
    if (!computed) {
      return stop(exit_code::k_release_fresh_failed, "fresh: " + computed.error().message);
    }
    plan = std::move(*computed);
  }

  // 1. sync-verify.
  const auto& tree = plan->tree_timestamp;
  const auto trees = operator_cli::sync_verify(status->value("drones", json::array()), tree);
  if (!trees.ok()) {
    return stop(exit_code::k_release_sync_mismatch,
                fmt::format("sync-verify: drone(s) not on tree '{}': {}; run `emerge --sync` there", tree,
                            fmt::join(trees.mismatching, ", ")));
  }
  fmt::print("sync-verify ok: {} online drone(s) on tree '{}'\n", trees.matching.size(), tree);

  // 2. fresh.
  auto reply = reachable(operator_cli::submit_fresh_plan(client, *plan), "plan");
  if (!reply) {
    return stop(exit_code::k_release_fresh_failed, "fresh: " + reply.error().message);
  }
  const auto& submitted = reply->message;
  fmt::print("fresh ok: {} packages ({} added, {} removed, {} rebuilt, {} kept)\n", submitted.packages, submitted.added,
             submitted.removed, submitted.reset, submitted.kept);
  std::fflush(stdout);

  // 3. wait until nothing is needed or building.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.wait_timeout);
  json counts;
  while (true) {
    auto current = reachable(client.get_json("/api/v1/status"), "status");
    if (!current) {
      return stop(exit_code::k_release_build_incomplete, "wait: " + current.error().message);
    }
    counts = (*current)["counts"];
    if (counts.value("needed", 0) + counts.value("delegated", 0) == 0) {
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return stop(exit_code::k_release_build_incomplete,
                  fmt::format("wait: {} package(s) still needed and {} building after {}s", counts.value("needed", 0),
                              counts.value("delegated", 0), options.wait_timeout));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  fmt::print("build done: {} complete, {} blocked, {} dep-failed\n", counts.value("received", 0),
             counts.value("blocked", 0), counts.value("dep-failed", 0));

  // 4. verify.
  auto report = reachable(operator_cli::verify_staging(client, options.threshold), "verify");
  if (!report) {
    return stop(exit_code::k_release_verify_failed, "verify: " + report.error().message);
  }
  fmt::print("verify: risk score {} (threshold {})\n", report->value("score", 0), report->value("threshold", 0));
  if (!report->value("pass", false)) {
    print_findings(*report);
    return stop(exit_code::k_release_verify_failed, "verify: risk score above the threshold");
  }

  // 5. finalize, against the threshold verify passed.
  net::FinalizeRequest request;
  request.threshold = options.threshold;
  auto outcome = reachable(operator_cli::finalize_release(client, request), "finalize");
  if (!outcome) {
    return stop(exit_code::k_release_finalize_failed, "finalize: " + outcome.error().message);
  }
  if (outcome->reason() == "nothing_new") {
    return stop(exit_code::k_release_nothing_to_do, "nothing to do: " + outcome->body.value("error", std::string()));
  }
  if (!outcome->published()) {
    return stop(exit_code::k_release_finalize_failed,
                "finalize: " + outcome->body.value("error", std::string("refused")));
  }
  print_release(outcome->body);
  fmt::print("DONE release {}\n", outcome->body.value("release", std::string()));
  return exit_code::k_ok;
}

// --client flags and --json.
void add_client(CLI::App& app, ConfigFlags& flags, bool& json_output)
{
  operator_cli::add_client_flags(app, flags);
  add_json_flag(app, json_output);
}

} // namespace

void add_release_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<VerifyOptions>(
    "verify", "Compute the Risk Score of publishing staging now, with every finding (exit 0 pass, 1 fail)",
    [](CLI::App& app, ConfigFlags& flags, VerifyOptions& options) {
      add_client(app, flags, options.json);
      add_threshold_option(app, options.threshold,
                           "Highest passing score (default: the orchestrator's orch.risk_threshold)");
    },
    run_verify));
  verbs.push_back(make_verb<FinalizeOptions>(
    "finalize", "Publish staging as a new production release (refused above the risk threshold unless --force)",
    [](CLI::App& app, ConfigFlags& flags, FinalizeOptions& options) {
      add_client(app, flags, options.json);
      add_yes_flag(app, options.confirm);
      app.add_flag("--force", options.force, "Publish even when the risk score is above the threshold");
    },
    run_finalize));
  verbs.push_back(make_verb<JsonOptions>(
    "releases", "List the releases with their package counts and differences; * marks production",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { add_client(app, flags, options.json); },
    run_releases));
  verbs.push_back(make_verb<RollbackOptions>(
    "rollback", "Publish an earlier release again (default: the one before the current)",
    [](CLI::App& app, ConfigFlags& flags, RollbackOptions& options) {
      add_client(app, flags, options.json);
      add_yes_flag(app, options.confirm);
      app.add_option("release", options.release, "Release id (see `swarm releases`)");
    },
    run_rollback));
  verbs.push_back(make_verb<ReleaseOptions>(
    "release",
    "Unattended pipeline for cron: sync-verify, fresh, wait, verify, finalize (exit code says where it stopped)",
    [](CLI::App& app, ConfigFlags& flags, ReleaseOptions& options) {
      operator_cli::add_client_flags(app, flags);
      bind_config_flag(app, flags, "--repo-dir", "client.repo_dir");
      bind_config_flag(app, flags, "--emerge", "client.emerge");
      app.add_option("--from", options.from,
                     "Saved `emerge --pretend --verbose --update --deep --newuse @world` output to plan from");
      app.add_option("--plan", options.plan, "Plan JSON (`swarm portage plan`) to submit instead");
      app.add_option("--wait-timeout", options.wait_timeout, "Seconds to wait for the build (default 3600)")
        ->check(CLI::NonNegativeNumber);
      add_threshold_option(app, options.threshold, "Highest passing risk score (default: the orchestrator's)");
    },
    run_release));
}

} // namespace swarm::roles
