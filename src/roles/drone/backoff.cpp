#include "roles/drone/backoff.hpp"

#include <algorithm>

namespace swarm::roles::drone {

Backoff::Backoff(Duration first, Duration cap) : m_first(first), m_cap(std::max(first, cap)), m_next(first)
{}

Backoff::Duration Backoff::next()
{
  const auto wait = m_next;
  m_next = std::min(m_cap, m_next * 2);
  return wait;
}

void Backoff::reset()
{
  m_next = m_first;
}

} // namespace swarm::roles::drone
