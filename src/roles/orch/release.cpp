#include "roles/orch/release.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <set>

#include <sys/stat.h>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "portage/version.hpp"

namespace swarm::roles::orch {

using nlohmann::json;

namespace {

constexpr const char* k_info_file = "release.json";
constexpr const char* k_building_prefix = ".building-";

std::string get(const portage::IndexBlock& block, const std::string& key)
{
  auto it = block.find(key);
  return it == block.end() ? std::string() : it->second;
}

// "CAT/PN:SLOT" of an index block (main slot only).
std::string slot_key(const std::string& cpv, const std::string& slot)
{
  const auto parsed = portage::parse_cpv(cpv);
  const std::string main = slot.empty() ? std::string(1, '0') : slot.substr(0, slot.find('/'));
  return (parsed ? parsed->cp() : cpv) + ":" + main;
}

std::optional<ReleaseInfo> read_info(const std::filesystem::path& dir)
{
  auto text = fs::read_file(dir / k_info_file, 64u << 20);
  if (!text) {
    return std::nullopt;
  }
  auto parsed = json::parse(*text, nullptr, false);
  if (!parsed.is_object()) {
    return std::nullopt;
  }
  try {
    ReleaseInfo info;
    info.id = parsed.at("id").get<std::string>();
    info.seq = parsed.value("seq", int64_t{0});
    info.created = parsed.value("created", 0.0);
    info.timestamp = parsed.value("timestamp", int64_t{0});
    info.packages = parsed.value("packages", size_t{0});
    info.added = parsed.value("added", std::vector<std::string>{});
    info.removed = parsed.value("removed", std::vector<std::string>{});
    info.rebuilt = parsed.value("rebuilt", std::vector<std::string>{});
    info.previous = parsed.value("previous", std::string());
    return info;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Result<> write_info(const std::filesystem::path& dir, const ReleaseInfo& info)
{
  auto body = info.to_json();
  body.erase("current");
  body["seq"] = info.seq;
  return fs::write_file_atomic(dir / k_info_file, body.dump(2) + "\n");
}

std::string utc_id(double epoch)
{
  const auto seconds = static_cast<time_t>(epoch);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                     utc.tm_min, utc.tm_sec);
}

// Hard-links `from` to `to`, creating the directories between; `dirs` collects every directory
// that got a new entry (fsynced before publishing).
Result<> link_into(const std::filesystem::path& from, const std::filesystem::path& to,
                   std::set<std::filesystem::path>& dirs)
{
  if (auto made = fs::make_dirs(to.parent_path()); !made) {
    return made;
  }
  if (auto linked = fs::hard_link(from, to); !linked) {
    return linked;
  }
  for (auto dir = to.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (!dirs.insert(dir).second || dir == dir.parent_path()) {
      break;
    }
  }
  return {};
}

Result<> fsync_dirs(const std::set<std::filesystem::path>& dirs)
{
  // Deepest first, so that each directory's entry in its parent is durable after its content.
  std::vector<std::filesystem::path> ordered(dirs.begin(), dirs.end());
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a.native().size() > b.native().size(); });
  for (const auto& dir : ordered) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      continue;
    }
    if (auto synced = fs::fsync_dir(dir); !synced) {
      return synced;
    }
  }
  return {};
}

// The largest TIMESTAMP any release has used: the next one must be later.
int64_t latest_timestamp(const std::vector<ReleaseInfo>& releases)
{
  int64_t latest = 0;
  for (const auto& release : releases) {
    latest = std::max(latest, release.timestamp);
  }
  return latest;
}

} // namespace

json ReleaseInfo::to_json() const
{
  return json{{"id", id},          {"created", created}, {"timestamp", timestamp}, {"packages", packages},
              {"added", added},    {"removed", removed}, {"rebuilt", rebuilt},     {"previous", previous},
              {"current", current}};
}

bool valid_release_id(std::string_view id)
{
  if (id.empty() || id.size() > 64 || id.front() == '.') {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
           c == '.';
  });
}

