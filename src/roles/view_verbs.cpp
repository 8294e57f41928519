// The operator's views (issue 4, profiles of issue 9): `drones` (with the profiles each serves,
// its build root and refusals), `logs`, `history`, `sync-verify` against a profile's plan tree, and
// `info` (where everything is, every profile's binhost URLs). Clients of client.url like the
// other operator verbs.

#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "core/strings.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/client_side.hpp"
#include "roles/operator/profile_option.hpp"
#include "roles/operator/release_steps.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using namespace operator_cli;

void view_flags(CLI::App& app, ConfigFlags& flags, bool& json_output)
{
  add_client_flags(app, flags);
  add_json_flag(app, json_output);
}

std::string list_or(const json& list, const std::string& empty)
{
  std::vector<std::string> words;
  for (const auto& item : list) {
    if (item.is_string()) {
      words.push_back(item.get<std::string>());
    }
  }
  return words.empty() ? empty : strings::join(words, ",");
}

// --- drones -----------------------------------------------------------------------------------

struct DronesOptions {
  bool json = false;
  std::string profile; // "": every drone, trees against the default profile's plan
};

int run_drones(const VerbContext& context, const DronesOptions& options)
{
  auto client = make_client(context.config);
  json drones;
  if (options.profile.empty()) {
    drones = must(client.get_json("/api/v1/drones")).value("drones", json::array());
  } else {
    // The status of a profile holds the drones with their trees against that profile's plan.
    const auto status = must(client.get_json(profile_path("/api/v1/status", options.profile)));
    drones = drones_serving(status.value("drones", json::array()), options.profile);
  }
  if (options.json) {
    print_json(drones);
    return exit_code::k_ok;
  }
  if (drones.empty()) {
    fmt::print("{}\n", options.profile.empty() ? "no drone is enrolled (`swarm drone enroll NAME` on the orchestrator)"
                                               : fmt::format("no drone builds for profile {}", options.profile));
    return exit_code::k_ok;
  }
  fmt::print("{:<20} {:<10} {:>5} {:>7} {:>5} {:<9} {:<16} {:<32} {:<19} {}\n", "NAME", "STATE", "SLOTS", "RUNNING",
             "FAILS", "ROOT", "PROFILES", "TREE", "LAST SEEN", "REASON");
  std::vector<std::string> notes;
  for (const auto& d : drones) {
    const auto name = d.value("name", std::string());
    auto tree = d.value("tree_timestamp", std::string());
    if (!d.value("tree_matches", true)) {
      tree += " (!)";
    }
    const auto root = d.value("build_root", std::string());
    fmt::print("{:<20} {:<10} {:>5} {:>7} {:>5} {:<9} {:<16} {:<32} {:<19} {}\n", name, d.value("state", std::string()),
               d.value("slots", 0), d.value("running", 0), d.value("consecutive_failures", 0),
               root.empty() ? "-" : (root == "host" ? "host (!)" : root),
               list_or(d.value("profiles", json::array()), "all"), tree.empty() ? "-" : tree,
               utc_time(d.value("last_seen", 0.0)), d.value("reason", std::string()));
    const auto refused = d.value("refused", json::object()); // items() must not outlive it
    for (const auto& [profile, reason] : refused.items()) {
      notes.push_back(fmt::format("{} refuses profile {}: {}", name, profile,
                                  reason.is_string() ? reason.get<std::string>() : reason.dump()));
    }
    if (root == "host") {
      fmt::print(stderr,
                 "warning: drone {} builds in its host's root (build_root host): what is installed there and its "
                 "own /etc/portage leak into every build, so its binaries may not match the profile they are for; "
                 "run it with an isolated build root\n",
                 name);
    }
  }
  for (const auto& note : notes) {
    fmt::print("{}\n", note);
  }
  return exit_code::k_ok;
}

// --- logs / history ---------------------------------------------------------------------------

constexpr int k_follow_wait = 25; // seconds one `logs --follow` request may wait on the server

