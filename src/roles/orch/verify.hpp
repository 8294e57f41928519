#pragma once
// `swarm verify`: the Risk Score (0–100) of publishing staging now, with every finding and its
// weight. The formula is in docs/verify.md; score_risk() is the pure policy, gather() collects its
// inputs (package states, edges, and a check of every artifact file in staging).

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "roles/orch/coordinator.hpp"

namespace swarm::roles::orch {

struct Finding {
  std::string kind;    // failed, blocked, dep-failed, unbuilt, missing-artifact, invalid-artifact,
                       // hash-mismatch, misbuilt, slot-conflict, tree-mismatch, stray-file
  std::string package; // CPV, or the staging path of a stray file
  double weight = 0;
  std::string detail;
};

struct VerifyReport {
  int score = 0;
  int threshold = 15;
  bool pass = true;
  std::vector<Finding> findings; // heaviest first
  nlohmann::json to_json() const;
};

// The state of one artifact file as checked against its record.
// bad_signature: a signed binhost's package that is unsigned or whose signatures do not verify
// with the binhost's keyring.
enum class ArtifactStatus { ok, missing, invalid, hash_mismatch, misbuilt, bad_signature };

struct ArtifactCheck {
  ArtifactStatus status = ArtifactStatus::ok;
  std::string detail;
  bool also_invalid = false; // a hash mismatch whose file is not a valid GPKG either
};

struct VerifyInput {
  std::vector<PackageRow> packages;
  std::vector<EdgeRow> edges;
  std::string plan_tree_timestamp;
  std::map<std::string, ArtifactCheck> artifacts; // CPV → check (received packages of the plan)
  std::vector<std::string> stray_files;           // relative to staging/
};

// Weights of the formula (docs/verify.md).
namespace risk {
inline constexpr double k_blocked = 5;
inline constexpr double k_failed = 3;
inline constexpr double k_unbuilt = 2;
inline constexpr double k_dep_failed = 1;
inline constexpr double k_bad_artifact = 10; // missing, invalid or hash mismatch
inline constexpr double k_slot_conflict = 4;
inline constexpr double k_tree_mismatch = 3;
inline constexpr double k_stray_file = 2;
inline constexpr double k_misbuilt = 100; // fails alone, whatever the threshold
// 1 + log2(1 + dependants): a package many others need weighs more, with diminishing returns.
double impact(size_t dependants);
} // namespace risk

// Package id → number of plan packages that (transitively, through any edge) need it.
std::map<int64_t, size_t> transitive_dependants(const std::vector<PackageRow>& packages,
                                                const std::vector<EdgeRow>& edges);

// The policy: findings with weights and the score, min(100, round(sum of weights)); pass when
// score <= threshold.
VerifyReport score_risk(const VerifyInput& input, int threshold);

// Received packages of the plan: what finalize would publish from staging.
bool publishable(const PackageRow& row);

// Reads a profile's state and checks every received artifact of its staging (re-validated as a
// GPKG for its CPV, SHA-256 against the record, built as the plan and profile ask) and lists
// files no record explains.
// With `verify_home` (a signed binhost's GnuPG home), every artifact's signatures are checked too.
VerifyInput gather(Coordinator& coordinator, const std::string& profile,
                   const std::optional<std::filesystem::path>& verify_home = std::nullopt);

// gather() + score_risk().
VerifyReport verify(Coordinator& coordinator, const std::string& profile, int threshold,
                    const std::optional<std::filesystem::path>& verify_home = std::nullopt);

} // namespace swarm::roles::orch
