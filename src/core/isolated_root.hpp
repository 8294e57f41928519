#pragma once
// A throw-away root for one command: a private mount namespace in which overlayfs layers (a
// read-only lower directory, a writable upper directory that collects every change) are
// stacked into one tree, chosen host directories are bind-mounted at the same paths, and the
// process chroots into it. The host sees none of these mounts, and they vanish when the last
// process of the namespace exits; deleting the upper directories discards every change.
// Needs root (CAP_SYS_ADMIN) and overlayfs; enter() must run in a single-threaded process.

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace swarm::isolation {

// One overlayfs mount: `lower` (read-only) under `upper` (the changes), mounted at `at` inside
// the root ("/" for the root itself; later layers go on directories of earlier ones). `work`
// is overlayfs's scratch directory, on the same filesystem as `upper`.
struct Layer {
  std::filesystem::path lower;
  std::filesystem::path at;
  std::filesystem::path upper;
  std::filesystem::path work;
  bool operator==(const Layer&) const = default;
};

enum class Access { read_write, read_only };
enum class Recursive { no, yes };

// A host path seen at `at` inside the root (a directory or a single file).
struct Bind {
  std::filesystem::path source;
  std::filesystem::path at;
  Access access = Access::read_write;
  Recursive recursive = Recursive::no; // also what is mounted below source (/proc, /dev …)
  bool operator==(const Bind&) const = default;
};

struct RootSpec {
  std::filesystem::path merged; // an empty directory: where the root is assembled
  std::vector<Layer> layers;    // the first one at "/"
  std::vector<Bind> binds;
};

// "lowerdir=L,upperdir=U,workdir=W"; an error when a path holds a character the option
// string cannot carry (',', ':', '\\', whitespace).
Result<std::string> overlay_options(const Layer& layer);

// Every path absolute and usable, the first layer at "/", every `at` inside the root.
Result<> validate(const RootSpec& spec);

// The binds in mounting order: a bind below another one's `at` after it (stable otherwise).
std::vector<Bind> mount_order(std::vector<Bind> binds);

// Builds the root and enters it: unshare(CLONE_NEWNS), every mount made private, the layers
// (creating `upper` and `work`), the binds (creating their mount points in the root, never
// through a symlink), chroot and chdir("/"). On error the process is in an unusable state and
// should exit.
Result<> enter(const RootSpec& spec);

} // namespace swarm::isolation
