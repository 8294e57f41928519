#include "portage/pkgdir_index.hpp"

#include <cerrno>
#include <ctime>
#include <mutex>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "portage/packages_index.hpp"

namespace swarm::portage {

namespace {

// fcntl locks are per process: two threads of ours would both "hold" it. This mutex makes the
// lock exclusive between our threads too; it is held exactly as long as the file lock.
std::mutex g_lock_mutex;

constexpr std::string_view k_lock_name = ".Packages.portage_lockfile";

} // namespace

Result<PkgdirLock> PkgdirLock::acquire(const std::filesystem::path& pkgdir)
{
  const auto path = pkgdir / k_lock_name;
  g_lock_mutex.lock();
  while (true) {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0660));
    if (!fd) {
      const int error_number = errno;
      g_lock_mutex.unlock();
      return fail(ErrorKind::io, "cannot open {}: {}", path.string(), fs::errno_text(error_number));
    }
    struct flock request {};
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    int result = 0;
    while ((result = ::fcntl(fd.get(), F_SETLKW, &request)) != 0 && errno == EINTR) {
    }
    if (result != 0) {
      const int error_number = errno;
      g_lock_mutex.unlock();
      return fail(ErrorKind::io, "cannot lock {}: {}", path.string(), fs::errno_text(error_number));
    }
    // Portage's unlockfile() unlinks the file when it can; a lock on an unlinked file locks
    // nothing anyone else will open: start again (as portage.locks does).
    struct stat held {};
    struct stat named {};
    if (::fstat(fd.get(), &held) == 0 && held.st_nlink > 0 && ::stat(path.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      PkgdirLock lock(std::move(fd));
      lock.m_owns_mutex = true;
      return lock;
    }
  }
}

PkgdirLock::PkgdirLock(UniqueFd fd) : m_fd(std::move(fd))
{}

PkgdirLock::PkgdirLock(PkgdirLock&& other) noexcept
    : m_fd(std::move(other.m_fd)), m_owns_mutex(std::exchange(other.m_owns_mutex, false))
{}

PkgdirLock::~PkgdirLock()
{
  // Closing the descriptor releases the fcntl lock; the file stays for the next holder.
  m_fd.reset();
  if (m_owns_mutex) {
    g_lock_mutex.unlock();
  }
}

Result<PkgdirTidy> tidy_pkgdir(const std::filesystem::path& pkgdir, RemoveStray stray, const PkgdirLock&)
{
  PkgdirTidy out;
  const auto packages = pkgdir / "Packages";
  PackagesIndex index;
  if (auto text = fs::read_file(packages)) {
    auto parsed = read_packages_index(*text);
    if (!parsed) {
      return fail(ErrorKind::invalid, "{}: {}", packages.string(), parsed.error().message);
    }
    index = std::move(*parsed);
  } else if (text.error().kind != ErrorKind::not_found) {
    return fail(text.error());
  }

  std::set<std::filesystem::path> listed;
  std::vector<IndexBlock> kept;
  for (auto& block : index.packages) {
    // Without PATH, Portage looks for CPV.tbz2 (bintree: the pre-multi-instance layout).
    const auto it = block.find("PATH");
    const std::filesystem::path relative = it != block.end() ? it->second : block["CPV"] + ".tbz2";
    std::error_code error;
    if (std::filesystem::is_regular_file(pkgdir / relative, error)) {
      listed.insert(relative.lexically_normal());
      kept.push_back(std::move(block));
    } else {
      ++out.dropped_entries;
    }
  }
  if (out.dropped_entries > 0) {
    index.packages = std::move(kept);
    const auto now = static_cast<int64_t>(std::time(nullptr));
    std::error_code error;
    const auto with_gz = std::filesystem::exists(pkgdir / "Packages.gz", error);
    auto written = with_gz ? write_packages_files(pkgdir, index, now)
                           : fs::write_file_atomic(packages, write_packages_index(index, {now}));
    if (!written) {
      return fail(written.error());
    }
  }

  if (stray == RemoveStray::yes) {
    auto files = fs::list_files_recursive(pkgdir);
    if (!files) {
      return fail(files.error());
    }
    for (const auto& relative : *files) {
      // Packages, Packages.gz and the lock live at the top; packages in CAT/ or CAT/PN/.
      if (relative.parent_path().empty() || listed.contains(relative.lexically_normal())) {
        continue;
      }
      std::error_code error;
      if (std::filesystem::remove(pkgdir / relative, error)) {
        ++out.removed_files;
      }
    }
  }
  return out;
}

Result<PkgdirTidy> tidy_pkgdir(const std::filesystem::path& pkgdir, RemoveStray stray)
{
  auto lock = PkgdirLock::acquire(pkgdir);
  if (!lock) {
    return fail(lock.error());
  }
  return tidy_pkgdir(pkgdir, stray, *lock);
}

} // namespace swarm::portage
