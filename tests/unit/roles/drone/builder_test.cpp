#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include <sys/stat.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "roles/drone/builder.hpp"

using namespace swarm;
using namespace swarm::roles::drone;
using subprocess::Outcome;
using subprocess::Spec;

namespace {

// Records every spec; `behaviour` decides what each run does (default: success, no output).
class FakeRunner final : public subprocess::ProcessRunner {
public:
  std::vector<Spec> specs;
  std::function<Outcome(const Spec&)> behaviour;

  Result<Outcome> run(const Spec& spec) override
  {
    specs.push_back(spec);
    if (behaviour) {
      return behaviour(spec);
    }
    Outcome outcome;
    outcome.exit_code = 0;
    return outcome;
  }
};

Outcome exited(int code)
{
  Outcome outcome;
  outcome.exit_code = code;
  return outcome;
}

// What emerge --buildpkgonly leaves behind: a genuine GPKG.
void write_package(const std::filesystem::path& pkgdir, const std::string& category, const std::string& pn,
                   const std::string& pf, int build_id, const std::string& metadata_category = "")
{
  portage::GpkgContent content;
  content.dir_name = fmt::format("{}-{}", pf, build_id);
  content.metadata = {{"CATEGORY", metadata_category.empty() ? category : metadata_category},
                      {"PF", pf},
                      {"SLOT", "0"},
                      {"BUILD_ID", std::to_string(build_id)},
                      {"EAPI", "8"}};
  content.image["usr/share/doc/x"] = {"x\n", 0644, portage::TarEntryType::regular, ""};
  REQUIRE(fs::make_dirs(pkgdir / category / pn).has_value());
  REQUIRE(portage::write_gpkg(pkgdir / category / pn / fmt::format("{}-{}.gpkg.tar", pf, build_id), content));
}

// A drone's own configuration root, as Portage needs one: make.conf and make.profile.
void make_configroot(const std::filesystem::path& root, const std::filesystem::path& repo)
{
  REQUIRE(fs::make_dirs(repo / "profiles/default").has_value());
  REQUIRE(fs::make_dirs(root / "etc/portage").has_value());
  REQUIRE(fs::write_file_atomic(root / "etc/portage/make.conf", "MAKEOPTS=\"-j2\"\n").has_value());
  std::filesystem::create_directory_symlink(repo / "profiles/default", root / "etc/portage/make.profile");
}

// PKGDIR/Packages listing every package in PKGDIR, as emerge --buildpkg leaves it.
void index_pkgdir(const std::filesystem::path& pkgdir)
{
  portage::PackagesIndex index;
  index.header["VERSION"] = "0";
  const auto files = fs::list_files_recursive(pkgdir).value();
  for (const auto& relative : files) {
    if (!relative.string().ends_with(".gpkg.tar")) {
      continue;
    }
    const auto report = portage::validate_gpkg(pkgdir / relative);
    REQUIRE(report.has_value());
    index.packages.push_back(portage::index_entry_for_gpkg(pkgdir / relative, relative.string(), *report).value());
  }
  REQUIRE(fs::write_file_atomic(pkgdir / "Packages", portage::write_packages_index(index, {1})).has_value());
}

net::Lease lease_of(std::string cpv, std::vector<std::string> deps)
{
  net::Lease lease;
  lease.id = "L1";
  lease.cpv = std::move(cpv);
  lease.deps = std::move(deps);
  return lease;
}

} // namespace

