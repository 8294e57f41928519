#include <doctest/doctest.h>

#include "core/fs.hpp"
#include "roles/orch/store.hpp"

using namespace swarm;
using namespace swarm::roles::orch;

TEST_CASE("store: a second connection's writes are seen at once, and writing after them works")
{
  // `swarm drone enroll` writes into the database of a running orchestrator. Single-row reads
  // (meta, a lease, the last event id) must not leave the orchestrator's connection on an old
  // snapshot: it would miss the new drone and fail its next write with SQLITE_BUSY.
  fs::TempDir dir;
  const auto path = (dir.path() / "state.db").string();
  auto daemon = Store::open(path);
  REQUIRE(daemon.has_value());
  (*daemon)->set_meta("orch_id", "abc");
  CHECK((*daemon)->get_meta("orch_id") == "abc");
  CHECK((*daemon)->get_lease("nothing") == std::nullopt);
  CHECK((*daemon)->last_event_id() == 0);

  auto cli = Store::open(path);
  REQUIRE(cli.has_value());
  DroneRow row;
  row.name = "late";
  row.token_hash = std::string(64, 'a');
  REQUIRE((*cli)->transaction([&] { (*cli)->save_drone(row); }).has_value());

  const auto drones = (*daemon)->load_drones();
  REQUIRE(drones.size() == 1);
  CHECK(drones[0].name == "late");
  EventRow event;
  event.kind = "probe";
  int64_t id = 0;
  CHECK((*daemon)->transaction([&] { id = (*daemon)->add_event(event); }).has_value());
  CHECK(id > 0);
  CHECK((*daemon)->last_event_id() == id);
}
