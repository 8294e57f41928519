#include "portage/plan.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "portage/atom.hpp"
#include "portage/dep_string.hpp"
#include "portage/emerge_output.hpp"
#include "portage/md5_cache.hpp"
#include "portage/version.hpp"

namespace swarm::portage {

namespace {

constexpr std::array k_edge_kinds{
  std::pair{EdgeKind::depend, std::string_view{"DEPEND"}},   std::pair{EdgeKind::bdepend, std::string_view{"BDEPEND"}},
  std::pair{EdgeKind::idepend, std::string_view{"IDEPEND"}}, std::pair{EdgeKind::rdepend, std::string_view{"RDEPEND"}},
  std::pair{EdgeKind::pdepend, std::string_view{"PDEPEND"}},
};

// SIZE → seconds fit of data/workloads/README.md (166 packages with both, log-log least squares).
constexpr double k_fit_a = -1.638244;
constexpr double k_fit_b = 0.422312;
constexpr double k_min_seconds = 20;
constexpr double k_max_seconds = 21600;

// A package atoms are matched against; only plan packages get edges.
struct Node {
  MatchCandidate candidate;
  std::string cpv;
  std::string cp;
  bool in_plan = false;
};

// Builds the edges of a plan, the algorithm of data/workloads/README.md: every atom matched
// against all nodes of its category/package; in `|| ( … )` the first alternative satisfiable
// by the nodes (an all-of alternative needs every atom), else the first that matches anything,
// else the group is unresolved; blockers give no edge; an atom matching another version of
// the package itself gives none either; edges are distinct per (package, needs, kind).
class EdgeBuilder {
public:
  size_t add_node(MatchCandidate candidate, bool in_plan)
  {
    Node node;
    node.cpv = candidate.cpv.str();
    node.cp = candidate.cpv.cp();
    node.candidate = std::move(candidate);
    node.in_plan = in_plan;
    m_by_cp[node.cp].push_back(m_nodes.size());
    m_nodes.push_back(std::move(node));
    return m_nodes.size() - 1;
  }

  void add_dependencies(size_t package, const DepNode& tree, EdgeKind kind) { walk(package, tree, kind); }

  std::vector<PlanEdge> take_edges() { return std::move(m_edges); }

  std::vector<std::string> take_unresolved() { return {m_unresolved.begin(), m_unresolved.end()}; }

private:
  std::vector<size_t> matches(const Atom& atom) const
  {
    std::vector<size_t> out;
    const auto it = m_by_cp.find(atom.cp);
    if (it == m_by_cp.end()) {
      return out;
    }
    for (const auto index : it->second) {
      if (atom_matches(atom, m_nodes[index].candidate)) {
        out.push_back(index);
      }
    }
    return out;
  }

  bool satisfiable(const DepNode& node) const
  {
    switch (node.kind) {
    case DepNodeKind::atom:
      return node.atom->blocker != BlockerKind::none || !matches(*node.atom).empty();
    case DepNodeKind::all_of:
      return std::all_of(node.children.begin(), node.children.end(),
                         [this](const DepNode& child) { return satisfiable(child); });
    case DepNodeKind::any_of:
      break;
    }
    return std::any_of(node.children.begin(), node.children.end(),
                       [this](const DepNode& child) { return satisfiable(child); });
  }

  bool matches_anything(const DepNode& node) const
  {
    if (node.kind == DepNodeKind::atom) {
      return node.atom->blocker == BlockerKind::none && !matches(*node.atom).empty();
    }
    return std::any_of(node.children.begin(), node.children.end(),
                       [this](const DepNode& child) { return matches_anything(child); });
  }

  static void collect_cps(const DepNode& node, std::set<std::string>& cps)
  {
    if (node.kind == DepNodeKind::atom) {
      cps.insert(node.atom->cp);
      return;
    }
    for (const auto& child : node.children) {
      collect_cps(child, cps);
    }
  }

