#include "core/random.hpp"

#include <vector>

#include <openssl/rand.h>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace swarm::random {

std::string hex_token(size_t bytes)
{
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    throw Fatal{Error{ErrorKind::internal, "no randomness available for a token"}};
  }
  return strings::to_hex(buffer.data(), buffer.size());
}

} // namespace swarm::random
