#pragma once
// `swarm orch`: the orchestrator daemon — data directory, state, HTTP API, periodic work,
// readiness line, clean shutdown on SIGTERM/SIGINT.

#include "core/config.hpp"

namespace swarm::roles::orch {

// Runs until SIGTERM or SIGINT; returns the exit code.
int run_daemon(const config::Config& config);

// `swarm drone enroll NAME` on the orchestrator's machine: opens its state database directly
// and prints a new token for the drone.
int enroll_locally(const std::string& data_dir, const std::string& name, bool json);

} // namespace swarm::roles::orch
