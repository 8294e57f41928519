#include "roles/drone/lease_setup.hpp"

#include <set>

#include "core/log.hpp"
#include "portage/make_conf.hpp"

namespace swarm::roles::drone {

namespace {

// A bind of a host directory at its own path; nothing when it does not exist (the build then
// sees the base's directory there).
void add_bind(std::vector<isolation::Bind>& binds, const std::filesystem::path& path, isolation::Access access)
{
  if (path.empty()) {
    return;
  }
  std::error_code error;
  const auto canonical = std::filesystem::canonical(path, error);
  if (error || !std::filesystem::is_directory(canonical, error)) {
    return;
  }
  for (const auto& bind : binds) {
    if (bind.at == canonical) {
      return;
    }
  }
  binds.push_back({canonical, canonical, access, isolation::Recursive::no});
}

} // namespace

std::filesystem::path process_record_path(const std::filesystem::path& work_dir)
{
  return work_dir / "emerge.pgid";
}

LeaseSetup::LeaseSetup(LeaseSetupSettings settings, ProfileCache& profiles, BuildRoots& roots)
    : m_settings(std::move(settings)), m_profiles(profiles), m_roots(roots)
{}

std::vector<isolation::Bind> LeaseSetup::binds(const portage::BuildProfile* profile,
                                               const std::filesystem::path& configroot) const
{
  using isolation::Access;
  std::vector<isolation::Bind> out;
  add_bind(out, m_settings.pkgdir, Access::read_write);
  add_bind(out, configroot, Access::read_only);
  const auto& facts = m_settings.facts;
  add_bind(out, facts.distdir, Access::read_write);
  add_bind(out, facts.portage_tmpdir, Access::read_write);
  // The repositories, read-only: a build reads its ebuild and eclasses, it never edits them.
  if (facts.known) {
    const auto wanted = profile_repositories(profile);
    for (const auto& repository : facts.repositories.repositories) {
      if (wanted.empty() || wanted.contains(repository.name)) {
        add_bind(out, facts.repositories.location(repository.name), Access::read_only);
      }
    }
  } else {
    add_bind(out, m_settings.fallback_repo_dir, Access::read_only);
  }
  return out;
}

SetupOutcome LeaseSetup::prepare(const net::Lease& lease, const std::string& staging_url,
                                 const std::filesystem::path& work_dir)
{
  SetupOutcome outcome;
  std::optional<portage::BuildProfile> profile;
  if (!lease.profile_hash.empty()) {
    auto fetched = m_profiles.get(lease.profile_hash);
    if (!fetched) {
      outcome.refusal = Refusal{"profile_unavailable", fetched.error().message};
      return outcome;
    }
    profile = std::move(*fetched);
  }

  const auto& facts = m_settings.facts;
  const bool isolated = m_roots.settings().mode == BuildRootMode::isolated;
  const auto& base = isolated ? m_roots.settings().bases.for_profile(lease.profile) : std::filesystem::path("/");
  if (isolated) {
    std::error_code error;
    if (!std::filesystem::is_directory(base, error)) {
      outcome.refusal = Refusal{"build_root_unavailable", fmt::format("the build base {} of profile {} is not a "
                                                                      "directory on this drone",
                                                                      base.string(), lease.profile)};
      return outcome;
    }
  }
  if (profile) {
    const auto chost = m_settings.base_chosts.find(base);
    const auto base_chost = chost != m_settings.base_chosts.end() ? chost->second : std::string();
    if (auto refusal = check_profile(*profile, facts, base_chost)) {
      outcome.refusal = std::move(refusal);
      return outcome;
    }
  }

  PreparedLease prepared;
  ConfigRootInputs inputs;
  inputs.drone_configroot = m_settings.drone_configroot;
  inputs.facts = &facts;
  inputs.profile = profile ? &*profile : nullptr;
  if (!staging_url.empty()) {
    auto staging = staging_binrepos_text(staging_url, m_settings.token);
    if (!staging) {
      outcome.failure = fmt::format("cannot configure the staging binhost: {}", staging.error().message);
      return outcome;
    }
    inputs.staging_binrepos = std::move(*staging);
  } else if (!lease.deps.empty()) {
    outcome.failure = "cannot configure the staging binhost: the orchestrator gave no staging URL";
    return outcome;
  }
  // The pin reads IUSE from the drone's copy of the package's repository.
  std::filesystem::path repo_dir = m_settings.fallback_repo_dir;
  if (facts.known) {
    const auto& name = lease.repo.empty() ? facts.repositories.main_repo : lease.repo;
    if (auto location = facts.repositories.location(name); !location.empty()) {
      repo_dir = location;
    }
  }
  std::string note;
  inputs.use_pin = use_pin_for(lease, repo_dir, &note);
  if (!note.empty()) {
    prepared.notes.push_back(note);
  }
  const auto configroot = std::filesystem::absolute(work_dir / "configroot");
  if (auto written = write_config_root(configroot, inputs); !written) {
    outcome.failure =
      fmt::format("swarm: drone environment: cannot write the build's configuration: {}", written.error().message);
    return outcome;
  }

  auto root = m_roots.acquire(lease, binds(inputs.profile, configroot));
  if (!root) {
    outcome.refusal = Refusal{"build_root_unavailable", root.error().message};
    return outcome;
  }
  prepared.root = std::move(*root);
  prepared.environment.configroot = configroot;
  prepared.environment.wrapper = m_roots.wrap(prepared.root ? &*prepared.root : nullptr,
                                              std::filesystem::absolute(process_record_path(work_dir)), {});
  // A fresh root has only the base's packages: reinstall the plan's over them. A kept root and
  // the drone's own system keep what they have.
  prepared.environment.deps =
    prepared.root && prepared.root->cache == BuildCache::discard ? DepsInstall::reinstall : DepsInstall::skip_installed;
  // The drone's own environment must not override what the profile decides (Portage lets the
  // environment win over make.conf), nor add binhosts.
  prepared.environment.unset = {"PORTAGE_BINHOST"};
  if (profile) {
    for (const auto& name : portage::profile_owned_variables(*profile)) {
      prepared.environment.unset.push_back(name);
    }
  }
  outcome.prepared = std::move(prepared);
  return outcome;
}

void LeaseSetup::finish(PreparedLease& prepared) const
{
  m_roots.release(prepared.root);
}

} // namespace swarm::roles::drone
