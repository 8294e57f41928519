#pragma once
// Helpers for handling secrets (tokens) without leaking them through timing.

#include <string_view>

namespace swarm::secure {

// True when `presented` equals `expected`. The time taken depends only on the length of
// `presented` (what the caller already knows), never on where the first difference is.
bool constant_time_equal(std::string_view expected, std::string_view presented);

} // namespace swarm::secure
