#!/bin/sh
# Runs every test: the C binaries build/test_*, then tests/*.sh and tests/*.py.
# Each prints "PASS: name" / "FAIL: name: why" lines; this script counts them
# and ends with "N passed, N failed", exiting non-zero on any failure (or if a
# test program itself failed without reporting a FAIL line).
BUILD=${1:-build}
export RAM_BUILD="$BUILD"
cd "$(dirname "$0")/.." || exit 2
log=$(mktemp)
crashed=0
run() {
  name=$1; shift
  echo "== $name"
  "$@" >"$log.one" 2>&1
  rc=$?
  cat "$log.one"; cat "$log.one" >>"$log"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$log.one"; then
    echo "FAIL: $name: exited with status $rc"
    echo "FAIL: $name: exited with status $rc" >>"$log"
  fi
}
for t in "$BUILD"/test_*; do
  [ -x "$t" ] || continue
  run "$(basename "$t")" "$t"
done
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  run "$(basename "$t")" sh "$t"
done
for t in tests/test_*.py; do
  [ -f "$t" ] || continue
  run "$(basename "$t")" python3 "$t"
done
passed=$(grep -c '^PASS: ' "$log")
failed=$(grep -c '^FAIL: ' "$log")
rm -f "$log" "$log.one"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
