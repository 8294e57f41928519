#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>

#include "core/fs.hpp"

using namespace swarm;
namespace sfs = std::filesystem;

namespace {

std::vector<std::string> names_in(const sfs::path& dir)
{
  std::vector<std::string> names;
  for (const auto& entry : sfs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace

TEST_CASE("fs: write_file_atomic writes, replaces and leaves no temporary")
{
  fs::TempDir dir("swarm-fs");
  const auto path = dir / "Packages";
  REQUIRE(fs::write_file_atomic(path, "first"));
  CHECK(fs::read_file(path) == "first");
  REQUIRE(fs::write_file_atomic(path, "second, longer", 0640));
  CHECK(fs::read_file(path) == "second, longer");
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0640);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"Packages"});

  auto no_dir = fs::write_file_atomic(dir / "missing" / "x", "data");
  REQUIRE_FALSE(no_dir.has_value());
  CHECK(no_dir.error().kind == ErrorKind::io);
  CHECK(no_dir.error().message.find("No such file or directory") != std::string::npos);
}

TEST_CASE("fs: an abandoned AtomicFileWriter leaves the old file intact and no partial file")
{
  fs::TempDir dir("swarm-fs");
  const auto path = dir / "artifact.gpkg.tar";
  REQUIRE(fs::write_file_atomic(path, "old"));
  {
    auto writer = fs::AtomicFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE(writer->write("half of the new con"));
    CHECK(writer->bytes_written() == 19);
    CHECK(sfs::exists(writer->temp_path()));
    // destroyed without commit(): a failed download
  }
  CHECK(fs::read_file(path) == "old");
  CHECK(names_in(dir.path()) == std::vector<std::string>{"artifact.gpkg.tar"});

  auto writer = fs::AtomicFileWriter::create(dir / "new");
  REQUIRE(writer.has_value());
  REQUIRE(writer->write("complete"));
  CHECK_FALSE(sfs::exists(dir / "new")); // invisible until committed
  REQUIRE(writer->commit());
  CHECK(fs::read_file(dir / "new") == "complete");
}

TEST_CASE("fs: a concurrent reader never sees a partial atomic write")
{
  fs::TempDir dir("swarm-fs");
  const auto path = dir / "index";
  const std::string a(64 * 1024, 'a');
  const std::string b(64 * 1024, 'b');
  REQUIRE(fs::write_file_atomic(path, a));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done) {
      auto content = fs::read_file(path);
      if (!content || (*content != a && *content != b)) {
        ++bad;
      }
      ++reads;
    }
  });
  for (int i = 0; i < 40; ++i) {
    REQUIRE(fs::write_file_atomic(path, i % 2 == 0 ? b : a));
  }
  done = true;
  reader.join();
  CHECK(bad == 0);
  CHECK(reads > 0);
}

TEST_CASE("fs: replace_symlink_atomically never leaves the link missing")
{
  fs::TempDir dir("swarm-fs");
  REQUIRE(fs::make_dirs(dir / "releases" / "1"));
  REQUIRE(fs::make_dirs(dir / "releases" / "2"));
  REQUIRE(fs::write_file_atomic(dir / "releases" / "1" / "id", "1"));
  REQUIRE(fs::write_file_atomic(dir / "releases" / "2" / "id", "2"));
  const auto link = dir / "production";
  REQUIRE(fs::replace_symlink_atomically("releases/1", link)); // creates it
  CHECK(sfs::read_symlink(link) == "releases/1");
  CHECK(fs::read_file(link / "id") == "1");

  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done) {
      auto content = fs::read_file(link / "id");
      if (!content || (*content != "1" && *content != "2")) {
        ++bad;
      }
    }
  });
  for (int i = 0; i < 200; ++i) {
    REQUIRE(fs::replace_symlink_atomically(i % 2 == 0 ? "releases/2" : "releases/1", link));
  }
  done = true;
  reader.join();
  CHECK(bad == 0);
  CHECK(sfs::read_symlink(link) == "releases/1");
  // Only the link and the releases: no temporary link left behind.
  CHECK(names_in(dir.path()) == std::vector<std::string>{"production", "releases"});

  // A real directory in the way is an error, not silently replaced.
  REQUIRE(fs::make_dirs(dir / "busy"));
  auto onto_dir = fs::replace_symlink_atomically("releases/2", dir / "busy");
  CHECK_FALSE(onto_dir.has_value());
  CHECK(sfs::is_directory(sfs::symlink_status(dir / "busy")));
}

