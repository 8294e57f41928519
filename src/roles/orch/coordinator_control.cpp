// The coordinator's operator transitions: plan submission and one method per control action.
#include "roles/orch/coordinator.hpp"

#include <algorithm>
#include <set>
#include <tuple>
#include <unordered_map>

#include "portage/plan.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::orch {

Result<net::PlanReply> Coordinator::submit_plan(const portage::Plan& plan, net::PlanMode mode, bool clear_staging,
                                                const std::string& profile,
                                                const std::optional<portage::BuildProfile>& build_profile)
{
  if (!net::is_valid_profile_name(profile)) {
    return fail(ErrorKind::invalid, "\"{}\" is not a profile name", profile);
  }
  std::lock_guard lock(m_mutex);
  if (auto fresh = ensure_fresh(); !fresh) {
    return fail(fresh.error());
  }
  // This profile's rows and edges; the other profiles' stay as they are.
  std::vector<PackageRow> rows;
  std::vector<PackageRow> others;
  std::set<int64_t> ids;
  for (const auto& row : m_plan.packages()) {
    if (row.profile == profile) {
      rows.push_back(row);
      ids.insert(row.id);
    } else {
      others.push_back(row);
    }
  }
  std::vector<EdgeRow> edges;
  std::vector<EdgeRow> other_edges;
  for (const auto& edge : m_plan.edges()) {
    (ids.count(edge.package) ? edges : other_edges).push_back(edge);
  }
  const auto info = m_plan.info(profile);
  // What was built with another way of building (flags, CHOST, package.env …) is built again.
  auto rebuild = RebuildBuilt::no;
  if (mode == net::PlanMode::replace) {
    const auto previous = load_build_profile(info.build_profile);
    if (previous.has_value() != build_profile.has_value() ||
        (previous && portage::build_settings_differ(*previous, *build_profile))) {
      rebuild = info.source.empty() ? RebuildBuilt::no : RebuildBuilt::yes;
    }
  }
  auto change = diff_plan(info, rows, edges, plan, mode, clear_staging, now(), rebuild);
  std::string hash;
  std::string content;
  if (build_profile) {
    const auto profile_json = portage::build_profile_to_json(*build_profile);
    content = profile_json.dump();
    hash = portage::build_profile_hash(*build_profile);
  }
  // A replacement names exactly what it was computed with; an addition keeps the plan's.
  if (mode == net::PlanMode::replace || change.info.build_profile.empty()) {
    if (change.info.build_profile != hash) {
      change.info.build_profile = hash;
      change.reply.changed = true;
      change.info.submitted_at = now();
    }
  }
  if (change.reply.changed) {
    auto ok = transact([&](Transition& tx) {
      if (!hash.empty()) {
        m_store.save_build_profile(hash, content);
      }
      // Builds of packages that left the plan or must be built again stop.
      const std::set<int64_t> stopping(change.stop_builds.begin(), change.stop_builds.end());
      for (const auto& id : m_leases.select([&](const LeaseRow& lease) {
             return stopping.count(lease.package) && lease.state != LeaseState::uploaded;
           })) {
        end_lease(tx, *m_leases.find(id), LeaseEnd::cancelled,
                  change.deleted.empty() ? "the plan changed" : "no longer in the plan, or to be built again",
                  Requeue::no);
      }
      for (const auto id : change.deleted) {
        m_store.delete_package(id);
      }
      for (auto& row : change.rows) {
        m_store.save_package(row); // new rows get their id here
      }
      for (const auto& path : change.remove_files) {
        remove_artifact_after_commit(tx, profile, path);
      }
      std::unordered_map<std::string, int64_t> id_of;
      for (const auto& row : change.rows) {
        id_of[row.cpv] = row.id;
      }
      std::vector<EdgeRow> new_edges;
      for (const auto& edge : change.edges) {
        new_edges.push_back({id_of.at(edge.package), id_of.at(edge.needs), edge.kind});
      }
      if (change.edges_changed) {
        m_store.replace_edges({ids.begin(), ids.end()}, new_edges);
      }
      m_store.save_plan(change.info);

      // Memory: every profile's rows and edges again, with this one's replaced.
      others.insert(others.end(), change.rows.begin(), change.rows.end());
      std::sort(others.begin(), others.end(), [](const PackageRow& a, const PackageRow& b) { return a.id < b.id; });
      other_edges.insert(other_edges.end(), new_edges.begin(), new_edges.end());
      std::sort(other_edges.begin(), other_edges.end(), [](const EdgeRow& a, const EdgeRow& b) {
        return std::tie(a.package, a.needs, a.kind) < std::tie(b.package, b.needs, b.kind);
      });
      std::vector<PlanInfo> infos;
      for (const auto& [name, existing] : m_plan.infos()) {
        if (name != profile) {
          infos.push_back(existing);
        }
      }
      infos.push_back(change.info);
      save_flips(tx, m_plan.assign(std::move(infos), std::move(others), std::move(other_edges)));
      m_plan.load_history(m_store.load_success_durations());
      const auto& reply = change.reply;
      event(tx, mode == net::PlanMode::replace ? "plan" : "plan-add", "", "",
            fmt::format("{}{} packages: {} added, {} removed, {} rebuilt, {} kept",
                        profile == k_default_profile ? "" : "profile " + profile + ": ", reply.packages, reply.added,
                        reply.removed, reply.reset, reply.kept));
      tx.wake = true;
      tx.staging_changed = true;
    });
    if (!ok) {
      return fail(ok.error());
    }
  }
  auto reply = change.reply;
  reply.warnings.clear();
  for (const auto& warning : m_plan.warnings()) {
    for (const auto& row : change.rows) {
      if (warning.find(" " + row.cpv + " ") != std::string::npos) {
        reply.warnings.push_back(warning);
        break;
      }
    }
  }
  return reply;
}

