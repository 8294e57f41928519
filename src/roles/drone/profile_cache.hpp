#pragma once
// Build profiles by content hash: fetched from the orchestrator once
// (GET /api/v1/profiles/HASH), checked against the hash they are named by, kept in the spool
// (SPOOL/profiles/HASH.json) for every later lease and every later run.

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "portage/build_profile.hpp"
#include "roles/drone/orch_api.hpp"

namespace swarm::roles::drone {

// True for a build profile hash: 64 lowercase hex digits (SHA-256), safe as a file name.
bool is_profile_hash(std::string_view text);

class ProfileCache {
public:
  // `pause` waits between fetch attempts; it returns false when the drone is stopping.
  ProfileCache(std::filesystem::path dir, OrchApi& api, std::function<bool(std::chrono::milliseconds)> pause);

  // The profile named `hash`: the cached copy if it still matches, else fetched (a few
  // attempts with backoff while the orchestrator does not answer), verified and cached.
  // An error says why it is unavailable (the lease is then refused: profile_unavailable).
  Result<portage::BuildProfile> get(const std::string& hash);

private:
  Result<portage::BuildProfile> read_cached(const std::string& hash) const;

  std::filesystem::path m_dir;
  OrchApi& m_api;
  std::function<bool(std::chrono::milliseconds)> m_pause;
  std::mutex m_mutex; // one fetch at a time: slots leased the same new profile fetch it once
};

} // namespace swarm::roles::drone
