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
// default profile) or [swarm-PROFILE], sync-uri, priority; signature verification off (swarm
// publishes unsigned GPKGs, and Portage's binrepos.conf default is to verify). The URL must be
// http(s).
Result<std::string> binrepos_conf_text(std::string_view binhost_url, std::string_view from,
                                       std::string_view profile = "default");

// The swarm profile a binrepos.conf written by binrepos_conf_text() is for: "default" for a
// [swarm] section, NAME for [swarm-NAME]; nullopt when it has neither.
std::optional<std::string> binrepos_conf_profile(std::string_view text);

// A profile's production URL from the default profile's, as the orchestrator lays them out
// (`/production` → `/p/PROFILE/production`), for an orchestrator asked directly.
std::string profile_binhost_url(const std::string& default_production_url, const std::string& profile);

// "=cat/pkg-1.0" or "cat/pkg-1.0" → "cat/pkg-1.0"; an invalid error otherwise.
Result<std::string> cpv_argument(std::string_view text);

} // namespace swarm::roles::operator_cli
