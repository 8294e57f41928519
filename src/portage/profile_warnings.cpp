#include "portage/profile_warnings.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

const std::vector<std::string> k_flag_variables = {"CFLAGS", "CXXFLAGS", "FCFLAGS", "FFLAGS"};
const std::vector<std::string> k_native_flags = {"-march=native", "-mtune=native", "-mcpu=native"};

std::vector<std::string> native_flags_in(const std::string& value)
{
  std::vector<std::string> out;
  for (const auto& word : strings::split_any(value)) {
    for (const auto& flag : k_native_flags) {
      if (word == flag && std::find(out.begin(), out.end(), flag) == out.end()) {
        out.push_back(flag);
      }
    }
  }
  return out;
}

std::string warning(const std::string& where, const std::vector<std::string>& flags)
{
  return fmt::format("{} has {}: a drone would build for its own CPU, not this machine's. Name the CPU instead "
                     "(`gcc -march=native -Q --help=target | grep -E -- '-m(arch|tune|cpu)='` prints what native "
                     "means here, e.g. -march=znver3), or a level every client CPU has (e.g. -march=x86-64-v3)",
                     where, strings::join(flags, " "));
}

} // namespace

std::vector<std::string> native_flag_warnings(const BuildProfile& profile)
{
  std::vector<std::string> out;
  for (const auto& variable : k_flag_variables) {
    if (const auto it = profile.settings.find(variable); it != profile.settings.end()) {
      if (const auto flags = native_flags_in(it->second); !flags.empty()) {
        out.push_back(warning(variable, flags));
      }
    }
  }
  // env/ files of package.env: VAR="…" lines (as Portage sources them).
  for (const auto& [path, content] : profile.files) {
    if (!path.starts_with("env/")) {
      continue;
    }
    for (const auto& raw : strings::split(content, '\n')) {
      auto line = std::string(strings::trim(raw));
      if (line.starts_with("export ")) {
        line = std::string(strings::trim(line.substr(7)));
      }
      const auto equals = line.find('=');
      if (equals == std::string::npos || line.starts_with('#')) {
        continue;
      }
      const auto variable = line.substr(0, equals);
      if (std::find(k_flag_variables.begin(), k_flag_variables.end(), variable) == k_flag_variables.end()) {
        continue;
      }
      auto value = line.substr(equals + 1);
      std::erase(value, '"');
      std::erase(value, '\'');
      if (const auto flags = native_flags_in(value); !flags.empty()) {
        out.push_back(warning(fmt::format("{} in {}", variable, path), flags));
      }
    }
  }
  return out;
}

} // namespace swarm::portage
