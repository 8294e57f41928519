// `swarm demo`: a whole swarm on loopback building the desktop plan (src/roles/demo/).
#include <CLI/CLI.hpp>

#include "core/strings.hpp"
#include "roles/demo/demo.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

void add_demo_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<demo::DemoOptions>(
    "demo",
    "Run a whole swarm on this machine (orchestrator, gateway, 4 drones) building a 948-package desktop with a "
    "fake builder",
    [](CLI::App& app, ConfigFlags&, demo::DemoOptions& options) {
      app
        .add_option(
          "--time-scale", options.time_scale,
          fmt::format("Fake build time = the plan's build_seconds x this (default {})", demo::k_default_time_scale))
        ->check(CLI::Validator(
          [](const std::string& text) {
            const auto scale = strings::parse_double(text);
            return scale && *scale >= 0 ? std::string() : std::string("must be a number >= 0");
          },
          "NUMBER>=0"));
      app.add_option("--keep", options.keep_dir,
                     "Use and keep this (empty or new) data directory; default: a temporary one");
      app.add_option("--drones", options.drone_slots, "Slots of each drone, comma-separated (default 4,2,2,1)")
        ->delimiter(',')
        ->check(CLI::Validator(
          [](std::string& text) {
            text = std::string(strings::trim(text));
            const auto slots = strings::parse_int(text);
            return slots && *slots >= 1 && *slots <= 64 ? std::string()
                                                        : std::string("takes slot counts from 1 to 64, e.g. 4,2,2,1");
          },
          "1-64"));
      add_json_flag(app, options.json);
    },
    [](const VerbContext&, const demo::DemoOptions& options) { return demo::run_demo(options); }));
}

} // namespace swarm::roles
