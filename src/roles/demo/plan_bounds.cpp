#include "roles/demo/plan_bounds.hpp"

#include <algorithm>
#include <map>

#include "core/dag.hpp"

namespace swarm::roles::demo {

double PlanBounds::lower_bound() const
{
  return std::max(critical_path, total_work / std::max(1, slots));
}

PlanBounds plan_bounds(const portage::Plan& plan, double scale, int slots)
{
  using portage::EdgeKind;
  PlanBounds out;
  out.packages = plan.packages.size();
  out.slots = std::max(1, slots);

  std::map<std::string, dag::NodeId, std::less<>> node_of;
  std::vector<double> durations;
  durations.reserve(plan.packages.size());
  for (const auto& package : plan.packages) {
    node_of.emplace(package.cpv, static_cast<dag::NodeId>(durations.size()));
    durations.push_back(std::max(0.0, package.build_seconds * scale));
    out.total_work += durations.back();
  }
  // As the orchestrator reads a plan (Coordinator::rebuild_graph): DEPEND/BDEPEND/IDEPEND order
  // builds, RDEPEND only through the runtime closure of a build dependency, PDEPEND never.
  std::vector<std::pair<dag::NodeId, dag::NodeId>> build_edges;
  std::vector<std::pair<dag::NodeId, dag::NodeId>> runtime_edges;
  for (const auto& edge : plan.edges) {
    const auto from = node_of.find(edge.package);
    const auto to = node_of.find(edge.needs);
    if (from == node_of.end() || to == node_of.end()) {
      continue;
    }
    if (edge.kind == EdgeKind::depend || edge.kind == EdgeKind::bdepend || edge.kind == EdgeKind::idepend) {
      build_edges.emplace_back(from->second, to->second);
    } else if (edge.kind == EdgeKind::rdepend) {
      runtime_edges.emplace_back(from->second, to->second);
    }
  }
  auto graph = dag::with_runtime_closure(plan.packages.size(), build_edges, runtime_edges);
  std::vector<size_t> positions;
  if (plan.merge_order) {
    for (size_t i = 0; i < plan.packages.size(); ++i) {
      positions.push_back(i);
    }
  }
  graph.break_cycles(positions);
  const auto levels = graph.bottom_levels(durations);
  if (!levels.empty()) {
    out.critical_path = *std::max_element(levels.begin(), levels.end());
  }
  return out;
}

} // namespace swarm::roles::demo
