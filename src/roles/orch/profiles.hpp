#pragma once
// Where each swarm profile's things are. The `default` profile keeps the layout and URLs of a
// single-plan orchestrator (data_dir/staging, data_dir/releases, data_dir/production;
// /staging/ID/…, /production/…); another profile NAME has them under data_dir/profiles/NAME/
// and its URLs under /p/NAME/.

#include <filesystem>
#include <string>

namespace swarm::roles::orch {

inline constexpr const char* k_default_profile = "default";

// data_dir/LEAF for the default profile, data_dir/profiles/PROFILE/LEAF for another.
inline std::filesystem::path profile_path(const std::filesystem::path& data_dir, const std::string& profile,
                                          const std::string& leaf)
{
  if (profile == k_default_profile) {
    return data_dir / leaf;
  }
  return data_dir / "profiles" / profile / leaf;
}

// An orchestrator URL (scheme://host:port/PATH) as the profile's: /p/PROFILE/PATH for a profile
// other than the default.
inline std::string profile_url(const std::string& url, const std::string& profile)
{
  if (profile == k_default_profile) {
    return url;
  }
  const auto scheme = url.find("://");
  const auto path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path == std::string::npos) {
    return url + "/p/" + profile;
  }
  return url.substr(0, path) + "/p/" + profile + url.substr(path);
}

} // namespace swarm::roles::orch
