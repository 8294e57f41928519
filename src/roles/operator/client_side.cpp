#include "roles/operator/client_side.hpp"

#include <fmt/format.h>

#include "core/strings.hpp"
#include "portage/atom.hpp"
#include "portage/version.hpp"

namespace swarm::roles::operator_cli {

std::vector<std::string> pretend_argv(const std::string& emerge)
{
  return {emerge, "--pretend", "--verbose", "--update", "--deep", "--newuse", "@world"};
}

std::vector<std::string> client_update_argv(const std::string& emerge)
{
  return {emerge, "--getbinpkg", "--update", "--deep", "--newuse", "@world"};
}

Result<std::string> binrepos_conf_text(std::string_view binhost_url, std::string_view from)
{
  const std::string url(strings::trim(binhost_url));
  if (!(url.starts_with("http://") || url.starts_with("https://")) ||
      url.find_first_of(" \t\r\n") != std::string::npos) {
    return fail(ErrorKind::invalid, "'{}' is not an http(s) binhost URL", url);
  }
  return fmt::format("# Written by `swarm client setup` from {}: the swarm's production binhost.\n"
                     "# Used by `emerge --getbinpkg` (`swarm client update`).\n"
                     "[swarm]\n"
                     "priority = 10\n"
                     "sync-uri = {}\n"
                     "# swarm publishes unsigned GPKGs; binrepos.conf verifies signatures by default.\n"
                     "verify-signature = false\n",
                     from, url);
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
