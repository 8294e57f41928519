#pragma once
// Fidelity: does a binary package's own metadata say it was built as asked — the plan entry's
// USE (compared within the package's IUSE), SLOT and repository, and the build profile's CHOST
// and compiler and linker flags (with package.env applied)? Used by the orchestrator on every
// upload and by verify on every staged artifact.
//
// The flags a package records are what its build used after the ebuild adjusted them
// (flag-o-matic's filter-flags, replace-flags, append-flags), so they are not compared
// word for word: a target-specific flag (-march=, -mtune=, -mcpu=, -mfpu=, -mabi=, or an
// instruction-set switch such as -mavx2) that the profile does not have is what makes a binary
// wrong for the client, and no ebuild adds one; that is a difference.

#include <map>
#include <string>
#include <vector>

#include "portage/build_profile.hpp"

namespace swarm::portage {

struct BuildExpectation {
  std::string cpv;
  std::string slot; // "0" or "0/1.2": a slot without a sub-slot is compared without one
  std::string repo;
  std::vector<std::string> use;          // the plan's enabled flags
  const BuildProfile* profile = nullptr; // CHOST and flags are checked only with a profile
};

// The flag variables checked for target-specific flags the profile does not have.
const std::vector<std::string>& checked_flag_variables();
// -march=…, -mtune=…, -mavx2 and the like: flags that tie a binary to a kind of CPU.
bool is_target_flag(std::string_view flag);

// One line per difference ("USE: ssl was asked but the package was built without it",
// "CFLAGS: built with \"-O3\", the profile says \"-O2 -pipe\""); empty when it matches.
// `metadata` is GpkgReport::metadata (whitespace-normalised).
std::vector<std::string> check_build(const std::map<std::string, std::string>& metadata,
                                     const BuildExpectation& expected);

} // namespace swarm::portage
