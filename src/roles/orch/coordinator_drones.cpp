// The coordinator's drone transitions: enrollment, registration, heartbeats and claims.
#include "roles/orch/coordinator.hpp"

#include <algorithm>
#include <chrono>

#include "core/hash.hpp"
#include "core/random.hpp"
#include "core/strings.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::orch {

Result<std::string> Coordinator::enroll(const std::string& name)
{
  if (!is_valid_drone_name(name)) {
    return fail(ErrorKind::invalid, "drone name '{}' must be 1-64 characters of [A-Za-z0-9._-]", name);
  }
  std::lock_guard lock(m_mutex);
  const auto token = "swd_" + random::hex_token(24);
  const auto hash = hash::hex_digest(hash::Algo::sha256, token);
  auto ok = transact([&](Transition& tx) {
    if (auto* existing = find_or_load_drone(name)) {
      // Re-enrolling replaces the token (the old one stops working at once).
      m_store.set_drone_token(existing->row.id, hash);
      existing->row.token_hash = hash;
      existing->row.revoked_at = 0;
      event(tx, "re-enrolled", name, "", "new token issued");
    } else {
      DroneRow row;
      row.name = name;
      row.token_hash = hash;
      row.enrolled_at = now();
      m_store.save_drone(row);
      m_drones.add(std::move(row));
      event(tx, "enrolled", name, "", "");
    }
    // Tells token lookups in other processes (the daemon, when this is `swarm drone enroll`)
    // that the enrolled drones changed.
    const auto generation = random::hex_token(8);
    m_store.set_meta("drones.generation", generation);
    tx.after_commit.push_back([this, hash, name, generation] {
      // Everything the database holds now, in case another process enrolled one meanwhile.
      try {
        DroneTokens::Snapshot snapshot{generation, {}};
        for (const auto& row : m_store.load_drones()) {
          snapshot.tokens.emplace_back(row.token_hash, row.name);
        }
        m_tokens.replace(std::move(snapshot));
      } catch (const std::exception&) {
        m_tokens.set(hash, name, generation);
      }
    });
  });
  if (!ok) {
    return fail(ok.error());
  }
  return token;
}

std::optional<std::string> Coordinator::drone_for_token(const std::string& token)
{
  return m_tokens.drone_for(token);
}

Result<net::Registration> Coordinator::register_drone(const std::string& name, const net::RegisterRequest& hello)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_or_load_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  if (!hello.name.empty() && hello.name != name) {
    return fail(ErrorKind::forbidden, "this token belongs to drone {}, not {}", name, hello.name);
  }
  if (hello.slots < 1 || hello.slots > 256 || hello.cores < 0) {
    return fail(ErrorKind::invalid, "slots must be 1-256 and cores not negative");
  }
  auto ok = transact([&](Transition& tx) {
    auto& row = drone->row;
    const bool was_online = row.online;
    row.cores = hello.cores;
    row.slots = hello.slots;
    row.ram_bytes = hello.ram_bytes;
    row.disk_free_bytes = hello.disk_free_bytes;
    row.tree_timestamp = hello.tree_timestamp;
    row.version = hello.version;
    row.last_seen = now();
    row.online = true;
    row.profiles = hello.profiles;
    row.build_root = hello.build_root;
    row.chost = hello.chost;
    m_store.save_drone(row);
    event(tx, was_online ? "re-registered" : "online", name, "",
          fmt::format("{} cores, {} slots, tree {}{}{}", hello.cores, hello.slots,
                      hello.tree_timestamp.empty() ? "unknown" : hello.tree_timestamp,
                      hello.profiles.empty() ? "" : ", profiles " + strings::join(hello.profiles, " "),
                      hello.build_root == "host" ? ", builds on its own system (--build-root host)" : ""));
    tx.wake = true;
    // A drone that registers again may have been given what it lacked.
    tx.after_commit.push_back([this, id = row.id] {
      if (auto* again = m_drones.find(id)) {
        again->refused.clear();
      }
    });
  });
  if (!ok) {
    return fail(ok.error());
  }
  net::Registration registration;
  registration.drone = name;
  registration.heartbeat_interval = m_options.heartbeat_interval;
  registration.lease_ttl = m_options.lease_ttl;
  registration.claim_wait = m_options.claim_wait;
  registration.staging_url = staging_url(k_default_profile);
  for (const auto& id : drone->leases) {
    const auto* lease = m_leases.find(id);
    if (const auto* row = lease ? m_plan.find(lease->package) : nullptr) {
      registration.leases.push_back(lease_view(*lease, *row));
    }
  }
  return registration;
}

