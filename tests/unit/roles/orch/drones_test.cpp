#include <doctest/doctest.h>

#include <future>
#include <thread>

#include "core/hash.hpp"
#include "roles/orch/coordinator_fixture.hpp"
#include "roles/orch/drones.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using swarm::test::CoordinatorFixture;

namespace {

std::string hash_of(const std::string& token)
{
  return hash::hex_digest(hash::Algo::sha256, token);
}

} // namespace

TEST_CASE("drone tokens: a miss asks for a refresh, which reloads only when the generation moved")
{
  int asked = 0;
  int reloaded = 0;
  std::string generation = "g1";
  std::vector<std::pair<std::string, std::string>> enrolled{{hash_of("swd_a"), "a"}};
  DroneTokens tokens([&](const std::string& known) -> std::optional<DroneTokens::Snapshot> {
    ++asked;
    if (known == generation) {
      return std::nullopt;
    }
    ++reloaded;
    return DroneTokens::Snapshot{generation, enrolled};
  });
  tokens.replace({"g1", enrolled});
  CHECK(tokens.drone_for("swd_a") == "a");
  CHECK(asked == 0);
  for (int i = 0; i < 100; ++i) {
    CHECK_FALSE(tokens.drone_for("swd_bad" + std::to_string(i)).has_value());
  }
  CHECK(asked == 100);
  CHECK(reloaded == 0); // bad tokens never re-read the enrolled drones
  // Another process enrolls b: the next miss reloads once.
  enrolled.emplace_back(hash_of("swd_b"), "b");
  generation = "g2";
  CHECK(tokens.drone_for("swd_b") == "b");
  CHECK(reloaded == 1);
  // Re-keying replaces the old token.
  tokens.set(hash_of("swd_a2"), "a", "g3");
  CHECK(tokens.drone_for("swd_a2") == "a");
  CHECK_FALSE(tokens.drone_for_hash(hash_of("swd_a")).has_value());
}

TEST_CASE("drones: names, states and why a drone gets no work")
{
  CHECK(is_valid_drone_name("builder-1.lan_2"));
  CHECK_FALSE(is_valid_drone_name(""));
  CHECK_FALSE(is_valid_drone_name("a/b"));
  CHECK_FALSE(is_valid_drone_name(std::string(65, 'a')));

  DroneRegistry drones(5, 300);
  DroneRow row;
  row.id = 7;
  row.name = "d1";
  row.slots = 2;
  row.online = true;
  row.tree_timestamp = "T1";
  auto& drone = drones.add(row);
  CHECK(drones.find(int64_t{7}) == &drone);
  CHECK(drones.find(std::string_view("d1")) == &drone);
  CHECK(drones.name_of(7) == "d1");
  CHECK(drone.state(0) == "online");
  CHECK_FALSE(block_of(drone, false, "T1", 1, 0));
  CHECK(block_of(drone, true, "T1", 0, 0).code == net::ClaimCode::paused);
  CHECK(block_of(drone, false, "T2", 0, 0).code == net::ClaimCode::tree_mismatch);
  CHECK(block_of(drone, false, "T1", 2, 0).code == net::ClaimCode::slots_full);
  drone.breaker.trip(100);
  CHECK(block_of(drone, false, "T1", 0, 200).code == net::ClaimCode::grounded);
  CHECK(drone.state(200) == "grounded");
  // After the cool-down: probation, one package at a time.
  CHECK(drone.state(500) == "probation");
  CHECK_FALSE(block_of(drone, false, "T1", 0, 500));
  CHECK(block_of(drone, false, "T1", 1, 500).code == net::ClaimCode::probation);
}

TEST_CASE("coordinator: token lookups never wait for the coordinator's lock")
{
  CoordinatorFixture f;
  const auto token = f.add_drone("d1");
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  bool first = true;
  f.store->set_write_hook([&](std::string_view) {
    if (first) {
      first = false;
      entered.set_value();
      released.wait(); // inside a transaction, under the coordinator's lock
    }
  });
  std::thread holder([&] { (void)f.coordinator->set_paused(true); });
  entered.get_future().wait();
  // Would deadlock (and the test time out) if a lookup took the coordinator's lock.
  CHECK(f.coordinator->drone_for_token(token) == "d1");
  CHECK_FALSE(f.coordinator->drone_for_token("swd_wrong").has_value());
  release.set_value();
  holder.join();
  f.store->set_write_hook({});
  CHECK(f.coordinator->paused());
}

TEST_CASE("coordinator: a drone enrolled by another process is known at its first call")
{
  CoordinatorFixture f;
  auto second = Store::open((f.dir.path() / "state.db").string());
  REQUIRE(second.has_value());
  auto* reader = second->get();
  int reloads = 0;
  f.options.token_refresh = [reader, &reloads](const std::string& known) -> std::optional<DroneTokens::Snapshot> {
    auto generation = reader->get_meta("drones.generation").value_or("");
    if (generation == known) {
      return std::nullopt;
    }
    ++reloads;
    DroneTokens::Snapshot snapshot{generation, {}};
    for (const auto& row : reader->load_drones()) {
      snapshot.tokens.emplace_back(row.token_hash, row.name);
    }
    return snapshot;
  };
  f.open();
  f.add_drone("d1");
  CHECK_FALSE(f.coordinator->drone_for_token("swd_unknown").has_value());
  CHECK(reloads == 0);

  // `swarm drone enroll d2` beside the running orchestrator.
  std::string token;
  {
    auto cli_store = Store::open((f.dir.path() / "state.db").string());
    REQUIRE(cli_store.has_value());
    Coordinator cli(**cli_store, f.options);
    REQUIRE(cli.load(Coordinator::LoadMode::inspect).has_value());
    token = *cli.enroll("d2");
  }
  CHECK(f.coordinator->drone_for_token(token) == "d2");
  CHECK(reloads == 1);
  net::RegisterRequest hello;
  hello.name = "d2";
  hello.slots = 1;
  REQUIRE(f.coordinator->register_drone("d2", hello).has_value());
  // And re-enrolling d1 from the CLI retires its old token here too.
  const auto old_token = f.add_drone("d3");
  {
    auto cli_store = Store::open((f.dir.path() / "state.db").string());
    Coordinator cli(**cli_store, f.options);
    REQUIRE(cli.load(Coordinator::LoadMode::inspect).has_value());
    token = *cli.enroll("d3");
  }
  CHECK(f.coordinator->drone_for_token(token) == "d3");
  CHECK_FALSE(f.coordinator->drone_for_token(old_token).has_value());
  // The daemon saving d3 (a heartbeat) must not bring the old token back.
  REQUIRE(f.coordinator->heartbeat("d3", net::HeartbeatRequest{}).has_value());
  f.open();
  CHECK(f.coordinator->drone_for_token(token) == "d3");
  CHECK_FALSE(f.coordinator->drone_for_token(old_token).has_value());
}
