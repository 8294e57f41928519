// `swarm portage vercmp|atom|deps|emerge-parse|plan`: Portage's version, atom and dependency
// knowledge as operator tools, and the build plan of an emerge run or a binhost index.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "core/strings.hpp"
#include "portage/atom.hpp"
#include "portage/dep_string.hpp"
#include "portage/emerge_output.hpp"
#include "portage/packages_index.hpp"
#include "portage/plan.hpp"
#include "portage/version.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

// The whole of FILE, or of stdin for "-".
Result<std::string> read_input(const std::string& path)
{
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return fail(ErrorKind::not_found, "{}: no such file", path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(ErrorKind::io, "{}: cannot read", path);
  }
  text << in.rdbuf();
  return text.str();
}

int usage_error(std::string_view message)
{
  print_error(message);
  return exit_code::k_usage;
}

nlohmann::json optional_json(const std::optional<std::string>& value)
{
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

struct VercmpOptions {
  std::string a;
  std::string b;
};

int run_vercmp(const VerbContext&, const VercmpOptions& options)
{
  const auto& a = options.a;
  const auto& b = options.b;
  for (const auto* version : {&a, &b}) {
    if (!portage::is_valid_version(*version)) {
      return usage_error(fmt::format("'{}' is not a valid version (PMS: 1.2.3b_rc1-r2)", *version));
    }
  }
  fmt::print("{}\n", portage::vercmp(a, b).value_or(0));
  return exit_code::k_ok;
}

struct AtomVerbOptions {
  std::string atom;
  std::string eapi; // "": any
};

int run_atom(const VerbContext&, const AtomVerbOptions& verb)
{
  portage::AtomOptions options;
  if (!verb.eapi.empty()) {
    options.eapi = verb.eapi;
  }
  const auto atom = portage::parse_atom(verb.atom, options);
  if (!atom) {
    return usage_error(atom.error().message);
  }
  auto use = nlohmann::json::array();
  for (const auto& dep : atom->use) {
    use.push_back(dep.text);
  }
  const nlohmann::json out{
    {"blocker", atom->blocker == portage::BlockerKind::none   ? nlohmann::json(nullptr)
                : atom->blocker == portage::BlockerKind::weak ? nlohmann::json("!")
                                                              : nlohmann::json("!!")},
    {"operator", atom->op.empty() ? nlohmann::json(nullptr) : nlohmann::json(atom->op)},
    {"cp", atom->cp},
    {"category", atom->category()},
    {"package", atom->package()},
    {"version", atom->version.empty() ? nlohmann::json(nullptr) : nlohmann::json(atom->version)},
    {"slot", optional_json(atom->slot)},
    {"subslot", optional_json(atom->sub_slot)},
    {"slot_operator", atom->slot_operator.empty() ? nlohmann::json(nullptr) : nlohmann::json(atom->slot_operator)},
    {"repo", optional_json(atom->repo)},
    {"use", use}};
  fmt::print("{}\n", out.dump(2));
  return exit_code::k_ok;
}

struct DepsOptions {
  std::string depstring;
  std::string use;  // enabled flags, space-separated
  std::string eapi; // "": any
};

int run_deps(const VerbContext&, const DepsOptions& options)
{
  portage::FlagSet use;
  for (const auto& flag : strings::split_any(options.use)) {
    use.insert(flag);
  }
  std::optional<std::string> eapi;
  if (!options.eapi.empty()) {
    eapi = options.eapi;
  }
  const auto tree = portage::reduce_dependencies(options.depstring, use, eapi);
  if (!tree) {
    return usage_error(tree.error().message);
  }
  fmt::print("{}\n", portage::dep_tree_to_json(*tree).dump(2));
  return exit_code::k_ok;
}

struct EmergeParseOptions {
  std::string file; // "-": stdin
};

int run_emerge_parse(const VerbContext&, const EmergeParseOptions& options)
{
  const auto text = read_input(options.file);
  if (!text) {
    return usage_error(text.error().message);
  }
  const auto list = portage::parse_emerge_output(*text);
  if (!list) {
    return usage_error(list.error().message);
  }
  fmt::print("{}\n", portage::merge_list_to_json(*list).dump(2));
  return exit_code::k_ok;
}

struct PlanOptions {
  std::string emerge_output; // `emerge --pretend --verbose` output ("-": stdin)
  std::string repo;          // with emerge_output: the repository with metadata/md5-cache
  std::string implicit_use;  // with emerge_output: flags emerge does not print
  std::string from_index;    // or: a binhost Packages file
};

int run_plan(const VerbContext&, const PlanOptions& options)
{
  const bool from_emerge = !options.emerge_output.empty();
  const bool from_index = !options.from_index.empty();
  if (from_emerge == from_index) {
    return usage_error("give either --emerge-output FILE --repo DIR or --from-index PACKAGES_FILE");
  }
  Result<portage::Plan> plan;
  if (from_emerge) {
    if (options.repo.empty()) {
      return usage_error("--emerge-output needs --repo DIR (the ebuild repository with metadata/md5-cache)");
    }
    std::error_code error;
    if (!std::filesystem::is_directory(options.repo, error)) {
      return usage_error(fmt::format("{}: no such directory", options.repo));
    }
    const auto text = read_input(options.emerge_output);
    if (!text) {
      return usage_error(text.error().message);
    }
    portage::EmergePlanOptions emerge;
    emerge.implicit_use = strings::split_any(options.implicit_use);
    plan = portage::plan_from_emerge(*text, options.repo, emerge);
  } else {
    if (!options.repo.empty() || !options.implicit_use.empty()) {
      return usage_error("--repo and --implicit-use only go with --emerge-output");
    }
    const auto text = read_input(options.from_index);
    if (!text) {
      return usage_error(text.error().message);
    }
    const auto index = portage::read_packages_index(*text);
    if (!index) {
      return usage_error(fmt::format("{}: {}", options.from_index, index.error().message));
    }
    plan = portage::plan_from_index(*index);
  }
  if (!plan) {
    return usage_error(plan.error().message);
  }
  fmt::print("{}\n", portage::plan_to_json(*plan).dump(1));
  return exit_code::k_ok;
}

} // namespace

