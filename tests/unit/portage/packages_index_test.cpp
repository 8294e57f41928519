#include <doctest/doctest.h>

#include "support.hpp"

#include <filesystem>

#include <sys/stat.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "portage/compression.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

std::string read_text(const std::filesystem::path& path)
{
  auto text = fs::read_file(path);
  REQUIRE(text.has_value());
  return *text;
}

PackagesIndex read_index(std::string_view text)
{
  auto index = read_packages_index(text);
  REQUIRE(index.has_value());
  return *index;
}

const IndexBlock* find_cpv(const PackagesIndex& index, const std::string& cpv)
{
  for (const auto& package : index.packages) {
    if (package.at("CPV") == cpv) {
      return &package;
    }
  }
  return nullptr;
}

int64_t timestamp_of(const PackagesIndex& index)
{
  return std::stoll(index.header.at("TIMESTAMP"));
}

} // namespace

TEST_CASE("packages_index: a real Portage-written index reads and writes back byte for byte")
{
  const auto text = read_text(swarm::test::portage_data("binhost-257/Packages"));
  const auto index = read_index(text);
  CHECK(index.packages.size() == 161);
  CHECK(index.header.at("VERSION") == "0");
  const auto* adm = find_cpv(index, "acct-group/adm-0-r2");
  REQUIRE(adm != nullptr);
  CHECK(adm->at("PATH") == "acct-group/adm/adm-0-r2-1.xpak");
  CHECK(adm->at("MTIME") == "1689961408");
  CHECK(adm->at("REPO") == "gentoo");
  CHECK(adm->at("CHOST") == "x86_64-pc-linux-gnu"); // inherited from the header
  CHECK(adm->at("SLOT") == "0");                    // default
  CHECK(adm->at("EAPI") == "7");
  CHECK(write_packages_index(index, {timestamp_of(index)}) == text);
}

TEST_CASE("packages_index: the desktop workload's index reads and writes back in Portage's form")
{
  // This index was not written by Portage's PackageIndex.write: its header is in a hand-made
  // order (VERSION, TIMESTAMP, PACKAGES, URI first) and every package repeats CHOST although it
  // equals the header's, after REPO. Portage would write the header sorted and omit those CHOST
  // lines, so the bytes cannot match; what must hold is that nothing is lost and that our output
  // is a fixed point.
  const auto text =
    read_text(std::filesystem::path(SWARM_SOURCE_DIR) / "data" / "workloads" / "kde-desktop" / "Packages");
  const auto index = read_index(text);
  CHECK(index.packages.size() == 948);
  CHECK(index.header.at("URI") == "https://github.com/naelolaiz/gentoo-binhost/releases/download");
  const auto written = write_packages_index(index, {timestamp_of(index)});
  CHECK(written != text);
  const auto again = read_index(written);
  CHECK(again.header == index.header);
  CHECK(again.packages.size() == index.packages.size());
  for (const auto& package : index.packages) {
    const auto* same = find_cpv(again, package.at("CPV"));
    REQUIRE(same != nullptr);
    CHECK(*same == package);
  }
  CHECK(write_packages_index(again, {timestamp_of(again)}) == written);
  CHECK(written.starts_with("ACCEPT_KEYWORDS: amd64 ~amd64\n"));
  CHECK(written.find("\nCHOST: x86_64-pc-linux-gnu\n\n") == std::string::npos);
  CHECK(written.size() < text.size());
}

TEST_CASE("packages_index: reader follows Portage's PackageIndex")
{
  const auto index = read_index("VERSION: 0\nCHOST: x86_64-pc-linux-gnu\nREPO: gentoo\nnot a key line\n\n"
                                "CPV: a/b-1\nKEY:value\nSLOT: 1\nSLOT: 2\nEMPTY:\n\n"
                                "PATH: no-cpv/here\n\n"
                                "CPV: a/c-1\nCHOST: other\nREPO: local\n\n\n"
                                "CPV: after/two-blank-lines-1\n\n");
  REQUIRE(index.packages.size() == 2);
  const auto& first = index.packages[0];
  CHECK(first.at("KEY") == "alue"); // exactly one character after ':' is dropped
  CHECK(first.at("SLOT") == "2");   // last duplicate wins
  CHECK(first.at("EMPTY").empty());
  CHECK(first.at("EAPI") == "0");
  CHECK(first.at("CHOST") == "x86_64-pc-linux-gnu");
  CHECK(first.at("REPO") == "gentoo");
  CHECK(index.packages[1].at("CHOST") == "other");
  CHECK(index.packages[1].at("REPO") == "local");
  CHECK_FALSE(index.header.contains("not a key line"));

  CHECK_FALSE(read_packages_index("TIMESTAMP: 1\n\nCPV: a/b-1\n\n").has_value());
  CHECK_FALSE(read_packages_index("VERSION: 1\n\n").has_value());
  CHECK_FALSE(read_packages_index("VERSION: zero\n\n").has_value());
  CHECK(read_packages_index("VERSION: -1\n\n").has_value());
  CHECK(read_packages_index("VERSION: 0\r\n\r\nCPV: a/b-1\r\n").value().packages.size() == 1);
}

