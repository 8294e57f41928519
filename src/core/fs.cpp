#include "core/fs.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace swarm::fs {

namespace {

Path directory_of(const Path& path)
{
  const Path parent = path.parent_path();
  return parent.empty() ? Path(".") : parent;
}

std::unexpected<Error> errno_fail(std::string_view what, const Path& path, int error_number)
{
  return fail(ErrorKind::io, "{} {}: {}", what, path.string(), errno_text(error_number));
}

// Suffix for temporaries that cannot come from mkstemp (symlinks). Unique enough together with
// the pid; collisions are retried by the caller.
std::string random_suffix()
{
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("{}.{:016x}", ::getpid(), generator());
}

Result<> write_all(int fd, std::string_view data, const Path& path)
{
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_fail("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return {};
}

} // namespace

std::string errno_text(int error_number)
{
  char buffer[256] = {};
  // GNU strerror_r returns the message, possibly a static string rather than `buffer`.
  return ::strerror_r(error_number, buffer, sizeof(buffer));
}

Result<UniqueFd> open_read(const Path& path)
{
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    const int error_number = errno;
    if (error_number == ENOENT) {
      return fail(ErrorKind::not_found, "cannot open {}: {}", path.string(), errno_text(error_number));
    }
    return errno_fail("cannot open", path, error_number);
  }
  return fd;
}

Result<std::string> read_file(const Path& path, uint64_t max_bytes)
{
  auto fd = open_read(path);
  if (!fd) {
    return fail(fd.error());
  }
  std::string content;
  char buffer[65536];
  while (true) {
    const ssize_t got = ::read(fd->get(), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_fail("cannot read", path, errno);
    }
    if (got == 0) {
      return content;
    }
    if (content.size() + static_cast<uint64_t>(got) > max_bytes) {
      return fail(ErrorKind::too_large, "{} is larger than {} bytes", path.string(), max_bytes);
    }
    content.append(buffer, static_cast<size_t>(got));
  }
}

std::string read_first_line(const Path& path)
{
  auto text = read_file(path, 64 * 1024);
  if (!text) {
    return {};
  }
  const std::string_view first = std::string_view(*text).substr(0, text->find('\n'));
  const auto begin = first.find_first_not_of(" \t\r");
  const auto end = first.find_last_not_of(" \t\r");
  return begin == std::string_view::npos ? std::string{} : std::string(first.substr(begin, end - begin + 1));
}

AtomicFileWriter::AtomicFileWriter(Path path, Path temp, UniqueFd fd, unsigned mode)
    : m_path(std::move(path)), m_temp(std::move(temp)), m_fd(std::move(fd)), m_mode(mode)
{}

Result<AtomicFileWriter> AtomicFileWriter::create(const Path& path, unsigned mode)
{
  if (path.filename().empty()) {
    return fail(ErrorKind::invalid, "not a file path: {}", path.string());
  }
  // The temporary lives in the target's directory: rename() is only atomic within a filesystem.
  std::string pattern = (directory_of(path) / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) {
    return errno_fail("cannot create a temporary file for", path, errno);
  }
  return AtomicFileWriter(path, Path(pattern), UniqueFd(fd), mode);
}

AtomicFileWriter::~AtomicFileWriter()
{
  abandon();
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : m_path(std::move(other.m_path)), m_temp(std::exchange(other.m_temp, Path())), m_fd(std::move(other.m_fd)),
      m_mode(other.m_mode), m_written(other.m_written)
{}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept
{
  if (this != &other) {
    abandon();
    m_path = std::move(other.m_path);
    m_temp = std::exchange(other.m_temp, Path());
    m_fd = std::move(other.m_fd);
    m_mode = other.m_mode;
    m_written = other.m_written;
  }
  return *this;
}

Result<> AtomicFileWriter::write(std::string_view data)
{
  if (!m_fd) {
    return fail(ErrorKind::internal, "write to a closed atomic file {}", m_path.string());
  }
  auto written = write_all(m_fd.get(), data, m_temp);
  if (!written) {
    return written;
  }
  m_written += data.size();
  return {};
}

Result<> AtomicFileWriter::commit()
{
  if (!m_fd) {
    return fail(ErrorKind::internal, "commit of a closed atomic file {}", m_path.string());
  }
  // mkostemp creates the file 0600; give it the mode the caller asked for before it appears.
  if (::fchmod(m_fd.get(), static_cast<mode_t>(m_mode)) != 0) {
    return errno_fail("cannot chmod", m_temp, errno);
  }
  // The data must be on disk before the rename makes it visible, or a crash could publish an
  // empty file under the final name.
  if (::fsync(m_fd.get()) != 0) {
    return errno_fail("cannot fsync", m_temp, errno);
  }
  if (::close(m_fd.release()) != 0) {
    return errno_fail("cannot close", m_temp, errno);
  }
  if (::rename(m_temp.c_str(), m_path.c_str()) != 0) {
    return errno_fail(fmt::format("cannot rename {} to", m_temp.string()), m_path, errno);
  }
  m_temp.clear();
  return fsync_dir(directory_of(m_path));
}

void AtomicFileWriter::abandon()
{
  m_fd.reset();
  if (!m_temp.empty()) {
    ::unlink(m_temp.c_str());
    m_temp.clear();
  }
}

Result<> write_file_atomic(const Path& path, std::string_view content, unsigned mode)
{
  auto writer = AtomicFileWriter::create(path, mode);
  if (!writer) {
    return fail(writer.error());
  }
  if (auto written = writer->write(content); !written) {
    return written;
  }
  return writer->commit();
}

Result<> fsync_dir(const Path& dir)
{
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return errno_fail("cannot open directory", dir, errno);
  }
  if (::fsync(fd.get()) != 0) {
    return errno_fail("cannot fsync directory", dir, errno);
  }
  return {};
}