TEST_CASE("builder: the argv and environment of both emerge runs, exactly")
{
  BuildSettings settings;
  settings.emerge = "/usr/bin/emerge";
  settings.portage_configroot = "/srv/drone-root";
  settings.pkgdir = "/var/cache/swarm/drone/pkgdir";
  settings.jobs = 6;
  // Dependency order is the orchestrator's; duplicates and the package itself are dropped.
  const std::vector<std::string> deps{"sys-libs/zlib-1.3.1", "dev-libs/bar-2.0", "sys-libs/zlib-1.3.1",
                                      "dev-libs/foo-1.2-r1", "app-a/b-0"};
  const auto commands = emerge_commands(settings, lease_of("dev-libs/foo-1.2-r1", deps));
  REQUIRE(commands.has_value());
  REQUIRE(commands->install_deps.has_value());
  const auto& install = *commands->install_deps;
  CHECK(install.argv == std::vector<std::string>{"/usr/bin/emerge", "--oneshot", "--usepkgonly", "--getbinpkgonly",
                                                 "--nodeps", "--noreplace", "--color=n", "--nospinner",
                                                 "=sys-libs/zlib-1.3.1", "=dev-libs/bar-2.0", "=app-a/b-0"});
  CHECK(install.env_mode == subprocess::EnvMode::inherit);
  CHECK(install.env ==
        std::map<std::string, std::string>{{"NOCOLOR", "true"}, {"PORTAGE_CONFIGROOT", "/srv/drone-root"}});

  const auto& build = commands->build;
  CHECK(build.argv == std::vector<std::string>{"/usr/bin/emerge", "--oneshot", "--buildpkgonly", "--nodeps",
                                               "--color=n", "--nospinner", "=dev-libs/foo-1.2-r1"});
  CHECK(build.env_mode == subprocess::EnvMode::inherit);
  CHECK(build.env == std::map<std::string, std::string>{{"BINPKG_FORMAT", "gpkg"},
                                                        {"FEATURES", "binpkg-multi-instance -getbinpkg"},
                                                        {"MAKEOPTS", "-j6"},
                                                        {"NOCOLOR", "true"},
                                                        {"PKGDIR", "/var/cache/swarm/drone/pkgdir"},
                                                        {"PORTAGE_CONFIGROOT", "/srv/drone-root"}});

  // Without deps there is no first step; with PORTAGE_CONFIGROOT=/ it is not set.
  settings.portage_configroot = "/";
  const auto plain = emerge_commands(settings, lease_of("dev-libs/foo-1.2", {}));
  REQUIRE(plain.has_value());
  CHECK_FALSE(plain->install_deps.has_value());
  CHECK_FALSE(plain->build.env.contains("PORTAGE_CONFIGROOT"));
  CHECK(plain->build.argv.back() == "=dev-libs/foo-1.2");
}

TEST_CASE("builder: anything that is not a category/package-version never reaches emerge")
{
  BuildSettings settings;
  for (const auto* bad : {"foo-1.2", "dev-libs/foo", ">=dev-libs/foo-1.2", "--config-root=/tmp", "dev-libs/foo-1.2 x",
                          "=dev-libs/foo-1.2", "dev-libs/foo-1.2::gentoo", ""}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(emerge_commands(settings, lease_of(bad, {})).has_value());
    CHECK_FALSE(emerge_commands(settings, lease_of("dev-libs/ok-1", {bad})).has_value());
  }
}

TEST_CASE("builder: the staging repository carries the token, and a file-form binrepos.conf stops nothing")
{
  CHECK(staging_binrepos_text("http://127.0.0.1:7070/staging/ab12", "s3cr3t").value() ==
        "[swarm-staging]\n"
        "sync-uri = http://drone:s3cr3t@127.0.0.1:7070/staging/ab12\n"
        "verify-signature = false\n"
        "priority = 9999\n");
  CHECK_FALSE(staging_binrepos_text("", "t").has_value());

  // binrepos.conf as a single file, as on many older installs: the build's own configuration
  // root holds the staging repository; the drone's file is neither read nor touched.
  fs::TempDir dir("configroot-file");
  make_configroot(dir / "root", dir / "repo");
  REQUIRE(fs::write_file_atomic(dir / "root/etc/portage/binrepos.conf", "[mine]\nsync-uri = http://x\n").has_value());
  FakeRunner runner;
  BuildSettings settings;
  settings.portage_configroot = dir / "root";
  settings.pkgdir = dir / "pkgdir";
  settings.token = "s3cr3t";
  std::string seen;
  runner.behaviour = [&](const Spec& spec) {
    const std::filesystem::path root = spec.env.at("PORTAGE_CONFIGROOT");
    if (seen.empty()) {
      seen = fs::read_file(root / "etc/portage/binrepos.conf/swarm-staging.conf").value_or("missing");
      struct stat info {};
      CHECK(::stat((root / "etc/portage/binrepos.conf/swarm-staging.conf").c_str(), &info) == 0);
      CHECK((info.st_mode & 0777) == 0600);
      CHECK(std::filesystem::is_directory(root / "etc/portage/binrepos.conf"));
    }
    return exited(1);
  };
  Builder builder(runner, settings);
  const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {"sys-libs/zlib-1.3"}), "http://o:1/staging/x",
                                     dir / "work", dir / "work/build.log", {});
  CHECK(outcome.status == BuildOutcome::Status::failure);
  CHECK(seen == "[swarm-staging]\nsync-uri = http://drone:s3cr3t@o:1/staging/x\nverify-signature = false\n"
                "priority = 9999\n");
  CHECK(fs::read_file(dir / "root/etc/portage/binrepos.conf").value() == "[mine]\nsync-uri = http://x\n");
}