Result<net::HeartbeatReply> Coordinator::heartbeat(const std::string& name, const net::HeartbeatRequest& beat)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_or_load_drone(name);
  if (!drone) {
    return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
  }
  net::HeartbeatReply reply;
  auto ok = transact([&](Transition& tx) {
    auto& row = drone->row;
    const double t = now();
    if (!row.online) {
      row.online = true;
      event(tx, "online", name, "", "heartbeat after silence");
    }
    row.last_seen = t;
    row.cpu_percent = beat.cpu_percent;
    row.mem_percent = beat.mem_percent;
    row.load1 = beat.load1;
    row.disk_free_bytes = beat.disk_free_bytes;
    if (beat.tree_timestamp) {
      row.tree_timestamp = *beat.tree_timestamp;
    }
    m_store.save_drone(row);
    for (const auto& id : beat.leases) {
      auto* lease = m_leases.find(id);
      if (!lease || lease->drone != row.id) {
        reply.cancel.push_back(id); // closed, or not its own: stop working on it
        continue;
      }
      auto* package = m_plan.find(lease->package);
      if (!package || (package->state == PkgState::received && lease->state != LeaseState::uploaded)) {
        reply.cancel.push_back(id);
        continue;
      }
      if (lease->state == LeaseState::active) {
        lease->expires = t + m_options.lease_ttl;
        m_store.save_lease(*lease);
      } else if (lease->state == LeaseState::expired && package->state == PkgState::needed) {
        // The drone was only slow to speak up; nobody else took the package meanwhile.
        lease->state = LeaseState::active;
        lease->expires = t + m_options.lease_ttl;
        m_store.save_lease(*lease);
        drone->leases.insert(id);
        set_state(tx, *package, PkgState::delegated);
        event(tx, "revived", name, package->cpv, "lease extended after expiry");
      }
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  reply.cancel.insert(reply.cancel.end(), drone->cancel.begin(), drone->cancel.end());
  drone->cancel.clear();
  std::sort(reply.cancel.begin(), reply.cancel.end());
  reply.cancel.erase(std::unique(reply.cancel.begin(), reply.cancel.end()), reply.cancel.end());
  const auto state = drone->state(now());
  reply.state = state == "grounded" || state == "probation" ? state : "online";
  reply.reason = block_of(*drone).reason;
  return reply;
}

// Scheduling policy beyond the critical path: a package that failed on this drone waits for
// another drone that could take it, and a heavy package waits for a bigger drone with a free
// slot. Busy is not unusable: counting only idle drones handed a failed package straight back
// to the drone it failed on, and after a few failures there it was blocked without ever being
// tried elsewhere.
bool Coordinator::package_fits(const PackageRow& row, const Drone& drone) const
{
  auto could_take = [&](const Drone& other) {
    if (!other.row.online || &other == &drone) {
      return false;
    }
    const auto block = block_of(other);
    return !block || block.code == net::ClaimCode::slots_full;
  };
  if (row.failed_on.count(drone.row.name)) {
    for (const auto& [name, other] : m_drones.all()) {
      if (could_take(other) && !row.failed_on.count(name)) {
        return false;
      }
    }
  }
  if (m_plan.expected_seconds(row) >= m_options.heavy_build_seconds) {
    for (const auto& [name, other] : m_drones.all()) {
      if (other.row.online && &other != &drone && !block_of(other) && other.row.cores > drone.row.cores &&
          !row.failed_on.count(name)) {
        return false;
      }
    }
  }
  return true;
}

net::Lease Coordinator::lease_view(const LeaseRow& lease, const PackageRow& row) const
{
  net::Lease view;
  view.id = lease.id;
  view.cpv = row.cpv;
  view.slot = row.slot;
  view.repo = row.repo;
  view.use = row.use;
  view.deps = m_plan.deps_of(row);
  view.expires_at = lease.expires;
  view.expected_seconds = m_plan.expected_seconds(row);
  view.staging_url = staging_url(row.profile);
  const auto info = m_plan.info(row.profile);
  view.tree_timestamp = info.tree_timestamp;
  view.profile = row.profile;
  view.profile_hash = info.build_profile;
  return view;
}

// A new active lease (and its build record) on `row` for `drone`. Inside a transaction.
LeaseRow Coordinator::open_lease(Transition& tx, Drone& drone, PackageRow& row)
{
  const double t = now();
  LeaseRow lease;
  lease.id = random::hex_token(16);
  lease.package = row.id;
  lease.drone = drone.row.id;
  lease.created = t;
  lease.expires = t + m_options.lease_ttl;
  BuildRow build;
  build.package = row.id;
  build.drone = drone.row.id;
  build.lease = lease.id;
  build.started = t;
  build.result = "running";
  m_store.save_build(build);
  lease.build = build.id;
  m_store.save_lease(lease);
  set_state(tx, row, PkgState::delegated);
  drone.leases.insert(lease.id);
  m_leases.put(lease);
  return lease;
}

std::optional<net::Lease> Coordinator::try_claim(Drone& drone, net::ClaimCode& code, std::string& reason)
{
  if (const auto block = block_of(drone)) {
    code = block.code;
    reason = block.reason;
    return std::nullopt;
  }
  std::map<std::string, Block> profile_blocks; // per profile, computed once
  auto profile_ok = [&](const std::string& profile) {
    auto it = profile_blocks.find(profile);
    if (it == profile_blocks.end()) {
      it = profile_blocks.emplace(profile, profile_block(drone, profile)).first;
    }
    return !it->second;
  };
  auto* row = m_plan.pick(
    [&](const PackageRow& candidate) { return profile_ok(candidate.profile) && package_fits(candidate, drone); });
  if (!row) {
    // Why: when every ready package is of a profile it cannot take, that profile says it.
    if (!profile_blocks.empty() && std::all_of(profile_blocks.begin(), profile_blocks.end(),
                                               [](const auto& entry) { return bool(entry.second); })) {
      std::vector<std::string> reasons;
      code = net::ClaimCode::left_for_other_drones;
      for (const auto& [profile, block] : profile_blocks) {
        reasons.push_back(block.reason);
        // A tree mismatch is what the operator can fix: its code wins.
        if (block.code == net::ClaimCode::tree_mismatch) {
          code = block.code;
        }
      }
      reason = "the ready packages are not for it: " + strings::join(reasons, "; ");
      return std::nullopt;
    }
    if (m_plan.scheduler().ready_count() > 0) {
      code = net::ClaimCode::left_for_other_drones;
      reason = "the ready packages wait for other drones";
    } else if (m_plan.waiting_count() > 0) {
      code = net::ClaimCode::waiting_for_dependencies;
      reason = "no package ready: the ones left wait for their dependencies";
    } else {
      code = net::ClaimCode::nothing_to_build;
      reason = "no package ready";
    }
    return std::nullopt;
  }
  std::optional<net::Lease> view;
  auto ok = transact([&](Transition& tx) {
    const auto lease = open_lease(tx, drone, *row);
    event(tx, "delegated", drone.row.name, row->cpv, fmt::format("lease {}", lease.id.substr(0, 8)));
    view = lease_view(lease, *row);
  });
  if (!ok) {
    code = net::ClaimCode::state_unavailable;
    reason = ok.error().message;
    return std::nullopt;
  }
  code = net::ClaimCode::none;
  reason.clear();
  return view;
}

Result<net::ClaimReply> Coordinator::claim(const std::string& name, double wait)
{
  std::unique_lock lock(m_mutex);
  wait = std::clamp(wait, 0.0, m_options.claim_wait);
  const auto deadline =
    std::chrono::steady_clock::now() +
    std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(wait));
  net::ClaimReply reply;
  bool woken = false;
  while (true) {
    // Looked up afresh each time: a reload after a failed transaction replaces the drones.
    Drone* drone = find_or_load_drone(name);
    if (!drone) {
      return fail(ErrorKind::forbidden, "drone {} is not enrolled", name);
    }
    if (!drone->row.slots) {
      return fail(ErrorKind::conflict, "drone {} must register before claiming", name);
    }
    if (m_shutdown) {
      reply.code = net::ClaimCode::shutting_down;
      reply.reason = "the orchestrator is shutting down";
      return reply;
    }
    reply.lease = try_claim(*drone, reply.code, reply.reason);
    if (reply.lease) {
      if (woken && m_options.on_claim_woken) {
        m_options.on_claim_woken(std::chrono::duration<double>(std::chrono::steady_clock::now() - m_last_wake).count());
      }
      return reply;
    }
    woken = true;
    if (m_changed.wait_until(lock, deadline) == std::cv_status::timeout) {
      if ((drone = m_drones.find(std::string_view(name))) != nullptr && !m_shutdown) {
        reply.lease = try_claim(*drone, reply.code, reply.reason);
      }
      return reply;
    }
  }
}

} // namespace swarm::roles::orch
