#include "roles/operator/api_client.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>

#include <unistd.h>

#include <fmt/format.h>

#include "core/fs.hpp"
#include "core/secrets.hpp"
#include "core/strings.hpp"
#include "net/protocol_version.hpp"

namespace swarm::roles::operator_cli {

void add_client_flags(CLI::App& app, ConfigFlags& flags)
{
  bind_config_flag(app, flags, "--url", "client.url");
  bind_config_flag(app, flags, "--token", "client.token");
  bind_config_flag(app, flags, "--token-file", "client.token_file");
  bind_config_flag(app, flags, "--ca", "client.ca");
  bind_config_flag(app, flags, "--timeout", "client.timeout");
  bind_config_flag(app, flags, "--orch-data-dir", "client.orch_data_dir");
}

std::string admin_token(const config::Config& config)
{
  auto chosen =
    secrets::choose_token(config, "client.token", "client.token_file", config::env_get(secrets::k_token_env));
  if (!chosen) {
    throw Fatal{chosen.error()};
  }
  if (!chosen->token.empty()) {
    if (chosen->from_flag) {
      static std::once_flag warned;
      std::call_once(warned, [] { fmt::print(stderr, "swarm: {}\n", secrets::token_flag_warning()); });
    }
    return chosen->token;
  }
  const auto path = std::filesystem::path(config.get("client.orch_data_dir")) / "admin.token";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return {};
  }
  auto text = fs::read_file(path);
  if (!text) {
    return {};
  }
  return std::string(strings::trim(*text));
}

net::HttpClient make_client(const config::Config& config)
{
  net::ClientOptions options;
  options.base_url = config.get("client.url");
  options.ca_file = config.get("client.ca");
  options.token = admin_token(config);
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.get_seconds("client.timeout") * 1000.0));
  return net::HttpClient(std::move(options));
}

void throw_error(ErrorKind kind, std::string message)
{
  throw Fatal{Error{kind, std::move(message)}};
}

void must_do(const Result<>& result)
{
  if (!result) {
    throw Fatal{result.error()};
  }
}

std::string url_encode(std::string_view text)
{
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

void print_json(const nlohmann::json& value)
{
  fmt::print("{}\n", value.dump(2));
}

std::string utc_time(double epoch)
{
  if (epoch <= 0) {
    return "-";
  }
  const auto seconds = static_cast<time_t>(epoch);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec);
}

bool confirm(Confirm confirm, const std::string& question)
{
  if (confirm == Confirm::assume_yes) {
    return true;
  }
  if (isatty(STDIN_FILENO) == 0) {
    throw Fatal{Error{ErrorKind::invalid, fmt::format("{} — refusing without a terminal; pass --yes", question)}};
  }
  fmt::print(stderr, "{} [y/N] ", question);
  std::fflush(stderr);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

Error unreadable_answer(std::string_view what, std::string_view why)
{
  return Error{ErrorKind::internal,
               fmt::format("the answer to {} is not what protocol {} says: {}", what, net::k_protocol_version, why)};
}

} // namespace swarm::roles::operator_cli
