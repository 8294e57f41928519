#include "roles/drone/build_root.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <fcntl.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/process_group.hpp"
#include "core/strings.hpp"

namespace swarm::roles::drone {

namespace {

constexpr std::string_view k_in_use = "in-use";

bool is_at_or_below(const std::filesystem::path& path, const std::filesystem::path& parent)
{
  const auto relative = path.lexically_relative(parent);
  return !relative.empty() && *relative.begin() != "..";
}

// A directory name for one layer's upper/work: readable, and unique per path.
std::string layer_name(const std::filesystem::path& at)
{
  if (at == "/") {
    return "root";
  }
  std::string name;
  for (const char c : at.relative_path().string()) {
    name += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  }
  return name + "-" + hash::hex_digest(hash::Algo::sha256, at.string()).substr(0, 8);
}

std::string cache_key(const net::Lease& lease)
{
  // The profile name is checked by the protocol ([A-Za-z0-9._-]); a new build profile gets a
  // new root, since what the old one installed was built for other settings.
  const auto suffix = lease.profile_hash.empty() ? std::string("own") : lease.profile_hash.substr(0, 12);
  return (net::is_valid_profile_name(lease.profile) ? lease.profile : std::string("default")) + "-" + suffix;
}

bool is_key_of(std::string_view key, std::string_view profile)
{
  if (!key.starts_with(profile) || key.size() <= profile.size() + 1 || key[profile.size()] != '-') {
    return false;
  }
  const auto rest = key.substr(profile.size() + 1);
  return rest == "own" || (rest.size() == 12 && std::all_of(rest.begin(), rest.end(), [](char c) {
                             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                           }));
}

std::string_view access_word(const isolation::Bind& bind)
{
  if (bind.recursive == isolation::Recursive::yes) {
    return "rec";
  }
  return bind.access == isolation::Access::read_only ? "ro" : "rw";
}

Result<> remove_tree(const std::filesystem::path& dir)
{
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  if (error) {
    return fail(ErrorKind::io, "cannot remove {}: {}", dir.string(), error.message());
  }
  return {};
}

// The record needs no fsync: it only matters while this boot lasts (a record of another boot
// names nothing), and the page cache survives the drone being killed.
Result<> write_record(const std::filesystem::path& path, const std::string& text)
{
  const auto temp = path.string() + ".tmp";
  FILE* file = std::fopen(temp.c_str(), "we");
  if (!file) {
    return fail(ErrorKind::io, "cannot write {}: {}", temp, fs::errno_text(errno));
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !written) {
    return fail(ErrorKind::io, "cannot write {}", temp);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(ErrorKind::io, "cannot rename {} to {}: {}", temp, path.string(), fs::errno_text(errno));
  }
  return {};
}

} // namespace

std::optional<BuildRootMode> build_root_mode_from_name(std::string_view name)
{
  if (name == "isolated") {
    return BuildRootMode::isolated;
  }
  if (name == "host") {
    return BuildRootMode::host;
  }
  return std::nullopt;
}

std::string_view build_root_mode_name(BuildRootMode mode)
{
  return mode == BuildRootMode::isolated ? "isolated" : "host";
}

std::optional<BuildCache> build_cache_from_name(std::string_view name)
{
  if (name == "discard") {
    return BuildCache::discard;
  }
  if (name == "keep") {
    return BuildCache::keep;
  }
  return std::nullopt;
}

const std::filesystem::path& BuildBases::for_profile(const std::string& profile) const
{
  const auto it = per_profile.find(profile);
  return it == per_profile.end() ? fallback : it->second;
}

Result<BuildBases> parse_build_bases(const std::vector<std::string>& entries)
{
  BuildBases bases;
  for (const auto& raw : entries) {
    const auto entry = std::string(strings::trim(raw));
    if (entry.empty()) {
      continue;
    }
    const auto equals = entry.find('=');
    const std::filesystem::path dir = equals == std::string::npos ? entry : entry.substr(equals + 1);
    if (!dir.is_absolute()) {
      return fail(ErrorKind::invalid, "drone.build_base: {:?} is not an absolute directory", dir.string());
    }
    if (equals == std::string::npos) {
      bases.fallback = dir.lexically_normal();
      continue;
    }
    const auto profile = entry.substr(0, equals);
    if (!net::is_valid_profile_name(profile)) {
      return fail(ErrorKind::invalid, "drone.build_base: {:?} is not a profile name", profile);
    }
    bases.per_profile[profile] = dir.lexically_normal();
  }
  return bases;
}

Submounts base_submounts(const std::vector<mounts::MountEntry>& table,
                         const std::vector<std::filesystem::path>& excluded)
{
  // The last mount on a path is the one seen there.
  std::vector<std::filesystem::path> points;
  std::map<std::filesystem::path, std::string> types;
  for (const auto& entry : table) {
    if (!types.contains(entry.mount_point)) {
      points.push_back(entry.mount_point);
    }
    types[entry.mount_point] = entry.fs_type;
  }
  Submounts out;
  for (const auto& point : points) {
    if (point == "/" || mounts::is_virtual_fs(types[point]) || !point.is_absolute()) {
      continue;
    }
    const auto special = {std::filesystem::path("/proc"), std::filesystem::path("/sys"), std::filesystem::path("/dev"),
                          std::filesystem::path("/run")};
    if (std::any_of(special.begin(), special.end(), [&](const auto& p) { return is_at_or_below(point, p); }) ||
        std::any_of(excluded.begin(), excluded.end(), [&](const auto& p) { return is_at_or_below(point, p); })) {
      continue;
    }
    std::error_code error;
    const auto status = std::filesystem::symlink_status(point, error);
    if (std::filesystem::is_directory(status)) {
      out.directories.push_back(point);
    } else if (std::filesystem::is_regular_file(status)) {
      out.files.push_back(point);
    }
  }
  return out;
}

std::vector<isolation::Bind> system_binds(const std::filesystem::path& base)
{
  using isolation::Access;
  using isolation::Bind;
  using isolation::Recursive;
  std::vector<Bind> out{{"/proc", "/proc", Access::read_write, Recursive::yes},
                        {"/sys", "/sys", Access::read_write, Recursive::yes},
                        {"/dev", "/dev", Access::read_write, Recursive::yes}};
  if (base != "/") {
    for (const auto* file : {"/etc/resolv.conf", "/etc/hosts"}) {
      std::error_code error;
      if (std::filesystem::is_regular_file(file, error)) {
        out.push_back({std::filesystem::canonical(file, error), file, Access::read_only, Recursive::no});
      }
    }
  }
  return out;
}

BuildRoots::BuildRoots(BuildRootSettings settings) : m_settings(std::move(settings))
{}

RootUse BuildRoots::plan(const std::filesystem::path& dir, const std::filesystem::path& base,
                         const std::vector<isolation::Bind>& binds) const
{
  RootUse use;
  use.dir = dir;
  use.spec.merged = dir / "merged";
  const auto add_layer = [&](const std::filesystem::path& lower, const std::filesystem::path& at) {
    const auto name = layer_name(at);
    use.spec.layers.push_back({lower, at, dir / "upper" / name, dir / "work" / name});
  };
  add_layer(base, "/");
  use.spec.binds = system_binds(base);
  if (base == "/") {
    for (const auto& point : m_settings.base_submounts) {
      add_layer(point, point);
    }
    for (const auto& file : m_settings.base_file_mounts) {
      use.spec.binds.push_back({file, file, isolation::Access::read_only, isolation::Recursive::no});
    }
  }
  use.spec.binds.insert(use.spec.binds.end(), binds.begin(), binds.end());
  return use;
}

Result<std::optional<RootUse>> BuildRoots::acquire(const net::Lease& lease, const std::vector<isolation::Bind>& binds)
{
  if (m_settings.mode == BuildRootMode::host) {
    return std::optional<RootUse>();
  }
  const auto& base = m_settings.bases.for_profile(lease.profile);
  std::error_code error;
  if (!std::filesystem::is_directory(base, error)) {
    return fail(ErrorKind::not_found, "the build base {} of profile {} is not a directory", base.string(),
                lease.profile);
  }
  if (m_settings.cache == BuildCache::keep) {
    const auto cache = m_settings.roots_dir / "cache";
    const auto key = cache_key(lease);
    if (auto made = fs::make_dirs(cache / key / "merged"); !made) {
      return fail(made.error());
    }
    auto lock = fs::try_lock_exclusive(cache / (key + ".lock"));
    if (lock) {
      auto use = plan(cache / key, base, binds);
      use.cache = BuildCache::keep;
      use.lock = std::move(*lock);
      // Marks the root as in use: a drone killed now leaves it half installed, and the next
      // start discards it (remove_stale_roots).
      if (auto marked = fs::write_file_atomic(cache / key / k_in_use, "", 0644); !marked) {
        return fail(marked.error());
      }
      return std::optional<RootUse>(std::move(use));
    }
    if (lock.error().kind != ErrorKind::conflict) {
      return fail(lock.error());
    }
    // Another slot builds for this profile: this lease gets a throw-away root.
  }
  if (!net::is_safe_lease_id(lease.id)) {
    return fail(ErrorKind::invalid, "lease id {:?} is not acceptable", lease.id);
  }
  const auto dir = m_settings.roots_dir / ("lease-" + lease.id);
  if (auto removed = remove_tree(dir); !removed) {
    return fail(removed.error());
  }
  if (auto made = fs::make_dirs(dir / "merged"); !made) {
    return fail(made.error());
  }
  return std::optional<RootUse>(plan(dir, base, binds));
}

void BuildRoots::release(std::optional<RootUse>& use) const
{
  if (!use) {
    return;
  }
  if (use->cache == BuildCache::keep) {
    std::error_code error;
    std::filesystem::remove(use->dir / k_in_use, error);
    use->lock.reset();
  } else {
    (void)remove_tree(use->dir);
  }
  use.reset();
}

std::vector<std::string> BuildRoots::wrap(const RootUse* use, const std::filesystem::path& record,
                                          const std::vector<std::string>& argv) const
{
  std::vector<std::string> out{m_settings.helper, "drone-root"};
  if (!record.empty()) {
    out.insert(out.end(), {"--record", record.string()});
  }
  if (use) {
    out.insert(out.end(), {"--merged", use->spec.merged.string()});
    for (const auto& layer : use->spec.layers) {
      out.insert(out.end(),
                 {"--layer", layer.lower.string(), layer.at.string(), layer.upper.string(), layer.work.string()});
    }
    for (const auto& bind : use->spec.binds) {
      out.insert(out.end(), {"--bind", bind.source.string(), bind.at.string(), std::string(access_word(bind))});
    }
  }
  out.emplace_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Result<RootUse> BuildRoots::scratch_root(const std::filesystem::path& base, std::string_view name) const
{
  const auto dir = m_settings.roots_dir / fmt::format("{}-{}", name, ::getpid());
  if (auto removed = remove_tree(dir); !removed) {
    return fail(removed.error());
  }
  if (auto made = fs::make_dirs(dir / "merged"); !made) {
    return fail(made.error());
  }
  return plan(dir, base, {});
}

Result<> BuildRoots::probe(subprocess::ProcessRunner& runner, const std::filesystem::path& base) const
{
  auto use = scratch_root(base, "probe");
  if (!use) {
    return fail(use.error());
  }
  subprocess::Spec spec;
  spec.argv = wrap(&*use, "", {"true"});
  spec.capture = subprocess::Capture::yes;
  spec.timeout = std::chrono::minutes(1);
  auto outcome = runner.run(spec);
  std::optional<RootUse> owned(std::move(*use));
  release(owned);
  if (!outcome) {
    return fail(outcome.error());
  }
  if (!outcome->success()) {
    return fail(ErrorKind::unavailable, "cannot set up an isolated build root over {} ({}): {}", base.string(),
                outcome->describe(), strings::trim(outcome->output.substr(0, 600)));
  }
  return {};
}

Result<size_t> remove_stale_roots(const std::filesystem::path& roots_dir)
{
  size_t removed = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it(roots_dir, error), end; !error && it != end; it.increment(error)) {
    const auto name = it->path().filename().string();
    if (name == "cache") {
      continue;
    }
    if (auto gone = remove_tree(it->path()); !gone) {
      return fail(gone.error());
    }
    ++removed;
  }
  const auto cache = roots_dir / "cache";
  for (std::filesystem::directory_iterator it(cache, error), end; !error && it != end; it.increment(error)) {
    if (!it->is_directory() || !std::filesystem::exists(it->path() / k_in_use)) {
      continue;
    }
    if (auto gone = remove_tree(it->path()); !gone) {
      return fail(gone.error());
    }
    ++removed;
  }
  return removed;
}

Result<size_t> reset_caches(const std::filesystem::path& roots_dir, std::string_view profile)
{
  size_t removed = 0;
  const auto cache = roots_dir / "cache";
  std::error_code error;
  std::vector<std::filesystem::path> dirs;
  for (std::filesystem::directory_iterator it(cache, error), end; !error && it != end; it.increment(error)) {
    const auto key = it->path().filename().string();
    if (it->is_directory() && (profile.empty() || is_key_of(key, profile))) {
      dirs.push_back(it->path());
    }
  }
  for (const auto& dir : dirs) {
    auto lock = fs::try_lock_exclusive(dir.string() + ".lock");
    if (!lock) {
      return fail(lock.error().kind, "{} is in use by a build; try again when it is over", dir.filename().string());
    }
    if (auto gone = remove_tree(dir); !gone) {
      return fail(gone.error());
    }
    ++removed;
  }
  return removed;
}

Result<HelperRequest> parse_helper_args(const std::vector<std::string>& args)
{
  HelperRequest request;
  isolation::RootSpec spec;
  bool has_root = false;
  size_t i = 0;
  const auto take = [&](size_t count, const std::string& flag) -> Result<std::vector<std::string>> {
    if (i + count >= args.size()) {
      return fail(ErrorKind::invalid, "{} needs {} values", flag, count);
    }
    std::vector<std::string> values(args.begin() + static_cast<std::ptrdiff_t>(i + 1),
                                    args.begin() + static_cast<std::ptrdiff_t>(i + 1 + count));
    i += count + 1;
    return values;
  };
  while (i < args.size()) {
    const auto& flag = args[i];
    if (flag == "--") {
      request.argv.assign(args.begin() + static_cast<std::ptrdiff_t>(i + 1), args.end());
      break;
    }
    if (flag == "--record" || flag == "--merged") {
      auto values = take(1, flag);
      if (!values) {
        return fail(values.error());
      }
      if (flag == "--record") {
        request.record = values->at(0);
      } else {
        spec.merged = values->at(0);
        has_root = true;
      }
    } else if (flag == "--layer") {
      auto values = take(4, flag);
      if (!values) {
        return fail(values.error());
      }
      spec.layers.push_back({values->at(0), values->at(1), values->at(2), values->at(3)});
      has_root = true;
    } else if (flag == "--bind") {
      auto values = take(3, flag);
      if (!values) {
        return fail(values.error());
      }
      isolation::Bind bind{values->at(0), values->at(1)};
      const auto& mode = values->at(2);
      if (mode == "ro") {
        bind.access = isolation::Access::read_only;
      } else if (mode == "rec") {
        bind.recursive = isolation::Recursive::yes;
      } else if (mode != "rw") {
        return fail(ErrorKind::invalid, "--bind mode must be rw, ro or rec, not {:?}", mode);
      }
      spec.binds.push_back(std::move(bind));
      has_root = true;
    } else {
      return fail(ErrorKind::invalid, "unknown option {:?}", flag);
    }
  }
  if (request.argv.empty()) {
    return fail(ErrorKind::invalid, "nothing to run: give the command after --");
  }
  if (has_root) {
    if (auto valid = isolation::validate(spec); !valid) {
      return fail(valid.error());
    }
    request.root = std::move(spec);
  }
  return request;
}

int run_helper(const HelperRequest& request)
{
  const auto report = [](const std::string& message) {
    std::fprintf(stderr, "swarm: drone-root: %s\n", message.c_str());
    return k_helper_setup_failed;
  };
  if (!request.record.empty()) {
    // Before anything runs: a drone killed from now on finds this group at its next start.
    auto record = process_group::self_record();
    if (!record) {
      return report(record.error().message);
    }
    if (auto written = write_record(request.record, process_group::to_text(*record)); !written) {
      return report(written.error().message);
    }
  }
  if (request.root) {
    if (auto entered = isolation::enter(*request.root); !entered) {
      return report(entered.error().message);
    }
  }
  std::vector<char*> argv;
  for (const auto& word : request.argv) {
    argv.push_back(const_cast<char*>(word.c_str()));
  }
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const int error_number = errno;
  std::fprintf(stderr, "swarm: drone-root: cannot run %s: %s\n", argv[0], fs::errno_text(error_number).c_str());
  return error_number == ENOENT ? 127 : 126;
}

} // namespace swarm::roles::drone
