#pragma once
// Internal to src/roles/orch (api.cpp and api_*.cpp): the one route table's types. A route is
// {method, path, who may call it, body limit, handler}; api.cpp identifies the caller from the
// headers and refuses it before any body is read, and a handler reads its typed body through
// Call::read<T>(), whose errors (malformed JSON, a field of the wrong type or range) answer 400.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/http_server.hpp"
#include "roles/orch/api.hpp"
#include "roles/orch/log_store.hpp"
#include "roles/orch/release.hpp"

namespace swarm::roles::orch {

class Observability;
using nlohmann::json;

// Who may call a route.
enum class Access {
  anyone, // no credential (health, public binhost)
  reader, // any valid token (read-only ones too), or anyone with orch.public_status
  token,  // any valid token, read-only ones too (the staging binhost)
  drone,  // a drone token (403 for the admin)
  admin,  // the admin token
};

struct Caller {
  enum class Role { none, admin, drone, reader };
  Role role = Role::none;
  std::string drone; // with Role::drone; the token's name with Role::reader
};

// One request being answered.
class Call {
public:
  Call(const httplib::Request& request_, httplib::Response& response_, Caller caller_, net::RequestBody* body_)
      : request(request_), response(response_), caller(std::move(caller_)), m_body(body_)
  {}

  const httplib::Request& request;
  httplib::Response& response;
  const Caller caller;

  // The n-th capture of the route's path pattern.
  std::string match(size_t n) const { return request.matches[n].str(); }
  std::string param(const char* name) const { return request.get_param_value(name); }
  net::RequestBody& body() const;

  // The body as a JSON object ({} when empty); throws Fatal (→ 400/413) when it is not one.
  json read_json() const;
  // The body as message T (net/protocol.hpp).
  template <class T>
  T read() const
  {
    return read_json().get<T>();
  }

  void reply(int status, const json& body) const { net::json_response(response, status, body); }
  void reply(const json& body) const { reply(200, body); }
  void fail(const Error& error) const { net::error_response(response, error); }
  // 200 with the value, or the error.
  template <class T>
  void reply(const Result<T>& result) const
  {
    if (result) {
      reply(json(*result));
    } else {
      fail(result.error());
    }
  }

private:
  net::RequestBody* m_body;
};

// What every handler shares.
class Api {
public:
  Api(Coordinator& coordinator_, ApiOptions options_)
      : coordinator(coordinator_), options(std::move(options_)), logs(options.data_dir / "logs")
  {}

  Coordinator& coordinator;
  const ApiOptions options;
  Observability* observability = nullptr; // metrics and webhooks, when the daemon has them
  const LogStore logs;                    // build logs (data_dir/logs, as the coordinator writes them)

  json info() const;
  // The releases of a profile (created on first use).
  ReleaseStore& releases(const std::string& profile);
  // The "profile" query parameter of a request, validated ("default" when absent).
  std::string profile_param(const Call& call) const;

  // A claim about to wait takes a long-poll place; false when every place is taken
  // (ApiOptions::max_long_polls).
  bool enter_long_poll();
  void leave_long_poll();
  // One upload per lease at a time: false when one to `lease` is in progress.
  bool begin_lease_upload(const std::string& lease);
  void end_lease_upload(const std::string& lease);
  // A write refused for want of space (answered 507): logged, and shown by status until a
  // write to the same place succeeds again.
  void note_disk_full(const std::string& where, const std::string& detail);
  void clear_disk_full(const std::string& where);
  // {"paths": [...], "detail": "...", "since": unix seconds}, or null.
  json disk_full() const;

private:
  mutable std::mutex m_mutex;
  std::map<std::string, std::unique_ptr<ReleaseStore>> m_releases;
  std::atomic<int> m_long_polls{0};
  std::set<std::string> m_uploading;
  std::map<std::string, std::pair<std::string, double>> m_disk_full; // where → detail, since
};

// Whether an I/O error is a full disk or quota (ENOSPC, EDQUOT): answered 507.
bool is_no_space(const Error& error);
// Answers 507 Insufficient Storage for a write to `where` that found no space, and records it.
void reply_no_space(Api& api, const Call& call, const std::string& where, const Error& error);

enum class Method { get, post, put };
using RouteHandler = std::function<void(Api&, const Call&)>;

struct Route {
  Method method;
  std::string path; // regular expression over the decoded path; captures go to Call::match
  Access access;
  uint64_t max_body = 0; // POST/PUT
  RouteHandler handler;
};

// The handlers, one per route (api.cpp lists them in the one route table).
namespace handlers {
// api_drones.cpp: the drone protocol
void register_drone(Api& api, const Call& call);
void refuse(Api& api, const Call& call);
void build_profile(Api& api, const Call& call);
void heartbeat(Api& api, const Call& call);
void claim(Api& api, const Call& call);
void upload_artifact(Api& api, const Call& call);
void report(Api& api, const Call& call);
void append_log(Api& api, const Call& call);
void return_lease(Api& api, const Call& call);
// api_control.cpp: plan and control
void enroll(Api& api, const Call& call);
void submit_plan(Api& api, const Call& call);
void pause(Api& api, const Call& call);
void resume(Api& api, const Call& call);
void reset(Api& api, const Call& call);
void unblock(Api& api, const Call& call);
void ground(Api& api, const Call& call);
void unground(Api& api, const Call& call);
void balance(Api& api, const Call& call);
void local_build(Api& api, const Call& call);
// api_views.cpp: health, read-only views, binhosts
void healthz(Api& api, const Call& call);
void readyz(Api& api, const Call& call);
void metrics(Api& api, const Call& call);
void info(Api& api, const Call& call);
void whoami(Api& api, const Call& call);
void status(Api& api, const Call& call);
void profiles(Api& api, const Call& call);
void drones(Api& api, const Call& call);
void packages(Api& api, const Call& call);
void package(Api& api, const Call& call);
void events(Api& api, const Call& call);
void builds(Api& api, const Call& call);
void logs(Api& api, const Call& call);
void plan_view(Api& api, const Call& call);
void staging_index(Api& api, const Call& call);
void staging_file(Api& api, const Call& call);
void production_file(Api& api, const Call& call);
// api_tokens.cpp: revoking drones, read-only tokens
void revoke_drone(Api& api, const Call& call);
void create_token(Api& api, const Call& call);
void list_tokens(Api& api, const Call& call);
void revoke_token(Api& api, const Call& call);
// api_signing.cpp: the binhost's public OpenPGP key(s), armoured
void binhost_key(Api& api, const Call& call);
// api_release.cpp: verify and releases
void verify(Api& api, const Call& call);
void finalize(Api& api, const Call& call);
void releases(Api& api, const Call& call);
void rollback(Api& api, const Call& call);
// api_dashboard.cpp: the web dashboard's embedded page
void dashboard(Api& api, const Call& call);

// api_views.cpp: waits for news (Coordinator::wait_news) up to the request's "wait" seconds
// (capped at `most`), holding a long-poll place; `ready` is asked first and after every piece
// of news, and the wait ends as soon as it answers true. Without a place (the cap), or without
// "wait", it does not wait. A "wait" that is not a number of seconds is a Fatal 400.
void long_poll(Api& api, const Call& call, double most, const std::function<bool()>& ready);
} // namespace handlers

} // namespace swarm::roles::orch
