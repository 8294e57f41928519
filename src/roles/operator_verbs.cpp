// The operator's verbs (issue 4), every one a client of the gateway or an orchestrator
// (client.url, admin token): plan work (`fresh`, `submit`, `queue add`), steer it (`unblock`,
// `reset`, `balance`, `pause`, `resume`, `ground`, `unground`), look at it (`drones`, `logs`,
// `history`, `info`, `sync-verify`, `fix-blocked`), build by hand (`build-local`), and the
// desktop side (`client setup`, `client update`). `status` lives in status_verbs.cpp; verify,
// finalize and the `release` pipeline in release_verbs.cpp. fresh and sync-verify run the same
// step functions as `release` (roles/operator/release_steps.hpp).

#include <chrono>
#include <cstdio>
#include <iostream>
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
#include "roles/operator/client_side.hpp"
#include "roles/operator/failure_class.hpp"
#include "roles/operator/release_steps.hpp"
#include "roles/operator/world_plan.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using namespace operator_cli;

// --- shared helpers ---------------------------------------------------------------------------

// Ends the verb: "swarm: error: MESSAGE", exit code from `kind`.
[[noreturn]] void throw_error(ErrorKind kind, std::string message)
{
  throw Fatal{Error{kind, std::move(message)}};
}

void must_do(const Result<>& result)
{
  if (!result) {
    throw Fatal{result.error()};
  }
}

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

std::string url_encode(std::string_view text)
{
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
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
};

