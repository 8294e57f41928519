// Release verbs: status (with the NEXT ACTION), verify, finalize, releases, rollback and the
// unattended `release` pipeline for cron. They talk to client.url (a gateway or an orchestrator).
#include "roles/verbs.hpp"

#include <chrono>
#include <ctime>
#include <thread>

#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "portage/plan.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/next_action.hpp"
#include "roles/operator/world_plan.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using operator_cli::confirm;
using operator_cli::make_client;
using operator_cli::must;
using operator_cli::print_json;

net::CallOptions returning()
{
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  return call;
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

std::string indent(const std::string& text)
{
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') {
      out += "              ";
    }
  }
  return out;
}

// --- status ---------------------------------------------------------------------------------

int run_status(VerbArgs& args)
{
  auto client = make_client(args.config);
  const auto url = client.base_url();
  json out{{"url", url}};
  auto unreachable = [&](const std::string& what) {
    out["reachable"] = false;
    out["error"] = what;
    out["next_action"] = {
      {"state", "unreachable"}, {"attention", true}, {"message", what}, {"commands", json::array()}};
    out["exit_code"] = exit_code::k_unavailable;
    if (args.json) {
      print_json(out);
    } else {
      print_error(what);
    }
    return exit_code::k_unavailable;
  };
  auto health = client.request("GET", "/healthz", {}, {}, returning());
  if (!health || !health->ok()) {
    return unreachable(fmt::format("{} is not reachable: {}", url,
                                   health ? fmt::format("HTTP {}", health->status) : health.error().message));
  }
  const auto health_json = health->json().value_or(json::object());
  out["health"] = health_json;
  if (health_json.value("role", std::string()) == "gateway") {
    auto gateway = client.get_json("/status");
    out["gateway"] = gateway ? *gateway : json{{"error", gateway.error().message}};
    if (!health_json.contains("active") || health_json["active"].is_null()) {
      return unreachable(fmt::format("gateway {} has no healthy orchestrator", url));
    }
  }
  auto status = client.get_json("/api/v1/status");
  if (!status) {
    if (status.error().kind == ErrorKind::unavailable) {
      return unreachable(status.error().message);
    }
    throw Fatal{status.error()};
  }
  auto releases = client.get_json("/api/v1/releases");
  const json releases_json = releases ? *releases : json(nullptr);
  const auto action = operator_cli::next_action(*status, releases_json);
  const int code = action.attention ? exit_code::k_status_attention : exit_code::k_ok;
  out["reachable"] = true;
  out["counts"] = (*status)["counts"];
  out["drones"] = (*status)["drones"];
  out["plan"] = (*status)["plan"];
  out["paused"] = (*status)["paused"];
  out["orchestrator"] = status->value("orchestrator", json::object());
  out["release"] = releases_json.is_object() ? json{{"current", releases_json["current"]},
                                                    {"unreleased", releases_json["unreleased"]},
                                                    {"url", releases_json["url"]}}
                                             : json(nullptr);
  out["next_action"] = action.to_json();
  out["exit_code"] = code;
  if (args.json) {
    print_json(out);
    return code;
  }
  if (out.contains("gateway")) {
    fmt::print("gateway       {} ok, active orchestrator {}\n", url, health_json["active"].get<std::string>());
  }
  const auto orch = out["orchestrator"];
  fmt::print("orchestrator  {} ok (version {}, id {}{})\n", orch.value("public_url", url),
             orch.value("version", std::string("?")), orch.value("orch_id", std::string("?")),
             out["paused"].get<bool>() ? ", PAUSED" : "");
  const auto& counts = out["counts"];
  auto n = [&](const char* key) { return counts.value(key, 0); };
  fmt::print("packages      {} total: needed {}, building {}, complete {}, failed {}, blocked {}, dep-failed {}\n",
             n("total"), n("needed"), n("building"), n("complete"), n("failed"), n("blocked"), n("dep-failed"));
  const auto& drones = out["drones"];
  if (drones.empty()) {
    fmt::print("drones        none\n");
  }
  for (const auto& drone : drones) {
    fmt::print("drone         {:<16} {:<9} {}/{} slots busy{}{}\n", drone.value("name", std::string()),
               drone.value("state", std::string()), drone.value("running", 0), drone.value("slots", 0),
               drone.value("tree_matches", true) ? "" : ", TREE MISMATCH",
               drone.value("reason", std::string()).empty() ? "" : " — " + drone.value("reason", std::string()));
  }
  if (releases_json.is_object()) {
    const auto current = releases_json["current"];
    fmt::print("production    {} ({}; {} built package(s) not released)\n", releases_json.value("url", std::string()),
               current.is_string() ? "release " + current.get<std::string>() : std::string("nothing published yet"),
               releases_json.value("unreleased", 0));
  }
  fmt::print("NEXT ACTION   {}\n", indent(action.message));
  for (const auto& command : action.commands) {
    fmt::print("              $ {}\n", command);
  }
  return code;
}

