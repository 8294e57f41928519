#include <doctest/doctest.h>

#include "core/fs.hpp"
#include "portage/binary_update.hpp"
#include "support.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

// A real `emerge --pretend … --getbinpkgonly @world` output (tests/data/portage/realportage-emerge).
std::string recorded(const std::string& name)
{
  auto text = fs::read_file(swarm::test::portage_data("realportage-emerge/" + name), 1u << 20);
  REQUIRE_MESSAGE(text.has_value(), "missing recorded output ", name);
  return *text;
}

BinaryUpdateReport assess(const std::string& text)
{
  auto report = assess_binary_update(text);
  REQUIRE_MESSAGE(report.has_value(), report.error().message);
  return *report;
}

} // namespace

TEST_CASE("binary update: every world package has a binary")
{
  const auto report = assess(recorded("world-all-binaries.txt"));
  CHECK(report.binaries == std::vector<std::string>{"cat/rt-r-1", "cat/lib-a-1", "cat/lib-b-1", "cat/app-c-1"});
  CHECK(report.from_source.empty());
  CHECK(report.unsatisfied.empty());
  CHECK(report.problems.empty());
  CHECK_FALSE(report.nothing_to_do);
  CHECK(report.complete());
}

TEST_CASE("binary update: nothing to do")
{
  const auto report = assess(recorded("world-nothing-to-do.txt"));
  CHECK(report.nothing_to_do);
  CHECK(report.binaries.empty());
  CHECK(report.complete());
}

TEST_CASE("binary update: a world atom without a binary is dropped although emerge exits 0")
{
  const auto report = assess(recorded("world-atom-without-binary.txt"));
  CHECK(report.binaries.size() == 4);
  CHECK(report.unsatisfied == std::vector<std::string>{"cat/leaf-d"});
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].find("cat/leaf-d") != std::string::npos);
  CHECK_FALSE(report.complete());
}

TEST_CASE("binary update: a dependency without a binary drops the world atom that needs it")
{
  const auto report = assess(recorded("world-dependency-without-binary.txt"));
  CHECK(report.nothing_to_do); // "Total: 0 packages" — and still incomplete
  CHECK(report.unsatisfied == std::vector<std::string>{"cat/app-c"});
  CHECK_FALSE(report.complete());
}

TEST_CASE("binary update: a binary built with other USE, a keyword-masked package")
{
  const auto mismatch = assess(recorded("world-binary-use-mismatch.txt"));
  CHECK(mismatch.binaries == std::vector<std::string>{"cat/lib-a-1"});
  CHECK(mismatch.unsatisfied == std::vector<std::string>{"cat/opt-u"});
  CHECK_FALSE(mismatch.complete());
  const auto masked = assess(recorded("world-atom-keyword-masked.txt"));
  CHECK(masked.unsatisfied == std::vector<std::string>{"cat/unstable-k"});
  CHECK_FALSE(masked.complete());
}

TEST_CASE("binary update: --getbinpkg would compile what has no binary")
{
  const auto report = assess(recorded("world-getbinpkg-builds-from-source.txt"));
  CHECK(report.from_source == std::vector<std::string>{"cat/leaf-d-1"});
  CHECK(report.binaries.size() == 4);
  REQUIRE_FALSE(report.problems.empty());
  CHECK(report.problems[0].find("cat/leaf-d-1") != std::string::npos);
  CHECK_FALSE(report.complete());
}

TEST_CASE("binary update: explicit atoms Portage cannot satisfy (exit 1)")
{
  const auto missing = assess(recorded("explicit-atom-without-binary.txt"));
  CHECK(missing.unsatisfied == std::vector<std::string>{"=cat/leaf-d-1"});
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0].starts_with("emerge: there are no binary packages to satisfy"));
  const auto masked = assess(recorded("explicit-atom-masked.txt"));
  CHECK(masked.unsatisfied == std::vector<std::string>{"cat/unstable-k"});
  CHECK(masked.masked == std::vector<std::string>{"cat/unstable-k-1::test_repo (masked by: ~amd64 keyword)"});
  CHECK_FALSE(masked.complete());
}

TEST_CASE("binary update: colour codes and carriage returns do not hide a dropped atom")
{
  const std::string text = "\x1b[32m[binary  N g   ]\x1b[0m cat/lib-a-1-1::test_repo  10 KiB\n"
                           "\n\x1b[31;01m!!!\x1b[0m Ebuilds for the following packages are either all\r\n"
                           "\x1b[31;01m!!!\x1b[0m masked or don't exist:\n"
                           "cat/opt-u cat/other\n";
  const auto report = assess(text);
  CHECK(report.binaries == std::vector<std::string>{"cat/lib-a-1"});
  CHECK(report.unsatisfied == std::vector<std::string>{"cat/opt-u", "cat/other"});
}

TEST_CASE("binary update: the world file and the VDB")
{
  CHECK(parse_world_file("# mine\ncat/app-c\n\n  cat/leaf-d:0  \n") ==
        std::vector<std::string>{"cat/app-c", "cat/leaf-d:0"});

  fs::TempDir root{"vdb"};
  const auto vdb = root.path() / "var/db/pkg";
  REQUIRE(fs::make_dirs(vdb / "cat/app-c-1").has_value());
  REQUIRE(fs::make_dirs(vdb / "cat/lib-a-2").has_value());
  REQUIRE(fs::make_dirs(vdb / "cat/-MERGING-lib-b-1").has_value());
  REQUIRE(fs::write_file_atomic(vdb / "cat/app-c-1/SLOT", "0\n").has_value());
  REQUIRE(fs::write_file_atomic(vdb / "cat/app-c-1/repository", "test_repo\n").has_value());
  REQUIRE(fs::write_file_atomic(vdb / "cat/lib-a-2/SLOT", "2/2.1\n").has_value());
  auto installed = read_vdb(vdb);
  REQUIRE(installed.has_value());
  REQUIRE(installed->size() == 2);
  CHECK((*installed)[0].cpv == "cat/app-c-1");
  CHECK((*installed)[0].repo == "test_repo");
  CHECK((*installed)[1].slot == "2/2.1");
  CHECK(read_vdb(root.path() / "nowhere").value().empty());

  const std::vector<std::string> world = {"cat/app-c",     "cat/app-c::test_repo", "cat/lib-a:2", "cat/lib-a:1",
                                          ">=cat/lib-a-3", "cat/leaf-d",           "not an atom"};
  CHECK(unsatisfied_atoms(world, *installed) ==
        std::vector<std::string>{"cat/lib-a:1", ">=cat/lib-a-3", "cat/leaf-d", "not an atom"});
}
