#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>

#include "core/config.hpp"
#include "core/fs.hpp"
#include "net/http_server.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "portage/pkgdir.hpp"
#include "roles/demo/fake_builder.hpp"

using namespace swarm;
using namespace swarm::roles::demo;
using portage::EdgeKind;

namespace {

// Sets environment variables for one test and restores them afterwards (the unit binary may
// run every case in one process).
class EnvGuard {
public:
  void set(const std::string& name, const std::string& value)
  {
    remember(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name)
  {
    remember(name);
    ::unsetenv(name.c_str());
  }
  ~EnvGuard()
  {
    for (const auto& [name, value] : m_saved) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

private:
  void remember(const std::string& name)
  {
    if (!m_saved.contains(name)) {
      m_saved[name] = config::env_get(name);
    }
  }
  std::map<std::string, std::optional<std::string>> m_saved;
};

portage::Plan plan_of(std::vector<std::string> cpvs, std::vector<portage::PlanEdge> edges)
{
  portage::Plan plan;
  for (auto& cpv : cpvs) {
    portage::PlanPackage package;
    package.cpv = std::move(cpv);
    package.slot = "0";
    package.repo = "gentoo";
    package.use = {"amd64", "ssl"};
    package.build_seconds = 0;
    plan.packages.push_back(std::move(package));
  }
  plan.edges = std::move(edges);
  return plan;
}

void mark_installed(const std::filesystem::path& root, const std::string& cpv)
{
  REQUIRE(fs::make_dirs(fake_vdb_dir(root, cpv)).has_value());
}

} // namespace

TEST_CASE("fake_builder: emerge's argument syntax")
{
  auto drone_deps =
    parse_fake_emerge_args({"--oneshot", "--usepkgonly", "--getbinpkgonly", "--nodeps", "--noreplace", "--color=n",
                            "--nospinner", "=sys-libs/zlib-1.3.1", "=dev-libs/bar-2.0-r1"});
  REQUIRE(drone_deps.has_value());
  CHECK(drone_deps->oneshot);
  CHECK(drone_deps->usepkgonly);
  CHECK(drone_deps->getbinpkgonly);
  CHECK(drone_deps->nodeps);
  CHECK(drone_deps->noreplace);
  CHECK_FALSE(drone_deps->buildpkgonly);
  CHECK(drone_deps->cpvs == std::vector<std::string>{"sys-libs/zlib-1.3.1", "dev-libs/bar-2.0-r1"});

  auto build = parse_fake_emerge_args({"-1BO", "--color", "n", "=dev-libs/foo-1.2"});
  REQUIRE(build.has_value());
  CHECK(build->oneshot);
  CHECK(build->buildpkgonly);
  CHECK(build->nodeps);
  CHECK(build->cpvs == std::vector<std::string>{"dev-libs/foo-1.2"});

  auto toggled = parse_fake_emerge_args({"--usepkg=y", "--getbinpkg=n", "--", "=a/b-1"});
  REQUIRE(toggled.has_value());
  CHECK(toggled->usepkg);
  CHECK_FALSE(toggled->getbinpkg);

  CHECK(parse_fake_emerge_args({"--frobnicate", "=a/b-1"}).error().message ==
        "emerge: unrecognized option '--frobnicate'");
  CHECK_FALSE(parse_fake_emerge_args({"-1X", "=a/b-1"}).has_value());
  CHECK_FALSE(parse_fake_emerge_args({"--usepkg=maybe", "=a/b-1"}).has_value());
  // Only exact atoms: the drone never passes anything else.
  for (const auto* atom : {"dev-libs/foo", ">=dev-libs/foo-1", "=dev-libs/foo-1:0", "=dev-libs/foo-1::gentoo",
                           "!=dev-libs/foo-1", "foo", "=dev-libs/foo-1*"}) {
    CAPTURE(atom);
    CHECK_FALSE(parse_fake_emerge_args({"--buildpkgonly", atom}).has_value());
  }
}

TEST_CASE("fake_builder: build dependencies are build edges plus their runtime closure, minus cycles")
{
  // x needs y, c and d to build; y runs with z, which runs with w; c needs x to build (a cycle
  // through build edges); d runs with x (a runtime relation back: no cycle, and x's own
  // RDEPEND r is not pulled in through it); x's RDEPEND r and PDEPEND p are not needed to build.
  // e is reached only through y's DEPEND: not needed to install y.
  const auto plan = plan_of({"a/x-1", "a/y-1", "a/z-1", "a/w-1", "a/c-1", "a/d-1", "a/r-1", "a/p-1", "a/e-1"},
                            {{"a/x-1", "a/y-1", EdgeKind::depend},
                             {"a/x-1", "a/c-1", EdgeKind::bdepend},
                             {"a/x-1", "a/d-1", EdgeKind::idepend},
                             {"a/x-1", "a/r-1", EdgeKind::rdepend},
                             {"a/x-1", "a/p-1", EdgeKind::pdepend},
                             {"a/y-1", "a/z-1", EdgeKind::rdepend},
                             {"a/y-1", "a/e-1", EdgeKind::depend},
                             {"a/z-1", "a/w-1", EdgeKind::rdepend},
                             {"a/c-1", "a/x-1", EdgeKind::depend},
                             {"a/d-1", "a/x-1", EdgeKind::rdepend}});
  const auto deps = fake_build_dependencies(plan, "a/x-1");
  CHECK(deps.required == std::vector<std::string>{"a/y-1", "a/d-1", "a/z-1", "a/w-1"});
  CHECK(deps.cyclic == std::vector<std::string>{"a/c-1"});

  // A longer cycle: y needs z to build, z needs x at run time, so y needs x: y is cyclic.
  const auto longer = plan_of({"a/x-1", "a/y-1", "a/z-1"}, {{"a/x-1", "a/y-1", EdgeKind::depend},
                                                            {"a/y-1", "a/z-1", EdgeKind::bdepend},
                                                            {"a/z-1", "a/x-1", EdgeKind::rdepend}});
  const auto longer_deps = fake_build_dependencies(longer, "a/x-1");
  CHECK(longer_deps.required.empty());
  CHECK(longer_deps.cyclic == std::vector<std::string>{"a/y-1"});
  CHECK(fake_build_dependencies(longer, "a/z-1").required.empty());
  CHECK(fake_build_dependencies(plan, "a/unknown-1").required.empty());
}

TEST_CASE("fake_builder: the fake vdb is ROOT/var/db/pkg/CAT/PF")
{
  CHECK(fake_vdb_dir("/r", "dev-libs/foo-1.2-r1") == "/r/var/db/pkg/dev-libs/foo-1.2-r1");
  CHECK(fake_vdb_dir("/r", "dev-libs/foo-1.2") == "/r/var/db/pkg/dev-libs/foo-1.2");
}

TEST_CASE("fake_builder: a build refuses missing dependencies, then writes genuine GPKGs with new BUILD_IDs")
{
  fs::TempDir dir("fake-build");
  const auto plan = plan_of({"a/x-1", "a/y-1", "a/c-1"}, {{"a/x-1", "a/y-1", EdgeKind::depend},
                                                          {"a/x-1", "a/c-1", EdgeKind::bdepend},
                                                          {"a/c-1", "a/x-1", EdgeKind::depend},
                                                          {"a/x-1", "a/y-1", EdgeKind::rdepend}});
  REQUIRE(fs::write_file_atomic(dir / "plan.json", portage::plan_to_json(plan).dump()).has_value());
  EnvGuard env;
  env.set("SWARM_FAKE_PLAN", (dir / "plan.json").string());
  env.set("SWARM_FAKE_TIME_SCALE", "0");
  env.set("ROOT", (dir / "root").string());
  env.set("PKGDIR", (dir / "pkgdir").string());
  env.unset("SWARM_FAKE_FAIL");
  const std::vector<std::string> args{"--oneshot", "--buildpkgonly", "--nodeps", "--color=n", "--nospinner", "=a/x-1"};

  CHECK(run_fake_emerge(args) == 1); // a/y-1 is not installed
  CHECK_FALSE(std::filesystem::exists(dir / "pkgdir/a/x"));

  mark_installed(dir / "root", "a/y-1"); // a/c-1 is a cycle: not needed
  CHECK(run_fake_emerge(args) == 0);
  CHECK(run_fake_emerge(args) == 0);
  portage::GpkgOptions options;
  options.expect_cpv = "a/x-1";
  const auto second = portage::validate_gpkg(dir / "pkgdir/a/x/x-1-2.gpkg.tar", options);
  REQUIRE(second.has_value());
  CHECK(second->valid);
  CHECK(second->dir_name == "x-1-2");
  CHECK(second->metadata.at("BUILD_ID") == "2");
  CHECK(second->metadata.at("SLOT") == "0");
  CHECK(second->metadata.at("USE") == "amd64 ssl");
  CHECK(second->metadata.at("EAPI") == "8");
  CHECK(second->metadata.at("DEPEND") == "=a/y-1");
  CHECK(second->metadata.at("BDEPEND") == "=a/c-1");
  CHECK(second->metadata.at("RDEPEND") == "=a/y-1");
  CHECK(second->metadata.at("repository") == "gentoo");
  CHECK(std::filesystem::exists(dir / "pkgdir/a/x/x-1-1.gpkg.tar"));
  // Written where the PKGDIR scan the drone's builder uses finds it, with the next BUILD_ID
  // after the highest there (another build's file included).
  const auto x = *portage::parse_cpv("a/x-1");
  CHECK(portage::package_files(dir / "pkgdir", x).size() == 2);
  REQUIRE(fs::write_file_atomic(dir / "pkgdir/a/x/x-1-7.gpkg.tar", "someone else's").has_value());
  CHECK(run_fake_emerge(args) == 0);
  const auto built = portage::package_files(dir / "pkgdir", x);
  REQUIRE(built.size() == 4);
  CHECK(built.back().build_id == 8);
  CHECK(portage::validate_gpkg(built.back().path, options).value().metadata.at("BUILD_ID") == "8");

  env.set("SWARM_FAKE_FAIL", "a/z-1, a/x-1");
  CHECK(run_fake_emerge(args) == 1);
  CHECK_FALSE(std::filesystem::exists(dir / "pkgdir/a/x/x-1-9.gpkg.tar"));
  CHECK(portage::package_files(dir / "pkgdir", x).size() == 4);
  env.set("SWARM_FAKE_FAIL", "*");
  CHECK(run_fake_emerge(args) == 1);

  env.unset("SWARM_FAKE_FAIL");
  CHECK(run_fake_emerge({"--buildpkgonly", "=a/notinplan-1"}) == 1);
  CHECK(run_fake_emerge({"--pretend", "=a/x-1"}) == 2);
}

TEST_CASE("fake_builder: dependencies come from the binhost of binrepos.conf, checked, into the vdb")
{
  fs::TempDir dir("fake-deps");
  // A staging binhost with two genuine packages and their index; the second one's SIZE is wrong.
  const auto binhost = dir / "binhost";
  portage::PackagesIndex index;
  index.header = {{"VERSION", "0"}};
  for (const std::string pn : {"y", "bad"}) {
    portage::GpkgContent content;
    content.dir_name = pn + "-1-3";
    content.metadata = {{"CATEGORY", "a"}, {"PF", pn + "-1"}, {"SLOT", "0"},           {"USE", "amd64"},
                        {"BUILD_ID", "3"}, {"EAPI", "8"},     {"repository", "gentoo"}};
    content.image["usr/share/" + pn] = {"y\n", 0644, portage::TarEntryType::regular, ""};
    const auto relative = fmt::format("a/{}/{}-1-3.gpkg.tar", pn, pn);
    REQUIRE(fs::make_dirs((binhost / relative).parent_path()).has_value());
    REQUIRE(portage::write_gpkg(binhost / relative, content).has_value());
    auto report = portage::validate_gpkg(binhost / relative, {});
    REQUIRE(report.has_value());
    auto entry = portage::index_entry_for_gpkg(binhost / relative, relative, *report);
    REQUIRE(entry.has_value());
    if (pn == "bad") {
      (*entry)["SIZE"] = "1";
    }
    index.packages.push_back(*entry);
  }
  const auto packages = portage::write_packages_index(index, {1700000000});

  // The credentials the binhost saw, written by its worker thread. Read under the lock: the answer
  // reaches this thread through a socket, which orders it but is invisible to TSan.
  std::mutex auth_mutex;
  std::vector<std::string> auth_seen;
  const auto auth = [&] {
    std::lock_guard lock(auth_mutex);
    return auth_seen;
  };
  net::HttpServer server;
  server.get(R"(/staging/o1/(.*))", [&](const httplib::Request& request, httplib::Response& response) {
    const auto credential = net::credential(request);
    {
      std::lock_guard lock(auth_mutex);
      auth_seen.push_back(credential ? fmt::format("{}:{}", credential->user, credential->token) : "none");
    }
    if (!credential || credential->token != "tok") {
      net::error_response(response, Error{ErrorKind::unauthorized, "token required"});
      return;
    }
    const std::string path = request.matches[1];
    if (path == "Packages") {
      response.set_content(packages, "text/plain");
    } else if (path == "a/y/y-1-3.gpkg.tar" || path == "a/bad/bad-1-3.gpkg.tar") {
      response.set_content(fs::read_file(binhost / path).value(), "application/x-tar");
    } else {
      net::error_response(response, Error{ErrorKind::not_found, "no such file"});
    }
  });
  auto port = server.bind("127.0.0.1", 0);
  REQUIRE(port.has_value());
  REQUIRE(server.listen_in_thread().has_value());

  const auto configroot = dir / "config";
  REQUIRE(fs::make_dirs(configroot / "etc/portage/binrepos.conf").has_value());
  REQUIRE(fs::write_file_atomic(configroot / "etc/portage/binrepos.conf/swarm-staging.conf",
                                fmt::format("[swarm-staging]\nsync-uri = http://drone:tok@127.0.0.1:{}/staging/o1/\n"
                                            "verify-signature = false\npriority = 9999\n",
                                            *port))
            .has_value());
  EnvGuard env;
  env.set("PORTAGE_CONFIGROOT", configroot.string());
  env.set("ROOT", (dir / "root").string());

  const std::vector<std::string> base{"--oneshot",   "--usepkgonly", "--getbinpkgonly", "--nodeps",
                                      "--noreplace", "--color=n",    "--nospinner"};
  auto with = [&](std::vector<std::string> atoms) {
    auto args = base;
    args.insert(args.end(), atoms.begin(), atoms.end());
    return args;
  };
  CHECK(run_fake_emerge(with({"=a/y-1", "=a/missing-1"})) == 1); // resolved before anything is installed
  CHECK_FALSE(std::filesystem::exists(fake_vdb_dir(dir / "root", "a/y-1")));
  CHECK(auth().size() == 1); // the index only

  CHECK(run_fake_emerge(with({"=a/y-1"})) == 0);
  const auto vdb = fake_vdb_dir(dir / "root", "a/y-1");
  CHECK(fs::read_file(vdb / "CATEGORY").value() == "a\n");
  CHECK(fs::read_file(vdb / "PF").value() == "y-1\n");
  CHECK(fs::read_file(vdb / "SLOT").value() == "0\n");
  CHECK(fs::read_file(vdb / "USE").value() == "amd64\n");
  CHECK(fs::read_file(vdb / "BUILD_ID").value() == "3\n");
  REQUIRE(auth().size() == 3); // Packages and the package, both with the token as HTTP Basic
  CHECK(auth()[1] == "drone:tok");
  CHECK(auth()[2] == "drone:tok");

  // --noreplace: already installed, nothing fetched.
  CHECK(run_fake_emerge(with({"=a/y-1"})) == 0);
  CHECK(auth().size() == 3);

  // SIZE in the index differs from what is served: corrupt.
  CHECK(run_fake_emerge(with({"=a/bad-1"})) == 1);
  CHECK_FALSE(std::filesystem::exists(fake_vdb_dir(dir / "root", "a/bad-1")));
  server.stop();
}