struct LogsOptions {
  std::string subject; // DRONE or CAT/PKG-VER
  bool follow = false;
  std::string profile = std::string(k_default_profile);
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
  if (!options.follow) {
    const auto reply = must(client.get_json(profile_path(fmt::format("/api/v1/logs?{}", query), options.profile)));
    fmt::print("{}", reply.value("text", std::string()));
    return exit_code::k_ok;
  }
  // --follow: the server answers when bytes arrive or the build ends (a long-poll, no polling
  // here); the first build seen is followed to its end (a package not built yet: its first).
  net::CallOptions call;
  call.timeout = std::chrono::seconds(k_follow_wait + 30);
  uint64_t offset = 0;
  int64_t build = 0;
  while (true) {
    auto path = fmt::format("/api/v1/logs?{}&offset={}&wait={}", query, offset, k_follow_wait);
    if (build > 0) {
      path += fmt::format("&build={}", build);
    }
    const auto reply = must(client.get_json(profile_path(path, options.profile), call));
    if (!reply.contains("build") || !reply["build"].is_number_integer()) {
      continue; // no build yet: ask again (the server waited)
    }
    build = reply["build"].get<int64_t>();
    const auto text = reply.value("text", std::string());
    fmt::print("{}", text);
    std::fflush(stdout);
    offset = reply.value("next_offset", offset + text.size());
    if (!reply.value("complete", false)) {
      continue;
    }
    const auto result = reply.value("result", std::string());
    if (result == "success") {
      return exit_code::k_ok;
    }
    const auto reason = reply.value("reason", std::string());
    print_error(fmt::format("build {} of {} on {} ended: {}{}", build, reply.value("package", std::string()),
                            reply.value("drone", std::string()), result, reason.empty() ? "" : " (" + reason + ")"));
    return exit_code::k_failure;
  }
}

struct HistoryOptions {
  bool json = false;
  std::string package; // "": every package
  std::string drone;   // "": every drone
  int limit = 50;      // newest N builds
  std::string profile = std::string(k_default_profile);
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
  const auto builds = must(client.get_json(profile_path(query, options.profile))).value("builds", json::array());
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

// --- sync-verify ------------------------------------------------------------------------------

struct SyncVerifyOptions {
  bool json = false;
  std::string profile = std::string(k_default_profile);
};

// The same step `release` runs first (release_steps.hpp has the rule), against the plan the
// orchestrator has now for the profile, on the drones that build for it.
int run_sync_verify(const VerbContext& context, const SyncVerifyOptions& options)
{
  auto client = make_client(context.config);
  const auto status = must(client.get_json(profile_path("/api/v1/status", options.profile)));
  const auto plan_tree = status.value("plan", json::object()).value("tree_timestamp", std::string());
  const auto check = sync_verify(drones_serving(status.value("drones", json::array()), options.profile), plan_tree);
  if (options.json) {
    json drones = json::array();
    for (const auto& d : check.drones) {
      drones.push_back({{"name", d.name},
                        {"state", d.state},
                        {"online", d.online},
                        {"tree_timestamp", d.tree_timestamp},
                        {"matches", d.matches}});
    }
    print_json(
      json{{"profile", options.profile}, {"plan_tree_timestamp", plan_tree}, {"drones", drones}, {"ok", check.ok()}});
    return check.ok() ? exit_code::k_ok : exit_code::k_failure;
  }
  fmt::print("plan tree: {}{}\n", plan_tree.empty() ? "none (no plan, or it has no tree timestamp)" : plan_tree,
             options.profile == k_default_profile ? "" : " (profile " + options.profile + ")");
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
    fmt::print("drones marked MISMATCH get no work: run `emerge --sync` there (or `{}` here after syncing "
               "this machine), then `{}` again\n",
               profile_command("swarm fresh", options.profile), profile_command("swarm sync-verify", options.profile));
    return exit_code::k_failure;
  }
  fmt::print("all online drones have the plan's tree\n");
  return exit_code::k_ok;
}

// --- info -------------------------------------------------------------------------------------

