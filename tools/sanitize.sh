#!/bin/sh
# The unit and end-to-end tests under a sanitizer. Builds swarm and swarm_unit with
# -DSWARM_SANITIZE=KIND (address: ASan+UBSan; thread: TSan) into a build directory of their own,
# runs that directory's tests (all but the real-Portage ones, the whole-demo run and the nested
# sanitizer and fuzz runs), and fails when any process wrote a sanitizer report: the test
# binaries, every `swarm` a test started and every CLI verb it ran log to one report directory.
#
#   sh tools/sanitize.sh address|thread [BUILD_DIR]     # BUILD_DIR defaults to build/sanitize-KIND
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
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${2:-$src/build/sanitize-$kind}
reports=$dir/sanitizer-reports

cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWARM_SANITIZE="$kind" >/dev/null
# Two compile jobs: this runs beside the other tests (ctest -j4 on 2 cores).
cmake --build "$dir" --target swarm swarm_unit -j "${SWARM_SANITIZE_JOBS:-2}"

rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1:halt_on_error=0"
export SWARM_TEST_TIME_SCALE=$scale

status=0
ctest --test-dir "$dir" --output-on-failure -j "${SWARM_SANITIZE_JOBS:-2}" \
  -LE 'realportage|sanitize|fuzz' -E '^(e2e\.test_demo|format)$' || status=$?

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
