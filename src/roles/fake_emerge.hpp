#pragma once
// `swarm fake-emerge ARGS…` (hidden): a stand-in for Portage's emerge in tests. It takes
// emerge's own argument syntax and behaves like emerge where it matters to the swarm:
//  - `--usepkgonly --getbinpkgonly =CPV…` downloads each package from the binhost of
//    ${PORTAGE_CONFIGROOT}/etc/portage/binrepos.conf over HTTP, checks it against the index and
//    "installs" it into a fake vdb, ${ROOT}/var/db/pkg/CAT/PF/;
//  - `--buildpkgonly =CPV` refuses to build unless every build dependency of the plan
//    (SWARM_FAKE_PLAN) is installed (that is how tests catch ordering bugs), sleeps the plan's
//    build_seconds × SWARM_FAKE_TIME_SCALE, fails when SWARM_FAKE_FAIL names the cpv (or is
//    `*`; printing SWARM_FAKE_FAIL_LOG/CAT/PF.log first when that file exists), and writes a genuine GPKG to ${PKGDIR}/CAT/PN/PF-BUILD_ID.gpkg.tar;
//  - `--pretend [--verbose --update --deep --newuse] @SET` prints the plan's packages as
//    emerge's merge list (`[ebuild  N     ] cat/pkg-ver:SLOT::repo  USE="…"`), for `swarm fresh`.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "portage/plan.hpp"

namespace swarm::roles {

// The emerge options the fake understands, and its package arguments.
struct FakeEmergeArgs {
  bool oneshot = false;
  bool usepkg = false;
  bool usepkgonly = false;
  bool getbinpkg = false;
  bool getbinpkgonly = false;
  bool nodeps = false;
  bool noreplace = false;
  bool buildpkg = false;
  bool buildpkgonly = false;
  bool quiet = false;
  bool verbose = false;
  std::vector<std::string> cpvs; // "cat/pkg-ver" of each `=cat/pkg-ver` argument, in order
};

// Parses emerge's argument syntax: long options (`--color=n`, `--color n`, `--usepkg=y`),
// bundled short options (`-1KG`), and package atoms, which must be exact (`=cat/pkg-ver`).
// An unknown option or another kind of atom is an invalid error naming it.
Result<FakeEmergeArgs> parse_fake_emerge_args(const std::vector<std::string>& args);

// The plan packages that must be installed to build `cpv`: the targets of its DEPEND, BDEPEND
// and IDEPEND edges plus the RDEPEND closure of those, never `cpv` itself, in breadth-first
// order. A dependency that itself depends on `cpv` over the same kind of relation (a cycle,
// which Portage resolves with the version already installed) goes to `cyclic` instead.
struct FakeBuildDependencies {
  std::vector<std::string> required;
  std::vector<std::string> cyclic;
};
FakeBuildDependencies fake_build_dependencies(const portage::Plan& plan, std::string_view cpv);

// ${root}/var/db/pkg/CAT/PF
std::filesystem::path fake_vdb_dir(const std::filesystem::path& root, std::string_view cpv);

// 1 + the highest BUILD_ID of PKGDIR/CAT/PN/PF-*.gpkg.tar (1 when there is none).
uint64_t next_build_id(const std::filesystem::path& pkgdir, std::string_view cpv);

// Runs the fake with emerge's arguments; returns its exit status.
int run_fake_emerge(const std::vector<std::string>& args);

} // namespace swarm::roles
