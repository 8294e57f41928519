#include "roles/orch/verify.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "portage/build_check.hpp"
#include "portage/gpkg.hpp"
#include "portage/version.hpp"

namespace swarm::roles::orch {

using nlohmann::json;

namespace {

std::string_view kind_of(ArtifactStatus status)
{
  switch (status) {
  case ArtifactStatus::missing:
    return "missing-artifact";
  case ArtifactStatus::invalid:
    return "invalid-artifact";
  case ArtifactStatus::hash_mismatch:
    return "hash-mismatch";
  case ArtifactStatus::misbuilt:
    return "misbuilt";
  case ArtifactStatus::bad_signature:
    return "bad-signature";
  case ArtifactStatus::ok:
    break;
  }
  return "ok";
}

// The main slot ("0" of "0/1.2") from the artifact's own metadata, else the plan's.
std::string main_slot(const PackageRow& row)
{
  std::string slot = row.slot;
  auto entry = json::parse(row.index_entry, nullptr, false);
  if (entry.is_object() && entry.contains("SLOT") && entry["SLOT"].is_string()) {
    slot = entry["SLOT"].get<std::string>();
  }
  return slot.empty() ? std::string(1, '0') : slot.substr(0, slot.find('/'));
}

double round1(double value)
{
  return std::round(value * 10) / 10;
}

ArtifactCheck check_artifact(const std::filesystem::path& staging_dir, const PackageRow& row,
                             const portage::BuildProfile* build_profile,
                             const std::optional<std::filesystem::path>& verify_home)
{
  ArtifactCheck check;
  const auto path = staging_dir / row.artifact_path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    check.status = ArtifactStatus::missing;
    check.detail = "staging/" + row.artifact_path + " does not exist";
    return check;
  }
  portage::GpkgOptions options;
  options.expect_cpv = row.cpv;
  if (verify_home) {
    options.verify_signature_with = *verify_home;
  }
  auto report = portage::validate_gpkg(path, options);
  std::string sha256;
  if (report && report->valid && !report->sha256.empty()) {
    sha256 = report->sha256;
  } else if (auto digests = hash::hash_file(path, {hash::Algo::sha256})) {
    sha256 = digests->at(hash::Algo::sha256);
  }
  const bool valid = report && report->valid;
  const std::string why = !report ? report.error().message : report->reason;
  if (sha256 != row.sha256) {
    check.status = ArtifactStatus::hash_mismatch;
    check.detail = fmt::format("staging/{}: sha256 {} but the record says {}", row.artifact_path,
                               sha256.empty() ? "unreadable" : sha256.substr(0, 16), row.sha256.substr(0, 16));
    check.also_invalid = !valid;
    if (!valid) {
      check.detail += "; not a valid GPKG either: " + why;
    }
    return check;
  }
  if (!valid && verify_home && report && (report->signature == portage::SignatureStatus::bad || !report->is_signed)) {
    check.status = ArtifactStatus::bad_signature;
    check.detail = fmt::format("staging/{}: {} (the binhost signs its packages)", row.artifact_path, why);
    return check;
  }
  if (!valid) {
    check.status = ArtifactStatus::invalid;
    check.detail = fmt::format("staging/{} is not a valid GPKG for {}: {}", row.artifact_path, row.cpv, why);
    return check;
  }
  const auto differences =
    portage::check_build(report->metadata, {row.cpv, row.slot, row.repo, row.use, build_profile});
  if (!differences.empty()) {
    check.status = ArtifactStatus::misbuilt;
    check.detail = fmt::format("staging/{} was not built as its plan and profile ask: {}", row.artifact_path,
                               strings::join(differences, "; "));
  }
  return check;
}

} // namespace

namespace risk {
double impact(size_t dependants)
{
  return 1 + std::log2(1 + static_cast<double>(dependants));
}
} // namespace risk

json VerifyReport::to_json() const
{
  json list = json::array();
  for (const auto& finding : findings) {
    list.push_back(
      {{"kind", finding.kind}, {"package", finding.package}, {"weight", finding.weight}, {"detail", finding.detail}});
  }
  return json{{"score", score}, {"threshold", threshold}, {"pass", pass}, {"findings", list}};
}

