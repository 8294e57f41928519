#pragma once
// Where a drone's builds run. Isolated (the default): every emerge of a lease runs in a private
// mount namespace, chrooted into an overlay whose lower layer is the build base — the drone's
// own / or a per-profile base such as an unpacked stage3 — and whose upper layer (in the spool)
// collects what the build installs and is thrown away after the lease, or kept per profile as
// a cache of installed build dependencies. The spool's PKGDIR, the lease's configuration root,
// the repositories, DISTDIR and PORTAGE_TMPDIR are bind-mounted in at their own paths. Host:
// emerge runs on the drone's own system, as before isolation existed.
//
// Every emerge runs through the hidden helper `swarm drone-root`, which first records its
// process group in the lease's work dir (so a restarted drone can end what a killed one left
// running), then enters the root (isolated) and execs emerge with the exact argv.
//
//   SPOOL/roots/lease-ID/{upper,work,merged}   one lease's throw-away root
//   SPOOL/roots/cache/KEY/{upper,work,merged}  a profile's kept root (build-cache keep)
//   SPOOL/roots/cache/KEY.lock                 held while a lease uses it

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/isolated_root.hpp"
#include "core/mount_table.hpp"
#include "core/subprocess.hpp"
#include "core/unique_fd.hpp"
#include "net/protocol.hpp"

namespace swarm::roles::drone {

enum class BuildRootMode { isolated, host };
std::optional<BuildRootMode> build_root_mode_from_name(std::string_view name); // "isolated" | "host"
std::string_view build_root_mode_name(BuildRootMode mode);

enum class BuildCache { discard, keep };
std::optional<BuildCache> build_cache_from_name(std::string_view name); // "discard" | "keep"

// The lower layer of a profile's builds: `fallback` unless the profile has its own.
struct BuildBases {
  std::filesystem::path fallback = "/";
  std::map<std::string, std::filesystem::path> per_profile;
  const std::filesystem::path& for_profile(const std::string& profile) const;
  bool operator==(const BuildBases&) const = default;
};

// drone.build_base entries: "DIR" (every profile without its own) or "PROFILE=DIR"; absolute
// directories. An empty list is "/".
Result<BuildBases> parse_build_bases(const std::vector<std::string>& entries);

struct BuildRootSettings {
  BuildRootMode mode = BuildRootMode::host;
  BuildCache cache = BuildCache::discard;
  BuildBases bases;
  std::filesystem::path roots_dir; // SPOOL/roots
  std::string helper = "swarm";    // the swarm executable that runs `drone-root`
  // With the base "/": the other filesystems mounted below it (an overlay does not reach into
  // them, so each gets a layer of its own) and single files mounted over the root's (bound in).
  std::vector<std::filesystem::path> base_submounts;
  std::vector<std::filesystem::path> base_file_mounts;
};

// The filesystems below / a root over the drone's own / must also cover: every mount that is
// not virtual (proc, sysfs, cgroup …), not below /proc, /sys, /dev or /run, and not at or
// below one of `excluded` (the spool and what is bound in anyway); files and directories apart.
struct Submounts {
  std::vector<std::filesystem::path> directories;
  std::vector<std::filesystem::path> files;
};
Submounts base_submounts(const std::vector<mounts::MountEntry>& table,
                         const std::vector<std::filesystem::path>& excluded);

// What every root binds from the host: /proc, /sys and /dev; with a base other than "/" also
// /etc/resolv.conf and /etc/hosts (read-only), so names resolve as on the drone.
std::vector<isolation::Bind> system_binds(const std::filesystem::path& base);

// One lease's root while it is in use.
struct RootUse {
  std::filesystem::path dir;
  isolation::RootSpec spec;
  BuildCache cache = BuildCache::discard;
  UniqueFd lock; // keep: the cache's lock, held until released
};

class BuildRoots {
public:
  explicit BuildRoots(BuildRootSettings settings);

  const BuildRootSettings& settings() const { return m_settings; }

  // The root the lease's emerges run in, with `binds` added to the system's: nullopt in host
  // mode. With build-cache keep the profile's kept root, unless another lease is using it (then
  // a throw-away one).
  Result<std::optional<RootUse>> acquire(const net::Lease& lease, const std::vector<isolation::Bind>& binds);

  // Removes a throw-away root; unlocks a kept one.
  void release(std::optional<RootUse>& use) const;

  // The helper's argv: record the process group in `record` ("" for none), enter `use`'s root
  // when given, exec `argv`.
  std::vector<std::string> wrap(const RootUse* use, const std::filesystem::path& record,
                                const std::vector<std::string>& argv) const;

  // Sets up a throw-away root over `base` and runs `true` in it: the check a starting drone
  // makes. The error says what is missing (root, overlayfs, the base …).
  Result<> probe(subprocess::ProcessRunner& runner, const std::filesystem::path& base) const;

  // The root of the probe above, for running something else in it (`portageq` to learn a
  // base's CHOST). The caller releases it.
  Result<RootUse> scratch_root(const std::filesystem::path& base, std::string_view name) const;

private:
  RootUse plan(const std::filesystem::path& dir, const std::filesystem::path& base,
               const std::vector<isolation::Bind>& binds) const;

  BuildRootSettings m_settings;
};

// A starting drone's cleanup of SPOOL/roots: every throw-away root (their builds are over), and
// every kept root a build was using when the drone stopped (half installed). Returns how many.
Result<size_t> remove_stale_roots(const std::filesystem::path& roots_dir);

// `swarm drone reset-root [--profile NAME]`: removes the kept roots of PROFILE (every profile when
// empty). Refuses (conflict) while a build uses one. Returns how many were removed.
Result<size_t> reset_caches(const std::filesystem::path& roots_dir, std::string_view profile);

// --- the helper, `swarm drone-root` ---

struct HelperRequest {
  std::filesystem::path record;            // where to write the process group record ("" none)
  std::optional<isolation::RootSpec> root; // none: run on the host
  std::vector<std::string> argv;
};
// Parses the helper's arguments (what wrap() puts after "drone-root").
Result<HelperRequest> parse_helper_args(const std::vector<std::string>& args);

// Exit status of the helper when it fails before exec (as env(1) and chroot(1) do).
inline constexpr int k_helper_setup_failed = 125;

// Records, enters and execs; returns only on failure, with the status to exit with (the
// message is already on stderr).
int run_helper(const HelperRequest& request);

} // namespace swarm::roles::drone
