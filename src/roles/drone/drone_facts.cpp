#include "roles/drone/drone_facts.hpp"

#include "core/strings.hpp"
#include "portage/build_profile.hpp"

namespace swarm::roles::drone {

namespace {

Result<std::string> run_portageq(subprocess::ProcessRunner& runner, const std::string& portageq,
                                 const std::filesystem::path& configroot, const std::vector<std::string>& wrapper,
                                 const std::vector<std::string>& args)
{
  subprocess::Spec spec;
  spec.argv = wrapper;
  spec.argv.push_back(portageq);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (!configroot.empty() && configroot != "/") {
    spec.env["PORTAGE_CONFIGROOT"] = configroot.string();
  }
  spec.capture = subprocess::Capture::yes;
  spec.timeout = std::chrono::minutes(2);
  auto outcome = runner.run(spec);
  if (!outcome) {
    return fail(outcome.error());
  }
  if (!outcome->success()) {
    return fail(ErrorKind::io, "{} {} {}: {}", portageq, args.front(), outcome->describe(),
                strings::trim(outcome->output.substr(0, 500)));
  }
  return outcome->output;
}

} // namespace

std::string portageq_beside(std::string_view emerge)
{
  const std::filesystem::path path(emerge);
  if (!path.has_parent_path()) {
    return "portageq";
  }
  return (path.parent_path() / "portageq").string();
}

Result<DroneFacts> query_drone_facts(subprocess::ProcessRunner& runner, const std::string& portageq,
                                     const std::filesystem::path& configroot, const std::vector<std::string>& wrapper)
{
  auto settings = run_portageq(runner, portageq, configroot, wrapper,
                               {"envvar", "-v", "CHOST", "EROOT", "DISTDIR", "PORTAGE_TMPDIR"});
  if (!settings) {
    return fail(settings.error());
  }
  auto values = portage::parse_envvar_output(*settings);
  DroneFacts facts;
  facts.chost = values["CHOST"];
  if (!values["EROOT"].empty()) {
    facts.eroot = values["EROOT"];
  }
  facts.distdir = values["DISTDIR"];
  facts.portage_tmpdir = values["PORTAGE_TMPDIR"];
  if (facts.chost.empty()) {
    return fail(ErrorKind::invalid, "{} envvar says nothing of CHOST", portageq);
  }
  // In a prefix, portageq takes the EROOT, not "/", as its root argument.
  auto repos = run_portageq(runner, portageq, configroot, wrapper, {"repos_config", facts.eroot.string()});
  if (!repos) {
    return fail(repos.error());
  }
  auto parsed = portage::parse_repos_conf(*repos);
  if (!parsed) {
    return fail(ErrorKind::invalid, "{} repos_config: {}", portageq, parsed.error().message);
  }
  facts.repositories = std::move(*parsed);
  facts.known = true;
  return facts;
}

} // namespace swarm::roles::drone