// Every profile with its URLs; the default profile is listed even before it has a plan. A
// client's binhost URL is what the gateway's /binhost?profile=NAME hands out (it may name another
// host than the orchestrator's), asked directly the orchestrator's production URL.
json profile_urls(const net::HttpClient& client, const json& orchestrator, bool gateway)
{
  json out = json::array();
  bool has_default = false;
  if (auto listed = client.get_json("/api/v1/profiles"); listed && listed->is_object()) {
    for (const auto& entry : listed->value("profiles", json::array())) {
      const auto name = entry.value("name", std::string());
      has_default = has_default || name == k_default_profile;
      out.push_back({{"name", name},
                     {"production_url", entry.value("production_url", std::string())},
                     {"staging_url", entry.value("staging_url", std::string())}});
    }
  }
  if (!has_default && orchestrator.is_object()) {
    out.insert(out.begin(), json{{"name", k_default_profile},
                                 {"production_url", orchestrator.value("production_url", std::string())},
                                 {"staging_url", orchestrator.value("staging_url", std::string())}});
  }
  for (auto& entry : out) {
    entry["binhost_url"] = entry["production_url"];
    if (gateway) {
      if (auto binhost = client.get_json(profile_path("/binhost", entry["name"].get<std::string>()));
          binhost && binhost->is_object() && !binhost->value("url", std::string()).empty()) {
        entry["binhost_url"] = binhost->value("url", std::string());
      }
    }
  }
  return out;
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
             {"portageq", config.get("client.portageq")},
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
  out["profiles"] = profile_urls(client, out.value("orchestrator", health), out["role"] == "gateway");
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
  for (const auto& profile : out["profiles"]) {
    fmt::print("profile {:<8} binhost {} (staging {})\n", profile.value("name", std::string()),
               profile.value("binhost_url", std::string()), profile.value("staging_url", std::string()));
  }
  if (out.contains("binhost_url")) {
    fmt::print("client binhost:  {}\n", out["binhost_url"].get<std::string>());
  }
  fmt::print("binrepos.conf:   {}\n", config.get("client.binrepos_conf"));
  fmt::print("repository:      {}\n", config.get("client.repo_dir"));
  fmt::print("emerge:          {}\n", config.get("client.emerge"));
  return exit_code::k_ok;
}

} // namespace

void add_view_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<DronesOptions>(
    "drones", "The drones: state, slots, build root, profiles, tree, last heartbeat, refusals",
    [](CLI::App& app, ConfigFlags& flags, DronesOptions& options) {
      view_flags(app, flags, options.json);
      add_profile_option(app, options.profile,
                         "Only the drones building for this profile, trees against its plan (default: every drone)");
    },
    run_drones));
  verbs.push_back(make_verb<LogsOptions>(
    "logs", "The latest build log of a drone or a package",
    [](CLI::App& app, ConfigFlags& flags, LogsOptions& options) {
      add_client_flags(app, flags);
      app.add_option("subject", options.subject, "DRONE or CAT/PKG-VER")->required();
      app.add_flag("-f,--follow", options.follow,
                   "Keep printing as the log grows; end when the build ends (exit 1 if it failed)");
      add_profile_option(app, options.profile, "Builds of this profile (default: default)");
    },
    run_logs));
  verbs.push_back(make_verb<HistoryOptions>(
    "history", "Past builds: start, end, drone, package, result, duration",
    [](CLI::App& app, ConfigFlags& flags, HistoryOptions& options) {
      view_flags(app, flags, options.json);
      app.add_option("--package", options.package, "Only builds of CAT/PKG-VER");
      app.add_option("--drone", options.drone, "Only builds on this drone");
      app.add_option("--limit", options.limit, "Newest N builds (default 50)");
      add_profile_option(app, options.profile, "Builds of this profile (default: default)");
    },
    run_history));
  verbs.push_back(make_verb<SyncVerifyOptions>(
    "sync-verify",
    "Check the Portage tree timestamp of each online drone building for the profile against its plan's (exit 1 on a "
    "mismatch)",
    [](CLI::App& app, ConfigFlags& flags, SyncVerifyOptions& options) {
      view_flags(app, flags, options.json);
      add_profile_option(app, options.profile, "Profile whose plan tree the drones must have (default: default)");
    },
    run_sync_verify));
  verbs.push_back(make_verb<JsonOptions>(
    "info", "Where everything is: gateway, orchestrators, every profile's binhost URLs, data dirs, local paths",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) { view_flags(app, flags, options.json); }, run_info));
}

} // namespace swarm::roles
