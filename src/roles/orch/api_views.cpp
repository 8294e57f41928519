// Route handlers of health, the read-only views and the two binhosts (docs/protocol.md,
// "Read-only views", "Binhosts").
#include "roles/orch/api_context.hpp"

#include <algorithm>

#include <fcntl.h>
#include <unistd.h>

#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "net/file_serving.hpp"
#include "roles/orch/coordinator.hpp"

namespace swarm::roles::orch::handlers {

namespace {

constexpr uint64_t k_log_read_limit = 4u << 20;

size_t limit_param(const Call& call, int64_t fallback, int64_t most)
{
  const auto limit = strings::parse_int(call.param("limit")).value_or(fallback);
  return static_cast<size_t>(std::clamp<int64_t>(limit, 1, most));
}

} // namespace

void healthz(Api& api, const Call& call)
{
  auto body = api.info();
  body.erase("data_dir");
  body["status"] = "ok";
  body["role"] = "orch";
  call.reply(body);
}

void info(Api& api, const Call& call)
{
  call.reply(api.info());
}

void status(Api& api, const Call& call)
{
  auto body = api.coordinator.status();
  body["orchestrator"] = api.info();
  call.reply(body);
}

void drones(Api& api, const Call& call)
{
  call.reply(json{{"drones", api.coordinator.drones_view()}});
}

void packages(Api& api, const Call& call)
{
  call.reply(json{{"packages", api.coordinator.packages_view(call.param("state"))}});
}

void package(Api& api, const Call& call)
{
  call.reply(api.coordinator.package_view(call.match(1)));
}

void events(Api& api, const Call& call)
{
  const auto since = strings::parse_int(call.param("since")).value_or(0);
  call.reply(api.coordinator.events_view(since, limit_param(call, 500, 5000)));
}

void builds(Api& api, const Call& call)
{
  call.reply(json{{"builds", api.coordinator.builds_view(call.param("package"), call.param("drone"),
                                                         limit_param(call, 100, 10000))}});
}

void logs(Api& api, const Call& call)
{
  auto path = api.coordinator.latest_log(call.param("package"), call.param("drone"));
  if (!path) {
    return call.fail(path.error());
  }
  const auto offset = strings::parse_uint(call.param("offset")).value_or(0);
  std::string text;
  if (UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC)); fd) {
    char buffer[65536];
    auto position = static_cast<off_t>(offset);
    while (text.size() < k_log_read_limit) {
      const auto n = ::pread(fd.get(), buffer, sizeof buffer, position);
      if (n <= 0) {
        break;
      }
      text.append(buffer, static_cast<size_t>(n));
      position += n;
    }
  }
  call.reply(json{
    {"path", path->filename().string()}, {"offset", offset}, {"next_offset", offset + text.size()}, {"text", text}});
}

void staging_index(Api& api, const Call& call)
{
  auto [text, timestamp] = api.coordinator.staging_index();
  const auto modified = std::chrono::system_clock::time_point(std::chrono::seconds(timestamp));
  if (call.request.has_header("If-Modified-Since")) {
    if (auto since = net::parse_http_date(call.request.get_header_value("If-Modified-Since"));
        since && modified <= *since) {
      call.response.status = 304;
      return;
    }
  }
  call.response.set_header("Last-Modified", net::http_date(modified));
  call.response.set_content(text, "text/plain; charset=utf-8");
}

void staging_file(Api& api, const Call& call)
{
  const auto relative = call.match(1);
  // Hidden entries (.incoming: uploads being received) are not part of the binhost.
  if (relative.starts_with(".") || relative.find("/.") != std::string::npos) {
    return call.fail({ErrorKind::not_found, "not found"});
  }
  net::serve_file(call.request, call.response, api.options.staging_dir, relative);
}

void production_file(Api& api, const Call& call)
{
  net::serve_file(call.request, call.response, api.options.production_link, call.match(1));
}

} // namespace swarm::roles::orch::handlers
