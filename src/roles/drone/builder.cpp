#include "roles/drone/builder.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "net/url.hpp"
#include "portage/atom.hpp"
#include "portage/gpkg.hpp"
#include "portage/pkgdir_index.hpp"
#include "roles/drone/config_root.hpp"
#include "roles/drone/spool.hpp"

namespace swarm::roles::drone {

namespace {

constexpr std::string_view k_gpkg_suffix = ".gpkg.tar";
constexpr size_t k_reason_line_limit = 300;
constexpr uint64_t k_reason_window = 64u << 10;

// Re-parses a cpv from the orchestrator and returns it as the atom emerge gets: `=cat/pkg-ver`.
Result<std::string> exact_atom(std::string_view cpv_text)
{
  // (parse_cpv gives a text without '/' the category "null", as Portage's catpkgsplit does.)
  const auto cpv = portage::parse_cpv(cpv_text);
  if (!cpv || cpv_text.find('/') == std::string_view::npos || !portage::is_valid_category(cpv->category)) {
    return fail(ErrorKind::invalid, "\"{}\" is not a category/package-version", std::string(cpv_text));
  }
  const auto atom_text = fmt::format("={}-{}", cpv->cp(), cpv->full_version());
  const auto atom = portage::parse_atom(atom_text);
  if (!atom || atom->op != "=") {
    return fail(ErrorKind::invalid, "\"{}\" does not make an exact atom", std::string(cpv_text));
  }
  return atom->text;
}

bool contains_nocase(std::string_view haystack, std::string_view needle)
{
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

// Appends emerge's output to the build log. Best effort: a full disk must not kill the build's
// bookkeeping (the orchestrator also receives the log).
class LogFile {
public:
  explicit LogFile(const std::filesystem::path& path)
      : m_fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644))
  {}
  void write(std::string_view text)
  {
    while (m_fd && !text.empty()) {
      const ssize_t done = ::write(m_fd.get(), text.data(), text.size());
      if (done < 0 && errno == EINTR) {
        continue;
      }
      if (done <= 0) {
        return;
      }
      text.remove_prefix(static_cast<size_t>(done));
    }
  }

private:
  UniqueFd m_fd;
};

std::string failure_reason(std::string_view step, const subprocess::Outcome& outcome,
                           const std::filesystem::path& log_path)
{
  const auto tail = read_tail(log_path, k_reason_window);
  auto line = telling_line(tail);
  auto reason = fmt::format("{} {}", step, outcome.describe());
  if (!line.empty()) {
    reason += ": " + line;
  }
  if (tail.find("swarm: drone-root:") != std::string::npos) {
    // The helper failed before emerge ran: nothing about the package was tried.
    return "swarm: drone environment: the build root could not be set up: " + reason;
  }
  if (is_environment_problem(tail)) {
    reason = "drone environment problem (a dependency outside the plan is not installed): " + reason;
  }
  return reason;
}

Result<> move_file(const std::filesystem::path& from, const std::filesystem::path& to)
{
  std::error_code error;
  std::filesystem::rename(from, to, error);
  if (!error) {
    return {};
  }
  if (error != std::errc::cross_device_link) {
    return fail(ErrorKind::io, "cannot move {} to {}: {}", from.string(), to.string(), error.message());
  }
  // PKGDIR on another filesystem than the work dir (a bind mount): copy, then remove.
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, error);
  if (error) {
    return fail(ErrorKind::io, "cannot copy {} to {}: {}", from.string(), to.string(), error.message());
  }
  std::filesystem::remove(from, error);
  return {};
}

// Moves the artifact out of PKGDIR and drops its entry from PKGDIR/Packages, both under
// Portage's lock: an emerge of another slot never sees the index list a file that is gone.
Result<> move_out_of_pkgdir(const std::filesystem::path& pkgdir, const std::filesystem::path& from,
                            const std::filesystem::path& to)
{
  auto lock = portage::PkgdirLock::acquire(pkgdir);
  if (!lock) {
    return fail(lock.error());
  }
  if (auto moved = move_file(from, to); !moved) {
    return moved;
  }
  if (auto tidied = portage::tidy_pkgdir(pkgdir, portage::RemoveStray::no, *lock); !tidied) {
    LOG_WARN("cannot update {}/Packages after moving {} out: {}", pkgdir.string(), from.filename().string(),
             tidied.error().message);
  }
  return {};
}

} // namespace

