#pragma once
// Pure pieces of the operator verbs that touch Portage on this machine: the emerge command lines
// (`fresh`, `client update`), the binrepos.conf entry `client setup` writes, and package
// arguments.

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::roles::operator_cli {

// `emerge --pretend --verbose --update --deep --newuse @world`: the merge list `fresh` plans from.
std::vector<std::string> pretend_argv(const std::string& emerge);

// `emerge --getbinpkg --update --deep --newuse @world`: a client updating from the binhost.
std::vector<std::string> client_update_argv(const std::string& emerge);

// The binrepos.conf(5) entry for the swarm's production binhost: section [swarm], sync-uri,
// priority; signature verification off (swarm publishes unsigned GPKGs, and Portage's
// binrepos.conf default is to verify). The URL must be http(s).
Result<std::string> binrepos_conf_text(std::string_view binhost_url, std::string_view from);

// "=cat/pkg-1.0" or "cat/pkg-1.0" → "cat/pkg-1.0"; an invalid error otherwise.
Result<std::string> cpv_argument(std::string_view text);

} // namespace swarm::roles::operator_cli
