#pragma once
// A build profile: everything of a Portage configuration that changes a binary, as the client
// computing a plan has it — the effective settings (USE and each USE_EXPAND variable, the
// compiler and linker flags, CHOST, keywords and licences, the make.profile target, the FEATURES
// that change what a package installs), the package.* files with env/, and the repositories with
// their tree timestamps. Machine-local settings (paths, MAKEOPTS, sandboxing) are not part of it.
// Stored content-addressed (`build_profile_hash`), so a plan names exactly what it was computed
// with; a drone materialises it as the configuration of each build (roles/drone).

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "core/subprocess.hpp"

namespace swarm::portage {

struct ProfileRepository {
  std::string name;
  std::string timestamp; // metadata/timestamp.chk, first line ("" when there is none)
  bool operator==(const ProfileRepository&) const = default;
};

struct BuildProfile {
  std::map<std::string, std::string> settings; // variable → effective value
  std::string make_profile_repo;               // repository the make.profile target lies in
  std::string make_profile;                    // its path below that repository's profiles/
  std::map<std::string, std::string> files;    // "package.use/desktop" → content (below etc/portage)
  std::vector<ProfileRepository> repositories; // sorted by name
  bool operator==(const BuildProfile&) const = default;
};

// The variables captured besides each USE_EXPAND variable.
const std::vector<std::string>& profile_variables();
// FEATURES that change what a package installs (the rest of FEATURES is machine-local).
const std::vector<std::string>& binary_features();
// The etc/portage files and directories captured.
const std::vector<std::string>& profile_files();

nlohmann::json build_profile_to_json(const BuildProfile& profile);
Result<BuildProfile> build_profile_from_json(const nlohmann::json& json);
// SHA-256 (hex) of the canonical JSON: equal profiles, equal hashes.
std::string build_profile_hash(const BuildProfile& profile);

// One line per difference ("CFLAGS: -O2 -pipe → -O3", "package.use/x: only in B"), empty when
// the two are the same.
std::vector<std::string> diff_build_profiles(const BuildProfile& a, const BuildProfile& b);

// True when packages built with `a` are not what `b` would build, whatever their USE: the
// compiler and linker flags, CHOST, the binary-changing FEATURES, install masks or a package.env /
// env/ file differ. (USE differences show in each plan entry's USE instead.)
bool build_settings_differ(const BuildProfile& a, const BuildProfile& b);

// What the profile sets `variable` to for `cpv`: package.env entries whose atom matches the
// package override the global settings with the assignments of their env/ files (simple
// VAR="value" lines, as Portage sources them). nullopt when the profile does not set it.
std::optional<std::string> setting_for(const BuildProfile& profile, std::string_view cpv, const std::string& variable);

// The USE flags a package.use line of the profile pins for `cpv` are not needed by callers: the
// plan carries each package's USE.

// Reads a configuration root: `config_root/etc/portage` as PORTAGE_CONFIGROOT means it. The
// effective settings come from `portageq envvar` run with PORTAGE_CONFIGROOT=config_root
// (through `runner`), the repositories from `portageq get_repos` / `get_repo_path`.
struct CaptureOptions {
  std::filesystem::path config_root = "/";
  std::string portageq = "/usr/bin/portageq";
};
Result<BuildProfile> capture_build_profile(const CaptureOptions& options, subprocess::ProcessRunner& runner);

// Parses `portageq envvar -v` output: lines VAR='value' (shell single quotes) or VAR=value.
std::map<std::string, std::string> parse_envvar_output(std::string_view text);

} // namespace swarm::portage
