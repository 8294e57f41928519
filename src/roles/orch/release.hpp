#pragma once
// Releases: data_dir/releases/<ID>/ is a directory of hard links with its own Packages and
// Packages.gz, written and fsynced before the `production` symlink is atomically pointed at it
// (symlink to a temporary name + rename(2)). Clients therefore see one release or the next,
// never a mix. Rollback points the link at an earlier release the same way.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "portage/packages_index.hpp"

namespace swarm::roles::orch {

struct ReleaseInfo {
  std::string id;        // "20261203-041650" (UTC), "-2", "-3" … when one second holds several
  int64_t seq = 0;       // creation order
  double created = 0;    // epoch seconds
  int64_t timestamp = 0; // TIMESTAMP of its Packages (also the files' mtime)
  size_t packages = 0;
  std::vector<std::string> added;   // CPVs not in the previous release
  std::vector<std::string> removed; // CPVs of the previous release no longer listed
  std::vector<std::string> rebuilt; // same CPV, another build
  std::string previous;             // the release it was built on ("" for the first)
  bool current = false;
  nlohmann::json to_json() const;
};

// A package to publish from staging.
struct StagedPackage {
  std::string cpv;
  std::string slot;           // main slot
  std::filesystem::path file; // the artifact in staging
  std::string relative_path;  // CAT/PN/PF-BUILD_ID.gpkg.tar, its PATH in the release
  portage::IndexBlock entry;  // its Packages block (PATH, SIZE and MTIME are set on publishing)
};

struct ReleaseOptions {
  std::filesystem::path releases_dir;    // data_dir/releases
  std::filesystem::path production_link; // data_dir/production
  int keep = 5;                          // releases kept (the current one is never deleted)
  std::function<double()> now;           // epoch seconds; defaults to the system clock
};

class ReleaseStore {
public:
  explicit ReleaseStore(ReleaseOptions options);

  // Every release, oldest first, with `current` set on the one production points at.
  std::vector<ReleaseInfo> list() const;
  // The id production points at, if any.
  std::optional<std::string> current() const;
  // The Packages index of a release.
  Result<portage::PackagesIndex> index_of(const std::string& id) const;

  // Builds a release from the current one plus `packages` (a package replaces an entry of the
  // same CPV or the same CAT/PN:SLOT), publishes it and prunes old releases. conflict when it
  // would list exactly what the current release lists.
  Result<ReleaseInfo> publish(const std::vector<StagedPackage>& packages);

  // Publishes release `id` again (nullopt: the one before the current). Its Packages gets a new,
  // later TIMESTAMP: Portage re-reads an index only when it is newer than its cached copy.
  Result<ReleaseInfo> rollback(const std::optional<std::string>& id);

private:
  Result<> switch_to(const std::string& id);
  void prune();
  double now() const;

  ReleaseOptions m_options;
  mutable std::mutex m_mutex; // one finalize or rollback at a time
};

// A release id that may name a directory: [0-9A-Za-z._-], not starting with '.'.
bool valid_release_id(std::string_view id);

} // namespace swarm::roles::orch
