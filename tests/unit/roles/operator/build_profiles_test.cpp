#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "roles/operator/build_profiles.hpp"

using namespace swarm;
using namespace swarm::roles::operator_cli;

namespace {

portage::BuildProfile desktop()
{
  portage::BuildProfile profile;
  profile.settings = {{"USE", "X amd64 ssl python_targets_python3_12"},
                      {"USE_EXPAND", "PYTHON_TARGETS VIDEO_CARDS"},
                      {"PYTHON_TARGETS", "python3_12 python3_13"},
                      {"CFLAGS", "-O2 -pipe"},
                      {"CHOST", "x86_64-pc-linux-gnu"}};
  profile.make_profile_repo = "gentoo";
  profile.make_profile = "default/linux/amd64/23.0/desktop";
  profile.files = {{"package.use/desktop", "sw-apps/viewer ssl\napp-misc/editor spell\n"}};
  profile.repositories = {{"gentoo", "Sat, 01 Mar 2026 00:45:01 +0000"}};
  return profile;
}

} // namespace

TEST_CASE("build profiles: the same configuration, words of a set in another order")
{
  auto a = desktop();
  auto b = desktop();
  CHECK(compare_build_profiles(a, b).empty());
  b.settings["USE"] = "amd64 python_targets_python3_12 ssl X";
  b.settings["PYTHON_TARGETS"] = "python3_13 python3_12";
  CHECK(compare_build_profiles(a, b).empty());
}

TEST_CASE("build profiles: settings, make.profile, files and repositories that differ")
{
  auto a = desktop();
  auto b = desktop();
  b.settings["USE"] = "X amd64 python_targets_python3_12 -ssl doc";
  b.settings["CFLAGS"] = "-O3 -pipe";
  b.settings["CXXFLAGS"] = "-O2";
  b.settings.erase("CHOST");
  b.make_profile = "default/linux/amd64/23.0";
  b.files["package.use/desktop"] = "sw-apps/viewer -ssl\napp-misc/editor spell\n";
  b.files["package.env"] = "dev-lang/rust fast.conf\n";
  b.repositories = {{"gentoo", "Sun, 02 Mar 2026 00:45:01 +0000"}, {"local", ""}};
  const auto differences = compare_build_profiles(a, b);
  std::vector<std::string> what;
  for (const auto& difference : differences) {
    what.push_back(difference.what);
  }
  CHECK(what == std::vector<std::string>{
                  "CFLAGS: \"-O2 -pipe\" → \"-O3 -pipe\"",
                  "CHOST: only in A (\"x86_64-pc-linux-gnu\")",
                  "CXXFLAGS: only in B (\"-O2\")",
                  "USE: differs",
                  "make.profile: gentoo:default/linux/amd64/23.0/desktop → gentoo:default/linux/amd64/23.0",
                  "package.env: only in B",
                  "package.use/desktop: differs",
                  "repository gentoo: tree \"Sat, 01 Mar 2026 00:45:01 +0000\" → \"Sun, 02 Mar 2026 00:45:01 +0000\"",
                  "repository local: only in B",
                });
  CHECK(differences[3].only_in_a == std::vector<std::string>{"ssl"});
  CHECK(differences[3].only_in_b == std::vector<std::string>{"-ssl", "doc"});
  CHECK(differences[6].only_in_a == std::vector<std::string>{"sw-apps/viewer ssl"});
  CHECK(differences[6].only_in_b == std::vector<std::string>{"sw-apps/viewer -ssl"});
  CHECK(differences[5].only_in_b == std::vector<std::string>{"dev-lang/rust fast.conf"});
  CHECK_FALSE(differences[7].changes_binaries);
  CHECK(differences[8].changes_binaries);
  CHECK(differences_change_binaries(differences));

  const auto text = describe_differences(differences);
  CHECK(text.find("  package.use/desktop: differs\n      - sw-apps/viewer ssl\n      + sw-apps/viewer -ssl\n") !=
        std::string::npos);
  CHECK(text.find("(the tree only: changes no binary by itself)") != std::string::npos);
  const auto json = differences_to_json(differences);
  CHECK(json.size() == differences.size());
  CHECK(json[3]["only_in_b"] == nlohmann::json::array({"-ssl", "doc"}));
  CHECK(json[7]["changes_binaries"] == false);
}

TEST_CASE("build profiles: another tree alone changes no binary")
{
  auto a = desktop();
  auto b = desktop();
  b.repositories[0].timestamp = "Sun, 02 Mar 2026 00:45:01 +0000";
  const auto differences = compare_build_profiles(a, b);
  REQUIRE(differences.size() == 1);
  CHECK_FALSE(differences_change_binaries(differences));
}

TEST_CASE("build profiles: which configuration root goes with a plan")
{
  CHECK(build_profile_root(true, std::nullopt) == "/");           // emerge runs here
  CHECK(build_profile_root(false, std::nullopt) == std::nullopt); // a saved output may come from anywhere
  CHECK(build_profile_root(false, std::string("/srv/client")) == "/srv/client");
  CHECK(build_profile_root(true, std::string("")) == "/");
}

TEST_CASE("build profiles: shown for a terminal")
{
  const auto text = describe_build_profile(desktop());
  CHECK(text.starts_with("make.profile  gentoo:default/linux/amd64/23.0/desktop\nsettings\n"));
  CHECK(text.find("  CFLAGS          -O2 -pipe\n") != std::string::npos);
  CHECK(text.find("files\n  package.use/desktop\n    sw-apps/viewer ssl\n") != std::string::npos);
  CHECK(text.find("repositories\n  gentoo               Sat, 01 Mar 2026 00:45:01 +0000\n") != std::string::npos);
}
