#include "roles/operator/client_side.hpp"

#include <fmt/format.h>

#include "core/strings.hpp"
#include "net/protocol.hpp"
#include "portage/atom.hpp"
#include "portage/version.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::operator_cli {

std::vector<std::string> pretend_argv(const std::string& emerge)
{
  return {emerge, "--pretend", "--verbose", "--update", "--deep", "--newuse", "@world"};
}

std::vector<std::string> client_pretend_argv(const std::string& emerge)
{
  return {emerge, "--pretend", "--verbose", "--update", "--deep", "--newuse", "--getbinpkgonly", "@world"};
}

std::vector<std::string> client_update_argv(const std::string& emerge)
{
  return {emerge, "--update", "--deep", "--newuse", "--getbinpkgonly", "@world"};
}

Result<std::string> binrepos_conf_text(std::string_view binhost_url, std::string_view from, std::string_view profile,
                                       bool verify_signatures)
{
  const std::string url(strings::trim(binhost_url));
  if (!(url.starts_with("http://") || url.starts_with("https://")) ||
      url.find_first_of(" \t\r\n") != std::string::npos) {
    return fail(ErrorKind::invalid, "'{}' is not an http(s) binhost URL", url);
  }
  if (!net::is_valid_profile_name(profile)) {
    return fail(ErrorKind::invalid, "'{}' is not a profile name", std::string(profile));
  }
  // Portage keeps what it downloads in /var/cache/binhost/SECTION: a section per profile keeps
  // one profile's binaries out of another's cache when a machine changes profile.
  const bool is_default = profile == "default";
  return fmt::format("# Written by `swarm client setup` from {}: the swarm's production binhost{}.\n"
                     "# Used by `emerge --getbinpkgonly` (`swarm client update`).\n"
                     "[swarm{}]\n"
                     "priority = 10\n"
                     "sync-uri = {}\n"
                     "{}",
                     from, is_default ? std::string() : fmt::format(" of profile {}", profile),
                     is_default ? std::string() : "-" + std::string(profile), url,
                     verify_signatures
                       ? "# The binhost signs its GPKGs; its key is in Portage's gnupg home (swarm client setup).\n"
                         "verify-signature = true\n"
                       : "# This binhost does not sign its GPKGs (binrepos.conf verifies by default).\n"
                         "verify-signature = false\n");
}

std::vector<std::vector<std::string>> trust_key_commands(const std::string& gnupg_home, const std::string& key_file)
{
  const std::vector<std::string> gpg{"gpg", "--homedir", gnupg_home, "--batch", "--no-tty"};
  auto with = [&](std::vector<std::string> tail) {
    auto argv = gpg;
    argv.insert(argv.end(), tail.begin(), tail.end());
    return argv;
  };
  return {with({"--import", key_file}), with({"--with-colons", "--import-options", "show-only", "--import", key_file}),
          with({"--import-ownertrust"}), with({"--check-trustdb"})};
}

std::string ultimate_ownertrust(std::string_view colons_output)
{
  // A primary key ("pub") is followed by its "fpr" record; subkeys' fingerprints follow "sub".
  std::string out;
  bool primary = false;
  for (const auto& line : strings::split(colons_output, '\n')) {
    if (line.starts_with("pub:")) {
      primary = true;
    } else if (line.starts_with("sub:")) {
      primary = false;
    } else if (line.starts_with("fpr:") && primary) {
      const auto fields = strings::split(line, ':');
      if (fields.size() > 9 && fields[9].size() == 40) {
        out.append(fields[9]);
        out.append(":6:\n");
      }
      primary = false;
    }
  }
  return out;
}

std::optional<std::string> binrepos_conf_profile(std::string_view text)
{
  for (const auto& raw : strings::split(text, '\n')) {
    const auto line = strings::trim(raw);
    if (line == "[swarm]") {
      return std::string("default");
    }
    if (line.starts_with("[swarm-") && line.ends_with("]")) {
      const auto name = std::string(line.substr(7, line.size() - 8));
      if (net::is_valid_profile_name(name)) {
        return name;
      }
    }
  }
  return std::nullopt;
}

std::string profile_binhost_url(const std::string& default_production_url, const std::string& profile)
{
  return orch::profile_url(default_production_url, profile);
}

Result<std::string> cpv_argument(std::string_view text)
{
  std::string cpv(strings::trim(text));
  if (cpv.starts_with('=')) {
    cpv.erase(0, 1);
  }
  const auto parsed = portage::parse_cpv(cpv);
  if (!parsed || cpv.find('/') == std::string::npos || !portage::is_valid_category(parsed->category)) {
    return fail(ErrorKind::invalid, "'{}' is not =CATEGORY/PACKAGE-VERSION", std::string(text));
  }
  return cpv;
}

} // namespace swarm::roles::operator_cli
