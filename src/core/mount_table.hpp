#pragma once
// The mount table of this process (/proc/self/mountinfo), for deciding what a private root
// must also cover: every real filesystem mounted below a directory.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::mounts {

struct MountEntry {
  std::filesystem::path mount_point; // octal escapes (\040 …) decoded
  std::string fs_type;               // "ext4", "tmpfs", "proc" …
  std::string source;                // "/dev/vda", "tmpfs" …
  bool operator==(const MountEntry&) const = default;
};

// Parses mountinfo text (proc(5)): one entry per line, in mount order; malformed lines skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// /proc/self/mountinfo, parsed.
Result<std::vector<MountEntry>> read_mount_table();

// Kernel and virtual filesystems (proc, sysfs, devpts, cgroup, …): never something a build's
// files live on.
bool is_virtual_fs(std::string_view fs_type);

} // namespace swarm::mounts
