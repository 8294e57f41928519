#include "core/scheduler.hpp"

namespace swarm::sched {

KahnScheduler::KahnScheduler(const dag::Graph& graph, std::vector<double> priority)
    : m_graph(graph), m_priority(std::move(priority)), m_state(graph.size(), JobState::needed),
      m_pending(graph.size(), 0)
{
  m_priority.resize(graph.size(), 0.0);
  for (NodeId job = 0; job < graph.size(); ++job) {
    m_pending[job] = static_cast<uint32_t>(graph.needs(job).size());
  }
  for (NodeId job = 0; job < graph.size(); ++job) {
    update_ready(job);
  }
}

void KahnScheduler::update_ready(NodeId job)
{
  const auto key = std::pair{-m_priority[job], job};
  if (is_ready(job)) {
    m_ready.insert(key);
  } else {
    m_ready.erase(key);
  }
}

void KahnScheduler::set_state(NodeId job, JobState state)
{
  const JobState old = m_state[job];
  if (old == state) {
    return;
  }
  m_state[job] = state;
  update_ready(job);
  // A job counts as satisfied for its dependants only when done; a dropped job is no longer
  // part of the plan, so nobody waits for it either (it is assumed installed).
  const bool was_satisfied = old == JobState::done || old == JobState::dropped;
  const bool is_satisfied = state == JobState::done || state == JobState::dropped;
  if (was_satisfied != is_satisfied) {
    for (NodeId dependant : m_graph.dependants(job)) {
      if (is_satisfied) {
        --m_pending[dependant];
      } else {
        ++m_pending[dependant];
      }
      update_ready(dependant);
    }
  }
  if (state == JobState::blocked) {
    for (NodeId dependant : m_graph.transitive_dependants(job)) {
      if (m_state[dependant] == JobState::needed) {
        m_state[dependant] = JobState::dep_failed;
        update_ready(dependant);
      }
    }
  } else if (old == JobState::blocked) {
    recompute_dep_failed();
  }
}

void KahnScheduler::recompute_dep_failed()
{
  for (NodeId job : m_graph.topological_order()) {
    if (m_state[job] != JobState::needed && m_state[job] != JobState::dep_failed) {
      continue;
    }
    bool failed_below = false;
    for (const auto& edge : m_graph.needs(job)) {
      const auto s = m_state[edge.to];
      if (s == JobState::blocked || s == JobState::dep_failed) {
        failed_below = true;
        break;
      }
    }
    m_state[job] = failed_below ? JobState::dep_failed : JobState::needed;
    update_ready(job);
  }
}

std::optional<NodeId> KahnScheduler::pick(const std::function<bool(NodeId)>& eligible) const
{
  for (const auto& [negative_priority, job] : m_ready) {
    if (eligible(job)) {
      return job;
    }
  }
  return std::nullopt;
}

std::vector<NodeId> KahnScheduler::ready() const
{
  std::vector<NodeId> out;
  out.reserve(m_ready.size());
  for (const auto& entry : m_ready) {
    out.push_back(entry.second);
  }
  return out;
}

void KahnScheduler::set_priorities(std::vector<double> priority)
{
  m_ready.clear();
  m_priority = std::move(priority);
  m_priority.resize(m_graph.size(), 0.0);
  for (NodeId job = 0; job < m_graph.size(); ++job) {
    update_ready(job);
  }
}

} // namespace swarm::sched
