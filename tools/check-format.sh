#!/bin/sh
# Fails, listing the files, when a C++ source differs from what clang-format 14 makes of it
# (.clang-format). `tools/check-format.sh --fix` rewrites them instead.
set -eu
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
command -v "$CLANG_FORMAT" >/dev/null 2>&1 || CLANG_FORMAT=clang-format
files=$(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' 2>/dev/null ||
  find src tests bench -name '*.cpp' -o -name '*.hpp')
existing=""
for file in $files; do
  [ -f "$file" ] && existing="$existing $file"
done
files=$existing
if [ "${1:-}" = "--fix" ]; then
  # shellcheck disable=SC2086
  "$CLANG_FORMAT" -i $files
  exit 0
fi
# One clang-format process for every file (a process per file took minutes on a loaded machine).
# shellcheck disable=SC2086
if ! "$CLANG_FORMAT" --dry-run --Werror $files 2>/tmp/swarm-format.$$; then
  bad=$(grep -o '^[^:]*\.[ch]pp' /tmp/swarm-format.$$ | sort -u | tr '\n' ' ')
  rm -f /tmp/swarm-format.$$
  echo "swarm: error: not formatted as .clang-format says (run tools/check-format.sh --fix): $bad" >&2
  exit 1
fi
rm -f /tmp/swarm-format.$$
echo "format: every C++ file matches .clang-format"