bool publishable(const PackageRow& row)
{
  return row.in_plan && row.state == PkgState::received && !row.artifact_path.empty();
}

std::map<int64_t, size_t> transitive_dependants(const std::vector<PackageRow>& packages,
                                                const std::vector<EdgeRow>& edges)
{
  std::unordered_map<int64_t, std::vector<int64_t>> needed_by;
  std::set<int64_t> in_plan;
  for (const auto& row : packages) {
    if (row.in_plan) {
      in_plan.insert(row.id);
    }
  }
  for (const auto& edge : edges) {
    needed_by[edge.needs].push_back(edge.package);
  }
  std::map<int64_t, size_t> out;
  for (const auto& row : packages) {
    std::set<int64_t> seen;
    std::vector<int64_t> todo{row.id};
    while (!todo.empty()) {
      const auto id = todo.back();
      todo.pop_back();
      auto it = needed_by.find(id);
      if (it == needed_by.end()) {
        continue;
      }
      for (const auto dependant : it->second) {
        if (dependant != row.id && in_plan.count(dependant) && seen.insert(dependant).second) {
          todo.push_back(dependant);
        }
      }
    }
    out[row.id] = seen.size();
  }
  return out;
}

/*
 * The risk policy (docs/verify.md). Every finding has a weight; the score is the sum, rounded
 * and capped at 100.
 *  - A package that did not build weighs base × impact, impact = 1 + log2(1 + D) where D is how
 *    many plan packages need it, directly or not: blocked 5, failed (will be retried) 3, not built
 *    yet 2, dep-failed 1. A blocked library many packages need thus outweighs a blocked leaf, and
 *    its dep-failed dependants add their own weight.
 *  - An artifact that is missing, not a valid GPKG for its CPV, or whose SHA-256 differs from the
 *    record: 10 each (finalize never publishes it, even forced).
 *  - Two received versions in one CAT/PN:SLOT: 4 for each version beyond the first.
 *  - A package built from another Portage tree than the plan's: 3.
 *  - A file in staging that no record explains: 2.
 *  - An artifact whose own metadata says it was not built as its plan entry and profile ask
 *    (portage/build_check.hpp): 100 — it fails verify alone, and finalize never publishes it.
 */