int run_fresh(const VerbContext& context, const FreshOptions& options)
{
  auto plan = must(
    compute_world_plan({context.config.get("client.emerge"), context.config.get("client.repo_dir"), options.from}));
  if (plan.packages.empty()) {
    fmt::print(stderr, "note: the merge list has no package to build from source\n");
  }

  auto client = make_client(context.config);
  const auto drones = must(client.get_json("/api/v1/drones"));
  const auto trees = sync_verify(drones.value("drones", json::array()), plan.tree_timestamp);
  if (!trees.message.empty()) {
    if (trees.refuse && !options.force) {
      throw_error(ErrorKind::conflict,
                  trees.message + " — no drone could build this plan; sync them first, or pass --force");
    }
    fmt::print(stderr, "warning: {}\n", trees.message);
  }
  if (trees.matching.empty() && trees.mismatching.empty()) {
    fmt::print(stderr, "warning: no drone is online; the plan waits for one\n");
  }

  if (!confirm(options.confirm,
               fmt::format("Replace the plan with {} packages and clear unreleased artifacts that are not in it "
                           "from staging?",
                           plan.packages.size()))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto reply = must(submit_fresh_plan(client, plan));
  if (options.json) {
    auto out = reply.json;
    out["tree_timestamp"] = plan.tree_timestamp;
    out["drones"] = {{"matching", trees.matching}, {"mismatching", trees.mismatching}, {"offline", trees.offline}};
    print_json(out);
    return exit_code::k_ok;
  }
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

int run_fix_blocked(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto blocked = must(client.get_json("/api/v1/packages?state=blocked")).value("packages", json::array());
  json report = json::array();
  for (const auto& item : blocked) {
    const auto cpv = item.value("cpv", std::string());
    const auto detail = must(client.get_json("/api/v1/packages/" + url_encode(cpv)));
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
      if (auto logs = client.get_json("/api/v1/logs?package=" + url_encode(cpv)); logs) {
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
                      {"command", step.command}});
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
};

int run_unblock(const VerbContext& context, const UnblockOptions& options)
{
  net::UnblockRequest request;
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

// --- views ------------------------------------------------------------------------------------

int run_drones(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto drones = must(client.get_json("/api/v1/drones")).value("drones", json::array());
  if (options.json) {
    print_json(drones);
    return exit_code::k_ok;
  }
  if (drones.empty()) {
    fmt::print("no drone is enrolled (`swarm drone enroll NAME` on the orchestrator)\n");
    return exit_code::k_ok;
  }
  fmt::print("{:<20} {:<10} {:>5} {:>7} {:>5} {:<32} {:<19} {}\n", "NAME", "STATE", "SLOTS", "RUNNING", "FAILS", "TREE",
             "LAST SEEN", "REASON");
  for (const auto& d : drones) {
    auto tree = d.value("tree_timestamp", std::string());
    if (!d.value("tree_matches", true)) {
      tree += " (!)";
    }
    fmt::print("{:<20} {:<10} {:>5} {:>7} {:>5} {:<32} {:<19} {}\n", d.value("name", std::string()),
               d.value("state", std::string()), d.value("slots", 0), d.value("running", 0),
               d.value("consecutive_failures", 0), tree.empty() ? "-" : tree, utc_time(d.value("last_seen", 0.0)),
               d.value("reason", std::string()));
    if (d.value("build_root", std::string()) == "host") {
      fmt::print("  warning: builds on its own system (--build-root host): build dependencies change it\n");
    }
    const auto refused = d.value("refused", json::object());
    for (const auto& [profile, why] : refused.items()) {
      fmt::print("  refused profile {}: {}\n", profile, why.is_string() ? why.get<std::string>() : why.dump());
    }
  }
  return exit_code::k_ok;
}

struct LogsOptions {
  std::string subject; // DRONE or CAT/PKG-VER
  bool follow = false;
};

int run_logs(const VerbContext& context, const LogsOptions& options)
{
  const auto& subject = options.subject;
  std::string query;
  if (subject.find('/') != std::string::npos) {
    query = "package=" + url_encode(must(cpv_argument(subject)));
  } else {
    query = "drone=" + url_encode(subject);
  }
  auto client = make_client(context.config);
  uint64_t offset = 0;
  std::string path;
  while (true) {
    const auto reply = must(client.get_json(fmt::format("/api/v1/logs?{}&offset={}", query, offset)));
    const auto current = reply.value("path", std::string());
    if (!path.empty() && current != path) {
      // A newer build started: follow its log from the start.
      offset = 0;
      path = current;
      fmt::print("\n==> {} <==\n", current);
      std::fflush(stdout);
      continue;
    }
    path = current;
    const auto text = reply.value("text", std::string());
    fmt::print("{}", text);
    std::fflush(stdout);
    offset = reply.value("next_offset", offset + text.size());
    if (!options.follow) {
      return exit_code::k_ok;
    }
    if (text.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

struct HistoryOptions {
  bool json = false;
  std::string package; // "": every package
  std::string drone;   // "": every drone
  int limit = 50;      // newest N builds
};

int run_history(const VerbContext& context, const HistoryOptions& options)
{
  std::string query = fmt::format("/api/v1/builds?limit={}", options.limit);
  if (!options.package.empty()) {
    query += "&package=" + url_encode(must(cpv_argument(options.package)));
  }
  if (!options.drone.empty()) {
    query += "&drone=" + url_encode(options.drone);
  }
  auto client = make_client(context.config);
  const auto builds = must(client.get_json(query)).value("builds", json::array());
  if (options.json) {
    print_json(builds);
    return exit_code::k_ok;
  }
  if (builds.empty()) {
    fmt::print("no build yet\n");
    return exit_code::k_ok;
  }
  fmt::print("{:<19} {:<19} {:<16} {:<40} {:<10} {:>9}  {}\n", "START", "END", "DRONE", "PACKAGE", "RESULT", "DURATION",
             "REASON");
  for (const auto& b : builds) {
    const double duration = b.value("duration", 0.0);
    auto reason = b.value("reason", std::string());
    if (reason.size() > 80) {
      reason = reason.substr(0, 80) + "…";
    }
    fmt::print("{:<19} {:<19} {:<16} {:<40} {:<10} {:>9}  {}\n", utc_time(b.value("started", 0.0)),
               utc_time(b.value("ended", 0.0)), b.value("drone", std::string()), b.value("package", std::string()),
               b.value("result", std::string()), b.value("ended", 0.0) > 0 ? strings::human_duration(duration) : "-",
               reason);
  }
  return exit_code::k_ok;
}

// The same step `release` runs first (release_steps.hpp has the rule), against the plan the
// orchestrator has now.
int run_sync_verify(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto status = must(client.get_json("/api/v1/status"));
  const auto plan_tree = status.value("plan", json::object()).value("tree_timestamp", std::string());
  const auto check = sync_verify(status.value("drones", json::array()), plan_tree);
  if (options.json) {
    json drones = json::array();
    for (const auto& d : check.drones) {
      drones.push_back({{"name", d.name},
                        {"state", d.state},
                        {"online", d.online},
                        {"tree_timestamp", d.tree_timestamp},
                        {"matches", d.matches}});
    }
    print_json(json{{"plan_tree_timestamp", plan_tree}, {"drones", drones}, {"ok", check.ok()}});
    return check.ok() ? exit_code::k_ok : exit_code::k_failure;
  }
  fmt::print("plan tree: {}\n", plan_tree.empty() ? "none (no plan, or it has no tree timestamp)" : plan_tree);
  for (const auto& d : check.drones) {
    const auto* verdict = !d.online ? "offline" : d.matches ? "ok" : "MISMATCH";
    fmt::print("  {:<20} {:<9} {:<8} {}\n", d.name, d.state, verdict,
               d.tree_timestamp.empty() ? "unknown" : d.tree_timestamp);
  }
  if (!check.offline.empty()) {
    fmt::print("offline drones are not checked: a drone reports its tree again when it comes back, and gets no "
               "work until it matches\n");
  }
  if (!check.ok()) {
    fmt::print("drones marked MISMATCH get no work: run `emerge --sync` there (or `swarm fresh` here after syncing "
               "this machine), then `swarm sync-verify` again\n");
    return exit_code::k_failure;
  }
  fmt::print("all online drones have the plan's tree\n");
  return exit_code::k_ok;
}

int run_info(const VerbContext& context, const JsonOptions& options)
{
  const auto& config = context.config;
  const auto url = config.get("client.url");
  auto client = make_client(config);
  json out{{"url", url},
           {"client",
            {{"binrepos_conf", config.get("client.binrepos_conf")},
             {"repo_dir", config.get("client.repo_dir")},
             {"emerge", config.get("client.emerge")},
             {"orch_data_dir", config.get("client.orch_data_dir")}}}};
  const auto health = must(client.get_json("/healthz"));
  out["role"] = health.value("role", std::string());
  if (out["role"] == "gateway") {
    out["gateway"] = url;
    if (auto status = client.get_json("/status")) {
      out["orchestrators"] = status->value("orchestrators", json::array());
      out["active"] = status->value("active", json());
    }
    if (auto binhost = client.get_json("/binhost")) {
      out["binhost_url"] = binhost->value("url", std::string());
    }
  } else {
    out["production_url"] = health.value("production_url", std::string());
    out["binhost_url"] = health.value("production_url", std::string());
  }
  if (auto info = client.get_json("/api/v1/info")) {
    out["orchestrator"] = *info; // the active one: its id, data dir, staging and production URLs
  }
  if (options.json) {
    print_json(out);
    return exit_code::k_ok;
  }
  fmt::print("talking to:      {} ({})\n", url, out["role"].get<std::string>());
  if (out.contains("orchestrators")) {
    for (const auto& o : out["orchestrators"]) {
      fmt::print("orchestrator:    {}\n", o.is_object() ? o.value("url", std::string()) : o.dump());
    }
    if (out["active"].is_string()) {
      fmt::print("active:          {}\n", out["active"].get<std::string>());
    }
  }
  if (out.contains("orchestrator")) {
    const auto& o = out["orchestrator"];
    fmt::print("orch id:         {}\n", o.value("orch_id", std::string()));
    fmt::print("orch data dir:   {}\n", o.value("data_dir", std::string()));
    fmt::print("staging binhost: {}\n", o.value("staging_url", std::string()));
    fmt::print("production:      {}\n", o.value("production_url", std::string()));
  }
  if (out.contains("binhost_url")) {
    fmt::print("client binhost:  {}\n", out["binhost_url"].get<std::string>());
  }
  fmt::print("binrepos.conf:   {}\n", config.get("client.binrepos_conf"));
  fmt::print("repository:      {}\n", config.get("client.repo_dir"));
  fmt::print("emerge:          {}\n", config.get("client.emerge"));
  return exit_code::k_ok;
}

// --- build-local --------------------------------------------------------------------------------

struct BuildLocalOptions {
  bool json = false;
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

// --- client side ------------------------------------------------------------------------------

struct ClientSetupOptions {
  bool json = false;
  std::string gateway; // "": client.url
};

int run_client_setup(const VerbContext& context, const ClientSetupOptions& options)
{
  const auto& config = context.config;
  const auto gateway = options.gateway.empty() ? config.get("client.url") : options.gateway;
  net::ClientOptions client_options;
  client_options.base_url = gateway;
  client_options.timeout =
    std::chrono::milliseconds(static_cast<int64_t>(config.get_seconds("client.timeout") * 1000.0));
  net::HttpClient client(client_options);
  std::string url;
  if (auto binhost = client.get_json("/binhost"); binhost && binhost->is_object()) {
    url = binhost->value("url", std::string());
  }
  if (url.empty()) {
    // Not a gateway: an orchestrator announces its production URL in /healthz.
    const auto health = must(client.get_json("/healthz"));
    url = health.value("production_url", std::string());
  }
  if (url.empty()) {
    throw_error(ErrorKind::conflict, fmt::format("{} handed out no binhost URL", gateway));
  }
  const auto text = must(binrepos_conf_text(url, gateway));
  const std::filesystem::path path = config.get("client.binrepos_conf");
  std::error_code ec;
  if (std::filesystem::exists(path.parent_path(), ec) && !std::filesystem::is_directory(path.parent_path(), ec)) {
    throw_error(ErrorKind::io, fmt::format("{} is a file; make it a directory (move the file into it) first",
                                           path.parent_path().string()));
  }
  must_do(fs::make_dirs(path.parent_path()));
  must_do(fs::write_file_atomic(path, text, 0644));
  if (options.json) {
    print_json(json{{"path", path.string()}, {"binhost_url", url}, {"text", text}});
  } else {
    fmt::print("wrote {} (binhost {})\nnext: swarm client update\n", path.string(), url);
  }
  return exit_code::k_ok;
}

int run_client_update(const VerbContext& context)
{
  subprocess::Spec spec;
  spec.argv = client_update_argv(context.config.get("client.emerge"));
  spec.on_chunk = [](std::string_view chunk) {
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    std::fflush(stdout);
  };
  fmt::print(stderr, "running {}\n", strings::join(spec.argv, " "));
  auto outcome = subprocess::run(spec);
  if (!outcome) {
    throw_error(outcome.error().kind, fmt::format("cannot run {}: {}", spec.argv.front(), outcome.error().message));
  }
  if (outcome->signal != 0) {
    print_error(fmt::format("{} {}", spec.argv.front(), outcome->describe()));
    return 128 + outcome->signal;
  }
  return outcome->exit_code;
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
    },
    run_fresh));
  verbs.push_back(make_verb<SubmitOptions>(
    "submit", "Add the packages of a plan file (swarm portage plan JSON) to the current plan",
    [](CLI::App& app, ConfigFlags& flags, SubmitOptions& options) {
      client_verb(app, flags, options.json);
      app.add_option("plan", options.plan, "PLAN.json")->required();
    },
    run_submit));
  verbs.push_back({"queue", "The build queue", nullptr, nullptr});
  verbs.push_back(make_verb<QueueAddOptions>(
    "queue add", "Add packages (=CAT/PKG-VER) to the plan without resetting it",
    [](CLI::App& app, ConfigFlags& flags, QueueAddOptions& options) {
      client_verb(app, flags, options.json);
      bind_config_flag(app, flags, "--repo-dir", "client.repo_dir");
      app.add_option("atoms", options.atoms, "=CAT/PKG-VER …")->required();
    },
    run_queue_add));
  verbs.push_back(make_verb<JsonOptions>(
    "fix-blocked", "For each blocked package: why (from its log), where it failed, and the command to run next",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); },
    run_fix_blocked));
  verbs.push_back(make_verb<UnblockOptions>(
    "unblock", "Give blocked packages (all when none named) another try",
    [](CLI::App& app, ConfigFlags& flags, UnblockOptions& options) {
      client_verb(app, flags, options.json);
      app.add_option("packages", options.packages, "CAT/PKG-VER … (default: every blocked one)");
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
  verbs.push_back(make_verb<JsonOptions>(
    "drones", "The drones: state, slots, running builds, tree, last heartbeat",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); },
    run_drones));
  verbs.push_back(make_verb<LogsOptions>(
    "logs", "The latest build log of a drone or a package",
    [](CLI::App& app, ConfigFlags& flags, LogsOptions& options) {
      add_client_flags(app, flags);
      app.add_option("subject", options.subject, "DRONE or CAT/PKG-VER")->required();
      app.add_flag("-f,--follow", options.follow, "Keep printing as the log grows (Ctrl-C ends)");
    },
    run_logs));
  verbs.push_back(make_verb<HistoryOptions>(
    "history", "Past builds: start, end, drone, package, result, duration",
    [](CLI::App& app, ConfigFlags& flags, HistoryOptions& options) {
      client_verb(app, flags, options.json);
      app.add_option("--package", options.package, "Only builds of CAT/PKG-VER");
      app.add_option("--drone", options.drone, "Only builds on this drone");
      app.add_option("--limit", options.limit, "Newest N builds (default 50)");
    },
    run_history));
  verbs.push_back(make_verb<JsonOptions>(
    "sync-verify", "Check each online drone's Portage tree timestamp against the plan's (exit 1 on a mismatch)",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); },
    run_sync_verify));
  verbs.push_back(make_verb<JsonOptions>(
    "info", "Where everything is: gateway, orchestrators, binhost URLs, data dirs, local paths",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { client_verb(app, flags, options.json); }, run_info));
  verbs.push_back(make_verb<BuildLocalOptions>(
    "build-local", "Build one package on this machine with emerge (as a drone would) and upload it to staging",
    [](CLI::App& app, ConfigFlags& flags, BuildLocalOptions& options) {
      client_verb(app, flags, options.json);
      bind_config_flag(app, flags, "--emerge", "client.emerge");
      bind_config_flag(app, flags, "--repo-dir", "client.repo_dir");
      app.add_option("--portage-configroot", options.portage_configroot,
                     "PORTAGE_CONFIGROOT whose binrepos.conf gets the staging repo (default /)");
      app.add_option("atom", options.atom, "=CAT/PKG-VER")->required();
    },
    run_build_local));
  verbs.push_back({"client", "This machine as a client of the swarm's binhost", nullptr, nullptr});
  verbs.push_back(make_verb<ClientSetupOptions>(
    "client setup", "Point Portage at the binhost the gateway hands out (writes binrepos.conf)",
    [](CLI::App& app, ConfigFlags& flags, ClientSetupOptions& options) {
      client_verb(app, flags, options.json);
      bind_config_flag(app, flags, "--binrepos-conf", "client.binrepos_conf");
      app.add_option("--gateway", options.gateway, "Gateway (or orchestrator) URL (default client.url)");
    },
    run_client_setup));
  verbs.push_back({"client update", "emerge --getbinpkg --update --deep --newuse @world (exit code passed through)",
                   [](CLI::App& app, ConfigFlags& flags) { bind_config_flag(app, flags, "--emerge", "client.emerge"); },
                   run_client_update});
}

} // namespace swarm::roles
