#include <doctest/doctest.h>

#include "core/mount_table.hpp"

using namespace swarm;

TEST_CASE("mount table: mountinfo lines, escapes, optional fields")
{
  const auto entries = mounts::parse_mountinfo(
    "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
    "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n"
    "21 26 0:20 / /proc rw,relatime - proc proc rw\n"
    "garbage without a separator\n"
    "\n");
  REQUIRE(entries.size() == 3);
  CHECK(entries[0] == mounts::MountEntry{"/", "ext4", "/dev/vda"});
  CHECK(entries[1] == mounts::MountEntry{"/mnt two", "ext3", "/dev/root"});
  CHECK(entries[2].fs_type == "proc");
  CHECK(mounts::is_virtual_fs("proc"));
  CHECK(mounts::is_virtual_fs("cgroup2"));
  CHECK_FALSE(mounts::is_virtual_fs("ext4"));
  CHECK_FALSE(mounts::is_virtual_fs("tmpfs"));

  // This process's own table has a root.
  const auto table = mounts::read_mount_table();
  REQUIRE(table.has_value());
  CHECK(std::any_of(table->begin(), table->end(), [](const auto& e) { return e.mount_point == "/"; }));
}