TEST_CASE("builder: a lease's environment: its configuration root, the helper before emerge, no --noreplace in a "
          "fresh root")
{
  BuildSettings settings;
  settings.emerge = "/usr/bin/emerge";
  settings.pkgdir = "/spool/pkgdir";
  auto commands = emerge_commands(settings, lease_of("dev-libs/foo-1.2", {"sys-libs/zlib-1.3"}));
  REQUIRE(commands.has_value());
  BuildEnvironment environment;
  environment.configroot = "/spool/leases/L1/configroot";
  environment.wrapper = {"/usr/bin/swarm", "drone-root", "--record", "/spool/leases/L1/emerge.pgid", "--"};
  environment.unset = {"USE", "CFLAGS"};
  environment.deps = DepsInstall::reinstall;
  apply_environment(*commands, environment);
  CHECK(commands->install_deps->argv ==
        std::vector<std::string>{"/usr/bin/swarm", "drone-root", "--record", "/spool/leases/L1/emerge.pgid", "--",
                                 "/usr/bin/emerge", "--oneshot", "--usepkgonly", "--getbinpkgonly", "--nodeps",
                                 "--color=n", "--nospinner", "=sys-libs/zlib-1.3"});
  CHECK(commands->build.argv == std::vector<std::string>{"/usr/bin/swarm", "drone-root", "--record",
                                                         "/spool/leases/L1/emerge.pgid", "--", "/usr/bin/emerge",
                                                         "--oneshot", "--buildpkgonly", "--nodeps", "--color=n",
                                                         "--nospinner", "=dev-libs/foo-1.2"});
  for (const auto* spec : {&*commands->install_deps, &commands->build}) {
    CHECK(spec->env.at("PORTAGE_CONFIGROOT") == "/spool/leases/L1/configroot");
    CHECK(spec->unset == std::vector<std::string>{"USE", "CFLAGS"});
  }

  // The drone's own system (and a kept root) keeps what is installed.
  auto kept = emerge_commands(settings, lease_of("dev-libs/foo-1.2", {"sys-libs/zlib-1.3"}));
  environment.deps = DepsInstall::skip_installed;
  environment.wrapper.clear();
  apply_environment(*kept, environment);
  CHECK(kept->install_deps->argv.front() == "/usr/bin/emerge");
  CHECK(std::count(kept->install_deps->argv.begin(), kept->install_deps->argv.end(), "--noreplace") == 1);
}

TEST_CASE("builder: the artifact is the new file with the highest BUILD_ID (the PKGDIR scan of portage/pkgdir)")
{
  fs::TempDir dir("pkgdir");
  const auto cpv = *portage::parse_cpv("dev-libs/foo-1.2-r1");
  const auto put = [&](const std::string& name) {
    REQUIRE(fs::make_dirs(dir / "dev-libs/foo").has_value());
    REQUIRE(fs::write_file_atomic(dir / "dev-libs/foo" / name, "x").has_value());
  };
  put("foo-1.2-r1-1.gpkg.tar");
  put("foo-1.2-r1-2.gpkg.tar");
  std::set<std::string> before;
  for (const auto& file : portage::package_files(dir.path(), cpv)) {
    before.insert(file.path.filename().string());
  }
  CHECK(before == std::set<std::string>{"foo-1.2-r1-1.gpkg.tar", "foo-1.2-r1-2.gpkg.tar"});
  CHECK_FALSE(find_new_artifact(dir.path(), cpv, before).has_value());

  put("foo-1.2-r1-3.gpkg.tar");
  put("foo-1.2-r1-10.gpkg.tar"); // 10 > 9 > 3 numerically, not as text
  put("foo-1.2-r1-9.gpkg.tar");
  put("foo-1.2-r10-50.gpkg.tar"); // another PF
  put("foo-1.2-50.gpkg.tar");     // another PF
  put("foo-1.2-r1-x.gpkg.tar");   // not a build id
  put("foo-1.2-r1-11.xpak");      // not a GPKG
  const auto found = find_new_artifact(dir.path(), cpv, before);
  REQUIRE(found.has_value());
  CHECK(found->build_id == 10);
  CHECK(found->path == dir / "dev-libs/foo/foo-1.2-r1-10.gpkg.tar");
  CHECK(portage::package_files(dir.path(), cpv).size() == 5);
}