TEST_CASE("fs: hard links and their failures")
{
  fs::TempDir dir("swarm-fs");
  REQUIRE(fs::write_file_atomic(dir / "a", "payload"));
  REQUIRE(fs::hard_link(dir / "a", dir / "b"));
  struct stat a_info {};
  struct stat b_info {};
  REQUIRE(::stat((dir / "a").c_str(), &a_info) == 0);
  REQUIRE(::stat((dir / "b").c_str(), &b_info) == 0);
  CHECK(a_info.st_ino == b_info.st_ino);
  CHECK(a_info.st_nlink == 2);

  auto exists = fs::hard_link(dir / "a", dir / "b");
  REQUIRE_FALSE(exists.has_value());
  CHECK(exists.error().kind == ErrorKind::io);
  CHECK(exists.error().message.find("File exists") != std::string::npos);

  auto missing = fs::hard_link(dir / "nope", dir / "c");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("No such file or directory") != std::string::npos);

  // Across filesystems, when this machine has a second one at hand.
  struct stat shm {};
  if (::stat("/dev/shm", &shm) == 0 && shm.st_dev != a_info.st_dev && ::access("/dev/shm", W_OK) == 0) {
    const sfs::path other = fmt::format("/dev/shm/swarm-fs-test-{}", ::getpid());
    auto cross = fs::hard_link(dir / "a", other);
    REQUIRE_FALSE(cross.has_value());
    CHECK(cross.error().message.find("cross-device") != std::string::npos);
  }
}

TEST_CASE("fs: list_files_recursive lists regular files only, sorted, relative")
{
  fs::TempDir dir("swarm-fs");
  REQUIRE(fs::make_dirs(dir / "app-misc" / "foo"));
  REQUIRE(fs::make_dirs(dir / "dev-libs" / "bar"));
  REQUIRE(fs::write_file_atomic(dir / "Packages", "x"));
  REQUIRE(fs::write_file_atomic(dir / "dev-libs" / "bar" / "bar-1-1.gpkg.tar", "x"));
  REQUIRE(fs::write_file_atomic(dir / "app-misc" / "foo" / "foo-2-1.gpkg.tar", "x"));
  sfs::create_symlink("Packages", dir / "link-to-file");
  sfs::create_symlink("app-misc", dir / "link-to-dir");
  auto files = fs::list_files_recursive(dir.path());
  REQUIRE(files.has_value());
  CHECK(*files == std::vector<sfs::path>{"Packages", "app-misc/foo/foo-2-1.gpkg.tar", "dev-libs/bar/bar-1-1.gpkg.tar"});

  auto missing = fs::list_files_recursive(dir / "missing");
  CHECK_FALSE(missing.has_value());
}

TEST_CASE("fs: sizes, times, free space, directories and reads")
{
  fs::TempDir dir("swarm-fs");
  const auto path = dir / "f";
  REQUIRE(fs::write_file_atomic(path, "12345"));
  CHECK(fs::file_size(path) == 5u);
  struct timespec times[2] = {{1'600'000'000, 0}, {1'600'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
  auto mtime = fs::file_mtime(path);
  REQUIRE(mtime.has_value());
  CHECK(std::chrono::system_clock::to_time_t(*mtime) == 1'600'000'000);
  CHECK(fs::file_size(dir / "missing").error().kind == ErrorKind::not_found);
  CHECK(fs::file_mtime(dir / "missing").error().kind == ErrorKind::not_found);

  auto free_bytes = fs::free_disk_bytes(dir.path());
  REQUIRE(free_bytes.has_value());
  CHECK(*free_bytes > 0);
  CHECK_FALSE(fs::free_disk_bytes(dir / "missing").has_value());

  REQUIRE(fs::make_dirs(dir / "a" / "b" / "c"));
  REQUIRE(fs::make_dirs(dir / "a" / "b" / "c")); // already there
  CHECK(sfs::is_directory(dir / "a" / "b" / "c"));
  REQUIRE(fs::fsync_dir(dir / "a"));
  CHECK(fs::fsync_dir(dir / "missing").error().kind == ErrorKind::io);
  CHECK_FALSE(fs::make_dirs(path / "under-a-file").has_value());

  CHECK(fs::read_file(path, 4).error().kind == ErrorKind::too_large);
  CHECK(fs::read_file(dir / "missing").error().kind == ErrorKind::not_found);
  CHECK(fs::open_read(dir / "missing").error().kind == ErrorKind::not_found);
}

TEST_CASE("fs: TempDir removes itself and its content")
{
  sfs::path kept;
  {
    fs::TempDir dir("swarm-fs");
    kept = dir.path();
    REQUIRE(fs::make_dirs(dir / "x" / "y"));
    REQUIRE(fs::write_file_atomic(dir / "x" / "y" / "z", "data"));
    CHECK(sfs::is_directory(kept));
  }
  CHECK_FALSE(sfs::exists(kept));
}

TEST_CASE("fs: an exclusive lock is refused while another open file holds it")
{
  fs::TempDir dir("lock");
  auto first = fs::try_lock_exclusive(dir / "x.lock");
  REQUIRE(first.has_value());
  auto second = fs::try_lock_exclusive(dir / "x.lock");
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().kind == ErrorKind::conflict);
  first->reset();
  CHECK(fs::try_lock_exclusive(dir / "x.lock").has_value());
}
