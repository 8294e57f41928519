#!/bin/sh
# The unit tests and the daemons' end-to-end tests under a sanitizer. Builds swarm and
# swarm_unit with -DSWARM_SANITIZE=KIND (address: ASan+UBSan; thread: TSan) into a build
# directory of their own, runs every unit test and the end-to-end tests below, and fails when
# any process wrote a sanitizer report: the test binary, every `swarm` a test started and every
# CLI verb it ran log to one report directory.
#
#   sh tools/sanitize.sh address|thread [BUILD_DIR]     # BUILD_DIR defaults to build/sanitize-KIND
#   SWARM_SANITIZE_E2E=all sh tools/sanitize.sh address  # every end-to-end test but the real-Portage ones
#
# Which end-to-end tests, and why not all of them in CI: a sanitized `swarm` costs ~0.3 CPU-s to
# start (ASan's shadow memory and global registration; ~0.03 s unsanitized) and tests that run
# hundreds of short CLI and fake-emerge processes cost 10-15 times their normal CPU time — every
# end-to-end test under ASan was 25 CPU-minutes, over CI's budget on 2 cores. The selection keeps
# the long-lived daemons under load: orchestrator, drones and gateway with concurrent claims,
# uploads, long-polls, fail-over, hostile connections, TLS and the full disk. test_swarm_build and
# test_swarm_faults pass under TSan too (SWARM_SANITIZE_E2E=all) but did not fit CI's 30 minutes.
set -eu
kind=${1:-}
case $kind in
  address) scale=3 ;;
  thread) scale=5 ;;
  *)
    echo "swarm: usage: tools/sanitize.sh address|thread [BUILD_DIR]" >&2
    exit 2
    ;;
esac
e2e='api_validation|hostile_clients|drone_lifecycle|gateway_failover|logs_follow|disk_full|tls|secrets'
if [ "${SWARM_SANITIZE_E2E:-}" = all ]; then
  e2e='[a-z_]+'
fi
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${2:-$src/build/sanitize-$kind}
reports=$dir/sanitizer-reports

# -O1: sanitized code at -O0 runs several times slower for no cheaper build. Not position
# independent: a PIE this size spends most of its start-up in dynamic relocations.
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -fno-pie" \
  -DCMAKE_EXE_LINKER_FLAGS=-no-pie -DSWARM_SANITIZE="$kind" >/dev/null
# Two compile jobs: this runs beside the other tests (ctest -j4 on 2 cores).
cmake --build "$dir" --target swarm swarm_unit -j "${SWARM_SANITIZE_JOBS:-2}"

rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:strict_string_checks=1:malloc_context_size=10"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
# io_sync=2: a write to any descriptor happens before every later read. Tests hand state from a
# server's worker to the test through a request and its answer on a socket, an order TSan does
# not see otherwise (two unit tests were reported for it).
export TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1:halt_on_error=0:io_sync=2:suppressions=$src/tools/tsan.supp"
export SWARM_TEST_TIME_SCALE=$scale

status=0
# The unit tests in one process (a process per test case would pay the start-up 466 times).
(cd "$dir/tests" && ./swarm_unit --no-intro=true --duration=false) || status=$?
ctest --test-dir "$dir" --output-on-failure -j "${SWARM_SANITIZE_JOBS:-2}" -L e2e -LE realportage \
  -R "^e2e\.test_($e2e)\$" || status=$?

found=$(find "$reports" -type f | wc -l)
if [ "$found" -gt 0 ]; then
  for report in "$reports"/*; do
    echo "==> $report <=="
    head -n 80 "$report"
  done
  echo "swarm: $found $kind sanitizer report(s) in $reports" >&2
  status=1
fi
exit $status
