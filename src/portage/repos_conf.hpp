#pragma once
// repos.conf (portage(5)): an INI file of repository sections. Read from what
// `portageq repos_config EROOT` prints (every repository with its effective attributes, and
// [DEFAULT] with main-repo), and written for a private configuration root that must see the
// same repositories at this machine's locations.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::portage {

struct RepoSection {
  std::string name;
  std::map<std::string, std::string> attributes; // "location" → "/var/db/repos/gentoo", …
  bool operator==(const RepoSection&) const = default;
};

struct ReposConf {
  std::string main_repo; // [DEFAULT] main-repo ("" when not set)
  std::vector<RepoSection> repositories;
  bool operator==(const ReposConf&) const = default;
  // The location of `name`, "" when there is no such repository.
  std::filesystem::path location(std::string_view name) const;
};

// Parses INI text: `[name]` sections, `key = value` lines, `#`/`;` comments; keys of
// [DEFAULT] other than main-repo are ignored. A line that is neither is an invalid error.
Result<ReposConf> parse_repos_conf(std::string_view text);

// [DEFAULT] main-repo (when set) and one section per repository with its attributes, sorted.
std::string write_repos_conf(const ReposConf& conf);

} // namespace swarm::portage