ReleaseStore::ReleaseStore(ReleaseOptions options) : m_options(std::move(options))
{
  if (!m_options.now) {
    m_options.now = [] {
      return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
  }
}

double ReleaseStore::now() const
{
  return m_options.now();
}

std::optional<std::string> ReleaseStore::current() const
{
  std::error_code ec;
  const auto target = std::filesystem::read_symlink(m_options.production_link, ec);
  if (ec) {
    return std::nullopt;
  }
  auto name = target.filename().string();
  if (name.empty()) {
    name = target.parent_path().filename().string();
  }
  return name;
}

std::vector<ReleaseInfo> ReleaseStore::list() const
{
  std::vector<ReleaseInfo> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(m_options.releases_dir, ec)) {
    const auto name = entry.path().filename().string();
    if (!valid_release_id(name) || !entry.is_directory(ec)) {
      continue;
    }
    if (auto info = read_info(entry.path()); info && info->id == name) {
      out.push_back(std::move(*info));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return std::tie(a.seq, a.id) < std::tie(b.seq, b.id); });
  const auto current_id = current();
  for (auto& release : out) {
    release.current = current_id && release.id == *current_id;
  }
  return out;
}

Result<portage::PackagesIndex> ReleaseStore::index_of(const std::string& id) const
{
  if (!valid_release_id(id)) {
    return fail(ErrorKind::invalid, "'{}' is not a release id", id);
  }
  auto text = fs::read_file(m_options.releases_dir / id / "Packages");
  if (!text) {
    return fail(ErrorKind::not_found, "release {} has no readable Packages: {}", id, text.error().message);
  }
  return portage::read_packages_index(*text);
}

Result<> ReleaseStore::switch_to(const std::string& id)
{
  // Relative, so that the data directory can move.
  const auto target = (m_options.releases_dir / id).lexically_relative(m_options.production_link.parent_path());
  return fs::replace_symlink_atomically(target.empty() ? m_options.releases_dir / id : target,
                                        m_options.production_link);
}

void ReleaseStore::prune()
{
  const auto releases = list();
  const size_t keep = static_cast<size_t>(std::max(1, m_options.keep));
  const auto current_id = current();
  for (size_t i = 0; i + keep < releases.size(); ++i) {
    if (current_id && releases[i].id == *current_id) {
      continue;
    }
    std::error_code ec;
    std::filesystem::remove_all(m_options.releases_dir / releases[i].id, ec);
    if (ec) {
      LOG_WARN("cannot remove old release {}: {}", releases[i].id, ec.message());
    } else {
      LOG_INFO("removed old release {}", releases[i].id);
    }
  }
  // A finalize that died half-way left its build directory behind.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(m_options.releases_dir, ec)) {
    if (entry.path().filename().string().starts_with(k_building_prefix)) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
}