// --- verify / finalize / releases / rollback ---------------------------------------------------

int run_verify(VerbArgs& args)
{
  auto client = make_client(args.config);
  std::string path = "/api/v1/verify";
  if (args.has_option("threshold")) {
    path += "?threshold=" + args.option("threshold");
  }
  const auto report = must(client.get_json(path));
  if (args.json) {
    print_json(report);
  } else {
    print_verify(report);
  }
  return report.value("pass", false) ? exit_code::k_ok : exit_code::k_failure;
}

// POST finalize; the answer as JSON with the HTTP status in "status".
json finalize_call(const net::HttpClient& client, bool force)
{
  auto response = must(client.request("POST", "/api/v1/releases/finalize", json{{"force", force}}.dump(),
                                      {{"Content-Type", "application/json"}}, returning()));
  auto body = response.json().value_or(json::object());
  if (!body.is_object()) {
    body = json::object();
  }
  body["status"] = response.status;
  if (!response.ok() && response.status != 409) {
    throw Fatal{net::error_from_response(response, "POST", "/api/v1/releases/finalize")};
  }
  return body;
}

void print_release(const json& release)
{
  fmt::print("release {} published: {} packages ({} added, {} rebuilt, {} removed) at {}\n",
             release.value("release", std::string()), release.value("packages", 0),
             release.value("added", json::array()).size(), release.value("rebuilt", json::array()).size(),
             release.value("removed", json::array()).size(), release.value("url", std::string()));
}

int run_finalize(VerbArgs& args)
{
  auto client = make_client(args.config);
  if (!confirm(args, "Publish staging as a new production release?")) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto body = finalize_call(client, args.on("force"));
  if (body["status"] == 409) {
    if (args.json) {
      print_json(body);
    } else if (body.contains("findings")) {
      print_findings(body);
    }
    print_error(body.value("error", std::string("finalize refused")));
    return exit_code::k_failure;
  }
  if (args.json) {
    print_json(body);
  } else {
    if (body.value("forced", false)) {
      fmt::print("forced past risk score {} (threshold {})\n", body.value("score", 0), body.value("threshold", 0));
    }
    print_release(body);
  }
  return exit_code::k_ok;
}

int run_releases(VerbArgs& args)
{
  auto client = make_client(args.config);
  const auto body = must(client.get_json("/api/v1/releases"));
  if (args.json) {
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
    const auto created = static_cast<time_t>(release.value("created", 0.0));
    struct tm utc {};
    gmtime_r(&created, &utc);
    fmt::print("{} {:<20} {:04}-{:02}-{:02} {:02}:{:02}:{:02}  {:>8} {:>6} {:>8} {:>8}\n",
               release.value("current", false) ? "*" : " ", release.value("id", std::string()), utc.tm_year + 1900,
               utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, release.value("packages", 0),
               release.value("added", json::array()).size(), release.value("rebuilt", json::array()).size(),
               release.value("removed", json::array()).size());
  }
  fmt::print("* = production ({}); {} built package(s) not released\n", body.value("url", std::string()),
             body.value("unreleased", 0));
  return exit_code::k_ok;
}

