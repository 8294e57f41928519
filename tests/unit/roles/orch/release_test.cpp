#include <doctest/doctest.h>

#include <set>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "roles/orch/release.hpp"

using namespace swarm;
using namespace swarm::roles::orch;

namespace {

struct ReleaseFixture {
  fs::TempDir dir{"release"};
  double clock = 1'800'000'000;
  std::unique_ptr<ReleaseStore> store;

  explicit ReleaseFixture(int keep = 5)
  {
    ReleaseOptions options;
    options.releases_dir = dir / "releases";
    options.production_link = dir / "production";
    options.keep = keep;
    options.now = [this] { return clock; };
    store = std::make_unique<ReleaseStore>(options);
  }

  // A real GPKG in staging/ and its StagedPackage, as the upload path would record it.
  StagedPackage stage(const std::string& category, const std::string& pf, int build_id, const std::string& slot = "0",
                      const std::string& payload = "x")
  {
    const auto pn = pf.substr(0, pf.find('-'));
    const auto relative = category + "/" + pn + "/" + pf + "-" + std::to_string(build_id) + ".gpkg.tar";
    const auto path = dir / "staging" / relative;
    REQUIRE(fs::make_dirs(path.parent_path()).has_value());
    portage::GpkgContent content;
    content.dir_name = pf + "-" + std::to_string(build_id);
    content.metadata = {{"CATEGORY", category},
                        {"PF", pf},
                        {"SLOT", slot},
                        {"BUILD_ID", std::to_string(build_id)},
                        {"EAPI", "8"},
                        {"repository", "gentoo"},
                        {"DESCRIPTION", "test " + payload}};
    content.image["usr/share/" + pn + "/data"] = {payload + "\n", 0644, portage::TarEntryType::regular, ""};
    content.compression = portage::Compression::gzip;
    content.mtime = 1700000000;
    REQUIRE(portage::write_gpkg(path, content).has_value());
    portage::GpkgOptions options;
    options.file_digests = {hash::Algo::md5, hash::Algo::sha1};
    auto report = portage::validate_gpkg(path, options);
    REQUIRE(report.has_value());
    REQUIRE(report->valid);
    auto entry = portage::index_entry_for_gpkg(path, relative, *report);
    REQUIRE(entry.has_value());
    return StagedPackage{category + "/" + pf, slot, path, relative, *entry};
  }

  std::set<std::string> listed_cpvs(const std::string& id)
  {
    auto index = store->index_of(id);
    REQUIRE(index.has_value());
    std::set<std::string> out;
    for (const auto& block : index->packages) {
      out.insert(block.at("CPV"));
    }
    return out;
  }
};

} // namespace

TEST_CASE("release: publish writes a Portage-readable index matching every file, then points production at it")
{
  ReleaseFixture f;
  auto first = f.store->publish({f.stage("app-misc", "foo-1.0", 1), f.stage("dev-libs", "bar-2.0", 1)});
  REQUIRE(first.has_value());
  CHECK(first->packages == 2);
  CHECK(first->added == std::vector<std::string>{"app-misc/foo-1.0", "dev-libs/bar-2.0"});
  CHECK(f.store->current() == first->id);
  CHECK(std::filesystem::is_symlink(f.dir / "production"));

  auto text = fs::read_file(f.dir / "production" / "Packages");
  REQUIRE(text.has_value());
  auto index = portage::read_packages_index(*text);
  REQUIRE(index.has_value());
  CHECK(index->header.at("TIMESTAMP") == std::to_string(first->timestamp));
  REQUIRE(index->packages.size() == 2);
  for (const auto& block : index->packages) {
    const auto file = f.dir / "production" / block.at("PATH");
    auto digests = hash::hash_file(file, {hash::Algo::md5, hash::Algo::sha1});
    REQUIRE(digests.has_value());
    CHECK(block.at("SIZE") == std::to_string(*fs::file_size(file)));
    CHECK(block.at("MD5") == digests->at(hash::Algo::md5));
    CHECK(block.at("SHA1") == digests->at(hash::Algo::sha1));
    // A hard link of the staging file, not a copy.
    CHECK(std::filesystem::hard_link_count(file) >= 2);
  }
  CHECK(std::filesystem::exists(f.dir / "production" / "Packages.gz"));
}

