#include "core/isolated_root.hpp"

#include <algorithm>
#include <cerrno>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"

namespace swarm::isolation {

namespace {

std::unexpected<Error> errno_fail(std::string_view what, const std::filesystem::path& path, int error_number)
{
  return fail(ErrorKind::io, "{} {}: {}", what, path.string(), fs::errno_text(error_number));
}

// `at` (absolute, inside the root) as a path below `merged`.
std::filesystem::path inside(const std::filesystem::path& merged, const std::filesystem::path& at)
{
  return merged / at.relative_path();
}

size_t depth(const std::filesystem::path& path)
{
  return static_cast<size_t>(std::distance(path.begin(), path.end()));
}

enum class Leaf { directory, file };

// Creates the mount point `at` inside the root, one component at a time. A component that is
// a symlink is refused: it could lead the mount out of the root (an absolute link resolves
// against the host's /, since we have not chrooted yet).
Result<> make_mount_point(const std::filesystem::path& merged, const std::filesystem::path& at, Leaf leaf)
{
  std::filesystem::path current = merged;
  const auto relative = at.relative_path();
  size_t index = 0;
  const size_t count = depth(relative);
  for (const auto& component : relative) {
    ++index;
    if (component.empty()) {
      continue;
    }
    current /= component;
    const bool last = index == count;
    struct stat info {};
    if (::lstat(current.c_str(), &info) == 0) {
      if (S_ISLNK(info.st_mode)) {
        return fail(ErrorKind::invalid, "cannot mount on {}: {} is a symlink in the build root", at.string(),
                    current.lexically_relative(merged).string());
      }
      if (!last && !S_ISDIR(info.st_mode)) {
        return fail(ErrorKind::invalid, "cannot mount on {}: {} is not a directory", at.string(), current.string());
      }
      continue;
    }
    if (errno != ENOENT) {
      return errno_fail("cannot stat", current, errno);
    }
    if (last && leaf == Leaf::file) {
      UniqueFd fd(::open(current.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!fd && errno != EEXIST) {
        return errno_fail("cannot create the mount point", current, errno);
      }
    } else if (::mkdir(current.c_str(), 0755) != 0 && errno != EEXIST) {
      return errno_fail("cannot create the mount point", current, errno);
    }
  }
  return {};
}

bool usable_in_options(const std::filesystem::path& path)
{
  const auto text = path.string();
  return text.find_first_of(",:\\ \t\n") == std::string::npos;
}

} // namespace

Result<std::string> overlay_options(const Layer& layer)
{
  for (const auto* path : {&layer.lower, &layer.upper, &layer.work}) {
    if (!usable_in_options(*path)) {
      return fail(ErrorKind::invalid, "overlayfs cannot take the path {:?} (',', ':', '\\' or whitespace)",
                  path->string());
    }
  }
  return fmt::format("lowerdir={},upperdir={},workdir={}", layer.lower.string(), layer.upper.string(),
                     layer.work.string());
}

Result<> validate(const RootSpec& spec)
{
  if (!spec.merged.is_absolute()) {
    return fail(ErrorKind::invalid, "the root's directory {:?} is not absolute", spec.merged.string());
  }
  if (spec.layers.empty() || spec.layers.front().at != "/") {
    return fail(ErrorKind::invalid, "the first layer of a root must be mounted at /");
  }
  for (const auto& layer : spec.layers) {
    for (const auto* path : {&layer.lower, &layer.at, &layer.upper, &layer.work}) {
      if (!path->is_absolute() || path->lexically_normal() != *path) {
        return fail(ErrorKind::invalid, "layer path {:?} is not absolute and normal", path->string());
      }
    }
    if (auto options = overlay_options(layer); !options) {
      return fail(options.error());
    }
  }
  for (const auto& bind : spec.binds) {
    for (const auto* path : {&bind.source, &bind.at}) {
      if (!path->is_absolute() || path->lexically_normal() != *path) {
        return fail(ErrorKind::invalid, "bind path {:?} is not absolute and normal", path->string());
      }
    }
  }
  return {};
}

std::vector<Bind> mount_order(std::vector<Bind> binds)
{
  // Parents first (fewer components first): a bind at /var/tmp must not be hidden by a later
  // bind at /var. Equal depths keep the caller's order.
  std::stable_sort(binds.begin(), binds.end(), [](const Bind& a, const Bind& b) { return depth(a.at) < depth(b.at); });
  return binds;
}

Result<> enter(const RootSpec& spec)
{
  if (auto valid = validate(spec); !valid) {
    return valid;
  }
  if (::unshare(CLONE_NEWNS) != 0) {
    const int error_number = errno;
    return fail(ErrorKind::io, "cannot create a mount namespace (unshare CLONE_NEWNS): {}{}",
                fs::errno_text(error_number),
                error_number == EPERM ? " — the drone must run as root (CAP_SYS_ADMIN)" : "");
  }
  // Nothing mounted from here on may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return errno_fail("cannot make the mounts private below", "/", errno);
  }
  for (const auto& layer : spec.layers) {
    for (const auto* dir : {&layer.upper, &layer.work}) {
      if (auto made = fs::make_dirs(*dir); !made) {
        return made;
      }
    }
    if (layer.at != "/") {
      if (auto made = make_mount_point(spec.merged, layer.at, Leaf::directory); !made) {
        return made;
      }
    }
    const auto target = inside(spec.merged, layer.at);
    const auto options = overlay_options(layer);
    if (::mount("overlay", target.c_str(), "overlay", 0, options->c_str()) != 0) {
      const int error_number = errno;
      return fail(ErrorKind::io, "cannot mount overlayfs ({}) on {}: {}{}", *options, target.string(),
                  fs::errno_text(error_number),
                  error_number == ENODEV ? " — the kernel has no overlayfs (modprobe overlay)" : "");
    }
  }
  for (const auto& bind : mount_order(spec.binds)) {
    struct stat info {};
    if (::stat(bind.source.c_str(), &info) != 0) {
      return errno_fail("cannot bind-mount", bind.source, errno);
    }
    const auto leaf = S_ISDIR(info.st_mode) ? Leaf::directory : Leaf::file;
    if (auto made = make_mount_point(spec.merged, bind.at, leaf); !made) {
      return made;
    }
    const auto target = inside(spec.merged, bind.at);
    const unsigned long recursive = bind.recursive == Recursive::yes ? MS_REC : 0;
    if (::mount(bind.source.c_str(), target.c_str(), nullptr, MS_BIND | recursive, nullptr) != 0) {
      return errno_fail(fmt::format("cannot bind-mount {} on", bind.source.string()), target, errno);
    }
    if (bind.access == Access::read_only &&
        ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      return errno_fail("cannot make read-only", target, errno);
    }
  }
  if (::chroot(spec.merged.c_str()) != 0) {
    return errno_fail("cannot chroot into", spec.merged, errno);
  }
  if (::chdir("/") != 0) {
    return errno_fail("cannot chdir to / in", spec.merged, errno);
  }
  return {};
}

} // namespace swarm::isolation
