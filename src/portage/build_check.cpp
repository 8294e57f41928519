#include "portage/build_check.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

std::string value_of(const std::map<std::string, std::string>& metadata, const std::string& key)
{
  auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

} // namespace

const std::vector<std::string>& checked_flag_variables()
{
  static const std::vector<std::string> k_variables = {"CFLAGS", "CXXFLAGS", "FCFLAGS", "LDFLAGS"};
  return k_variables;
}

bool is_target_flag(std::string_view flag)
{
  if (!flag.starts_with("-m") || flag.size() <= 2) {
    return false;
  }
  // -m32/-m64 and friends select the ABI, which CHOST and the profile fix; everything else
  // under -m is a machine option of the target.
  return !(flag == "-m32" || flag == "-m64" || flag == "-mx32");
}

std::vector<std::string> check_build(const std::map<std::string, std::string>& metadata,
                                     const BuildExpectation& expected)
{
  std::vector<std::string> out;

  // USE within IUSE: flags outside IUSE (implicit arch, elibc, kernel flags) do not change the
  // package. Without an IUSE in the metadata, nothing can be compared.
  std::set<std::string> iuse;
  for (auto flag : strings::split_any(value_of(metadata, "IUSE"))) {
    if (!flag.empty() && (flag.front() == '+' || flag.front() == '-')) {
      flag.erase(0, 1);
    }
    iuse.insert(flag);
  }
  std::set<std::string> built;
  for (const auto& flag : strings::split_any(value_of(metadata, "USE"))) {
    if (iuse.count(flag)) {
      built.insert(flag);
    }
  }
  std::set<std::string> asked;
  for (const auto& flag : expected.use) {
    if (iuse.count(flag)) {
      asked.insert(flag);
    }
  }
  for (const auto& flag : asked) {
    if (!built.count(flag)) {
      out.push_back(fmt::format("USE: {} was asked for but the package was built without it", flag));
    }
  }
  for (const auto& flag : built) {
    if (!asked.count(flag)) {
      out.push_back(fmt::format("USE: built with {}, which the plan leaves off", flag));
    }
  }

  const auto slot = value_of(metadata, "SLOT");
  const bool with_sub_slot = expected.slot.find('/') != std::string::npos;
  const auto built_slot = with_sub_slot ? slot : slot.substr(0, slot.find('/'));
  if (!expected.slot.empty() && built_slot != expected.slot) {
    out.push_back(fmt::format("SLOT: built as \"{}\", the plan says \"{}\"", slot, expected.slot));
  }
  const auto repository = value_of(metadata, "repository");
  if (!expected.repo.empty() && repository != expected.repo) {
    out.push_back(fmt::format("repository: built from \"{}\", the plan says \"{}\"", repository, expected.repo));
  }

  if (expected.profile) {
    if (const auto chost = setting_for(*expected.profile, expected.cpv, "CHOST")) {
      const auto built_chost = value_of(metadata, "CHOST");
      if (!built_chost.empty() && built_chost != *chost) {
        out.push_back(fmt::format("CHOST: built for \"{}\", the profile says \"{}\"", built_chost, *chost));
      }
    }
    for (const auto& variable : checked_flag_variables()) {
      const auto want = setting_for(*expected.profile, expected.cpv, variable).value_or("");
      const auto allowed = strings::split_any(want);
      for (const auto& flag : strings::split_any(value_of(metadata, variable))) {
        if (is_target_flag(flag) && std::find(allowed.begin(), allowed.end(), flag) == allowed.end()) {
          out.push_back(
            fmt::format("{}: built with {}, which the profile's \"{}\" does not have", variable, flag, want));
        }
      }
    }
  }
  return out;
}

} // namespace swarm::portage
