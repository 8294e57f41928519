#include "core/subprocess.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"

extern char** environ;

namespace swarm::subprocess {

namespace {

constexpr std::string_view k_default_path = "/usr/local/bin:/usr/bin:/bin";
// After the child exits, output is still read until every writer has closed the pipe; a
// background process it left behind may hold the pipe forever, so stop waiting after this.
constexpr Milliseconds k_drain_after_exit{1000};
// Without pidfd (kernels before 5.3) exit is noticed by polling at this interval.
constexpr Milliseconds k_poll_slice{20};
// How long a kill waits for the rest of the tree to die after the leader was reaped.
constexpr Milliseconds k_group_exit_wait{2000};

std::string signal_name(int signal)
{
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation == nullptr ? fmt::format("signal {}", signal) : fmt::format("SIG{}", abbreviation);
}

bool has_nul(std::string_view text)
{
  return text.find('\0') != std::string_view::npos;
}

// The child's environment as NAME=VALUE strings.
Result<std::vector<std::string>> build_environment(const Spec& spec)
{
  std::vector<std::string> out;
  for (const auto& [name, value] : spec.env) {
    if (name.empty() || name.find('=') != std::string::npos || has_nul(name) || has_nul(value)) {
      return fail(ErrorKind::invalid, "invalid environment variable name or value: {:?}", name);
    }
  }
  if (spec.env_mode == EnvMode::inherit) {
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      const std::string_view text(*entry);
      const std::string_view name = text.substr(0, text.find('='));
      if (!spec.env.contains(std::string(name)) &&
          std::find(spec.unset.begin(), spec.unset.end(), name) == spec.unset.end()) {
        out.emplace_back(text);
      }
    }
  }
  for (const auto& [name, value] : spec.env) {
    out.push_back(name + "=" + value);
  }
  return out;
}

bool is_executable_file(const std::filesystem::path& path)
{
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// posix_spawnp would search the parent's PATH; the child's may differ (tests put a fake emerge
// first on the child's PATH), so search it here.
Result<std::filesystem::path> find_program(const std::string& program, const std::vector<std::string>& env,
                                           const std::filesystem::path& cwd)
{
  if (program.empty()) {
    return fail(ErrorKind::invalid, "empty program name");
  }
  if (program.find('/') != std::string::npos) {
    return std::filesystem::path(program);
  }
  std::string_view search = k_default_path;
  for (const auto& entry : env) {
    if (entry.starts_with("PATH=")) {
      search = std::string_view(entry).substr(5);
    }
  }
  size_t start = 0;
  while (start <= search.size()) {
    size_t end = search.find(':', start);
    if (end == std::string_view::npos) {
      end = search.size();
    }
    const std::string_view dir = search.substr(start, end - start);
    const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    // A relative PATH entry is relative to the child's working directory.
    const std::filesystem::path checked = candidate.is_relative() && !cwd.empty() ? cwd / candidate : candidate;
    if (is_executable_file(checked)) {
      return candidate;
    }
    start = end + 1;
  }
  return fail(ErrorKind::not_found, "program not found: {} (searched PATH={})", program, search);
}

// True while a process of group `pgid` is alive (zombies do not count: PID 1 of a container
// may never reap the orphans it inherits). Reads /proc; only used when killing.
bool group_has_live_members(pid_t pgid)
{
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const auto stat = fs::read_file(entry.path() / "stat", 4096);
    if (!stat) {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp …"; comm may contain anything, so parse after the last ')'.
    const size_t close = stat->rfind(')');
    if (close == std::string::npos) {
      continue;
    }
    const auto fields = strings::split_any(std::string_view(*stat).substr(close + 1));
    if (fields.size() < 3) {
      continue;
    }
    const auto group = strings::parse_int(fields[2]);
    if (group && *group == pgid && fields[0] != "Z" && fields[0] != "X") {
      return true;
    }
  }
  return false;
}

// RAII for the posix_spawn attribute objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attributes{};
  SpawnSetup()
  {
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup()
  {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

} // namespace

std::string Outcome::describe() const
{
  std::string status;
  if (signal != 0) {
    status = fmt::format("killed by signal {} ({})", signal, signal_name(signal));
  } else {
    status = fmt::format("exited with status {}", exit_code);
  }
  if (timed_out) {
    return fmt::format("timed out after {:.1f}s ({})", seconds, status);
  }
  if (stopped) {
    return fmt::format("stopped ({})", status);
  }
  return status;
}

struct Process::State {
  pid_t pid = -1;
  UniqueFd pidfd;  // readable once the child exits; invalid on kernels without pidfd
  UniqueFd output; // read end of the output pipe; invalid when nothing is read
  UniqueFd file;   // output file written by us (when output is also read for callbacks)
  UniqueFd wake;   // eventfd written when a stop is requested
  std::function<void(std::string_view)> on_line;
  std::function<void(std::string_view)> on_chunk;
  Capture capture = Capture::no;
  size_t capture_limit = 0;
  std::stop_token stop;
  std::optional<std::stop_callback<std::function<void()>>> stop_callback;
  std::string partial_line;
  Outcome outcome;
  bool exited = false; // reaped
  std::optional<SteadyTime> drain_deadline;
  SteadyTime started = std::chrono::steady_clock::now();

  void deliver(std::string_view chunk)
  {
    if (file) {
      // Best effort: a full disk must not stop the build from being waited for.
      std::string_view rest = chunk;
      while (!rest.empty()) {
        const ssize_t written = ::write(file.get(), rest.data(), rest.size());
        if (written < 0 && errno == EINTR) {
          continue;
        }
        if (written <= 0) {
          break;
        }
        rest.remove_prefix(static_cast<size_t>(written));
      }
    }
    if (capture == Capture::yes) {
      const size_t room = capture_limit - std::min(capture_limit, outcome.output.size());
      outcome.output.append(chunk.substr(0, room));
      if (chunk.size() > room) {
        outcome.output_truncated = true;
      }
    }
    if (on_chunk) {
      on_chunk(chunk);
    }
    if (on_line) {
      while (!chunk.empty()) {
        const size_t newline = chunk.find('\n');
        if (newline == std::string_view::npos) {
          partial_line.append(chunk);
          break;
        }
        partial_line.append(chunk.substr(0, newline));
        on_line(partial_line);
        partial_line.clear();
        chunk.remove_prefix(newline + 1);
      }
      while (partial_line.size() >= k_max_line) {
        on_line(std::string_view(partial_line).substr(0, k_max_line));
        partial_line.erase(0, k_max_line);
      }
    }
  }

  void close_output()
  {
    output.reset();
    if (on_line && !partial_line.empty()) {
      on_line(partial_line);
      partial_line.clear();
    }
  }

  // Reads what is available; closes the pipe at end of file.
  void read_output()
  {
    char buffer[65536];
    while (output) {
      const ssize_t got = ::read(output.get(), buffer, sizeof(buffer));
      if (got > 0) {
        deliver(std::string_view(buffer, static_cast<size_t>(got)));
        continue;
      }
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      }
      close_output();
    }
  }

  void record_exit(const siginfo_t& info)
  {
    exited = true;
    outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (info.si_code == CLD_EXITED) {
      outcome.exit_code = info.si_status;
    } else {
      outcome.signal = info.si_status; // CLD_KILLED or CLD_DUMPED
    }
    pidfd.reset();
  }

  enum class Reap { yes, no };

  // True once the child has exited; with Reap::no it is left a zombie (its pid, and so its
  // process group id, cannot be reused while we still signal the group).
  bool check_exit(Reap reap)
  {
    if (exited) {
      return true;
    }
    siginfo_t info{};
    const int flags = WEXITED | WNOHANG | (reap == Reap::no ? WNOWAIT : 0);
    int result = 0;
    do {
      result = ::waitid(P_PID, static_cast<id_t>(pid), &info, flags);
    } while (result < 0 && errno == EINTR);
    if (result < 0 || info.si_pid == 0) {
      return false;
    }
    if (reap == Reap::no) {
      return true;
    }
    record_exit(info);
    return true;
  }

  enum class Until { ended, deadline, stop };

  // The event loop: output, exit and stop requests, until the child has ended (exited and
  // output drained) or `deadline` passes. With Reap::no it returns once the child has exited,
  // without reaping it or draining.
  Until pump(std::optional<SteadyTime> deadline, Reap reap, bool watch_stop)
  {
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      if (reap == Reap::no ? check_exit(Reap::no) : (check_exit(Reap::yes) && !output)) {
        return Until::ended;
      }
      if (exited && output) {
        if (!drain_deadline) {
          drain_deadline = now + k_drain_after_exit;
        }
        if (now >= *drain_deadline) {
          close_output();
          return Until::ended;
        }
      }
      if (watch_stop && stop.stop_requested()) {
        return Until::stop;
      }
      if (deadline && now >= *deadline) {
        return Until::deadline;
      }

      std::optional<SteadyTime> wake_at = deadline;
      if (drain_deadline && (!wake_at || *drain_deadline < *wake_at)) {
        wake_at = drain_deadline;
      }
      if (!exited && !pidfd && (!wake_at || now + k_poll_slice < *wake_at)) {
        wake_at = now + k_poll_slice;
      }
      int timeout_ms = -1;
      if (wake_at) {
        const auto left = std::chrono::ceil<Milliseconds>(*wake_at - now).count();
        timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
      }

      pollfd fds[3];
      nfds_t count = 0;
      const int output_index = output ? static_cast<int>(count) : -1;
      if (output) {
        fds[count++] = pollfd{output.get(), POLLIN, 0};
      }
      if (!exited && pidfd) {
        fds[count++] = pollfd{pidfd.get(), POLLIN, 0};
      }
      if (watch_stop && wake) {
        fds[count++] = pollfd{wake.get(), POLLIN, 0};
      }
      const int ready = ::poll(fds, count, timeout_ms);
      if (ready < 0 && errno != EINTR) {
        return Until::deadline;
      }
      if (ready > 0 && output_index >= 0 && (fds[output_index].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        read_output();
      }
    }
  }

  void kill_group(int signal) const
  {
    // Negative pid: the whole process group, which the child leads (POSIX_SPAWN_SETPGROUP).
    ::kill(-pid, signal);
  }

  Outcome kill(Milliseconds grace)
  {
    if (!exited) {
      kill_group(SIGTERM);
      pump(std::chrono::steady_clock::now() + grace, Reap::no, false);
      // The leader has exited (unreaped) or ignored SIGTERM: either way the group id is still
      // ours, so sweep whatever is left of the tree.
      kill_group(SIGKILL);
      pump(std::nullopt, Reap::yes, false);
      // SIGKILL is delivered asynchronously: wait until the tree is really gone, so that a
      // caller deleting the build directory next does not race a dying process.
      const auto give_up = std::chrono::steady_clock::now() + k_group_exit_wait;
      while (group_has_live_members(pid) && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(Milliseconds{2});
      }
    } else {
      pump(std::nullopt, Reap::yes, false);
    }
    return outcome;
  }
};

Process::Process(std::unique_ptr<State> state) : m_state(std::move(state))
{}

Process::~Process()
{
  if (m_state && !m_state->exited) {
    m_state->kill(Milliseconds{0});
  }
}

Process::Process(Process&& other) noexcept = default;

Process& Process::operator=(Process&& other) noexcept
{
  if (this != &other) {
    if (m_state && !m_state->exited) {
      m_state->kill(Milliseconds{0});
    }
    m_state = std::move(other.m_state);
  }
  return *this;
}

pid_t Process::pid() const
{
  return m_state ? m_state->pid : -1;
}

std::optional<Outcome> Process::wait_until(std::optional<SteadyTime> deadline)
{
  if (!m_state) {
    return std::nullopt;
  }
  if (m_state->pump(deadline, State::Reap::yes, true) == State::Until::ended) {
    return m_state->outcome;
  }
  return std::nullopt;
}

Outcome Process::kill(Milliseconds grace)
{
  if (!m_state) {
    return Outcome{};
  }
  return m_state->kill(grace);
}

Result<Process> Process::spawn(const Spec& spec)
{
  if (spec.argv.empty()) {
    return fail(ErrorKind::invalid, "cannot run an empty command");
  }
  for (const auto& arg : spec.argv) {
    if (has_nul(arg)) {
      return fail(ErrorKind::invalid, "argument of {} contains a NUL byte", spec.argv.front());
    }
  }
  auto env = build_environment(spec);
  if (!env) {
    return fail(env.error());
  }
  if (!spec.cwd.empty()) {
    struct stat info {};
    if (::stat(spec.cwd.c_str(), &info) != 0) {
      return fail(ErrorKind::io, "cannot run {} in {}: {}", spec.argv.front(), spec.cwd.string(),
                  fs::errno_text(errno));
    }
    if (!S_ISDIR(info.st_mode)) {
      return fail(ErrorKind::io, "cannot run {} in {}: not a directory", spec.argv.front(), spec.cwd.string());
    }
  }
  auto program = find_program(spec.argv.front(), *env, spec.cwd);
  if (!program) {
    return fail(program.error());
  }

  auto state = std::make_unique<State>();
  state->on_line = spec.on_line;
  state->on_chunk = spec.on_chunk;
  state->capture = spec.capture;
  state->capture_limit = spec.capture_limit;
  state->stop = spec.stop;

  // Every descriptor we create is close-on-exec, so a child spawned by another thread at the
  // same moment cannot inherit it; closefrom(3) in the child covers descriptors opened by
  // libraries without O_CLOEXEC.
  UniqueFd file;
  if (!spec.output_file.empty()) {
    file.reset(::open(spec.output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file) {
      return fail(ErrorKind::io, "cannot open output file {}: {}", spec.output_file.string(), fs::errno_text(errno));
    }
  }
  const bool read_in_parent = spec.on_line || spec.on_chunk || spec.capture == Capture::yes;
  UniqueFd write_end;
  if (read_in_parent) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      return fail(ErrorKind::io, "cannot create a pipe: {}", fs::errno_text(errno));
    }
    state->output.reset(pipe_fds[0]);
    write_end.reset(pipe_fds[1]);
    // The child's end must block: programs do not expect EAGAIN on stdout.
    ::fcntl(write_end.get(), F_SETFL, ::fcntl(write_end.get(), F_GETFL) & ~O_NONBLOCK);
    state->file = std::move(file);
  }

  SpawnSetup setup;
  ::posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  const int out_fd = read_in_parent ? write_end.get() : file.get();
  if (out_fd >= 0) {
    ::posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 1);
    ::posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 2);
  } else {
    ::posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_adddup2(&setup.actions, 1, 2);
  }
  if (!spec.cwd.empty()) {
    ::posix_spawn_file_actions_addchdir_np(&setup.actions, spec.cwd.c_str());
  }
  ::posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);

  // Own process group (so the tree can be killed), default signal dispositions and an empty
  // mask: the daemon may ignore SIGPIPE or block signals, which a child would otherwise inherit.
  sigset_t all_signals;
  sigset_t no_signals;
  ::sigfillset(&all_signals);
  ::sigemptyset(&no_signals);
  ::posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  ::posix_spawnattr_setpgroup(&setup.attributes, 0);
  ::posix_spawnattr_setsigdefault(&setup.attributes, &all_signals);
  ::posix_spawnattr_setsigmask(&setup.attributes, &no_signals);

  std::vector<char*> argv;
  for (const auto& arg : spec.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : *env) {
    envp.push_back(const_cast<char*>(entry.c_str()));
  }
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int error_number =
    ::posix_spawn(&pid, program->c_str(), &setup.actions, &setup.attributes, argv.data(), envp.data());
  if (error_number != 0) {
    if (error_number == ENOENT) {
      return fail(ErrorKind::not_found, "program not found: {}", program->string());
    }
    return fail(ErrorKind::io, "cannot run {}: {}", program->string(), fs::errno_text(error_number));
  }
  write_end.reset();
  state->pid = pid;
  state->started = std::chrono::steady_clock::now();
  // Raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C". Fails (ENOSYS) before Linux 5.3,
  // where exit is noticed by polling instead.
  state->pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (spec.stop.stop_possible()) {
    state->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    const int wake_fd = state->wake.get();
    state->stop_callback.emplace(spec.stop, std::function<void()>([wake_fd] {
                                   const uint64_t one = 1;
                                   [[maybe_unused]] const auto ignored = ::write(wake_fd, &one, sizeof(one));
                                 }));
  }
  return Process(std::move(state));
}

Result<Outcome> run(const Spec& spec)
{
  auto process = Process::spawn(spec);
  if (!process) {
    return fail(process.error());
  }
  std::optional<SteadyTime> deadline;
  if (spec.timeout) {
    deadline = std::chrono::steady_clock::now() + *spec.timeout;
  }
  if (auto outcome = process->wait_until(deadline)) {
    return *outcome;
  }
  const bool stopped = spec.stop.stop_requested();
  Outcome outcome = process->kill(spec.kill_grace);
  outcome.timed_out = !stopped;
  outcome.stopped = stopped;
  return outcome;
}

Result<Outcome> run_capture(std::vector<std::string> argv, std::map<std::string, std::string> env)
{
  Spec spec;
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  spec.capture = Capture::yes;
  return run(spec);
}

Result<Outcome> SystemProcessRunner::run(const Spec& spec)
{
  return subprocess::run(spec);
}

} // namespace swarm::subprocess
