#pragma once
// Process groups that outlive the process that started them: a record (group id, the leader's
// start time, the boot it ran in) written before the group does any work, and the means to
// find and end what is left of such a group later, without ever signalling an unrelated
// process that happens to reuse the number. Linux only (/proc).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "core/error.hpp"

namespace swarm::process_group {

// Identifies one process group for as long as any of its members lives.
struct Record {
  pid_t pgid = 0;
  uint64_t start_ticks = 0; // the leader's start time, clock ticks after boot (/proc/PID/stat field 22)
  std::string boot_id;      // /proc/sys/kernel/random/boot_id: a record of another boot names nothing
  bool operator==(const Record&) const = default;
};

// One line: "PGID START_TICKS BOOT_ID\n".
std::string to_text(const Record& record);
Result<Record> from_text(std::string_view text);

// The calling process as the leader of its own group; an error when it does not lead one.
Result<Record> self_record();

// The start time of a live process (zombies count as gone), nullopt when there is none.
std::optional<uint64_t> start_ticks(pid_t pid);

// This boot's id ("" when the kernel does not say).
std::string current_boot_id();

// The live processes that belong to the recorded group: none when the record is of another
// boot, or when the leader's number now names a process that started later (the group ended
// and the number was reused).
std::vector<pid_t> members(const Record& record);

// Kills every member with SIGKILL and waits up to `timeout` until none is left. Returns how
// many processes were signalled; an error when some survive the timeout.
Result<size_t> end_group(const Record& record, std::chrono::milliseconds timeout);

} // namespace swarm::process_group
