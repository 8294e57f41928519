#include "core/mount_table.hpp"

#include <algorithm>

#include "core/fs.hpp"
#include "core/strings.hpp"

namespace swarm::mounts {

namespace {

// mountinfo writes space, tab, newline and backslash in paths as \040, \011, \012, \134.
std::string unescape(std::string_view text)
{
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      const auto digits = text.substr(i + 1, 3);
      if (digits.size() == 3 &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>((digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

} // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text)
{
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
  std::vector<MountEntry> out;
  for (const auto& line : strings::split(text, '\n')) {
    const auto fields = strings::split_any(line, " ");
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 7 || dash == fields.end() || std::distance(dash, fields.end()) < 3 ||
        std::distance(fields.begin(), dash) < 6) {
      continue;
    }
    MountEntry entry;
    entry.mount_point = unescape(fields[4]);
    entry.fs_type = *(dash + 1);
    entry.source = unescape(*(dash + 2));
    out.push_back(std::move(entry));
  }
  return out;
}

Result<std::vector<MountEntry>> read_mount_table()
{
  auto text = fs::read_file("/proc/self/mountinfo", 64u << 20);
  if (!text) {
    return fail(text.error());
  }
  return parse_mountinfo(*text);
}

bool is_virtual_fs(std::string_view fs_type)
{
  static constexpr std::string_view k_virtual[] = {
    "proc",    "sysfs",    "devtmpfs",  "devpts", "cgroup",     "cgroup2",  "securityfs", "debugfs",
    "tracefs", "pstore",   "bpf",       "mqueue", "hugetlbfs",  "configfs", "fusectl",    "binfmt_misc",
    "autofs",  "efivarfs", "selinuxfs", "nsfs",   "rpc_pipefs", "nfsd"};
  return std::find(std::begin(k_virtual), std::end(k_virtual), fs_type) != std::end(k_virtual);
}

} // namespace swarm::mounts
