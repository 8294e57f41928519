// What a drone does before a lease's first emerge: the build bases, the helper's command line,
// whether it can honour a build profile (else the refusal), the lease's private configuration
// root with the USE pin, and the cleanup of build roots.
#include <doctest/doctest.h>

#include "core/fs.hpp"
#include "roles/drone/build_root.hpp"
#include "roles/drone/config_root.hpp"

using namespace swarm;
using namespace swarm::roles::drone;

namespace {

portage::BuildProfile client_profile()
{
  portage::BuildProfile profile;
  profile.settings = {
    {"USE", "amd64 ssl"}, {"CHOST", "x86_64-pc-linux-gnu"}, {"CFLAGS", "-O2 -pipe"}, {"ACCEPT_KEYWORDS", "amd64"}};
  profile.make_profile_repo = "swarm_test";
  profile.make_profile = "swarm_profile";
  profile.files = {{"package.use/client", "sw/editor doc\n"}, {"package.accept_keywords", "sw/viewer ~amd64\n"}};
  profile.repositories = {{"swarm_test", "Tue, 01 Dec 2026 00:00:00 +0000"}};
  return profile;
}

// A drone whose Portage knows the repository `swarm_test` at `repo`, which has the profile
// swarm_profile and an md5-cache entry for sw/editor-3.
DroneFacts facts_with_repo(const std::filesystem::path& repo)
{
  REQUIRE(fs::make_dirs(repo / "profiles/swarm_profile").has_value());
  REQUIRE(fs::make_dirs(repo / "metadata/md5-cache/sw").has_value());
  REQUIRE(
    fs::write_file_atomic(repo / "metadata/md5-cache/sw/editor-3", "EAPI=8\nIUSE=+spell doc\nSLOT=0\n").has_value());
  DroneFacts facts;
  facts.known = true;
  facts.chost = "x86_64-pc-linux-gnu";
  facts.repositories.main_repo = "swarm_test";
  facts.repositories.repositories.push_back({"swarm_test", {{"location", repo.string()}, {"priority", "0"}}});
  return facts;
}

} // namespace

TEST_CASE("build roots: bases per profile, and the helper's command line round-trips")
{
  const auto bases = parse_build_bases({"/srv/stage3", " server=/srv/stage3-server/ "});
  REQUIRE(bases.has_value());
  CHECK(bases->fallback == "/srv/stage3");
  CHECK(bases->for_profile("server") == "/srv/stage3-server/");
  CHECK(bases->for_profile("desktop") == "/srv/stage3");
  CHECK(parse_build_bases({}).value().fallback == "/");
  CHECK_FALSE(parse_build_bases({"stage3"}).has_value());
  CHECK_FALSE(parse_build_bases({"../x=/srv/x"}).has_value());

  BuildRootSettings settings;
  settings.mode = BuildRootMode::isolated;
  settings.roots_dir = "/var/cache/swarm/drone/roots";
  settings.helper = "/usr/bin/swarm";
  const BuildRoots roots(settings);
  RootUse use;
  use.spec.merged = "/spool/roots/lease-1/merged";
  use.spec.layers = {{"/", "/", "/spool/roots/lease-1/upper/root", "/spool/roots/lease-1/work/root"}};
  use.spec.binds = {{"/proc", "/proc", isolation::Access::read_write, isolation::Recursive::yes},
                    {"/var/db/repos/gentoo", "/var/db/repos/gentoo", isolation::Access::read_only}};
  const auto argv = roots.wrap(&use, "/spool/leases/1/emerge.pgid", {"emerge", "--oneshot", "--", "=a/b-1"});
  CHECK(argv.front() == "/usr/bin/swarm");
  CHECK(argv.at(1) == "drone-root");
  const auto parsed = parse_helper_args(std::vector<std::string>(argv.begin() + 2, argv.end()));
  REQUIRE(parsed.has_value());
  CHECK(parsed->record == "/spool/leases/1/emerge.pgid");
  REQUIRE(parsed->root.has_value());
  CHECK(parsed->root->merged == use.spec.merged);
  CHECK(parsed->root->layers == use.spec.layers);
  CHECK(parsed->root->binds == use.spec.binds);
  // Everything after the first "--" is the command, a later "--" included.
  CHECK(parsed->argv == std::vector<std::string>{"emerge", "--oneshot", "--", "=a/b-1"});
  // Host mode: no root, only the record.
  const auto host = parse_helper_args({"--record", "/r", "--", "emerge"});
  REQUIRE(host.has_value());
  CHECK_FALSE(host->root.has_value());
  CHECK_FALSE(parse_helper_args({"--record", "/r"}).has_value());
  CHECK_FALSE(parse_helper_args({"--bind", "/a", "/a", "sideways", "--", "x"}).has_value());
  CHECK_FALSE(parse_helper_args({"--layer", "/", "/", "relative/upper", "/w", "--", "x"}).has_value());
}