// Both emerge command lines of a build, and why each option is there (emerge(1), make.conf(5)):
//
// Step 1, only when the lease lists build dependencies: install exactly those, as binaries from
// the staging binhost, and nothing else.
//   --oneshot        do not add them to the world file: they are build tools, not selections.
//   --usepkgonly     only binary packages; never fall back to compiling a dependency (the trap
//                    of --onlydeps --usepkg: Portage would silently compile what is missing).
//   --getbinpkgonly  take the binaries from the configured binhosts (our [swarm-staging]
//                    repo), preferring the remote ones over any local copy that differs.
//   --nodeps         install the listed packages only; the orchestrator already gave the full
//                    closure in dependency order, and a dependency's PDEPEND must not pull in
//                    the package we are about to build.
//   --noreplace      skip what is already installed: on the drone's own system (build root
//                    host) and in a kept root. A fresh isolated root drops it
//                    (apply_environment): the plan's binary replaces whatever version the
//                    build base has, so the package builds against what the plan says.
//   --color=n --nospinner  plain output for the log.
//   Environment: PORTAGE_CONFIGROOT (the lease's private root, whose binrepos.conf holds only
//   the staging repository), NOCOLOR.
//
// Step 2: build the package into a binary package without merging it.
//   --oneshot --buildpkgonly  build a binary package only; Portage refuses unless every build
//                    dependency is merged ("--buildpkgonly requires all dependencies to be
//                    merged"), which step 1 ensured for the plan's packages.
//   --nodeps         build this package only, never its dependencies.
//   BINPKG_FORMAT=gpkg  the format the orchestrator accepts.
//   PKGDIR           the spool's pkgdir, where we look for the result.
//   MAKEOPTS=-jN     the jobs of one slot.
//   NOCOLOR=true     no escape codes in the log.
//   FEATURES="binpkg-multi-instance -getbinpkg"  (added to make.conf's FEATURES): every build
//                    gets a new PF-BUILD_ID file instead of replacing the last one (so the new
//                    one is found by its BUILD_ID), and no binhost is consulted for the package
//                    itself: it must be compiled here.
//   PORTAGE_CONFIGROOT when not "/".
// The rest of the environment is inherited (PATH, ROOT, proxies …).
Result<EmergeCommands> emerge_commands(const BuildSettings& settings, const net::Lease& lease)
{
  auto target = exact_atom(lease.cpv);
  if (!target) {
    return fail(target.error());
  }
  std::vector<std::string> dep_atoms;
  for (const auto& dep : lease.deps) {
    auto atom = exact_atom(dep);
    if (!atom) {
      return fail(ErrorKind::invalid, "dependency of {}: {}", lease.cpv, atom.error().message);
    }
    // Never the package itself, never twice; the orchestrator's order is kept.
    if (*atom == *target || std::find(dep_atoms.begin(), dep_atoms.end(), *atom) != dep_atoms.end()) {
      continue;
    }
    dep_atoms.push_back(std::move(*atom));
  }

  std::map<std::string, std::string> common_env{{"NOCOLOR", "true"}};
  if (settings.portage_configroot != "/" && !settings.portage_configroot.empty()) {
    common_env["PORTAGE_CONFIGROOT"] = settings.portage_configroot.string();
  }

  EmergeCommands out;
  if (!dep_atoms.empty()) {
    subprocess::Spec install;
    install.argv = {settings.emerge, "--oneshot",   "--usepkgonly", "--getbinpkgonly",
                    "--nodeps",      "--noreplace", "--color=n",    "--nospinner"};
    install.argv.insert(install.argv.end(), dep_atoms.begin(), dep_atoms.end());
    install.env_mode = subprocess::EnvMode::inherit;
    install.env = common_env;
    out.install_deps = std::move(install);
  }

  out.build.argv = {settings.emerge, "--oneshot", "--buildpkgonly", "--nodeps", "--color=n", "--nospinner", *target};
  out.build.env_mode = subprocess::EnvMode::inherit;
  out.build.env = common_env;
  out.build.env["BINPKG_FORMAT"] = "gpkg";
  out.build.env["PKGDIR"] = settings.pkgdir.string();
  out.build.env["MAKEOPTS"] = fmt::format("-j{}", std::max(1, settings.jobs));
  out.build.env["FEATURES"] = "binpkg-multi-instance -getbinpkg";
  return out;
}

void apply_environment(EmergeCommands& commands, const BuildEnvironment& environment)
{
  const auto apply = [&](subprocess::Spec& spec) {
    if (!environment.configroot.empty()) {
      spec.env["PORTAGE_CONFIGROOT"] = environment.configroot.string();
    }
    spec.unset = environment.unset;
    if (!environment.wrapper.empty()) {
      auto argv = environment.wrapper;
      argv.insert(argv.end(), spec.argv.begin(), spec.argv.end());
      spec.argv = std::move(argv);
    }
  };
  if (commands.install_deps) {
    if (environment.deps == DepsInstall::reinstall) {
      auto& argv = commands.install_deps->argv;
      argv.erase(std::remove(argv.begin(), argv.end(), "--noreplace"), argv.end());
    }
    apply(*commands.install_deps);
  }
  apply(commands.build);
}

