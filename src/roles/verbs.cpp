#include "roles/verbs.hpp"

#include <cstdio>
#include <iostream>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "core/build_info.hpp"
#include "core/exit_codes.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "net/protocol_version.hpp"

namespace swarm::roles {

CLI::Option* bind_config_flag(CLI::App& app, ConfigFlags& flags, const std::string& flag, const std::string& key)
{
  const auto* def = config::find_key(key);
  if (!def) {
    throw Fatal{Error{ErrorKind::internal, fmt::format("flag {} bound to unknown key {}", flag, key)}};
  }
  auto help = fmt::format("{} [{}]", def->help, key);
  return app.add_option_function<std::string>(
    flag, [&flags, key](const std::string& value) { flags[key] = value; }, help);
}

void add_json_flag(CLI::App& app, bool& json)
{
  app.add_flag("--json", json, "Print machine-readable JSON");
}

void add_yes_flag(CLI::App& app, Confirm& confirm)
{
  app.add_flag_function(
    "-y,--yes", [&confirm](int64_t count) { confirm = count > 0 ? Confirm::assume_yes : Confirm::ask; },
    "Do not ask for confirmation");
}

void print_error(std::string_view message)
{
  fmt::print(stderr, "swarm: error: {}\n", message);
}

std::string self_executable()
{
  char buffer[4096];
  const auto size = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (size <= 0) {
    return "swarm";
  }
  return std::string(buffer, static_cast<size_t>(size));
}

const std::vector<Verb>& all_verbs()
{
  static const std::vector<Verb> verbs = [] {
    std::vector<Verb> out;
    add_orch_verbs(out);
    add_key_verbs(out);
    add_gateway_verbs(out);
    add_drone_verbs(out);
    add_secrets_verbs(out);
    add_operator_verbs(out);
    add_view_verbs(out);
    add_profile_verbs(out);
    add_client_verbs(out);
    add_status_verbs(out);
    add_release_verbs(out);
    add_monitor_verbs(out);
    add_demo_verbs(out);
    add_portage_verbs(out);
    add_info_verbs(out);
    return out;
  }();
  return verbs;
}

namespace {

// The children of a verb path ("" for top level): the next word of every verb below it.
std::vector<std::string> child_words(const std::string& parent)
{
  std::vector<std::string> out;
  for (const auto& verb : all_verbs()) {
    if (verb.hidden) {
      continue;
    }
    const auto words = strings::split_any(verb.name, " ");
    const auto parent_words = strings::split_any(parent, " ");
    if (words.size() <= parent_words.size()) {
      continue;
    }
    if (!std::equal(parent_words.begin(), parent_words.end(), words.begin())) {
      continue;
    }
    if (std::find(out.begin(), out.end(), words[parent_words.size()]) == out.end()) {
      out.push_back(words[parent_words.size()]);
    }
  }
  return out;
}

bool is_verb_path(const std::string& path)
{
  for (const auto& verb : all_verbs()) {
    if (verb.name == path || verb.name.starts_with(path + " ")) {
      return true;
    }
  }
  return false;
}

// Before CLI11 sees the arguments: an unknown verb gets a "did you mean" suggestion.
std::optional<std::string> check_unknown_verb(int argc, char** argv)
{
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.starts_with("-")) {
      if (word == "--config" || word == "-c") {
        ++i; // skip its value
      }
      continue;
    }
    const auto children = child_words(path);
    if (children.empty()) {
      return std::nullopt; // a leaf verb: the rest are its arguments
    }
    const auto candidate = path.empty() ? word : path + " " + word;
    if (is_verb_path(candidate)) {
      path = candidate;
      // A verb that runs by itself and also has sub-verbs (`drone`, `drone enroll`): the next
      // word may be a positional argument, so stop checking once the verb itself can run.
      for (const auto& verb : all_verbs()) {
        if (verb.name == path && verb.run) {
          const auto next_children = child_words(path);
          if (i + 1 < argc &&
              std::find(next_children.begin(), next_children.end(), argv[i + 1]) == next_children.end()) {
            return std::nullopt;
          }
        }
      }
      continue;
    }
    auto message =
      path.empty() ? fmt::format("unknown verb '{}'", word) : fmt::format("unknown verb '{} {}'", path, word);
    if (auto guess = strings::nearest(word, children)) {
      message += fmt::format("; did you mean '{}'?", path.empty() ? *guess : path + " " + *guess);
    } else {
      message += "; see 'swarm --help'";
    }
    return message;
  }
  return std::nullopt;
}

