#include <doctest/doctest.h>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

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

TEST_CASE("spool: a state file written by the previous version still reads")
{
  fs::TempDir dir("spool-old");
  Spool spool(dir / "spool");
  REQUIRE(spool.prepare().has_value());
  REQUIRE(fs::make_dirs(spool.work_dir("9f8e7d")).has_value());
  // Exactly what the drone wrote before the protocol header: expires_at an integer.
  const auto old_file = R"({
 "artifact": "foo-1.0-3.gpkg.tar",
 "duration_seconds": 12.5,
 "lease": {
  "cpv": "dev-libs/foo-1.0",
  "deps": ["sys-libs/zlib-1.3"],
  "expected_seconds": 30.0,
  "expires_at": 1700000123,
  "id": "9f8e7d",
  "repo": "gentoo",
  "slot": "0",
  "staging_url": "http://127.0.0.1:1/staging/abc",
  "tree_timestamp": "Mon, 01 Jan 2024 00:00:00 +0000",
  "use": ["ssl"]
 },
 "phase": "built",
 "reason": "",
 "sha256": "aa",
 "size": 10240,
 "started_at": 1700000000,
 "xxh3_128": "bb"
}
)";
  REQUIRE(fs::write_file_atomic(spool.state_path("9f8e7d"), old_file, 0600).has_value());
  const auto state = spool.load("9f8e7d");
  REQUIRE(state.has_value());
  CHECK(state->phase == LeasePhase::built);
  CHECK(state->lease.id == "9f8e7d");
  CHECK(state->lease.cpv == "dev-libs/foo-1.0");
  CHECK(state->lease.expires_at == 1700000123.0);
  CHECK(state->lease.deps == std::vector<std::string>{"sys-libs/zlib-1.3"});
  CHECK(state->lease.use == std::vector<std::string>{"ssl"});
  CHECK(state->lease.staging_url == "http://127.0.0.1:1/staging/abc");
  CHECK(state->started_at == 1700000000);
  CHECK(state->duration_seconds == 12.5);
  CHECK(state->size == 10240);
  CHECK(spool.artifact_path(*state) == spool.work_dir("9f8e7d") / "foo-1.0-3.gpkg.tar");
  // Saved again, it reads back the same.
  REQUIRE(spool.save(*state).has_value());
  CHECK(lease_state_to_json(spool.load("9f8e7d").value()) == lease_state_to_json(*state));
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
  // A lease the protocol refuses is an error value, not an exception.
  state_json["lease"] = {{"id", "L1"}, {"cpv", "a/b-1"}, {"use", "ssl"}};
  Result<LeaseState> read;
  CHECK_NOTHROW(read = lease_state_from_json(state_json));
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().message == "field 'use' must be a list of strings");
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
