#pragma once
// Keeping a PKGDIR's `Packages` index true to its files: Portage's own lock around every
// change (so an emerge writing the index at the same time never interleaves with us), entries
// whose file is gone dropped, and files no entry lists (what a killed build leaves: the empty
// file Portage allocates for a BUILD_ID, its temporary) removed.

#include <cstddef>
#include <filesystem>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace swarm::portage {

// Portage's lock of PKGDIR/Packages (bintree: lockfile(Packages, wantnewlockfile=True), i.e.
// an exclusive fcntl lock on PKGDIR/.Packages.portage_lockfile, retried when the holder
// unlinked the file meanwhile). Held until destroyed; the threads of this process take it one
// at a time (fcntl locks belong to the process, not the thread).
class PkgdirLock {
public:
  static Result<PkgdirLock> acquire(const std::filesystem::path& pkgdir);
  ~PkgdirLock();
  PkgdirLock(PkgdirLock&& other) noexcept;
  PkgdirLock& operator=(PkgdirLock&&) = delete;
  PkgdirLock(const PkgdirLock&) = delete;
  PkgdirLock& operator=(const PkgdirLock&) = delete;

private:
  explicit PkgdirLock(UniqueFd fd);
  UniqueFd m_fd;
  bool m_owns_mutex = false;
};

enum class RemoveStray { no, yes };

struct PkgdirTidy {
  size_t dropped_entries = 0; // index entries whose file was missing
  size_t removed_files = 0;   // files no entry listed
};

// Rewrites PKGDIR/Packages (and Packages.gz when there is one) without the entries whose
// file is missing; with RemoveStray::yes also deletes every file below PKGDIR's
// subdirectories that no entry lists. The caller holds `lock`. Nothing is written when nothing
// changes; a PKGDIR without a Packages file has no entries (so every package file is stray).
Result<PkgdirTidy> tidy_pkgdir(const std::filesystem::path& pkgdir, RemoveStray stray, const PkgdirLock& lock);

// The same, taking the lock itself.
Result<PkgdirTidy> tidy_pkgdir(const std::filesystem::path& pkgdir, RemoveStray stray);

} // namespace swarm::portage
