#pragma once
// The wire protocol's version (docs/protocol.md). Bump on any incompatible change.

namespace swarm::net {
inline constexpr int k_protocol_version = 1;
} // namespace swarm::net
