// The operator's verbs (issue 4), every one a client of the gateway or an orchestrator
// (client.url, admin token): plan work (`fresh`, `submit`, `queue add`), steer it (`unblock`,
// `reset`, `balance`, `pause`, `resume`, `ground`, `unground`), look at it (`drones`, `logs`,
// `history`, `info`, `sync-verify`, `fix-blocked`), build by hand (`build-local`), and the
// desktop side (`client setup`, `client update`). status/verify/finalize live in
// release_verbs.cpp.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "core/build_info.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "portage/md5_cache.hpp"
#include "portage/plan.hpp"
#include "roles/drone/builder.hpp"
#include "roles/drone/orch_api.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/client_side.hpp"
#include "roles/operator/failure_class.hpp"
#include "roles/operator/world_plan.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using namespace operator_cli;

// --- shared helpers ---------------------------------------------------------------------------

[[noreturn]] void fatal(ErrorKind kind, std::string message)
{
  throw Fatal{Error{kind, std::move(message)}};
}

void must_do(const Result<>& result)
{
  if (!result) {
    throw Fatal{result.error()};
  }
}

std::string host_name()
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

std::string iso_time(double epoch)
{
  if (epoch <= 0) {
    return "-";
  }
  const auto seconds = static_cast<time_t>(epoch);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec);
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

void client_verb(CLI::App& app, VerbArgs& args, bool json_flag = true)
{
  add_client_flags(app, args);
  if (json_flag) {
    add_json_flag(app, args);
  }
}

json control(const VerbArgs& args, const std::string& action, const json& body = json::object())
{
  auto client = make_client(args.config);
  return must(client.post_json("/api/v1/control/" + action, body));
}

// The plan text a verb prints after a submission.
void print_plan_reply(const json& reply)
{
  fmt::print("plan: {} packages ({} added, {} removed, {} to rebuild, {} kept)\n", reply.value("packages", 0),
             reply.value("added", 0), reply.value("removed", 0), reply.value("reset", 0), reply.value("kept", 0));
  if (reply.contains("warnings") && reply["warnings"].is_array()) {
    for (const auto& warning : reply["warnings"]) {
      fmt::print("warning: {}\n", warning.get<std::string>());
    }
  }
  if (!reply.value("changed", true)) {
    fmt::print("nothing changed: the orchestrator already has this plan\n");
  }
}

// --- fresh ----------------------------------------------------------------------------------

