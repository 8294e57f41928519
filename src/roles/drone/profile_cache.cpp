#include "roles/drone/profile_cache.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "roles/drone/backoff.hpp"

namespace swarm::roles::drone {

namespace {

constexpr int k_fetch_attempts = 4;
constexpr uint64_t k_profile_limit = 16u << 20;

Result<portage::BuildProfile> verified(const nlohmann::json& body, const std::string& hash)
{
  auto profile = portage::build_profile_from_json(body);
  if (!profile) {
    return fail(profile.error());
  }
  const auto actual = portage::build_profile_hash(*profile);
  if (actual != hash) {
    return fail(ErrorKind::invalid, "the profile served as {} hashes to {}", hash, actual);
  }
  return profile;
}

} // namespace

bool is_profile_hash(std::string_view text)
{
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

ProfileCache::ProfileCache(std::filesystem::path dir, OrchApi& api,
                           std::function<bool(std::chrono::milliseconds)> pause)
    : m_dir(std::move(dir)), m_api(api), m_pause(std::move(pause))
{}

Result<portage::BuildProfile> ProfileCache::read_cached(const std::string& hash) const
{
  auto text = fs::read_file(m_dir / (hash + ".json"), k_profile_limit);
  if (!text) {
    return fail(text.error());
  }
  try {
    return verified(nlohmann::json::parse(*text), hash);
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorKind::invalid, "{}", e.what());
  }
}

Result<portage::BuildProfile> ProfileCache::get(const std::string& hash)
{
  if (!is_profile_hash(hash)) {
    return fail(ErrorKind::invalid, "{:?} is not a build profile hash", hash);
  }
  std::lock_guard lock(m_mutex);
  if (auto cached = read_cached(hash)) {
    return cached;
  } else if (cached.error().kind != ErrorKind::not_found) {
    LOG_WARN("build profile {}: the cached copy is unusable ({}); fetching it again", hash.substr(0, 12),
             cached.error().message);
  }
  Backoff backoff;
  std::string last;
  for (int attempt = 1; attempt <= k_fetch_attempts; ++attempt) {
    const auto result = m_api.fetch_profile(hash);
    const auto verdict = verdict_of(result);
    if (verdict == Verdict::done) {
      auto profile = verified(result->body, hash);
      if (!profile) {
        return fail(ErrorKind::invalid, "the orchestrator's build profile {} is not usable: {}", hash.substr(0, 12),
                    profile.error().message);
      }
      if (auto made = fs::make_dirs(m_dir); !made) {
        return fail(made.error());
      }
      if (auto written =
            fs::write_file_atomic(m_dir / (hash + ".json"), portage::build_profile_to_json(*profile).dump());
          !written) {
        LOG_WARN("build profile {}: cannot keep it in the spool ({})", hash.substr(0, 12), written.error().message);
      }
      return profile;
    }
    last = describe(result);
    if (verdict != Verdict::retry || attempt == k_fetch_attempts || !m_pause(backoff.next())) {
      break;
    }
  }
  return fail(ErrorKind::unavailable, "cannot fetch build profile {} from the orchestrator ({})", hash.substr(0, 12),
              last);
}

} // namespace swarm::roles::drone
