#pragma once
// What a binary-only update would do, and what it would leave out, read from the output of
// `emerge --pretend --verbose --update --deep --newuse --getbinpkgonly @world`. Portage drops a
// world atom it cannot satisfy from binaries — no binary, a dependency without one, a binary built
// with other USE, a masked package — says so on stderr ("Ebuilds for the following packages are
// either all masked or don't exist") and still exits 0; so the output decides, not the exit code.
// Also the installed-package database (VDB) and the world file, to check the result afterwards.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::portage {

struct BinaryUpdateReport {
  std::vector<std::string> binaries;    // CPVs to be installed from binary packages
  std::vector<std::string> from_source; // CPVs to be compiled (`[ebuild …]` lines)
  std::vector<std::string> unsatisfied; // atoms Portage says it cannot satisfy (world atoms it drops)
  std::vector<std::string> masked;      // "cat/pkg-1::repo (masked by: ~amd64 keyword)"
  std::vector<std::string> problems;    // Portage's own words for each of the above, one line each
  bool nothing_to_do = false;           // "Total: 0 packages"

  // Installing would build nothing and drop nothing.
  bool complete() const { return from_source.empty() && unsatisfied.empty() && masked.empty(); }
};

// Reads emerge's merged stdout and stderr (colour codes are ignored). An error only when a
// merge-list line cannot be read.
Result<BinaryUpdateReport> assess_binary_update(std::string_view emerge_output);

// A package of the VDB (EROOT/var/db/pkg/CAT/PF/): its CPV, SLOT (with sub-slot) and repository.
struct InstalledPackage {
  std::string cpv;
  std::string slot;
  std::string repo;
};

// Every package of a VDB directory, sorted by CPV; Portage's in-progress entries (names starting
// with '-' or '.') are skipped. A missing directory is an empty list.
Result<std::vector<InstalledPackage>> read_vdb(const std::filesystem::path& vdb_dir);

// The atoms of a world file (var/lib/portage/world): one a line, blank lines and #comments skipped.
std::vector<std::string> parse_world_file(std::string_view text);

// The atoms of `world` that no package of `installed` satisfies (an atom Portage cannot parse
// counts as unsatisfied).
std::vector<std::string> unsatisfied_atoms(const std::vector<std::string>& world,
                                           const std::vector<InstalledPackage>& installed);

} // namespace swarm::portage