Result<ReleaseInfo> ReleaseStore::publish(const std::vector<StagedPackage>& packages)
{
  std::lock_guard lock(m_mutex);
  if (auto made = fs::make_dirs(m_options.releases_dir); !made) {
    return fail(made.error());
  }
  const auto releases = list();
  const auto previous = current();
  portage::PackagesIndex previous_index;
  if (previous) {
    auto index = index_of(*previous);
    if (!index) {
      return fail(index.error());
    }
    previous_index = std::move(*index);
  }

  // What the new release lists: every staged package, and each previous entry that no staged
  // package replaces (same CPV: a newer build; same CAT/PN:SLOT: an upgrade in that slot).
  std::set<std::string> new_cpvs;
  std::set<std::string> new_slots;
  std::set<std::string> new_paths;
  for (const auto& package : packages) {
    new_cpvs.insert(package.cpv);
    new_slots.insert(slot_key(package.cpv, package.slot));
    if (!new_paths.insert(package.relative_path).second) {
      return fail(ErrorKind::invalid, "two packages share the path {}", package.relative_path);
    }
  }
  std::vector<const portage::IndexBlock*> kept;
  std::set<std::string> previous_paths;
  std::set<std::string> previous_cpvs;
  std::map<std::string, std::string> previous_path_of;
  for (const auto& block : previous_index.packages) {
    const auto cpv = get(block, "CPV");
    const auto path = get(block, "PATH");
    previous_paths.insert(path);
    previous_cpvs.insert(cpv);
    previous_path_of[cpv] = path;
    if (!new_cpvs.count(cpv) && !new_slots.count(slot_key(cpv, get(block, "SLOT")))) {
      kept.push_back(&block);
    }
  }
  std::set<std::string> listed = new_paths;
  for (const auto* block : kept) {
    listed.insert(get(*block, "PATH"));
  }
  if (previous && listed == previous_paths) {
    return fail(ErrorKind::conflict, "nothing new to release: release {} already publishes these {} packages",
                *previous, listed.size());
  }

  const double created = now();
  std::string id = utc_id(created);
  for (int n = 2; std::filesystem::exists(m_options.releases_dir / id); ++n) {
    id = fmt::format("{}-{}", utc_id(created), n);
  }
  const auto building = m_options.releases_dir / (k_building_prefix + id);
  std::error_code ec;
  std::filesystem::remove_all(building, ec);
  if (auto made = fs::make_dirs(building); !made) {
    return fail(made.error());
  }
  auto abandon = [&](Error error) -> Result<ReleaseInfo> {
    std::error_code ignored;
    std::filesystem::remove_all(building, ignored);
    return fail(std::move(error));
  };

  std::set<std::filesystem::path> dirs{building};
  portage::PackagesIndex index;
  for (const auto& package : packages) {
    const auto destination = building / package.relative_path;
    if (auto linked = link_into(package.file, destination, dirs); !linked) {
      return abandon(linked.error());
    }
    struct stat st {};
    if (::stat(destination.c_str(), &st) != 0) {
      return abandon({ErrorKind::io, fmt::format("cannot stat {}", destination.string())});
    }
    auto block = package.entry;
    block["CPV"] = package.cpv;
    block["PATH"] = package.relative_path;
    block["SIZE"] = std::to_string(st.st_size);
    block["MTIME"] = std::to_string(st.st_mtime);
    index.packages.push_back(std::move(block));
  }
  const auto previous_dir = previous ? m_options.releases_dir / *previous : std::filesystem::path();
  for (const auto* block : kept) {
    const auto path = get(*block, "PATH");
    if (auto linked = link_into(previous_dir / path, building / path, dirs); !linked) {
      return abandon(linked.error());
    }
    index.packages.push_back(*block);
  }
  // The previous release's files stay reachable, unlisted: a client that read the previous
  // Packages just before the switch still finds every file it lists, with the same bytes.
  for (const auto& path : previous_paths) {
    if (listed.count(path) || std::filesystem::exists(building / path, ec)) {
      continue;
    }
    if (auto linked = link_into(previous_dir / path, building / path, dirs); !linked) {
      LOG_WARN("release {}: cannot keep {} of release {}: {}", id, path, *previous, linked.error().message);
    }
  }

  ReleaseInfo info;
  info.id = id;
  info.seq = releases.empty() ? 1 : releases.back().seq + 1;
  info.created = created;
  info.timestamp = std::max(static_cast<int64_t>(created), latest_timestamp(releases) + 1);
  info.packages = index.packages.size();
  info.previous = previous.value_or("");
  for (const auto& package : packages) {
    if (!previous_cpvs.count(package.cpv)) {
      info.added.push_back(package.cpv);
    } else if (previous_path_of[package.cpv] != package.relative_path) {
      info.rebuilt.push_back(package.cpv);
    }
  }
  std::set<std::string> listed_cpvs = new_cpvs;
  for (const auto* block : kept) {
    listed_cpvs.insert(get(*block, "CPV"));
  }
  for (const auto& cpv : previous_cpvs) {
    if (!listed_cpvs.count(cpv)) {
      info.removed.push_back(cpv);
    }
  }
  std::sort(info.added.begin(), info.added.end());
  std::sort(info.rebuilt.begin(), info.rebuilt.end());

  if (auto written = portage::write_packages_files(building, index, info.timestamp); !written) {
    return abandon(written.error());
  }
  if (auto written = write_info(building, info); !written) {
    return abandon(written.error());
  }
  if (auto synced = fsync_dirs(dirs); !synced) {
    return abandon(synced.error());
  }
  // Only a complete, durable directory gets a release name.
  std::filesystem::rename(building, m_options.releases_dir / id, ec);
  if (ec) {
    return abandon({ErrorKind::io, fmt::format("cannot rename {} to {}: {}", building.string(), id, ec.message())});
  }
  if (auto synced = fs::fsync_dir(m_options.releases_dir); !synced) {
    return fail(synced.error());
  }
  if (auto switched = switch_to(id); !switched) {
    return fail(switched.error());
  }
  LOG_INFO("release {} published: {} packages ({} added, {} rebuilt, {} removed)", id, info.packages, info.added.size(),
           info.rebuilt.size(), info.removed.size());
  prune();
  info.current = true;
  return info;
}

