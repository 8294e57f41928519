#include "roles/operator/client_side.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <unistd.h>

#include <fmt/format.h>

#include "core/strings.hpp"
#include "net/protocol.hpp"
#include "net/url.hpp"
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

Result<size_t> check_pem_certificates(std::string_view text)
{
  constexpr std::string_view begin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view end = "-----END CERTIFICATE-----";
  const auto is_base64 = [](std::string_view line) {
    return std::all_of(line.begin(), line.end(),
                       [](unsigned char c) { return std::isalnum(c) || c == '+' || c == '/' || c == '='; });
  };
  size_t count = 0;
  bool inside = false;
  std::string body;
  size_t number = 0;
  for (const auto& raw : strings::split(text, '\n')) {
    ++number;
    const auto line = strings::trim(raw);
    if (!inside) {
      if (line == begin) {
        inside = true;
        body.clear();
      } else if (line.starts_with("-----BEGIN ")) {
        return fail(ErrorKind::invalid, "line {} starts a {}, not a certificate", number,
                    std::string(line.substr(11, line.find("-----", 11) - 11)));
      } else if (!line.empty() && !line.starts_with('#')) {
        return fail(ErrorKind::invalid, "line {} is outside any BEGIN/END CERTIFICATE block", number);
      }
      continue;
    }
    if (line == end) {
      // DER starts with a SEQUENCE (0x30): base64 "M…".
      if (body.empty() || body.size() % 4 != 0 || body.front() != 'M') {
        return fail(ErrorKind::invalid, "the certificate ending on line {} is not base64 DER", number);
      }
      ++count;
      inside = false;
    } else if (is_base64(line)) {
      body.append(line);
    } else {
      return fail(ErrorKind::invalid, "line {} of a certificate is not base64", number);
    }
  }
  if (inside) {
    return fail(ErrorKind::invalid, "a certificate has no END CERTIFICATE line");
  }
  if (count == 0) {
    return fail(ErrorKind::invalid, "no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  }
  return count;
}

std::string ca_anchor_name(std::string_view gateway_url)
{
  const auto parsed = net::url::parse(gateway_url);
  std::string host = parsed ? parsed->host : std::string();
  if (host.empty()) {
    host = "gateway";
  }
  for (auto& c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
      c = '_';
    }
  }
  return "swarm-" + host + ".crt";
}

std::optional<std::string> find_program(std::string_view program, std::string_view path)
{
  if (program.empty()) {
    return std::nullopt;
  }
  const auto executable = [](const std::string& candidate) {
    std::error_code ec;
    return std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string_view::npos) {
    return executable(std::string(program)) ? std::optional<std::string>(program) : std::nullopt;
  }
  auto directories = strings::split(path, ':');
  for (const auto* sbin : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) {
    directories.emplace_back(sbin);
  }
  for (const auto& directory : directories) {
    if (directory.empty()) {
      continue;
    }
    const auto candidate = (std::filesystem::path(directory) / program).string();
    if (executable(candidate)) {
      return candidate;
    }
  }
  return std::nullopt;
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
