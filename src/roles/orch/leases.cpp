#include "roles/orch/leases.hpp"

#include <algorithm>

namespace swarm::roles::orch {

LeaseState lease_state_of(LeaseEnd end)
{
  switch (end) {
  case LeaseEnd::completed:
    return LeaseState::completed;
  case LeaseEnd::failed:
    return LeaseState::failed;
  case LeaseEnd::expired:
    return LeaseState::expired;
  case LeaseEnd::returned:
    return LeaseState::returned;
  case LeaseEnd::cancelled:
    return LeaseState::cancelled;
  }
  return LeaseState::cancelled;
}

const char* build_result_of(LeaseEnd end)
{
  switch (end) {
  case LeaseEnd::completed:
    return "success";
  case LeaseEnd::failed:
    return "failure";
  case LeaseEnd::expired:
    return "expired";
  case LeaseEnd::returned:
    return "returned";
  case LeaseEnd::cancelled:
    return "cancelled";
  }
  return "cancelled";
}

LeaseRow* LeaseBook::find(const std::string& id)
{
  auto it = m_open.find(id);
  return it == m_open.end() ? nullptr : &it->second;
}

const LeaseRow* LeaseBook::find(const std::string& id) const
{
  auto it = m_open.find(id);
  return it == m_open.end() ? nullptr : &it->second;
}

bool LeaseBook::other_active(int64_t package, const std::string& except) const
{
  return std::any_of(m_open.begin(), m_open.end(), [&](const auto& entry) {
    return entry.first != except && entry.second.package == package && entry.second.state == LeaseState::active;
  });
}

std::vector<std::string> LeaseBook::select(const std::function<bool(const LeaseRow&)>& accept) const
{
  std::vector<std::string> out;
  for (const auto& [id, lease] : m_open) {
    if (accept(lease)) {
      out.push_back(id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace swarm::roles::orch
