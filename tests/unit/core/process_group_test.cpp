#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <memory>

#include <unistd.h>

#include "core/process_group.hpp"
#include "core/subprocess.hpp"
#include "support.hpp"

using namespace swarm;
using namespace std::chrono_literals;

namespace {

// A real process group of two sleeps, as an emerge and its children would be: the leader
// (subprocess puts every child in a group of its own) and one it started.
struct SleepingGroup {
  std::shared_ptr<bool> started = std::make_shared<bool>(false);
  subprocess::Process process;
  process_group::Record record;

  explicit SleepingGroup(subprocess::Process p, std::shared_ptr<bool> flag)
      : started(std::move(flag)), process(std::move(p))
  {
    const pid_t pid = process.pid();
    const auto ticks = process_group::start_ticks(pid);
    REQUIRE(ticks.has_value());
    record = {pid, *ticks, process_group::current_boot_id()};
    // The line comes after the background sleep was forked: then the group has both.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!*started && std::chrono::steady_clock::now() < deadline) {
      REQUIRE_FALSE(process.wait_until(std::chrono::steady_clock::now() + 50ms).has_value());
    }
    REQUIRE(*started);
  }

  static SleepingGroup start()
  {
    auto flag = std::make_shared<bool>(false);
    subprocess::Spec spec;
    spec.argv = {"sh", "-c", "sleep 600 & echo started; exec sleep 600"};
    spec.on_line = [flag](std::string_view line) { *flag = *flag || line == "started"; };
    auto process = subprocess::Process::spawn(spec);
    REQUIRE(process.has_value());
    return SleepingGroup(std::move(*process), flag);
  }
};

} // namespace

TEST_CASE("process group: the record's text form")
{
  const process_group::Record record{4242, 123456789, "6f797d1b-ee02-4def-abbd-ad198a6abf86"};
  CHECK(process_group::to_text(record) == "4242 123456789 6f797d1b-ee02-4def-abbd-ad198a6abf86\n");
  CHECK(process_group::from_text(process_group::to_text(record)).value() == record);
  for (const auto* bad : {"", "4242 1", "x 1 b", "4242 1 b extra", "1 5 b", "-3 5 b"}) {
    CAPTURE(bad);
    CHECK_FALSE(process_group::from_text(bad).has_value());
  }
}

TEST_CASE("process group: a recorded group left running is found and ended, the whole of it")
{
  auto group = SleepingGroup::start();
  const auto members = process_group::members(group.record);
  REQUIRE(members.size() == 2);
  CHECK(std::find(members.begin(), members.end(), group.record.pgid) != members.end());

  const auto ended = process_group::end_group(group.record, 10s);
  REQUIRE(ended.has_value());
  CHECK(*ended == 2);
  CHECK(process_group::members(group.record).empty());
  for (const auto pid : members) {
    CHECK(swarm::test::process_gone(pid));
  }
  const auto outcome = group.process.wait_until(std::nullopt);
  REQUIRE(outcome.has_value());
  CHECK(outcome->signal == SIGKILL);
}

TEST_CASE("process group: a record never names a process it did not record")
{
  auto group = SleepingGroup::start();
  // Another boot's record, and a record whose leader started at another time (the number was
  // reused by a process that is not the recorded one): neither may kill the live group.
  auto other_boot = group.record;
  other_boot.boot_id = "00000000-0000-0000-0000-000000000000";
  CHECK(process_group::members(other_boot).empty());
  auto reused = group.record;
  reused.start_ticks -= 1;
  CHECK(process_group::members(reused).empty());
  CHECK(process_group::end_group(reused, 1s).value() == 0);
  CHECK_FALSE(swarm::test::process_gone(group.record.pgid));
  // A group that is gone: nothing to do.
  group.process.kill(0ms);
  CHECK(process_group::end_group(group.record, 1s).value() == 0);
}

TEST_CASE("process group: the calling process's own record needs it to lead its group")
{
  const auto self = process_group::self_record();
  if (::getpgrp() == ::getpid()) {
    REQUIRE(self.has_value());
    CHECK(self->pgid == ::getpid());
    CHECK(self->start_ticks == process_group::start_ticks(::getpid()).value());
  } else {
    CHECK_FALSE(self.has_value());
  }
}
