#include "roles/operator/build_profiles.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/strings.hpp"
#include "portage/profile_warnings.hpp"

namespace swarm::roles::operator_cli {

using nlohmann::json;

std::string config_root_argument(const std::string& text)
{
  if (text.empty()) {
    return "/";
  }
  auto path = std::filesystem::absolute(text).lexically_normal().string();
  while (path.size() > 1 && path.ends_with('/')) {
    path.pop_back();
  }
  return path;
}

Result<portage::BuildProfile> capture_local_profile(const config::Config& config, const std::string& config_root,
                                                    subprocess::ProcessRunner& runner)
{
  portage::CaptureOptions options;
  options.config_root = config_root_argument(config_root);
  options.portageq = config.get("client.portageq");
  auto profile = portage::capture_build_profile(options, runner);
  if (!profile) {
    return fail(profile.error().kind, "cannot capture the build profile of {} (client.portageq {}): {}",
                options.config_root.string(), options.portageq, profile.error().message);
  }
  return profile;
}

std::optional<std::string> build_profile_root(bool runs_emerge_here, const std::optional<std::string>& config_root)
{
  if (config_root) {
    return config_root->empty() ? std::string("/") : *config_root;
  }
  if (runs_emerge_here) {
    return std::string("/");
  }
  return std::nullopt;
}

Result<PlanBuildProfile> plan_build_profile(const config::Config& config, bool runs_emerge_here,
                                            const std::optional<std::string>& config_root,
                                            subprocess::ProcessRunner& runner)
{
  PlanBuildProfile out;
  const auto root = build_profile_root(runs_emerge_here, config_root);
  if (!root) {
    return out;
  }
  auto captured = capture_local_profile(config, *root, runner);
  if (!captured) {
    return fail(captured.error());
  }
  out.config_root = *root;
  out.warnings = portage::native_flag_warnings(*captured);
  out.profile = std::move(*captured);
  return out;
}

Result<SwarmProfile> fetch_swarm_profile(const net::HttpClient& client, const std::string& name)
{
  auto listed = client.get_json("/api/v1/profiles");
  if (!listed) {
    return fail(listed.error());
  }
  const auto profiles = listed->is_object() ? listed->value("profiles", json::array()) : json::array();
  std::vector<std::string> names;
  for (const auto& entry : profiles) {
    if (!entry.is_object()) {
      continue;
    }
    const auto entry_name = entry.value("name", std::string());
    names.push_back(entry_name);
    if (entry_name != name) {
      continue;
    }
    SwarmProfile out;
    out.name = entry_name;
    out.hash = entry.value("build_profile", std::string());
    out.source = entry.value("source", std::string());
    out.tree_timestamp = entry.value("tree_timestamp", std::string());
    out.portage_profile = entry.value("portage_profile", std::string());
    out.submitted_at = entry.value("submitted_at", 0.0);
    out.staging_url = entry.value("staging_url", std::string());
    out.production_url = entry.value("production_url", std::string());
    if (out.hash.empty()) {
      return out;
    }
    auto stored = client.get_json("/api/v1/profiles/" + out.hash);
    if (!stored) {
      return fail(stored.error());
    }
    auto parsed = portage::build_profile_from_json(*stored);
    if (!parsed) {
      return fail(ErrorKind::internal, "the build profile {} of profile {} is unreadable: {}", out.hash, name,
                  parsed.error().message);
    }
    if (portage::build_profile_hash(*parsed) != out.hash) {
      return fail(ErrorKind::internal, "the build profile stored as {} has another hash ({})", out.hash,
                  portage::build_profile_hash(*parsed));
    }
    out.build_profile = std::move(*parsed);
    return out;
  }
  return fail(ErrorKind::not_found, "the orchestrator has no profile \"{}\" ({}); `swarm fresh --profile {}` makes it",
              name, names.empty() ? std::string("it has none yet") : "it has: " + strings::join(names, ", "), name);
}

namespace {

std::vector<std::string> content_lines(const std::map<std::string, std::string>& files, const std::string& path)
{
  std::vector<std::string> out;
  if (const auto it = files.find(path); it != files.end()) {
    for (const auto& line : strings::split(it->second, '\n')) {
      if (const auto trimmed = strings::trim(line); !trimmed.empty()) {
        out.emplace_back(trimmed);
      }
    }
  }
  return out;
}

std::vector<std::string> lines_missing_from(const std::vector<std::string>& lines,
                                            const std::vector<std::string>& other)
{
  std::vector<std::string> out;
  for (const auto& line : lines) {
    if (std::find(other.begin(), other.end(), line) == other.end()) {
      out.push_back(line);
    }
  }
  return out;
}

// Settings whose words are a set: their order means nothing to Portage.
bool is_word_set(const portage::BuildProfile& a, const portage::BuildProfile& b, const std::string& key)
{
  if (key == "USE" || key == "FEATURES" || key == "ACCEPT_KEYWORDS") {
    return true;
  }
  for (const auto* profile : {&a, &b}) {
    if (const auto it = profile->settings.find("USE_EXPAND"); it != profile->settings.end()) {
      const auto expand = strings::split_any(it->second);
      if (std::find(expand.begin(), expand.end(), key) != expand.end()) {
        return true;
      }
    }
  }
  return false;
}

std::vector<std::string> sorted_words(const std::string& value)
{
  auto words = strings::split_any(value);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  return words;
}

constexpr size_t k_inline_value = 60; // longer values show the words that differ

void compare_settings(const portage::BuildProfile& a, const portage::BuildProfile& b,
                      std::vector<ProfileDifference>& out)
{
  std::set<std::string> keys;
  for (const auto* profile : {&a, &b}) {
    for (const auto& [key, value] : profile->settings) {
      keys.insert(key);
    }
  }
  for (const auto& key : keys) {
    const auto l = a.settings.find(key);
    const auto r = b.settings.find(key);
    const auto left = l == a.settings.end() ? std::string() : l->second;
    const auto right = r == b.settings.end() ? std::string() : r->second;
    const bool set = is_word_set(a, b, key);
    if (set ? sorted_words(left) == sorted_words(right) : left == right) {
      continue;
    }
    ProfileDifference difference;
    if (l == a.settings.end() || r == b.settings.end()) {
      difference.what = fmt::format("{}: only in {} (\"{}\")", key, l == a.settings.end() ? "B" : "A",
                                    l == a.settings.end() ? right : left);
    } else if (!set && left.size() <= k_inline_value && right.size() <= k_inline_value) {
      difference.what = fmt::format("{}: \"{}\" → \"{}\"", key, left, right);
    } else {
      difference.what = fmt::format("{}: differs", key);
      const auto words_a = set ? sorted_words(left) : strings::split_any(left);
      const auto words_b = set ? sorted_words(right) : strings::split_any(right);
      difference.only_in_a = lines_missing_from(words_a, words_b);
      difference.only_in_b = lines_missing_from(words_b, words_a);
      if (!set && difference.only_in_a.empty() && difference.only_in_b.empty()) {
        difference.what = fmt::format("{}: the same words in another order: \"{}\" → \"{}\"", key, left, right);
      }
    }
    out.push_back(std::move(difference));
  }
}

} // namespace

std::vector<ProfileDifference> compare_build_profiles(const portage::BuildProfile& a, const portage::BuildProfile& b)
{
  std::vector<ProfileDifference> out;
  compare_settings(a, b, out);
  if (a.make_profile_repo != b.make_profile_repo || a.make_profile != b.make_profile) {
    out.push_back({fmt::format("make.profile: {}:{} → {}:{}", a.make_profile_repo, a.make_profile, b.make_profile_repo,
                               b.make_profile),
                   {},
                   {},
                   true});
  }
  std::set<std::string> paths;
  for (const auto* profile : {&a, &b}) {
    for (const auto& [path, content] : profile->files) {
      paths.insert(path);
    }
  }
  for (const auto& path : paths) {
    const auto l = a.files.find(path);
    const auto r = b.files.find(path);
    if (l != a.files.end() && r != b.files.end() && l->second == r->second) {
      continue;
    }
    ProfileDifference difference;
    difference.what = l == a.files.end()   ? path + ": only in B"
                      : r == b.files.end() ? path + ": only in A"
                                           : path + ": differs";
    const auto in_a = content_lines(a.files, path);
    const auto in_b = content_lines(b.files, path);
    difference.only_in_a = lines_missing_from(in_a, in_b);
    difference.only_in_b = lines_missing_from(in_b, in_a);
    out.push_back(std::move(difference));
  }
  std::map<std::string, std::string> repos_b;
  for (const auto& repository : b.repositories) {
    repos_b[repository.name] = repository.timestamp;
  }
  for (const auto& repository : a.repositories) {
    const auto it = repos_b.find(repository.name);
    if (it == repos_b.end()) {
      out.push_back({fmt::format("repository {}: only in A", repository.name), {}, {}, true});
    } else if (it->second != repository.timestamp) {
      out.push_back(
        {fmt::format("repository {}: tree \"{}\" → \"{}\"", repository.name, repository.timestamp, it->second),
         {},
         {},
         false});
    }
    if (it != repos_b.end()) {
      repos_b.erase(it);
    }
  }
  for (const auto& [name, timestamp] : repos_b) {
    out.push_back({fmt::format("repository {}: only in B", name), {}, {}, true});
  }
  return out;
}

bool differences_change_binaries(const std::vector<ProfileDifference>& differences)
{
  return std::any_of(differences.begin(), differences.end(),
                     [](const ProfileDifference& difference) { return difference.changes_binaries; });
}

std::string describe_differences(const std::vector<ProfileDifference>& differences)
{
  std::string out;
  for (const auto& difference : differences) {
    out += fmt::format("  {}{}\n", difference.what,
                       difference.changes_binaries ? "" : "  (the tree only: changes no binary by itself)");
    for (const auto& line : difference.only_in_a) {
      out += fmt::format("      - {}\n", line);
    }
    for (const auto& line : difference.only_in_b) {
      out += fmt::format("      + {}\n", line);
    }
  }
  return out;
}

json differences_to_json(const std::vector<ProfileDifference>& differences)
{
  json out = json::array();
  for (const auto& difference : differences) {
    out.push_back({{"what", difference.what},
                   {"only_in_a", difference.only_in_a},
                   {"only_in_b", difference.only_in_b},
                   {"changes_binaries", difference.changes_binaries}});
  }
  return out;
}

std::string describe_build_profile(const portage::BuildProfile& profile)
{
  std::string out;
  out += fmt::format("make.profile  {}{}\n", profile.make_profile_repo.empty() ? "" : profile.make_profile_repo + ":",
                     profile.make_profile.empty() ? "-" : profile.make_profile);
  out += "settings\n";
  size_t width = 0;
  for (const auto& [name, value] : profile.settings) {
    width = std::max(width, name.size());
  }
  for (const auto& [name, value] : profile.settings) {
    out += fmt::format("  {:<{}}  {}\n", name, width, value);
  }
  out += "files\n";
  if (profile.files.empty()) {
    out += "  (none)\n";
  }
  for (const auto& [path, content] : profile.files) {
    out += fmt::format("  {}\n", path);
    for (const auto& line : strings::split(content, '\n')) {
      if (!strings::trim(line).empty()) {
        out += fmt::format("    {}\n", line);
      }
    }
  }
  out += "repositories\n";
  for (const auto& repository : profile.repositories) {
    out += fmt::format("  {:<20} {}\n", repository.name,
                       repository.timestamp.empty() ? "(no metadata/timestamp.chk)" : repository.timestamp);
  }
  return out;
}

} // namespace swarm::roles::operator_cli
