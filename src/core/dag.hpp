#pragma once
// A dependency graph of build jobs: "X waits for Y" edges with a strength, cycle detection
// (Tarjan), visible cycle breaking, topological order and critical-path levels. It knows
// nothing of Portage: the caller maps packages to node ids and edge kinds to strengths.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace swarm::dag {

using NodeId = uint32_t;

// Softer edges are dropped first when a cycle must be broken.
enum class Strength : uint8_t {
  closure = 0, // X waits for Y only because Y is in the runtime closure of a build dependency
  build = 1,   // Y is a direct build dependency of X
};

struct Edge {
  NodeId from; // waits …
  NodeId to;   // … for this one
  Strength strength;
};

// An edge removed to make the graph acyclic, with the rule that removed it.
struct BrokenEdge {
  NodeId from;
  NodeId to;
  Strength strength;
  std::string reason;
};

class Graph {
public:
  explicit Graph(size_t nodes = 0);

  size_t size() const { return m_needs.size(); }
  size_t edge_count() const;

  // Adds "from waits for to"; a repeated edge keeps the stronger strength. Self-edges are ignored.
  void add_edge(NodeId from, NodeId to, Strength strength);
  void remove_edge(NodeId from, NodeId to);
  bool has_edge(NodeId from, NodeId to) const;

  // What `node` waits for (sorted by id), and who waits for `node` (sorted by id).
  const std::vector<Edge>& needs(NodeId node) const { return m_needs[node]; }
  const std::vector<NodeId>& dependants(NodeId node) const { return m_dependants[node]; }

  // Strongly connected components with more than one node: the cycles.
  std::vector<std::vector<NodeId>> cycles() const;

  // Removes edges until no cycle is left, and says which and why:
  //  1. closure edges inside a cycle (installing a dependency's runtime closure can wait);
  //  2. with `merge_position` (Portage's merge order): an edge X→Y inside a cycle where Y merges
  //     after X — Portage deferred it and relied on the installed Y;
  //  3. otherwise the edges into the cycle member with the most dependants (it is built last
  //     within the cycle, against the fresh others; outside packages still wait for it).
  // `merge_position` is empty or has one entry per node.
  std::vector<BrokenEdge> break_cycles(std::span<const size_t> merge_position = {});

  // Every node, dependencies before dependants; ties in id order. Requires an acyclic graph.
  std::vector<NodeId> topological_order() const;

  // For each node, the longest sum of durations on a chain from it through its dependants to
  // the end of the graph (itself included): the critical-path priority. Requires acyclic.
  std::vector<double> bottom_levels(std::span<const double> durations) const;

  // Every node that transitively waits for `node` (not `node` itself).
  std::vector<NodeId> transitive_dependants(NodeId node) const;

  // What `node` transitively waits for, dependencies first (topological order).
  std::vector<NodeId> transitive_needs(NodeId node) const;

private:
  std::vector<std::vector<Edge>> m_needs;
  std::vector<std::vector<NodeId>> m_dependants;
};

// Build relation plus runtime relation → the waits-for graph a build scheduler needs: X waits
// for each build dependency Y (strength build) and for everything in the runtime closure of
// each such Y (strength closure), never for itself.
Graph with_runtime_closure(size_t nodes, std::span<const std::pair<NodeId, NodeId>> build_edges,
                           std::span<const std::pair<NodeId, NodeId>> runtime_edges);

} // namespace swarm::dag
