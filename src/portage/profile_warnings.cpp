#include "portage/profile_warnings.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

// LDFLAGS too: with LTO the code is generated at link time, with the link's -march.
const std::vector<std::string> k_flag_variables = {"CFLAGS", "CXXFLAGS", "FCFLAGS", "FFLAGS", "LDFLAGS", "RUSTFLAGS"};
const std::vector<std::string> k_native_flags = {"-march=native", "-mtune=native", "-mcpu=native"};

void add_native_flag(std::vector<std::string>& out, const std::string& flag)
{
  if (std::find(out.begin(), out.end(), flag) == out.end()) {
    out.push_back(flag);
  }
}

// The host-dependent flags of one value: gcc's `-m…=native`, and rustc's `-C target-cpu=native`
// (also written `-Ctarget-cpu=native` or `--codegen target-cpu=native`).
std::vector<std::string> native_flags_in(const std::string& value)
{
  std::vector<std::string> out;
  const auto words = strings::split_any(value);
  for (size_t i = 0; i < words.size(); ++i) {
    const auto& word = words[i];
    if (std::find(k_native_flags.begin(), k_native_flags.end(), word) != k_native_flags.end()) {
      add_native_flag(out, word);
    } else if (word == "-Ctarget-cpu=native" || word == "--codegen=target-cpu=native" ||
               ((word == "-C" || word == "--codegen") && i + 1 < words.size() && words[i + 1] == "target-cpu=native")) {
      add_native_flag(out, "-C target-cpu=native");
    }
  }
  return out;
}

std::string warning(const std::string& where, const std::vector<std::string>& flags)
{
  return fmt::format("{} has {}: a drone would build for its own CPU, not this machine's. Name the CPU instead "
                     "(`gcc -march=native -Q --help=target | grep -E -- '-m(arch|tune|cpu)='` prints what native "
                     "means here, e.g. -march=znver3), or a level every client CPU has (e.g. -march=x86-64-v3)",
                     where, strings::join(flags, " ")) +
         (std::find(flags.begin(), flags.end(), "-C target-cpu=native") != flags.end()
            ? std::string("; for rustc, -C target-cpu=NAME likewise")
            : std::string());
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
