#pragma once
// The gateway's list of orchestrators (gateway.orchestrators): "URL [PRIORITY], URL [PRIORITY]".
// A higher priority wins; items without one get priority 0, and between equal priorities the
// earlier item ranks higher, so a plain list is an order of preference.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::roles::gateway {

struct OrchestratorSpec {
  std::string url;     // "http://host:port[/prefix]", no trailing '/', no credentials
  int priority = 0;    // higher wins
  size_t position = 0; // index in the configured list: breaks ties (lower wins)
};

// True when `a` is preferred over `b` (higher priority, then earlier position).
bool ranks_higher(const OrchestratorSpec& a, const OrchestratorSpec& b);

// Parses one item, "URL" or "URL PRIORITY" (whitespace between), at `position` in the list.
// invalid: not an http(s) URL, credentials/query/fragment in the URL, a priority that is not
// an integer, or more than two words.
Result<OrchestratorSpec> parse_orchestrator(std::string_view item, size_t position);

// Parses the items of the list (already split on commas, as Config::get_list does). invalid:
// an empty list, a bad item (the message names it), or the same URL twice.
Result<std::vector<OrchestratorSpec>> parse_orchestrators(const std::vector<std::string>& items);

} // namespace swarm::roles::gateway
