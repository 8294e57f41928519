// `swarm portage vercmp|atom|deps|emerge-parse|plan`: Portage's version, atom and dependency
// knowledge as operator tools, and the build plan of an emerge run or a binhost index.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

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

int run_vercmp(VerbArgs& args)
{
  const auto& a = args.option("a");
  const auto& b = args.option("b");
  for (const auto* version : {&a, &b}) {
    if (!portage::is_valid_version(*version)) {
      return usage_error(fmt::format("'{}' is not a valid version (PMS: 1.2.3b_rc1-r2)", *version));
    }
  }
  fmt::print("{}\n", portage::vercmp(a, b).value_or(0));
  return exit_code::k_ok;
}

int run_atom(VerbArgs& args)
{
  portage::AtomOptions options;
  if (args.has_option("eapi")) {
    options.eapi = args.option("eapi");
  }
  const auto atom = portage::parse_atom(args.option("atom"), options);
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

int run_deps(VerbArgs& args)
{
  portage::FlagSet use;
  for (const auto& flag : strings::split_any(args.option("use"))) {
    use.insert(flag);
  }
  std::optional<std::string> eapi;
  if (args.has_option("eapi")) {
    eapi = args.option("eapi");
  }
  const auto tree = portage::reduce_dependencies(args.option("depstring"), use, eapi);
  if (!tree) {
    return usage_error(tree.error().message);
  }
  fmt::print("{}\n", portage::dep_tree_to_json(*tree).dump(2));
  return exit_code::k_ok;
}

int run_emerge_parse(VerbArgs& args)
{
  const auto text = read_input(args.option("file"));
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

int run_plan(VerbArgs& args)
{
  const bool from_emerge = args.has_option("emerge-output");
  const bool from_index = args.has_option("from-index");
  if (from_emerge == from_index) {
    return usage_error("give either --emerge-output FILE --repo DIR or --from-index PACKAGES_FILE");
  }
  Result<portage::Plan> plan;
  if (from_emerge) {
    if (!args.has_option("repo")) {
      return usage_error("--emerge-output needs --repo DIR (the ebuild repository with metadata/md5-cache)");
    }
    std::error_code error;
    if (!std::filesystem::is_directory(args.option("repo"), error)) {
      return usage_error(fmt::format("{}: no such directory", args.option("repo")));
    }
    const auto text = read_input(args.option("emerge-output"));
    if (!text) {
      return usage_error(text.error().message);
    }
    portage::EmergePlanOptions options;
    options.implicit_use = strings::split_any(args.option("implicit-use"));
    plan = portage::plan_from_emerge(*text, args.option("repo"), options);
  } else {
    if (args.has_option("repo") || args.has_option("implicit-use")) {
      return usage_error("--repo and --implicit-use only go with --emerge-output");
    }
    const auto text = read_input(args.option("from-index"));
    if (!text) {
      return usage_error(text.error().message);
    }
    const auto index = portage::read_packages_index(*text);
    if (!index) {
      return usage_error(fmt::format("{}: {}", args.option("from-index"), index.error().message));
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
  verbs.push_back({"portage vercmp", "Compare two versions as Portage does: prints -1, 0 or 1",
                   [](CLI::App& app, VerbArgs& args) {
                     app.add_option("a", args.options["a"], "First version (1.2.3_rc1-r2)")->required();
                     app.add_option("b", args.options["b"], "Second version")->required();
                   },
                   run_vercmp});
  verbs.push_back({"portage atom", "Parse a dependency atom and print its parts as JSON",
                   [](CLI::App& app, VerbArgs& args) {
                     app.add_option("atom", args.options["atom"], "The atom: '>=cat/pkg-1.2:0/1=[use]'")->required();
                     app.add_option("--eapi", args.options["eapi"], "Validate for this EAPI (default: any)");
                   },
                   run_atom});
  verbs.push_back(
    {"portage deps", "Reduce a dependency string for a USE set and print it as JSON",
     [](CLI::App& app, VerbArgs& args) {
       app.add_option("depstring", args.options["depstring"], "'a/b flag? ( c/d ) || ( e/f g/h )'")->required();
       app.add_option("--use", args.options["use"], "Enabled USE flags, space-separated");
       app.add_option("--eapi", args.options["eapi"], "Validate for this EAPI (default: any)");
     },
     run_deps});
  verbs.push_back({"portage emerge-parse", "Parse `emerge --pretend` output and print the merge list as JSON",
                   [](CLI::App& app, VerbArgs& args) {
                     app.add_option("file", args.options["file"], "The captured output, or - for stdin")->required();
                   },
                   run_emerge_parse});
  verbs.push_back({"portage plan", "Build the plan JSON (packages, edges) from emerge output or a Packages index",
                   [](CLI::App& app, VerbArgs& args) {
                     app.add_option("--emerge-output", args.options["emerge-output"],
                                    "`emerge --pretend --verbose` output (- for stdin)");
                     app.add_option("--repo", args.options["repo"], "Ebuild repository with metadata/md5-cache");
                     app.add_option("--implicit-use", args.options["implicit-use"],
                                    "Flags emerge does not print, e.g. 'amd64 elibc_glibc kernel_linux'");
                     app.add_option("--from-index", args.options["from-index"], "A binhost Packages file");
                   },
                   run_plan});
}

} // namespace swarm::roles