int run_fresh(VerbArgs& args)
{
  auto plan = must(compute_world_plan({args.config.get("client.emerge"), args.config.get("client.repo_dir"),
                                       args.has_option("from") ? args.option("from") : ""}));
  if (plan.packages.empty()) {
    fmt::print(stderr, "note: the merge list has no package to build from source\n");
  }

  auto client = make_client(args.config);
  const auto drones = must(client.get_json("/api/v1/drones"));
  const auto trees = check_drone_trees(drones.value("drones", json::array()), plan.tree_timestamp);
  if (!trees.message.empty()) {
    if (trees.refuse && !args.on("force")) {
      fatal(ErrorKind::conflict, trees.message + " — no drone could build this plan; sync them first, or pass --force");
    }
    fmt::print(stderr, "warning: {}\n", trees.message);
  }
  if (trees.matching.empty() && trees.mismatching.empty()) {
    fmt::print(stderr, "warning: no drone is online; the plan waits for one\n");
  }

  if (!confirm(args, fmt::format("Replace the plan with {} packages and clear unreleased artifacts that are not in it "
                                 "from staging?",
                                 plan.packages.size()))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto reply = must(client.post_json(
    "/api/v1/plan", json{{"plan", portage::plan_to_json(plan)}, {"mode", "replace"}, {"clear_staging", true}}));
  if (args.json) {
    auto out = reply;
    out["tree_timestamp"] = plan.tree_timestamp;
    out["drones"] = {{"matching", trees.matching}, {"mismatching", trees.mismatching}, {"offline", trees.offline}};
    print_json(out);
    return exit_code::k_ok;
  }
  fmt::print("tree: {}\n", plan.tree_timestamp.empty() ? "unknown (no metadata/timestamp.chk)" : plan.tree_timestamp);
  if (!plan.unresolved.empty()) {
    fmt::print("{} dependencies are outside the plan (assumed installed on the drones)\n", plan.unresolved.size());
  }
  print_plan_reply(reply);
  return exit_code::k_ok;
}

// --- submit / queue add -----------------------------------------------------------------------

int submit_added(VerbArgs& args, const portage::Plan& plan)
{
  auto client = make_client(args.config);
  const auto reply = must(client.post_json(
    "/api/v1/plan", json{{"plan", portage::plan_to_json(plan)}, {"mode", "add"}, {"clear_staging", false}}));
  if (args.json) {
    print_json(reply);
  } else {
    print_plan_reply(reply);
  }
  return exit_code::k_ok;
}

int run_submit(VerbArgs& args)
{
  const auto text = must(fs::read_file(args.option("plan")));
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) {
    fatal(ErrorKind::invalid, fmt::format("{} is not JSON", args.option("plan")));
  }
  if (parsed.contains("plan") && parsed["plan"].is_object()) {
    parsed = parsed["plan"]; // a saved request body
  }
  auto plan = portage::plan_from_json(parsed);
  if (!plan) {
    fatal(ErrorKind::invalid, fmt::format("{}: {}", args.option("plan"), plan.error().message));
  }
  return submit_added(args, *plan);
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

int run_queue_add(VerbArgs& args)
{
  const std::filesystem::path repo_dir = args.config.get("client.repo_dir");
  portage::Plan plan;
  plan.source = "swarm queue add";
  plan.tree_timestamp = first_line_of(repo_dir / "metadata/timestamp.chk");
  auto repo_name = first_line_of(repo_dir / "profiles/repo_name");
  for (const auto& atom : args.list("atoms")) {
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
  return submit_added(args, plan);
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

int run_fix_blocked(VerbArgs& args)
{
  auto client = make_client(args.config);
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
  if (args.json) {
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

int run_unblock(VerbArgs& args)
{
  std::vector<std::string> packages;
  for (const auto& atom : args.list("packages")) {
    packages.push_back(must(cpv_argument(atom)));
  }
  const auto reply = control(args, "unblock", json{{"packages", packages}});
  if (args.json) {
    print_json(reply);
    return exit_code::k_ok;
  }
  const auto done = reply.value("unblocked", json::array());
  if (done.empty()) {
    fmt::print("no package was blocked\n");
  }
  for (const auto& cpv : done) {
    fmt::print("unblocked {}\n", cpv.get<std::string>());
  }
  return exit_code::k_ok;
}

int run_reset(VerbArgs& args)
{
  if (!confirm(args, "Return all in-flight work to the queue (drones stop their running builds)?")) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto reply = control(args, "reset");
  if (args.json) {
    print_json(reply);
  } else {
    fmt::print("{} package(s) back in the queue; built packages kept\n", reply.value("returned", 0));
  }
  return exit_code::k_ok;
}

int run_simple_control(VerbArgs& args, const std::string& action)
{
  const auto reply = control(args, action);
  if (args.json) {
    print_json(reply);
  } else if (action == "balance") {
    const auto moved = reply.value("moved", json::array());
    fmt::print("{} package(s) moved from drones that cannot make progress back to the queue\n", moved.size());
    for (const auto& cpv : moved) {
      fmt::print("  {}\n", cpv.get<std::string>());
    }
  } else {
    fmt::print("{}\n", reply.value("paused", false) ? "paused: drones get no new work (running builds finish)"
                                                    : "resumed: drones get work again");
  }
  return exit_code::k_ok;
}

int run_ground(VerbArgs& args, bool ground)
{
  if (ground &&
      !confirm(args, fmt::format("Ground drone {} (its running builds go back to the queue)?", args.option("drone")))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  const auto reply = control(args, ground ? "ground" : "unground", json{{"drone", args.option("drone")}});
  if (args.json) {
    print_json(reply);
  } else {
    fmt::print("{} {}\n", ground ? "grounded" : "ungrounded", reply.value("drone", args.option("drone")));
  }
  return exit_code::k_ok;
}

// --- views ------------------------------------------------------------------------------------

int run_drones(VerbArgs& args)
{
  auto client = make_client(args.config);
  const auto drones = must(client.get_json("/api/v1/drones")).value("drones", json::array());
  if (args.json) {
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
               d.value("consecutive_failures", 0), tree.empty() ? "-" : tree, iso_time(d.value("last_seen", 0.0)),
               d.value("reason", std::string()));
  }
  return exit_code::k_ok;
}

int run_logs(VerbArgs& args)
{
  const auto subject = args.option("subject");
  std::string query;
  if (subject.find('/') != std::string::npos) {
    query = "package=" + url_encode(must(cpv_argument(subject)));
  } else {
    query = "drone=" + url_encode(subject);
  }
  auto client = make_client(args.config);
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
    if (!args.on("follow")) {
      return exit_code::k_ok;
    }
    if (text.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

int run_history(VerbArgs& args)
{
  std::string query = fmt::format("/api/v1/builds?limit={}", args.has_option("limit") ? args.option("limit") : "50");
  if (args.has_option("package")) {
    query += "&package=" + url_encode(must(cpv_argument(args.option("package"))));
  }
  if (args.has_option("drone")) {
    query += "&drone=" + url_encode(args.option("drone"));
  }
  auto client = make_client(args.config);
  const auto builds = must(client.get_json(query)).value("builds", json::array());
  if (args.json) {
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
    fmt::print("{:<19} {:<19} {:<16} {:<40} {:<10} {:>9}  {}\n", iso_time(b.value("started", 0.0)),
               iso_time(b.value("ended", 0.0)), b.value("drone", std::string()), b.value("package", std::string()),
               b.value("result", std::string()), b.value("ended", 0.0) > 0 ? strings::human_duration(duration) : "-",
               reason);
  }
  return exit_code::k_ok;
}

int run_sync_verify(VerbArgs& args)
{
  auto client = make_client(args.config);
  const auto status = must(client.get_json("/api/v1/status"));
  const auto plan_tree = status.value("plan", json::object()).value("tree_timestamp", std::string());
  json drones = json::array();
  bool mismatch = false;
  for (const auto& d : status.value("drones", json::array())) {
    const auto name = d.value("name", std::string());
    const auto state = d.value("state", std::string());
    if (name.starts_with("local-") || state == "enrolled") {
      continue;
    }
    const auto tree = d.value("tree_timestamp", std::string());
    const bool ok = plan_tree.empty() || tree == plan_tree;
    mismatch |= !ok;
    drones.push_back({{"name", name}, {"state", state}, {"tree_timestamp", tree}, {"matches", ok}});
  }
  if (args.json) {
    print_json(json{{"plan_tree_timestamp", plan_tree}, {"drones", drones}, {"ok", !mismatch}});
    return mismatch ? exit_code::k_failure : exit_code::k_ok;
  }
  fmt::print("plan tree: {}\n", plan_tree.empty() ? "none (no plan, or it has no tree timestamp)" : plan_tree);
  for (const auto& d : drones) {
    const auto tree = d["tree_timestamp"].get<std::string>();
    fmt::print("  {:<20} {:<9} {:<8} {}\n", d["name"].get<std::string>(), d["state"].get<std::string>(),
               d["matches"].get<bool>() ? "ok" : "MISMATCH", tree.empty() ? "unknown" : tree);
  }
  if (mismatch) {
    fmt::print("drones marked MISMATCH get no work: run `emerge --sync` there (or `swarm fresh` here after syncing "
               "this machine), then `swarm sync-verify` again\n");
    return exit_code::k_failure;
  }
  fmt::print("all drones have the plan's tree\n");
  return exit_code::k_ok;
}

int run_info(VerbArgs& args)
{
  const auto url = args.config.get("client.url");
  auto client = make_client(args.config);
  json out{{"url", url},
           {"client",
            {{"binrepos_conf", args.config.get("client.binrepos_conf")},
             {"repo_dir", args.config.get("client.repo_dir")},
             {"emerge", args.config.get("client.emerge")},
             {"orch_data_dir", args.config.get("client.orch_data_dir")}}}};
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
  if (args.json) {
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
  fmt::print("binrepos.conf:   {}\n", args.config.get("client.binrepos_conf"));
  fmt::print("repository:      {}\n", args.config.get("client.repo_dir"));
  fmt::print("emerge:          {}\n", args.config.get("client.emerge"));
  return exit_code::k_ok;
}

// --- build-local --------------------------------------------------------------------------------

int run_build_local(VerbArgs& args)
{
  const auto cpv = must(cpv_argument(args.option("atom")));
  const auto url = args.config.get("client.url");
  const std::filesystem::path repo_dir = args.config.get("client.repo_dir");
  const auto identity = "local-" + host_name();
  auto admin = make_client(args.config);
  const auto granted =
    must(admin.post_json("/api/v1/operator/local-build", json{{"drone", identity}, {"package", cpv}}));
  const auto token = granted.value("token", std::string());
  log::add_secret(token);
  auto lease = must(drone::lease_from_json(granted.value("lease", json::object())));
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
    fatal(ErrorKind::unavailable, "cannot register " + identity + ": " + drone::describe(registered));
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
  settings.emerge = args.config.get("client.emerge");
  settings.portage_configroot = args.has_option("portage-configroot") ? args.option("portage-configroot") : "/";
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
    fatal(ErrorKind::conflict, fmt::format("building {} failed: {}", cpv, outcome.reason));
  }
  const auto uploaded = api.upload_artifact(lease.id, outcome.artifact, outcome.sha256, outcome.xxh3_128);
  if (drone::verdict_of(uploaded) != drone::Verdict::done) {
    beats.request_stop();
    fatal(ErrorKind::conflict, fmt::format("the orchestrator did not take {}: {}", outcome.artifact.filename().string(),
                                           drone::describe(uploaded)));
  }
  report.result = drone::ReportResult::success;
  const auto reported = api.report(lease.id, report);
  beats.request_stop();
  if (drone::verdict_of(reported) != drone::Verdict::done) {
    fatal(ErrorKind::conflict, "the report was not accepted: " + drone::describe(reported));
  }
  const auto path = uploaded->body.is_object() ? uploaded->body.value("path", std::string()) : std::string();
  if (args.json) {
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

int run_client_setup(VerbArgs& args)
{
  const auto gateway = args.has_option("gateway") ? args.option("gateway") : args.config.get("client.url");
  net::ClientOptions options;
  options.base_url = gateway;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.config.get_seconds("client.timeout") * 1000.0));
  net::HttpClient client(options);
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
    fatal(ErrorKind::conflict, fmt::format("{} handed out no binhost URL", gateway));
  }
  const auto text = must(binrepos_conf_text(url, gateway));
  const std::filesystem::path path = args.config.get("client.binrepos_conf");
  std::error_code ec;
  if (std::filesystem::exists(path.parent_path(), ec) && !std::filesystem::is_directory(path.parent_path(), ec)) {
    fatal(ErrorKind::io,
          fmt::format("{} is a file; make it a directory (move the file into it) first", path.parent_path().string()));
  }
  must_do(fs::make_dirs(path.parent_path()));
  must_do(fs::write_file_atomic(path, text, 0644));
  if (args.json) {
    print_json(json{{"path", path.string()}, {"binhost_url", url}, {"text", text}});
  } else {
    fmt::print("wrote {} (binhost {})\nnext: swarm client update\n", path.string(), url);
  }
  return exit_code::k_ok;
}

int run_client_update(VerbArgs& args)
{
  subprocess::Spec spec;
  spec.argv = client_update_argv(args.config.get("client.emerge"));
  spec.on_chunk = [](std::string_view chunk) {
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    std::fflush(stdout);
  };
  fmt::print(stderr, "running {}\n", strings::join(spec.argv, " "));
  auto outcome = subprocess::run(spec);
  if (!outcome) {
    fatal(outcome.error().kind, fmt::format("cannot run {}: {}", spec.argv.front(), outcome.error().message));
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
  verbs.push_back(
    {"fresh", "Plan everything @world needs from emerge --pretend here and the md5-cache; replace the plan",
     [](CLI::App& app, VerbArgs& args) {
       client_verb(app, args);
       add_yes_flag(app, args);
       bind_config_flag(app, args, "--emerge", "client.emerge");
       bind_config_flag(app, args, "--repo-dir", "client.repo_dir");
       app.add_option("--from", args.options["from"],
                      "Saved `emerge --pretend --verbose --update --deep --newuse @world` output instead "
                      "of running emerge");
       app.add_flag("--force", args.switches["force"], "Submit even when no online drone has the plan's Portage tree");
     },
     run_fresh});
  verbs.push_back({"submit", "Add the packages of a plan file (swarm portage plan JSON) to the current plan",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     app.add_option("plan", args.options["plan"], "PLAN.json")->required();
                   },
                   run_submit});
  verbs.push_back({"queue", "The build queue", nullptr, nullptr});
  verbs.push_back({"queue add", "Add packages (=CAT/PKG-VER) to the plan without resetting it",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     bind_config_flag(app, args, "--repo-dir", "client.repo_dir");
                     app.add_option("atoms", args.lists["atoms"], "=CAT/PKG-VER …")->required();
                   },
                   run_queue_add});
  verbs.push_back({"fix-blocked",
                   "For each blocked package: why (from its log), where it failed, and the command to run next",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); }, run_fix_blocked});
  verbs.push_back({"unblock", "Give blocked packages (all when none named) another try",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     app.add_option("packages", args.lists["packages"], "CAT/PKG-VER … (default: every blocked one)");
                   },
                   run_unblock});
  verbs.push_back({"reset", "Return all in-flight work to the queue; built packages are kept",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     add_yes_flag(app, args);
                   },
                   run_reset});
  verbs.push_back({"balance", "Move work held by drones that cannot make progress back to the queue for idle drones",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); },
                   [](VerbArgs& args) { return run_simple_control(args, "balance"); }});
  verbs.push_back({"pause", "Hand out no new work (running builds finish)",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); },
                   [](VerbArgs& args) { return run_simple_control(args, "pause"); }});
  verbs.push_back({"resume", "Hand out work again after `pause`",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); },
                   [](VerbArgs& args) { return run_simple_control(args, "resume"); }});
  verbs.push_back({"ground", "Take a drone out of service (its running work goes back to the queue)",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     add_yes_flag(app, args);
                     app.add_option("drone", args.options["drone"], "Drone name")->required();
                   },
                   [](VerbArgs& args) { return run_ground(args, true); }});
  verbs.push_back({"unground", "Return a grounded drone to service",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     app.add_option("drone", args.options["drone"], "Drone name")->required();
                   },
                   [](VerbArgs& args) { return run_ground(args, false); }});
  verbs.push_back({"drones", "The drones: state, slots, running builds, tree, last heartbeat",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); }, run_drones});
  verbs.push_back({"logs", "The latest build log of a drone or a package",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args, false);
                     app.add_option("subject", args.options["subject"], "DRONE or CAT/PKG-VER")->required();
                     app.add_flag("-f,--follow", args.switches["follow"],
                                  "Keep printing as the log grows (Ctrl-C ends)");
                   },
                   run_logs});
  verbs.push_back({"history", "Past builds: start, end, drone, package, result, duration",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     app.add_option("--package", args.options["package"], "Only builds of CAT/PKG-VER");
                     app.add_option("--drone", args.options["drone"], "Only builds on this drone");
                     app.add_option("--limit", args.options["limit"], "Newest N builds (default 50)");
                   },
                   run_history});
  verbs.push_back({"sync-verify", "Check each drone's Portage tree timestamp against the plan's (exit 1 on a mismatch)",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); }, run_sync_verify});
  verbs.push_back({"info", "Where everything is: gateway, orchestrators, binhost URLs, data dirs, local paths",
                   [](CLI::App& app, VerbArgs& args) { client_verb(app, args); }, run_info});
  verbs.push_back({"build-local",
                   "Build one package on this machine with emerge (as a drone would) and upload it to staging",
                   [](CLI::App& app, VerbArgs& args) {
                     client_verb(app, args);
                     bind_config_flag(app, args, "--emerge", "client.emerge");
                     bind_config_flag(app, args, "--repo-dir", "client.repo_dir");
                     app.add_option("--portage-configroot", args.options["portage-configroot"],
                                    "PORTAGE_CONFIGROOT whose binrepos.conf gets the staging repo (default /)");
                     app.add_option("atom", args.options["atom"], "=CAT/PKG-VER")->required();
                   },
                   run_build_local});
  verbs.push_back({"client", "This machine as a client of the swarm's binhost", nullptr, nullptr});
  verbs.push_back({"client setup", "Point Portage at the binhost the gateway hands out (writes binrepos.conf)",
                   [](CLI::App& app, VerbArgs& args) {
                     add_client_flags(app, args);
                     add_json_flag(app, args);
                     bind_config_flag(app, args, "--binrepos-conf", "client.binrepos_conf");
                     app.add_option("--gateway", args.options["gateway"],
                                    "Gateway (or orchestrator) URL (default client.url)");
                   },
                   run_client_setup});
  verbs.push_back({"client update", "emerge --getbinpkg --update --deep --newuse @world (exit code passed through)",
                   [](CLI::App& app, VerbArgs& args) { bind_config_flag(app, args, "--emerge", "client.emerge"); },
                   run_client_update});
}

} // namespace swarm::roles
