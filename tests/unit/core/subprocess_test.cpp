#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <stop_token>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "support.hpp"

using namespace swarm;
using namespace swarm::subprocess;
using namespace std::chrono_literals;

TEST_CASE("subprocess: argv reaches the child verbatim, no shell")
{
  auto outcome = run_capture({"printf", "%s|", "a b", "it's \"quoted\"", "$HOME", "*", "", "; rm -rf /"});
  REQUIRE(outcome.has_value());
  CHECK(outcome->success());
  CHECK(outcome->exit_code == 0);
  CHECK(outcome->output == "a b|it's \"quoted\"|$HOME|*||; rm -rf /|");
}

TEST_CASE("subprocess: environment overrides and exact environment")
{
  auto inherited = run_capture({"sh", "-c", "printf '%s/%s' \"$SWARM_TEST_VALUE\" \"${PATH:+has-path}\""},
                               {{"SWARM_TEST_VALUE", "x y=z"}});
  REQUIRE(inherited.has_value());
  CHECK(inherited->output == "x y=z/has-path");

  Spec spec;
  spec.argv = {"env"};
  spec.env_mode = EnvMode::exact;
  spec.env = {{"ONLY", "this"}};
  spec.capture = Capture::yes;
  auto exact = run(spec);
  REQUIRE(exact.has_value());
  CHECK(exact->output == "ONLY=this\n");

  spec.env = {{"BAD=NAME", "x"}};
  auto bad = run(spec);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().kind == ErrorKind::invalid);
}

TEST_CASE("subprocess: exit codes and signals are reported")
{
  auto three = run_capture({"sh", "-c", "exit 3"});
  REQUIRE(three.has_value());
  CHECK_FALSE(three->success());
  CHECK(three->exit_code == 3);
  CHECK(three->signal == 0);
  CHECK(three->describe() == "exited with status 3");

  auto killed = run_capture({"sh", "-c", "kill -TERM $$"});
  REQUIRE(killed.has_value());
  CHECK_FALSE(killed->success());
  CHECK(killed->exit_code == -1);
  CHECK(killed->signal == SIGTERM);
  CHECK(killed->describe() == "killed by signal 15 (SIGTERM)");
}

TEST_CASE("subprocess: a missing program is an error value")
{
  auto missing = run_capture({"swarm-no-such-program-anywhere"});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().kind == ErrorKind::not_found);
  CHECK(missing.error().message.find("swarm-no-such-program-anywhere") != std::string::npos);

  auto missing_path = run_capture({"/nonexistent/dir/prog"});
  REQUIRE_FALSE(missing_path.has_value());
  CHECK(missing_path.error().kind == ErrorKind::not_found);

  auto empty = run_capture({});
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().kind == ErrorKind::invalid);

  Spec spec;
  spec.argv = {"true"};
  spec.cwd = "/nonexistent/swarm/dir";
  auto bad_cwd = run(spec);
  REQUIRE_FALSE(bad_cwd.has_value());
  CHECK(bad_cwd.error().kind == ErrorKind::io);
}

TEST_CASE("subprocess: the child's PATH is searched, not ours")
{
  fs::TempDir dir("swarm-subprocess");
  REQUIRE(fs::write_file_atomic(dir / "fake-emerge", "#!/bin/sh\necho fake \"$@\"\n", 0755));
  auto outcome =
    run_capture({"fake-emerge", "--oneshot", "=a/b-1"}, {{"PATH", dir.path().string() + ":/usr/bin:/bin"}});
  REQUIRE(outcome.has_value());
  CHECK(outcome->output == "fake --oneshot =a/b-1\n");
}

TEST_CASE("subprocess: output lines, chunks, file, working directory and stdin")
{
  fs::TempDir dir("swarm-subprocess");
  std::vector<std::string> lines;
  std::string chunks;
  Spec spec;
  spec.argv = {"sh", "-c", "printf 'one\\ntwo\\n'; echo three >&2; printf 'no newline'"};
  spec.on_line = [&](std::string_view line) { lines.emplace_back(line); };
  spec.on_chunk = [&](std::string_view chunk) { chunks.append(chunk); };
  spec.output_file = dir / "build.log";
  auto outcome = run(spec);
  REQUIRE(outcome.has_value());
  CHECK(outcome->success());
  CHECK(lines == std::vector<std::string>{"one", "two", "three", "no newline"});
  CHECK(chunks == "one\ntwo\nthree\nno newline");
  CHECK(fs::read_file(dir / "build.log") == "one\ntwo\nthree\nno newline");

  // File only: the child writes the file itself.
  Spec to_file;
  to_file.argv = {"sh", "-c", "echo out; echo err >&2"};
  to_file.output_file = dir / "only.log";
  REQUIRE(run(to_file).has_value());
  CHECK(fs::read_file(dir / "only.log") == "out\nerr\n");

  Spec in_dir;
  in_dir.argv = {"pwd"};
  in_dir.cwd = dir.path();
  in_dir.capture = Capture::yes;
  auto pwd = run(in_dir);
  REQUIRE(pwd.has_value());
  CHECK(pwd->output == std::filesystem::canonical(dir.path()).string() + "\n");

  auto cat = run_capture({"cat"}); // stdin is /dev/null: returns at once
  REQUIRE(cat.has_value());
  CHECK(cat->success());
  CHECK(cat->output.empty());
}

