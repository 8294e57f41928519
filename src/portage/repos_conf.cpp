#include "portage/repos_conf.hpp"

#include <algorithm>

#include "core/strings.hpp"

namespace swarm::portage {

std::filesystem::path ReposConf::location(std::string_view name) const
{
  for (const auto& repository : repositories) {
    if (repository.name == name) {
      const auto it = repository.attributes.find("location");
      return it == repository.attributes.end() ? std::filesystem::path() : std::filesystem::path(it->second);
    }
  }
  return {};
}

Result<ReposConf> parse_repos_conf(std::string_view text)
{
  ReposConf conf;
  RepoSection* section = nullptr;
  bool in_default = false;
  size_t number = 0;
  for (const auto& raw : strings::split(text, '\n')) {
    ++number;
    const auto line = strings::trim(raw);
    if (line.empty() || line.starts_with("#") || line.starts_with(";")) {
      continue;
    }
    if (line.starts_with("[")) {
      if (!line.ends_with("]") || line.size() < 3) {
        return fail(ErrorKind::invalid, "repos.conf line {}: bad section header {:?}", number, std::string(line));
      }
      const auto name = std::string(strings::trim(line.substr(1, line.size() - 2)));
      in_default = name == "DEFAULT";
      section = nullptr;
      if (!in_default) {
        auto it = std::find_if(conf.repositories.begin(), conf.repositories.end(),
                               [&](const RepoSection& r) { return r.name == name; });
        if (it == conf.repositories.end()) {
          conf.repositories.push_back({name, {}});
          section = &conf.repositories.back();
        } else {
          section = &*it;
        }
      }
      continue;
    }
    const auto equals = line.find_first_of("=:");
    if (equals == std::string_view::npos || (!section && !in_default)) {
      return fail(ErrorKind::invalid, "repos.conf line {}: {:?} is not `key = value` in a section", number,
                  std::string(line));
    }
    const auto key = std::string(strings::trim(line.substr(0, equals)));
    const auto value = std::string(strings::trim(line.substr(equals + 1)));
    if (in_default) {
      if (key == "main-repo") {
        conf.main_repo = value;
      }
      continue;
    }
    section->attributes[key] = value;
  }
  std::sort(conf.repositories.begin(), conf.repositories.end(),
            [](const RepoSection& a, const RepoSection& b) { return a.name < b.name; });
  return conf;
}

std::string write_repos_conf(const ReposConf& conf)
{
  std::string out;
  if (!conf.main_repo.empty()) {
    out += fmt::format("[DEFAULT]\nmain-repo = {}\n\n", conf.main_repo);
  }
  auto sorted = conf.repositories;
  std::sort(sorted.begin(), sorted.end(), [](const RepoSection& a, const RepoSection& b) { return a.name < b.name; });
  for (const auto& repository : sorted) {
    out += fmt::format("[{}]\n", repository.name);
    for (const auto& [key, value] : repository.attributes) {
      out += fmt::format("{} = {}\n", key, value);
    }
    out += "\n";
  }
  return out;
}

} // namespace swarm::portage
