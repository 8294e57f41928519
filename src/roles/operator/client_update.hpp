#pragma once
// `swarm client update`, step by step: a `--pretend` run first, refused when Portage would compile
// anything or drop a world atom it cannot satisfy from binaries (it does so with exit 0); then the
// install from binary packages only; then the installed-package database (VDB) must hold every
// world atom. Processes run through a ProcessRunner so that tests can play Portage's part.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/subprocess.hpp"
#include "portage/binary_update.hpp"

namespace swarm::roles::operator_cli {

struct ClientUpdateSettings {
  std::string emerge = "/usr/bin/emerge";          // client.emerge
  std::string portageq = "/usr/bin/portageq";      // client.portageq: where the world file and the VDB are
  std::function<void(std::string_view)> on_output; // emerge's output as it arrives (may be empty)
};

struct ClientUpdateResult {
  enum class Stage {
    pretend_failed, // emerge --pretend exited non-zero: nothing was installed
    refused,        // the pretend run would compile or drop something: nothing was installed
    install_failed, // the install exited non-zero
    incomplete,     // installed, but world atoms are missing from the VDB
    updated,        // installed (or nothing to do), every world atom installed
  };
  Stage stage = Stage::pretend_failed;
  int emerge_exit_code = 0;           // of the run that failed (pretend or install)
  portage::BinaryUpdateReport report; // what the pretend run said
  bool installed = false;             // the install ran
  std::vector<std::string> world;     // the world atoms checked
  std::vector<std::string> missing;   // world atoms no installed package satisfies
  std::string eroot;                  // where the world file and the VDB were read

  bool ok() const { return stage == Stage::updated; }
};

// The three steps above. An Error when a process cannot be started, portageq fails, or the
// world file or the VDB cannot be read; Portage's own verdicts are the result's stage.
Result<ClientUpdateResult> update_from_binaries(const ClientUpdateSettings& settings,
                                                subprocess::ProcessRunner& runner);

// The stage as a word for --json: "pretend_failed", "refused", "install_failed", "incomplete",
// "updated".
std::string_view stage_name(ClientUpdateResult::Stage stage);

} // namespace swarm::roles::operator_cli
