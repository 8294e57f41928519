#include "roles/orch/plan_state.hpp"

#include <algorithm>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "core/stats.hpp"

#include "portage/plan.hpp"
#include "portage/version.hpp"

namespace swarm::roles::orch {

namespace {

constexpr size_t k_history_per_package = 9; // median over the last few builds

bool is_build_kind(std::string_view kind)
{
  return kind == "DEPEND" || kind == "BDEPEND" || kind == "IDEPEND";
}

std::vector<std::string> sorted(std::vector<std::string> items)
{
  std::sort(items.begin(), items.end());
  return items;
}

// The artifact fields of a package that is to be built again.
void forget_artifact(PackageRow& row)
{
  row.artifact_path.clear();
  row.sha256.clear();
  row.size = 0;
  row.build_id = 0;
  row.received_at = 0;
  row.built_by.clear();
  row.built_tree_timestamp.clear();
  row.index_entry.clear();
  row.released_in = 0;
}

} // namespace

std::string cp_of(const std::string& cpv)
{
  if (auto parsed = portage::parse_cpv(cpv)) {
    return parsed->cp();
  }
  return cpv;
}

// ---------------------------------------------------------------------------------------------
// PlanState

namespace {

std::string key_of(const std::string& profile, std::string_view cpv)
{
  std::string key = profile;
  key += '\n';
  key += cpv;
  return key;
}

} // namespace

std::vector<DepFlip> PlanState::assign(std::vector<PlanInfo> infos, std::vector<PackageRow> packages,
                                       std::vector<EdgeRow> edges)
{
  m_infos.clear();
  bool merge_order = false;
  for (auto& info : infos) {
    merge_order = merge_order || info.merge_order;
    auto name = info.profile;
    m_infos[name] = std::move(info);
  }
  m_packages = std::move(packages);
  m_edges = std::move(edges);
  m_by_key.clear();
  m_by_id.clear();
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    m_by_key[key_of(m_packages[node].profile, m_packages[node].cpv)] = node;
    m_by_id[m_packages[node].id] = node;
  }
  std::vector<std::pair<dag::NodeId, dag::NodeId>> build_edges;
  std::vector<std::pair<dag::NodeId, dag::NodeId>> runtime_edges;
  for (const auto& edge : m_edges) {
    auto from = m_by_id.find(edge.package);
    auto to = m_by_id.find(edge.needs);
    if (from == m_by_id.end() || to == m_by_id.end()) {
      continue;
    }
    if (is_build_kind(edge.kind)) {
      build_edges.emplace_back(from->second, to->second);
    } else if (edge.kind == "RDEPEND") {
      // PDEPEND is "some time after": it never orders a build.
      runtime_edges.emplace_back(from->second, to->second);
    }
  }
  m_graph = dag::with_runtime_closure(m_packages.size(), build_edges, runtime_edges);

  // Portage's merge order breaks cycles where a plan has one (the profiles' plans share no edge,
  // so their positions never meet in a cycle).
  std::vector<size_t> positions;
  if (merge_order) {
    for (const auto& row : m_packages) {
      positions.push_back(static_cast<size_t>(row.plan_position));
    }
  }
  m_warnings.clear();
  for (const auto& broken : m_graph.break_cycles(positions)) {
    m_warnings.push_back(fmt::format(
      "cycle: {} no longer waits for {} ({}{})", m_packages[broken.from].cpv, m_packages[broken.to].cpv, broken.reason,
      broken.strength == dag::Strength::closure ? "" : "; built against the installed version"));
  }
  const auto order = m_graph.topological_order();
  m_topo_position.assign(m_packages.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) {
    m_topo_position[order[i]] = i;
  }

  m_scheduler = std::make_unique<sched::KahnScheduler>(m_graph, std::vector<double>(m_packages.size(), 0.0));
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    auto state = job_state(m_packages[node]);
    m_scheduler->set_state(node, state == sched::JobState::dep_failed ? sched::JobState::needed : state);
  }
  m_scheduler->recompute_dep_failed();
  auto flips = apply_dep_failed();
  refresh_priorities();
  return flips;
}

sched::JobState PlanState::job_state(const PackageRow& row) const
{
  using sched::JobState;
  if (!row.in_plan) {
    return row.state == PkgState::received ? JobState::done : JobState::dropped;
  }
  switch (row.state) {
  case PkgState::needed:
    return JobState::needed;
  case PkgState::delegated:
    return JobState::running;
  case PkgState::received:
    return JobState::done;
  case PkgState::blocked:
    return JobState::blocked;
  case PkgState::dep_failed:
    return JobState::dep_failed;
  }
  return JobState::needed;
}

