#include <doctest/doctest.h>

#include "roles/orch/coordinator_fixture.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using nlohmann::json;
using swarm::test::CoordinatorFixture;
using swarm::test::flat_plan;

namespace {

portage::BuildProfile desktop_profile()
{
  portage::BuildProfile profile;
  profile.settings = {{"CHOST", "x86_64-pc-linux-gnu"}, {"CFLAGS", "-O2 -pipe"}, {"USE", "X wayland"}};
  profile.make_profile_repo = "gentoo";
  profile.make_profile = "default/linux/amd64/23.0/desktop";
  profile.files["package.use/desktop"] = "app-misc/p0 ssl\n";
  profile.repositories = {{"gentoo", "T1"}};
  return profile;
}

json profile_entry(Coordinator& coordinator, const std::string& name)
{
  for (const auto& entry : coordinator.profiles_view()) {
    if (entry["name"] == name) {
      return entry;
    }
  }
  return json();
}

} // namespace

TEST_CASE("profiles: two profiles build at once on shared drones, each with its own staging and plan")
{
  CoordinatorFixture f;
  f.submit(flat_plan(2));
  auto server = flat_plan(2); // the same packages, another profile: built separately
  const auto profile = desktop_profile();
  REQUIRE(f.coordinator->submit_plan(server, net::PlanMode::replace, false, "server", profile).has_value());
  f.add_drone("d1", 4);
  std::map<std::string, std::vector<net::Lease>> by_profile;
  for (int i = 0; i < 4; ++i) {
    auto lease = f.claim("d1");
    by_profile[lease.profile].push_back(lease);
  }
  REQUIRE(by_profile["default"].size() == 2);
  REQUIRE(by_profile["server"].size() == 2);
  const auto& server_lease = by_profile["server"].front();
  CHECK(server_lease.profile_hash == portage::build_profile_hash(profile));
  CHECK(server_lease.staging_url == "http://127.0.0.1:1/p/server/staging/test");
  CHECK(by_profile["default"].front().profile_hash.empty());
  CHECK(by_profile["default"].front().staging_url == "http://127.0.0.1:1/staging/test");
  for (const auto& [name, leases] : by_profile) {
    for (const auto& lease : leases) {
      f.build(lease, "d1");
    }
  }
  // Same CPV, two artifacts: one in each profile's staging.
  CHECK(std::filesystem::exists(f.staging() / "app-misc/p0/p0-1-1.gpkg.tar"));
  CHECK(std::filesystem::exists(f.dir.path() / "profiles/server/staging/app-misc/p0/p0-1-1.gpkg.tar"));
  CHECK(f.coordinator->status("server")["counts"]["received"] == 2);
  CHECK(f.coordinator->status("default")["counts"]["received"] == 2);
  CHECK(f.coordinator->received_packages("server").size() == 2);
  CHECK(profile_entry(*f.coordinator, "server")["build_profile"] == portage::build_profile_hash(profile));
  // The build profile is served by its hash, as stored.
  auto stored = f.coordinator->build_profile(portage::build_profile_hash(profile));
  REQUIRE(stored.has_value());
  CHECK(*portage::build_profile_from_json(json::parse(*stored)) == profile);
  CHECK(f.coordinator->build_profile(std::string(64, '0')).error().kind == ErrorKind::not_found);

  // Replacing one profile's plan leaves the other alone.
  auto reply = f.coordinator->submit_plan(flat_plan(1), net::PlanMode::replace, true, "server", profile);
  REQUIRE(reply.has_value());
  CHECK(reply->removed == 1);
  CHECK(f.coordinator->status("default")["counts"]["total"] == 2);
  CHECK(f.coordinator->status("server")["counts"]["total"] == 1);
  CHECK(std::filesystem::exists(f.staging() / "app-misc/p1/p1-1-1.gpkg.tar"));
  CHECK_FALSE(std::filesystem::exists(f.dir.path() / "profiles/server/staging/app-misc/p1/p1-1-1.gpkg.tar"));
  // A restart keeps both.
  f.open();
  CHECK(f.coordinator->status("server")["counts"]["received"] == 1);
  CHECK(f.coordinator->status("default")["counts"]["received"] == 2);
  CHECK(f.coordinator->state_dump() == f.fresh_dump());
}

