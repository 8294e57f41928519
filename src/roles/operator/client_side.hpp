#pragma once
// Pure pieces of the operator verbs that touch Portage on this machine: the emerge command lines
// (`fresh`, `client update`), the binrepos.conf entry `client setup` writes and the profile URL
// it points at, and package arguments.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::roles::operator_cli {

// `emerge --pretend --verbose --update --deep --newuse @world`: the merge list `fresh` plans from.
std::vector<std::string> pretend_argv(const std::string& emerge);

// `emerge --pretend --verbose --update --deep --newuse --getbinpkgonly @world`: what a client
// update would install, and what it would leave out (portage/binary_update.hpp reads it).
std::vector<std::string> client_pretend_argv(const std::string& emerge);

// `emerge --update --deep --newuse --getbinpkgonly @world`: a client updating from the binhost,
// from binary packages only (never compiling).
std::vector<std::string> client_update_argv(const std::string& emerge);

// The binrepos.conf(5) entry for a swarm profile's production binhost: section [swarm] (the
// default profile) or [swarm-PROFILE], sync-uri, priority, and verify-signature: true when the
// binhost signs its GPKGs (its key is then in Portage's gnupg home), false for an unsigned one
// (Portage's binrepos.conf default is to verify). The URL must be http(s).
Result<std::string> binrepos_conf_text(std::string_view binhost_url, std::string_view from,
                                       std::string_view profile = "default", bool verify_signatures = false);

// The gpg commands that make Portage trust a binhost's public key file `key_file` in its
// verification home `gnupg_home` (BINPKG_GPG_VERIFY_GPG_HOME): import, then ultimate owner trust
// for each fingerprint (Portage accepts only TRUST_ULTIMATE or TRUST_FULLY signatures), then the
// trust database update Portage's `--no-auto-check-trustdb` verification relies on.
std::vector<std::vector<std::string>> trust_key_commands(const std::string& gnupg_home, const std::string& key_file);
// The ownertrust lines ("FPR:6:") for the fingerprints in `gpg --with-colons` output.
std::string ultimate_ownertrust(std::string_view colons_output);

// The swarm profile a binrepos.conf written by binrepos_conf_text() is for: "default" for a
// [swarm] section, NAME for [swarm-NAME]; nullopt when it has neither.
std::optional<std::string> binrepos_conf_profile(std::string_view text);

// A profile's production URL from the default profile's, as the orchestrator lays them out
// (`/production` → `/p/PROFILE/production`), for an orchestrator asked directly.
std::string profile_binhost_url(const std::string& default_production_url, const std::string& profile);

// The number of certificates in a PEM file's text: one or more BEGIN/END CERTIFICATE blocks of
// base64 DER, nothing else but blank lines and comments outside them (no private key). An
// invalid error saying what is wrong otherwise.
Result<size_t> check_pem_certificates(std::string_view text);

// The trust-anchor file name `client setup --ca` installs a gateway's CA as:
// "swarm-HOST.crt" (HOST of `gateway_url`, characters other than A-Z a-z 0-9 . - _ as "_"), so
// that setting up again against the same gateway replaces the file.
std::string ca_anchor_name(std::string_view gateway_url);

// `program` when it holds a "/", else the first executable PATH (`path`) entry holding it; the
// sbin directories are searched after PATH (a root tool is often outside a user's PATH).
std::optional<std::string> find_program(std::string_view program, std::string_view path);

// "=cat/pkg-1.0" or "cat/pkg-1.0" → "cat/pkg-1.0"; an invalid error otherwise.
Result<std::string> cpv_argument(std::string_view text);

} // namespace swarm::roles::operator_cli