std::string version_text()
{
  return fmt::format("swarm {} (commit {}, protocol {})", build_info::k_version, build_info::k_git_commit,
                     net::k_protocol_version);
}

int run_verb(const Verb& verb, const ConfigFlags& flags, int verbosity, const std::string& config_file,
             bool config_required)
{
  config::Sources sources;
  sources.flags = flags;
  if (!config_file.empty()) {
    sources.file = config_file;
    sources.file_required = config_required;
  }
  auto loaded = config::Config::load(sources);
  if (!loaded) {
    print_error(loaded.error().message);
    return exit_code::k_usage;
  }
  const VerbContext context{std::move(*loaded)};
  const auto role = strings::split_any(verb.name, " ").front();
  log::init(role, log::level_from_verbosity(verbosity));
  return verb.run(context);
}

} // namespace

int main(int argc, char** argv)
{
  try {
    if (auto unknown = check_unknown_verb(argc, argv)) {
      print_error(*unknown);
      return exit_code::k_usage;
    }

    CLI::App app{"swarm: build Gentoo binary packages on a fleet of machines and publish them as a binhost", "swarm"};
    app.require_subcommand(0, 1);
    ConfigFlags flags;
    int verbosity = 0;
    std::string config_file;
    bool show_version = false;
    app.add_flag("--version", show_version, "Print the version, git commit and protocol version");
    app.add_option("-c,--config", config_file, "Config file (default: $SWARM_CONFIG or /etc/swarm/swarm.conf)");
    app.add_flag("-v,--verbose", verbosity, "More log output (repeat for more)");
    app.set_help_all_flag("--help-all", "Every verb with its options");

    const Verb* selected = nullptr;
    std::map<std::string, CLI::App*> apps;
    apps[""] = &app;
    for (const auto& verb : all_verbs()) {
      const auto words = strings::split_any(verb.name, " ");
      std::string path;
      CLI::App* parent = &app;
      for (size_t i = 0; i < words.size(); ++i) {
        path = path.empty() ? words[i] : path + " " + words[i];
        auto it = apps.find(path);
        if (it == apps.end()) {
          auto* sub = parent->add_subcommand(words[i], i + 1 == words.size() ? verb.summary : "");
          sub->fallthrough();
          apps[path] = sub;
          it = apps.find(path);
        }
        parent = it->second;
      }
      CLI::App* sub = parent;
      if (!verb.summary.empty()) {
        sub->description(verb.summary);
      }
      if (verb.hidden) {
        sub->group("");
      }
      if (verb.add_options) {
        verb.add_options(*sub, flags);
      }
      if (verb.run) {
        sub->callback([&selected, &verb, sub] {
          if (sub->get_subcommands().empty()) {
            selected = &verb;
          }
        });
      } else {
        sub->require_subcommand(1);
      }
    }

    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      print_error(e.what());
      return exit_code::k_usage;
    }

    if (show_version) {
      fmt::print("{}\n", version_text());
      return exit_code::k_ok;
    }
    if (!selected) {
      fmt::print("{}", app.help());
      return argc > 1 ? exit_code::k_usage : exit_code::k_ok;
    }

    bool config_required = !config_file.empty();
    if (config_file.empty()) {
      config_file = config::env_get("SWARM_CONFIG").value_or(std::string(config::k_default_file));
      config_required = config::env_get("SWARM_CONFIG").has_value();
    }
    return run_verb(*selected, flags, verbosity, config_file, config_required);
  } catch (const Fatal& fatal) {
    print_error(fatal.error.message);
    switch (fatal.error.kind) {
    case ErrorKind::invalid:
      return exit_code::k_usage;
    case ErrorKind::unavailable:
      return exit_code::k_unavailable;
    default:
      return exit_code::k_failure;
    }
  } catch (const std::exception& e) {
    print_error(fmt::format("internal error: {}", e.what()));
    return exit_code::k_internal;
  }
}

} // namespace swarm::roles
