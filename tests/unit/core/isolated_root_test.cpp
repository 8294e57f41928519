#include <doctest/doctest.h>

#include <fstream>

#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/isolated_root.hpp"
#include "core/mount_table.hpp"

using namespace swarm;
using namespace swarm::isolation;

namespace {

bool can_isolate()
{
  if (::geteuid() != 0) {
    return false;
  }
  const auto text = fs::read_file("/proc/filesystems").value_or("");
  return text.find("\toverlay\n") != std::string::npos;
}

bool is_mounted_below(const std::filesystem::path& dir)
{
  const auto table = mounts::read_mount_table();
  REQUIRE(table.has_value());
  return std::any_of(table->begin(), table->end(),
                     [&](const auto& entry) { return entry.mount_point.string().starts_with(dir.string()); });
}

} // namespace

TEST_CASE("isolated root: overlay options and what a spec must be")
{
  Layer layer{"/", "/", "/spool/roots/l1/upper/root", "/spool/roots/l1/work/root"};
  CHECK(overlay_options(layer).value() ==
        "lowerdir=/,upperdir=/spool/roots/l1/upper/root,workdir=/spool/roots/l1/work/root");
  for (const auto* bad : {"/a,b", "/a:b", "/a\\b", "/a b"}) {
    CAPTURE(bad);
    CHECK_FALSE(overlay_options(Layer{bad, "/", "/u", "/w"}).has_value());
  }

  RootSpec spec{"/spool/roots/l1/merged", {layer}, {{"/proc", "/proc", Access::read_write, Recursive::yes}}};
  CHECK(validate(spec).has_value());
  auto relative = spec;
  relative.merged = "spool/merged";
  CHECK_FALSE(validate(relative).has_value());
  auto no_root_layer = spec;
  no_root_layer.layers[0].at = "/var";
  CHECK_FALSE(validate(no_root_layer).has_value());
  auto climbing = spec;
  climbing.binds.push_back({"/srv/repo", "/srv/../etc", Access::read_only, Recursive::no});
  CHECK_FALSE(validate(climbing).has_value());
  CHECK_FALSE(validate(RootSpec{"/m", {}, {}}).has_value());
}

TEST_CASE("isolated root: binds are mounted parents first")
{
  const std::vector<Bind> binds{{"/x/a/b", "/a/b"}, {"/x/c", "/c"}, {"/x/a", "/a"}, {"/x/a/b/c", "/a/b/c"}};
  std::vector<std::filesystem::path> order;
  for (const auto& bind : mount_order(binds)) {
    order.push_back(bind.at);
  }
  CHECK(order == std::vector<std::filesystem::path>{"/c", "/a", "/a/b", "/a/b/c"});
}

TEST_CASE("isolated root: changes land in the upper layer, binds reach the host, nothing stays mounted")
{
  if (!can_isolate()) {
    MESSAGE("skipped: needs root and overlayfs");
    return;
  }
  fs::TempDir dir("isolated-root");
  REQUIRE(fs::make_dirs(dir / "base/etc").has_value());
  REQUIRE(fs::write_file_atomic(dir / "base/etc/os-release", "base\n").has_value());
  REQUIRE(fs::make_dirs(dir / "shared").has_value());
  REQUIRE(fs::make_dirs(dir / "readonly").has_value());
  REQUIRE(fs::make_dirs(dir / "merged").has_value());
  // A symlink in the base must not lead a mount out of the root.
  std::filesystem::create_directory_symlink("/", dir / "base/escape");

  const RootSpec spec{dir / "merged",
                      {{dir / "base", "/", dir / "upper", dir / "work"}},
                      {{dir / "shared", "/mnt/shared", Access::read_write, Recursive::no},
                       {dir / "readonly", "/mnt/readonly", Access::read_only, Recursive::no}}};
  // The child is single-threaded: it enters the root and reports through its exit status.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int status = 0;
    if (!enter(spec)) {
      ::_exit(10);
    }
    if (fs::read_file("/etc/os-release").value_or("") != "base\n") {
      status |= 1;
    }
    if (!fs::write_file_atomic("/etc/os-release", "changed\n") || !fs::write_file_atomic("/new-file", "new\n")) {
      status |= 2;
    }
    if (!fs::write_file_atomic("/mnt/shared/out", "to the host\n")) {
      status |= 4;
    }
    if (fs::write_file_atomic("/mnt/readonly/out", "x")) {
      status |= 8;
    }
    ::_exit(status);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(fs::read_file(dir / "base/etc/os-release").value() == "base\n");
  CHECK_FALSE(std::filesystem::exists(dir / "base/new-file"));
  CHECK(fs::read_file(dir / "upper/etc/os-release").value() == "changed\n");
  CHECK(fs::read_file(dir / "upper/new-file").value() == "new\n");
  CHECK(fs::read_file(dir / "shared/out").value() == "to the host\n");
  CHECK_FALSE(std::filesystem::exists(dir / "readonly/out"));
  CHECK_FALSE(is_mounted_below(dir.path()));

  // A bind whose mount point passes through a symlink of the base is refused: followed, the
  // link (to the host's /) would create `escaped` in this test's directory on the host.
  const auto escaped = dir.path() / "escaped";
  const RootSpec escaping{dir / "merged",
                          {{dir / "base", "/", dir / "upper2", dir / "work2"}},
                          {{dir / "shared", "/escape" / escaped.relative_path(), Access::read_write, Recursive::no}}};
  const pid_t second = ::fork();
  REQUIRE(second >= 0);
  if (second == 0) {
    const auto entered = enter(escaping);
    ::_exit(!entered && entered.error().message.find("is a symlink") != std::string::npos ? 0 : 1);
  }
  REQUIRE(::waitpid(second, &status, 0) == second);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(std::filesystem::exists(escaped));
  CHECK_FALSE(is_mounted_below(dir.path()));
}
