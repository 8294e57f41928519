#pragma once
// What every operator verb shares: the flags that say where the gateway (or an orchestrator) is
// and which token to use, a client bound to them, and typed protocol messages (net/protocol.hpp)
// read from its answers. The admin token comes from --token, SWARM_CLIENT_TOKEN or the config
// file, else from the local orchestrator's data_dir/admin.token when this machine runs one and
// the file is readable.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/http_client.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles::operator_cli {

// --url, --token, --timeout, --orch-data-dir (client.* keys).
void add_client_flags(CLI::App& app, ConfigFlags& flags);

// A client for `client.url` with the admin token when one is known.
net::HttpClient make_client(const config::Config& config);

// The admin token as resolved above ("" when none).
std::string admin_token(const config::Config& config);

// Throws Fatal (→ "swarm: error: …" and an exit code from the error's kind) when `result` failed.
template <class T>
T must(Result<T> result)
{
  if (!result) {
    throw Fatal{result.error()};
  }
  return std::move(*result);
}

// Prints JSON to stdout, indented.
void print_json(const nlohmann::json& value);

// "2026-12-01 05:29:02", the UTC time of `epoch` seconds, for tables; "-" when not positive.
std::string utc_time(double epoch);

// Asks "QUESTION [y/N]" on the terminal unless `confirm` is assume_yes; false when declined.
// Without a terminal it refuses: Fatal invalid, "pass --yes".
bool confirm(Confirm confirm, const std::string& question);

// The Error for an answer that is not the protocol message it should be: it names the call
// (`what`, "POST /api/v1/control/balance") and the field; its kind (internal) exits 1.
Error unreadable_answer(std::string_view what, std::string_view why);

// `body` read as the protocol message `Message` (net/protocol.hpp), or unreadable_answer().
template <class Message>
Result<Message> read_message(const nlohmann::json& body, std::string_view what)
{
  try {
    return body.get<Message>();
  } catch (const Fatal& fatal) {
    return fail(unreadable_answer(what, fatal.error.message));
  } catch (const nlohmann::json::exception& e) {
    return fail(unreadable_answer(what, e.what()));
  }
}

// An answer of the orchestrator: the typed message, and the JSON it came as (what --json
// prints, unchanged).
template <class Message>
struct Answer {
  Message message;
  nlohmann::json json;
};

// POSTs `body` (a protocol message as JSON) to `path` and reads the answer as `Reply`. HTTP
// errors and an unreachable peer are the Error of the call (net::HttpClient::post_json).
template <class Reply>
Result<Answer<Reply>> post_message(const net::HttpClient& client, const std::string& path, const nlohmann::json& body)
{
  auto answer = client.post_json(path, body);
  if (!answer) {
    return fail(answer.error());
  }
  auto message = read_message<Reply>(*answer, "POST " + path);
  if (!message) {
    return fail(message.error());
  }
  return Answer<Reply>{std::move(*message), std::move(*answer)};
}

} // namespace swarm::roles::operator_cli
