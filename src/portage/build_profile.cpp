#include "portage/build_profile.hpp"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "portage/atom.hpp"

namespace swarm::portage {

using nlohmann::json;

namespace {

constexpr size_t k_file_limit = 4u << 20;

// One package.env (or env/ file) line without its comment.
std::string without_comment(std::string_view line)
{
  const auto hash = line.find('#');
  return std::string(strings::trim(hash == std::string_view::npos ? line : line.substr(0, hash)));
}

// The files of one etc/portage entry, which may be a file or a directory of files (read in
// name order, hidden and backup files skipped, as Portage does).
void read_entry(const std::filesystem::path& etc, const std::string& entry, std::map<std::string, std::string>& files)
{
  const auto path = etc / entry;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    if (auto text = fs::read_file(path, k_file_limit)) {
      files[entry] = *text;
    }
    return;
  }
  if (!std::filesystem::is_directory(path, ec)) {
    return;
  }
  std::vector<std::filesystem::path> found;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.starts_with(".") || name.ends_with("~") || name.ends_with(".bak")) {
      if (it->is_directory()) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (it->is_regular_file()) {
      found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  for (const auto& file : found) {
    if (auto text = fs::read_file(file, k_file_limit)) {
      files[entry + "/" + std::filesystem::relative(file, path).generic_string()] = *text;
    }
  }
}

// The VAR="value" / VAR='value' / VAR=value assignments of an env/ file.
std::map<std::string, std::string> env_assignments(std::string_view text)
{
  std::map<std::string, std::string> out;
  for (const auto& raw : strings::split(text, '\n')) {
    auto line = without_comment(raw);
    if (line.starts_with("export ")) {
      line = std::string(strings::trim(line.substr(7)));
    }
    const auto equals = line.find('=');
    if (equals == std::string::npos || equals == 0) {
      continue;
    }
    const auto name = line.substr(0, equals);
    if (!std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) {
      continue;
    }
    auto value = line.substr(equals + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    out[name] = value;
  }
  return out;
}

Result<std::string> portageq(const CaptureOptions& options, subprocess::ProcessRunner& runner,
                             std::vector<std::string> args)
{
  subprocess::Spec spec;
  spec.argv = {options.portageq};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  // "/" is Portage's default; leaving the variable unset keeps a Gentoo Prefix's own default
  // (EPREFIX/etc/portage), which PORTAGE_CONFIGROOT=/ would override.
  if (options.config_root != "/") {
    spec.env["PORTAGE_CONFIGROOT"] = options.config_root.string();
  }
  spec.capture = subprocess::Capture::yes;
  spec.timeout = std::chrono::minutes(2);
  auto outcome = runner.run(spec);
  if (!outcome) {
    return fail(outcome.error());
  }
  // `portageq envvar` exits 1 when one of the variables is unset, and still prints every one
  // (the unset ones as '').
  const bool unset_variables = args.front() == "envvar" && outcome->exit_code == 1 && outcome->signal == 0 &&
                               !outcome->timed_out && !outcome->stopped;
  if (!outcome->success() && !unset_variables) {
    return fail(ErrorKind::io, "{} {} {}: {}", options.portageq, args.front(), outcome->describe(),
                strings::trim(outcome->output.substr(0, 500)));
  }
  return outcome->output;
}

} // namespace

const std::vector<std::string>& profile_variables()
{
  static const std::vector<std::string> k_variables = {"USE",      "USE_EXPAND",   "CFLAGS",           "CXXFLAGS",
                                                       "FCFLAGS",  "FFLAGS",       "LDFLAGS",          "RUSTFLAGS",
                                                       "CHOST",    "CBUILD",       "ACCEPT_KEYWORDS",  "ACCEPT_LICENSE",
                                                       "FEATURES", "INSTALL_MASK", "PKG_INSTALL_MASK", "ARCH",
                                                       "ELIBC",    "KERNEL"};
  return k_variables;
}

const std::vector<std::string>& binary_features()
{
  static const std::vector<std::string> k_features = {
    "binpkg-docompress", "binpkg-dostrip", "compressdebug", "installsources", "nodoc", "noinfo", "noman",
    "nostrip",           "splitdebug"};
  return k_features;
}

const std::vector<std::string>& profile_files()
{
  static const std::vector<std::string> k_files = {
    "package.use", "package.accept_keywords", "package.keywords", "package.env",
    "env",         "package.license",         "package.mask",     "package.unmask"};
  return k_files;
}

std::map<std::string, std::string> parse_envvar_output(std::string_view text)
{
  std::map<std::string, std::string> out;
  for (const auto& raw : strings::split(text, '\n')) {
    const auto line = std::string(strings::trim(raw));
    const auto equals = line.find('=');
    if (equals == std::string::npos || equals == 0) {
      continue;
    }
    const auto name = line.substr(0, equals);
    std::string value;
    // Shell quoting as Python's shlex.quote writes it: 'text' with ' written as '"'"'.
    for (size_t i = equals + 1; i < line.size();) {
      if (line[i] == '\'') {
        const auto end = line.find('\'', i + 1);
        value += line.substr(i + 1, (end == std::string::npos ? line.size() : end) - i - 1);
        i = end == std::string::npos ? line.size() : end + 1;
      } else if (line[i] == '"') {
        const auto end = line.find('"', i + 1);
        value += line.substr(i + 1, (end == std::string::npos ? line.size() : end) - i - 1);
        i = end == std::string::npos ? line.size() : end + 1;
      } else {
        value += line[i++];
      }
    }
    out[name] = value;
  }
  return out;
}

json build_profile_to_json(const BuildProfile& profile)
{
  json repositories = json::array();
  for (const auto& repository : profile.repositories) {
    repositories.push_back({{"name", repository.name}, {"timestamp", repository.timestamp}});
  }
  return json{{"settings", profile.settings},
              {"make_profile", {{"repository", profile.make_profile_repo}, {"path", profile.make_profile}}},
              {"files", profile.files},
              {"repositories", repositories}};
}

Result<BuildProfile> build_profile_from_json(const json& in)
{
  try {
    BuildProfile profile;
    if (!in.is_object()) {
      return fail(ErrorKind::invalid, "a build profile must be a JSON object");
    }
    profile.settings = in.value("settings", std::map<std::string, std::string>{});
    profile.files = in.value("files", std::map<std::string, std::string>{});
    if (const auto it = in.find("make_profile"); it != in.end() && it->is_object()) {
      profile.make_profile_repo = it->value("repository", std::string());
      profile.make_profile = it->value("path", std::string());
    }
    if (const auto it = in.find("repositories"); it != in.end()) {
      for (const auto& repository : *it) {
        profile.repositories.push_back(
          {repository.at("name").get<std::string>(), repository.value("timestamp", std::string())});
      }
    }
    std::sort(profile.repositories.begin(), profile.repositories.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& [path, content] : profile.files) {
      const auto top = path.substr(0, path.find('/'));
      if (std::find(profile_files().begin(), profile_files().end(), top) == profile_files().end() ||
          path.find("..") != std::string::npos || path.starts_with("/")) {
        return fail(ErrorKind::invalid, "a build profile may not hold the file '{}'", path);
      }
    }
    return profile;
  } catch (const json::exception& e) {
    return fail(ErrorKind::invalid, "not a build profile: {}", e.what());
  }
}

std::string build_profile_hash(const BuildProfile& profile)
{
  return hash::hex_digest(hash::Algo::sha256, build_profile_to_json(profile).dump());
}

std::vector<std::string> diff_build_profiles(const BuildProfile& a, const BuildProfile& b)
{
  std::vector<std::string> out;
  auto compare_maps = [&](const std::map<std::string, std::string>& left,
                          const std::map<std::string, std::string>& right, bool show_values) {
    std::set<std::string> keys;
    for (const auto& [key, value] : left) {
      keys.insert(key);
    }
    for (const auto& [key, value] : right) {
      keys.insert(key);
    }
    for (const auto& key : keys) {
      const auto l = left.find(key);
      const auto r = right.find(key);
      if (l == left.end()) {
        out.push_back(fmt::format("{}: only in B{}", key, show_values ? " (" + r->second + ")" : ""));
      } else if (r == right.end()) {
        out.push_back(fmt::format("{}: only in A{}", key, show_values ? " (" + l->second + ")" : ""));
      } else if (l->second != r->second) {
        out.push_back(show_values ? fmt::format("{}: \"{}\" → \"{}\"", key, l->second, r->second)
                                  : fmt::format("{}: differs", key));
      }
    }
  };
  compare_maps(a.settings, b.settings, true);
  if (a.make_profile_repo != b.make_profile_repo || a.make_profile != b.make_profile) {
    out.push_back(fmt::format("make.profile: {}:{} → {}:{}", a.make_profile_repo, a.make_profile, b.make_profile_repo,
                              b.make_profile));
  }
  compare_maps(a.files, b.files, false);
  std::map<std::string, std::string> repos_a;
  std::map<std::string, std::string> repos_b;
  for (const auto& repository : a.repositories) {
    repos_a["repository " + repository.name] = repository.timestamp;
  }
  for (const auto& repository : b.repositories) {
    repos_b["repository " + repository.name] = repository.timestamp;
  }
  compare_maps(repos_a, repos_b, true);
  return out;
}

bool build_settings_differ(const BuildProfile& a, const BuildProfile& b)
{
  static const std::vector<std::string> k_build_settings = {"CHOST",    "CBUILD",       "CFLAGS",          "CXXFLAGS",
                                                            "FCFLAGS",  "FFLAGS",       "LDFLAGS",         "RUSTFLAGS",
                                                            "FEATURES", "INSTALL_MASK", "PKG_INSTALL_MASK"};
  auto value = [](const BuildProfile& profile, const std::string& key) {
    auto it = profile.settings.find(key);
    return it == profile.settings.end() ? std::string() : it->second;
  };
  for (const auto& key : k_build_settings) {
    if (value(a, key) != value(b, key)) {
      return true;
    }
  }
  auto environments = [](const BuildProfile& profile) {
    std::map<std::string, std::string> out;
    for (const auto& [path, content] : profile.files) {
      if (path == "package.env" || path.starts_with("package.env/") || path.starts_with("env/")) {
        out[path] = content;
      }
    }
    return out;
  };
  return environments(a) != environments(b);
}

std::optional<std::string> setting_for(const BuildProfile& profile, std::string_view cpv, const std::string& variable)
{
  std::optional<std::string> value;
  if (auto it = profile.settings.find(variable); it != profile.settings.end()) {
    value = it->second;
  }
  const auto candidate = candidate_from_string(cpv);
  if (!candidate) {
    return value;
  }
  // package.env in file order (a directory's files in name order); later lines win.
  for (const auto& [path, content] : profile.files) {
    if (path != "package.env" && !path.starts_with("package.env/")) {
      continue;
    }
    for (const auto& raw : strings::split(content, '\n')) {
      const auto words = strings::split_any(without_comment(raw));
      if (words.size() < 2) {
        continue;
      }
      AtomOptions wildcard;
      wildcard.allow_wildcard = true;
      auto atom = parse_atom(words[0], wildcard);
      if (!atom || !atom_matches(*atom, *candidate)) {
        continue;
      }
      for (size_t i = 1; i < words.size(); ++i) {
        if (auto env = profile.files.find("env/" + words[i]); env != profile.files.end()) {
          const auto assignments = env_assignments(env->second);
          if (auto it = assignments.find(variable); it != assignments.end()) {
            value = it->second;
          }
        }
      }
    }
  }
  return value;
}

Result<BuildProfile> capture_build_profile(const CaptureOptions& options, subprocess::ProcessRunner& runner)
{
  BuildProfile profile;
  // Where Portage itself says the configuration and the installed root are: in a Gentoo Prefix
  // both lie below EPREFIX, and portageq refuses an <eroot> that does not end in it.
  auto first = portageq(options, runner, [] {
    std::vector<std::string> args{"envvar", "-v"};
    args.insert(args.end(), profile_variables().begin(), profile_variables().end());
    args.insert(args.end(), {"PORTAGE_CONFIGROOT", "EROOT"});
    return args;
  }());
  if (!first) {
    return fail(first.error());
  }
  auto settings = parse_envvar_output(*first);
  const std::filesystem::path config_root = settings["PORTAGE_CONFIGROOT"].empty()
                                              ? options.config_root
                                              : std::filesystem::path(settings["PORTAGE_CONFIGROOT"]);
  const std::string eroot = settings["EROOT"].empty() ? std::string("/") : settings["EROOT"];
  settings.erase("PORTAGE_CONFIGROOT");
  settings.erase("EROOT");
  const auto expand = strings::split_any(settings["USE_EXPAND"]);
  if (!expand.empty()) {
    std::vector<std::string> args{"envvar", "-v"};
    args.insert(args.end(), expand.begin(), expand.end());
    auto second = portageq(options, runner, args);
    if (!second) {
      return fail(second.error());
    }
    settings.merge(parse_envvar_output(*second));
  }
  // Of FEATURES, only what changes the installed files.
  std::vector<std::string> features;
  for (const auto& feature : strings::split_any(settings["FEATURES"])) {
    if (std::find(binary_features().begin(), binary_features().end(), feature) != binary_features().end()) {
      features.push_back(feature);
    }
  }
  std::sort(features.begin(), features.end());
  settings["FEATURES"] = strings::join(features, " ");
  for (auto it = settings.begin(); it != settings.end();) {
    it = it->second.empty() ? settings.erase(it) : std::next(it);
  }
  profile.settings = std::move(settings);

  // Repositories: names, locations (to place make.profile) and tree timestamps.
  auto names = portageq(options, runner, {"get_repos", eroot});
  if (!names) {
    return fail(names.error());
  }
  std::vector<std::pair<std::string, std::filesystem::path>> locations;
  for (const auto& name : strings::split_any(*names)) {
    auto location = portageq(options, runner, {"get_repo_path", eroot, name});
    if (!location) {
      return fail(location.error());
    }
    const std::filesystem::path path(std::string(strings::trim(*location)));
    locations.emplace_back(name, path);
    profile.repositories.push_back({name, fs::read_first_line(path / "metadata" / "timestamp.chk")});
  }
  std::sort(profile.repositories.begin(), profile.repositories.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });

  const auto etc = config_root / "etc" / "portage";
  std::error_code ec;
  const auto target = std::filesystem::canonical(etc / "make.profile", ec);
  if (ec) {
    return fail(ErrorKind::not_found, "{} has no make.profile", etc.string());
  }
  for (const auto& [name, location] : locations) {
    const auto profiles = std::filesystem::canonical(location / "profiles", ec);
    if (ec) {
      continue;
    }
    const auto relative = std::filesystem::relative(target, profiles, ec);
    if (!ec && !relative.empty() && !relative.generic_string().starts_with("..")) {
      profile.make_profile_repo = name;
      profile.make_profile = relative.generic_string();
      break;
    }
  }
  if (profile.make_profile.empty()) {
    return fail(ErrorKind::invalid, "make.profile ({}) is in no repository's profiles/", target.string());
  }
  for (const auto& entry : profile_files()) {
    read_entry(etc, entry, profile.files);
  }
  return profile;
}

} // namespace swarm::portage
