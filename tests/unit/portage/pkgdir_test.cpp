#include <doctest/doctest.h>

#include "core/fs.hpp"
#include "portage/pkgdir.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

Cpv cpv_of(std::string_view text)
{
  auto cpv = parse_cpv(text);
  REQUIRE(cpv.has_value());
  return *cpv;
}

} // namespace

TEST_CASE("pkgdir: PF and the path of one build")
{
  CHECK(pf_of(cpv_of("a/b-1.0")) == "b-1.0");
  CHECK(pf_of(cpv_of("dev-libs/foo-1.2-r1")) == "foo-1.2-r1");
  CHECK(pf_of(cpv_of("dev-libs/foo-1.2-r0")) == "foo-1.2-r0"); // as written, like Portage's PF
  CHECK(package_file_path("/p", cpv_of("dev-libs/foo-1.2-r1"), 7) == "/p/dev-libs/foo/foo-1.2-r1-7.gpkg.tar");
}

TEST_CASE("pkgdir: the files of one PF by BUILD_ID, and the next BUILD_ID")
{
  fs::TempDir dir("pkgdir");
  const auto foo = cpv_of("dev-libs/foo-1.2");
  const auto foo_r1 = cpv_of("dev-libs/foo-1.2-r1");
  CHECK(package_files(dir.path(), foo).empty());
  CHECK(next_build_id(dir.path(), foo) == 1);

  REQUIRE(fs::make_dirs(dir / "dev-libs/foo").has_value());
  for (const auto* name :
       {"foo-1.2-1.gpkg.tar", "foo-1.2-10.gpkg.tar", "foo-1.2-9.gpkg.tar", "foo-1.2-r1-40.gpkg.tar",
        "foo-1.2-x.gpkg.tar", "foo-1.2-+3.gpkg.tar", "foo-1.2--3.gpkg.tar", "foo-1.2-77.xpak", "foo-1.2-.gpkg.tar"}) {
    REQUIRE(fs::write_file_atomic(dir / "dev-libs/foo" / name, "x").has_value());
  }
  REQUIRE(fs::make_dirs(dir / "dev-libs/foo/foo-1.2-99.gpkg.tar").has_value()); // not a file

  const auto files = package_files(dir.path(), foo);
  REQUIRE(files.size() == 3);
  CHECK(files[0].build_id == 1);
  CHECK(files[1].build_id == 9); // numerically, not as text
  CHECK(files[2].build_id == 10);
  CHECK(files[2].path == dir / "dev-libs/foo/foo-1.2-10.gpkg.tar");
  CHECK(next_build_id(dir.path(), foo) == 11);

  // "foo-1.2-r1-40" is foo-1.2-r1's, never foo-1.2's.
  REQUIRE(package_files(dir.path(), foo_r1).size() == 1);
  CHECK(next_build_id(dir.path(), foo_r1) == 41);
  CHECK(next_build_id(dir.path(), cpv_of("dev-libs/foo-2")) == 1);
}