  void add_atom(size_t package, const Atom& atom, EdgeKind kind)
  {
    if (atom.blocker != BlockerKind::none) {
      return;
    }
    const auto found = matches(atom);
    if (found.empty()) {
      m_unresolved.insert(atom.cp);
      return;
    }
    const auto& from = m_nodes[package];
    for (const auto index : found) {
      const auto& to = m_nodes[index];
      if (to.cp == from.cp || !to.in_plan) {
        continue;
      }
      const uint64_t key =
        (static_cast<uint64_t>(package) * m_nodes.size() + index) * k_edge_kinds.size() + static_cast<uint64_t>(kind);
      if (m_seen.insert(key).second) {
        m_edges.push_back(PlanEdge{from.cpv, to.cpv, kind});
      }
    }
  }

  void walk(size_t package, const DepNode& node, EdgeKind kind)
  {
    switch (node.kind) {
    case DepNodeKind::atom:
      add_atom(package, *node.atom, kind);
      return;
    case DepNodeKind::all_of:
      for (const auto& child : node.children) {
        walk(package, child, kind);
      }
      return;
    case DepNodeKind::any_of:
      break;
    }
    const DepNode* chosen = nullptr;
    for (const auto& child : node.children) {
      if (satisfiable(child)) {
        chosen = &child;
        break;
      }
    }
    if (chosen == nullptr) {
      for (const auto& child : node.children) {
        if (matches_anything(child)) {
          chosen = &child;
          break;
        }
      }
    }
    if (chosen != nullptr) {
      walk(package, *chosen, kind);
      return;
    }
    std::set<std::string> cps;
    collect_cps(node, cps);
    std::string group = "||";
    group += " (";
    for (const auto& cp : cps) {
      group += " " + cp;
    }
    group += " )";
    m_unresolved.insert(std::move(group));
  }

  std::vector<Node> m_nodes;
  std::unordered_map<std::string, std::vector<size_t>> m_by_cp;
  std::unordered_set<uint64_t> m_seen;
  std::vector<PlanEdge> m_edges;
  std::set<std::string> m_unresolved;
};

// "SLOT[/SUB]" into a candidate (the sub-slot defaults to the slot, as Portage's _pkg_str).
void set_slot(MatchCandidate& candidate, std::string_view slot)
{
  const auto slash = slot.find('/');
  candidate.slot = std::string(slot.substr(0, slash));
  candidate.sub_slot = slash == std::string_view::npos ? *candidate.slot : std::string(slot.substr(slash + 1));
}

std::vector<std::string> split_words(std::string_view text)
{
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) {
      ++i;
    }
    const size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') {
      ++i;
    }
    if (i > start) {
      out.emplace_back(text.substr(start, i - start));
    }
  }
  return out;
}

const std::string& block_value(const IndexBlock& block, const std::string& key)
{
  static const std::string k_empty;
  const auto it = block.find(key);
  return it == block.end() ? k_empty : it->second;
}

nlohmann::json number_json(double value)
{
  // Whole seconds stay integers in the JSON, as in plan.json.
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9e15) {
    return static_cast<int64_t>(value);
  }
  return value;
}

std::unexpected<Error> plan_error(std::string message)
{
  return std::unexpected(Error{ErrorKind::invalid, "plan: " + std::move(message)});
}

Result<std::string> optional_string(const nlohmann::json& object, const char* key, const std::string& where)
{
  if (!object.contains(key)) {
    return std::string{};
  }
  if (!object[key].is_string()) {
    return plan_error(fmt::format("{}{}: expected a string", where, key));
  }
  return object[key].get<std::string>();
}

} // namespace

std::string_view edge_kind_name(EdgeKind kind)
{
  for (const auto& [candidate, name] : k_edge_kinds) {
    if (candidate == kind) {
      return name;
    }
  }
  return "DEPEND";
}

std::optional<EdgeKind> edge_kind_from_name(std::string_view name)
{
  for (const auto& [kind, candidate] : k_edge_kinds) {
    if (candidate == name) {
      return kind;
    }
  }
  return std::nullopt;
}

double estimate_build_seconds(uint64_t package_file_bytes)
{
  const double raw = std::exp(k_fit_a) * std::pow(static_cast<double>(package_file_bytes), k_fit_b);
  // nearbyint rounds half to even, like Python's round().
  return std::nearbyint(std::clamp(raw, k_min_seconds, k_max_seconds));
}

