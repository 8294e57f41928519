// The orchestrator's one route table, and what every route shares: who is calling, checked
// from the headers before any body is read, and the typed reading of bodies.
#include "roles/orch/api.hpp"
#include "roles/orch/api_context.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/secure.hpp"
#include "core/strings.hpp"
#include "net/auth_limiter.hpp"
#include "net/protocol_version.hpp"
#include "roles/orch/coordinator.hpp"
#include "roles/orch/observability.hpp"
#include "roles/orch/profiles.hpp"

namespace swarm::roles::orch {

namespace {

constexpr uint64_t k_json_limit = 16u << 20;
constexpr uint64_t k_log_chunk_limit = 1u << 20;
const std::string k_profile = "([A-Za-z0-9_][A-Za-z0-9._-]{0,63})"; // a capture: the profile name

// Every route of the orchestrator: method, path, who may call it, body limit, handler.
std::vector<Route> route_table(const ApiOptions& options)
{
  using enum Method;
  using enum Access;
  namespace h = handlers;
  const auto staging = "/staging/" + options.orch_id;
  return {
    // health and identity
    {get, "/healthz", anyone, 0, h::healthz},
    {get, "/readyz", anyone, 0, h::readyz},
    {get, "/metrics", anyone, 0, h::metrics},
    {get, "/api/v1/info", reader, 0, h::info},
    {get, "/api/v1/whoami", token, 0, h::whoami},
    // drones (docs/protocol.md, "Drones")
    {post, "/api/v1/drones/register", drone, k_json_limit, h::register_drone},
    {post, "/api/v1/drones/heartbeat", drone, k_json_limit, h::heartbeat},
    {post, "/api/v1/claim", drone, k_json_limit, h::claim},
    {put, "/api/v1/leases/([0-9a-f]+)/artifact", drone, options.max_upload, h::upload_artifact},
    {post, "/api/v1/leases/([0-9a-f]+)/report", drone, k_json_limit, h::report},
    {post, "/api/v1/leases/([0-9a-f]+)/log", drone, k_log_chunk_limit, h::append_log},
    {post, "/api/v1/leases/([0-9a-f]+)/return", drone, k_json_limit, h::return_lease},
    {post, "/api/v1/leases/([0-9a-f]+)/refuse", drone, k_json_limit, h::refuse},
    {get, "/api/v1/profiles/([0-9a-f]{64})", token, 0, h::build_profile},
    // plan and control
    {post, "/api/v1/drones/enroll", admin, k_json_limit, h::enroll},
    {post, "/api/v1/drones/revoke", admin, k_json_limit, h::revoke_drone},
    {post, "/api/v1/tokens", admin, k_json_limit, h::create_token},
    {get, "/api/v1/tokens", admin, 0, h::list_tokens},
    {post, "/api/v1/tokens/revoke", admin, k_json_limit, h::revoke_token},
    {post, "/api/v1/plan", admin, k_json_limit, h::submit_plan},
    {post, "/api/v1/control/pause", admin, k_json_limit, h::pause},
    {post, "/api/v1/control/resume", admin, k_json_limit, h::resume},
    {post, "/api/v1/control/reset", admin, k_json_limit, h::reset},
    {post, "/api/v1/control/unblock", admin, k_json_limit, h::unblock},
    {post, "/api/v1/control/retry", admin, k_json_limit, h::unblock},
    {post, "/api/v1/control/ground", admin, k_json_limit, h::ground},
    {post, "/api/v1/control/unground", admin, k_json_limit, h::unground},
    {post, "/api/v1/control/balance", admin, k_json_limit, h::balance},
    {post, "/api/v1/operator/local-build", admin, k_json_limit, h::local_build},
    // read-only views
    {get, "/api/v1/status", reader, 0, h::status},
    {get, "/api/v1/profiles", reader, 0, h::profiles},
    {get, "/api/v1/drones", reader, 0, h::drones},
    {get, "/api/v1/packages", reader, 0, h::packages},
    {get, "/api/v1/packages/(.+)", reader, 0, h::package},
    {get, "/api/v1/events", reader, 0, h::events},
    {get, "/api/v1/builds", reader, 0, h::builds},
    {get, "/api/v1/logs", reader, 0, h::logs},
    {get, "/api/v1/plan/levels", reader, 0, h::plan_view},
    // the web dashboard (its data comes from the views above)
    {get, "/()", anyone, 0, h::dashboard},
    {get, "/dashboard/(app\\.js|style\\.css)", anyone, 0, h::dashboard},
    // releases
    {get, "/api/v1/verify", admin, 0, h::verify},
    {post, "/api/v1/releases/finalize", admin, k_json_limit, h::finalize},
    {get, "/api/v1/releases", reader, 0, h::releases},
    {post, "/api/v1/releases/rollback", admin, k_json_limit, h::rollback},
    // binhosts: staging for drones (Portage sends the token as HTTP Basic), production public
    // unless orch.public_binhost is off
    {get, "()" + staging + "/Packages", token, 0, h::staging_index},
    {get, "()" + staging + "/(.*)", token, 0, h::staging_file},
    {get, "()/production/(.*)", options.public_binhost ? anyone : reader, 0, h::production_file},
    {get, "/api/v1/key", options.public_binhost ? anyone : reader, 0, h::binhost_key},
    // the same for the other profiles, under /p/NAME
    {get, "/p/" + k_profile + staging + "/Packages", token, 0, h::staging_index},
    {get, "/p/" + k_profile + staging + "/(.*)", token, 0, h::staging_file},
    {get, "/p/" + k_profile + "/production/(.*)", options.public_binhost ? anyone : reader, 0, h::production_file},
  };
}

Caller identify(const Api& api, const httplib::Request& request)
{
  const auto credential = net::credential(request);
  if (!credential || credential->token.empty()) {
    return {};
  }
  if (!api.options.admin_token.empty() && secure::constant_time_equal(api.options.admin_token, credential->token)) {
    return {Caller::Role::admin, ""};
  }
  if (auto drone = api.coordinator.drone_for_token(credential->token)) {
    return {Caller::Role::drone, *drone};
  }
  if (auto reader = api.coordinator.reader_for_token(credential->token)) {
    return {Caller::Role::reader, *reader};
  }
  return {};
}

// Whose failed authentications a request counts as: its peer, or the client a trusted proxy
// (a gateway) names as the last X-Forwarded-For entry.
std::string client_address(const httplib::Request& request, const std::vector<std::string>& trusted_proxies)
{
  if (std::find(trusted_proxies.begin(), trusted_proxies.end(), request.remote_addr) == trusted_proxies.end()) {
    return request.remote_addr;
  }
  const auto forwarded = request.get_header_value("X-Forwarded-For");
  const auto last = strings::trim(std::string_view(forwarded).substr(forwarded.rfind(',') + 1));
  return last.empty() ? request.remote_addr : std::string(last);
}

// The refusal of a caller a route does not admit, or nothing when it may proceed.
std::optional<Error> refusal(Access access, const Caller& caller, const ApiOptions& options)
{
  using Role = Caller::Role;
  switch (access) {
  case Access::anyone:
    return std::nullopt;
  case Access::reader:
    if (options.public_status || caller.role != Role::none) {
      return std::nullopt;
    }
    return Error{ErrorKind::unauthorized, "a token is required (or set orch.public_status)"};
  case Access::token:
    if (caller.role != Role::none) {
      return std::nullopt;
    }
    return Error{ErrorKind::unauthorized, "the staging binhost needs a drone token"};
  case Access::drone:
    if (caller.role == Role::drone) {
      return std::nullopt;
    }
    return caller.role == Role::none     ? Error{ErrorKind::unauthorized, "a drone token is required"}
           : caller.role == Role::reader ? Error{ErrorKind::forbidden, "a read-only token cannot do this"}
                                         : Error{ErrorKind::forbidden, "this endpoint is for drones"};
  case Access::admin:
    if (caller.role == Role::admin) {
      return std::nullopt;
    }
    return caller.role == Role::none     ? Error{ErrorKind::unauthorized, "the admin token is required"}
           : caller.role == Role::reader ? Error{ErrorKind::forbidden, "a read-only token cannot do this"}
                                         : Error{ErrorKind::forbidden, "this endpoint needs the admin token"};
  }
  return Error{ErrorKind::forbidden, "not allowed"};
}

} // namespace

net::RequestBody& Call::body() const
{
  if (!m_body) {
    throw Fatal{Error{ErrorKind::internal, "this route has no request body"}};
  }
  return *m_body;
}

json Call::read_json() const
{
  if (!m_body) {
    return json::object();
  }
  auto text = m_body->read_all();
  if (!text) {
    throw Fatal{text.error()};
  }
  if (text->empty()) {
    return json::object();
  }
  auto parsed = net::parse_json(*text);
  if (!parsed) {
    throw Fatal{parsed.error()};
  }
  if (!parsed->is_object()) {
    throw Fatal{Error{ErrorKind::invalid, "the request body must be a JSON object"}};
  }
  return std::move(*parsed);
}

ReleaseStore& Api::releases(const std::string& profile)
{
  std::lock_guard lock(m_mutex);
  auto& store = m_releases[profile];
  if (!store) {
    ReleaseOptions release_options;
    release_options.releases_dir = profile_path(options.data_dir, profile, "releases");
    release_options.production_link = profile_path(options.data_dir, profile, "production");
    release_options.keep = options.keep_releases;
    store = std::make_unique<ReleaseStore>(release_options);
  }
  return *store;
}

std::string Api::profile_param(const Call& call) const
{
  const auto profile = call.request.has_param("profile") ? call.param("profile") : std::string(k_default_profile);
  if (!net::is_valid_profile_name(profile)) {
    throw Fatal{Error{ErrorKind::invalid, fmt::format("\"{}\" is not a profile name", profile)}};
  }
  return profile;
}

bool Api::enter_long_poll()
{
  if (options.max_long_polls <= 0) {
    return true;
  }
  int current = m_long_polls.load();
  while (current < options.max_long_polls) {
    if (m_long_polls.compare_exchange_weak(current, current + 1)) {
      return true;
    }
  }
  return false;
}

void Api::leave_long_poll()
{
  if (options.max_long_polls > 0) {
    --m_long_polls;
  }
}

bool Api::begin_lease_upload(const std::string& lease)
{
  std::lock_guard lock(m_mutex);
  return m_uploading.insert(lease).second;
}

void Api::end_lease_upload(const std::string& lease)
{
  std::lock_guard lock(m_mutex);
  m_uploading.erase(lease);
}

void Api::note_disk_full(const std::string& where, const std::string& detail)
{
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard lock(m_mutex);
  auto [it, added] = m_disk_full.try_emplace(where, detail, now);
  if (added) {
    LOG_ERROR("no space left for {}: {} (answering 507 until space returns)", where, detail);
  } else {
    it->second.first = detail;
  }
}

void Api::clear_disk_full(const std::string& where)
{
  std::lock_guard lock(m_mutex);
  if (m_disk_full.erase(where) > 0) {
    LOG_INFO("space is back for {}", where);
  }
}

json Api::disk_full() const
{
  std::lock_guard lock(m_mutex);
  if (m_disk_full.empty()) {
    return nullptr;
  }
  json paths = json::array();
  std::string detail;
  double since = 0;
  for (const auto& [where, entry] : m_disk_full) {
    paths.push_back(where);
    detail = entry.first;
    since = since == 0 ? entry.second : std::min(since, entry.second);
  }
  return json{{"paths", paths}, {"detail", detail}, {"since", since}};
}

bool is_no_space(const Error& error)
{
  return error.message.find(fs::errno_text(ENOSPC)) != std::string::npos ||
         error.message.find(fs::errno_text(EDQUOT)) != std::string::npos;
}

void reply_no_space(Api& api, const Call& call, const std::string& where, const Error& error)
{
  api.note_disk_full(where, error.message);
  call.response.set_header("Retry-After", "60");
  call.reply(507, json{{"error", fmt::format("no space left on the orchestrator for {}: {}", where, error.message)},
                       {"kind", "no_space"}});
}

json Api::info() const
{
  return json{{"orch_id", options.orch_id},
              {"version", options.version},
              {"protocol", net::k_protocol_version},
              {"public_url", options.public_url},
              {"staging_url", staging_url(options)},
              {"production_url", production_url(options)},
              {"data_dir", options.data_dir.string()},
              {"paused", coordinator.paused()}};
}

std::string staging_url(const ApiOptions& options, const std::string& profile)
{
  return profile_url(fmt::format("{}/staging/{}", options.public_url, options.orch_id), profile);
}

std::string production_url(const ApiOptions& options, const std::string& profile)
{
  return profile_url(options.public_url + "/production", profile);
}

void install_routes(net::HttpServer& server, Coordinator& coordinator, const ApiOptions& options,
                    Observability* observability)
{
  auto api = std::make_shared<Api>(coordinator, options);
  auto limiter = std::make_shared<net::AuthFailureLimiter>(
    net::AuthFailureLimiter::Options{.max_failures = std::max(0, options.auth_failure_limit)});
  api->observability = observability;
  if (observability) {
    observability->set_last_release([weak = std::weak_ptr<Api>(api)] {
      std::map<std::string, double> out;
      auto held = weak.lock();
      if (!held) {
        return out;
      }
      std::set<std::string> names{std::string(k_default_profile)};
      for (const auto& profile : held->coordinator.profiles_view()) {
        names.insert(profile.value("name", std::string()));
      }
      for (const auto& name : names) {
        for (const auto& release : held->releases(name).list()) {
          out[name] = std::max(out[name], release.created);
        }
      }
      return out;
    });
  }

  for (auto& route : route_table(options)) {
    // Who is calling is known from the headers alone: a caller the route does not admit is
    // answered before a byte of its body is read (the server drains or closes after that).
    auto admit = [api, limiter, access = route.access](const httplib::Request& request, httplib::Response& response,
                                                       Caller& caller) {
      const auto address = client_address(request, api->options.trusted_proxies);
      if (access != Access::anyone) {
        if (auto wait = limiter->blocked(address)) {
          net::too_many_failures_response(response, *wait);
          return false;
        }
      }
      caller = identify(*api, request);
      if (caller.role == Caller::Role::none && access != Access::anyone) {
        if (const auto credential = net::credential(request); credential && !credential->token.empty()) {
          limiter->failed(address);
          LOG_DEBUG("wrong credential from {} for {} {}", address, request.method, request.path);
        }
      }
      if (auto refused = refusal(access, caller, api->options)) {
        net::error_response(response, *refused);
        return false;
      }
      return true;
    };
    if (route.method == Method::get) {
      server.get(route.path,
                 [api, admit, handler = route.handler](const httplib::Request& request, httplib::Response& response) {
                   Caller caller;
                   if (admit(request, response, caller)) {
                     handler(*api, Call(request, response, std::move(caller), nullptr));
                   }
                 });
      continue;
    }
    auto streamed = [api, admit, handler = route.handler](const httplib::Request& request, httplib::Response& response,
                                                          net::RequestBody& body) {
      Caller caller;
      if (admit(request, response, caller)) {
        handler(*api, Call(request, response, std::move(caller), &body));
      }
    };
    if (route.method == Method::post) {
      server.post_stream(route.path, route.max_body, std::move(streamed));
    } else {
      server.put_stream(route.path, route.max_body, std::move(streamed));
    }
  }
}

} // namespace swarm::roles::orch
