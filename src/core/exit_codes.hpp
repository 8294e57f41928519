#pragma once
// Every exit code swarm uses, in one place (icecream's services/exitcode.h).

namespace swarm::exit_code {
inline constexpr int k_ok = 0;
inline constexpr int k_failure = 1;     // the verb ran and the answer is "no" (invalid, fail)
inline constexpr int k_usage = 2;       // bad input: flags, arguments, files
inline constexpr int k_unavailable = 3; // the orchestrator or gateway could not be reached
inline constexpr int k_internal = 70;   // a bug: an exception escaped (EX_SOFTWARE)

// `swarm status`: a script can tell whether all is well.
inline constexpr int k_status_attention = 1; // something needs the operator (see NEXT ACTION)

// `swarm release`: one code for each way the pipeline can stop.
inline constexpr int k_release_sync_mismatch = 10;
inline constexpr int k_release_fresh_failed = 11;
inline constexpr int k_release_build_incomplete = 12;
inline constexpr int k_release_verify_failed = 13;
inline constexpr int k_release_finalize_failed = 14;
inline constexpr int k_release_nothing_to_do = 15;
} // namespace swarm::exit_code