int run_rollback(VerbArgs& args)
{
  auto client = make_client(args.config);
  const auto& id = args.option("release");
  if (!confirm(args, id.empty() ? std::string("Point production back at the previous release?")
                                : fmt::format("Point production at release {}?", id))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto body =
    must(client.post_json("/api/v1/releases/rollback", id.empty() ? json::object() : json{{"release", id}}));
  if (args.json) {
    print_json(body);
  } else {
    fmt::print("production now publishes release {} ({} packages; was {})\n", body.value("release", std::string()),
               body.value("packages", 0), body.value("previous", std::string()));
  }
  return exit_code::k_ok;
}

// --- release: the unattended pipeline -------------------------------------------------------

/*
 * sync-verify → fresh → wait → verify → finalize. Each step prints one line; the exit code says
 * where it stopped (core/exit_codes.hpp k_release_*). Re-running after any failure is safe: the
 * plan submission is idempotent (same plan: nothing changes, built packages stay built), verify
 * only reads, and finalize refuses to publish a release identical to the current one.
 */
int run_release(VerbArgs& args)
{
  fmt::print("STARTED swarm release at {} against {}\n", utc_now(), args.config.get("client.url"));
  std::fflush(stdout);
  auto client = make_client(args.config);
  auto stop = [&](int code, const std::string& why) {
    fmt::print("STOPPED {} (exit {})\n", why, code);
    std::fflush(stdout);
    return code;
  };
  auto call = [&](auto result, const char* what) {
    if (!result) {
      if (result.error().kind == ErrorKind::unavailable) {
        throw Fatal{Error{ErrorKind::unavailable, fmt::format("{}: {}", what, result.error().message)}};
      }
    }
    return result;
  };

  // The plan to submit, if any.
  std::optional<portage::Plan> plan;
  if (args.has_option("plan")) {
    const auto text = must(fs::read_file(args.option("plan")));
    auto parsed = json::parse(text, nullptr, false);
    if (parsed.is_discarded()) {
      throw Fatal{Error{ErrorKind::invalid, fmt::format("{} is not JSON", args.option("plan"))}};
    }
    plan = must(portage::plan_from_json(parsed.contains("plan") ? parsed["plan"] : parsed));
  }

  // 1. sync-verify: every online drone on the plan's tree.
  auto status = call(client.get_json("/api/v1/status"), "status");
  if (!status) {
    return stop(exit_code::k_release_sync_mismatch, "sync-verify: " + status.error().message);
  }
  if (!plan) {
    // fresh: the @world plan from emerge here (or its saved output), computed once the
    // orchestrator is known to answer. Failing here is the pipeline's "fresh failed", not bad
    // input: cron must be able to tell.
    auto computed =
      operator_cli::compute_world_plan({args.config.get("client.emerge"), args.config.get("client.repo_dir"),
                                        args.has_option("from") ? args.option("from") : ""});
    if (!computed) {
      return stop(exit_code::k_release_fresh_failed, "fresh: " + computed.error().message);
    }
    plan = std::move(*computed);
  }
  const auto tree = plan ? plan->tree_timestamp : (*status)["plan"].value("tree_timestamp", std::string());
  std::vector<std::string> mismatched;
  size_t online = 0;
  for (const auto& drone : (*status)["drones"]) {
    if (!drone.value("online", false)) {
      continue;
    }
    ++online;
    if (!tree.empty() && drone.value("tree_timestamp", std::string()) != tree) {
      mismatched.push_back(
        fmt::format("{} ({})", drone.value("name", std::string()), drone.value("tree_timestamp", std::string())));
    }
  }
  if (!mismatched.empty()) {
    return stop(exit_code::k_release_sync_mismatch,
                fmt::format("sync-verify: drone(s) not on tree '{}': {}; run `emerge --sync` there", tree,
                            fmt::join(mismatched, ", ")));
  }
  fmt::print("sync-verify ok: {} online drone(s) on tree '{}'\n", online, tree);

  // 2. fresh: submit the plan (replace).
  if (plan) {
    auto reply =
      call(client.post_json("/api/v1/plan",
                            json{{"plan", portage::plan_to_json(*plan)}, {"mode", "replace"}, {"clear_staging", true}}),
           "plan");
    if (!reply) {
      return stop(exit_code::k_release_fresh_failed, "fresh: " + reply.error().message);
    }
    fmt::print("fresh ok: {} packages ({} added, {} removed, {} rebuilt, {} kept)\n", reply->value("packages", 0),
               reply->value("added", 0), reply->value("removed", 0), reply->value("reset", 0), reply->value("kept", 0));
  } else {
    fmt::print("fresh skipped: no --plan or --from, building the current plan\n");
  }
  std::fflush(stdout);

  // 3. wait until nothing is needed or building.
  const double timeout =
    args.has_option("wait-timeout") ? strings::parse_double(args.option("wait-timeout")).value_or(3600) : 3600;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  json counts;
  while (true) {
    auto current = call(client.get_json("/api/v1/status"), "status");
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
                              counts.value("delegated", 0), timeout));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  fmt::print("build done: {} complete, {} blocked, {} dep-failed\n", counts.value("received", 0),
             counts.value("blocked", 0), counts.value("dep-failed", 0));

  // 4. verify.
  std::string verify_path = "/api/v1/verify";
  if (args.has_option("threshold")) {
    verify_path += "?threshold=" + args.option("threshold");
  }
  auto report = call(client.get_json(verify_path), "verify");
  if (!report) {
    return stop(exit_code::k_release_verify_failed, "verify: " + report.error().message);
  }
  fmt::print("verify: risk score {} (threshold {})\n", report->value("score", 0), report->value("threshold", 0));
  if (!report->value("pass", false)) {
    print_findings(*report);
    return stop(exit_code::k_release_verify_failed, "verify: risk score above the threshold");
  }

  // 5. finalize.
  auto response = call(client.request("POST", "/api/v1/releases/finalize", json{{"force", false}}.dump(),
                                      {{"Content-Type", "application/json"}}, returning()),
                       "finalize");
  if (!response) {
    return stop(exit_code::k_release_finalize_failed, "finalize: " + response.error().message);
  }
  const auto body = response->json().value_or(json::object());
  if (response->status == 409 && body.is_object() && body.value("reason", std::string()) == "nothing_new") {
    return stop(exit_code::k_release_nothing_to_do, "nothing to do: " + body.value("error", std::string()));
  }
  if (!response->ok()) {
    return stop(exit_code::k_release_finalize_failed,
                "finalize: " + (body.is_object() ? body.value("error", response->body) : response->body));
  }
  print_release(body);
  fmt::print("DONE release {}\n", body.value("release", std::string()));
  return exit_code::k_ok;
}

