// `swarm status`: health of the gateway and the orchestrator, package counts, drones, production
// and the NEXT ACTION (roles/operator/next_action.hpp), with an exit code a script can test.
#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/next_action.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using operator_cli::make_client;
using operator_cli::print_json;

// The continuation lines of a multi-line NEXT ACTION, under its first line.
std::string indent_next_action(const std::string& text)
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

int run_status(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto url = client.base_url();
  json out{{"url", url}};
  auto unreachable = [&](const std::string& what) {
    out["reachable"] = false;
    out["error"] = what;
    out["next_action"] = {
      {"state", "unreachable"}, {"attention", true}, {"message", what}, {"commands", json::array()}};
    out["exit_code"] = exit_code::k_unavailable;
    if (options.json) {
      print_json(out);
    } else {
      print_error(what);
    }
    return exit_code::k_unavailable;
  };
  net::CallOptions returning;
  returning.on_http_error = net::OnHttpError::return_response;
  auto health = client.request("GET", "/healthz", {}, {}, returning);
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
  if (options.json) {
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
  fmt::print("NEXT ACTION   {}\n", indent_next_action(action.message));
  for (const auto& command : action.commands) {
    fmt::print("              $ {}\n", command);
  }
  return code;
}

} // namespace

void add_status_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<JsonOptions>(
    "status",
    "Gateway and orchestrator health, package counts, drones and the NEXT ACTION (exit 0 all well, 1 action needed, "
    "3 unreachable)",
    [](CLI::App& app, ConfigFlags& flags, JsonOptions& options) {
      operator_cli::add_client_flags(app, flags);
      add_json_flag(app, options.json);
    },
    run_status));
}

} // namespace swarm::roles