TEST_CASE("build roots: a starting drone removes what a previous run left; reset-root removes kept roots")
{
  fs::TempDir dir("roots");
  const auto roots = dir / "roots";
  REQUIRE(fs::make_dirs(roots / "lease-abc/upper/root/usr").has_value());
  REQUIRE(fs::make_dirs(roots / "probe-42/merged").has_value());
  REQUIRE(fs::make_dirs(roots / "cache/desktop-own/upper").has_value());
  REQUIRE(fs::make_dirs(roots / "cache/server-0123456789ab/upper").has_value());
  // A kept root a build was using when the drone stopped: half installed.
  REQUIRE(fs::write_file_atomic(roots / "cache/server-0123456789ab/in-use", "").has_value());
  const auto removed = remove_stale_roots(roots);
  REQUIRE(removed.has_value());
  CHECK(*removed == 3);
  CHECK_FALSE(std::filesystem::exists(roots / "lease-abc"));
  CHECK_FALSE(std::filesystem::exists(roots / "cache/server-0123456789ab"));
  CHECK(std::filesystem::exists(roots / "cache/desktop-own"));

  REQUIRE(fs::make_dirs(roots / "cache/desktop-0123456789ab/upper").has_value());
  REQUIRE(fs::make_dirs(roots / "cache/desktop2-own/upper").has_value());
  const auto reset = reset_caches(roots, "desktop");
  REQUIRE(reset.has_value());
  CHECK(*reset == 2);
  CHECK(std::filesystem::exists(roots / "cache/desktop2-own"));
  {
    // In use by a build: refused.
    auto lock = fs::try_lock_exclusive(roots / "cache/desktop2-own.lock");
    REQUIRE(lock.has_value());
    CHECK_FALSE(reset_caches(roots, "").has_value());
  }
  CHECK(reset_caches(roots, "").value() == 1);
  CHECK(reset_caches(dir / "none", "").value() == 0);
}

TEST_CASE("build profile: a drone refuses what it cannot honour, with a reason code")
{
  fs::TempDir dir("refusal");
  const auto facts = facts_with_repo(dir / "repo");
  const auto profile = client_profile();
  CHECK_FALSE(check_profile(profile, facts, "x86_64-pc-linux-gnu").has_value());

  const auto chost = check_profile(profile, facts, "aarch64-unknown-linux-gnu");
  REQUIRE(chost.has_value());
  CHECK(chost->code == "chost_unsupported");
  CHECK(chost->reason.find("aarch64-unknown-linux-gnu") != std::string::npos);
  CHECK(check_profile(profile, facts, "").value().code == "chost_unsupported");

  auto other_repo = profile;
  other_repo.repositories.push_back({"guru", ""});
  const auto missing = check_profile(other_repo, facts, "x86_64-pc-linux-gnu");
  REQUIRE(missing.has_value());
  CHECK(missing->code == "repository_missing");
  CHECK(missing->reason.find("guru") != std::string::npos);

  auto no_such_profile = profile;
  no_such_profile.make_profile = "default/linux/amd64/23.0";
  CHECK(check_profile(no_such_profile, facts, "x86_64-pc-linux-gnu").value().code == "repository_missing");
  auto escaping = profile;
  escaping.make_profile = "../../etc";
  CHECK(check_profile(escaping, facts, "x86_64-pc-linux-gnu").value().code == "other");

  CHECK(check_profile(profile, DroneFacts{}, "x86_64-pc-linux-gnu").value().code == "other");
}

