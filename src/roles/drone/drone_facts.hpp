#pragma once
// What a drone learns about its own Portage once, at start, from portageq: the CHOST its build
// base produces, its repositories and where they are, and the machine-local directories a
// private build root must share with it (DISTDIR, PORTAGE_TMPDIR).

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/subprocess.hpp"
#include "portage/repos_conf.hpp"

namespace swarm::roles::drone {

struct DroneFacts {
  bool known = false; // portageq answered; without it, profiles cannot be honoured
  std::string chost;
  std::filesystem::path eroot = "/";
  std::filesystem::path distdir;
  std::filesystem::path portage_tmpdir;
  portage::ReposConf repositories; // at this drone's locations
};

// portageq beside emerge: "/usr/bin/emerge" → "/usr/bin/portageq", "emerge" → "portageq".
std::string portageq_beside(std::string_view emerge);

// Runs `portageq envvar -v CHOST EROOT DISTDIR PORTAGE_TMPDIR` and `portageq repos_config EROOT`
// with PORTAGE_CONFIGROOT=`configroot` (unless "/"). `wrapper` (the build-root helper's argv up
// to its "--") runs them inside a build root instead, to learn what another base produces.
Result<DroneFacts> query_drone_facts(subprocess::ProcessRunner& runner, const std::string& portageq,
                                     const std::filesystem::path& configroot,
                                     const std::vector<std::string>& wrapper = {});

} // namespace swarm::roles::drone
