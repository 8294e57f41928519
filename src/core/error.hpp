#pragma once
// Errors as values: every failure a caller must handle is a Result<T>.

#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace swarm {

// What kind of failure; the HTTP layer maps it to a status code.
enum class ErrorKind {
  invalid,      // bad input (400)
  unauthorized, // missing or wrong credentials (401)
  forbidden,    // authenticated but not allowed (403)
  not_found,    // (404)
  conflict,     // state does not allow it (409)
  too_large,    // (413)
  io,           // filesystem or OS failure (500)
  unavailable,  // peer down or timed out (503)
  internal,     // a bug (500)
};

struct Error {
  ErrorKind kind = ErrorKind::invalid;
  std::string message;
};

template <class T = void>
using Result = std::expected<T, Error>;

// Builds an unexpected Error with a formatted message.
template <class... Args>
std::unexpected<Error> fail(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args)
{
  return std::unexpected(Error{kind, fmt::format(format, std::forward<Args>(args)...)});
}

inline std::unexpected<Error> fail(Error error)
{
  return std::unexpected(std::move(error));
}

// Thrown only to abort a whole operation; caught in swarm::main, HTTP handlers and thread entries.
struct Fatal {
  Error error;
};

} // namespace swarm
