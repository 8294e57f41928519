#include <doctest/doctest.h>

#include "core/hash.hpp"
#include "portage/xpak.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {
const std::string k_binhost = std::string(SWARM_TEST_DATA_DIR) + "/portage/binhost-257/";
}

TEST_CASE("xpak: reads the metadata of real xpak packages from their trailer and index")
{
  struct Expected {
    const char* path;
    const char* category;
    const char* pf;
    const char* build_id;
  };
  for (const auto& expected :
       {Expected{"acct-group/adm/adm-0-r2-1.xpak", "acct-group", "adm-0-r2", "1"},
        Expected{"acct-user/nobody/nobody-0-r1-2.xpak", "acct-user", "nobody-0-r1", "2"},
        Expected{"app-misc/mime-types/mime-types-2.1.53-1.xpak", "app-misc", "mime-types-2.1.53", "1"}}) {
    CAPTURE(expected.path);
    auto package = read_xpak(k_binhost + expected.path);
    REQUIRE(package.has_value());
    CHECK(package->metadata.at("CATEGORY") == std::string(expected.category) + "\n");
    CHECK(package->metadata.at("PF") == std::string(expected.pf) + "\n");
    CHECK(package->metadata.at("BUILD_ID").starts_with(expected.build_id));
    CHECK(package->metadata.contains("environment.bz2"));
    CHECK(package->metadata.contains("SLOT"));
    // The image before the XPAK segment is a zstd stream here.
    CHECK(package->xpak_offset > 0);
  }
  auto adm = read_xpak(k_binhost + "acct-group/adm/adm-0-r2-1.xpak");
  REQUIRE(adm.has_value());
  CHECK(adm->xpak_offset == 9839 - 8 - 0x24f7);
}

TEST_CASE("xpak: segment round trip and trailer detection")
{
  XpakMetadata metadata{{"CATEGORY", "app-misc\n"}, {"PF", "hello-1\n"}, {"BUILD_ID", "3"}};
  const auto segment = write_xpak_segment(metadata);
  CHECK(segment.starts_with("XPAKPACK"));
  CHECK(segment.ends_with("XPAKSTOP"));
  auto parsed = parse_xpak_segment(segment);
  REQUIRE(parsed.has_value());
  CHECK(*parsed == metadata);
  CHECK(has_xpak_trailer(std::string_view("XPAKSTOP\0\0\x01\x02STOP", 16)));
  CHECK_FALSE(has_xpak_trailer("XPAKSTOP....SPOT"));
  CHECK_FALSE(has_xpak_trailer("short"));
}

TEST_CASE("xpak: damaged segments are errors")
{
  auto segment = write_xpak_segment({{"CATEGORY", "x"}});
  auto broken = segment;
  broken[11] = static_cast<char>(broken[11] + 5); // index length no longer adds up
  CHECK_FALSE(parse_xpak_segment(broken).has_value());
  CHECK_FALSE(parse_xpak_segment("XPAKPACK").has_value());
  CHECK_FALSE(parse_xpak_segment(segment.substr(0, segment.size() - 1)).has_value());
}
