#pragma once
// Kahn scheduling over an acyclic dag::Graph: which jobs are ready (everything they wait for is
// done), ordered by priority (critical path first). The caller owns the policy of who gets
// which ready job; this keeps the counts consistent whatever order states change in.

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "core/dag.hpp"

namespace swarm::sched {

using dag::NodeId;

enum class JobState : uint8_t {
  needed,     // not built yet; ready once every dependency is done
  running,    // handed out (a lease exists)
  done,       // built and received
  blocked,    // failed for good (package breaker); dependants become dep_failed
  dep_failed, // something it waits for is blocked or dep_failed
  dropped,    // not part of the current plan any more
};

class KahnScheduler {
public:
  // `graph` must be acyclic and outlive the scheduler; every job starts `needed`.
  KahnScheduler(const dag::Graph& graph, std::vector<double> priority);

  JobState state(NodeId job) const { return m_state[job]; }
  bool is_ready(NodeId job) const { return m_state[job] == JobState::needed && m_pending[job] == 0; }

  // Moves a job to a state, keeping dependants' pending counts and the ready set right.
  // Setting blocked marks every transitive dependant that is not done/running dep_failed;
  // leaving blocked recomputes dep_failed for the graph.
  void set_state(NodeId job, JobState state);

  // Re-derives dep_failed for every job from the blocked ones (after loading or unblocking).
  void recompute_dep_failed();

  // The ready job with the highest priority that `eligible` accepts.
  std::optional<NodeId> pick(const std::function<bool(NodeId)>& eligible) const;

  // Ready jobs, highest priority first.
  std::vector<NodeId> ready() const;
  size_t ready_count() const { return m_ready.size(); }

  double priority(NodeId job) const { return m_priority[job]; }
  void set_priorities(std::vector<double> priority);

  // How many dependencies of `job` are not done yet.
  uint32_t pending(NodeId job) const { return m_pending[job]; }

private:
  void update_ready(NodeId job);

  const dag::Graph& m_graph;
  std::vector<double> m_priority;
  std::vector<JobState> m_state;
  std::vector<uint32_t> m_pending;
  // (−priority, id): begin() is the most urgent ready job.
  std::set<std::pair<double, NodeId>> m_ready;
};

} // namespace swarm::sched
