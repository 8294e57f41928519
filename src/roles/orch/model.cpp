#include "roles/orch/model.hpp"

#include <array>
#include <utility>

namespace swarm::roles::orch {

namespace {

constexpr std::array<std::pair<PkgState, std::string_view>, 5> k_pkg_states{{
  {PkgState::needed, "needed"},
  {PkgState::delegated, "delegated"},
  {PkgState::received, "received"},
  {PkgState::blocked, "blocked"},
  {PkgState::dep_failed, "dep-failed"},
}};

constexpr std::array<std::pair<LeaseState, std::string_view>, 7> k_lease_states{{
  {LeaseState::active, "active"},
  {LeaseState::uploaded, "uploaded"},
  {LeaseState::completed, "completed"},
  {LeaseState::expired, "expired"},
  {LeaseState::returned, "returned"},
  {LeaseState::failed, "failed"},
  {LeaseState::cancelled, "cancelled"},
}};

} // namespace

std::string_view to_string(PkgState state)
{
  for (const auto& [value, name] : k_pkg_states) {
    if (value == state) {
      return name;
    }
  }
  return "?";
}

std::string_view to_string(LeaseState state)
{
  for (const auto& [value, name] : k_lease_states) {
    if (value == state) {
      return name;
    }
  }
  return "?";
}

std::optional<PkgState> parse_pkg_state(std::string_view text)
{
  for (const auto& [value, name] : k_pkg_states) {
    if (name == text) {
      return value;
    }
  }
  return std::nullopt;
}

std::optional<LeaseState> parse_lease_state(std::string_view text)
{
  for (const auto& [value, name] : k_lease_states) {
    if (name == text) {
      return value;
    }
  }
  return std::nullopt;
}

} // namespace swarm::roles::orch
