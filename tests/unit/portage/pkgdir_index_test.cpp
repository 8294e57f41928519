#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "portage/pkgdir_index.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

void put_package(const std::filesystem::path& pkgdir, const std::string& pn, const std::string& pf, int build_id)
{
  GpkgContent content;
  content.dir_name = fmt::format("{}-{}", pf, build_id);
  content.metadata = {{"CATEGORY", "cat"}, {"PF", pf}, {"SLOT", "0"}, {"BUILD_ID", std::to_string(build_id)}};
  content.image["usr/share/x"] = {"x\n", 0644, TarEntryType::regular, ""};
  REQUIRE(fs::make_dirs(pkgdir / "cat" / pn).has_value());
  REQUIRE(write_gpkg(pkgdir / "cat" / pn / fmt::format("{}-{}.gpkg.tar", pf, build_id), content).has_value());
}

// Packages listing `paths` (as Portage writes it after each build).
void write_index(const std::filesystem::path& pkgdir, const std::vector<std::pair<std::string, std::string>>& entries,
                 bool gz)
{
  PackagesIndex index;
  index.header["VERSION"] = "0";
  for (const auto& [cpv, path] : entries) {
    // One key at a time: GCC 12 misreads the nested initializer list (-Wstringop-overflow).
    auto& block = index.packages.emplace_back();
    block["CPV"] = cpv;
    block["PATH"] = path;
    block["SIZE"] = "1";
    block["MTIME"] = "1";
  }
  if (gz) {
    REQUIRE(write_packages_files(pkgdir, index, 1).has_value());
  } else {
    REQUIRE(fs::write_file_atomic(pkgdir / "Packages", write_packages_index(index, {1})).has_value());
  }
}

std::vector<std::string> listed_paths(const std::string& text)
{
  std::vector<std::string> out;
  const auto index = read_packages_index(text).value();
  for (const auto& block : index.packages) {
    out.push_back(block.at("PATH"));
  }
  return out;
}

} // namespace

TEST_CASE("pkgdir index: entries without a file are dropped, files without an entry removed on request")
{
  fs::TempDir pkgdir("pkgdir-tidy");
  put_package(pkgdir.path(), "a", "a-1", 1);
  put_package(pkgdir.path(), "b", "b-2", 3);
  write_index(pkgdir.path(),
              {{"cat/a-1", "cat/a/a-1-1.gpkg.tar"},
               {"cat/b-2", "cat/b/b-2-3.gpkg.tar"},
               {"cat/gone-1", "cat/gone/gone-1-1.gpkg.tar"}},
              true);
  // What a killed build leaves: the empty file Portage allocates for the next BUILD_ID, and its
  // temporary (Portage: PF-N.gpkg.tar + random + .PID).
  REQUIRE(fs::write_file_atomic(pkgdir / "cat/a/a-1-2.gpkg.tar", "").has_value());
  REQUIRE(fs::write_file_atomic(pkgdir / "cat/a/a-1-2.gpkg.tarx8c1.4242", "partial").has_value());

  auto mode = RemoveStray::no;
  SUBCASE("entries only")
  {
    const auto tidy = tidy_pkgdir(pkgdir.path(), mode);
    REQUIRE(tidy.has_value());
    CHECK(tidy->dropped_entries == 1);
    CHECK(tidy->removed_files == 0);
    CHECK(std::filesystem::exists(pkgdir / "cat/a/a-1-2.gpkg.tar"));
  }
  SUBCASE("and stray files")
  {
    mode = RemoveStray::yes;
    const auto tidy = tidy_pkgdir(pkgdir.path(), mode);
    REQUIRE(tidy.has_value());
    CHECK(tidy->dropped_entries == 1);
    CHECK(tidy->removed_files == 2);
    CHECK_FALSE(std::filesystem::exists(pkgdir / "cat/a/a-1-2.gpkg.tar"));
    CHECK_FALSE(std::filesystem::exists(pkgdir / "cat/a/a-1-2.gpkg.tarx8c1.4242"));
    CHECK(std::filesystem::exists(pkgdir / "cat/a/a-1-1.gpkg.tar"));
  }
  const auto text = fs::read_file(pkgdir / "Packages").value();
  CHECK(listed_paths(text) == std::vector<std::string>{"cat/a/a-1-1.gpkg.tar", "cat/b/b-2-3.gpkg.tar"});
  CHECK(text.find("PACKAGES: 2\n") != std::string::npos);
  // Packages.gz says the same as Packages.
  const auto gz = fs::read_file(pkgdir / "Packages.gz").value();
  CHECK(gz.size() > 2);
  CHECK(static_cast<unsigned char>(gz[0]) == 0x1f);

  // A second pass (of the same kind) has nothing to do and writes nothing.
  const auto again = tidy_pkgdir(pkgdir.path(), mode);
  REQUIRE(again.has_value());
  CHECK(again->dropped_entries == 0);
  CHECK(again->removed_files == 0);
}

TEST_CASE("pkgdir index: without Packages every package file is stray; a broken Packages is left alone")
{
  fs::TempDir pkgdir("pkgdir-none");
  put_package(pkgdir.path(), "a", "a-1", 1);
  const auto tidy = tidy_pkgdir(pkgdir.path(), RemoveStray::yes);
  REQUIRE(tidy.has_value());
  CHECK(tidy->removed_files == 1);
  CHECK_FALSE(std::filesystem::exists(pkgdir / "Packages"));

  put_package(pkgdir.path(), "a", "a-1", 1);
  REQUIRE(fs::write_file_atomic(pkgdir / "Packages", "no version here\n").has_value());
  CHECK_FALSE(tidy_pkgdir(pkgdir.path(), RemoveStray::yes).has_value());
  CHECK(std::filesystem::exists(pkgdir / "cat/a/a-1-1.gpkg.tar"));
}

TEST_CASE("pkgdir index: the lock is Portage's fcntl lock, seen by another process")
{
  fs::TempDir pkgdir("pkgdir-lock");
  auto lock = PkgdirLock::acquire(pkgdir.path());
  REQUIRE(lock.has_value());
  // Portage's lockfile() tries a non-blocking fcntl (lockf) lock first: it must find ours held.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = ::open((pkgdir / ".Packages.portage_lockfile").c_str(), O_RDWR);
    struct flock request {};
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    const bool refused = fd >= 0 && ::fcntl(fd, F_SETLK, &request) != 0 && (errno == EAGAIN || errno == EACCES);
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