TEST_CASE("release: the next release keeps the previous packages, replaces rebuilds and slot upgrades")
{
  ReleaseFixture f;
  auto first = f.store->publish(
    {f.stage("app-misc", "foo-1.0", 1), f.stage("dev-libs", "bar-2.0", 1), f.stage("dev-libs", "baz-1", 1)});
  REQUIRE(first.has_value());
  f.clock += 10;
  auto second =
    f.store->publish({f.stage("app-misc", "foo-1.0", 2, "0", "rebuilt"), f.stage("dev-libs", "bar-2.1", 1)});
  REQUIRE(second.has_value());
  CHECK(second->previous == first->id);
  CHECK(second->packages == 3);
  CHECK(second->added == std::vector<std::string>{"dev-libs/bar-2.1"});
  CHECK(second->rebuilt == std::vector<std::string>{"app-misc/foo-1.0"});
  CHECK(second->removed == std::vector<std::string>{"dev-libs/bar-2.0"});
  CHECK(second->timestamp > first->timestamp);
  CHECK(f.listed_cpvs(second->id) == std::set<std::string>{"app-misc/foo-1.0", "dev-libs/bar-2.1", "dev-libs/baz-1"});
  // The previous release's files stay reachable (unlisted) for clients holding its index.
  CHECK(std::filesystem::exists(f.dir / "production" / "dev-libs/bar/bar-2.0-1.gpkg.tar"));
  CHECK(std::filesystem::exists(f.dir / "production" / "app-misc/foo/foo-1.0-1.gpkg.tar"));

  SUBCASE("publishing the same set again is refused")
  {
    f.clock += 10;
    auto again =
      f.store->publish({f.stage("app-misc", "foo-1.0", 2, "0", "rebuilt"), f.stage("dev-libs", "bar-2.1", 1)});
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().kind == ErrorKind::conflict);
  }
  SUBCASE("rollback publishes the earlier release with a later TIMESTAMP")
  {
    f.clock += 10;
    auto back = f.store->rollback(std::nullopt);
    REQUIRE(back.has_value());
    CHECK(back->id == first->id);
    CHECK(f.store->current() == first->id);
    CHECK(back->timestamp > second->timestamp);
    auto index = portage::read_packages_index(*fs::read_file(f.dir / "production" / "Packages"));
    REQUIRE(index.has_value());
    CHECK(index->header.at("TIMESTAMP") == std::to_string(back->timestamp));
    CHECK(f.listed_cpvs(first->id) == std::set<std::string>{"app-misc/foo-1.0", "dev-libs/bar-2.0", "dev-libs/baz-1"});
    // and forward again by id
    auto forward = f.store->rollback(second->id);
    REQUIRE(forward.has_value());
    CHECK(f.store->current() == second->id);
    auto same = f.store->rollback(second->id);
    CHECK_FALSE(same.has_value());
  }
}

TEST_CASE("release: only the last N releases are kept, and never the current one is deleted")
{
  ReleaseFixture f(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    f.clock += 1;
    auto release = f.store->publish({f.stage("app-misc", "pkg" + std::to_string(i) + "-1", 1)});
    REQUIRE(release.has_value());
    ids.push_back(release->id);
  }
  auto releases = f.store->list();
  REQUIRE(releases.size() == 2);
  CHECK(releases[0].id == ids[2]);
  CHECK(releases[1].id == ids[3]);
  CHECK(releases[1].current);
  CHECK(f.listed_cpvs(ids[3]).size() == 4);

  // Roll back to the older kept one, publish twice more: the rolled-back current survives pruning
  // until it is no longer current.
  REQUIRE(f.store->rollback(ids[2]).has_value());
  f.clock += 1;
  auto next = f.store->publish({f.stage("app-misc", "late-1", 1)});
  REQUIRE(next.has_value());
  CHECK(f.store->list().size() == 2);
  CHECK_FALSE(std::filesystem::exists(f.dir / "releases" / (".building-" + next->id)));
}

TEST_CASE("release: ids are validated before they name a directory")
{
  CHECK(valid_release_id("20261203-041650"));
  CHECK(valid_release_id("20261203-041650-2"));
  CHECK_FALSE(valid_release_id(""));
  CHECK_FALSE(valid_release_id("../etc"));
  CHECK_FALSE(valid_release_id(".building-x"));
  CHECK_FALSE(valid_release_id("a/b"));
  ReleaseFixture f;
  CHECK(f.store->rollback(std::string("../x")).error().kind == ErrorKind::invalid);
  CHECK(f.store->rollback(std::string("nope")).error().kind == ErrorKind::not_found);
}