std::vector<DepFlip> PlanState::apply_dep_failed()
{
  std::vector<DepFlip> flips;
  for (dag::NodeId node = 0; node < m_packages.size(); ++node) {
    auto& row = m_packages[node];
    const auto state = m_scheduler->state(node);
    if (state == sched::JobState::dep_failed && row.state == PkgState::needed) {
      row.state = PkgState::dep_failed;
      flips.push_back({&row, true});
    } else if (state == sched::JobState::needed && row.state == PkgState::dep_failed) {
      row.state = PkgState::needed;
      flips.push_back({&row, false});
    }
  }
  return flips;
}

std::vector<DepFlip> PlanState::set_state(PackageRow& row, PkgState state)
{
  const auto old = row.state;
  row.state = state;
  m_scheduler->set_state(node_of(row), job_state(row));
  if (state == PkgState::blocked || old == PkgState::blocked) {
    return apply_dep_failed();
  }
  return {};
}

PlanInfo PlanState::info(const std::string& profile) const
{
  if (auto it = m_infos.find(profile); it != m_infos.end()) {
    return it->second;
  }
  PlanInfo none;
  none.profile = profile;
  return none;
}

PackageRow* PlanState::find(const std::string& profile, std::string_view cpv)
{
  auto it = m_by_key.find(key_of(profile, cpv));
  return it == m_by_key.end() ? nullptr : &m_packages[it->second];
}

PackageRow* PlanState::find(int64_t id)
{
  auto it = m_by_id.find(id);
  return it == m_by_id.end() ? nullptr : &m_packages[it->second];
}

const PackageRow* PlanState::find(const std::string& profile, std::string_view cpv) const
{
  return const_cast<PlanState*>(this)->find(profile, cpv);
}

const PackageRow* PlanState::find(int64_t id) const
{
  return const_cast<PlanState*>(this)->find(id);
}

dag::NodeId PlanState::node_of(const PackageRow& row) const
{
  return static_cast<dag::NodeId>(&row - m_packages.data());
}

PackageRow* PlanState::pick(const std::function<bool(const PackageRow&)>& eligible)
{
  const auto node = m_scheduler->pick([&](dag::NodeId candidate) { return eligible(m_packages[candidate]); });
  return node ? &m_packages[*node] : nullptr;
}

bool PlanState::is_ready(const PackageRow& row) const
{
  return m_scheduler->is_ready(node_of(row));
}

size_t PlanState::waiting_count() const
{
  size_t waiting = 0;
  for (const auto& row : m_packages) {
    waiting += row.in_plan && row.state == PkgState::needed && !is_ready(row);
  }
  return waiting;
}

std::vector<std::string> PlanState::deps_of(const PackageRow& row) const
{
  std::vector<std::pair<size_t, std::string>> ordered;
  for (const auto& edge : m_graph.needs(node_of(row))) {
    const auto& dep = m_packages[edge.to];
    if (dep.state == PkgState::received && !dep.artifact_path.empty()) {
      ordered.emplace_back(m_topo_position[edge.to], dep.cpv);
    }
  }
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> out;
  for (auto& [position, cpv] : ordered) {
    out.push_back(std::move(cpv));
  }
  return out;
}

double PlanState::expected_seconds(const PackageRow& row) const
{
  if (auto it = m_history.find(cp_of(row.cpv)); it != m_history.end() && !it->second.empty()) {
    return stats::median(it->second);
  }
  return row.plan_seconds > 0 ? row.plan_seconds : m_default_seconds;
}

void PlanState::record_duration(const PackageRow& row, double seconds)
{
  auto& samples = m_history[cp_of(row.cpv)];
  samples.push_back(seconds);
  if (samples.size() > k_history_per_package) {
    samples.erase(samples.begin());
  }
  m_priorities_dirty = true;
}

void PlanState::load_history(const std::vector<std::pair<int64_t, double>>& durations)
{
  m_history.clear();
  for (const auto& [package, seconds] : durations) {
    if (const auto* row = find(package)) {
      auto& samples = m_history[cp_of(row->cpv)];
      samples.push_back(seconds);
      if (samples.size() > k_history_per_package) {
        samples.erase(samples.begin());
      }
    }
  }
  refresh_priorities();
}

void PlanState::refresh_priorities()
{
  std::vector<double> durations;
  durations.reserve(m_packages.size());
  for (const auto& row : m_packages) {
    durations.push_back(expected_seconds(row));
  }
  m_scheduler->set_priorities(m_graph.bottom_levels(durations));
  m_priorities_dirty = false;
}

// ---------------------------------------------------------------------------------------------
// diff_plan