Result<ReleaseInfo> ReleaseStore::rollback(const std::optional<std::string>& id)
{
  std::lock_guard lock(m_mutex);
  const auto releases = list();
  const auto current_id = current();
  const ReleaseInfo* target = nullptr;
  if (id) {
    if (!valid_release_id(*id)) {
      return fail(ErrorKind::invalid, "'{}' is not a release id", *id);
    }
    for (const auto& release : releases) {
      if (release.id == *id) {
        target = &release;
      }
    }
    if (!target) {
      return fail(ErrorKind::not_found, "no release {} (see `swarm releases`)", *id);
    }
  } else {
    const ReleaseInfo* cur = nullptr;
    for (const auto& release : releases) {
      if (release.current) {
        cur = &release;
      }
    }
    for (const auto& release : releases) {
      if (cur && release.seq < cur->seq) {
        target = &release;
      }
    }
    if (!target) {
      return fail(ErrorKind::conflict, "there is no release before {}", current_id.value_or("(none)"));
    }
  }
  if (current_id && target->id == *current_id) {
    return fail(ErrorKind::conflict, "release {} is already the current one", target->id);
  }
  const auto target_dir = m_options.releases_dir / target->id;
  auto index = index_of(target->id);
  if (!index) {
    return fail(index.error());
  }
  std::set<std::filesystem::path> dirs{target_dir};
  // As in publish: the files of the release being replaced stay reachable for clients that
  // read its index just before the switch.
  if (current_id) {
    if (auto current_index = index_of(*current_id)) {
      std::error_code ec;
      for (const auto& block : current_index->packages) {
        const auto path = get(block, "PATH");
        if (path.empty() || std::filesystem::exists(target_dir / path, ec)) {
          continue;
        }
        if (auto linked = link_into(m_options.releases_dir / *current_id / path, target_dir / path, dirs); !linked) {
          LOG_WARN("rollback: cannot keep {}: {}", path, linked.error().message);
        }
      }
    }
  }
  ReleaseInfo info = *target;
  info.timestamp = std::max(static_cast<int64_t>(now()), latest_timestamp(releases) + 1);
  if (auto written = portage::write_packages_files(target_dir, *index, info.timestamp); !written) {
    return fail(written.error());
  }
  if (auto written = write_info(target_dir, info); !written) {
    return fail(written.error());
  }
  if (auto synced = fsync_dirs(dirs); !synced) {
    return fail(synced.error());
  }
  if (auto switched = switch_to(info.id); !switched) {
    return fail(switched.error());
  }
  LOG_INFO("rolled back production from {} to {}", current_id.value_or("(none)"), info.id);
  info.current = true;
  info.previous = current_id.value_or("");
  return info;
}

} // namespace swarm::roles::orch
