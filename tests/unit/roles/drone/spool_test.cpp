#include <doctest/doctest.h>

#include <sys/stat.h>

#include "core/fs.hpp"
#include "roles/drone/spool.hpp"

using namespace swarm;
using namespace swarm::roles::drone;

namespace {

LeaseState state_of(std::string id, LeasePhase phase)
{
  LeaseState state;
  state.lease.id = std::move(id);
  state.lease.cpv = "dev-libs/foo-1.0";
  state.lease.deps = {"sys-libs/zlib-1.3"};
  state.phase = phase;
  state.started_at = 1700000000;
  if (phase == LeasePhase::built) {
    state.artifact = "foo-1.0-3.gpkg.tar";
    state.sha256 = "aa";
    state.xxh3_128 = "bb";
    state.size = 10240;
  }
  if (phase == LeasePhase::failed) {
    state.reason = "emerge --buildpkgonly exited with status 1";
  }
  return state;
}

} // namespace

TEST_CASE("spool: what a restarted drone does with each phase")
{
  CHECK(resume_action(LeasePhase::building) == ResumeAction::return_lease);
  CHECK(resume_action(LeasePhase::built) == ResumeAction::upload);
  CHECK(resume_action(LeasePhase::uploaded) == ResumeAction::report);
  CHECK(resume_action(LeasePhase::failed) == ResumeAction::report);
  for (auto phase : {LeasePhase::building, LeasePhase::failed, LeasePhase::built, LeasePhase::uploaded}) {
    CHECK(lease_phase_from_name(lease_phase_name(phase)) == phase);
  }
  CHECK_FALSE(lease_phase_from_name("done").has_value());
}

TEST_CASE("spool: states survive a restart; broken ones are reported, not fatal")
{
  fs::TempDir dir("spool");
  Spool spool(dir / "spool");
  REQUIRE(spool.prepare().has_value());
  CHECK(std::filesystem::is_directory(spool.pkgdir()));

  const auto built = state_of("L2", LeasePhase::built);
  REQUIRE(spool.save(state_of("L1", LeasePhase::building)).has_value());
  REQUIRE(spool.save(built).has_value());
  REQUIRE(spool.save(state_of("L3", LeasePhase::failed)).has_value());
  REQUIRE(fs::make_dirs(spool.work_dir("L4")).has_value()); // crashed before its first state write
  REQUIRE(fs::make_dirs(spool.work_dir("L5")).has_value());
  REQUIRE(fs::write_file_atomic(spool.state_path("L5"), "{not json").has_value());

  struct stat info {};
  REQUIRE(::stat(spool.state_path("L2").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);

  const auto entries = Spool(dir / "spool").scan();
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].id == "L1");
  REQUIRE(entries[0].state.has_value());
  CHECK(entries[0].state->phase == LeasePhase::building);
  REQUIRE(entries[1].state.has_value());
  CHECK(lease_state_to_json(*entries[1].state) == lease_state_to_json(built));
  CHECK(spool.artifact_path(*entries[1].state) == spool.work_dir("L2") / "foo-1.0-3.gpkg.tar");
  CHECK(entries[2].state->reason == "emerge --buildpkgonly exited with status 1");
  CHECK_FALSE(entries[3].state.has_value());
  CHECK_FALSE(entries[4].state.has_value());

  REQUIRE(spool.remove("L2").has_value());
  CHECK_FALSE(std::filesystem::exists(spool.work_dir("L2")));
  CHECK(spool.remove("L2").has_value()); // gone already: fine
  CHECK_FALSE(spool.remove("..").has_value());
}

TEST_CASE("spool: a state must not point outside its work dir")
{
  auto state_json = lease_state_to_json(state_of("L1", LeasePhase::built));
  state_json["artifact"] = "../../etc/passwd";
  CHECK_FALSE(lease_state_from_json(state_json).has_value());
  state_json["artifact"] = "";
  CHECK_FALSE(lease_state_from_json(state_json).has_value()); // built without an artifact
  state_json = lease_state_to_json(state_of("L1", LeasePhase::built));
  state_json["lease"]["id"] = "../x";
  CHECK_FALSE(lease_state_from_json(state_json).has_value());
}

TEST_CASE("spool: the log tail starts on a line and holds at most the window")
{
  fs::TempDir dir("spool-tail");
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += fmt::format("line {}\n", i);
  }
  REQUIRE(fs::write_file_atomic(dir / "log", text).has_value());
  const auto tail = read_tail(dir / "log", 100);
  CHECK(tail.size() <= 100);
  CHECK(tail.ends_with("line 999\n"));
  CHECK(tail.starts_with("line "));
  CHECK(text.ends_with(tail));
  CHECK(read_tail(dir / "log", 1u << 20) == text);
  CHECK(read_tail(dir / "missing", 100).empty());
}
