#include "roles/operator/world_plan.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "roles/operator/client_side.hpp"

namespace swarm::roles::operator_cli {

namespace {

Result<std::string> emerge_output(const WorldPlanSource& source)
{
  if (!source.from_file.empty()) {
    return fs::read_file(source.from_file);
  }
  subprocess::Spec spec;
  spec.argv = pretend_argv(source.emerge);
  spec.env = {{"NOCOLOR", "true"}};
  spec.capture = subprocess::Capture::yes;
  fmt::print(stderr, "running {}\n", strings::join(spec.argv, " "));
  auto outcome = subprocess::run(spec);
  if (!outcome) {
    return fail(outcome.error().kind, "cannot run {}: {}", spec.argv.front(), outcome.error().message);
  }
  if (!outcome->success()) {
    const auto& text = outcome->output;
    return fail(ErrorKind::invalid, "{} {}; its output ends with:\n{}", strings::join(spec.argv, " "),
                outcome->describe(), text.substr(text.size() > 2000 ? text.size() - 2000 : 0));
  }
  return std::move(outcome->output);
}

} // namespace

Result<portage::Plan> compute_world_plan(const WorldPlanSource& source)
{
  auto text = emerge_output(source);
  if (!text) {
    return fail(text.error());
  }
  return portage::plan_from_emerge(*text, source.repo_dir);
}

Result<portage::Plan> read_plan_file(const std::string& path)
{
  auto text = fs::read_file(path);
  if (!text) {
    return fail(text.error());
  }
  auto parsed = nlohmann::json::parse(*text, nullptr, false);
  if (parsed.is_discarded()) {
    return fail(ErrorKind::invalid, "{} is not JSON", path);
  }
  if (parsed.is_object() && parsed.contains("plan") && parsed["plan"].is_object()) {
    parsed = parsed["plan"]; // a saved request body
  }
  auto plan = portage::plan_from_json(parsed);
  if (!plan) {
    return fail(ErrorKind::invalid, "{}: {}", path, plan.error().message);
  }
  return plan;
}

} // namespace swarm::roles::operator_cli
