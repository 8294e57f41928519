#pragma once
// The orchestrator's build logs: one file per build in the logs directory, BUILD.log while the
// drone streams it, BUILD.log.zst once the build has ended (zstd). Readers get the decompressed
// bytes either way. A retention sweep compresses what has ended and removes the oldest logs past
// logs.keep_days or logs.max_bytes, never the log of a running build or of a blocked package's
// latest build (fix-blocked and the dashboard read those).

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace swarm::roles::orch {

struct LogRetention {
  double keep_days = 30;         // logs.keep_days (0: no age limit)
  uint64_t max_bytes = 1u << 30; // logs.max_bytes, on disk (0: no size limit)
};

// One log on disk.
struct LogFile {
  int64_t build = 0;
  uint64_t size = 0; // bytes on disk
  double mtime = 0;  // epoch seconds
  bool compressed = false;
};

// The builds whose logs the retention must remove: oldest first (by mtime, then build id),
// those older than keep_days, then more until the rest fit in max_bytes. Builds in `keep` are
// never chosen (and still count towards the size). Sorted by build id.
std::vector<int64_t> logs_to_remove(std::vector<LogFile> files, const std::set<int64_t>& keep, double now,
                                    const LogRetention& retention);

class LogStore {
public:
  explicit LogStore(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  const std::filesystem::path& dir() const { return m_dir; }
  // Where a running build's log grows.
  std::filesystem::path live_path(int64_t build) const;
  std::filesystem::path compressed_path(int64_t build) const;

  // Compresses BUILD.log into BUILD.log.zst (the plain file goes once the compressed one is in
  // place). Nothing to do when there is no plain log.
  Result<> compress(int64_t build) const;

  // Up to `limit` bytes from `offset` of the build's log, decompressed, and its whole size.
  struct Slice {
    std::string text;
    uint64_t size = 0;   // decompressed size of the whole log
    bool exists = false; // a log (plain or compressed) is on disk
    bool compressed = false;
  };
  Result<Slice> read(int64_t build, uint64_t offset, uint64_t limit) const;

  std::vector<LogFile> list() const;

  // Compresses every plain log whose build is not in `running`, then removes what
  // logs_to_remove chooses (`keep` and `running` are kept).
  struct Sweep {
    size_t compressed = 0;
    size_t removed = 0;
  };
  Sweep sweep(const std::set<int64_t>& running, const std::set<int64_t>& keep, double now,
              const LogRetention& retention) const;

private:
  std::filesystem::path m_dir;
};

} // namespace swarm::roles::orch
