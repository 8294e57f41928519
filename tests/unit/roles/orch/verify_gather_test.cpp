#include <doctest/doctest.h>

#include "core/hash.hpp"
#include "portage/gpkg.hpp"
#include "roles/orch/coordinator_fixture.hpp"
#include "roles/orch/verify.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using swarm::test::CoordinatorFixture;

namespace {

// A real GPKG of `lease` in .incoming, built with `use` (IUSE "ssl X"), as the upload path takes it.
ArtifactInfo real_artifact(CoordinatorFixture& f, const net::Lease& lease, const std::string& use)
{
  auto artifact = f.artifact_for(lease);
  portage::GpkgContent content;
  const auto pf = lease.cpv.substr(lease.cpv.find('/') + 1);
  content.dir_name = pf + "-1";
  content.metadata = {{"CATEGORY", "app-misc"},
                      {"PF", pf},
                      {"SLOT", "0"},
                      {"BUILD_ID", "1"},
                      {"EAPI", "8"},
                      {"USE", use},
                      {"IUSE", "ssl X"},
                      {"repository", "gentoo"}};
  content.image["usr/share/" + pf + "/data"] = {"x\n", 0644, portage::TarEntryType::regular, ""};
  content.compression = portage::Compression::gzip;
  REQUIRE(portage::write_gpkg(artifact.incoming_path, content).has_value());
  artifact.sha256 = hash::hash_file(artifact.incoming_path, {hash::Algo::sha256})->at(hash::Algo::sha256);
  return artifact;
}

} // namespace

TEST_CASE("verify: gather re-reads every staged artifact and finds one not built as its plan asks")
{
  CoordinatorFixture f;
  auto plan = swarm::test::flat_plan(2);
  plan.packages[0].use = {"ssl"};
  plan.packages[1].use = {"ssl"};
  f.submit(plan);
  f.add_drone("d1", 2);
  const auto first = f.claim("d1");
  const auto second = f.claim("d1");
  // Staged past the upload gate (an older orchestrator, a copied file): one right, one without ssl.
  REQUIRE(f.coordinator->accept_artifact(first.id, "d1", real_artifact(f, first, "ssl")).has_value());
  REQUIRE(f.coordinator->accept_artifact(second.id, "d1", real_artifact(f, second, "X")).has_value());
  const auto report = verify(*f.coordinator, "default", 15);
  REQUIRE(report.findings.size() == 1);
  CHECK(report.findings[0].kind == "misbuilt");
  CHECK(report.findings[0].package == second.cpv);
  CHECK(report.findings[0].detail.find("ssl was asked for") != std::string::npos);
  CHECK(report.findings[0].detail.find("built with X") != std::string::npos);
  CHECK_FALSE(report.pass);
}