void add_portage_dep_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<VercmpOptions>(
    "portage vercmp", "Compare two versions as Portage does: prints -1, 0 or 1",
    [](CLI::App& app, ConfigFlags&, VercmpOptions& options) {
      app.add_option("a", options.a, "First version (1.2.3_rc1-r2)")->required();
      app.add_option("b", options.b, "Second version")->required();
    },
    run_vercmp));
  verbs.push_back(make_verb<AtomVerbOptions>(
    "portage atom", "Parse a dependency atom and print its parts as JSON",
    [](CLI::App& app, ConfigFlags&, AtomVerbOptions& options) {
      app.add_option("atom", options.atom, "The atom: '>=cat/pkg-1.2:0/1=[use]'")->required();
      app.add_option("--eapi", options.eapi, "Validate for this EAPI (default: any)");
    },
    run_atom));
  verbs.push_back(make_verb<DepsOptions>(
    "portage deps", "Reduce a dependency string for a USE set and print it as JSON",
    [](CLI::App& app, ConfigFlags&, DepsOptions& options) {
      app.add_option("depstring", options.depstring, "'a/b flag? ( c/d ) || ( e/f g/h )'")->required();
      app.add_option("--use", options.use, "Enabled USE flags, space-separated");
      app.add_option("--eapi", options.eapi, "Validate for this EAPI (default: any)");
    },
    run_deps));
  verbs.push_back(make_verb<EmergeParseOptions>(
    "portage emerge-parse", "Parse `emerge --pretend` output and print the merge list as JSON",
    [](CLI::App& app, ConfigFlags&, EmergeParseOptions& options) {
      app.add_option("file", options.file, "The captured output, or - for stdin")->required();
    },
    run_emerge_parse));
  verbs.push_back(make_verb<PlanOptions>(
    "portage plan", "Build the plan JSON (packages, edges) from emerge output or a Packages index",
    [](CLI::App& app, ConfigFlags&, PlanOptions& options) {
      app.add_option("--emerge-output", options.emerge_output, "`emerge --pretend --verbose` output (- for stdin)");
      app.add_option("--repo", options.repo, "Ebuild repository with metadata/md5-cache");
      app.add_option("--implicit-use", options.implicit_use,
                     "Flags emerge does not print, e.g. 'amd64 elibc_glibc kernel_linux'");
      app.add_option("--from-index", options.from_index, "A binhost Packages file");
    },
    run_plan));
}

} // namespace swarm::roles