TEST_CASE("subprocess: capture limit truncates")
{
  Spec spec;
  spec.argv = {"sh", "-c", "printf 0123456789"};
  spec.capture = Capture::yes;
  spec.capture_limit = 4;
  auto outcome = run(spec);
  REQUIRE(outcome.has_value());
  CHECK(outcome->output == "0123");
  CHECK(outcome->output_truncated);
}

TEST_CASE("subprocess: descriptors of the parent are not inherited")
{
  // Opened without O_CLOEXEC on purpose: closefrom in the child must still close it.
  const int leaked = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaked >= 3);
  auto outcome =
    run_capture({"sh", "-c", fmt::format("if [ -e /proc/$$/fd/{} ]; then echo leaked; else echo closed; fi", leaked)});
  ::close(leaked);
  REQUIRE(outcome.has_value());
  CHECK(outcome->output == "closed\n");
}

TEST_CASE("subprocess: a timeout kills the whole process tree")
{
  std::string grandchild;
  Spec spec;
  spec.argv = {"sh", "-c", "sleep 30 & echo $!; wait"};
  spec.on_line = [&](std::string_view line) { grandchild = std::string(line); };
  spec.timeout = 300ms;
  spec.kill_grace = 2000ms;
  const auto started = std::chrono::steady_clock::now();
  auto outcome = run(spec);
  REQUIRE(outcome.has_value());
  CHECK(std::chrono::steady_clock::now() - started < 1500ms);
  CHECK(outcome->timed_out);
  CHECK_FALSE(outcome->success());
  CHECK(outcome->signal == SIGTERM);
  CHECK(outcome->describe().starts_with("timed out after"));
  const auto pid = strings::parse_int(grandchild);
  REQUIRE(pid.has_value());
  CHECK(swarm::test::process_gone(static_cast<pid_t>(*pid)));
}

TEST_CASE("subprocess: a tree ignoring SIGTERM gets SIGKILL after the grace")
{
  std::string grandchild;
  Spec spec;
  spec.argv = {"sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"};
  spec.on_line = [&](std::string_view line) { grandchild = std::string(line); };
  spec.timeout = 200ms;
  spec.kill_grace = 150ms;
  auto outcome = run(spec);
  REQUIRE(outcome.has_value());
  CHECK(outcome->timed_out);
  CHECK(outcome->signal == SIGKILL);
  const auto pid = strings::parse_int(grandchild);
  REQUIRE(pid.has_value());
  CHECK(swarm::test::process_gone(static_cast<pid_t>(*pid)));
}

TEST_CASE("subprocess: a stop request kills the build")
{
  std::stop_source source;
  Spec spec;
  spec.argv = {"sh", "-c", "echo ready; sleep 30"};
  spec.stop = source.get_token();
  spec.on_line = [&](std::string_view line) {
    if (line == "ready") {
      source.request_stop();
    }
  };
  spec.kill_grace = 1000ms;
  auto outcome = run(spec);
  REQUIRE(outcome.has_value());
  CHECK(outcome->stopped);
  CHECK_FALSE(outcome->timed_out);
  CHECK(outcome->signal == SIGTERM);
  CHECK(outcome->describe().starts_with("stopped"));
}

TEST_CASE("subprocess: Process can be waited with a deadline, then killed")
{
  Spec spec;
  spec.argv = {"sleep", "30"};
  auto process = Process::spawn(spec);
  REQUIRE(process.has_value());
  CHECK(process->pid() > 0);
  CHECK_FALSE(process->wait_until(std::chrono::steady_clock::now() + 50ms).has_value());
  const Outcome outcome = process->kill(1000ms);
  CHECK(outcome.signal == SIGTERM);
}

TEST_CASE("subprocess: several threads run processes at once")
{
  std::vector<std::thread> threads;
  std::atomic<int> correct{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([i, &correct] {
      for (int j = 0; j < 5; ++j) {
        auto outcome = run_capture({"sh", "-c", "echo \"$N\"; exit \"$N\""}, {{"N", std::to_string(i)}});
        if (outcome && outcome->output == fmt::format("{}\n", i) && outcome->exit_code == i) {
          ++correct;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(correct == 40);
}

TEST_CASE("subprocess: SystemProcessRunner behind the ProcessRunner seam")
{
  SystemProcessRunner real;
  ProcessRunner& runner = real;
  Spec spec;
  spec.argv = {"sh", "-c", "echo hi"};
  spec.capture = Capture::yes;
  auto outcome = runner.run(spec);
  REQUIRE(outcome.has_value());
  CHECK(outcome->output == "hi\n");
}

TEST_CASE("subprocess: unset variables of the inherited environment never reach the child")
{
  Spec spec;
  spec.argv = {"sh", "-c", "printf '%s|%s|%s' \"${HOME-unset}\" \"${PATH:+has-path}\" \"$KEPT\""};
  spec.unset = {"HOME", "KEPT"};
  spec.env = {{"KEPT", "given"}}; // a variable set explicitly is the caller's choice: it stays
  spec.capture = Capture::yes;
  auto outcome = run(spec);
  REQUIRE(outcome.has_value());
  CHECK(outcome->output == "unset|has-path|given");
}
