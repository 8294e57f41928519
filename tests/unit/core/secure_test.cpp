#include <doctest/doctest.h>

#include "core/secure.hpp"

using swarm::secure::constant_time_equal;

TEST_CASE("secure: constant_time_equal compares whole strings")
{
  CHECK(constant_time_equal("s3cret-token", "s3cret-token"));
  CHECK_FALSE(constant_time_equal("s3cret-token", "s3cret-tokeN"));
  CHECK_FALSE(constant_time_equal("s3cret-token", "s3cret-toke"));
  CHECK_FALSE(constant_time_equal("s3cret-token", "s3cret-token2"));
  CHECK_FALSE(constant_time_equal("s3cret-token", ""));
  CHECK_FALSE(constant_time_equal("", "x"));
  CHECK(constant_time_equal("", ""));
  // Repeating the expected value is not a match.
  CHECK_FALSE(constant_time_equal("ab", "abab"));
}
