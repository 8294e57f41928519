// `swarm demo`: a whole swarm on loopback building the desktop plan (src/roles/demo/), and the
// demo's fake builder `swarm fake-emerge` (hidden) that stands in for Portage's emerge there and
// in the tests.
#include <CLI/CLI.hpp>

#include "core/strings.hpp"
#include "roles/demo/demo.hpp"
#include "roles/demo/fake_builder.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

// `swarm fake-emerge ARGS…`: everything after the verb is emerge's, options included.
struct FakeEmergeOptions {
  std::vector<std::string> emerge_args;
};

} // namespace

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

  auto fake_emerge = make_verb<FakeEmergeOptions>(
    "fake-emerge", "Test stand-in for Portage's emerge (takes emerge's arguments)",
    [](CLI::App& app, ConfigFlags&, FakeEmergeOptions& options) {
      // CLI11 only collects the arguments: the fake parses them as emerge does.
      app.prefix_command();
      app.allow_extras();
      app.fallthrough(false);
      app.parse_complete_callback([&app, &options] { options.emerge_args = app.remaining(); });
    },
    [](const VerbContext&, const FakeEmergeOptions& options) { return demo::run_fake_emerge(options.emerge_args); });
  fake_emerge.hidden = true;
  verbs.push_back(std::move(fake_emerge));
}

} // namespace swarm::roles
