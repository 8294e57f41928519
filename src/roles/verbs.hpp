#pragma once
// The one registry of verbs: `main` builds the CLI11 subcommands from it. Each role or verb
// group adds its verbs in its own file through an add_*_verbs() function listed in verbs.cpp.
// A verb's own options are a struct filled by CLI11 (make_verb binds one to the verb), so a
// misspelt option is a compile error; flags that set a config key go through bind_config_flag.
// CLI11 is only forward-declared here: the *_verbs.cpp files include <CLI/CLI.hpp> themselves.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "roles/entry.hpp"

namespace CLI {
class App;
class Option;
} // namespace CLI

namespace swarm::roles {

// Config-key flags given on the command line (key → value): the highest configuration source,
// above SWARM_* env, the config file and the defaults (config::Sources::flags).
using ConfigFlags = std::map<std::string, std::string>;

// What every verb's run() gets besides its own options.
struct VerbContext {
  config::Config config; // loaded after parsing: flag > SWARM_* env > config file > default
};

// One verb of the registry: `main` makes it a CLI11 subcommand, declares its options with
// add_options and, when it is the one chosen, calls run with the configuration loaded.
struct Verb {
  std::string name;                                         // "status", or a nested one: "portage vercmp"
  std::string summary;                                      // one line for `swarm --help`
  std::function<void(CLI::App&, ConfigFlags&)> add_options; // may be empty
  std::function<int(const VerbContext&)> run;               // empty for a group of sub-verbs
  bool hidden = false;                                      // test seams (fake-emerge)
};

// How a verb declares its options struct with CLI11, and how it runs with them filled.
template <class Options>
using AddOptions = std::function<void(CLI::App&, ConfigFlags&, Options&)>;
template <class Options>
using RunWithOptions = std::function<int(const VerbContext&, const Options&)>;

// A verb whose options are the struct `Options`, shared by its add_options and run. The struct
// is reset to its defaults each time the options are declared, i.e. before every parse.
template <class Options>
Verb make_verb(std::string name, std::string summary, AddOptions<Options> add, RunWithOptions<Options> run)
{
  auto options = std::make_shared<Options>();
  Verb verb;
  verb.name = std::move(name);
  verb.summary = std::move(summary);
  verb.add_options = [options, add = std::move(add)](CLI::App& app, ConfigFlags& flags) {
    *options = Options{};
    add(app, flags, *options);
  };
  verb.run = [options, run = std::move(run)](const VerbContext& context) { return run(context, *options); };
  return verb;
}

// What a destructive verb does before acting: ask on the terminal, or go ahead (--yes).
enum class Confirm { ask, assume_yes };

// The options of a verb whose only option of its own is `--json`.
struct JsonOptions {
  bool json = false;
};

// Binds a flag to a config key (its value lands in `flags`); the flag's help is the key's help.
// An unknown key is a bug: Fatal internal.
CLI::Option* bind_config_flag(CLI::App& app, ConfigFlags& flags, const std::string& flag, const std::string& key);
// Adds `--json` (machine-readable output).
void add_json_flag(CLI::App& app, bool& json);
// Adds `-y,--yes` (skip the confirmation of destructive verbs).
void add_yes_flag(CLI::App& app, Confirm& confirm);

// Each verb group registers itself here.
void add_info_verbs(std::vector<Verb>& verbs);
void add_portage_verbs(std::vector<Verb>& verbs);
void add_orch_verbs(std::vector<Verb>& verbs);
void add_key_verbs(std::vector<Verb>& verbs); // key create, show, export, activate, retire
void add_drone_verbs(std::vector<Verb>& verbs);
void add_gateway_verbs(std::vector<Verb>& verbs);
void add_operator_verbs(std::vector<Verb>& verbs); // plan, control, fix-blocked, build-local
void add_view_verbs(std::vector<Verb>& verbs);     // drones, logs, history, sync-verify, info
void add_profile_verbs(std::vector<Verb>& verbs);  // profile show, profile diff
void add_client_verbs(std::vector<Verb>& verbs);   // client setup, update, check
void add_status_verbs(std::vector<Verb>& verbs);   // status
void add_release_verbs(std::vector<Verb>& verbs);  // verify, finalize, releases, rollback, release
void add_monitor_verbs(std::vector<Verb>& verbs);  // monitor
void add_demo_verbs(std::vector<Verb>& verbs);
void add_secrets_verbs(std::vector<Verb>& verbs); // drone list, drone revoke, token create/list/revoke

// Every verb, in help order.
const std::vector<Verb>& all_verbs();

// Prints "swarm: error: MESSAGE" to stderr.
void print_error(std::string_view message);

// The path of the running swarm executable (for the demo and tests that spawn roles).
std::string self_executable();

} // namespace swarm::roles
