#include <doctest/doctest.h>

#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <random>

#include "portage/md5_cache.hpp"

using namespace swarm::portage;

TEST_CASE("md5_cache: the real qtwebengine entry")
{
  // The test data directory is laid out as a repository's metadata/md5-cache.
  swarm::test::TempRepo repo;
  std::filesystem::create_directories(repo.root / "metadata" / "md5-cache" / "dev-qt");
  std::filesystem::copy_file(swarm::test::portage_data("md5-cache/dev-qt/qtwebengine-6.8.2"),
                             repo.root / "metadata" / "md5-cache" / "dev-qt" / "qtwebengine-6.8.2");
  const auto entry = read_md5_cache(repo.root, "dev-qt/qtwebengine-6.8.2");
  REQUIRE_MESSAGE(entry.has_value(), entry.error().message);
  CHECK(entry->eapi() == "8");
  CHECK(entry->get("SLOT") == "6/6.8.2");
  CHECK(entry->get("BDEPEND").starts_with("|| ( ( dev-lang/python:3.13[xml(+)]"));
  CHECK(entry->get("DEPEND").starts_with("app-arch/snappy:= dev-libs/expat"));
  CHECK(entry->get("RDEPEND").starts_with("app-arch/snappy:= dev-libs/expat"));
  CHECK(entry->get("IUSE").starts_with("accessibility +alsa bindist"));
  CHECK(entry->get("REQUIRED_USE") == "designer? ( qml widgets )");
  CHECK(entry->get("_md5_") == "08c107baa4bf1a71bd6770ec2b6552e6");
  CHECK(entry->get("PDEPEND").empty()); // omitted empty value
  CHECK(entry->get("IDEPEND").empty());
  REQUIRE(entry->eclasses.size() >= 10);
  CHECK(entry->eclasses.front().first == "check-reqs");
  CHECK(entry->eclasses.front().second == "2a9731073c152554078a9a8df8fc0f1b");
  CHECK(entry->eclasses[1].first == "toolchain-funcs");
}

TEST_CASE("md5_cache: any key order, unknown keys, CRLF and empty lines")
{
  const auto entry = parse_md5_cache("SLOT=0\r\n\nX_FUTURE_KEY=a=b\nEAPI=7\nDEPEND=\n");
  REQUIRE(entry.has_value());
  CHECK(entry->get("SLOT") == "0");
  CHECK(entry->get("X_FUTURE_KEY") == "a=b");
  CHECK(entry->eapi() == "7");
  CHECK(entry->values.contains("DEPEND"));
  CHECK(entry->eclasses.empty());
  CHECK(parse_md5_cache("")->eapi() == "0");
}

TEST_CASE("md5_cache: malformed entries and missing files are errors")
{
  CHECK_FALSE(parse_md5_cache("SLOT=0\ngarbage\n").has_value());
  CHECK_FALSE(parse_md5_cache("=value\n").has_value());
  CHECK_FALSE(parse_md5_cache("_eclasses_=a\tmd5\tb\n").has_value());

  swarm::test::TempRepo repo;
  repo.cache("dev-libs/foo-1", "EAPI=8\nSLOT=0\n");
  CHECK(read_md5_cache(repo.root, "dev-libs/foo-1").has_value());
  const auto missing = read_md5_cache(repo.root, "dev-libs/foo-2");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().kind == swarm::ErrorKind::not_found);
  CHECK(missing.error().message.find("dev-libs/foo-2") != std::string::npos);
  CHECK_FALSE(read_md5_cache(repo.root, "../../etc/passwd-1").has_value());
  CHECK_FALSE(read_md5_cache(repo.root, "foo-1").has_value());
}