Result<std::string> Coordinator::build_profile(const std::string& hash)
{
  std::lock_guard lock(m_mutex);
  if (auto text = m_store.load_build_profile(hash)) {
    return *text;
  }
  return fail(ErrorKind::not_found, "no build profile {}", hash);
}

Result<net::PauseReply> Coordinator::set_paused(bool paused)
{
  std::lock_guard lock(m_mutex);
  auto ok = transact([&](Transition& tx) {
    if (m_paused != paused) {
      m_paused = paused;
      m_store.set_meta("paused", paused ? "1" : "0");
      event(tx, paused ? "pause" : "resume", "", "", "by the operator");
      tx.wake = true;
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  return net::PauseReply{m_paused};
}

Result<net::ResetReply> Coordinator::reset()
{
  std::lock_guard lock(m_mutex);
  net::ResetReply reply;
  auto ok = transact([&](Transition& tx) {
    for (const auto& id : m_leases.select([](const LeaseRow& lease) { return lease.state != LeaseState::uploaded; })) {
      reply.returned +=
        end_lease(tx, *m_leases.find(id), LeaseEnd::cancelled, "reset by the operator", Requeue::yes).held;
    }
    event(tx, "reset", "", "", fmt::format("{} packages back in the queue", reply.returned));
  });
  if (!ok) {
    return fail(ok.error());
  }
  return reply;
}

Result<net::UnblockReply> Coordinator::unblock(const net::UnblockRequest& request)
{
  std::lock_guard lock(m_mutex);
  for (const auto& cpv : request.packages) {
    const auto* row = m_plan.find(request.profile, cpv);
    if (!row) {
      return fail(ErrorKind::not_found, "no package {} in the plan", cpv);
    }
    if (row->state != PkgState::blocked) {
      return fail(ErrorKind::conflict, "{} is {}, not blocked", cpv, to_string(row->state));
    }
  }
  net::UnblockReply reply;
  auto ok = transact([&](Transition& tx) {
    for (auto& row : m_plan.packages()) {
      if (row.state != PkgState::blocked || row.profile != request.profile) {
        continue;
      }
      if (!request.packages.empty() &&
          std::find(request.packages.begin(), request.packages.end(), row.cpv) == request.packages.end()) {
        continue;
      }
      row.failures = 0;
      row.failed_on.clear();
      set_state(tx, row, PkgState::needed);
      event(tx, "unblocked", "", row.cpv, "by the operator");
      reply.unblocked.push_back(row.cpv);
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  return reply;
}

Result<net::GroundReply> Coordinator::ground(const net::GroundRequest& request)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = m_drones.find(std::string_view(request.drone));
  if (!drone) {
    return fail(ErrorKind::not_found, "no drone named '{}'", request.drone);
  }
  auto ok = transact([&](Transition& tx) { ground_drone(tx, *drone, "by the operator", true); });
  if (!ok) {
    return fail(ok.error());
  }
  return net::GroundReply{request.drone, true};
}

Result<net::GroundReply> Coordinator::unground(const net::GroundRequest& request)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = m_drones.find(std::string_view(request.drone));
  if (!drone) {
    return fail(ErrorKind::not_found, "no drone named '{}'", request.drone);
  }
  auto ok = transact([&](Transition& tx) {
    drone->operator_grounded = false;
    drone->breaker.reset();
    drone->row.grounded_until = 0;
    drone->row.probation = false;
    drone->row.consecutive_failures = 0;
    m_store.save_drone(drone->row);
    event(tx, "ungrounded", drone->row.name, "", "by the operator");
    tx.wake = true;
  });
  if (!ok) {
    return fail(ok.error());
  }
  return net::GroundReply{request.drone, false};
}

Result<net::BalanceReply> Coordinator::balance()
{
  std::lock_guard lock(m_mutex);
  net::BalanceReply reply;
  auto ok = transact([&](Transition& tx) {
    const double t = now();
    auto stuck = [&](const LeaseRow& lease) {
      const auto* drone = m_drones.find(lease.drone);
      return lease.state == LeaseState::active && drone &&
             (!drone->row.online || drone->operator_grounded ||
              drone->breaker.state(t) == breaker::BreakerState::open ||
              drone->row.last_seen < t - 2 * m_options.heartbeat_interval);
    };
    for (const auto& id : m_leases.select(stuck)) {
      const auto ended = end_lease(tx, *m_leases.find(id), LeaseEnd::cancelled, "rebalanced", Requeue::yes);
      if (ended.held) {
        event(tx, "rebalanced", "", ended.package->cpv, "taken from a drone that cannot make progress");
        reply.moved.push_back(ended.package->cpv);
      }
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  return reply;
}

} // namespace swarm::roles::orch
