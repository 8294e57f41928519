// `swarm config show`: every configuration key with its value and where the value came from.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

int run_config_show(const VerbContext& context, const JsonOptions& options)
{
  const auto& config = context.config;
  if (options.json) {
    auto out = nlohmann::json::array();
    for (const auto& key : config::keys()) {
      const auto& value = config.value(key.name);
      out.push_back({{"key", key.name},
                     {"value", key.secret && !value.text.empty() ? "***" : value.text},
                     {"origin", config::Config::origin_name(value.origin)},
                     {"where", value.where},
                     {"env", config::env_name(key.name)}});
    }
    fmt::print("{}\n", out.dump(2));
    return exit_code::k_ok;
  }
  size_t width = 0;
  for (const auto& key : config::keys()) {
    width = std::max(width, key.name.size());
  }
  for (const auto& key : config::keys()) {
    const auto& value = config.value(key.name);
    const auto shown = key.secret && !value.text.empty() ? std::string("***") : value.text;
    auto origin = std::string(config::Config::origin_name(value.origin));
    if (!value.where.empty()) {
      origin += " " + value.where;
    }
    fmt::print("{:<{}} = {:<40} ({})\n", key.name, width, shown, origin);
  }
  return exit_code::k_ok;
}

} // namespace

void add_info_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"config", "Inspect the configuration", nullptr, nullptr});
  verbs.push_back(make_verb<JsonOptions>(
    "config show", "Print every config key with its value and origin (flag, env, file, default)",
    [](CLI::App& app, ConfigFlags&, JsonOptions& options) { add_json_flag(app, options.json); }, run_config_show));
}

} // namespace swarm::roles