nlohmann::json plan_to_json(const Plan& plan)
{
  nlohmann::json out;
  out["source"] = plan.source;
  if (!plan.tree_timestamp.empty()) {
    out["tree_timestamp"] = plan.tree_timestamp;
  }
  if (!plan.profile.empty()) {
    out["profile"] = plan.profile;
  }
  if (plan.merge_order) {
    out["merge_order"] = true;
  }
  auto packages = nlohmann::json::array();
  for (const auto& package : plan.packages) {
    packages.push_back({{"cpv", package.cpv},
                        {"slot", package.slot},
                        {"repo", package.repo},
                        {"use", package.use},
                        {"build_seconds", number_json(package.build_seconds)},
                        {"duration_source", package.duration_source}});
  }
  out["packages"] = std::move(packages);
  auto edges = nlohmann::json::array();
  for (const auto& edge : plan.edges) {
    edges.push_back({{"package", edge.package}, {"needs", edge.needs}, {"kind", edge_kind_name(edge.kind)}});
  }
  out["edges"] = std::move(edges);
  out["unresolved"] = plan.unresolved;
  return out;
}

Result<Plan> plan_from_json(const nlohmann::json& json)
{
  if (!json.is_object()) {
    return plan_error("expected a JSON object");
  }
  Plan plan;
  for (auto [key, target] : {std::pair{"source", &plan.source}, std::pair{"tree_timestamp", &plan.tree_timestamp},
                             std::pair{"profile", &plan.profile}}) {
    auto value = optional_string(json, key, "");
    if (!value) {
      return std::unexpected(value.error());
    }
    *target = std::move(*value);
  }
  if (json.contains("merge_order")) {
    if (!json["merge_order"].is_boolean()) {
      return plan_error("merge_order: expected true or false");
    }
    plan.merge_order = json["merge_order"].get<bool>();
  }
  if (!json.contains("packages") || !json["packages"].is_array()) {
    return plan_error("packages: expected an array");
  }
  std::unordered_set<std::string> cpvs;
  for (size_t i = 0; i < json["packages"].size(); ++i) {
    const auto& item = json["packages"][i];
    const auto where = fmt::format("packages[{}].", i);
    if (!item.is_object()) {
      return plan_error(fmt::format("packages[{}]: expected an object", i));
    }
    PlanPackage package;
    if (!item.contains("cpv") || !item["cpv"].is_string()) {
      return plan_error(where + "cpv: expected a string");
    }
    package.cpv = item["cpv"].get<std::string>();
    if (!parse_cpv(package.cpv) || package.cpv.find('/') == std::string::npos) {
      return plan_error(fmt::format("{}cpv: '{}' is not a valid category/package-version", where, package.cpv));
    }
    if (!cpvs.insert(package.cpv).second) {
      return plan_error(fmt::format("{}cpv: '{}' is listed twice", where, package.cpv));
    }
    for (auto [key, target] : {std::pair{"slot", &package.slot}, std::pair{"repo", &package.repo},
                               std::pair{"duration_source", &package.duration_source}}) {
      auto value = optional_string(item, key, where);
      if (!value) {
        return std::unexpected(value.error());
      }
      *target = std::move(*value);
    }
    if (item.contains("use")) {
      if (!item["use"].is_array()) {
        return plan_error(where + "use: expected an array of flags");
      }
      for (const auto& flag : item["use"]) {
        if (!flag.is_string()) {
          return plan_error(where + "use: expected an array of flags");
        }
        package.use.push_back(flag.get<std::string>());
      }
    }
    if (item.contains("build_seconds")) {
      if (!item["build_seconds"].is_number() || item["build_seconds"].get<double>() < 0) {
        return plan_error(where + "build_seconds: expected a number >= 0");
      }
      package.build_seconds = item["build_seconds"].get<double>();
    }
    plan.packages.push_back(std::move(package));
  }
  if (json.contains("edges")) {
    if (!json["edges"].is_array()) {
      return plan_error("edges: expected an array");
    }
    for (size_t i = 0; i < json["edges"].size(); ++i) {
      const auto& item = json["edges"][i];
      const auto where = fmt::format("edges[{}]", i);
      if (!item.is_object() || !item.contains("package") || !item["package"].is_string() || !item.contains("needs") ||
          !item["needs"].is_string() || !item.contains("kind") || !item["kind"].is_string()) {
        return plan_error(where + ": expected {\"package\", \"needs\", \"kind\"} strings");
      }
      PlanEdge edge;
      edge.package = item["package"].get<std::string>();
      edge.needs = item["needs"].get<std::string>();
      const auto kind = edge_kind_from_name(item["kind"].get<std::string>());
      if (!kind) {
        return plan_error(fmt::format("{}.kind: unknown kind '{}' (DEPEND, BDEPEND, IDEPEND, RDEPEND or PDEPEND)",
                                      where, item["kind"].get<std::string>()));
      }
      edge.kind = *kind;
      for (const auto* cpv : {&edge.package, &edge.needs}) {
        if (!cpvs.contains(*cpv)) {
          return plan_error(fmt::format("{}: '{}' is not a package of the plan", where, *cpv));
        }
      }
      plan.edges.push_back(std::move(edge));
    }
  }
  if (json.contains("unresolved")) {
    if (!json["unresolved"].is_array()) {
      return plan_error("unresolved: expected an array of strings");
    }
    for (const auto& item : json["unresolved"]) {
      if (!item.is_string()) {
        return plan_error("unresolved: expected an array of strings");
      }
      plan.unresolved.push_back(item.get<std::string>());
    }
  }
  return plan;
}

