// Credentials (issue 10, "Secrets"): `drone list` (who is enrolled, when last seen, revoked),
// `drone revoke NAME` (its token stops working at once), and read-only tokens for status and
// monitoring (`token create NAME --read-only`, `token list`, `token revoke NAME`). Clients of
// client.url with the admin token, like the other operator verbs.

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using namespace operator_cli;

struct NameOptions {
  bool json = false;
  bool read_only = false;
  Confirm confirm = Confirm::ask;
  std::string name;
};

void name_flags(CLI::App& app, ConfigFlags& flags, NameOptions& options, const char* what)
{
  add_client_flags(app, flags);
  add_json_flag(app, options.json);
  app.add_option("name", options.name, what)->required();
}

int run_drone_list(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto answer = must(client.get_json("/api/v1/drones"));
  const auto drones = answer.value("drones", nlohmann::json::array());
  if (options.json) {
    auto out = nlohmann::json::array();
    for (const auto& drone : drones) {
      const double revoked_at = drone.value("revoked_at", 0.0);
      out.push_back({{"name", drone.value("name", "")},
                     {"state", drone.value("state", "")},
                     {"enrolled_at", drone.value("enrolled_at", 0.0)},
                     {"last_seen", drone.value("last_seen", 0.0)},
                     {"revoked", revoked_at > 0},
                     {"revoked_at", revoked_at}});
    }
    print_json(nlohmann::json{{"drones", out}});
    return exit_code::k_ok;
  }
  fmt::print("{:<24} {:<10} {:<20} {:<20} {}\n", "NAME", "STATE", "ENROLLED (UTC)", "LAST SEEN (UTC)", "REVOKED");
  for (const auto& drone : drones) {
    const double revoked_at = drone.value("revoked_at", 0.0);
    fmt::print("{:<24} {:<10} {:<20} {:<20} {}\n", drone.value("name", ""), drone.value("state", ""),
               utc_time(drone.value("enrolled_at", 0.0)), utc_time(drone.value("last_seen", 0.0)),
               revoked_at > 0 ? utc_time(revoked_at) : "no");
  }
  if (drones.empty()) {
    fmt::print("(no drone enrolled: `swarm drone enroll NAME` on the orchestrator)\n");
  }
  return exit_code::k_ok;
}

int run_drone_revoke(const VerbContext& context, const NameOptions& options)
{
  if (!confirm(options.confirm,
               fmt::format("Revoke drone {}'s token (it stops at once; its running builds go back to the queue)?",
                           options.name))) {
    fmt::print(stderr, "cancelled\n");
    return exit_code::k_failure;
  }
  auto client = make_client(context.config);
  const auto answer = must(client.post_json("/api/v1/drones/revoke", {{"name", options.name}}));
  if (options.json) {
    print_json(answer);
  } else {
    fmt::print("revoked drone {}: its token no longer works ({} build(s) back in the queue); "
               "`swarm drone enroll {}` gives it a new one\n",
               options.name, answer.value("requeued", 0), options.name);
  }
  return exit_code::k_ok;
}

int run_token_create(const VerbContext& context, const NameOptions& options)
{
  if (!options.read_only) {
    throw_error(ErrorKind::invalid, "only read-only tokens can be created: pass --read-only");
  }
  auto client = make_client(context.config);
  const auto answer = must(client.post_json("/api/v1/tokens", {{"name", options.name}, {"read_only", true}}));
  if (options.json) {
    print_json(answer);
  } else {
    // The token alone on stdout (shown once): `swarm token create … > file` keeps it.
    fmt::print("{}\n", answer.value("token", ""));
  }
  return exit_code::k_ok;
}

int run_token_list(const VerbContext& context, const JsonOptions& options)
{
  auto client = make_client(context.config);
  const auto answer = must(client.get_json("/api/v1/tokens"));
  if (options.json) {
    print_json(answer);
    return exit_code::k_ok;
  }
  const auto tokens = answer.value("tokens", nlohmann::json::array());
  fmt::print("{:<24} {:<8} {}\n", "NAME", "ROLE", "CREATED (UTC)");
  for (const auto& token : tokens) {
    fmt::print("{:<24} {:<8} {}\n", token.value("name", ""), token.value("role", ""),
               utc_time(token.value("created_at", 0.0)));
  }
  return exit_code::k_ok;
}

int run_token_revoke(const VerbContext& context, const NameOptions& options)
{
  auto client = make_client(context.config);
  const auto answer = must(client.post_json("/api/v1/tokens/revoke", {{"name", options.name}}));
  if (options.json) {
    print_json(answer);
  } else {
    fmt::print("revoked token {}\n", options.name);
  }
  return exit_code::k_ok;
}

void list_flags(CLI::App& app, ConfigFlags& flags, JsonOptions& options)
{
  add_client_flags(app, flags);
  add_json_flag(app, options.json);
}

} // namespace

void add_secrets_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<JsonOptions>(
    "drone list", "The enrolled drones: state, when enrolled, last seen, whether revoked", list_flags, run_drone_list));
  verbs.push_back(make_verb<NameOptions>(
    "drone revoke", "Take a drone's token away at once (its running builds go back to the queue)",
    [](CLI::App& app, ConfigFlags& flags, NameOptions& options) {
      name_flags(app, flags, options, "Drone name");
      add_yes_flag(app, options.confirm);
    },
    run_drone_revoke));
  verbs.push_back({"token", "Read-only tokens for status and monitoring (token create, list, revoke)", {}, {}});
  verbs.push_back(make_verb<NameOptions>(
    "token create", "Create a read-only token NAME (status, monitor and the read views; no control) and print it",
    [](CLI::App& app, ConfigFlags& flags, NameOptions& options) {
      name_flags(app, flags, options, "A name for the token (who holds it)");
      app.add_flag("--read-only", options.read_only, "A token for reading only (the one kind there is; required)");
    },
    run_token_create));
  verbs.push_back(make_verb<JsonOptions>("token list", "The read-only tokens: name, role, created (never the token)",
                                         list_flags, run_token_list));
  verbs.push_back(make_verb<NameOptions>(
    "token revoke", "Delete a read-only token: it stops working at once",
    [](CLI::App& app, ConfigFlags& flags, NameOptions& options) {
      name_flags(app, flags, options, "The token's name");
    },
    run_token_revoke));
}

} // namespace swarm::roles
