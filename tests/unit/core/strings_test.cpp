#include <doctest/doctest.h>

#include "core/strings.hpp"

using namespace swarm::strings;

TEST_CASE("strings: split and join")
{
  CHECK(split_any("  a b\t c ") == std::vector<std::string>{"a", "b", "c"});
  CHECK(split("a,,b", ',') == std::vector<std::string>{"a", "", "b"});
  CHECK(join({"a", "b"}, ", ") == "a, b");
  CHECK(trim("  x y \n") == "x y");
}

TEST_CASE("strings: numbers, sizes and durations")
{
  CHECK(parse_int("-12") == -12);
  CHECK_FALSE(parse_int("12x").has_value());
  CHECK_FALSE(parse_int("").has_value());
  CHECK(parse_size("2K") == 2048u);
  CHECK(parse_size("1G") == 1024ull * 1024 * 1024);
  CHECK(parse_size("512") == 512u);
  CHECK_FALSE(parse_size("5 apples").has_value());
  CHECK(parse_duration("90") == doctest::Approx(90));
  CHECK(parse_duration("5m") == doctest::Approx(300));
  CHECK(parse_duration("250ms") == doctest::Approx(0.25));
  CHECK_FALSE(parse_duration("-1s").has_value());
}

TEST_CASE("strings: nearest word for typos")
{
  const std::vector<std::string> verbs{"status", "fresh", "verify", "finalize", "orch"};
  CHECK(nearest("statsu", verbs) == "status");
  CHECK(nearest("verfy", verbs) == "verify");
  CHECK(nearest("stat", verbs) == "status");
  CHECK_FALSE(nearest("completelydifferent", verbs).has_value());
}
