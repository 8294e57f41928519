#include "roles/drone/orch_api.hpp"

namespace swarm::roles::drone {

namespace {

using nlohmann::json;

// Long-polls are answered by the orchestrator after their wait; the call itself may take that
// long plus the ordinary call time.
constexpr std::chrono::seconds k_claim_slack{30};
constexpr std::chrono::milliseconds k_log_timeout{10'000};

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

net::ClientOptions client_options(std::string base_url, std::string token, std::string ca_file)
{
  net::ClientOptions options;
  options.base_url = std::move(base_url);
  options.token = std::move(token);
  options.ca_file = std::move(ca_file);
  return options;
}

} // namespace

Result<net::Lease> lease_from_json(const json& object)
{
  return read_message<net::Lease>(object);
}

Result<net::Registration> registration_from_json(const json& object)
{
  return read_message<net::Registration>(object);
}

HttpOrchApi::HttpOrchApi(std::string base_url, std::string token, std::string ca_file)
    : m_client(client_options(std::move(base_url), std::move(token), std::move(ca_file)))
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

Result<Answer> HttpOrchApi::register_drone(const net::RegisterRequest& request)
{
  return post_json("/api/v1/drones/register", request);
}

Result<Answer> HttpOrchApi::heartbeat(const net::HeartbeatRequest& request)
{
  return post_json("/api/v1/drones/heartbeat", request);
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

Result<Answer> HttpOrchApi::report(const std::string& lease_id, const net::ReportRequest& request)
{
  return post_json(fmt::format("/api/v1/leases/{}/report", lease_id), request);
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

Result<Answer> HttpOrchApi::fetch_profile(const std::string& hash)
{
  net::CallOptions call;
  call.on_http_error = net::OnHttpError::return_response;
  auto response =
    m_client.request("GET", fmt::format("/api/v1/profiles/{}", hash), {}, {{"Accept", "application/json"}}, call);
  if (!response) {
    return fail(response.error());
  }
  return answer_from(*response);
}

Result<Answer> HttpOrchApi::refuse_lease(const std::string& lease_id, const net::RefuseRequest& request)
{
  return post_json(fmt::format("/api/v1/leases/{}/refuse", lease_id), request);
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
