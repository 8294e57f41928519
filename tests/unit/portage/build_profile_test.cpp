#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "portage/build_profile.hpp"
#include "support.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

// portageq as the real one answers for a config root (no Portage needed).
class FakePortageq final : public subprocess::ProcessRunner {
public:
  std::filesystem::path repo;
  std::vector<subprocess::Spec> specs;
  int repos_exit = 0;

  Result<subprocess::Outcome> run(const subprocess::Spec& spec) override
  {
    specs.push_back(spec);
    subprocess::Outcome outcome;
    outcome.exit_code = 0;
    const auto& command = spec.argv.at(1);
    if (command == "envvar") {
      if (std::find(spec.argv.begin(), spec.argv.end(), "USE") != spec.argv.end()) {
        outcome.output = "USE='amd64 ssl python_targets_python3_12'\nUSE_EXPAND='PYTHON_TARGETS'\n"
                         "CFLAGS='-O2 -pipe'\nCXXFLAGS='-O2 -pipe'\nLDFLAGS=''\nCHOST=x86_64-pc-linux-gnu\n"
                         "ACCEPT_KEYWORDS=amd64\nACCEPT_LICENSE='*'\n"
                         "FEATURES='assume-digests binpkg-multi-instance nodoc splitdebug sandbox'\n"
                         "RUSTFLAGS=''\n";
        outcome.exit_code = 1; // as the real one does when a variable (RUSTFLAGS) is unset
      } else {
        outcome.output = "PYTHON_TARGETS=python3_12\n";
      }
    } else if (command == "get_repos") {
      outcome.output = "gentoo\n";
      outcome.exit_code = repos_exit;
    } else if (command == "get_repo_path") {
      outcome.output = repo.string() + "\n";
    }
    return outcome;
  }
};

} // namespace

TEST_CASE("build profile: parses portageq envvar -v output with shell quoting")
{
  const auto vars = parse_envvar_output("USE='a b'\nCHOST=x86_64-pc-linux-gnu\nX='it'\"'\"'s'\nEMPTY=''\n");
  CHECK(vars.at("USE") == "a b");
  CHECK(vars.at("CHOST") == "x86_64-pc-linux-gnu");
  CHECK(vars.at("X") == "it's");
  CHECK(vars.at("EMPTY").empty());
}

TEST_CASE("build profile: captures settings, make.profile, package files and repositories")
{
  swarm::test::TempRepo repo;
  repo.write("metadata/timestamp.chk", "Sat, 01 Mar 2026 00:45:01 +0000\n");
  repo.write("profiles/default/linux/amd64/23.0/make.defaults", "ARCH=amd64\n");
  fs::TempDir root{"config-root"};
  const auto etc = root.path() / "etc" / "portage";
  REQUIRE(fs::make_dirs(etc / "package.use").has_value());
  REQUIRE(fs::make_dirs(etc / "env").has_value());
  std::filesystem::create_directory_symlink(repo.root / "profiles/default/linux/amd64/23.0", etc / "make.profile");
  REQUIRE(fs::write_file_atomic(etc / "package.use" / "desktop", "sw-apps/viewer -ssl\n").has_value());
  REQUIRE(fs::write_file_atomic(etc / "package.use" / ".hidden", "x/y z\n").has_value());
  REQUIRE(fs::write_file_atomic(etc / "package.env", "dev-lang/rust rust-flags.conf\n").has_value());
  REQUIRE(fs::write_file_atomic(etc / "env" / "rust-flags.conf", "CFLAGS=\"-O3 -pipe\"\n").has_value());
  REQUIRE(fs::write_file_atomic(etc / "make.conf", "PKGDIR=/var/cache/binpkgs\n").has_value());

  FakePortageq portageq;
  portageq.repo = repo.root;
  auto profile = capture_build_profile({root.path(), "/usr/bin/portageq"}, portageq);
  REQUIRE_MESSAGE(profile.has_value(), profile.error().message);
  CHECK(portageq.specs.front().env.at("PORTAGE_CONFIGROOT") == root.path().string());
  CHECK(profile->settings.at("USE") == "amd64 ssl python_targets_python3_12");
  CHECK(profile->settings.at("PYTHON_TARGETS") == "python3_12");
  CHECK(profile->settings.at("CHOST") == "x86_64-pc-linux-gnu");
  CHECK(profile->settings.at("FEATURES") == "nodoc splitdebug"); // only what changes a binary
  CHECK_FALSE(profile->settings.count("LDFLAGS"));               // empty values are left out
  CHECK(profile->make_profile_repo == "gentoo");
  CHECK(profile->make_profile == "default/linux/amd64/23.0");
  CHECK(profile->files.at("package.use/desktop") == "sw-apps/viewer -ssl\n");
  CHECK_FALSE(profile->files.count("package.use/.hidden"));
  CHECK_FALSE(profile->files.count("make.conf")); // machine-local paths are not the profile's
  CHECK(profile->repositories == std::vector<ProfileRepository>{{"gentoo", "Sat, 01 Mar 2026 00:45:01 +0000"}});

  // Per-package environments override the global flags for the packages they match.
  CHECK(setting_for(*profile, "dev-lang/rust-1.80.0", "CFLAGS") == "-O3 -pipe");
  CHECK(setting_for(*profile, "dev-libs/foo-1", "CFLAGS") == "-O2 -pipe");
  CHECK_FALSE(setting_for(*profile, "dev-libs/foo-1", "RUSTFLAGS").has_value());

  // Content-addressed: the same profile through JSON has the same hash; any change another.
  auto back = build_profile_from_json(build_profile_to_json(*profile));
  REQUIRE(back.has_value());
  CHECK(*back == *profile);
  CHECK(build_profile_hash(*back) == build_profile_hash(*profile));
  auto other = *profile;
  other.settings["CFLAGS"] = "-O3";
  other.files.erase("package.env");
  CHECK(build_profile_hash(other) != build_profile_hash(*profile));
  const auto diff = diff_build_profiles(*profile, other);
  CHECK(diff == std::vector<std::string>{"CFLAGS: \"-O2 -pipe\" → \"-O3\"", "package.env: only in A"});
  CHECK(diff_build_profiles(*profile, *profile).empty());
}

TEST_CASE("build profile: a profile naming files outside etc/portage's package files is refused")
{
  auto profile_json = build_profile_to_json(BuildProfile{});
  profile_json["files"]["../../etc/passwd"] = "x";
  CHECK_FALSE(build_profile_from_json(profile_json).has_value());
  profile_json["files"] = {{"make.conf", "PKGDIR=/"}};
  CHECK_FALSE(build_profile_from_json(profile_json).has_value());
  CHECK_FALSE(build_profile_from_json(nlohmann::json::array()).has_value());
}

TEST_CASE("build profile: a failing portageq is an error naming it")
{
  swarm::test::TempRepo repo;
  fs::TempDir root{"config-root"};
  FakePortageq portageq;
  portageq.repo = repo.root;
  portageq.repos_exit = 1;
  auto profile = capture_build_profile({root.path(), "/usr/bin/portageq"}, portageq);
  REQUIRE_FALSE(profile.has_value());
  CHECK(profile.error().message.find("/usr/bin/portageq get_repos exited with status 1") != std::string::npos);
}
