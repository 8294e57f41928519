#include <doctest/doctest.h>

#include "portage/build_check.hpp"

using namespace swarm::portage;

namespace {

std::map<std::string, std::string> built(const std::string& use, const std::string& iuse = "ssl +doc -test")
{
  return {{"USE", use},
          {"IUSE", iuse},
          {"SLOT", "0/1.2"},
          {"repository", "gentoo"},
          {"CHOST", "x86_64-pc-linux-gnu"},
          {"CFLAGS", "-O2 -pipe -fno-strict-aliasing"}};
}

} // namespace

TEST_CASE("build check: USE is compared within IUSE, slot and repository as the plan says")
{
  BuildExpectation expected{"dev-libs/foo-1", "0/1.2", "gentoo", {"amd64", "ssl", "doc", "elibc_glibc"}, nullptr};
  CHECK(check_build(built("amd64 doc elibc_glibc ssl"), expected).empty());
  // Implicit flags outside IUSE do not matter.
  CHECK(check_build(built("doc ssl"), expected).empty());
  const auto without_ssl = check_build(built("amd64 doc"), expected);
  CHECK(without_ssl == std::vector<std::string>{"USE: ssl was asked for but the package was built without it"});
  CHECK(check_build(built("doc ssl test"), expected) ==
        std::vector<std::string>{"USE: built with test, which the plan leaves off"});
  // A slot given without a sub-slot is compared without one.
  expected.slot = "0";
  CHECK(check_build(built("doc ssl"), expected).empty());
  expected.slot = "1";
  expected.repo = "overlay";
  CHECK(check_build(built("doc ssl"), expected).size() == 2);
}

TEST_CASE("build check: CHOST exactly; flags only for target-specific flags the profile lacks")
{
  BuildProfile profile;
  profile.settings = {{"CHOST", "x86_64-pc-linux-gnu"}, {"CFLAGS", "-O2 -pipe -march=x86-64-v2"}};
  profile.files["package.env"] = "dev-libs/foo skylake.conf\n";
  profile.files["env/skylake.conf"] = "CFLAGS=\"-O2 -march=skylake\"\n";
  BuildExpectation expected{"dev-libs/bar-1", "0", "gentoo", {"doc", "ssl"}, &profile};
  auto metadata = built("doc ssl");
  // The ebuild dropped -march (filter-flags) and added -fno-strict-aliasing: fine.
  CHECK(check_build(metadata, expected).empty());
  metadata["CFLAGS"] = "-O2 -pipe -march=native";
  CHECK(check_build(metadata, expected) ==
        std::vector<std::string>{
          "CFLAGS: built with -march=native, which the profile's \"-O2 -pipe -march=x86-64-v2\" does not have"});
  metadata["CFLAGS"] = "-O2 -mavx512f";
  CHECK(check_build(metadata, expected).size() == 1);
  metadata["CFLAGS"] = "-O2 -m64";
  CHECK(check_build(metadata, expected).empty());
  metadata["CHOST"] = "aarch64-unknown-linux-gnu";
  CHECK(check_build(metadata, expected).front().starts_with("CHOST: built for \"aarch64-unknown-linux-gnu\""));
  // package.env gives foo its own flags.
  expected.cpv = "dev-libs/foo-1";
  metadata = built("doc ssl");
  metadata["CFLAGS"] = "-O2 -march=skylake";
  CHECK(check_build(metadata, expected).empty());
  metadata["CFLAGS"] = "-O2 -march=x86-64-v2";
  CHECK(check_build(metadata, expected).size() == 1);
  CHECK(is_target_flag("-mtune=generic"));
  CHECK_FALSE(is_target_flag("-O2"));
  CHECK_FALSE(is_target_flag("-m"));
}
