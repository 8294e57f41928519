// The coordinator's lease transitions: uploads, reports, returns and operator leases.
#include "roles/orch/coordinator.hpp"

#include <cmath>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "portage/version.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::orch {

namespace {

constexpr size_t k_speed_samples = 15;

// A build log that says the drone lacks something outside the plan is the drone's problem.
bool is_environment_failure(const net::ReportRequest& report)
{
  static constexpr std::string_view k_markers[] = {
    "--buildpkgonly requires all dependencies to be merged",
    "No space left on device",
    "swarm: drone environment:",
  };
  for (auto marker : k_markers) {
    if (report.log_tail.find(marker) != std::string::npos || report.reason.find(marker) != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool is_closed(LeaseState state)
{
  return state == LeaseState::returned || state == LeaseState::cancelled || state == LeaseState::failed;
}

} // namespace

Result<UploadTicket> Coordinator::begin_upload(const std::string& lease_id, const std::string& name)
{
  std::lock_guard lock(m_mutex);
  auto owned = owned_lease(lease_id, name);
  if (!owned) {
    return fail(owned.error());
  }
  const auto& lease = owned->second;
  const auto* row = m_plan.find(lease.package);
  if (!row) {
    return fail(ErrorKind::conflict, "the package of lease {} is no longer in the plan", lease_id);
  }
  if (is_closed(lease.state) && row->state != PkgState::received) {
    return fail(ErrorKind::conflict, "lease {} was {}", lease_id, to_string(lease.state));
  }
  auto cpv = portage::parse_cpv(row->cpv);
  if (!cpv) {
    return fail(ErrorKind::internal, "stored package {} is not a valid cpv", row->cpv);
  }
  UploadTicket ticket;
  ticket.cpv = row->cpv;
  ticket.category = cpv->category;
  ticket.package = cpv->package;
  ticket.profile = row->profile;
  ticket.incoming_dir = staging_dir(row->profile) / ".incoming";
  ticket.slot = row->slot;
  ticket.repo = row->repo;
  ticket.use = row->use;
  ticket.build_profile = load_build_profile(m_plan.info(row->profile).build_profile);
  return ticket;
}

Result<net::UploadReply> Coordinator::accept_artifact(const std::string& lease_id, const std::string& name,
                                                      const ArtifactInfo& artifact)
{
  std::lock_guard lock(m_mutex);
  auto discard = [&] {
    std::error_code ec;
    std::filesystem::remove(artifact.incoming_path, ec);
  };
  const Drone* drone = find_or_load_drone(name);
  const auto lease = find_lease(lease_id);
  if (!drone || !lease || lease->drone != drone->row.id) {
    discard();
    return fail(ErrorKind::forbidden, "lease {} is not this drone's", lease_id);
  }
  PackageRow* row = m_plan.find(lease->package);
  if (!row) {
    discard();
    return fail(ErrorKind::conflict, "the package of lease {} is no longer in the plan", lease_id);
  }
  if (row->state == PkgState::received) {
    discard();
    if (row->sha256 == artifact.sha256 ||
        (artifact.signed_here && lease->state == LeaseState::uploaded && lease->package == row->id)) {
      net::UploadReply duplicate;
      duplicate.duplicate = true;
      duplicate.path = row->artifact_path;
      return duplicate;
    }
    return fail(ErrorKind::conflict, "{} was already received from another build", row->cpv);
  }
  if (is_closed(lease->state)) {
    discard();
    return fail(ErrorKind::conflict, "lease {} was {}", lease_id, to_string(lease->state));
  }
  if (row->state == PkgState::blocked || row->state == PkgState::dep_failed || !row->in_plan) {
    discard();
    return fail(ErrorKind::conflict, "{} is {} and not wanted now", row->cpv, to_string(row->state));
  }

  // The file goes in before the record (under the lock, so maintenance cannot take it for an
  // orphan); if the record is not committed, the file is taken out again.
  const auto final_path = staging_dir(row->profile) / artifact.relative_path;
  if (auto made = fs::make_dirs(final_path.parent_path()); !made) {
    discard();
    return fail(made.error());
  }
  std::error_code ec;
  std::filesystem::rename(artifact.incoming_path, final_path, ec);
  if (ec) {
    discard();
    return fail(ErrorKind::io, "cannot move the artifact into staging: {}", ec.message());
  }
  (void)fs::fsync_dir(final_path.parent_path());

  auto ok = transact([&](Transition& tx) {
    row->artifact_path = artifact.relative_path;
    row->sha256 = artifact.sha256;
    row->size = artifact.size;
    row->build_id = artifact.build_id;
    row->received_at = now();
    row->built_by = name;
    row->built_tree_timestamp = drone->row.tree_timestamp;
    row->index_entry = artifact.index_entry;
    row->released_in = 0;
    // Received: its dependants are released now, not at the report.
    set_state(tx, *row, PkgState::received);
    auto taken = *lease;
    const bool stale = taken.state == LeaseState::expired;
    taken.state = LeaseState::uploaded;
    m_store.save_lease(taken);
    m_leases.put(taken);
    event(tx, "received", name, row->cpv,
          fmt::format("{} ({}){}", artifact.relative_path, strings::human_bytes(artifact.size),
                      stale ? ", from an expired lease" : ""));
    // Anybody else still building it can stop.
    for (const auto& id : m_leases.select([&](const LeaseRow& other) {
           return other.id != lease_id && other.package == row->id && other.state != LeaseState::uploaded;
         })) {
      end_lease(tx, *m_leases.find(id), LeaseEnd::cancelled, "received from another build", Requeue::no);
    }
    tx.staging_changed = true;
  });
  if (!ok) {
    std::filesystem::remove(final_path, ec);
    return fail(ok.error());
  }
  net::UploadReply reply;
  reply.path = artifact.relative_path;
  reply.sha256 = artifact.sha256;
  reply.size = artifact.size;
  return reply;
}

Result<> Coordinator::reject_artifact(const std::string& lease_id, const std::string& name,
                                      const std::vector<std::string>& differences)
{
  std::lock_guard lock(m_mutex);
  auto owned = owned_lease(lease_id, name);
  if (!owned) {
    return fail(owned.error());
  }
  Drone* drone = owned->first;
  const auto& lease = owned->second;
  if (lease.state != LeaseState::active && lease.state != LeaseState::expired) {
    return {}; // nothing open to end: the refusal of the upload is all
  }
  const auto reason = "mis-built: " + strings::join(differences, "; ");
  return transact([&](Transition& tx) {
    const auto ended = end_lease(tx, lease, LeaseEnd::failed, reason, Requeue::yes);
    if (ended.package) {
      event(tx, "misbuilt", name, ended.package->cpv,
            fmt::format("refused, counted against the drone: {}", strings::join(differences, "; ")));
    }
    if (!drone->operator_grounded) {
      if (drone->breaker.record_failure(now())) {
        ground_drone(
          tx, *drone,
          fmt::format("{} consecutive failures (the last: {})", drone->breaker.consecutive_failures(), reason), false);
      } else {
        drone->row.consecutive_failures = drone->breaker.consecutive_failures();
        m_store.save_drone(drone->row);
      }
    }
  });
}

Result<> Coordinator::refuse(const std::string& lease_id, const std::string& name, const net::RefuseRequest& refusal)
{
  std::lock_guard lock(m_mutex);
  auto owned = owned_lease(lease_id, name);
  if (!owned) {
    return fail(owned.error());
  }
  const auto& lease = owned->second;
  if (lease.state != LeaseState::active && lease.state != LeaseState::expired) {
    return fail(ErrorKind::conflict, "lease {} is {}", lease_id, to_string(lease.state));
  }
  const auto* row = m_plan.find(lease.package);
  const auto profile = row ? row->profile : std::string(k_default_profile);
  const auto reason = fmt::format("{}: {}", refusal.code, refusal.reason);
  return transact([&](Transition& tx) {
    const auto ended = end_lease(tx, lease, LeaseEnd::returned, "refused: " + reason, Requeue::yes);
    event(
      tx, "refused", name, ended.package ? ended.package->cpv : "",
      fmt::format("cannot build profile {} as it asks ({}); no more of it until it registers again", profile, reason));
    tx.after_commit.push_back([this, drone_id = lease.drone, profile, reason] {
      if (auto* drone = m_drones.find(drone_id)) {
        drone->refused[profile] = reason;
      }
    });
  });
}

Result<net::ReportReply> Coordinator::report(const std::string& lease_id, const std::string& name,
                                             const net::ReportRequest& report)
{
  std::lock_guard lock(m_mutex);
  auto owned = owned_lease(lease_id, name);
  if (!owned) {
    return fail(owned.error());
  }
  Drone* drone = owned->first;
  const std::optional<LeaseRow> lease = owned->second;
  if (lease->state == LeaseState::completed || lease->state == LeaseState::failed) {
    return net::ReportReply{true, true};
  }
  const auto drone_id = drone->row.id;

  if (report.result == net::BuildResult::success) {
    if (lease->state != LeaseState::uploaded) {
      return fail(ErrorKind::conflict, "no artifact was received for lease {}: upload it before reporting success",
                  lease_id);
    }
    std::optional<double> speed_sample;
    auto ok = transact([&](Transition& tx) {
      const auto ended =
        end_lease(tx, *lease, LeaseEnd::completed, "", Requeue::no, report.duration_seconds, report.log_tail);
      if (ended.package) {
        const double base = m_plan.expected_seconds(*ended.package);
        if (base > 0 && report.duration_seconds > 0) {
          speed_sample = report.duration_seconds / base;
        }
      }
      const bool was_probation = drone->breaker.probation() && !drone->operator_grounded;
      drone->breaker.record_success();
      drone->row.consecutive_failures = 0;
      drone->row.probation = false;
      if (!drone->operator_grounded) {
        drone->row.grounded_until = 0;
      }
      m_store.save_drone(drone->row);
      event(tx, "built", name, ended.package ? ended.package->cpv : "",
            fmt::format("in {}", strings::human_duration(report.duration_seconds)));
      if (was_probation) {
        event(tx, "probation-passed", name, "", "back to full service");
      }
      // The history the priorities come from is a cache of the builds table: updated with it.
      const auto package_id = lease->package;
      const auto duration = report.duration_seconds;
      tx.after_commit.push_back([this, package_id, duration, drone_id, &speed_sample] {
        if (const auto* row = m_plan.find(package_id); row && duration > 0) {
          m_plan.record_duration(*row, duration);
        }
        if (auto* holder = m_drones.find(drone_id); holder && speed_sample) {
          holder->speed_samples.push_back(*speed_sample);
          if (holder->speed_samples.size() > k_speed_samples) {
            holder->speed_samples.erase(holder->speed_samples.begin());
          }
        }
      });
    });
    if (!ok) {
      return fail(ok.error());
    }
    return net::ReportReply{true, false};
  }

  if (lease->state == LeaseState::uploaded) {
    return fail(ErrorKind::conflict, "lease {} already delivered its artifact; it cannot fail now", lease_id);
  }
  const bool environment = is_environment_failure(report);
  const auto reason = report.reason.empty() ? std::string("build failed") : report.reason;
  auto ok = transact([&](Transition& tx) {
    const auto ended =
      end_lease(tx, *lease, LeaseEnd::failed, reason, Requeue::no, report.duration_seconds, report.log_tail);
    PackageRow* row = ended.package;
    if (row && row->state != PkgState::received) {
      row->last_failure = reason;
      const bool other_active = m_leases.other_active(row->id, lease_id);
      if (environment) {
        event(tx, "failed", name, row->cpv, "drone environment problem (not counted against the package): " + reason);
        ended.held ? set_state(tx, *row, PkgState::needed) : m_store.save_package(*row);
      } else {
        breaker::PackageBreaker package_breaker(m_options.package_failure_drones);
        const bool block = package_breaker.record_failure(row->failed_on, row->failures, name);
        if (block && !other_active) {
          row->retry_at = now() + m_options.retry_backoff * std::pow(2.0, row->retries);
          set_state(tx, *row, PkgState::blocked);
          event(tx, "blocked", name, row->cpv,
                fmt::format("failed on {}: {}", strings::join({row->failed_on.begin(), row->failed_on.end()}, ", "),
                            reason));
        } else {
          ended.held ? set_state(tx, *row, PkgState::needed) : m_store.save_package(*row);
          event(tx, "failed", name, row->cpv, reason);
        }
      }
    }
    if (drone->operator_grounded) {
      return;
    }
    if (drone->breaker.record_failure(now())) {
      ground_drone(tx, *drone, fmt::format("{} consecutive failures", drone->breaker.consecutive_failures()), false);
    } else {
      drone->row.consecutive_failures = drone->breaker.consecutive_failures();
      m_store.save_drone(drone->row);
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  return net::ReportReply{true, false};
}

Result<> Coordinator::return_lease(const std::string& lease_id, const std::string& name)
{
  std::lock_guard lock(m_mutex);
  const Drone* drone = find_or_load_drone(name);
  const auto* lease = m_leases.find(lease_id);
  if (!drone || !lease) {
    return fail(ErrorKind::not_found, "no open lease {}", lease_id);
  }
  if (lease->drone != drone->row.id) {
    return fail(ErrorKind::forbidden, "lease {} belongs to another drone", lease_id);
  }
  if (lease->state == LeaseState::uploaded) {
    return fail(ErrorKind::conflict, "lease {} already delivered its artifact", lease_id);
  }
  return transact([&](Transition& tx) {
    const auto ended = end_lease(tx, *lease, LeaseEnd::returned, "returned by the drone", Requeue::yes);
    if (ended.held) {
      event(tx, "returned", name, ended.package->cpv, "handed back unbuilt");
    }
  });
}

Result<std::filesystem::path> Coordinator::log_path(const std::string& lease_id, const std::string& name)
{
  std::lock_guard lock(m_mutex);
  auto owned = owned_lease(lease_id, name);
  if (!owned) {
    return fail(owned.error());
  }
  return m_options.logs_dir / fmt::format("{}.log", owned->second.build);
}

Result<net::Lease> Coordinator::lease_package(const std::string& name, const std::string& profile,
                                              const std::string& cpv)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_or_load_drone(name);
  if (!drone) {
    return fail(ErrorKind::not_found, "drone {} is not enrolled", name);
  }
  PackageRow* row = m_plan.find(profile, cpv);
  if (!row || !row->in_plan) {
    return fail(ErrorKind::not_found, "no package {} in the plan", cpv);
  }
  if (row->state == PkgState::received) {
    return fail(ErrorKind::conflict, "{} is already built ({})", cpv, row->artifact_path);
  }
  if (row->state == PkgState::delegated) {
    return fail(ErrorKind::conflict, "{} is being built by a drone right now (`swarm reset` returns it first)", cpv);
  }
  std::optional<net::Lease> view;
  auto ok = transact([&](Transition& tx) {
    const auto before = to_string(row->state);
    // A blocked package leaves blocked here, which also restores its dependants.
    row->failures = 0;
    row->failed_on.clear();
    const auto lease = open_lease(tx, *drone, *row);
    event(tx, "delegated", name, row->cpv,
          fmt::format("lease {} by the operator (was {})", lease.id.substr(0, 8), before));
    view = lease_view(lease, *row);
  });
  if (!ok) {
    return fail(ok.error());
  }
  return *view;
}

} // namespace swarm::roles::orch
