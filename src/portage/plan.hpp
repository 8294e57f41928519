#pragma once
// A build plan: the packages to build, their USE and estimated durations, and the dependency
// edges between them — from `emerge --pretend --verbose` output plus the repository's
// md5-cache, or from a binhost Packages index. JSON format: data/workloads/README.md.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "portage/packages_index.hpp"

namespace swarm::portage {

struct PlanPackage {
  std::string cpv, slot, repo;
  std::vector<std::string> use;
  double build_seconds = 0;
  std::string duration_source; // "estimate", "emerge.log", … ("unknown" when none)
};

enum class EdgeKind { depend, bdepend, idepend, rdepend, pdepend }; // JSON "DEPEND" …

// "DEPEND", "BDEPEND", … (also the metadata key the edge comes from).
std::string_view edge_kind_name(EdgeKind kind);
std::optional<EdgeKind> edge_kind_from_name(std::string_view name);

// `package` waits for `needs` (DEPEND/BDEPEND/IDEPEND: needs is built and merged first;
// RDEPEND/PDEPEND: recorded the same way, run-time relations).
struct PlanEdge {
  std::string package, needs;
  EdgeKind kind = EdgeKind::depend;
  bool operator==(const PlanEdge&) const = default;
};

struct Plan {
  std::string source, tree_timestamp, profile;
  bool merge_order = false; // packages are in Portage's merge order
  std::vector<PlanPackage> packages;
  std::vector<PlanEdge> edges;
  std::vector<std::string> unresolved; // sorted, distinct: "cat/pkg" and "|| ( cat/a cat/b )"
};

nlohmann::json plan_to_json(const Plan& plan);

// Reads and validates a plan: every cpv parses, no cpv twice, edges name plan packages and
// known kinds, types as documented. The error says which element is wrong.
Result<Plan> plan_from_json(const nlohmann::json& json);

struct EmergePlanOptions {
  // Flags enabled for every package that emerge does not print (hidden USE_EXPAND such as
  // ELIBC/KERNEL and the ARCH flag): "amd64 elibc_glibc kernel_linux".
  std::vector<std::string> implicit_use;
};

// The plan for the [ebuild …] lines of `emerge --pretend --verbose` output: each package's
// DEPEND/BDEPEND/IDEPEND/RDEPEND/PDEPEND from repo_dir/metadata/md5-cache, reduced for the USE
// on its line, matched against the merge list ([binary …] packages satisfy atoms but are not
// built). merge_order is set; tree_timestamp comes from metadata/timestamp.chk when present.
Result<Plan> plan_from_emerge(std::string_view emerge_pv_output, const std::filesystem::path& repo_dir,
                              const EmergePlanOptions& options = {});

// The plan for every package of a binhost Packages index (dependencies already USE-reduced),
// with durations estimated from SIZE.
Result<Plan> plan_from_index(const PackagesIndex& index);

// The SIZE-based duration estimate of data/workloads/README.md:
// round(clamp(exp(a) * size^b, 20, 21600)), a = -1.638244, b = 0.422312.
double estimate_build_seconds(uint64_t package_file_bytes);

} // namespace swarm::portage
