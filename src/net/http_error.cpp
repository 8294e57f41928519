#include "net/http_error.hpp"

#include <array>
#include <utility>

namespace swarm::net {

namespace {

constexpr std::array<std::pair<ErrorKind, std::string_view>, 9> k_names{{
  {ErrorKind::invalid, "invalid"},
  {ErrorKind::unauthorized, "unauthorized"},
  {ErrorKind::forbidden, "forbidden"},
  {ErrorKind::not_found, "not_found"},
  {ErrorKind::conflict, "conflict"},
  {ErrorKind::too_large, "too_large"},
  {ErrorKind::io, "io"},
  {ErrorKind::unavailable, "unavailable"},
  {ErrorKind::internal, "internal"},
}};

} // namespace

int status_for(ErrorKind kind)
{
  switch (kind) {
  case ErrorKind::invalid:
    return 400;
  case ErrorKind::unauthorized:
    return 401;
  case ErrorKind::forbidden:
    return 403;
  case ErrorKind::not_found:
    return 404;
  case ErrorKind::conflict:
    return 409;
  case ErrorKind::too_large:
    return 413;
  case ErrorKind::unavailable:
    return 503;
  case ErrorKind::io:
  case ErrorKind::internal:
    return 500;
  }
  return 500;
}

ErrorKind kind_for_status(int status)
{
  switch (status) {
  case 400:
    return ErrorKind::invalid;
  case 401:
    return ErrorKind::unauthorized;
  case 403:
    return ErrorKind::forbidden;
  case 404:
    return ErrorKind::not_found;
  case 409:
    return ErrorKind::conflict;
  case 413:
    return ErrorKind::too_large;
  case 502:
  case 503:
  case 504:
    return ErrorKind::unavailable;
  default:
    return status >= 500 ? ErrorKind::internal : ErrorKind::invalid;
  }
}

std::string_view kind_name(ErrorKind kind)
{
  for (const auto& [candidate, name] : k_names) {
    if (candidate == kind) {
      return name;
    }
  }
  return "internal";
}

std::optional<ErrorKind> kind_from_name(std::string_view name)
{
  for (const auto& [kind, candidate] : k_names) {
    if (candidate == name) {
      return kind;
    }
  }
  return std::nullopt;
}

} // namespace swarm::net
