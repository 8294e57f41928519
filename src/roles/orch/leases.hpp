#pragma once
// Leases: who builds what until when. A lease is `active` until its artifact is taken
// (`uploaded`) and then reported (`completed`); otherwise it ends `failed` (reported failure),
// `expired` (no heartbeat in time, or its drone went offline), `returned` (handed back unbuilt)
// or `cancelled` (reset, grounding, the package left the plan or was received from another
// build). The LeaseBook holds the open ones; Coordinator::end_lease is the one place a lease
// ends, whichever path ends it.

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "roles/orch/model.hpp"

namespace swarm::roles::orch {

enum class LeaseEnd { completed, failed, expired, returned, cancelled };

// The stored lease state and the build's result for an ending.
LeaseState lease_state_of(LeaseEnd end);
const char* build_result_of(LeaseEnd end);

class LeaseBook {
public:
  // Open leases: active, uploaded, and expired ones whose late result may still come.
  LeaseRow* find(const std::string& id);
  const LeaseRow* find(const std::string& id) const;
  void put(const LeaseRow& lease) { m_open[lease.id] = lease; }
  void erase(const std::string& id) { m_open.erase(id); }
  void clear() { m_open.clear(); }

  // An active lease on `package` other than `except`.
  bool other_active(int64_t package, const std::string& except) const;
  // Ids of the open leases that `select` accepts, sorted (a stable order for events).
  std::vector<std::string> select(const std::function<bool(const LeaseRow&)>& accept) const;

  const std::unordered_map<std::string, LeaseRow>& all() const { return m_open; }

private:
  std::unordered_map<std::string, LeaseRow> m_open;
};

} // namespace swarm::roles::orch
