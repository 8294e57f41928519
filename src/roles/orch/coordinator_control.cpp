// The coordinator's operator transitions: plan submission and one method per control action.
#include "roles/orch/coordinator.hpp"

#include <algorithm>

#include "portage/plan.hpp"

namespace swarm::roles::orch {

Result<net::PlanReply> Coordinator::submit_plan(const portage::Plan& plan, net::PlanMode mode, bool clear_staging)
{
  std::lock_guard lock(m_mutex);
  if (auto fresh = ensure_fresh(); !fresh) {
    return fail(fresh.error());
  }
  auto change = diff_plan(m_plan.info(), m_plan.packages(), m_plan.edges(), plan, mode, clear_staging, now());
  if (change.reply.changed) {
    auto ok = transact([&](Transition& tx) {
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
        remove_artifact_after_commit(tx, path);
      }
      std::unordered_map<std::string, int64_t> id_of;
      for (const auto& row : change.rows) {
        id_of[row.cpv] = row.id;
      }
      std::vector<EdgeRow> edges;
      for (const auto& edge : change.edges) {
        edges.push_back({id_of.at(edge.package), id_of.at(edge.needs), edge.kind});
      }
      std::sort(edges.begin(), edges.end(), [](const EdgeRow& a, const EdgeRow& b) {
        return std::tie(a.package, a.needs, a.kind) < std::tie(b.package, b.needs, b.kind);
      });
      if (change.edges_changed) {
        m_store.replace_edges(edges);
      }
      const auto& info = change.info;
      m_store.set_meta("plan.source", info.source);
      m_store.set_meta("plan.tree_timestamp", info.tree_timestamp);
      m_store.set_meta("plan.profile", info.profile);
      m_store.set_meta("plan.merge_order", info.merge_order ? "1" : "0");
      m_store.set_meta("plan.submitted_at", fmt::format("{}", info.submitted_at));
      std::sort(change.rows.begin(), change.rows.end(),
                [](const PackageRow& a, const PackageRow& b) { return a.id < b.id; });
      save_flips(tx, m_plan.assign(info, std::move(change.rows), std::move(edges)));
      m_plan.load_history(m_store.load_success_durations());
      const auto& reply = change.reply;
      event(tx, mode == net::PlanMode::replace ? "plan" : "plan-add", "", "",
            fmt::format("{} packages: {} added, {} removed, {} rebuilt, {} kept", m_plan.packages().size(), reply.added,
                        reply.removed, reply.reset, reply.kept));
      tx.wake = true;
      tx.staging_changed = true;
    });
    if (!ok) {
      return fail(ok.error());
    }
  }
  auto reply = change.reply;
  reply.packages = m_plan.packages().size();
  reply.warnings = m_plan.warnings();
  return reply;
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
    const auto* row = m_plan.find(cpv);
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
      if (row.state != PkgState::blocked) {
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
