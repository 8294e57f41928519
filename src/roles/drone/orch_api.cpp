#include "roles/drone/orch_api.hpp"

#include <algorithm>

#include "net/protocol_version.hpp"

namespace swarm::roles::drone {

namespace {

using nlohmann::json;

// Long-polls are answered by the orchestrator after their wait; the call itself may take that
// long plus the ordinary call time.
constexpr std::chrono::seconds k_claim_slack{30};
constexpr std::chrono::milliseconds k_log_timeout{10'000};

std::string string_field(const json& object, const char* key)
{
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

double number_field(const json& object, const char* key, double fallback)
{
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

Result<std::vector<std::string>> string_list(const json& object, const char* key)
{
  std::vector<std::string> out;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    return fail(ErrorKind::invalid, "\"{}\" is not a list", key);
  }
  for (const auto& item : *it) {
    if (!item.is_string()) {
      return fail(ErrorKind::invalid, "\"{}\" holds a non-string", key);
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

Answer answer_from(const net::Response& response)
{
  Answer answer;
  answer.status = response.status;
  if (auto parsed = response.json()) {
    answer.body = std::move(*parsed);
  }
  if (answer.body.is_object() && answer.body.contains("error") && answer.body["error"].is_string()) {
    answer.message = answer.body["error"].get<std::string>();
  } else if (!answer.ok()) {
    answer.message = fmt::format("HTTP {}", response.status);
  }
  return answer;
}

} // namespace

bool is_safe_lease_id(std::string_view id)
{
  if (id.empty() || id.size() > 128 || id == "." || id == "..") {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

Result<Lease> lease_from_json(const json& object)
{
  if (!object.is_object()) {
    return fail(ErrorKind::invalid, "a lease is not a JSON object");
  }
  Lease lease;
  if (const auto it = object.find("id"); it != object.end() && it->is_number_integer()) {
    lease.id = std::to_string(it->get<int64_t>()); // an orchestrator may number its leases
  } else {
    lease.id = string_field(object, "id");
  }
  if (!is_safe_lease_id(lease.id)) {
    return fail(ErrorKind::invalid, "lease id \"{}\" is not acceptable", lease.id);
  }
  lease.cpv = string_field(object, "cpv");
  if (lease.cpv.empty()) {
    return fail(ErrorKind::invalid, "lease {} has no cpv", lease.id);
  }
  lease.slot = string_field(object, "slot");
  lease.repo = string_field(object, "repo");
  auto use = string_list(object, "use");
  if (!use) {
    return fail(ErrorKind::invalid, "lease {}: {}", lease.id, use.error().message);
  }
  lease.use = std::move(*use);
  auto deps = string_list(object, "deps");
  if (!deps) {
    return fail(ErrorKind::invalid, "lease {}: {}", lease.id, deps.error().message);
  }
  lease.deps = std::move(*deps);
  lease.expires_at = static_cast<int64_t>(number_field(object, "expires_at", 0));
  lease.expected_seconds = number_field(object, "expected_seconds", 0);
  lease.staging_url = string_field(object, "staging_url");
  lease.tree_timestamp = string_field(object, "tree_timestamp");
  return lease;
}

json lease_to_json(const Lease& lease)
{
  return {{"id", lease.id},
          {"cpv", lease.cpv},
          {"slot", lease.slot},
          {"repo", lease.repo},
          {"use", lease.use},
          {"deps", lease.deps},
          {"expires_at", lease.expires_at},
          {"expected_seconds", lease.expected_seconds},
          {"staging_url", lease.staging_url},
          {"tree_timestamp", lease.tree_timestamp}};
}

json register_request_to_json(const RegisterRequest& request)
{
  return {{"name", request.name},
          {"protocol", net::k_protocol_version},
          {"version", request.version},
          {"cores", request.cores},
          {"slots", request.slots},
          {"ram_bytes", request.ram_bytes},
          {"disk_free_bytes", request.disk_free_bytes},
          {"tree_timestamp", request.tree_timestamp}};
}

Result<Registration> registration_from_json(const json& object)
{
  if (!object.is_object()) {
    return fail(ErrorKind::invalid, "the register answer is not a JSON object");
  }
  Registration out;
  out.drone = string_field(object, "drone");
  out.heartbeat_interval = number_field(object, "heartbeat_interval", out.heartbeat_interval);
  out.lease_ttl = number_field(object, "lease_ttl", out.lease_ttl);
  out.claim_wait = number_field(object, "claim_wait", out.claim_wait);
  out.staging_url = string_field(object, "staging_url");
  if (const auto it = object.find("leases"); it != object.end() && it->is_array()) {
    for (const auto& item : *it) {
      auto lease = lease_from_json(item);
      if (!lease) {
        return fail(lease.error());
      }
      out.leases.push_back(std::move(*lease));
    }
  }
  if (out.heartbeat_interval <= 0) {
    return fail(ErrorKind::invalid, "heartbeat_interval {} is not positive", out.heartbeat_interval);
  }
  return out;
}

json heartbeat_request_to_json(const HeartbeatRequest& request)
{
  return {{"cpu_percent", request.cpu_percent},
          {"mem_percent", request.mem_percent},
          {"load1", request.load1},
          {"disk_free_bytes", request.disk_free_bytes},
          {"tree_timestamp", request.tree_timestamp},
          {"leases", request.leases}};
}

Result<HeartbeatAnswer> heartbeat_answer_from_json(const json& object)
{
  HeartbeatAnswer out;
  if (object.is_null()) {
    return out;
  }
  if (!object.is_object()) {
    return fail(ErrorKind::invalid, "the heartbeat answer is not a JSON object");
  }
  out.state = string_field(object, "state");
  out.reason = string_field(object, "reason");
  if (const auto it = object.find("cancel"); it != object.end() && it->is_array()) {
    for (const auto& item : *it) {
      if (item.is_string()) {
        out.cancel.push_back(item.get<std::string>());
      } else if (item.is_number_integer()) {
        out.cancel.push_back(std::to_string(item.get<int64_t>()));
      }
    }
  }
  return out;
}

json report_request_to_json(const ReportRequest& request)
{
  return {{"result", request.result == ReportResult::success ? "success" : "failure"},
          {"duration_seconds", request.duration_seconds},
          {"log_tail", request.log_tail},
          {"reason", request.reason}};
}

namespace {

net::ClientOptions client_options(std::string base_url, std::string token)
{
  net::ClientOptions options;
  options.base_url = std::move(base_url);
  options.token = std::move(token);
  return options;
}

} // namespace

HttpOrchApi::HttpOrchApi(std::string base_url, std::string token)
    : m_client(client_options(std::move(base_url), std::move(token)))
{}

Result<Answer> HttpOrchApi::post_json(const std::string& path, const json& body,
                                      std::optional<std::chrono::milliseconds> timeout)
{
  // error_handler replace: a log tail cut in the middle of a UTF-8 sequence must still go out.
  const auto text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  call.timeout = timeout;
  auto response =
    m_client.request("POST", path, text, {{"Content-Type", "application/json"}, {"Accept", "application/json"}}, call);
  if (!response) {
    return fail(response.error());
  }
  return answer_from(*response);
}

Result<Answer> HttpOrchApi::register_drone(const RegisterRequest& request)
{
  return post_json("/api/v1/drones/register", register_request_to_json(request));
}

Result<Answer> HttpOrchApi::heartbeat(const HeartbeatRequest& request)
{
  return post_json("/api/v1/drones/heartbeat", heartbeat_request_to_json(request));
}

Result<Answer> HttpOrchApi::claim(std::chrono::seconds wait)
{
  return post_json(fmt::format("/api/v1/claim?wait={}", wait.count()), json::object(),
                   std::chrono::duration_cast<std::chrono::milliseconds>(wait + k_claim_slack));
}

Result<Answer> HttpOrchApi::upload_artifact(const std::string& lease_id, const std::filesystem::path& file,
                                            const std::string& sha256, const std::string& xxh3_128)
{
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  auto response = m_client.put_file(fmt::format("/api/v1/leases/{}/artifact", lease_id), file,
                                    {{"X-Swarm-Sha256", sha256}, {"X-Swarm-Xxh3-128", xxh3_128}}, {}, call);
  if (!response) {
    return fail(response.error());
  }
  return answer_from(*response);
}

Result<Answer> HttpOrchApi::report(const std::string& lease_id, const ReportRequest& request)
{
  return post_json(fmt::format("/api/v1/leases/{}/report", lease_id), report_request_to_json(request));
}

Result<Answer> HttpOrchApi::send_log(const std::string& lease_id, std::string_view chunk)
{
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  // A log chunk is not worth holding up a build's delivery for long.
  call.timeout = k_log_timeout;
  auto response = m_client.request("POST", fmt::format("/api/v1/leases/{}/log", lease_id), chunk,
                                   {{"Content-Type", "text/plain; charset=utf-8"}}, call);
  if (!response) {
    return fail(response.error());
  }
  return answer_from(*response);
}

Result<Answer> HttpOrchApi::return_lease(const std::string& lease_id)
{
  return post_json(fmt::format("/api/v1/leases/{}/return", lease_id), json::object());
}

Verdict verdict_of(const Result<Answer>& result)
{
  if (!result) {
    // No answer: the peer is down or slow (worth waiting for), or the request could not even be
    // made (an unreadable artifact, a bad URL: waiting changes nothing).
    return result.error().kind == ErrorKind::unavailable ? Verdict::retry : Verdict::rejected;
  }
  const int status = result->status;
  if (status >= 200 && status < 300) {
    return Verdict::done;
  }
  if (status >= 500 || status == 408 || status == 429) {
    return Verdict::retry;
  }
  if (status == 401) {
    return Verdict::drone_unknown;
  }
  return Verdict::rejected;
}

std::string describe(const Result<Answer>& result)
{
  if (!result) {
    return fmt::format("no answer: {}", result.error().message);
  }
  if (result->message.empty()) {
    return fmt::format("HTTP {}", result->status);
  }
  return fmt::format("HTTP {}: {}", result->status, result->message);
}

} // namespace swarm::roles::drone
