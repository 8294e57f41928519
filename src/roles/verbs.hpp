#pragma once
// The one registry of verbs: `main` builds the CLI11 subcommands from it. Each role or verb
// group adds its verbs in its own file through an add_*_verbs() function listed in verbs.cpp.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.hpp"
#include "roles/entry.hpp"

namespace swarm::roles {

// What a verb's options are parsed into, and what its run() gets.
struct VerbArgs {
  std::map<std::string, std::string> flags;              // config key → value given as a flag
  std::map<std::string, std::string> options;            // verb-specific option values
  std::map<std::string, std::vector<std::string>> lists; // verb-specific repeated values
  std::map<std::string, bool> switches;                  // verb-specific boolean flags
  bool json = false;
  bool yes = false;
  int verbosity = 0;
  config::Config config; // loaded after parsing, before run()

  // Convenience accessors.
  const std::string& option(const std::string& name) const;
  bool has_option(const std::string& name) const;
  const std::vector<std::string>& list(const std::string& name) const;
  bool on(const std::string& name) const;
};

struct Verb {
  std::string name;                                      // "status", or a nested one: "portage vercmp"
  std::string summary;                                   // one line for `swarm --help`
  std::function<void(CLI::App&, VerbArgs&)> add_options; // may be empty
  std::function<int(VerbArgs&)> run;                     // empty for a group of sub-verbs
  bool hidden = false;                                   // test seams (fake-emerge)
};

// Binds a flag to a config key: the flag's help is the key's help.
CLI::Option* bind_config_flag(CLI::App& app, VerbArgs& args, const std::string& flag, const std::string& key);
// Adds `--json` (machine-readable output).
void add_json_flag(CLI::App& app, VerbArgs& args);
// Adds `--yes` (skip the confirmation of destructive verbs).
void add_yes_flag(CLI::App& app, VerbArgs& args);

// Each verb group registers itself here.
void add_info_verbs(std::vector<Verb>& verbs);
void add_portage_verbs(std::vector<Verb>& verbs);
void add_orch_verbs(std::vector<Verb>& verbs);
void add_drone_verbs(std::vector<Verb>& verbs);
void add_gateway_verbs(std::vector<Verb>& verbs);
void add_operator_verbs(std::vector<Verb>& verbs); // queue, drones, logs, client side
void add_release_verbs(std::vector<Verb>& verbs);  // status, verify, finalize, releases, rollback, release
void add_monitor_verbs(std::vector<Verb>& verbs);  // monitor
void add_demo_verbs(std::vector<Verb>& verbs);

// Every verb, in help order.
const std::vector<Verb>& all_verbs();

// Prints "swarm: error: MESSAGE" to stderr.
void print_error(std::string_view message);

// The path of the running swarm executable (for the demo and tests that spawn roles).
std::string self_executable();

} // namespace swarm::roles
