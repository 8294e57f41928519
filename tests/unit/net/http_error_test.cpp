#include <doctest/doctest.h>

#include "net/http_error.hpp"

using namespace swarm;
using namespace swarm::net;

TEST_CASE("http_error: kinds map to statuses and back")
{
  CHECK(status_for(ErrorKind::invalid) == 400);
  CHECK(status_for(ErrorKind::unauthorized) == 401);
  CHECK(status_for(ErrorKind::forbidden) == 403);
  CHECK(status_for(ErrorKind::not_found) == 404);
  CHECK(status_for(ErrorKind::conflict) == 409);
  CHECK(status_for(ErrorKind::too_large) == 413);
  CHECK(status_for(ErrorKind::unavailable) == 503);
  CHECK(status_for(ErrorKind::io) == 500);
  CHECK(status_for(ErrorKind::internal) == 500);
  for (const ErrorKind kind : {ErrorKind::invalid, ErrorKind::unauthorized, ErrorKind::forbidden, ErrorKind::not_found,
                               ErrorKind::conflict, ErrorKind::too_large, ErrorKind::unavailable}) {
    CHECK(kind_for_status(status_for(kind)) == kind);
    CHECK(kind_from_name(kind_name(kind)) == kind);
  }
  CHECK(kind_for_status(422) == ErrorKind::invalid);
  CHECK(kind_for_status(502) == ErrorKind::unavailable);
  CHECK(kind_for_status(500) == ErrorKind::internal);
  CHECK(kind_name(ErrorKind::not_found) == "not_found");
  CHECK(kind_name(ErrorKind::io) == "io");
  CHECK_FALSE(kind_from_name("nonsense").has_value());
}