Result<Plan> plan_from_index(const PackagesIndex& index)
{
  Plan plan;
  plan.profile = block_value(index.header, "PROFILE");
  const auto& uri = block_value(index.header, "URI");
  plan.source = uri.empty() ? std::string("binhost Packages index") : "binhost Packages index of " + uri;

  // Several instances of one cpv (binpkg-multi-instance): the highest BUILD_ID stands for it,
  // in the place of the first.
  std::vector<const IndexBlock*> blocks;
  std::unordered_map<std::string, size_t> position;
  for (const auto& block : index.packages) {
    const auto& cpv = block_value(block, "CPV");
    const auto [it, inserted] = position.try_emplace(cpv, blocks.size());
    if (inserted) {
      blocks.push_back(&block);
      continue;
    }
    auto& kept = blocks[it->second];
    const auto kept_id = strings::parse_uint(block_value(*kept, "BUILD_ID")).value_or(0);
    if (strings::parse_uint(block_value(block, "BUILD_ID")).value_or(0) > kept_id) {
      kept = &block;
    }
  }

  EdgeBuilder builder;
  for (const auto* block : blocks) {
    const auto& cpv_text = block_value(*block, "CPV");
    auto cpv = parse_cpv(cpv_text);
    if (!cpv || cpv_text.find('/') == std::string::npos) {
      return fail(ErrorKind::invalid, "Packages: CPV '{}' is not a valid category/package-version", cpv_text);
    }
    PlanPackage package;
    package.cpv = cpv_text;
    package.slot = block_value(*block, "SLOT").empty() ? std::string("0") : block_value(*block, "SLOT");
    package.repo = block_value(*block, "REPO");
    package.use = split_words(block_value(*block, "USE"));
    package.build_seconds = estimate_build_seconds(strings::parse_uint(block_value(*block, "SIZE")).value_or(0));
    package.duration_source = "estimate";
    MatchCandidate candidate;
    candidate.cpv = std::move(*cpv);
    set_slot(candidate, package.slot);
    if (!package.repo.empty()) {
      candidate.repo = package.repo;
    }
    builder.add_node(std::move(candidate), true);
    plan.packages.push_back(std::move(package));
  }

  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto& block = *blocks[i];
    const FlagSet use(plan.packages[i].use.begin(), plan.packages[i].use.end());
    const auto& eapi = block_value(block, "EAPI");
    for (const auto& [kind, key] : k_edge_kinds) {
      const auto& depstr = block_value(block, std::string(key));
      if (depstr.empty()) {
        continue;
      }
      auto tree = reduce_dependencies(depstr, use, eapi.empty() ? std::string("0") : eapi);
      if (!tree) {
        return fail(ErrorKind::invalid, "Packages: {} {}: {}", plan.packages[i].cpv, key, tree.error().message);
      }
      builder.add_dependencies(i, *tree, kind);
    }
  }
  plan.edges = builder.take_edges();
  plan.unresolved = builder.take_unresolved();
  return plan;
}

