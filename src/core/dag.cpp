#include "core/dag.hpp"

#include <algorithm>
#include <queue>

#include <fmt/format.h>

namespace swarm::dag {

Graph::Graph(size_t nodes) : m_needs(nodes), m_dependants(nodes)
{}

size_t Graph::edge_count() const
{
  size_t count = 0;
  for (const auto& edges : m_needs) {
    count += edges.size();
  }
  return count;
}

void Graph::add_edge(NodeId from, NodeId to, Strength strength)
{
  if (from == to) {
    return;
  }
  auto& edges = m_needs[from];
  auto it = std::lower_bound(edges.begin(), edges.end(), to, [](const Edge& e, NodeId id) { return e.to < id; });
  if (it != edges.end() && it->to == to) {
    it->strength = std::max(it->strength, strength);
    return;
  }
  edges.insert(it, Edge{from, to, strength});
  auto& back = m_dependants[to];
  back.insert(std::lower_bound(back.begin(), back.end(), from), from);
}

void Graph::remove_edge(NodeId from, NodeId to)
{
  auto& edges = m_needs[from];
  auto it = std::lower_bound(edges.begin(), edges.end(), to, [](const Edge& e, NodeId id) { return e.to < id; });
  if (it == edges.end() || it->to != to) {
    return;
  }
  edges.erase(it);
  auto& back = m_dependants[to];
  back.erase(std::lower_bound(back.begin(), back.end(), from));
}

bool Graph::has_edge(NodeId from, NodeId to) const
{
  const auto& edges = m_needs[from];
  auto it = std::lower_bound(edges.begin(), edges.end(), to, [](const Edge& e, NodeId id) { return e.to < id; });
  return it != edges.end() && it->to == to;
}

std::vector<std::vector<NodeId>> Graph::cycles() const
{
  // Iterative Tarjan: plans have chains hundreds of packages deep, recursion is not worth the risk.
  const auto n = static_cast<NodeId>(size());
  constexpr uint32_t k_unvisited = UINT32_MAX;
  std::vector<uint32_t> index(n, k_unvisited);
  std::vector<uint32_t> low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<NodeId> stack;
  std::vector<std::vector<NodeId>> out;
  uint32_t counter = 0;

  struct Frame {
    NodeId node;
    size_t next_edge;
  };
  for (NodeId root = 0; root < n; ++root) {
    if (index[root] != k_unvisited) {
      continue;
    }
    std::vector<Frame> frames{{root, 0}};
    index[root] = low[root] = counter++;
    stack.push_back(root);
    on_stack[root] = true;
    while (!frames.empty()) {
      auto& frame = frames.back();
      const auto& edges = m_needs[frame.node];
      if (frame.next_edge < edges.size()) {
        const NodeId next = edges[frame.next_edge++].to;
        if (index[next] == k_unvisited) {
          index[next] = low[next] = counter++;
          stack.push_back(next);
          on_stack[next] = true;
          frames.push_back({next, 0});
        } else if (on_stack[next]) {
          low[frame.node] = std::min(low[frame.node], index[next]);
        }
        continue;
      }
      const NodeId node = frame.node;
      frames.pop_back();
      if (!frames.empty()) {
        low[frames.back().node] = std::min(low[frames.back().node], low[node]);
      }
      if (low[node] == index[node]) {
        std::vector<NodeId> component;
        NodeId member = 0;
        do {
          member = stack.back();
          stack.pop_back();
          on_stack[member] = false;
          component.push_back(member);
        } while (member != node);
        if (component.size() > 1) {
          std::sort(component.begin(), component.end());
          out.push_back(std::move(component));
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<BrokenEdge> Graph::break_cycles(std::span<const size_t> merge_position)
{
  std::vector<BrokenEdge> broken;
  const bool have_order = merge_position.size() == size();
  for (auto components = cycles(); !components.empty(); components = cycles()) {
    std::vector<uint32_t> component_of(size(), UINT32_MAX);
    for (uint32_t c = 0; c < components.size(); ++c) {
      for (NodeId node : components[c]) {
        component_of[node] = c;
      }
    }
    auto inside = [&](NodeId from, NodeId to) {
      return component_of[from] != UINT32_MAX && component_of[from] == component_of[to];
    };

    // Rule 1: closure edges inside a cycle.
    std::vector<Edge> victims;
    for (const auto& component : components) {
      for (NodeId from : component) {
        for (const auto& edge : m_needs[from]) {
          if (edge.strength == Strength::closure && inside(from, edge.to)) {
            victims.push_back(edge);
          }
        }
      }
    }
    std::string reason = "runtime-closure edge inside a dependency cycle";

    // Rule 2: build edges Portage deferred (the dependency merges after the dependant).
    if (victims.empty() && have_order) {
      for (const auto& component : components) {
        for (NodeId from : component) {
          for (const auto& edge : m_needs[from]) {
            if (inside(from, edge.to) && merge_position[edge.to] > merge_position[from]) {
              victims.push_back(edge);
            }
          }
        }
      }
      reason = "build-dependency cycle: Portage merges the dependency later, relying on the installed version";
    }

    // Rule 3: the edges into the member with the most dependants, one cycle at a time.
    if (victims.empty()) {
      for (const auto& component : components) {
        NodeId target = component.front();
        for (NodeId node : component) {
          if (m_dependants[node].size() > m_dependants[target].size()) {
            target = node;
          }
        }
        for (NodeId from : component) {
          for (const auto& edge : m_needs[from]) {
            if (edge.to == target) {
              victims.push_back(edge);
            }
          }
        }
      }
      reason = "build-dependency cycle: the most depended-on member is built last, against the installed others";
    }

    for (const auto& edge : victims) {
      remove_edge(edge.from, edge.to);
      broken.push_back({edge.from, edge.to, edge.strength, reason});
    }
  }
  return broken;
}

std::vector<NodeId> Graph::topological_order() const
{
  const auto n = size();
  std::vector<size_t> remaining(n);
  std::priority_queue<NodeId, std::vector<NodeId>, std::greater<>> ready;
  for (NodeId node = 0; node < n; ++node) {
    remaining[node] = m_needs[node].size();
    if (remaining[node] == 0) {
      ready.push(node);
    }
  }
  std::vector<NodeId> order;
  order.reserve(n);
  while (!ready.empty()) {
    const NodeId node = ready.top();
    ready.pop();
    order.push_back(node);
    for (NodeId dependant : m_dependants[node]) {
      if (--remaining[dependant] == 0) {
        ready.push(dependant);
      }
    }
  }
  return order; // shorter than size() if the graph had a cycle
}

std::vector<double> Graph::bottom_levels(std::span<const double> durations) const
{
  std::vector<double> level(size(), 0.0);
  const auto order = topological_order();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    double longest = 0;
    for (NodeId dependant : m_dependants[*it]) {
      longest = std::max(longest, level[dependant]);
    }
    level[*it] = durations[*it] + longest;
  }
  return level;
}

std::vector<NodeId> Graph::transitive_dependants(NodeId node) const
{
  std::vector<bool> seen(size(), false);
  std::vector<NodeId> stack{node};
  std::vector<NodeId> out;
  seen[node] = true;
  while (!stack.empty()) {
    const NodeId current = stack.back();
    stack.pop_back();
    for (NodeId dependant : m_dependants[current]) {
      if (!seen[dependant]) {
        seen[dependant] = true;
        out.push_back(dependant);
        stack.push_back(dependant);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<NodeId> Graph::transitive_needs(NodeId node) const
{
  // Post-order DFS gives dependencies before the packages that need them.
  std::vector<uint8_t> mark(size(), 0); // 0 new, 1 open, 2 done
  std::vector<NodeId> out;
  struct Frame {
    NodeId node;
    size_t next;
  };
  std::vector<Frame> frames{{node, 0}};
  mark[node] = 1;
  while (!frames.empty()) {
    auto& frame = frames.back();
    const auto& edges = m_needs[frame.node];
    if (frame.next < edges.size()) {
      const NodeId next = edges[frame.next++].to;
      if (mark[next] == 0) {
        mark[next] = 1;
        frames.push_back({next, 0});
      }
      continue;
    }
    mark[frame.node] = 2;
    if (frame.node != node) {
      out.push_back(frame.node);
    }
    frames.pop_back();
  }
  return out;
}

Graph with_runtime_closure(size_t nodes, std::span<const std::pair<NodeId, NodeId>> build_edges,
                           std::span<const std::pair<NodeId, NodeId>> runtime_edges)
{
  Graph runtime(nodes);
  for (auto [from, to] : runtime_edges) {
    runtime.add_edge(from, to, Strength::build);
  }
  // Runtime closure of every node, computed once per build dependency actually used.
  std::vector<std::vector<NodeId>> closure(nodes);
  std::vector<bool> computed(nodes, false);
  auto closure_of = [&](NodeId node) -> const std::vector<NodeId>& {
    if (!computed[node]) {
      computed[node] = true;
      std::vector<bool> seen(nodes, false);
      std::vector<NodeId> stack{node};
      seen[node] = true;
      while (!stack.empty()) {
        const NodeId current = stack.back();
        stack.pop_back();
        for (const auto& edge : runtime.needs(current)) {
          if (!seen[edge.to]) {
            seen[edge.to] = true;
            closure[node].push_back(edge.to);
            stack.push_back(edge.to);
          }
        }
      }
    }
    return closure[node];
  };

  Graph out(nodes);
  for (auto [from, to] : build_edges) {
    out.add_edge(from, to, Strength::build);
  }
  for (auto [from, to] : build_edges) {
    for (NodeId member : closure_of(to)) {
      if (member != from) {
        out.add_edge(from, member, Strength::closure);
      }
    }
  }
  return out;
}

} // namespace swarm::dag
