// `swarm demo`: a whole swarm on loopback building the desktop plan (src/roles/demo/), and the
// demo's fake builder `swarm fake-emerge` (hidden) that stands in for Portage's emerge there and
// in the tests.
#include "core/strings.hpp"
#include "roles/demo/demo.hpp"
#include "roles/demo/fake_builder.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

void add_demo_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"demo",
                   "Run a whole swarm on this machine (orchestrator, gateway, 4 drones) building a 948-package desktop "
                   "with a fake builder",
                   [](CLI::App& app, VerbArgs& args) {
                     app.add_option("--time-scale", args.options["time-scale"],
                                    fmt::format("Fake build time = the plan's build_seconds x this (default {})",
                                                demo::k_default_time_scale));
                     app.add_option("--keep", args.options["keep"],
                                    "Use and keep this (empty or new) data directory; default: a temporary one");
                     app.add_option("--drones", args.options["drones"],
                                    "Slots of each drone, comma-separated (default 4,2,2,1)");
                     add_json_flag(app, args);
                   },
                   [](VerbArgs& args) {
                     demo::DemoOptions options;
                     options.json = args.json;
                     options.keep_dir = args.option("keep");
                     if (args.has_option("time-scale")) {
                       auto scale = strings::parse_double(args.option("time-scale"));
                       if (!scale || *scale < 0) {
                         print_error("--time-scale must be a number >= 0");
                         return 2;
                       }
                       options.time_scale = *scale;
                     }
                     if (args.has_option("drones")) {
                       options.drone_slots.clear();
                       for (const auto& item : strings::split(args.option("drones"), ',')) {
                         auto slots = strings::parse_int(strings::trim(item));
                         if (!slots || *slots < 1 || *slots > 64) {
                           print_error("--drones takes slot counts from 1 to 64, e.g. 4,2,2,1");
                           return 2;
                         }
                         options.drone_slots.push_back(static_cast<int>(*slots));
                       }
                     }
                     return demo::run_demo(options);
                   }});

  Verb fake_emerge;
  fake_emerge.name = "fake-emerge";
  fake_emerge.summary = "Test stand-in for Portage's emerge (takes emerge's arguments)";
  fake_emerge.hidden = true;
  fake_emerge.add_options = [](CLI::App& app, VerbArgs& args) {
    // Everything after the verb is emerge's, options included: CLI11 only collects it.
    app.prefix_command();
    app.allow_extras();
    app.fallthrough(false);
    app.parse_complete_callback([&app, &args] { args.lists["emerge-args"] = app.remaining(); });
  };
  fake_emerge.run = [](VerbArgs& args) { return demo::run_fake_emerge(args.list("emerge-args")); };
  verbs.push_back(std::move(fake_emerge));
}

} // namespace swarm::roles