Result<Plan> plan_from_emerge(std::string_view emerge_pv_output, const std::filesystem::path& repo_dir,
                              const EmergePlanOptions& options)
{
  auto list = parse_emerge_output(emerge_pv_output);
  if (!list) {
    return fail(list.error());
  }
  Plan plan;
  plan.source = "emerge --pretend output";
  plan.merge_order = true;
  plan.tree_timestamp = fs::read_first_line(repo_dir / "metadata" / "timestamp.chk");
  const auto repo_name = fs::read_first_line(repo_dir / "profiles" / "repo_name");

  struct Work {
    const MergeEntry* entry;
    Md5CacheEntry metadata;
    FlagSet use;
  };
  std::vector<Work> work;
  std::unordered_set<std::string> seen;
  for (const auto& entry : list->entries) {
    if ((entry.type != MergeType::ebuild && entry.type != MergeType::merge) || !seen.insert(entry.cpv).second) {
      continue;
    }
    auto metadata = read_md5_cache(repo_dir, entry.cpv);
    if (!metadata) {
      return fail(metadata.error().kind, "cannot plan {}: {}", entry.cpv, metadata.error().message);
    }
    FlagSet use;
    for (const auto& flag : entry.enabled_flags()) {
      use.insert(flag);
    }
    use.insert(options.implicit_use.begin(), options.implicit_use.end());
    work.push_back(Work{&entry, std::move(*metadata), std::move(use)});
  }

  EdgeBuilder builder;
  for (const auto& item : work) {
    PlanPackage package;
    package.cpv = item.entry->cpv;
    package.slot = item.metadata.get("SLOT").empty() ? std::string("0") : item.metadata.get("SLOT");
    package.repo = item.entry->repo.empty() ? repo_name : item.entry->repo;
    package.use.assign(item.use.begin(), item.use.end());
    package.duration_source = "unknown";
    MatchCandidate candidate;
    candidate.cpv = *parse_cpv(package.cpv); // parsed by the emerge output reader
    set_slot(candidate, package.slot);
    if (!package.repo.empty()) {
      candidate.repo = package.repo;
    }
    builder.add_node(std::move(candidate), true);
    plan.packages.push_back(std::move(package));
  }
  // Binary packages satisfy dependencies but are not built: nodes without edges to them.
  for (const auto& entry : list->entries) {
    if (entry.type != MergeType::binary || !seen.insert(entry.cpv).second) {
      continue;
    }
    MatchCandidate candidate;
    candidate.cpv = *parse_cpv(entry.cpv);
    if (!entry.slot.empty()) {
      set_slot(candidate, entry.subslot.empty() ? entry.slot : entry.slot + "/" + entry.subslot);
    }
    if (!entry.repo.empty()) {
      candidate.repo = entry.repo;
    }
    candidate.build_id = entry.build_id;
    builder.add_node(std::move(candidate), false);
  }

  for (size_t i = 0; i < work.size(); ++i) {
    const auto& item = work[i];
    for (const auto& [kind, key] : k_edge_kinds) {
      const auto& depstr = item.metadata.get(key);
      if (depstr.empty()) {
        continue;
      }
      auto tree = reduce_dependencies(depstr, item.use, item.metadata.eapi());
      if (!tree) {
        return fail(ErrorKind::invalid, "{} {} (md5-cache): {}", item.entry->cpv, key, tree.error().message);
      }
      builder.add_dependencies(i, *tree, kind);
    }
  }
  plan.edges = builder.take_edges();
  plan.unresolved = builder.take_unresolved();
  return plan;
}

} // namespace swarm::portage