TEST_CASE("packages_index: writer orders and omits as Portage does")
{
  PackagesIndex index;
  index.header = {{"VERSION", "0"},   {"CHOST", "x86_64-pc-linux-gnu"},
                  {"ARCH", "amd64"},  {"EMPTY", ""},
                  {"TIMESTAMP", "1"}, {"PACKAGES", "99"}};
  index.packages.push_back({{"CPV", "a/foo-9"},
                            {"SLOT", "0"},
                            {"EAPI", "8"},
                            {"REPO", "gentoo"},
                            {"MTIME", "5"},
                            {"DESC", "d"},
                            {"DEPEND", "x/y"},
                            {"USE", "u"},
                            {"CHOST", "x86_64-pc-linux-gnu"},
                            {"IUSE", ""}});
  index.packages.push_back({{"CPV", "a/foo-10"}, {"EAPI", "0"}, {"SLOT", "1/2"}});
  const auto text = write_packages_index(index, {1700000000});
  CHECK(text == "ARCH: amd64\nCHOST: x86_64-pc-linux-gnu\nPACKAGES: 2\nTIMESTAMP: 1700000000\nVERSION: 0\n\n"
                "CPV: a/foo-10\nSLOT: 1/2\n\n"
                "CPV: a/foo-9\nDEPEND: x/y\nDESC: d\nEAPI: 8\nUSE: u\nMTIME: 5\nREPO: gentoo\n\n");
  // A header without VERSION gets Portage's 0, so readers accept it.
  CHECK(write_packages_index({}, {7}) == "PACKAGES: 0\nTIMESTAMP: 7\nVERSION: 0\n\n");
}

TEST_CASE("packages_index: Packages and Packages.gz written atomically with TIMESTAMP times")
{
  fs::TempDir dir("packages-index");
  const auto index = read_index(read_text(swarm::test::portage_data("binhost-257/Packages")));
  const int64_t timestamp = 1700000123;
  REQUIRE(write_packages_files(dir.path(), index, timestamp).has_value());
  // Times first: reading the files below may update their atime (relatime).
  for (const char* name : {"Packages", "Packages.gz"}) {
    struct stat st {};
    REQUIRE(::stat((dir / name).c_str(), &st) == 0);
    CHECK(st.st_mtime == timestamp);
    CHECK(st.st_atime == timestamp);
  }
  const auto text = read_text(dir / "Packages");
  CHECK(text == write_packages_index(index, {timestamp}));
  const auto gz = read_text(dir / "Packages.gz");
  auto unpacked = decompress(Compression::gzip, gz, 1 << 24);
  REQUIRE(unpacked.has_value());
  CHECK(*unpacked == text);
  const uint32_t gz_mtime = static_cast<unsigned char>(gz[4]) | static_cast<unsigned char>(gz[5]) << 8 |
                            static_cast<unsigned char>(gz[6]) << 16 |
                            static_cast<uint32_t>(static_cast<unsigned char>(gz[7])) << 24;
  CHECK(gz_mtime == timestamp);
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
  }
  CHECK(files == 2);
}

TEST_CASE("packages_index: an entry for a validated GPKG")
{
  fs::TempDir dir("packages-entry");
  const auto path = dir / "app-misc/hello/hello-1.2.3-r1-1.gpkg.tar";
  std::filesystem::create_directories(path.parent_path());
  std::filesystem::copy_file(swarm::test::portage_data("gpkg-samples/hello-1.2.3-r1-1.gpkg.tar"), path);
  GpkgOptions options;
  options.file_digests = {hash::Algo::md5, hash::Algo::sha1};
  auto report = validate_gpkg(path, options);
  REQUIRE(report.has_value());
  REQUIRE(report->valid);
  auto entry = index_entry_for_gpkg(path, "app-misc/hello/hello-1.2.3-r1-1.gpkg.tar", *report);
  REQUIRE(entry.has_value());
  auto digests = hash::hash_file(path, {hash::Algo::md5, hash::Algo::sha1});
  REQUIRE(digests.has_value());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(entry->at("CPV") == "app-misc/hello-1.2.3-r1");
  CHECK(entry->at("BUILD_ID") == "1");
  CHECK(entry->at("SLOT") == "0");
  CHECK(entry->at("EAPI") == "8");
  CHECK(entry->at("DESC") == "A test package");
  CHECK(entry->at("REPO") == "gentoo");
  CHECK(entry->at("RDEPEND") == "dev-libs/openssl:0/3");
  CHECK(entry->at("SIZE") == "10240");
  CHECK(entry->at("MTIME") == std::to_string(st.st_mtime));
  CHECK(entry->at("PATH") == "app-misc/hello/hello-1.2.3-r1-1.gpkg.tar");
  CHECK(entry->at("MD5") == digests->at(hash::Algo::md5));
  CHECK(entry->at("SHA1") == digests->at(hash::Algo::sha1));
  CHECK_FALSE(entry->contains("repository"));

  // Without precomputed digests the file is hashed; an invalid report is refused.
  report->file_digests.clear();
  auto hashed = index_entry_for_gpkg(path, "x.gpkg.tar", *report);
  REQUIRE(hashed.has_value());
  CHECK(hashed->at("MD5") == digests->at(hash::Algo::md5));
  report->valid = false;
  report->reason = "broken";
  CHECK_FALSE(index_entry_for_gpkg(path, "x.gpkg.tar", *report).has_value());
}

TEST_CASE("packages_index: real xpak files match their index entries")
{
  const auto index = read_index(read_text(swarm::test::portage_data("binhost-257/Packages")));
  size_t checked = 0;
  for (const auto& package : index.packages) {
    const auto path = swarm::test::portage_data("binhost-257/" + package.at("PATH"));
    if (!std::filesystem::exists(path)) {
      continue;
    }
    auto digests = hash::hash_file(path, {hash::Algo::md5, hash::Algo::sha1});
    REQUIRE(digests.has_value());
    CHECK(package.at("MD5") == digests->at(hash::Algo::md5));
    CHECK(package.at("SHA1") == digests->at(hash::Algo::sha1));
    CHECK(package.at("SIZE") == std::to_string(std::filesystem::file_size(path)));
    ++checked;
  }
  CHECK(checked == 3);
}
