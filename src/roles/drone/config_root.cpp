#include "roles/drone/config_root.hpp"

#include <algorithm>
#include <set>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "portage/make_conf.hpp"
#include "portage/md5_cache.hpp"
#include "portage/repos_conf.hpp"

namespace swarm::roles::drone {

namespace {

// A drone's /etc/portage is small; a copy beyond this is a mistake (a keyring, a distfile).
constexpr uint64_t k_copy_budget = 64u << 20;
constexpr int k_copy_depth = 16;

// The drone's etc/portage entries a build never takes from the drone: rewritten (make.conf,
// make.profile, repos.conf), replaced by the staging repository (binrepos.conf), or not
// needed by a build and possibly holding sockets (gnupg).
const std::set<std::string>& replaced_entries()
{
  static const std::set<std::string> k_entries{"make.conf", "make.profile", "repos.conf", "binrepos.conf", "gnupg"};
  return k_entries;
}

// The order of package.use decides: Portage reads a directory's entries sorted by name,
// recursing in place, and a later line wins. So the profile's (or drone's) files go below
// `00-…` and the pin, `zz-swarm-pin`, comes after all of them whatever their names.
constexpr std::string_view k_pin_name = "zz-swarm-pin";

std::filesystem::path package_use_place(const std::string& relative, std::string_view owner)
{
  if (relative == "package.use") {
    return std::filesystem::path("package.use") / std::string(owner);
  }
  if (relative.starts_with("package.use/")) {
    return std::filesystem::path("package.use") / std::string(owner) / relative.substr(12);
  }
  return relative;
}

Result<> write(const std::filesystem::path& path, std::string_view text, unsigned mode = 0644)
{
  if (auto made = fs::make_dirs(path.parent_path()); !made) {
    return made;
  }
  return fs::write_file_atomic(path, text, mode);
}

// Copies a file or a directory tree, following symlinks (their targets may not exist inside a
// build root), skipping sockets and the like.
Result<> copy_tree(const std::filesystem::path& from, const std::filesystem::path& to, uint64_t& budget, int depth)
{
  std::error_code error;
  const auto status = std::filesystem::status(from, error);
  if (error || depth > k_copy_depth) {
    return {};
  }
  if (std::filesystem::is_regular_file(status)) {
    auto text = fs::read_file(from, budget);
    if (!text) {
      return fail(text.error().kind, "copying the drone's configuration: {}", text.error().message);
    }
    budget -= std::min<uint64_t>(budget, text->size());
    return write(to, *text);
  }
  if (!std::filesystem::is_directory(status)) {
    return {};
  }
  if (auto made = fs::make_dirs(to); !made) {
    return made;
  }
  for (std::filesystem::directory_iterator it(from, error), end; !error && it != end; it.increment(error)) {
    if (auto copied = copy_tree(it->path(), to / it->path().filename(), budget, depth + 1); !copied) {
      return copied;
    }
  }
  return {};
}

bool repository_known(const DroneFacts& facts, std::string_view name)
{
  return !facts.repositories.location(name).empty();
}

// The drone's repositories in a repos.conf: only those `wanted` (all when empty), each with
// the attributes that locate it and order it among the others.
std::string repos_conf_for(const DroneFacts& facts, const std::set<std::string>& wanted, std::string_view fallback_main)
{
  portage::ReposConf conf;
  conf.main_repo = facts.repositories.main_repo;
  for (const auto& repository : facts.repositories.repositories) {
    if (!wanted.empty() && !wanted.contains(repository.name)) {
      continue;
    }
    portage::RepoSection section{repository.name, {}};
    for (const auto* key : {"location", "masters", "priority"}) {
      const auto it = repository.attributes.find(key);
      if (it != repository.attributes.end() && !it->second.empty()) {
        section.attributes[key] = it->second;
      }
    }
    conf.repositories.push_back(std::move(section));
  }
  if (!wanted.empty() && !wanted.contains(conf.main_repo)) {
    conf.main_repo = std::string(fallback_main);
  }
  return portage::write_repos_conf(conf);
}

bool is_safe_relative(const std::filesystem::path& path)
{
  if (path.empty() || path.is_absolute()) {
    return false;
  }
  return std::none_of(path.begin(), path.end(), [](const auto& part) { return part == ".."; });
}

} // namespace

std::set<std::string> profile_repositories(const portage::BuildProfile* profile)
{
  std::set<std::string> names;
  if (profile) {
    for (const auto& repository : profile->repositories) {
      names.insert(repository.name);
    }
    names.insert(profile->make_profile_repo);
  }
  return names;
}

std::optional<Refusal> check_profile(const portage::BuildProfile& profile, const DroneFacts& facts,
                                     std::string_view base_chost)
{
  if (!facts.known) {
    return Refusal{"other", "this drone could not ask its Portage (portageq) about its repositories and CHOST at "
                            "start, so it cannot honour a build profile"};
  }
  const auto chost = profile.settings.contains("CHOST") ? profile.settings.at("CHOST") : std::string();
  if (base_chost.empty()) {
    return Refusal{"chost_unsupported", fmt::format("the profile builds for CHOST {}, and the CHOST of this drone's "
                                                    "build base is unknown",
                                                    chost)};
  }
  if (chost != base_chost) {
    return Refusal{
      "chost_unsupported",
      fmt::format("the profile builds for CHOST {}; this drone's build base produces {}", chost, base_chost)};
  }
  std::vector<std::string> names;
  for (const auto& repository : profile.repositories) {
    names.push_back(repository.name);
  }
  if (!profile.make_profile_repo.empty()) {
    names.push_back(profile.make_profile_repo);
  }
  for (const auto& name : names) {
    if (!repository_known(facts, name)) {
      return Refusal{"repository_missing",
                     fmt::format("the profile needs the repository {}, which this drone does not have", name)};
    }
  }
  const std::filesystem::path make_profile(profile.make_profile);
  if (!is_safe_relative(make_profile)) {
    return Refusal{"other",
                   fmt::format("the profile's make.profile {:?} is not a path below profiles/", profile.make_profile)};
  }
  const auto target = facts.repositories.location(profile.make_profile_repo) / "profiles" / make_profile;
  std::error_code error;
  if (!std::filesystem::is_directory(target, error)) {
    return Refusal{"repository_missing", fmt::format("this drone's repository {} has no profile {} ({} is missing)",
                                                     profile.make_profile_repo, profile.make_profile, target.string())};
  }
  return std::nullopt;
}

Result<std::string> read_machine_make_conf(const std::filesystem::path& configroot)
{
  std::string out;
  std::error_code error;
  const auto legacy = configroot / "etc/make.conf";
  const auto current = configroot / "etc/portage/make.conf";
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_regular_file(legacy, error)) {
    files.push_back(legacy);
  }
  if (std::filesystem::is_directory(current, error)) {
    auto inside = fs::list_files_recursive(current);
    if (!inside) {
      return fail(inside.error());
    }
    for (const auto& relative : *inside) {
      const auto name = relative.filename().string();
      if (!name.starts_with(".") && !name.ends_with("~")) {
        files.push_back(current / relative);
      }
    }
  } else if (std::filesystem::is_regular_file(current, error)) {
    files.push_back(current);
  }
  for (const auto& file : files) {
    auto text = fs::read_file(file, 4u << 20);
    if (!text) {
      return fail(text.error());
    }
    out += *text;
    if (!out.empty() && out.back() != '\n') {
      out += '\n';
    }
  }
  return out;
}

