// Route handlers of health, the read-only views and the two binhosts (docs/protocol.md,
// "Read-only views", "Binhosts").
#include "roles/orch/api_context.hpp"

#include <algorithm>
#include <chrono>

#include <fcntl.h>
#include <unistd.h>

#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "net/file_serving.hpp"
#include "roles/orch/coordinator.hpp"
#include "roles/orch/observability.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::orch::handlers {

namespace {

constexpr uint64_t k_log_read_limit = 4u << 20;
constexpr double k_view_wait_limit = 60; // the longest a view's long-poll waits

// The profile of a binhost route: its first capture, empty for the default profile's URLs.
std::string binhost_profile(const Call& call)
{
  const auto profile = call.match(1);
  return profile.empty() ? std::string(k_default_profile) : profile;
}

// A whole-number query parameter from `least` up: `fallback` when absent, 400 when it is not a
// number or is below `least`.
int64_t int_param(const Call& call, const char* name, int64_t fallback, int64_t least)
{
  if (!call.request.has_param(name)) {
    return fallback;
  }
  const auto text = call.param(name);
  const auto parsed = strings::parse_int(text);
  if (!parsed || *parsed < least) {
    throw Fatal{Error{ErrorKind::invalid, fmt::format("query parameter '{}' must be a whole number from {}, not \"{}\"",
                                                      name, least, text.substr(0, 64))}};
  }
  return *parsed;
}

// "limit": at least 1, at most `most` (larger values give `most`).
size_t limit_param(const Call& call, int64_t fallback, int64_t most)
{
  return static_cast<size_t>(std::min<int64_t>(int_param(call, "limit", fallback, 1), most));
}

} // namespace

void long_poll(Api& api, const Call& call, double most, const std::function<bool()>& ready)
{
  if (!call.request.has_param("wait")) {
    ready();
    return;
  }
  const auto text = call.param("wait");
  const auto wait = strings::parse_double(text);
  if (!wait || !(*wait >= 0 && *wait <= 86400)) {
    throw Fatal{
      Error{ErrorKind::invalid, fmt::format("wait must be a number of seconds, not \"{}\"", text.substr(0, 64))}};
  }
  auto seen = api.coordinator.news();
  if (ready() || *wait <= 0 || !api.enter_long_poll()) {
    return;
  }
  struct Leave {
    Api& api;
    ~Leave() { api.leave_long_poll(); }
  } leave{api};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::min(*wait, most));
  while (true) {
    const auto left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      return;
    }
    // News wakes the wait; a change without news (a lease expiring) is seen within a second.
    seen = api.coordinator.wait_news(seen, std::min(left, 1.0));
    if (ready()) {
      return;
    }
  }
}

void healthz(Api& api, const Call& call)
{
  auto body = api.info();
  body.erase("data_dir");
  body["status"] = "ok";
  body["role"] = "orch";
  call.reply(body);
}

void readyz(Api& api, const Call& call)
{
  if (auto ready = api.coordinator.ready(); !ready) {
    return call.reply(503, json{{"status", "not ready"}, {"role", "orch"}, {"reason", ready.error().message}});
  }
  call.reply(json{{"status", "ready"}, {"role", "orch"}});
}

void metrics(Api& api, const Call& call)
{
  if (!api.observability) {
    return call.fail({ErrorKind::not_found, "this orchestrator keeps no metrics"});
  }
  call.response.set_content(api.observability->render(), std::string(swarm::metrics::k_content_type));
}

void info(Api& api, const Call& call)
{
  call.reply(api.info());
}

void whoami(Api&, const Call& call)
{
  switch (call.caller.role) {
  case Caller::Role::admin:
    return call.reply(json{{"role", "admin"}, {"drone", nullptr}});
  case Caller::Role::reader:
    return call.reply(json{{"role", "reader"}, {"drone", nullptr}, {"token", call.caller.drone}});
  default:
    return call.reply(json{{"role", "drone"}, {"drone", call.caller.drone}});
  }
}

void status(Api& api, const Call& call)
{
  const auto profile = api.profile_param(call);
  auto body = api.coordinator.status(profile);
  body["disk_full"] = api.disk_full();
  body["orchestrator"] = api.info();
  body["staging_url"] = staging_url(api.options, profile);
  body["production_url"] = production_url(api.options, profile);
  call.reply(body);
}

void profiles(Api& api, const Call& call)
{
  auto list = api.coordinator.profiles_view();
  for (auto& entry : list) {
    entry["production_url"] = production_url(api.options, entry["name"].get<std::string>());
  }
  call.reply(json{{"profiles", list}});
}

void drones(Api& api, const Call& call)
{
  call.reply(json{{"drones", api.coordinator.drones_view()}});
}

void packages(Api& api, const Call& call)
{
  call.reply(json{{"packages", api.coordinator.packages_view(api.profile_param(call), call.param("state"))}});
}