TEST_CASE("builder: a build runs both steps, finds, validates, hashes and moves the package")
{
  fs::TempDir dir("build");
  FakeRunner runner;
  BuildSettings settings;
  settings.emerge = "emerge";
  settings.portage_configroot = dir / "root";
  settings.pkgdir = dir / "pkgdir";
  settings.token = "tok";
  make_configroot(settings.portage_configroot, dir / "repo");
  write_package(settings.pkgdir, "dev-libs", "foo", "foo-1.2", 4); // an older build stays put
  index_pkgdir(settings.pkgdir);
  runner.behaviour = [&](const Spec& spec) {
    spec.on_chunk(fmt::format("running {}\n", spec.argv[1 + 1]));
    if (std::find(spec.argv.begin(), spec.argv.end(), "--buildpkgonly") != spec.argv.end()) {
      // As Portage does: the package, then its entry in PKGDIR/Packages.
      write_package(spec.env.at("PKGDIR"), "dev-libs", "foo", "foo-1.2", 5);
      index_pkgdir(spec.env.at("PKGDIR"));
    }
    return exited(0);
  };
  Builder builder(runner, settings);
  const auto work = dir / "work";
  const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {"sys-libs/zlib-1.3"}), "http://o:1/staging/x", work,
                                     work / "build.log", {});
  CHECK(outcome.reason == "");
  REQUIRE(outcome.status == BuildOutcome::Status::success);
  REQUIRE(runner.specs.size() == 2);
  CHECK(runner.specs[0].argv.back() == "=sys-libs/zlib-1.3");
  CHECK(runner.specs[1].argv.back() == "=dev-libs/foo-1.2");
  CHECK(outcome.artifact == work / "foo-1.2-5.gpkg.tar");
  CHECK_FALSE(std::filesystem::exists(settings.pkgdir / "dev-libs/foo/foo-1.2-5.gpkg.tar"));
  CHECK(std::filesystem::exists(settings.pkgdir / "dev-libs/foo/foo-1.2-4.gpkg.tar"));
  const auto digests = hash::hash_file(outcome.artifact, {hash::Algo::sha256, hash::Algo::xxh3_128});
  REQUIRE(digests.has_value());
  CHECK(outcome.sha256 == digests->at(hash::Algo::sha256));
  CHECK(outcome.xxh3_128 == digests->at(hash::Algo::xxh3_128));
  CHECK(outcome.size == fs::file_size(outcome.artifact).value());
  const auto log = fs::read_file(work / "build.log").value();
  CHECK(log.find("running --usepkgonly") != std::string::npos);
  CHECK(log.find("running --buildpkgonly") != std::string::npos);
  CHECK(runner.specs[0].env.at("PORTAGE_CONFIGROOT") == (work / "configroot").string());
  CHECK(std::filesystem::exists(work / "configroot/etc/portage/binrepos.conf/swarm-staging.conf"));
  // Packages lists what is still in PKGDIR: the older build, not the one moved out.
  const auto index = portage::read_packages_index(fs::read_file(settings.pkgdir / "Packages").value());
  REQUIRE(index.has_value());
  REQUIRE(index->packages.size() == 1);
  CHECK(index->packages[0].at("PATH") == "dev-libs/foo/foo-1.2-4.gpkg.tar");
}

