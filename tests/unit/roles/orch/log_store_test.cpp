#include <doctest/doctest.h>

#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>

#include "core/fs.hpp"
#include "roles/orch/coordinator_fixture.hpp"
#include "roles/orch/log_store.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using swarm::test::CoordinatorFixture;

namespace {

void write_log(const std::filesystem::path& path, const std::string& text)
{
  std::ofstream(path, std::ios::binary) << text;
}

std::string log_text(size_t lines)
{
  std::string text;
  for (size_t i = 0; i < lines; ++i) {
    text += fmt::format(">>> line {} of the build of app-misc/p-1: compiling something.c\n", i);
  }
  return text;
}

} // namespace

TEST_CASE("log retention: older than keep_days first, then oldest until the rest fits, never a kept one")
{
  const double day = 86400;
  const double now = 100 * day;
  std::vector<LogFile> files{
    {1, 100, now - 40 * day, true}, // too old
    {2, 100, now - 35 * day, true}, // too old, but kept (a blocked package's)
    {3, 100, now - 5 * day, true},  {4, 100, now - 3 * day, true}, {5, 100, now - 1 * day, false},
  };
  LogRetention retention;
  retention.keep_days = 30;
  retention.max_bytes = 0;
  CHECK(logs_to_remove(files, {2}, now, retention) == std::vector<int64_t>{1});
  // 500 bytes on disk, 250 allowed: 1 (old) goes, 2 is kept, then 3 and 4 (oldest) until 200 remain.
  retention.max_bytes = 250;
  CHECK(logs_to_remove(files, {2}, now, retention) == std::vector<int64_t>{1, 3, 4});
  // No limit at all: nothing goes.
  retention = {0, 0};
  CHECK(logs_to_remove(files, {}, now, retention).empty());
  // Everything kept: nothing goes, whatever the size.
  retention.max_bytes = 1;
  CHECK(logs_to_remove(files, {1, 2, 3, 4, 5}, now, retention).empty());
}

TEST_CASE("log store: a log reads the same before and after compression, from any offset")
{
  fs::TempDir dir{"logs"};
  const LogStore logs(dir.path());
  const auto text = log_text(2000);
  write_log(logs.live_path(7), text);

  auto plain = logs.read(7, 1000, 500);
  REQUIRE(plain.has_value());
  CHECK(plain->exists);
  CHECK_FALSE(plain->compressed);
  CHECK(plain->size == text.size());
  CHECK(plain->text == text.substr(1000, 500));

  REQUIRE(logs.compress(7).has_value());
  CHECK_FALSE(std::filesystem::exists(logs.live_path(7)));
  REQUIRE(std::filesystem::exists(logs.compressed_path(7)));
  CHECK(std::filesystem::file_size(logs.compressed_path(7)) < text.size() / 4);

  for (const uint64_t offset : {uint64_t{0}, uint64_t{1000}, uint64_t{65535}, uint64_t{65536}, text.size() - 3}) {
    auto packed = logs.read(7, offset, 70000);
    REQUIRE(packed.has_value());
    CHECK(packed->compressed);
    CHECK(packed->size == text.size());
    CHECK(packed->text == text.substr(offset, 70000));
  }
  auto past = logs.read(7, text.size() + 10, 100);
  REQUIRE(past.has_value());
  CHECK(past->text.empty());
  // No log at all: nothing, and no error.
  auto none = logs.read(8, 0, 100);
  REQUIRE(none.has_value());
  CHECK_FALSE(none->exists);
  CHECK(logs.compress(8).has_value());
}

