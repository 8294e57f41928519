#pragma once
// What every operator verb shares: the flags that say where the gateway (or an orchestrator) is
// and which token to use, and a client bound to them. The admin token comes from --token,
// SWARM_CLIENT_TOKEN or the config file, else from the local orchestrator's data_dir/admin.token
// when this machine runs one and the file is readable.

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/http_client.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles::operator_cli {

// --url, --token, --timeout, --orch-data-dir (client.* keys).
void add_client_flags(CLI::App& app, VerbArgs& args);

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

// Asks "QUESTION [y/N]" on the terminal unless --yes; false when declined or stdin is not a tty.
bool confirm(const VerbArgs& args, const std::string& question);

} // namespace swarm::roles::operator_cli
