#include "roles/gateway/orchestrator_list.hpp"

#include <limits>

#include "core/strings.hpp"
#include "net/url.hpp"

namespace swarm::roles::gateway {

bool ranks_higher(const OrchestratorSpec& a, const OrchestratorSpec& b)
{
  if (a.priority != b.priority) {
    return a.priority > b.priority;
  }
  return a.position < b.position;
}

Result<OrchestratorSpec> parse_orchestrator(std::string_view item, size_t position)
{
  const auto words = strings::split_any(item, " \t");
  if (words.empty()) {
    return fail(ErrorKind::invalid, "empty orchestrator item #{}", position + 1);
  }
  if (words.size() > 2) {
    return fail(ErrorKind::invalid, "orchestrator item '{}' is not 'URL [PRIORITY]'", net::url::redact(item));
  }
  auto parsed = net::url::parse(words[0]);
  if (!parsed) {
    return fail(ErrorKind::invalid, "orchestrator item #{}: {}", position + 1, parsed.error().message);
  }
  // Credentials in the URL would end up in logs and in /status; orchestrator calls carry the
  // client's own Authorization header instead.
  if (!parsed->userinfo.empty()) {
    return fail(ErrorKind::invalid, "orchestrator URL {} must not hold credentials", net::url::redact(words[0]));
  }
  if (words[0].find_first_of("?#") != std::string::npos) {
    return fail(ErrorKind::invalid, "orchestrator URL {} must not have a query or fragment", words[0]);
  }
  OrchestratorSpec spec;
  spec.url = words[0];
  while (spec.url.ends_with('/')) {
    spec.url.pop_back();
  }
  spec.position = position;
  if (words.size() == 2) {
    const auto priority = strings::parse_int(words[1]);
    if (!priority || *priority < std::numeric_limits<int>::min() || *priority > std::numeric_limits<int>::max()) {
      return fail(ErrorKind::invalid, "orchestrator {}: priority '{}' is not an integer", spec.url, words[1]);
    }
    spec.priority = static_cast<int>(*priority);
  }
  return spec;
}

Result<std::vector<OrchestratorSpec>> parse_orchestrators(const std::vector<std::string>& items)
{
  if (items.empty()) {
    return fail(ErrorKind::invalid, "no orchestrators configured (gateway.orchestrators)");
  }
  std::vector<OrchestratorSpec> out;
  for (size_t i = 0; i < items.size(); ++i) {
    auto spec = parse_orchestrator(items[i], i);
    if (!spec) {
      return fail(spec.error());
    }
    for (const auto& earlier : out) {
      if (earlier.url == spec->url) {
        return fail(ErrorKind::invalid, "orchestrator {} is listed twice", spec->url);
      }
    }
    out.push_back(std::move(*spec));
  }
  return out;
}

} // namespace swarm::roles::gateway