TEST_CASE("log store: the sweep compresses ended builds' logs and removes the oldest past the limit")
{
  fs::TempDir dir{"logs"};
  const LogStore logs(dir.path());
  const double now = 1'800'000'000;
  for (int64_t build = 1; build <= 4; ++build) {
    write_log(logs.live_path(build), log_text(200) + std::to_string(build));
    const timespec when{static_cast<time_t>(now) - 3600 * (10 - build), 0}; // 1 is the oldest
    const timespec times[2] = {when, when};
    REQUIRE(::utimensat(AT_FDCWD, logs.live_path(build).c_str(), times, 0) == 0);
  }
  write_log(dir / "notes.txt", "not a log");
  // Build 4 is running, build 1 is a blocked package's latest: both stay; 2 is the oldest other.
  LogRetention retention;
  retention.keep_days = 0;
  retention.max_bytes = 1; // as small as can be: everything that may go, goes
  auto swept = logs.sweep({4}, {1}, now, retention);
  CHECK(swept.compressed == 3);
  CHECK(swept.removed == 2);
  CHECK(std::filesystem::exists(logs.compressed_path(1)));
  CHECK_FALSE(std::filesystem::exists(logs.compressed_path(2)));
  CHECK_FALSE(std::filesystem::exists(logs.compressed_path(3)));
  CHECK(std::filesystem::exists(logs.live_path(4))); // running: neither compressed nor removed
  CHECK(std::filesystem::exists(dir / "notes.txt"));
  auto kept = logs.read(1, 0, 1u << 20);
  REQUIRE(kept.has_value());
  CHECK(kept->text == log_text(200) + "1");
}

TEST_CASE("coordinator: log keepers and the latest build; the plan by level says what waits for what")
{
  CoordinatorFixture f;
  f.submit(swarm::test::chain_plan());
  f.add_drone("d1");
  f.add_drone("d2");
  auto view = f.coordinator->plan_view("default");
  REQUIRE(view["levels"].size() == 3); // a and r; b; c
  CHECK(view["levels"][0]["total"] == 2);
  CHECK(view["levels"][2]["total"] == 1);
  CHECK(view["waiting_total"] == 2); // b waits for a and r, c for b
  bool c_waits_for_b = false;
  for (const auto& item : view["waiting"]) {
    if (item["cpv"] == "app-misc/c-1") {
      // b, and b's runtime dependency r (installing b needs it).
      for (const auto& need : item["waits_for"]) {
        c_waits_for_b = c_waits_for_b || (need["cpv"] == "dev-libs/b-1" && need["state"] == "needed");
      }
    }
  }
  CHECK(c_waits_for_b);

  net::Lease lease = f.claim("d1");
  if (lease.cpv == "dev-libs/r-1") {
    f.build(lease, "d1");
    lease = f.claim("d1");
  } else {
    f.build(f.claim("d2"), "d2");
  }
  REQUIRE(lease.cpv == "dev-libs/a-1");
  auto running = f.coordinator->latest_build("default", "dev-libs/a-1", "");
  REQUIRE(running.has_value());
  CHECK(running->ended == 0);
  CHECK(running->drone == "d1");
  CHECK(f.coordinator->log_keepers().running.contains(running->build));
  f.fail(lease, "d1");
  auto second = f.claim("d2");
  f.fail(second, "d2");
  REQUIRE(f.state_of("dev-libs/a-1") == "blocked");
  auto last = f.coordinator->latest_build("default", "dev-libs/a-1", "");
  REQUIRE(last.has_value());
  CHECK(last->result == "failure");
  CHECK(last->ended > 0);
  const auto keepers = f.coordinator->log_keepers();
  CHECK(keepers.running.empty());
  CHECK(keepers.keep == std::set<int64_t>{last->build});
  // The first build, pinned, is still d1's.
  auto first = f.coordinator->latest_build("default", "dev-libs/a-1", "", running->build);
  REQUIRE(first.has_value());
  CHECK(first->drone == "d1");
  CHECK_FALSE(f.coordinator->latest_build("default", "dev-libs/b-1", "", running->build).has_value());

  view = f.coordinator->plan_view("default");
  CHECK(view["blocked_total"] == 3); // a blocked, b and c dep-failed
  bool b_blamed_on_a = false;
  for (const auto& item : view["blocked"]) {
    if (item["cpv"] == "dev-libs/b-1") {
      b_blamed_on_a = item["state"] == "dep-failed" && item["blocked_by"] == nlohmann::json{"dev-libs/a-1"};
    }
  }
  CHECK(b_blamed_on_a);
}
