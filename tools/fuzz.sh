#!/bin/sh
# Builds the libFuzzer targets (fuzz/CMakeLists.txt, clang-16 with libc++, ASan+UBSan) and runs
# each over its seed corpus and past crashes for SECONDS (default 15), one target at a time.
#   tools/fuzz.sh [SECONDS] [BUILD_DIR]      (BUILD_DIR default: build/fuzz)
# FUZZ_TARGETS="atom version" limits the run to those targets; FUZZ_SEED and FUZZ_RUNS fix the
# libFuzzer seed and cap the inputs per target (repeatable runs, as ctest's). New interesting inputs go to
# BUILD_DIR/work/<target> (the seeds in tests/fuzz/corpus stay as they are); crash inputs to
# BUILD_DIR/crashes/<target>/, printed at the end. Exit status: 0 when no target crashed, 1 when
# one did, 2 on a build failure or when clang-16 is not installed (tools/setup.sh installs it).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-15}
build_dir=${2:-build/fuzz}
case "$seconds" in
'' | *[!0-9]*)
  echo "swarm: fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2
  exit 2
  ;;
esac

compiler=${FUZZ_CXX:-clang++-16}
if ! command -v "$compiler" >/dev/null 2>&1; then
  echo "swarm: fuzz.sh: $compiler not found (tools/setup.sh installs clang-16 and libc++-16)" >&2
  exit 2
fi
launcher=""
if command -v ccache >/dev/null 2>&1; then
  launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
fi

# Readable stack traces in crash reports (clang-16's runtime looks for llvm-16's symbolizer only).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  symbolizer=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
  if [ -n "$symbolizer" ]; then
    export ASAN_SYMBOLIZER_PATH="$symbolizer"
  fi
fi

start=$(date +%s)
if ! cmake -S fuzz -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER="$compiler" $launcher >"$build_dir.configure.log" 2>&1; then
  cat "$build_dir.configure.log" >&2
  echo "swarm: fuzz.sh: configuring the fuzz build failed" >&2
  exit 2
fi
rm -f "$build_dir.configure.log"
if ! cmake --build "$build_dir" -j2 >"$build_dir/build.log" 2>&1; then
  tail -n 60 "$build_dir/build.log" >&2
  echo "swarm: fuzz.sh: building the fuzz targets failed (log: $build_dir/build.log)" >&2
  exit 2
fi
built=$(date +%s)
echo "fuzz: built in $((built - start)) s; running each target for $seconds s"

targets=${FUZZ_TARGETS:-$(cat "$build_dir/targets.txt" | tr ';' ' ')}
failed=""
for target in $targets; do
  work="$build_dir/work/$target"
  crashes="$build_dir/crashes/$target"
  mkdir -p "$work" "$crashes" "$build_dir/logs"
  log="$build_dir/logs/$target.log"
  # Inputs: the working corpus (written to), the seeds, the past crashes.
  set -- "$work" "$root/tests/fuzz/corpus/$target"
  if [ -d "$root/tests/fuzz/regressions/$target" ]; then
    set -- "$@" "$root/tests/fuzz/regressions/$target"
  fi
  # FUZZ_SEED and FUZZ_RUNS (ctest sets both) make a run repeatable: the same mutations each time,
  # at most FUZZ_RUNS inputs within the SECONDS; exploring is for runs without them.
  if "$build_dir/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    ${FUZZ_SEED:+-seed=$FUZZ_SEED} ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} \
    -artifact_prefix="$crashes/" -print_final_stats=1 "$@" >"$log" 2>&1; then
    echo "fuzz: $target: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz: $target: FAILED (log: $log)"
    grep -E '^==[0-9]+==ERROR|^SUMMARY|what\(\)|runtime error|Test unit written' "$log" | head -n 10 | sed 's/^/  /'
    failed="$failed $target"
  fi
done
echo "fuzz: ran in $(($(date +%s) - built)) s"
if [ -n "$failed" ]; then
  echo "swarm: fuzz.sh: crashes in:$failed; inputs under $build_dir/crashes/ (add each to tests/fuzz/regressions/<target>/ with the fix)" >&2
  exit 1
fi
