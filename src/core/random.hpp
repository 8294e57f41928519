#pragma once
// Unpredictable identifiers: tokens and lease ids (OpenSSL's CSPRNG).

#include <cstddef>
#include <string>

namespace swarm::random {

// `bytes` random bytes as lower-case hex (2 × bytes characters). Throws Fatal if the system
// has no entropy source (nothing sensible can continue then).
std::string hex_token(size_t bytes);

} // namespace swarm::random
