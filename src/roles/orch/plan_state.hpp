#pragma once
// The plans as the orchestrator holds them, one per swarm profile: their packages and typed edges
// (as stored), one DAG built from all of them (the profiles' plans are disjoint parts of it) with
// cycles broken visibly, the Kahn scheduler over it with critical-path priorities, and the
// history of build durations the priorities come from. Pure memory: the coordinator writes what
// changes to the store. `diff_plan` computes, without touching anything, what submitting a new
// plan for one profile changes.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dag.hpp"
#include "core/scheduler.hpp"
#include "net/protocol.hpp"
#include "roles/orch/model.hpp"

namespace swarm::portage {
struct Plan;
}

namespace swarm::roles::orch {

// A package whose dep-failed state flipped because a dependency was blocked or unblocked.
struct DepFlip {
  PackageRow* row = nullptr;
  bool failed = false; // true: now dep_failed; false: needed again
};

class PlanState {
public:
  explicit PlanState(double default_build_seconds = 120) : m_default_seconds(default_build_seconds) {}
  PlanState(const PlanState&) = delete;
  PlanState& operator=(const PlanState&) = delete;

  // Replaces every plan and rebuilds the graph, the scheduler and the priorities. Packages whose
  // dep-failed state the blocked ones imply differently are changed and returned.
  std::vector<DepFlip> assign(std::vector<PlanInfo> infos, std::vector<PackageRow> packages,
                              std::vector<EdgeRow> edges);

  // The plan of a profile (an empty one, named so, when it has none).
  PlanInfo info(const std::string& profile) const;
  const std::map<std::string, PlanInfo>& infos() const { return m_infos; }
  std::vector<PackageRow>& packages() { return m_packages; }
  const std::vector<PackageRow>& packages() const { return m_packages; }
  const std::vector<EdgeRow>& edges() const { return m_edges; }
  const std::vector<std::string>& warnings() const { return m_warnings; }
  const dag::Graph& graph() const { return m_graph; }
  const sched::KahnScheduler& scheduler() const { return *m_scheduler; }

  PackageRow* find(const std::string& profile, std::string_view cpv);
  PackageRow* find(int64_t id);
  const PackageRow* find(const std::string& profile, std::string_view cpv) const;
  const PackageRow* find(int64_t id) const;
  dag::NodeId node_of(const PackageRow& row) const;

  // Sets a package's state and the scheduler's view of it; blocking or unblocking cascades to
  // the dependants, which are changed and returned.
  std::vector<DepFlip> set_state(PackageRow& row, PkgState state);

  // The most urgent ready package `eligible` accepts.
  PackageRow* pick(const std::function<bool(const PackageRow&)>& eligible);
  bool is_ready(const PackageRow& row) const;
  // Packages `needed` but not ready: they wait for dependencies.
  size_t waiting_count() const;

  // What `row` needs installed to build: received plan packages it waits for (build edges and
  // their runtime closure), dependencies first.
  std::vector<std::string> deps_of(const PackageRow& row) const;

  // Expected build time: median of the package's past builds, else the plan's estimate, else
  // the default.
  double expected_seconds(const PackageRow& row) const;
  void record_duration(const PackageRow& row, double seconds);
  // Durations of successful builds by package id, oldest first (Store::load_success_durations).
  void load_history(const std::vector<std::pair<int64_t, double>>& durations);
  // Critical-path priorities from the expected durations; cheap enough for every tick, but
  // only needed after a build finished.
  void refresh_priorities();
  void mark_priorities_dirty() { m_priorities_dirty = true; }
  bool priorities_dirty() const { return m_priorities_dirty; }

private:
  sched::JobState job_state(const PackageRow& row) const;
  std::vector<DepFlip> apply_dep_failed();

  double m_default_seconds;
  std::map<std::string, PlanInfo> m_infos;
  std::vector<PackageRow> m_packages; // index = dag node id
  std::vector<EdgeRow> m_edges;
  std::unordered_map<std::string, dag::NodeId> m_by_key; // profile '\n' cpv
  std::unordered_map<int64_t, dag::NodeId> m_by_id;
  dag::Graph m_graph;
  std::unique_ptr<sched::KahnScheduler> m_scheduler;
  std::vector<size_t> m_topo_position;
  std::vector<std::string> m_warnings;                  // broken cycle edges, for status and the plan view
  std::map<std::string, std::vector<double>> m_history; // CAT/PN → successful build durations
  bool m_priorities_dirty = false;
};

// What submitting `plan` changes, computed from the current rows without touching anything.
struct PlanChange {
  std::vector<PackageRow> rows;          // the packages afterwards (id 0: new), in id order, new last
  std::vector<int64_t> deleted;          // package ids to delete from the store
  std::vector<int64_t> stop_builds;      // package ids whose open builds end (removed, reset, left the plan)
  std::vector<std::string> remove_files; // artifacts (relative to staging) to delete after the commit
  struct Edge {
    std::string package, needs, kind;
    auto operator<=>(const Edge&) const = default;
  };
  std::vector<Edge> edges; // the edges afterwards, by cpv, sorted
  bool edges_changed = false;
  PlanInfo info;
  net::PlanReply reply; // packages/added/removed/reset/kept/changed (warnings come from the graph)
};

// Replace: `plan` becomes the plan of `info.profile`; packages it no longer holds are deleted, or
// kept out of the plan when they have an artifact and `clear_staging` is false. Add: merged in. A
// package whose slot, repository or USE changed, or whose artifact was built from another
// Portage tree, is reset to be built again. `rows` and `edges` are that profile's.
// `rebuild` yes: every built package is built again (the build profile changed how it builds).
enum class RebuildBuilt { no, yes };
PlanChange diff_plan(const PlanInfo& info, const std::vector<PackageRow>& rows, const std::vector<EdgeRow>& edges,
                     const portage::Plan& plan, net::PlanMode mode, bool clear_staging, double now,
                     RebuildBuilt rebuild = RebuildBuilt::no);

// CAT/PN of a CAT/PF (the cpv itself when it does not parse).
std::string cp_of(const std::string& cpv);

} // namespace swarm::roles::orch
