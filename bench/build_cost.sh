#!/bin/sh
# What a clean build costs: configures an empty build directory and times `cmake --build` of
# everything (the swarm binary, the unit tests, the benchmarks), printing user+sys CPU time —
# the figure that does not depend on how many cores there are — and wall time.
#
#   sh bench/build_cost.sh              # the default build (RelWithDebInfo, unity batches)
#   sh bench/build_cost.sh --baseline   # also without unity batches, and the ratio of the two
#   EXTRA="-DSWARM_SANITIZE=address" sh bench/build_cost.sh
set -eu
cd "$(dirname "$0")/.."
target_cpu_minutes=8

measure() { # name, cmake args…
  name=$1
  shift
  dir=$(mktemp -d /tmp/swarm-build-cost.XXXXXX)
  # shellcheck disable=SC2086
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" ${EXTRA:-} >/dev/null
  start=$(date +%s.%N)
  # user and sys of the children (every compiler and linker), from the shell's own accounting
  sh -c "cmake --build '$dir' >/dev/null && times" >"$dir/times"
  end=$(date +%s.%N)
  cpu=$(awk 'NR==2 { split($1, u, "m"); split($2, s, "m"); print (u[1] * 60 + u[2]) + (s[1] * 60 + s[2]) }' "$dir/times")
  rm -rf "$dir"
  awk -v name="$name" -v cpu="$cpu" -v wall="$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
    -v cores="$(nproc)" 'BEGIN { printf "%-10s %6.1f CPU-minutes (user+sys)   %5.1f wall minutes   on %d cores\n",
                                  name, cpu / 60, wall / 60, cores }'
  eval "cpu_$name=$cpu"
}

measure default
awk -v cpu="$cpu_default" -v target="$target_cpu_minutes" \
  'BEGIN { printf "target     %6d CPU-minutes: %s\n", target, cpu / 60 <= target ? "met" : "MISSED" }'
if [ "${1:-}" = "--baseline" ]; then
  measure no_unity -DSWARM_UNITY=OFF
  awk -v a="$cpu_default" -v b="$cpu_no_unity" \
    'BEGIN { printf "ratio      %6.2f (unity batches / file by file)\n", a / b }'
fi