Result<> make_dirs(const Path& dir)
{
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return fail(ErrorKind::io, "cannot create directory {}: {}", dir.string(), error.message());
  }
  return {};
}

Result<uint64_t> free_disk_bytes(const Path& path)
{
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) {
    return errno_fail("cannot statvfs", path, errno);
  }
  return static_cast<uint64_t>(info.f_bavail) * static_cast<uint64_t>(info.f_frsize);
}

Result<> hard_link(const Path& existing, const Path& new_path)
{
  if (::link(existing.c_str(), new_path.c_str()) != 0) {
    const int error_number = errno;
    return fail(ErrorKind::io, "cannot hard-link {} to {}: {}", new_path.string(), existing.string(),
                errno_text(error_number));
  }
  return {};
}

Result<> replace_symlink_atomically(const Path& target, const Path& link_path)
{
  if (link_path.filename().empty()) {
    return fail(ErrorKind::invalid, "not a link path: {}", link_path.string());
  }
  const Path dir = directory_of(link_path);
  // symlink() cannot replace an existing name, rename() can, atomically: build the new link
  // under a unique temporary name, then rename it over the old one.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const Path temp = dir / fmt::format(".{}.link.{}", link_path.filename().string(), random_suffix());
    if (::symlink(target.c_str(), temp.c_str()) != 0) {
      if (errno == EEXIST) {
        continue;
      }
      return errno_fail("cannot create symlink", temp, errno);
    }
    if (::rename(temp.c_str(), link_path.c_str()) != 0) {
      const int error_number = errno;
      ::unlink(temp.c_str());
      return errno_fail(fmt::format("cannot rename symlink {} to", temp.string()), link_path, error_number);
    }
    return fsync_dir(dir);
  }
  return fail(ErrorKind::io, "cannot find a free temporary name next to {}", link_path.string());
}

Result<std::vector<Path>> list_files_recursive(const Path& root)
{
  std::error_code error;
  std::vector<Path> files;
  std::filesystem::recursive_directory_iterator it(root, error);
  if (error) {
    return fail(ErrorKind::io, "cannot list {}: {}", root.string(), error.message());
  }
  for (const std::filesystem::recursive_directory_iterator end; it != end; it.increment(error)) {
    if (error) {
      return fail(ErrorKind::io, "cannot list {}: {}", root.string(), error.message());
    }
    // symlink_status: a symlink to a file is not a file of this tree.
    const auto status = it->symlink_status(error);
    if (error) {
      return fail(ErrorKind::io, "cannot stat {}: {}", it->path().string(), error.message());
    }
    if (std::filesystem::is_regular_file(status)) {
      files.push_back(it->path().lexically_relative(root));
    }
  }
  if (error) {
    return fail(ErrorKind::io, "cannot list {}: {}", root.string(), error.message());
  }
  std::sort(files.begin(), files.end());
  return files;
}

Result<uint64_t> file_size(const Path& path)
{
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error_number = errno;
    if (error_number == ENOENT) {
      return fail(ErrorKind::not_found, "cannot stat {}: {}", path.string(), errno_text(error_number));
    }
    return errno_fail("cannot stat", path, error_number);
  }
  return static_cast<uint64_t>(info.st_size);
}

Result<std::chrono::system_clock::time_point> file_mtime(const Path& path)
{
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error_number = errno;
    if (error_number == ENOENT) {
      return fail(ErrorKind::not_found, "cannot stat {}: {}", path.string(), errno_text(error_number));
    }
    return errno_fail("cannot stat", path, error_number);
  }
  const auto since_epoch = std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec);
  return std::chrono::system_clock::time_point(
    std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
}

TempDir::TempDir(std::string_view prefix)
{
  std::error_code error;
  Path base = std::filesystem::temp_directory_path(error);
  if (error) {
    base = "/tmp";
  }
  std::string pattern = (base / fmt::format("{}-XXXXXX", prefix)).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Fatal{
      Error{ErrorKind::io, fmt::format("cannot create a temporary directory {}: {}", pattern, errno_text(errno))}};
  }
  m_path = pattern;
}

TempDir::~TempDir()
{
  std::error_code ignored;
  std::filesystem::remove_all(m_path, ignored);
}

} // namespace swarm::fs