Result<std::string> staging_binrepos_text(std::string_view staging_url, std::string_view token)
{
  if (staging_url.empty()) {
    return fail(ErrorKind::invalid, "the orchestrator gave no staging URL");
  }
  auto with_token = net::url::with_userinfo(staging_url, "drone", token);
  if (!with_token) {
    return fail(with_token.error());
  }
  return fmt::format("[swarm-staging]\nsync-uri = {}\nverify-signature = false\npriority = 9999\n", *with_token);
}

std::optional<portage::PackageFile> find_new_artifact(const std::filesystem::path& pkgdir, const portage::Cpv& cpv,
                                                      const std::set<std::string>& before)
{
  std::optional<portage::PackageFile> best;
  for (auto& file : portage::package_files(pkgdir, cpv)) {
    if (before.contains(file.path.filename().string())) {
      continue;
    }
    if (!best || file.build_id > best->build_id) {
      best = std::move(file);
    }
  }
  return best;
}

std::string telling_line(std::string_view log_text)
{
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < log_text.size();) {
    auto end = log_text.find('\n', start);
    if (end == std::string_view::npos) {
      end = log_text.size();
    }
    auto line = strings::trim(log_text.substr(start, end - start));
    if (!line.empty()) {
      lines.push_back(line);
    }
    start = end + 1;
  }
  if (lines.empty()) {
    return {};
  }
  // The messages that name the cause outright, in order of preference; then Portage's error
  // markers; then anything saying "error"; then the last line.
  static constexpr std::string_view k_causes[] = {
    "--buildpkgonly requires all dependencies to be merged",
    "swarm: drone-root:",
    "there are no binary packages to satisfy",
    "missing build dependency",
    "fake-emerge: failing",
    "there are no ebuilds to satisfy",
  };
  const auto last_matching = [&](auto&& predicate) -> std::optional<std::string_view> {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      if (predicate(*it)) {
        return *it;
      }
    }
    return std::nullopt;
  };
  std::optional<std::string_view> chosen;
  for (auto cause : k_causes) {
    if ((chosen = last_matching([&](std::string_view line) { return contains_nocase(line, cause); }))) {
      break;
    }
  }
  if (!chosen) {
    chosen =
      last_matching([](std::string_view line) { return line.starts_with("* ERROR") || line.starts_with("!!!"); });
  }
  if (!chosen) {
    chosen = last_matching([](std::string_view line) { return contains_nocase(line, "error"); });
  }
  std::string out(chosen.value_or(lines.back()));
  if (out.size() > k_reason_line_limit) {
    out.resize(k_reason_line_limit);
    out += "…";
  }
  return out;
}

bool is_environment_problem(std::string_view log_text)
{
  return log_text.find("--buildpkgonly requires all dependencies to be merged") != std::string_view::npos;
}

Builder::Builder(subprocess::ProcessRunner& runner, BuildSettings settings)
    : m_runner(runner), m_settings(std::move(settings))
{}

BuildOutcome Builder::build(const net::Lease& lease, const std::string& staging_url,
                            const std::filesystem::path& work_dir, const std::filesystem::path& log_path,
                            std::stop_token stop)
{
  BuildOutcome failed;
  failed.status = BuildOutcome::Status::failure;
  ConfigRootInputs inputs;
  inputs.drone_configroot = m_settings.portage_configroot;
  if (!lease.deps.empty()) {
    auto staging = staging_binrepos_text(staging_url, m_settings.token);
    if (!staging) {
      failed.reason = fmt::format("cannot configure the staging binhost: {}", staging.error().message);
      return failed;
    }
    inputs.staging_binrepos = std::move(*staging);
  }
  std::string note;
  inputs.use_pin = use_pin_for(lease, m_settings.repo_dir, &note);
  BuildEnvironment environment;
  environment.configroot = work_dir / "configroot";
  if (auto written = write_config_root(environment.configroot, inputs); !written) {
    failed.reason = fmt::format("cannot write the build's configuration: {}", written.error().message);
    return failed;
  }
  return build(lease, environment, work_dir, log_path, std::move(stop));
}

