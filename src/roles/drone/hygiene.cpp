#include "roles/drone/hygiene.hpp"

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/process_group.hpp"
#include "roles/drone/build_root.hpp"
#include "roles/drone/lease_setup.hpp"

namespace swarm::roles::drone {

namespace {

constexpr std::chrono::seconds k_kill_wait{10};

} // namespace

Result<UniqueFd> lock_spool(const Spool& spool)
{
  auto lock = fs::try_lock_exclusive(spool.root() / "drone.lock");
  if (!lock && lock.error().kind == ErrorKind::conflict) {
    return fail(ErrorKind::conflict, "another drone is running with the spool {}", spool.root().string());
  }
  return lock;
}

Result<HygieneReport> clean_up_previous_run(const Spool& spool, const std::filesystem::path& roots_dir)
{
  HygieneReport report;
  std::error_code error;
  for (std::filesystem::directory_iterator it(spool.root() / "leases", error), end; !error && it != end;
       it.increment(error)) {
    const auto path = process_record_path(it->path());
    auto text = fs::read_file(path, 4096);
    if (!text) {
      continue;
    }
    auto record = process_group::from_text(*text);
    if (!record) {
      LOG_WARN("{}: {}; ignoring it", path.string(), record.error().message);
      continue;
    }
    auto ended = process_group::end_group(*record, k_kill_wait);
    if (!ended) {
      return fail(ErrorKind::io, "cannot end the emerge a previous run left running: {}", ended.error().message);
    }
    if (*ended > 0) {
      LOG_WARN("ended the emerge a previous run left running (process group {}, {} process{}, lease {})", record->pgid,
               *ended, *ended == 1 ? "" : "es", it->path().filename().string());
      ++report.groups_ended;
      report.processes_killed += *ended;
    }
    std::error_code removed;
    std::filesystem::remove(path, removed);
  }
  auto roots = remove_stale_roots(roots_dir);
  if (!roots) {
    return fail(roots.error());
  }
  report.roots_removed = *roots;
  auto tidied = portage::tidy_pkgdir(spool.pkgdir(), portage::RemoveStray::yes);
  if (!tidied) {
    return fail(tidied.error());
  }
  report.pkgdir = *tidied;
  if (tidied->dropped_entries > 0 || tidied->removed_files > 0) {
    LOG_INFO("PKGDIR {}: dropped {} index entr{} without a file, removed {} file{} no entry listed",
             spool.pkgdir().string(), tidied->dropped_entries, tidied->dropped_entries == 1 ? "y" : "ies",
             tidied->removed_files, tidied->removed_files == 1 ? "" : "s");
  }
  return report;
}

} // namespace swarm::roles::drone