TEST_CASE("build profile: the lease's configuration root is the profile's, with the machine's local settings and "
          "the USE pin last")
{
  fs::TempDir dir("configroot");
  const auto facts = facts_with_repo(dir / "repo");
  // The drone's own configuration: other USE, its own package.use, binrepos.conf as a file.
  const auto own = dir / "own";
  REQUIRE(fs::make_dirs(own / "etc/portage").has_value());
  REQUIRE(fs::write_file_atomic(own / "etc/portage/make.conf",
                                "USE=\"-ssl\"\nCFLAGS=\"-O3 -march=native\"\nMAKEOPTS=\"-j64\"\n"
                                "DISTDIR=\"/srv/distfiles\"\nFEATURES=\"-sandbox\"\nPORTAGE_BINHOST=\"http://x/\"\n")
            .has_value());
  REQUIRE(fs::write_file_atomic(own / "etc/portage/package.use", "sw/editor -spell -doc\n").has_value());
  REQUIRE(
    fs::write_file_atomic(own / "etc/portage/binrepos.conf", "[old]\nsync-uri = http://127.0.0.1:9/\n").has_value());

  net::Lease lease;
  lease.cpv = "sw/editor-3";
  lease.repo = "swarm_test";
  lease.use = {"doc", "spell"};
  std::string note;
  const auto pin = use_pin_for(lease, dir / "repo", &note);
  CHECK(pin == "=sw/editor-3 spell doc\n");
  CHECK(note.empty());
  lease.use = {"doc"};
  CHECK(use_pin_for(lease, dir / "repo", &note) == "=sw/editor-3 -spell doc\n");
  net::Lease unknown;
  unknown.cpv = "sw/other-1";
  unknown.use = {"x"};
  CHECK(use_pin_for(unknown, dir / "repo", &note) == "=sw/other-1 x\n");
  CHECK(note.find("sw/other-1") != std::string::npos);

  const auto profile = client_profile();
  ConfigRootInputs inputs;
  inputs.drone_configroot = own;
  inputs.facts = &facts;
  inputs.profile = &profile;
  inputs.staging_binrepos = "[swarm-staging]\nsync-uri = http://drone:t@127.0.0.1:1/staging/x\n";
  inputs.use_pin = "=sw/editor-3 -spell doc\n";
  const auto root = dir / "lease";
  REQUIRE(write_config_root(root, inputs).has_value());
  const auto etc = root / "etc/portage";
  const auto make_conf = fs::read_file(etc / "make.conf").value();
  CHECK(make_conf.find("MAKEOPTS=\"-j64\"") != std::string::npos);
  CHECK(make_conf.find("DISTDIR=\"/srv/distfiles\"") != std::string::npos);
  CHECK(make_conf.find("FEATURES=\"-sandbox\"") != std::string::npos);
  CHECK(make_conf.find("USE=\"-* amd64 ssl\"") != std::string::npos);
  CHECK(make_conf.find("CFLAGS=\"-O2 -pipe\"") != std::string::npos);
  CHECK(make_conf.find("-march=native") == std::string::npos);
  CHECK(make_conf.find("USE=\"-ssl\"") == std::string::npos);
  CHECK(make_conf.find("http://x/") == std::string::npos);
  CHECK(std::filesystem::read_symlink(etc / "make.profile") == dir / "repo/profiles/swarm_profile");
  CHECK(fs::read_file(etc / "package.use/00-profile/client").value() == "sw/editor doc\n");
  CHECK(fs::read_file(etc / "package.accept_keywords").value() == "sw/viewer ~amd64\n");
  CHECK(fs::read_file(etc / "package.use/zz-swarm-pin").value() == "=sw/editor-3 -spell doc\n");
  // Nothing of the drone's own package.use, and its binrepos.conf file is not read.
  CHECK_FALSE(std::filesystem::exists(etc / "package.use/00-drone"));
  CHECK(std::filesystem::is_directory(etc / "binrepos.conf"));
  CHECK(fs::read_file(etc / "binrepos.conf/swarm-staging.conf").value() == inputs.staging_binrepos);
  const auto repos = fs::read_file(etc / "repos.conf").value();
  CHECK(repos.find("[swarm_test]") != std::string::npos);
  CHECK(repos.find("location = " + (dir / "repo").string()) != std::string::npos);

  // Without a build profile: the drone's own configuration, still pinned, binrepos.conf replaced.
  inputs.profile = nullptr;
  REQUIRE(write_config_root(root, inputs).has_value());
  const auto own_make_conf = fs::read_file(etc / "make.conf").value();
  CHECK(own_make_conf.find("USE=\"-ssl\"") != std::string::npos);
  CHECK(own_make_conf.find("PORTAGE_BINHOST=\"\"") != std::string::npos);
  CHECK(fs::read_file(etc / "package.use/00-drone").value() == "sw/editor -spell -doc\n");
  CHECK(fs::read_file(etc / "package.use/zz-swarm-pin").value() == "=sw/editor-3 -spell doc\n");
  CHECK(std::filesystem::is_directory(etc / "binrepos.conf"));
  CHECK_FALSE(std::filesystem::exists(etc / "package.use/00-profile"));
}
