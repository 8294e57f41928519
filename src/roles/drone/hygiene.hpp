#pragma once
// What a starting drone finds of its previous run and ends before it builds anything: emerge
// process groups still running (a drone killed with SIGKILL leaves its emerges behind, and a
// second emerge of the same package beside them would fight over the same build directory),
// build roots whose builds are over, and PKGDIR files no Packages entry lists (what a killed
// build leaves) — after which PKGDIR/Packages lists only files that are there.

#include <cstddef>
#include <filesystem>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "portage/pkgdir_index.hpp"
#include "roles/drone/spool.hpp"

namespace swarm::roles::drone {

struct HygieneReport {
  size_t groups_ended = 0;     // process groups of a previous run that were still alive
  size_t processes_killed = 0; // their processes
  size_t roots_removed = 0;
  portage::PkgdirTidy pkgdir;
};

// One drone per spool: an exclusive lock on SPOOL/drone.lock, held while the descriptor lives.
// A conflict error names the spool when another drone holds it.
Result<UniqueFd> lock_spool(const Spool& spool);

// Ends the process groups recorded in the spool's lease work dirs (emerge.pgid), removes stale
// build roots below `roots_dir`, and tidies the spool's PKGDIR. An error when a leftover group
// cannot be ended: building beside it would run the same package twice.
Result<HygieneReport> clean_up_previous_run(const Spool& spool, const std::filesystem::path& roots_dir);

} // namespace swarm::roles::drone
