#include "core/secrets.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

#include "core/fs.hpp"
#include "core/strings.hpp"

namespace swarm::secrets {

Result<std::string> read_token_file(const std::filesystem::path& path)
{
  auto text = fs::read_file(path, 4096);
  if (!text) {
    return fail(text.error().kind == ErrorKind::too_large ? ErrorKind::invalid : text.error().kind,
                "cannot read the token file {}: {}", path.string(), text.error().message);
  }
  const auto line = text->substr(0, text->find('\n'));
  auto token = std::string(strings::trim(line));
  if (token.empty()) {
    return fail(ErrorKind::invalid, "the token file {} is empty", path.string());
  }
  return token;
}

namespace {

int rank_of(config::Origin origin)
{
  switch (origin) {
  case config::Origin::flag:
    return 3;
  case config::Origin::env:
    return 2;
  case config::Origin::file:
    return 1;
  case config::Origin::default_value:
    return 0;
  }
  return 0;
}

} // namespace

Result<TokenChoice> choose_token(const config::Config& config, std::string_view token_key, std::string_view file_key,
                                 const std::optional<std::string>& env_token)
{
  const auto& token = config.value(token_key);
  const auto& file = config.value(file_key);
  const bool has_token = !token.text.empty();
  const bool has_file = !file.text.empty();
  if (has_token && has_file && token.origin == config::Origin::flag && file.origin == config::Origin::flag) {
    return fail(ErrorKind::invalid, "give a token or a token file on the command line, not both");
  }
  const int token_rank = has_token ? rank_of(token.origin) : -1;
  const int file_rank = has_file ? rank_of(file.origin) : -1;
  const bool has_env = env_token && !strings::trim(*env_token).empty();
  // SWARM_TOKEN is an environment source below the key's own variables.
  const int env_rank = has_env ? 2 : -1;

  TokenChoice choice;
  if (file_rank >= 0 && file_rank >= token_rank && file_rank >= env_rank) {
    auto read = read_token_file(file.text);
    if (!read) {
      return fail(read.error().kind, "{} ({})", read.error().message, file.where);
    }
    choice.token = std::move(*read);
    choice.source = fmt::format("file {} ({})", file.text, file.where);
    choice.token_file = file.text;
    return choice;
  }
  if (token_rank >= 0 && token_rank >= env_rank) {
    choice.token = std::string(strings::trim(token.text));
    choice.source = token.where;
    choice.from_flag = token.origin == config::Origin::flag;
    return choice;
  }
  if (has_env) {
    choice.token = std::string(strings::trim(*env_token));
    choice.source = std::string(k_token_env);
  }
  return choice;
}

std::string token_flag_warning(std::string_view flag)
{
  return fmt::format("warning: a token given with {} is visible to every user in `ps`; use --token-file FILE "
                     "(mode 0600) or ${} instead",
                     flag, k_token_env);
}

std::optional<std::string> tighten(const std::filesystem::path& path, unsigned mode)
{
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0 || S_ISLNK(info.st_mode)) {
    return std::nullopt;
  }
  const unsigned current = info.st_mode & 07777;
  if ((current & ~mode) == 0) {
    return std::nullopt;
  }
  const unsigned wanted = current & mode;
  if (::chmod(path.c_str(), wanted) != 0) {
    return fmt::format("{} has mode {:04o}, more open than {:04o}, and cannot be changed: {}", path.string(), current,
                       mode, fs::errno_text(errno));
  }
  return fmt::format("{} had mode {:04o}, more open than {:04o}; changed it to {:04o}", path.string(), current, mode,
                     wanted);
}

ScopedUmask::ScopedUmask(unsigned mask) : m_previous(::umask(static_cast<mode_t>(mask)))
{}

ScopedUmask::~ScopedUmask()
{
  ::umask(static_cast<mode_t>(m_previous));
}

} // namespace swarm::secrets