PlanChange diff_plan(const PlanInfo& info, const std::vector<PackageRow>& rows, const std::vector<EdgeRow>& edges,
                     const portage::Plan& plan, net::PlanMode mode, bool clear_staging, double now,
                     RebuildBuilt rebuild)
{
  PlanChange change;
  auto& reply = change.reply;
  const bool replace = mode == net::PlanMode::replace;
  const auto tree_timestamp = replace || info.tree_timestamp.empty() ? plan.tree_timestamp : info.tree_timestamp;
  std::unordered_set<std::string> wanted;
  for (const auto& package : plan.packages) {
    wanted.insert(package.cpv);
  }

  // Packages the new plan no longer holds.
  for (const auto& row : rows) {
    if (wanted.count(row.cpv) || !replace) {
      change.rows.push_back(row);
      continue;
    }
    change.stop_builds.push_back(row.id);
    if (!row.artifact_path.empty() && !clear_staging) {
      auto kept = row;
      if (kept.in_plan) {
        kept.in_plan = false;
        reply.changed = true;
      }
      change.rows.push_back(std::move(kept));
      continue;
    }
    if (!row.artifact_path.empty()) {
      change.remove_files.push_back(row.artifact_path);
    }
    change.deleted.push_back(row.id);
    ++reply.removed;
    reply.changed = true;
  }

  // Packages of the new plan: new ones, unchanged ones, and ones built differently.
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < change.rows.size(); ++i) {
    index[change.rows[i].cpv] = i;
  }
  for (size_t i = 0; i < plan.packages.size(); ++i) {
    const auto& package = plan.packages[i];
    const auto use = sorted(package.use);
    const auto position = static_cast<int64_t>(i);
    auto it = index.find(package.cpv);
    if (it == index.end()) {
      PackageRow row;
      row.profile = info.profile;
      row.cpv = package.cpv;
      row.slot = package.slot;
      row.repo = package.repo;
      row.use = use;
      row.plan_seconds = package.build_seconds;
      row.plan_position = position;
      change.rows.push_back(std::move(row));
      index[package.cpv] = change.rows.size() - 1;
      ++reply.added;
      reply.changed = true;
      continue;
    }
    auto& row = change.rows[it->second];
    const bool same = row.slot == package.slot && row.repo == package.repo && sorted(row.use) == use;
    const bool stale = !row.artifact_path.empty() &&
                       (rebuild == RebuildBuilt::yes || (!tree_timestamp.empty() && !row.built_tree_timestamp.empty() &&
                                                         row.built_tree_timestamp != tree_timestamp));
    if (!same || stale) {
      change.stop_builds.push_back(row.id);
      if (!row.artifact_path.empty()) {
        change.remove_files.push_back(row.artifact_path);
      }
      forget_artifact(row);
      row.slot = package.slot;
      row.repo = package.repo;
      row.use = use;
      row.state = PkgState::needed;
      row.failures = 0;
      row.failed_on.clear();
      row.last_failure.clear();
      ++reply.reset;
      reply.changed = true;
    } else {
      ++reply.kept;
    }
    if (!row.in_plan || (replace && row.plan_position != position) ||
        (package.build_seconds > 0 && row.plan_seconds != package.build_seconds)) {
      row.in_plan = true;
      if (replace) {
        row.plan_position = position;
      }
      if (package.build_seconds > 0) {
        row.plan_seconds = package.build_seconds;
      }
      reply.changed = true;
    }
  }

  // Edges, by cpv: the old ones (when adding) and the plan's between packages that exist.
  std::unordered_map<int64_t, std::string> cpv_of_id;
  for (const auto& row : rows) {
    cpv_of_id[row.id] = row.cpv;
  }
  std::set<PlanChange::Edge> before;
  for (const auto& edge : edges) {
    auto from = cpv_of_id.find(edge.package);
    auto to = cpv_of_id.find(edge.needs);
    if (from != cpv_of_id.end() && to != cpv_of_id.end()) {
      before.insert({from->second, to->second, edge.kind});
    }
  }
  std::set<PlanChange::Edge> after;
  if (!replace) {
    after = before;
  }
  for (const auto& edge : plan.edges) {
    if (index.count(edge.package) && index.count(edge.needs)) {
      after.insert({edge.package, edge.needs, std::string(portage::edge_kind_name(edge.kind))});
    }
  }
  // Edges of deleted packages vanish with them.
  for (auto it = before.begin(); it != before.end();) {
    it = index.count(it->package) && index.count(it->needs) ? std::next(it) : before.erase(it);
  }
  change.edges.assign(after.begin(), after.end());
  change.edges_changed = after != before || edges.size() != before.size();
  reply.changed = reply.changed || change.edges_changed;

  change.info = info;
  if (replace || change.info.source.empty()) {
    change.info.source = plan.source;
    change.info.tree_timestamp = plan.tree_timestamp;
    change.info.portage_profile = plan.profile;
  }
  if (replace) {
    change.info.merge_order = plan.merge_order;
  }
  if (change.info.source != info.source || change.info.tree_timestamp != info.tree_timestamp ||
      change.info.portage_profile != info.portage_profile || change.info.merge_order != info.merge_order) {
    reply.changed = true;
  }
  if (reply.changed) {
    change.info.submitted_at = now;
  }
  reply.packages = change.rows.size();
  return change;
}

} // namespace swarm::roles::orch