std::string use_pin_for(const net::Lease& lease, const std::filesystem::path& repo_dir, std::string* note)
{
  auto entry = repo_dir.empty() ? Result<portage::Md5CacheEntry>(fail(ErrorKind::not_found, "no repository"))
                                : portage::read_md5_cache(repo_dir, lease.cpv);
  if (entry) {
    return portage::use_pin_line(lease.cpv, strings::split_any(entry->get("IUSE")), lease.use);
  }
  if (note) {
    *note = fmt::format("cannot read the IUSE of {} ({}); only the plan's enabled flags are pinned", lease.cpv,
                        entry.error().message);
  }
  if (lease.use.empty()) {
    return {};
  }
  return fmt::format("={} {}\n", lease.cpv, strings::join(lease.use, " "));
}

Result<> write_config_root(const std::filesystem::path& dir, const ConfigRootInputs& inputs)
{
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  if (error) {
    return fail(ErrorKind::io, "cannot clear {}: {}", dir.string(), error.message());
  }
  const auto etc = dir / "etc/portage";
  const auto own_etc = inputs.drone_configroot / "etc/portage";
  if (auto made = fs::make_dirs(etc); !made) {
    return made;
  }
  auto machine = read_machine_make_conf(inputs.drone_configroot);
  if (!machine) {
    return fail(machine.error());
  }

  const auto* profile = inputs.profile;
  const DroneFacts no_facts;
  const auto& facts = inputs.facts ? *inputs.facts : no_facts;
  std::string make_conf;
  std::filesystem::path make_profile;
  if (profile) {
    auto rewritten = portage::profile_make_conf(*machine, *profile);
    if (!rewritten) {
      return fail(rewritten.error());
    }
    make_conf = std::move(*rewritten);
    if (!is_safe_relative(profile->make_profile)) {
      return fail(ErrorKind::invalid, "the build profile's make.profile {:?} leaves profiles/", profile->make_profile);
    }
    make_profile = facts.repositories.location(profile->make_profile_repo) / "profiles" / profile->make_profile;
  } else {
    make_conf = *machine + "\n# --- swarm: build dependencies come from the staging binhost only ---\n"
                           "PORTAGE_BINHOST=\"\"\n";
    // Absolute: the drone's link may be relative to its own /etc/portage. A drone without one
    // gets none either: its emerge says what is wrong, as it would without swarm.
    make_profile = std::filesystem::canonical(own_etc / "make.profile", error);
    if (error) {
      make_profile.clear();
      error.clear();
    }
  }
  if (auto written = write(etc / "make.conf", make_conf); !written) {
    return written;
  }
  if (!make_profile.empty()) {
    std::filesystem::create_directory_symlink(make_profile, etc / "make.profile", error);
  }
  if (error) {
    return fail(ErrorKind::io, "cannot link {} to {}: {}", (etc / "make.profile").string(), make_profile.string(),
                error.message());
  }

  // repos.conf as a file: what Portage reads, and all the realportage launcher reads too.
  if (facts.known) {
    if (auto written = write(etc / "repos.conf", repos_conf_for(facts, profile_repositories(profile),
                                                                profile ? profile->make_profile_repo : ""));
        !written) {
      return written;
    }
  } else if (std::filesystem::exists(own_etc / "repos.conf", error)) {
    uint64_t budget = k_copy_budget;
    if (auto copied = copy_tree(own_etc / "repos.conf", etc / "repos.conf", budget, 0); !copied) {
      return copied;
    }
  }

  if (profile) {
    for (const auto& [relative, content] : profile->files) {
      if (!is_safe_relative(relative)) {
        return fail(ErrorKind::invalid, "the build profile holds a file outside etc/portage: {:?}", relative);
      }
      if (auto written = write(etc / package_use_place(relative, "00-profile"), content); !written) {
        return written;
      }
    }
  } else {
    uint64_t budget = k_copy_budget;
    for (std::filesystem::directory_iterator it(own_etc, error), end; !error && it != end; it.increment(error)) {
      const auto name = it->path().filename().string();
      if (replaced_entries().contains(name) || name.starts_with(".")) {
        continue;
      }
      if (auto copied = copy_tree(it->path(), etc / package_use_place(name, "00-drone"), budget, 0); !copied) {
        return copied;
      }
    }
  }

  if (!inputs.staging_binrepos.empty()) {
    // Mode 0600: the URL carries the drone's token.
    if (auto written = write(etc / "binrepos.conf/swarm-staging.conf", inputs.staging_binrepos, 0600); !written) {
      return written;
    }
  }
  if (!inputs.use_pin.empty()) {
    if (auto written = write(etc / "package.use" / std::string(k_pin_name), inputs.use_pin); !written) {
      return written;
    }
  }
  return {};
}

} // namespace swarm::roles::drone
