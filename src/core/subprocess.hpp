#pragma once
// Child processes without a shell: an argv vector, an explicit environment, stdin from
// /dev/null, stdout and stderr merged and sent to a file and/or callbacks as they arrive, its own
// process group (so a timeout or a cancel kills the whole tree), exit status or signal reported
// plainly. Thread-safe: several builds may run at once. Tests substitute a fake ProcessRunner.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "core/error.hpp"

namespace swarm::subprocess {

using Milliseconds = std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

// How Spec::env is applied.
enum class EnvMode {
  inherit, // this process's environment with Spec::env overriding or adding variables
  exact,   // Spec::env is the whole environment
};

enum class Capture { no, yes };

// What to run and where its output goes.
struct Spec {
  // argv[0] is looked up in the child's PATH unless it contains a '/'. Passed verbatim.
  std::vector<std::string> argv;
  EnvMode env_mode = EnvMode::inherit;
  std::map<std::string, std::string> env;
  // With EnvMode::inherit: variables of this process's environment the child does not get.
  std::vector<std::string> unset;
  // Working directory of the child; empty: this process's.
  std::filesystem::path cwd;
  // When set, the merged stdout+stderr is written to this file (created or truncated).
  std::filesystem::path output_file;
  // Each line of output without its '\n' (a final unterminated line too; very long lines come
  // in pieces of k_max_line bytes). Called on the thread that waits.
  std::function<void(std::string_view line)> on_line;
  // Raw output as it arrives, for streaming logs.
  std::function<void(std::string_view chunk)> on_chunk;
  // Keep the output in Outcome::output (at most capture_limit bytes; the rest is dropped).
  Capture capture = Capture::no;
  size_t capture_limit = 16u << 20;
  // Killed (whole process group) when it runs longer than this.
  std::optional<Milliseconds> timeout;
  // Between SIGTERM and SIGKILL when killing.
  Milliseconds kill_grace{5000};
  // A stop request kills the process tree (a cancelled build).
  std::stop_token stop;
};

inline constexpr size_t k_max_line = 64u << 10;

// How a process ended.
struct Outcome {
  int exit_code = -1;     // the exit status when it exited normally, else -1
  int signal = 0;         // the signal that terminated it, else 0
  bool timed_out = false; // killed because Spec::timeout passed
  bool stopped = false;   // killed because Spec::stop was requested
  std::string output;     // merged output with Capture::yes
  bool output_truncated = false;
  double seconds = 0;

  bool success() const { return signal == 0 && exit_code == 0 && !timed_out && !stopped; }
  // "exited with status 2", "killed by signal 9 (SIGKILL)", "timed out after 1.5s (killed by
  // signal 15 (SIGTERM))", "stopped (…)".
  std::string describe() const;
};

// A started child. Not thread-safe itself (one thread waits on it); movable. Destroying a
// Process that has not been reaped kills its group with SIGKILL and reaps it.
class Process {
public:
  // Starts the child. A missing program is ErrorKind::not_found; a missing working directory or
  // unwritable output file is ErrorKind::io; an empty argv is ErrorKind::invalid.
  static Result<Process> spawn(const Spec& spec);

  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const;

  // Delivers output until the child has exited and its output is drained, `deadline` passes or
  // the spec's stop token is triggered. The Outcome once it ended, nullopt otherwise.
  std::optional<Outcome> wait_until(std::optional<SteadyTime> deadline);

  // Kills the whole process group: SIGTERM, SIGKILL after `grace` (and to any member still
  // left), then reaps the child and returns how it ended.
  Outcome kill(Milliseconds grace);

private:
  struct State;
  explicit Process(std::unique_ptr<State> state);
  std::unique_ptr<State> m_state;
};

// spawn + wait with Spec::timeout and Spec::stop; kills the tree on either.
Result<Outcome> run(const Spec& spec);

// Runs argv with the inherited environment plus `env` overrides and returns the exit status with
// the merged output.
Result<Outcome> run_capture(std::vector<std::string> argv, std::map<std::string, std::string> env = {});

// The seam roles depend on, so they can be tested with a fake.
class ProcessRunner {
public:
  virtual ~ProcessRunner() = default;
  virtual Result<Outcome> run(const Spec& spec) = 0;
};

// Runs real processes (subprocess::run).
class SystemProcessRunner final : public ProcessRunner {
public:
  Result<Outcome> run(const Spec& spec) override;
};

} // namespace swarm::subprocess
