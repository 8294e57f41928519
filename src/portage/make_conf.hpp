#pragma once
// make.conf as Portage's getconfig reads it (bash-like `NAME="value"` assignments, quotes that
// span lines, `#` comments, `source FILE`), and the make.conf that builds a binary exactly as a
// captured build profile says while keeping a machine's own local settings (paths, MAKEOPTS,
// sandboxing): what a drone writes for each build.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "portage/build_profile.hpp"

namespace swarm::portage {

// One statement of a make.conf, its text kept verbatim (with its newline).
struct MakeConfStatement {
  std::string name; // the variable an assignment sets ("" for comments, blank lines, `source`)
  std::string text;
};

// Splits make.conf text into statements; an unterminated quote is an invalid error.
Result<std::vector<MakeConfStatement>> parse_make_conf(std::string_view text);

// The text without the assignments of `names` (everything else verbatim).
Result<std::string> remove_assignments(std::string_view text, const std::set<std::string>& names);

// A value as a double-quoted make.conf string ("…" with \ " $ ` escaped).
std::string quote_make_conf_value(std::string_view value);

// The variables a build profile decides for a build: profile_variables() and each variable
// its USE_EXPAND names, except the profile-only ones (ARCH, ELIBC, KERNEL: make.conf may not
// set them, the make.profile does) — plus PORTAGE_BINHOST, which a drone never takes from
// its own configuration (build dependencies come from staging only).
std::set<std::string> profile_owned_variables(const BuildProfile& profile);

// `machine_make_conf` (the drone's own, already read) with every owned variable removed,
// followed by the profile's values. The captured values are effective sets, so the
// incremental ones (USE, USE_EXPAND, ACCEPT_KEYWORDS, ACCEPT_LICENSE) start with `-*` lest the
// profile's make.defaults add back what the client disabled; each USE_EXPAND variable is
// written as its plain value (Portage treats them as non-incremental in make.conf: a value
// replaces the earlier layers', "" clears them); a variable the profile lacks is written
// empty; FEATURES keeps the machine's own and sets each of binary_features() as the profile has it.
Result<std::string> profile_make_conf(std::string_view machine_make_conf, const BuildProfile& profile);

// The package.use line that pins `cpv` ("CAT/PF") to exactly `enabled` within `iuse` (IUSE
// as the md5-cache has it, +/- defaults allowed): "=CAT/PF a -b c\n". Flags outside IUSE are
// left out (package.use cannot set them). "" when `iuse` is empty.
std::string use_pin_line(std::string_view cpv, const std::vector<std::string>& iuse,
                         const std::vector<std::string>& enabled);

} // namespace swarm::portage
