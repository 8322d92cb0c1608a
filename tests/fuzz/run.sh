#!/bin/sh
# Runs libFuzzer targets for SECONDS each, two at a time (CI has 2 cores), or
# one at a time with FUZZ_JOBS=1 (tests/run.sh, beside the test suites):
#   sh tests/fuzz/run.sh FUZZ_BUILD SECONDS TARGET...
# (make fuzz, and make test through tests/run.sh). RAM_BUILD names the folder
# with the vocabulary and models/ the targets read. Seeds come from
# tests/fuzz/corpus/T (read only); new inputs go to FUZZ_BUILD/corpus/T, a
# crash, leak, timeout or OOM input to FUZZ_BUILD/T-crash-* (-leak-, -timeout-,
# -oom-). Prints one line per target for tests/run.sh to count:
#   PASS: fuzz_T (N execs in S s)
#   FAIL: fuzz_T: crash input FUZZ_BUILD/T-crash-... (log FUZZ_BUILD/fuzz_T.log)
# and exits non-zero on any failure. Once fixed, copy the input into
# tests/fuzz/corpus/T: test_fuzz_corpus then replays it in every make test.
[ $# -ge 3 ] || { echo "usage: $0 FUZZ_BUILD SECONDS TARGET..." >&2; exit 2; }
cd "$(dirname "$0")/../.." || exit 2
fb=$1; secs=$2; shift 2
export RAM_BUILD="${RAM_BUILD:-build}"
# Two fuzzers share the two cores: OpenBLAS threads would only spin-yield.
export OPENBLAS_NUM_THREADS=1
one() {
  t=$1
  mkdir -p "$fb/corpus/$t"
  # -timeout: one input may take at most 20 s (a hang is a finding);
  # -rss_limit_mb/-malloc_limit_mb: two fuzzers side by side stay under 4 GB.
  "$fb/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$fb/$t-" \
    "$fb/corpus/$t" "tests/fuzz/corpus/$t" >"$fb/fuzz_$t.log" 2>&1
  echo $? >"$fb/fuzz_$t.rc"
}
report() {
  t=$1; log=$fb/fuzz_$t.log
  rc=$(cat "$fb/fuzz_$t.rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # A slow unit (over 10 s, e.g. on a loaded machine) is written too but is no
  # finding: libFuzzer exits 0; a hang over -timeout is a timeout- artifact.
  unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | grep -v -- '-slow-unit-' | tail -1)
  if [ "$rc" = 0 ] && [ -z "$unit" ] && [ -n "$execs" ]; then
    slow=$(sed -n 's/^Slowest unit: \([0-9]*\) s.*/\1/p' "$log" | tail -1)
    echo "PASS: fuzz_$t (${execs} execs in $secs s)"
    [ -z "$slow" ] || echo "NOTE: fuzz_$t: slowest input took $slow s (written to $fb/$t-slow-unit-*)"
    return 0
  fi
  tail -40 "$log"
  echo "FAIL: fuzz_$t: ${unit:+crash input $unit }(exit $rc, ${execs:-no} execs; log $log)"
  return 1
}
fail=0
while [ $# -gt 0 ]; do
  a=$1; b=
  shift
  if [ "${FUZZ_JOBS:-2}" -gt 1 ] && [ $# -gt 0 ]; then b=$1; shift; fi
  echo "== fuzz_$a${b:+ + fuzz_$b} ($secs s)"
  one "$a" & pa=$!
  if [ -n "$b" ]; then one "$b" & pb=$!; wait "$pb"; fi
  wait "$pa"
  report "$a" || fail=1
  if [ -n "$b" ]; then report "$b" || fail=1; fi
done
exit $fail
