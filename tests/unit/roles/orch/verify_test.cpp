#include <doctest/doctest.h>

#include <algorithm>

#include "roles/orch/verify.hpp"

using namespace swarm;
using namespace swarm::roles::orch;

namespace {

PackageRow row(int64_t id, const std::string& cpv, PkgState state)
{
  PackageRow out;
  out.id = id;
  out.cpv = cpv;
  out.slot = "0";
  out.state = state;
  if (state == PkgState::received) {
    out.artifact_path = cpv + "-1.gpkg.tar";
    out.sha256 = "aa";
    out.built_tree_timestamp = "T1";
  }
  return out;
}

// lib (id 1) is needed by `fan` packages (ids 10…), leaf (id 2) by none.
VerifyInput fan_input(size_t fan, PkgState lib_state, PkgState leaf_state)
{
  VerifyInput input;
  input.plan_tree_timestamp = "T1";
  input.packages.push_back(row(1, "dev-libs/lib-1", lib_state));
  input.packages.push_back(row(2, "app-misc/leaf-1", leaf_state));
  for (size_t i = 0; i < fan; ++i) {
    const auto id = static_cast<int64_t>(10 + i);
    input.packages.push_back(row(id, "app-misc/user" + std::to_string(i) + "-1", PkgState::received));
    // a chain: user0 needs lib, user1 needs user0, …: transitive dependants count too
    input.edges.push_back({id, i == 0 ? 1 : id - 1, "DEPEND"});
  }
  return input;
}

double weight_of(const VerifyReport& report, const std::string& kind, const std::string& package)
{
  for (const auto& finding : report.findings) {
    if (finding.kind == kind && finding.package == package) {
      return finding.weight;
    }
  }
  return -1;
}

} // namespace

TEST_CASE("verify: transitive dependants follow every edge, not only direct ones")
{
  const auto input = fan_input(5, PkgState::received, PkgState::received);
  const auto dependants = transitive_dependants(input.packages, input.edges);
  CHECK(dependants.at(1) == 5);
  CHECK(dependants.at(2) == 0);
  CHECK(dependants.at(10) == 4);
  CHECK(dependants.at(14) == 0);
}

TEST_CASE("verify: a clean staging scores 0 and passes")
{
  const auto report = score_risk(fan_input(3, PkgState::received, PkgState::received), 15);
  CHECK(report.score == 0);
  CHECK(report.pass);
  CHECK(report.findings.empty());
}

TEST_CASE("verify: a blocked library with many dependants outweighs a blocked leaf")
{
  auto library = fan_input(12, PkgState::blocked, PkgState::received);
  auto leaf = fan_input(12, PkgState::received, PkgState::blocked);
  const auto library_report = score_risk(library, 15);
  const auto leaf_report = score_risk(leaf, 15);
  CHECK(weight_of(library_report, "blocked", "dev-libs/lib-1") > weight_of(leaf_report, "blocked", "app-misc/leaf-1"));
  CHECK(weight_of(leaf_report, "blocked", "app-misc/leaf-1") == doctest::Approx(risk::k_blocked));
  CHECK(library_report.score > leaf_report.score);
  CHECK(leaf_report.pass);          // 5 <= 15
  CHECK_FALSE(library_report.pass); // 5 × (1 + log2 13) ≈ 23.5
}

TEST_CASE("verify: dep-failed, failed and unbuilt packages are weighted by their dependants")
{
  auto input = fan_input(3, PkgState::received, PkgState::dep_failed);
  input.packages[0].state = PkgState::needed;
  input.packages[0].failures = 1;
  input.packages[2].state = PkgState::needed; // user0: not built yet, 2 dependants
  const auto report = score_risk(input, 15);
  CHECK(weight_of(report, "dep-failed", "app-misc/leaf-1") == doctest::Approx(1.0));
  CHECK(weight_of(report, "failed", "dev-libs/lib-1") == doctest::Approx(risk::k_failed * 3).epsilon(0.01));
  CHECK(weight_of(report, "unbuilt", "app-misc/user0-1") == doctest::Approx(2 * (1 + std::log2(3.0))).epsilon(0.02));
}

TEST_CASE("verify: artifact problems, slot conflicts, tree mismatches and stray files are findings")
{
  auto input = fan_input(2, PkgState::received, PkgState::received);
  input.artifacts["dev-libs/lib-1"] = {ArtifactStatus::hash_mismatch, "sha256 differs", false};
  input.artifacts["app-misc/leaf-1"] = {ArtifactStatus::missing, "gone", false};
  input.packages.push_back(row(3, "dev-libs/lib-2", PkgState::received)); // same slot 0 as lib-1
  input.packages.back().built_tree_timestamp = "T0";
  input.stray_files = {"junk/file.gpkg.tar"};
  const auto report = score_risk(input, 15);
  CHECK(weight_of(report, "hash-mismatch", "dev-libs/lib-1") == doctest::Approx(risk::k_bad_artifact));
  CHECK(weight_of(report, "missing-artifact", "app-misc/leaf-1") == doctest::Approx(risk::k_bad_artifact));
  CHECK(weight_of(report, "slot-conflict", "dev-libs/lib-2") == doctest::Approx(risk::k_slot_conflict));
  CHECK(weight_of(report, "tree-mismatch", "dev-libs/lib-2") == doctest::Approx(risk::k_tree_mismatch));
  CHECK(weight_of(report, "stray-file", "junk/file.gpkg.tar") == doctest::Approx(risk::k_stray_file));
  CHECK(report.score == 29);
  CHECK_FALSE(report.pass);
  // Heaviest first.
  CHECK(std::is_sorted(report.findings.begin(), report.findings.end(),
                       [](const Finding& a, const Finding& b) { return a.weight > b.weight; }));
}

TEST_CASE("verify: the score is capped at 100 and the threshold is inclusive")
{
  auto input = fan_input(1, PkgState::received, PkgState::received);
  for (int i = 0; i < 20; ++i) {
    input.stray_files.push_back("stray" + std::to_string(i));
  }
  CHECK(score_risk(input, 15).score == 40);
  CHECK(score_risk(input, 40).pass);
  CHECK_FALSE(score_risk(input, 39).pass);
  for (int i = 20; i < 80; ++i) {
    input.stray_files.push_back("stray" + std::to_string(i));
  }
  CHECK(score_risk(input, 15).score == 100);
}

TEST_CASE("verify: packages no longer in the plan are not judged")
{
  auto input = fan_input(1, PkgState::received, PkgState::blocked);
  input.packages[1].in_plan = false;
  CHECK(score_risk(input, 15).score == 0);
}

TEST_CASE("verify: a mis-built artifact is a finding that fails alone")
{
  auto input = fan_input(2, PkgState::received, PkgState::received);
  input.artifacts["app-misc/leaf-1"] = {ArtifactStatus::misbuilt, "USE: ssl was asked for but …", false};
  const auto report = score_risk(input, 99);
  CHECK(weight_of(report, "misbuilt", "app-misc/leaf-1") == doctest::Approx(risk::k_misbuilt));
  CHECK_FALSE(report.pass);
}
