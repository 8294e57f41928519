#pragma once
// Where a token comes from (a flag, a file, the environment, the config file), and the file
// modes that keep secrets private: data dirs 0700, databases, token files and logs 0600.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/error.hpp"

namespace swarm::secrets {

// The environment variable every role reads a token from when no more specific source names one.
inline constexpr std::string_view k_token_env = "SWARM_TOKEN";

// A token file: its first line, without surrounding blanks. Fails when it is missing, unreadable,
// larger than 4 KiB or empty.
Result<std::string> read_token_file(const std::filesystem::path& path);

// How a token was found, for messages (never the token itself).
struct TokenChoice {
  std::string token;
  std::string source;     // "--token", "SWARM_DRONE_TOKEN", "/etc/swarm/swarm.conf:3", "file /run/x"
  bool from_flag = false; // given as --token on the command line (visible in `ps`)
  std::string token_file; // the file it was read from, if any
};

// The token of a role whose keys are `token_key` ("drone.token") and `file_key`
// ("drone.token_file"): of the two keys and $SWARM_TOKEN (`env_token`), the one from the highest
// source (flag > environment > config file) wins; at the same level a token file wins over a
// token, and the key's own variable over SWARM_TOKEN. Both keys given as flags is an error.
// Nothing anywhere: an empty token.
Result<TokenChoice> choose_token(const config::Config& config, std::string_view token_key, std::string_view file_key,
                                 const std::optional<std::string>& env_token);

// The one-line warning for a token given with --token (without the token).
std::string token_flag_warning(std::string_view flag = "--token");

// Makes `path` (when it exists) no more permissive than `mode`: removes the extra bits and
// returns a warning that says so, or nothing when it was already private (or is missing).
// Only permission bits are compared; a failed chmod is reported in the warning.
std::optional<std::string> tighten(const std::filesystem::path& path, unsigned mode);

// Sets the process umask to `mask` for its lifetime and restores the previous one after
// (around creating files that must be private; the umask is process-wide, so use it before
// other threads create files).
class ScopedUmask {
public:
  explicit ScopedUmask(unsigned mask);
  ~ScopedUmask();
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

private:
  unsigned m_previous;
};

} // namespace swarm::secrets
