#pragma once
// Filesystem plumbing with errors as values: whole-file reads, durable atomic writes (temp file
// in the same directory, fsync, rename, fsync of the directory), atomic symlink replacement,
// hard links and free space. Every error message names the path and carries the errno text.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace swarm::fs {

using Path = std::filesystem::path;

// strerror_r text of an errno value, thread-safe.
std::string errno_text(int error_number);

// Reads a whole (small) file. Fails with too_large when it holds more than `max_bytes`.
Result<std::string> read_file(const Path& path, uint64_t max_bytes = 256ull << 20);

// The first line of a small text file (a repository's timestamp.chk or repo_name), without
// surrounding blanks; empty when the file is missing or unreadable.
std::string read_first_line(const Path& path);

// Replaces `path` with `content` so that readers see the old file or the new one, never a part,
// and the new content survives a crash once this returns. `mode` is applied to the new file.
Result<> write_file_atomic(const Path& path, std::string_view content, unsigned mode = 0644);

// Writes a large file chunk by chunk into a hidden temporary next to `path`; commit() fsyncs
// and renames it into place (then fsyncs the directory). Destroyed uncommitted, it removes
// the temporary, so a failed download or upload leaves nothing behind.
class AtomicFileWriter {
public:
  static Result<AtomicFileWriter> create(const Path& path, unsigned mode = 0644);
  ~AtomicFileWriter();
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Result<> write(std::string_view data);
  Result<> commit();
  // Removes the temporary now (also what the destructor does when commit() was not called).
  void abandon();
  const Path& temp_path() const { return m_temp; }
  uint64_t bytes_written() const { return m_written; }

private:
  AtomicFileWriter(Path path, Path temp, UniqueFd fd, unsigned mode);
  Path m_path;
  Path m_temp;
  UniqueFd m_fd;
  unsigned m_mode = 0644;
  uint64_t m_written = 0;
};

// fsync of a directory, so that a rename or link inside it is durable.
Result<> fsync_dir(const Path& dir);

// mkdir -p; succeeds when the directory already exists.
Result<> make_dirs(const Path& dir);

// Bytes available to an unprivileged user on the filesystem holding `path` (statvfs).
Result<uint64_t> free_disk_bytes(const Path& path);

// Creates `new_path` as a hard link to `existing`. Crossing filesystems (EXDEV), an existing
// `new_path` (EEXIST) and the like are error values; the message names both paths.
Result<> hard_link(const Path& existing, const Path& new_path);

// Points `link_path` at `target` by creating a temporary symlink next to it and renaming it over
// `link_path`: a concurrent reader sees the old target or the new one, never a missing link.
// The directory is fsynced afterwards.
Result<> replace_symlink_atomically(const Path& target, const Path& link_path);

// Every regular file below `root` (symlinks are not followed), as paths relative to `root`,
// sorted.
Result<std::vector<Path>> list_files_recursive(const Path& root);

Result<uint64_t> file_size(const Path& path);
// Modification time as wall-clock time.
Result<std::chrono::system_clock::time_point> file_mtime(const Path& path);

// Opens an existing file read-only (O_CLOEXEC).
Result<UniqueFd> open_read(const Path& path);

// A fresh directory under the system temp dir, removed with everything in it on destruction.
// For tests and scratch work.
class TempDir {
public:
  explicit TempDir(std::string_view prefix = "swarm");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const Path& path() const { return m_path; }
  // path() / relative.
  Path operator/(const Path& relative) const { return m_path / relative; }

private:
  Path m_path;
};

} // namespace swarm::fs
