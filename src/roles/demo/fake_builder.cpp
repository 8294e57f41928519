#include "roles/demo/fake_builder.hpp"
#include "roles/demo/fake_common.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "core/config.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "net/http_client.hpp"
#include "net/url.hpp"
#include "portage/atom.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "portage/pkgdir.hpp"
#include "portage/version.hpp"

namespace swarm::roles::demo {

namespace {

using fake::complain;
using fake::env_path;
using fake::is_installed;
using fake::say;
using fake::split_cpv;
using portage::EdgeKind;

// Without SWARM_FAKE_TIME_SCALE (tests); `swarm demo` sets its own (demo.hpp).
constexpr double k_fake_time_scale = 0.001;

// `--opt=y|n` style values of emerge's boolean options.
Result<bool> yes_no(std::string_view option, std::string_view value)
{
  if (value == "y" || value == "yes" || value == "True" || value == "true") {
    return true;
  }
  if (value == "n" || value == "no" || value == "False" || value == "false") {
    return false;
  }
  return fail(ErrorKind::invalid, "emerge: invalid value '{}' for {}", std::string(value), std::string(option));
}

std::optional<portage::Plan> load_plan(int& status)
{
  const auto path = config::env_get("SWARM_FAKE_PLAN");
  if (!path || path->empty()) {
    return std::nullopt;
  }
  auto text = fs::read_file(*path);
  if (!text) {
    complain("fake-emerge: cannot read SWARM_FAKE_PLAN: {}", text.error().message);
    status = exit_code::k_usage;
    return std::nullopt;
  }
  try {
    auto plan = portage::plan_from_json(nlohmann::json::parse(*text));
    if (!plan) {
      complain("fake-emerge: bad plan {}: {}", *path, plan.error().message);
      status = exit_code::k_usage;
      return std::nullopt;
    }
    return std::move(*plan);
  } catch (const nlohmann::json::exception& e) {
    complain("fake-emerge: plan {} is not JSON: {}", *path, e.what());
    status = exit_code::k_usage;
    return std::nullopt;
  }
}

// --- step 2: build a package ---

// `cpv` is listed in the comma-separated environment variable `name` ("*": every package).
bool listed_in(const char* name, std::string_view cpv)
{
  const auto value = config::env_get(name);
  if (!value) {
    return false;
  }
  for (const auto& item : strings::split(*value, ',')) {
    const auto trimmed = strings::trim(item);
    if (trimmed == "*" || trimmed == cpv) {
      return true;
    }
  }
  return false;
}

bool fail_requested(std::string_view cpv)
{
  return listed_in("SWARM_FAKE_FAIL", cpv);
}

double time_scale()
{
  const auto value = config::env_get("SWARM_FAKE_TIME_SCALE");
  if (!value || value->empty()) {
    return k_fake_time_scale;
  }
  const auto parsed = strings::parse_double(*value);
  return parsed && *parsed >= 0 ? *parsed : k_fake_time_scale;
}

// The `=CAT/PF` atoms of the package's edges of one kind, space-separated.
std::string edge_atoms(const portage::Plan& plan, std::string_view cpv, EdgeKind kind)
{
  std::vector<std::string> atoms;
  for (const auto& edge : plan.edges) {
    if (edge.package == cpv && edge.kind == kind) {
      atoms.push_back("=" + edge.needs);
    }
  }
  return strings::join(atoms, " ");
}

// The USE a package is built with, as a real emerge decides it: the plan's flags, then every line
// of PORTAGE_CONFIGROOT/etc/portage/package.use (a file, or a directory's files in name order)
// whose atom matches, in order. The fake's IUSE is every flag either names.
struct BuiltUse {
  std::set<std::string> use;
  std::set<std::string> iuse;
};

BuiltUse built_use(const std::string& cpv, const std::vector<std::string>& plan_use)
{
  BuiltUse out;
  out.use.insert(plan_use.begin(), plan_use.end());
  out.iuse = out.use;
  const auto candidate = portage::candidate_from_string(cpv);
  const auto base = env_path("PORTAGE_CONFIGROOT", "/") / "etc" / "portage" / "package.use";
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  if (std::filesystem::is_directory(base, ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
      if (entry.is_regular_file() && !entry.path().filename().string().starts_with(".")) {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::is_regular_file(base, ec)) {
    files.push_back(base);
  }
  for (const auto& file : files) {
    const auto text = fs::read_file(file, 1u << 20);
    if (!text) {
      continue;
    }
    for (const auto& line : strings::split(*text, '\n')) {
      const auto words = strings::split_any(line.substr(0, line.find('#')));
      if (words.size() < 2 || !candidate) {
        continue;
      }
      portage::AtomOptions options;
      options.allow_wildcard = true;
      auto atom = portage::parse_atom(words[0], options);
      if (!atom || !portage::atom_matches(*atom, *candidate)) {
        continue;
      }
      for (size_t i = 1; i < words.size(); ++i) {
        const bool off = words[i].starts_with("-");
        const auto flag = off ? words[i].substr(1) : words[i];
        out.iuse.insert(flag);
        if (off) {
          out.use.erase(flag);
        } else {
          out.use.insert(flag);
        }
      }
    }
  }
  return out;
}

int build_package(const std::string& cpv, size_t number, size_t total, const std::optional<portage::Plan>& plan)
{
  const auto root = env_path("ROOT", "/");
  const auto pkgdir = env_path("PKGDIR", "/var/cache/binpkgs");
  // The arguments were parsed as exact atoms: the cpv splits.
  const auto split = split_cpv(cpv);
  const auto pf = portage::pf_of(*split);

  portage::PlanPackage package;
  package.cpv = cpv;
  package.slot = "0";
  package.repo = "gentoo";
  if (plan) {
    const auto it = std::find_if(plan->packages.begin(), plan->packages.end(),
                                 [&](const portage::PlanPackage& p) { return p.cpv == cpv; });
    if (it == plan->packages.end()) {
      complain("emerge: there are no ebuilds to satisfy \"={}\".", cpv);
      return exit_code::k_failure;
    }
    package = *it;
    const auto deps = fake_build_dependencies(*plan, cpv);
    std::vector<std::string> missing;
    for (const auto& dep : deps.required) {
      if (!is_installed(root, dep)) {
        missing.push_back(dep);
      }
    }
    if (!missing.empty()) {
      for (const auto& dep : missing) {
        const auto dep_split = split_cpv(dep);
        complain("missing build dependency {}/{} (needed by {})", dep_split->category, portage::pf_of(*dep_split), cpv);
      }
      return exit_code::k_failure;
    }
  }
  const auto repo = package.repo.empty() ? std::string("gentoo") : package.repo;
  say(">>> Emerging ({} of {}) {}::{}", number, total, cpv, repo);
  const auto seconds = std::max(0.0, package.build_seconds * time_scale());
  if (seconds > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  }
  if (fail_requested(cpv)) {
    // A realistic log for the failure: SWARM_FAKE_FAIL_LOG/CAT/PF.log when there is one.
    if (const auto logs = config::env_get("SWARM_FAKE_FAIL_LOG"); logs && !logs->empty()) {
      if (auto text = fs::read_file(std::filesystem::path(*logs) / split->category / (pf + ".log"), 1u << 20)) {
        complain("{}", *text);
      }
    }
    complain("fake-emerge: failing {} as asked", cpv);
    return exit_code::k_failure;
  }

  // Claim the BUILD_ID with an exclusive create, as Portage does, so concurrent builds of one
  // PF into the same PKGDIR never take the same number.
  const auto dir = pkgdir / split->category / split->package;
  if (auto made = fs::make_dirs(dir); !made) {
    complain("!!! {}", made.error().message);
    return exit_code::k_failure;
  }
  uint64_t build_id = portage::next_build_id(pkgdir, *split);
  std::filesystem::path path;
  while (true) {
    path = portage::package_file_path(pkgdir, *split, build_id);
    UniqueFd claimed(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (claimed) {
      break;
    }
    if (errno != EEXIST) {
      complain("!!! cannot create {}: {}", path.string(), fs::errno_text(errno));
      return exit_code::k_failure;
    }
    ++build_id;
  }

  portage::GpkgContent content;
  content.dir_name = fmt::format("{}-{}", pf, build_id);
  const auto now =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  auto use = built_use(cpv, package.use);
  if (listed_in("SWARM_FAKE_MISBUILD", cpv)) {
    // A drone that builds something else than asked (tests of the fidelity gate): every flag the
    // plan asks for off, or one it does not ask for on.
    if (use.use.empty()) {
      use.use.insert("swarm-misbuilt");
      use.iuse.insert("swarm-misbuilt");
    } else {
      use.use.clear();
    }
  }
  content.metadata = {{"CATEGORY", split->category},
                      {"PF", pf},
                      {"SLOT", package.slot.empty() ? std::string("0") : package.slot},
                      {"USE", strings::join({use.use.begin(), use.use.end()}, " ")},
                      {"IUSE", strings::join({use.iuse.begin(), use.iuse.end()}, " ")},
                      {"BUILD_ID", std::to_string(build_id)},
                      {"BUILD_TIME", std::to_string(now.count())},
                      {"EAPI", "8"},
                      {"KEYWORDS", "amd64"},
                      {"DESCRIPTION", fmt::format("swarm fake build of {}", cpv)},
                      {"repository", repo}};
  if (plan) {
    for (auto kind : {EdgeKind::depend, EdgeKind::bdepend, EdgeKind::idepend, EdgeKind::rdepend, EdgeKind::pdepend}) {
      auto atoms = edge_atoms(*plan, cpv, kind);
      if (!atoms.empty()) {
        content.metadata[std::string(portage::edge_kind_name(kind))] = std::move(atoms);
      }
    }
  }
  content.image[fmt::format("usr/share/swarm-fake/{}", pf)] = portage::ImageFile{
    fmt::format("fake build of {} (BUILD_ID {})\n", cpv, build_id), 0644, portage::TarEntryType::regular, ""};
  if (auto written = portage::write_gpkg(path, content); !written) {
    std::error_code error;
    std::filesystem::remove(path, error);
    complain("!!! cannot write {}: {}", path.string(), written.error().message);
    return exit_code::k_failure;
  }
  say(">>> Completed ({} of {}) {}::{}", number, total, cpv, repo);
  return exit_code::k_ok;
}

// --- --pretend: the merge list of the plan ---

// `--pretend` of a set (`@world`): the plan's merge list. (`--pretend` with package atoms is not
// something the fake answers.)
bool pretend_requested(const std::vector<std::string>& args)
{
  if (std::none_of(args.begin(), args.end(), [](const std::string& arg) { return arg.starts_with('@'); })) {
    return false;
  }
  for (const auto& arg : args) {
    if (arg == "--") {
      break;
    }
    if (arg == "--pretend" ||
        (arg.size() > 1 && arg[0] == '-' && arg[1] != '-' && arg.find('p') != std::string::npos)) {
      return true;
    }
  }
  return false;
}

// `emerge --pretend --verbose --update --deep --newuse @world` as Portage prints it: one
// `[ebuild  N     ] cat/pkg-ver:SLOT::repo  USE="…" 0 KiB` line per plan package, in the plan's
// order, between Portage's header and footer. Without SWARM_FAKE_PLAN nothing needs merging.
int run_pretend(const std::vector<std::string>& args)
{
  static constexpr std::string_view k_long[] = {"pretend",   "verbose",     "update",     "deep",  "newuse",
                                                "nospinner", "changed-use", "with-bdeps", "color", "ask-enter-invalid"};
  for (const auto& arg : args) {
    if (arg.starts_with("--")) {
      const auto name =
        std::string_view(arg).substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
      if (std::find(std::begin(k_long), std::end(k_long), name) == std::end(k_long)) {
        complain("emerge: unrecognized option '{}'", arg);
        return exit_code::k_usage;
      }
    } else if (arg.starts_with('-') && arg.size() > 1) {
      if (arg.find_first_not_of("pvuDN", 1) != std::string::npos) {
        complain("emerge: unrecognized option '{}'", arg);
        return exit_code::k_usage;
      }
    }
  }
  int status = exit_code::k_ok;
  const auto plan = load_plan(status);
  if (status != exit_code::k_ok) {
    return status;
  }
  say("");
  say("These are the packages that would be merged, in order:");
  say("");
  say("Calculating dependencies... done!");
  const size_t count = plan ? plan->packages.size() : 0;
  if (plan) {
    for (const auto& package : plan->packages) {
      const auto slot = package.slot.empty() ? std::string("0") : package.slot;
      const auto repo = package.repo.empty() ? std::string("gentoo") : package.repo;
      std::string use;
      if (!package.use.empty()) {
        use = fmt::format(" USE=\"{}\"", strings::join(package.use, " "));
      }
      say("[ebuild  N     ] {}:{}::{} {} 0 KiB", package.cpv, slot, repo, use);
    }
  }
  say("");
  say("Total: {} packages ({} new), Size of downloads: 0 KiB", count, count);
  return exit_code::k_ok;
}

} // namespace

Result<FakeEmergeArgs> parse_fake_emerge_args(const std::vector<std::string>& args)
{
  FakeEmergeArgs out;
  // Boolean options: long name, short letter (0: none), field.
  struct Flag {
    std::string_view name;
    char letter;
    bool FakeEmergeArgs::*field;
  };
  static constexpr Flag k_flags[] = {
    {"oneshot", '1', &FakeEmergeArgs::oneshot},
    {"usepkg", 'k', &FakeEmergeArgs::usepkg},
    {"usepkgonly", 'K', &FakeEmergeArgs::usepkgonly},
    {"getbinpkg", 'g', &FakeEmergeArgs::getbinpkg},
    {"getbinpkgonly", 'G', &FakeEmergeArgs::getbinpkgonly},
    {"nodeps", 'O', &FakeEmergeArgs::nodeps},
    {"noreplace", 'n', &FakeEmergeArgs::noreplace},
    {"buildpkg", 'b', &FakeEmergeArgs::buildpkg},
    {"buildpkgonly", 'B', &FakeEmergeArgs::buildpkgonly},
    {"quiet", 'q', &FakeEmergeArgs::quiet},
    {"verbose", 'v', &FakeEmergeArgs::verbose},
  };
  // Options accepted and ignored (with their value forms).
  static constexpr std::string_view k_ignored_plain[] = {"nospinner", "ask-enter-invalid"};
  static constexpr std::string_view k_ignored_valued[] = {
    "color", "jobs", "load-average", "with-bdeps", "binpkg-respect-use", "binpkg-changed-deps"};
  // Options whose y|n value may also come as the next argument.
  const auto takes_next = [&](std::string_view name, size_t i) {
    return i + 1 < args.size() && (args[i + 1] == "y" || args[i + 1] == "n") &&
           std::find(std::begin(k_ignored_valued), std::end(k_ignored_valued), name) != std::end(k_ignored_valued);
  };

  bool only_atoms = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (!only_atoms && arg == "--") {
      only_atoms = true;
      continue;
    }
    if (!only_atoms && arg.starts_with("--")) {
      const auto body = std::string_view(arg).substr(2);
      const auto equals = body.find('=');
      const auto name = body.substr(0, equals);
      // (A plain flag pair rather than optional<string_view>: g++ 12 warns falsely on the latter.)
      const bool has_value = equals != std::string_view::npos;
      const auto value = has_value ? body.substr(equals + 1) : std::string_view();
      if (const auto* flag =
            std::find_if(std::begin(k_flags), std::end(k_flags), [&](const Flag& f) { return f.name == name; });
          flag != std::end(k_flags)) {
        bool on = true;
        if (has_value) {
          auto parsed = yes_no(arg, value);
          if (!parsed) {
            return fail(parsed.error());
          }
          on = *parsed;
        }
        out.*(flag->field) = on;
        continue;
      }
      if (std::find(std::begin(k_ignored_plain), std::end(k_ignored_plain), name) != std::end(k_ignored_plain)) {
        continue;
      }
      if (std::find(std::begin(k_ignored_valued), std::end(k_ignored_valued), name) != std::end(k_ignored_valued)) {
        if (!has_value && takes_next(name, i)) {
          ++i;
        }
        continue;
      }
      return fail(ErrorKind::invalid, "emerge: unrecognized option '{}'", arg);
    }
    if (!only_atoms && arg.size() > 1 && arg.starts_with('-')) {
      for (const char letter : std::string_view(arg).substr(1)) {
        const auto* flag =
          std::find_if(std::begin(k_flags), std::end(k_flags), [&](const Flag& f) { return f.letter == letter; });
        if (flag == std::end(k_flags)) {
          return fail(ErrorKind::invalid, "emerge: unrecognized option '-{}' in '{}'", letter, arg);
        }
        out.*(flag->field) = true;
      }
      continue;
    }
    auto atom = portage::parse_atom(arg);
    if (!atom) {
      return fail(ErrorKind::invalid, "emerge: '{}' is not a valid atom", arg);
    }
    if (atom->op != "=" || atom->blocker != portage::BlockerKind::none || atom->slot || atom->repo || atom->has_use) {
      return fail(ErrorKind::invalid, "fake-emerge: only exact atoms (=cat/pkg-ver) are supported, not '{}'", arg);
    }
    out.cpvs.push_back(atom->cpv);
  }
  return out;
}

FakeBuildDependencies fake_build_dependencies(const portage::Plan& plan, std::string_view cpv)
{
  std::map<std::string, std::vector<std::string>, std::less<>> build_edges;   // DEPEND/BDEPEND/IDEPEND
  std::map<std::string, std::vector<std::string>, std::less<>> runtime_edges; // RDEPEND
  for (const auto& edge : plan.edges) {
    if (edge.kind == EdgeKind::depend || edge.kind == EdgeKind::bdepend || edge.kind == EdgeKind::idepend) {
      build_edges[edge.package].push_back(edge.needs);
    } else if (edge.kind == EdgeKind::rdepend) {
      runtime_edges[edge.package].push_back(edge.needs);
    }
  }
  const auto targets = [](const auto& edges, std::string_view from) -> const std::vector<std::string>& {
    static const std::vector<std::string> k_none;
    const auto it = edges.find(from);
    return it == edges.end() ? k_none : it->second;
  };

  // needs(P): P's build edges, then the RDEPEND closure of their targets. The closure does not
  // go through P itself: P is not installed, so nothing is pulled in by its RDEPEND.
  const auto needs = [&](std::string_view package) {
    std::vector<std::string> order;
    std::set<std::string, std::less<>> seen{std::string(package)};
    std::deque<std::string> queue;
    for (const auto& target : targets(build_edges, package)) {
      if (seen.insert(target).second) {
        queue.push_back(target);
      }
    }
    while (!queue.empty()) {
      auto current = std::move(queue.front());
      queue.pop_front();
      for (const auto& target : targets(runtime_edges, current)) {
        if (seen.insert(target).second) {
          queue.push_back(target);
        }
      }
      order.push_back(std::move(current));
    }
    return order;
  };

  // Does `from` need `goal` to be built, directly or through what it needs? (The transitive
  // closure of needs(): a first build edge, then build or runtime edges.)
  const auto depends_on = [&](const std::string& from, std::string_view goal) {
    std::set<std::string, std::less<>> seen;
    std::deque<std::string> queue;
    for (const auto& target : targets(build_edges, from)) {
      if (seen.insert(target).second) {
        queue.push_back(target);
      }
    }
    while (!queue.empty()) {
      auto current = std::move(queue.front());
      queue.pop_front();
      if (current == goal) {
        return true;
      }
      for (const auto* edges : {&build_edges, &runtime_edges}) {
        for (const auto& target : targets(*edges, current)) {
          if (seen.insert(target).second) {
            queue.push_back(target);
          }
        }
      }
    }
    return false;
  };

  FakeBuildDependencies out;
  for (auto& dep : needs(cpv)) {
    if (depends_on(dep, cpv)) {
      out.cyclic.push_back(std::move(dep));
    } else {
      out.required.push_back(std::move(dep));
    }
  }
  return out;
}

std::filesystem::path fake_vdb_dir(const std::filesystem::path& root, std::string_view cpv)
{
  const auto split = split_cpv(cpv);
  if (!split) {
    return root / "var/db/pkg" / std::string(cpv);
  }
  return root / "var/db/pkg" / split->category / portage::pf_of(*split);
}

int run_fake_emerge(const std::vector<std::string>& args)
{
  if (pretend_requested(args)) {
    return run_pretend(args);
  }
  auto parsed = parse_fake_emerge_args(args);
  if (!parsed) {
    complain("{}", parsed.error().message);
    return exit_code::k_usage;
  }
  if (parsed->cpvs.empty()) {
    complain("emerge: no targets given");
    return exit_code::k_usage;
  }
  if (parsed->buildpkgonly) {
    int status = exit_code::k_ok;
    const auto plan = load_plan(status);
    if (status != exit_code::k_ok) {
      return status;
    }
    for (size_t i = 0; i < parsed->cpvs.size(); ++i) {
      if (const int result = build_package(parsed->cpvs[i], i + 1, parsed->cpvs.size(), plan); result != 0) {
        return result;
      }
    }
    return exit_code::k_ok;
  }
  if (parsed->usepkgonly || parsed->getbinpkgonly) {
    return fake::install_binaries(*parsed);
  }
  complain("fake-emerge: only --buildpkgonly builds and --usepkgonly/--getbinpkgonly installs are supported");
  return exit_code::k_usage;
}

} // namespace swarm::roles::demo
