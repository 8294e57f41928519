#include "roles/operator/client_update.hpp"

#include <fmt/format.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "portage/build_profile.hpp"
#include "roles/operator/client_side.hpp"

namespace swarm::roles::operator_cli {

namespace {

Result<subprocess::Outcome> run_emerge(const ClientUpdateSettings& settings, subprocess::ProcessRunner& runner,
                                       std::vector<std::string> argv, subprocess::Capture capture)
{
  subprocess::Spec spec;
  spec.argv = std::move(argv);
  spec.env = {{"NOCOLOR", "true"}};
  spec.capture = capture;
  if (settings.on_output) {
    spec.on_chunk = settings.on_output;
  }
  auto outcome = runner.run(spec);
  if (!outcome) {
    return fail(outcome.error().kind, "cannot run {}: {}", spec.argv.front(), outcome.error().message);
  }
  return outcome;
}

// EROOT as Portage has it ("/" on an ordinary system, EPREFIX/ in a Gentoo Prefix).
Result<std::string> portage_eroot(const ClientUpdateSettings& settings, subprocess::ProcessRunner& runner)
{
  subprocess::Spec spec;
  spec.argv = {settings.portageq, "envvar", "-v", "EROOT"};
  spec.capture = subprocess::Capture::yes;
  spec.timeout = std::chrono::minutes(2);
  auto outcome = runner.run(spec);
  if (!outcome) {
    return fail(outcome.error().kind, "cannot run {}: {}", settings.portageq, outcome.error().message);
  }
  if (!outcome->success()) {
    return fail(ErrorKind::io, "{} envvar EROOT {}: {}", settings.portageq, outcome->describe(),
                strings::trim(outcome->output.substr(0, 500)));
  }
  auto eroot = portage::parse_envvar_output(outcome->output)["EROOT"];
  if (eroot.empty()) {
    return fail(ErrorKind::io, "{} envvar EROOT printed no EROOT", settings.portageq);
  }
  return eroot;
}

} // namespace

std::string_view stage_name(ClientUpdateResult::Stage stage)
{
  switch (stage) {
  case ClientUpdateResult::Stage::pretend_failed:
    return "pretend_failed";
  case ClientUpdateResult::Stage::refused:
    return "refused";
  case ClientUpdateResult::Stage::install_failed:
    return "install_failed";
  case ClientUpdateResult::Stage::incomplete:
    return "incomplete";
  case ClientUpdateResult::Stage::updated:
    return "updated";
  }
  return "unknown";
}

Result<ClientUpdateResult> update_from_binaries(const ClientUpdateSettings& settings, subprocess::ProcessRunner& runner)
{
  ClientUpdateResult result;
  auto pretend = run_emerge(settings, runner, client_pretend_argv(settings.emerge), subprocess::Capture::yes);
  if (!pretend) {
    return fail(pretend.error());
  }
  auto report = portage::assess_binary_update(pretend->output);
  if (!report) {
    return fail(report.error());
  }
  result.report = std::move(*report);
  if (!pretend->success()) {
    result.stage = ClientUpdateResult::Stage::pretend_failed;
    result.emerge_exit_code = pretend->exit_code;
    return result;
  }
  if (!result.report.complete()) {
    result.stage = ClientUpdateResult::Stage::refused;
    return result;
  }

  // Nothing to merge: no second dependency calculation, only the check below.
  if (!result.report.binaries.empty() || !result.report.nothing_to_do) {
    auto install = run_emerge(settings, runner, client_update_argv(settings.emerge), subprocess::Capture::no);
    if (!install) {
      return fail(install.error());
    }
    result.installed = true;
    if (!install->success()) {
      result.stage = ClientUpdateResult::Stage::install_failed;
      result.emerge_exit_code = install->exit_code;
      return result;
    }
  }

  // Portage exits 0 even when it left a world atom out: the VDB has the last word.
  auto eroot = portage_eroot(settings, runner);
  if (!eroot) {
    return fail(eroot.error());
  }
  result.eroot = *eroot;
  const std::filesystem::path root(*eroot);
  auto world_text = fs::read_file(root / "var/lib/portage/world", 16u << 20);
  if (!world_text && world_text.error().kind != ErrorKind::not_found) {
    return fail(world_text.error());
  }
  result.world = portage::parse_world_file(world_text ? *world_text : std::string());
  auto installed = portage::read_vdb(root / "var/db/pkg");
  if (!installed) {
    return fail(installed.error());
  }
  result.missing = portage::unsatisfied_atoms(result.world, *installed);
  result.stage = result.missing.empty() ? ClientUpdateResult::Stage::updated : ClientUpdateResult::Stage::incomplete;
  return result;
}

} // namespace swarm::roles::operator_cli