VerifyReport score_risk(const VerifyInput& input, int threshold)
{
  VerifyReport report;
  report.threshold = threshold;
  const auto dependants = transitive_dependants(input.packages, input.edges);
  auto add = [&](std::string kind, std::string package, double weight, std::string detail) {
    report.findings.push_back({std::move(kind), std::move(package), round1(weight), std::move(detail)});
  };

  std::map<std::string, std::vector<const PackageRow*>> by_slot;
  for (const auto& row : input.packages) {
    if (!row.in_plan) {
      continue;
    }
    const size_t d = dependants.count(row.id) ? dependants.at(row.id) : 0;
    const double impact = risk::impact(d);
    const auto needed_by = d == 0 ? std::string("no package needs it") : fmt::format("{} package(s) need it", d);
    switch (row.state) {
    case PkgState::blocked:
      add("blocked", row.cpv, risk::k_blocked * impact,
          fmt::format("blocked after failing on {}; {}{}", fmt::join(row.failed_on, ", "), needed_by,
                      row.last_failure.empty() ? "" : "; last failure: " + row.last_failure.substr(0, 160)));
      break;
    case PkgState::dep_failed:
      add("dep-failed", row.cpv, risk::k_dep_failed * impact, "a dependency is blocked; " + needed_by);
      break;
    case PkgState::needed:
    case PkgState::delegated:
      if (row.failures > 0) {
        add("failed", row.cpv, risk::k_failed * impact,
            fmt::format("failed {} time(s), will be retried; {}", row.failures, needed_by));
      } else {
        add("unbuilt", row.cpv, risk::k_unbuilt * impact,
            fmt::format("{}; {}", row.state == PkgState::delegated ? "still building" : "not built yet", needed_by));
      }
      break;
    case PkgState::received:
      break;
    }
    if (!publishable(row)) {
      continue;
    }
    if (auto it = input.artifacts.find(row.cpv);
        it != input.artifacts.end() && it->second.status != ArtifactStatus::ok) {
      add(std::string(kind_of(it->second.status)), row.cpv,
          it->second.status == ArtifactStatus::misbuilt || it->second.status == ArtifactStatus::bad_signature
            ? risk::k_misbuilt
            : risk::k_bad_artifact,
          it->second.detail);
      if (it->second.also_invalid) {
        add("invalid-artifact", row.cpv, risk::k_bad_artifact, "the file no longer validates as a GPKG");
      }
    }
    if (!input.plan_tree_timestamp.empty() && !row.built_tree_timestamp.empty() &&
        row.built_tree_timestamp != input.plan_tree_timestamp) {
      add("tree-mismatch", row.cpv, risk::k_tree_mismatch,
          fmt::format("built from tree '{}', the plan's is '{}'", row.built_tree_timestamp, input.plan_tree_timestamp));
    }
    const auto cpv = portage::parse_cpv(row.cpv);
    by_slot[(cpv ? cpv->cp() : row.cpv) + ":" + main_slot(row)].push_back(&row);
  }
  for (const auto& [slot, rows] : by_slot) {
    if (rows.size() < 2) {
      continue;
    }
    std::vector<std::string> names;
    for (const auto* row : rows) {
      names.push_back(row->cpv);
    }
    for (size_t i = 1; i < rows.size(); ++i) {
      add("slot-conflict", rows[i]->cpv, risk::k_slot_conflict,
          fmt::format("{} versions in slot {}: {}", rows.size(), slot, fmt::join(names, ", ")));
    }
  }
  for (const auto& file : input.stray_files) {
    add("stray-file", file, risk::k_stray_file, "staging/" + file + " belongs to no package record");
  }
  std::stable_sort(report.findings.begin(), report.findings.end(),
                   [](const Finding& a, const Finding& b) { return a.weight > b.weight; });
  double sum = 0;
  for (const auto& finding : report.findings) {
    sum += finding.weight;
  }
  report.score = static_cast<int>(std::min(100.0, std::round(sum)));
  report.pass = report.score <= threshold;
  return report;
}

VerifyInput gather(Coordinator& coordinator, const std::string& profile,
                   const std::optional<std::filesystem::path>& verify_home)
{
  const auto staging_dir = coordinator.staging_dir(profile);
  // Files first, records second: an upload renamed into staging in between has its record in
  // the snapshot, so it is not mistaken for a stray file.
  std::vector<std::filesystem::path> files;
  if (auto listed = fs::list_files_recursive(staging_dir)) {
    files = std::move(*listed);
  }
  auto snapshot = coordinator.snapshot(profile);
  VerifyInput input;
  input.plan_tree_timestamp = snapshot.plan.tree_timestamp;
  std::set<std::string> explained;
  for (const auto& row : snapshot.packages) {
    if (!row.artifact_path.empty()) {
      explained.insert(row.artifact_path);
    }
    if (publishable(row)) {
      input.artifacts[row.cpv] =
        check_artifact(staging_dir, row, snapshot.build_profile ? &*snapshot.build_profile : nullptr, verify_home);
    }
  }
  for (const auto& file : files) {
    const auto text = file.generic_string();
    if (text.starts_with(".incoming/") || explained.count(text)) {
      continue;
    }
    std::error_code ec;
    if (std::filesystem::exists(staging_dir / file, ec)) { // not deleted meanwhile
      input.stray_files.push_back(text);
    }
  }
  input.packages = std::move(snapshot.packages);
  input.edges = std::move(snapshot.edges);
  return input;
}

VerifyReport verify(Coordinator& coordinator, const std::string& profile, int threshold,
                    const std::optional<std::filesystem::path>& verify_home)
{
  return score_risk(gather(coordinator, profile, verify_home), threshold);
}

} // namespace swarm::roles::orch
