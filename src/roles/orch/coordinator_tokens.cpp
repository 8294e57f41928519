// The coordinator's credentials besides enrollment: revoking a drone, and read-only tokens.
#include "roles/orch/coordinator.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/hash.hpp"
#include "core/random.hpp"

namespace swarm::roles::orch {

Result<int> Coordinator::revoke(const std::string& name)
{
  std::lock_guard lock(m_mutex);
  Drone* drone = find_or_load_drone(name);
  if (!drone) {
    return fail(ErrorKind::not_found, "no drone named '{}'", name);
  }
  int requeued = 0;
  auto ok = transact([&](Transition& tx) {
    // A value no SHA-256 of a token can equal: the old token stops matching at once.
    const auto dead_hash = "revoked-" + random::hex_token(16);
    const double t = now();
    m_store.set_drone_token(drone->row.id, dead_hash, t);
    drone->row.token_hash = dead_hash;
    drone->row.revoked_at = t;
    drone->row.online = false;
    m_store.save_drone(drone->row);
    event(tx, "revoked", name, "", "token revoked by the operator");
    for (const auto& id : m_leases.select(
           [&](const LeaseRow& lease) { return lease.drone == drone->row.id && lease.state == LeaseState::active; })) {
      const auto ended = end_lease(tx, *m_leases.find(id), LeaseEnd::cancelled, "drone revoked", Requeue::yes);
      if (ended.held) {
        ++requeued;
        event(tx, "reclaimed", name, ended.package->cpv, "drone revoked");
      }
    }
    const auto generation = random::hex_token(8);
    m_store.set_meta("drones.generation", generation);
    tx.after_commit.push_back([this, generation] {
      DroneTokens::Snapshot snapshot{generation, {}};
      for (const auto& [drone_name, known] : m_drones.all()) {
        snapshot.tokens.emplace_back(known.row.token_hash, drone_name);
      }
      m_tokens.replace(std::move(snapshot));
    });
  });
  if (!ok) {
    return fail(ok.error());
  }
  return requeued;
}

Result<std::string> Coordinator::create_reader_token(const std::string& name)
{
  if (!is_valid_drone_name(name)) {
    return fail(ErrorKind::invalid, "token name '{}' must be 1-64 characters of [A-Za-z0-9._-]", name);
  }
  std::lock_guard lock(m_mutex);
  const auto token = "swr_" + random::hex_token(24);
  TokenRow row{name, hash::hex_digest(hash::Algo::sha256, token), "reader", now()};
  auto ok = transact([&](Transition& tx) {
    m_store.save_token(row);
    event(tx, "token-created", "", "", fmt::format("read-only token {}", name));
  });
  if (!ok) {
    return fail(ok.error());
  }
  std::unique_lock reader_lock(m_reader_mutex);
  std::erase_if(m_reader_tokens, [&](const auto& entry) { return entry.second.name == name; });
  m_reader_tokens[row.token_hash] = row;
  return token;
}

Result<> Coordinator::delete_reader_token(const std::string& name)
{
  std::lock_guard lock(m_mutex);
  bool found = false;
  auto ok = transact([&](Transition& tx) {
    found = m_store.delete_token(name);
    if (found) {
      event(tx, "token-revoked", "", "", fmt::format("read-only token {}", name));
    }
  });
  if (!ok) {
    return fail(ok.error());
  }
  if (!found) {
    return fail(ErrorKind::not_found, "no token named '{}'", name);
  }
  std::unique_lock reader_lock(m_reader_mutex);
  std::erase_if(m_reader_tokens, [&](const auto& entry) { return entry.second.name == name; });
  return {};
}

std::optional<std::string> Coordinator::reader_for_token(const std::string& token) const
{
  // By the SHA-256 of the token, as drone tokens: the lookup's timing says nothing of a token.
  const auto hash = hash::hex_digest(hash::Algo::sha256, token);
  std::shared_lock reader_lock(m_reader_mutex);
  if (auto it = m_reader_tokens.find(hash); it != m_reader_tokens.end()) {
    return it->second.name;
  }
  return std::nullopt;
}

nlohmann::json Coordinator::tokens_view()
{
  auto out = nlohmann::json::array();
  std::shared_lock reader_lock(m_reader_mutex);
  std::vector<const TokenRow*> rows;
  for (const auto& [hash, row] : m_reader_tokens) {
    rows.push_back(&row);
  }
  std::sort(rows.begin(), rows.end(), [](const TokenRow* a, const TokenRow* b) { return a->name < b->name; });
  for (const auto* row : rows) {
    out.push_back({{"name", row->name}, {"role", row->role}, {"created_at", row->created_at}});
  }
  return out;
}

} // namespace swarm::roles::orch
