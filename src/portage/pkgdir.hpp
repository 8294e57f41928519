#pragma once
// Binary packages in a PKGDIR as Portage lays them out with FEATURES=binpkg-multi-instance and
// BINPKG_FORMAT=gpkg: PKGDIR/CAT/PN/PF-BUILD_ID.gpkg.tar, one file per build of a PF, each build
// taking 1 + the highest BUILD_ID of that PF.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "portage/version.hpp"

namespace swarm::portage {

// "PF" of a cpv as Portage spells it: "foo-1.2-r1", "foo-1.2" (no "-r0" unless it was written).
std::string pf_of(const Cpv& cpv);

// One binary package of a cpv in PKGDIR.
struct PackageFile {
  std::filesystem::path path;
  uint64_t build_id = 0;
};

// PKGDIR/CAT/PN/PF-BUILD_ID.gpkg.tar
std::filesystem::path package_file_path(const std::filesystem::path& pkgdir, const Cpv& cpv, uint64_t build_id);

// Every PKGDIR/CAT/PN/PF-BUILD_ID.gpkg.tar of `cpv` that is a regular file, by ascending BUILD_ID.
// Files of another PF of the same package ("foo-1.2-r1-3" is not foo-1.2's) are not included.
std::vector<PackageFile> package_files(const std::filesystem::path& pkgdir, const Cpv& cpv);

// The BUILD_ID Portage gives the next build of `cpv`: 1 + the highest in PKGDIR, 1 when none.
uint64_t next_build_id(const std::filesystem::path& pkgdir, const Cpv& cpv);

} // namespace swarm::portage
