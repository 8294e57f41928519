#pragma once
// The one mapping between ErrorKind and HTTP, used by the server to answer and by the client to
// turn an answer back into an Error (docs/protocol.md "Errors").

#include <optional>
#include <string_view>

#include "core/error.hpp"

namespace swarm::net {

// invalid 400, unauthorized 401, forbidden 403, not_found 404, conflict 409, too_large 413,
// unavailable 503, io/internal 500.
int status_for(ErrorKind kind);

// The inverse for any status >= 400: other 4xx (422 …) → invalid, 502/503/504 → unavailable,
// other 5xx → internal.
ErrorKind kind_for_status(int status);

// "invalid", "not_found", … as sent in the "kind" field of error bodies.
std::string_view kind_name(ErrorKind kind);
std::optional<ErrorKind> kind_from_name(std::string_view name);

} // namespace swarm::net
