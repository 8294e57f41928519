#include "core/secure.hpp"

#include <cstddef>

namespace swarm::secure {

bool constant_time_equal(std::string_view expected, std::string_view presented)
{
  // Every byte of `presented` is compared (against `expected` repeated when it is shorter), and
  // differences are OR-ed rather than returned early, so the loop's duration says nothing about
  // the secret. `volatile` keeps the compiler from turning the loop back into a memcmp.
  volatile unsigned char difference = expected.size() == presented.size() ? 0 : 1;
  const size_t expected_size = expected.size();
  for (size_t i = 0; i < presented.size(); ++i) {
    const unsigned char want = expected_size == 0 ? 0 : static_cast<unsigned char>(expected[i % expected_size]);
    difference = difference | (want ^ static_cast<unsigned char>(presented[i]));
  }
  return difference == 0;
}

} // namespace swarm::secure