BuildOutcome Builder::build(const net::Lease& lease, const BuildEnvironment& environment,
                            const std::filesystem::path& work_dir, const std::filesystem::path& log_path,
                            std::stop_token stop)
{
  const auto started = std::chrono::steady_clock::now();
  BuildOutcome outcome;
  const auto finish = [&](BuildOutcome::Status status, std::string reason) {
    outcome.status = status;
    outcome.reason = std::move(reason);
    outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return outcome;
  };

  auto commands = emerge_commands(m_settings, lease);
  if (!commands) {
    return finish(BuildOutcome::Status::failure, fmt::format("bad lease: {}", commands.error().message));
  }
  apply_environment(*commands, environment);
  const auto cpv = portage::parse_cpv(lease.cpv);
  if (auto made = fs::make_dirs(work_dir); !made) {
    return finish(BuildOutcome::Status::failure, made.error().message);
  }
  if (auto made = fs::make_dirs(m_settings.pkgdir); !made) {
    return finish(BuildOutcome::Status::failure, made.error().message);
  }
  LogFile log(log_path);

  const auto run_step = [&](subprocess::Spec& spec) -> Result<subprocess::Outcome> {
    log.write(fmt::format(">>> swarm: {}\n", strings::join(spec.argv, " ")));
    spec.stop = stop;
    spec.on_chunk = [&log](std::string_view chunk) { log.write(chunk); };
    return m_runner.run(spec);
  };

  if (commands->install_deps) {
    auto ran = run_step(*commands->install_deps);
    if (!ran) {
      return finish(BuildOutcome::Status::failure,
                    fmt::format("cannot run {}: {}", m_settings.emerge, ran.error().message));
    }
    if (ran->stopped) {
      return finish(BuildOutcome::Status::stopped, "stopped");
    }
    if (!ran->success()) {
      // The dependencies are the swarm's own validated builds in staging: failing to install
      // them (staging unreachable while the orchestrator restarts, a full disk, a broken local
      // Portage) is never the leased package's fault, so it must not count towards blocking it.
      return finish(
        BuildOutcome::Status::failure,
        "swarm: drone environment: " +
          failure_reason(fmt::format("installing {} build dependencies", lease.deps.size()), *ran, log_path));
    }
  }

  std::set<std::string> before;
  for (const auto& file : portage::package_files(m_settings.pkgdir, *cpv)) {
    before.insert(file.path.filename().string());
  }
  auto ran = run_step(commands->build);
  if (!ran) {
    return finish(BuildOutcome::Status::failure,
                  fmt::format("cannot run {}: {}", m_settings.emerge, ran.error().message));
  }
  if (ran->stopped) {
    return finish(BuildOutcome::Status::stopped, "stopped");
  }
  if (!ran->success()) {
    return finish(BuildOutcome::Status::failure, failure_reason("emerge --buildpkgonly", *ran, log_path));
  }

  const auto produced = find_new_artifact(m_settings.pkgdir, *cpv, before);
  if (!produced) {
    return finish(BuildOutcome::Status::failure,
                  fmt::format("emerge succeeded but wrote no new {}-BUILD_ID{} under {}", portage::pf_of(*cpv),
                              k_gpkg_suffix, (m_settings.pkgdir / cpv->category / cpv->package).string()));
  }
  // Validation and both hashes in one pass over the file.
  portage::GpkgOptions options;
  options.expect_cpv = fmt::format("{}/{}", cpv->category, portage::pf_of(*cpv));
  options.file_digests = {hash::Algo::xxh3_128};
  auto report = portage::validate_gpkg(produced->path, options);
  if (!report) {
    return finish(BuildOutcome::Status::failure,
                  fmt::format("cannot read the built package: {}", report.error().message));
  }
  if (!report->valid) {
    return finish(BuildOutcome::Status::failure, fmt::format("the built package {} is not valid: {}",
                                                             produced->path.filename().string(), report->reason));
  }
  const auto target = work_dir / produced->path.filename();
  if (auto moved = move_out_of_pkgdir(m_settings.pkgdir, produced->path, target); !moved) {
    return finish(BuildOutcome::Status::failure, moved.error().message);
  }
  outcome.artifact = target;
  outcome.sha256 = report->sha256;
  outcome.xxh3_128 =
    report->file_digests.contains(hash::Algo::xxh3_128) ? report->file_digests.at(hash::Algo::xxh3_128) : std::string();
  outcome.size = report->size;
  log.write(fmt::format(">>> swarm: built {} ({} bytes, sha256 {})\n", target.filename().string(), outcome.size,
                        outcome.sha256));
  return finish(BuildOutcome::Status::success, "");
}

} // namespace swarm::roles::drone