TEST_CASE("builder: failures say which step failed and why")
{
  fs::TempDir dir("build-fail");
  FakeRunner runner;
  BuildSettings settings;
  settings.pkgdir = dir / "pkgdir";
  settings.portage_configroot = dir / "root";
  make_configroot(settings.portage_configroot, dir / "repo");
  Builder builder(runner, settings);
  const auto work = dir / "work";

  SUBCASE("a missing binary in staging")
  {
    runner.behaviour = [](const Spec& spec) {
      spec.on_chunk("Calculating dependencies... done!\n"
                    "emerge: there are no binary packages to satisfy \"=sys-libs/zlib-1.3\".\n");
      return exited(1);
    };
    const auto outcome =
      builder.build(lease_of("dev-libs/foo-1.2", {"sys-libs/zlib-1.3"}), "http://o/s", work, work / "build.log", {});
    CHECK(outcome.status == BuildOutcome::Status::failure);
    CHECK(outcome.reason ==
          "swarm: drone environment: installing 1 build dependencies exited with status 1: emerge: there are no binary "
          "packages to satisfy \"=sys-libs/zlib-1.3\".");
    CHECK(runner.specs.size() == 1);
  }
  SUBCASE("the build itself, with Portage's error block")
  {
    runner.behaviour = [](const Spec& spec) {
      spec.on_chunk(">>> Compiling source\nmake: *** [all] Error 2\n"
                    " * ERROR: dev-libs/foo-1.2::gentoo failed (compile phase):\n *   emake failed\n");
      return exited(1);
    };
    const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {}), "", work, work / "build.log", {});
    CHECK(outcome.reason ==
          "emerge --buildpkgonly exited with status 1: * ERROR: dev-libs/foo-1.2::gentoo failed (compile phase):");
  }
  SUBCASE("a dependency outside the plan is a drone problem")
  {
    runner.behaviour = [](const Spec& spec) {
      spec.on_chunk("!!! --buildpkgonly requires all dependencies to be merged.\n"
                    "!!! Cannot merge requested packages.\n");
      return exited(1);
    };
    const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {}), "", work, work / "build.log", {});
    CHECK(outcome.reason.starts_with("drone environment problem"));
    CHECK(outcome.reason.ends_with("!!! --buildpkgonly requires all dependencies to be merged."));
  }
  SUBCASE("success without a package")
  {
    const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {}), "", work, work / "build.log", {});
    CHECK(outcome.status == BuildOutcome::Status::failure);
    CHECK(outcome.reason.find("wrote no new foo-1.2-BUILD_ID.gpkg.tar") != std::string::npos);
  }
  SUBCASE("a package that is not the lease's")
  {
    runner.behaviour = [&](const Spec& spec) {
      write_package(spec.env.at("PKGDIR"), "dev-libs", "foo", "foo-1.2", 1, "app-misc");
      return exited(0);
    };
    const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {}), "", work, work / "build.log", {});
    CHECK(outcome.status == BuildOutcome::Status::failure);
    CHECK(outcome.reason.find("is not valid") != std::string::npos);
  }
  SUBCASE("a stopped build")
  {
    runner.behaviour = [](const Spec&) {
      Outcome outcome;
      outcome.signal = 15;
      outcome.stopped = true;
      return outcome;
    };
    const auto outcome = builder.build(lease_of("dev-libs/foo-1.2", {}), "", work, work / "build.log", {});
    CHECK(outcome.status == BuildOutcome::Status::stopped);
  }
}

TEST_CASE("builder: the telling line of a log")
{
  CHECK(telling_line("") == "");
  CHECK(telling_line("a\nb\n\n") == "b");
  CHECK(telling_line("x\nerror: foo\ny\n") == "error: foo");
  CHECK(telling_line("missing build dependency a/b-1 (needed by c/d-2)\n!!! --buildpkgonly requires all "
                     "dependencies to be merged.\n") == "!!! --buildpkgonly requires all dependencies to be merged.");
  CHECK(telling_line("missing build dependency a/b-1 (needed by c/d-2)\nmore\n") ==
        "missing build dependency a/b-1 (needed by c/d-2)");
  CHECK(telling_line(std::string(1000, 'e')).size() <= 300 + std::string_view("…").size());
}