void add_client(CLI::App& app, VerbArgs& args)
{
  operator_cli::add_client_flags(app, args);
  add_json_flag(app, args);
}

} // namespace

void add_release_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"status",
                   "Gateway and orchestrator health, package counts, drones and the NEXT ACTION (exit 0 all well, 1 "
                   "action needed, 3 unreachable)",
                   add_client, run_status});
  verbs.push_back({"verify",
                   "Compute the Risk Score of publishing staging now, with every finding (exit 0 pass, 1 fail)",
                   [](CLI::App& app, VerbArgs& args) {
                     add_client(app, args);
                     app
                       .add_option_function<std::string>(
                         "--threshold", [&args](const std::string& v) { args.options["threshold"] = v; },
                         "Highest passing score (default: the orchestrator's orch.risk_threshold)")
                       ->check(CLI::Range(0, 100));
                   },
                   run_verify});
  verbs.push_back({"finalize",
                   "Publish staging as a new production release (refused above the risk threshold unless --force)",
                   [](CLI::App& app, VerbArgs& args) {
                     add_client(app, args);
                     add_yes_flag(app, args);
                     app.add_flag_function(
                       "--force", [&args](int64_t n) { args.switches["force"] = n > 0; },
                       "Publish even when the risk score is above the threshold");
                   },
                   run_finalize});
  verbs.push_back({"releases", "List the releases with their package counts and differences; * marks production",
                   add_client, run_releases});
  verbs.push_back({"rollback", "Publish an earlier release again (default: the one before the current)",
                   [](CLI::App& app, VerbArgs& args) {
                     add_client(app, args);
                     add_yes_flag(app, args);
                     app.add_option_function<std::string>(
                       "release", [&args](const std::string& v) { args.options["release"] = v; },
                       "Release id (see `swarm releases`)");
                   },
                   run_rollback});
  verbs.push_back(
    {"release",
     "Unattended pipeline for cron: sync-verify, fresh, wait, verify, finalize (exit code says where it stopped)",
     [](CLI::App& app, VerbArgs& args) {
       operator_cli::add_client_flags(app, args);
       bind_config_flag(app, args, "--repo-dir", "client.repo_dir");
       bind_config_flag(app, args, "--emerge", "client.emerge");
       app.add_option_function<std::string>(
         "--from", [&args](const std::string& v) { args.options["from"] = v; },
         "Saved `emerge --pretend --verbose --update --deep --newuse @world` output to plan from");
       app.add_option_function<std::string>(
         "--plan", [&args](const std::string& v) { args.options["plan"] = v; },
         "Plan JSON (`swarm portage plan`) to submit instead");
       app.add_option_function<std::string>(
         "--wait-timeout", [&args](const std::string& v) { args.options["wait-timeout"] = v; },
         "Seconds to wait for the build (default 3600)");
       app
         .add_option_function<std::string>(
           "--threshold", [&args](const std::string& v) { args.options["threshold"] = v; },
           "Highest passing risk score (default: the orchestrator's)")
         ->check(CLI::Range(0, 100));
     },
     run_release});
}

} // namespace swarm::roles