void package(Api& api, const Call& call)
{
  call.reply(api.coordinator.package_view(api.profile_param(call), call.match(1)));
}

void events(Api& api, const Call& call)
{
  const auto since = int_param(call, "since", 0, 0);
  const auto limit = limit_param(call, 500, 5000);
  auto view = api.coordinator.events_view(since, limit);
  // With "wait": a long-poll until there is an event after `since`.
  long_poll(api, call, k_view_wait_limit, [&] {
    if (!view["events"].empty()) {
      return true;
    }
    view = api.coordinator.events_view(since, limit);
    return !view["events"].empty();
  });
  call.reply(view);
}

void builds(Api& api, const Call& call)
{
  call.reply(json{{"builds", api.coordinator.builds_view(api.profile_param(call), call.param("package"),
                                                         call.param("drone"), limit_param(call, 100, 10000))}});
}

// The latest build log of a package or a drone (or the build named by "build"), decompressed,
// from "offset" (or its last "tail" bytes). With "wait": a long-poll until bytes past the offset
// arrive or the build ends. "complete" says the build has ended and this reply reaches the end
// of its log; "result" and "reason" say how it ended.
void logs(Api& api, const Call& call)
{
  const auto profile = api.profile_param(call);
  const auto package = call.param("package");
  const auto drone = call.param("drone");
  const auto pinned = int_param(call, "build", 0, 1);
  auto offset = static_cast<uint64_t>(int_param(call, "offset", 0, 0));
  const bool tail = call.request.has_param("tail");
  const auto tail_bytes = static_cast<uint64_t>(int_param(call, "tail", 0, 0));
  Result<Coordinator::BuildRef> ref = fail(ErrorKind::not_found, "no build yet");
  Result<LogStore::Slice> slice = LogStore::Slice{};
  const auto look = [&] {
    ref = api.coordinator.latest_build(profile, package, drone, pinned);
    if (!ref) {
      return;
    }
    slice = api.logs.read(ref->build, 0, 0); // the size
    if (slice && tail) {
      offset = slice->size > tail_bytes ? slice->size - tail_bytes : 0;
    }
    if (slice && slice->size > offset) {
      slice = api.logs.read(ref->build, offset, k_log_read_limit);
    }
  };
  look();
  const bool waiting_for_a_build = !ref && ref.error().message == "no build yet";
  if (!ref && !waiting_for_a_build) {
    return call.fail(ref.error());
  }
  // A package not built yet has no log; with "wait" the reply waits for its first build.
  long_poll(api, call, k_view_wait_limit, [&] {
    if (ref && slice && (slice->size > offset || ref->ended > 0)) {
      return true;
    }
    look();
    return ref && slice && (slice->size > offset || ref->ended > 0);
  });
  if (!ref) {
    if (!call.request.has_param("wait")) {
      return call.fail(ref.error());
    }
    return call.reply(json{{"build", nullptr},
                           {"path", ""},
                           {"offset", offset},
                           {"next_offset", offset},
                           {"text", ""},
                           {"complete", false},
                           {"result", "waiting"}});
  }
  if (!slice) {
    return call.fail(slice.error());
  }
  const auto next = offset + slice->text.size();
  const bool ended = ref->ended > 0;
  call.reply(json{{"build", ref->build},
                  {"package", ref->package},
                  {"drone", ref->drone},
                  {"path", fmt::format("{}.log", ref->build)},
                  {"offset", offset},
                  {"next_offset", next},
                  {"size", slice->size},
                  {"text", std::move(slice->text)},
                  {"stored", slice->exists},
                  {"compressed", slice->compressed},
                  {"complete", ended && next >= slice->size},
                  {"result", ref->result},
                  {"reason", ref->reason}});
}

void plan_view(Api& api, const Call& call)
{
  call.reply(api.coordinator.plan_view(api.profile_param(call)));
}

void staging_index(Api& api, const Call& call)
{
  auto [text, timestamp] = api.coordinator.staging_index(binhost_profile(call));
  const auto modified = std::chrono::system_clock::time_point(std::chrono::seconds(timestamp));
  if (call.request.has_header("If-Modified-Since") && !call.request.has_header("If-None-Match")) {
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
  const auto relative = call.match(2);
  // Hidden entries (.incoming: uploads being received) are not part of the binhost.
  if (relative.starts_with(".") || relative.find("/.") != std::string::npos) {
    return call.fail({ErrorKind::not_found, "not found"});
  }
  net::serve_file(call.request, call.response, api.coordinator.staging_dir(binhost_profile(call)), relative);
}

void production_file(Api& api, const Call& call)
{
  net::serve_file(call.request, call.response, profile_path(api.options.data_dir, binhost_profile(call), "production"),
                  call.match(2));
}

} // namespace swarm::roles::orch::handlers
