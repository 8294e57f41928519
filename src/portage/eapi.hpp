#pragma once
// What each EAPI allows in dependency syntax (Portage eapi._get_eapi_attrs), for the features
// atoms and dependency strings depend on.

#include <optional>
#include <string_view>

namespace swarm::portage {

struct EapiAttributes {
  bool slot_deps = true;                     // ":SLOT" (EAPI >= 1)
  bool slot_operator = true;                 // ":=", ":*", ":SLOT/SUB" (EAPI >= 5)
  bool use_deps = true;                      // "[flag]" (EAPI >= 2)
  bool use_dep_defaults = true;              // "[flag(+)]" (EAPI >= 4)
  bool strong_blocks = true;                 // "!!atom" (EAPI >= 2)
  bool repo_deps = true;                     // "::repo" (no official EAPI)
  bool empty_groups_always_true = false;     // "|| ( )" satisfied (EAPI <= 6)
  bool src_uri_arrows = true;                // "uri -> name" (EAPI >= 2)
  bool selective_src_uri_restriction = true; // "fetch+uri" (EAPI >= 8)
};

// The attributes of `eapi`; no EAPI, or one Portage does not know, gets the permissive set
// Portage uses for "no EAPI" (every feature on, empty groups not true).
inline EapiAttributes eapi_attributes(std::optional<std::string_view> eapi)
{
  if (!eapi || eapi->size() != 1 || (*eapi)[0] < '0' || (*eapi)[0] > '9') {
    return EapiAttributes{};
  }
  const int level = (*eapi)[0] - '0';
  EapiAttributes attributes;
  attributes.slot_deps = level >= 1;
  attributes.slot_operator = level >= 5;
  attributes.use_deps = level >= 2;
  attributes.use_dep_defaults = level >= 4;
  attributes.strong_blocks = level >= 2;
  attributes.repo_deps = false;
  attributes.empty_groups_always_true = level <= 6;
  attributes.src_uri_arrows = level >= 2;
  attributes.selective_src_uri_restriction = level >= 8;
  return attributes;
}

} // namespace swarm::portage