TEST_CASE("profiles: a drone builds only the profiles it serves, and a refused profile goes elsewhere")
{
  CoordinatorFixture f;
  f.submit(flat_plan(1));
  REQUIRE(f.coordinator->submit_plan(flat_plan(1), net::PlanMode::replace, false, "server").has_value());
  REQUIRE(f.coordinator->enroll("only-server").has_value());
  net::RegisterRequest hello;
  hello.name = "only-server";
  hello.slots = 2;
  hello.profiles = {"server"};
  REQUIRE(f.coordinator->register_drone("only-server", hello).has_value());
  auto lease = f.claim("only-server");
  CHECK(lease.profile == "server");
  const auto none = f.no_claim("only-server");
  CHECK(none.code == net::ClaimCode::left_for_other_drones);
  CHECK(none.reason.find("does not build for profile default") != std::string::npos);

  // It cannot honour the server profile after all: refused, back in the queue, not counted.
  REQUIRE(
    f.coordinator->refuse(lease.id, "only-server", {"repository_missing", "no repository 'overlay'"}).has_value());
  CHECK(f.coordinator->package_view("server", "app-misc/p0-1")->at("state") == "needed");
  CHECK(f.coordinator->package_view("server", "app-misc/p0-1")->at("failures") == 0);
  const auto refused = f.no_claim("only-server");
  CHECK(refused.reason.find("refused profile server") != std::string::npos);
  CHECK(f.coordinator->drones_view()[0]["refused"]["server"] == "repository_missing: no repository 'overlay'");
  // Another drone takes it; registering again clears the refusal.
  f.add_drone("any", 2);
  const std::set<std::string> profiles{f.claim("any").profile, f.claim("any").profile};
  CHECK(profiles == std::set<std::string>{"default", "server"});
  REQUIRE(f.coordinator->register_drone("only-server", hello).has_value());
  CHECK(f.coordinator->drones_view()[1]["refused"].empty());
}

TEST_CASE("profiles: a mis-built artifact is refused, counted against the drone, never against the package")
{
  CoordinatorFixture f;
  f.submit(flat_plan(1));
  f.add_drone("d1", 1);
  auto lease = f.claim("d1");
  auto ticket = f.coordinator->begin_upload(lease.id, "d1");
  REQUIRE(ticket.has_value());
  CHECK(ticket->incoming_dir == f.staging() / ".incoming");
  REQUIRE(
    f.coordinator->reject_artifact(lease.id, "d1", {"USE: ssl was asked for but the package was built without it"})
      .has_value());
  const auto view = *f.coordinator->package_view("default", lease.cpv);
  CHECK(view["state"] == "needed");
  CHECK(view["failures"] == 0);
  CHECK(f.coordinator->drones_view()[0]["consecutive_failures"] == 1);
  CHECK_FALSE(std::filesystem::exists(f.staging() / "app-misc"));
}

TEST_CASE("profiles: names are checked, and the default profile needs no name")
{
  CoordinatorFixture f;
  CHECK(f.coordinator->submit_plan(flat_plan(1), net::PlanMode::replace, false, "../x").error().kind ==
        ErrorKind::invalid);
  CHECK(f.coordinator->submit_plan(flat_plan(1), net::PlanMode::replace, false, "").error().kind == ErrorKind::invalid);
  f.submit(flat_plan(1));
  CHECK(f.coordinator->status()["profile"] == "default");
  CHECK(f.coordinator->status()["profiles"] == json::array({"default"}));
}

TEST_CASE("profiles: a build profile that builds differently rebuilds what was built; other changes do not")
{
  CoordinatorFixture f;
  auto profile = desktop_profile();
  REQUIRE(f.coordinator->submit_plan(flat_plan(2), net::PlanMode::replace, false, "desktop", profile).has_value());
  f.add_drone("d1", 2);
  f.build(f.claim("d1"), "d1");
  f.build(f.claim("d1"), "d1");
  CHECK(f.coordinator->status("desktop")["counts"]["received"] == 2);
  // ACCEPT_LICENSE or a package.use file change no binary by themselves (USE shows per package).
  profile.settings["ACCEPT_LICENSE"] = "@FREE";
  profile.files["package.use/more"] = "app-misc/other x\n";
  auto same = f.coordinator->submit_plan(flat_plan(2), net::PlanMode::replace, false, "desktop", profile);
  REQUIRE(same.has_value());
  CHECK(same->changed);
  CHECK(same->reset == 0);
  CHECK(f.coordinator->status("desktop")["counts"]["received"] == 2);
  // New CFLAGS: everything is built again.
  profile.settings["CFLAGS"] = "-O3 -pipe";
  auto flags = f.coordinator->submit_plan(flat_plan(2), net::PlanMode::replace, false, "desktop", profile);
  REQUIRE(flags.has_value());
  CHECK(flags->reset == 2);
  CHECK(f.coordinator->status("desktop")["counts"]["received"] == 0);
  CHECK(f.claim("d1").profile_hash == portage::build_profile_hash(profile));
}
