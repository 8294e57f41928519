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
bad=""
for file in $files; do
  if ! "$CLANG_FORMAT" "$file" | cmp -s - "$file"; then
    bad="$bad $file"
  fi
done
if [ -n "$bad" ]; then
  echo "swarm: error: not formatted as .clang-format says (run tools/check-format.sh --fix):$bad" >&2
  exit 1
fi
echo "format: every C++ file matches .clang-format"
