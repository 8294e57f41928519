#include "roles/operator/world_plan.hpp"

#include <cstdio>

#include <fmt/format.h>

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

} // namespace swarm::roles::operator_cli
