#!/bin/sh
# Runs every test: the C binaries build/test_*, then tests/*.sh and tests/*.py,
# once per build folder given (e.g. "build build/asan"; a folder whose name
# contains "asan" runs with the sanitizer settings below). With RAM_TSAN_BUILD
# and RAM_FUZZ_BUILD + FUZZ_SECONDS set (make test), the TSan run follows once,
# and the fuzz targets run once, one at a time beside the suites.
# Each prints "PASS: name" / "FAIL: name: why" lines, and "SKIP: name: why"
# for a check it cannot run here (a missing optional tool, a build folder
# without RAM_BUILD); this script counts them, lists the skips with their
# reasons, and ends with "N passed, N failed, N skipped", exiting non-zero on
# any failure (or if a test program itself failed without reporting a FAIL
# line). A skip is not a failure, but it is never silent.
[ $# -gt 0 ] || set -- build
cd "$(dirname "$0")/.." || exit 2
log=$(mktemp)
run() {
  name=$1; shift
  echo "== $name"
  t0=$(date +%s)
  "$@" >"$log.one" 2>&1
  rc=$?
  cat "$log.one"; cat "$log.one" >>"$log"
  # Wall time per program, so the 12-minute budget of make test can be kept.
  echo "TIME: $name $(($(date +%s) - t0)) s"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$log.one"; then
    echo "FAIL: $name: exited with status $rc"
    echo "FAIL: $name: exited with status $rc" >>"$log"
  fi
}
suite() {
BUILD=$1
export RAM_BUILD="$BUILD"
RAM_SANITIZE=0
tag=
case "$BUILD" in *asan*) RAM_SANITIZE=1; tag="asan/" ;; esac
export RAM_SANITIZE
echo "#### suite: $BUILD (sanitizers: $RAM_SANITIZE)"
# Under sanitizers, host programs (the sqlite3 shell, python3) load an
# instrumented ram.so: the ASan/UBSan runtimes must be preloaded into them, and
# leak checking is left to the C test binaries (the hosts' own allocations are
# not ours to judge).
HOST_PRELOAD=; HOST_ASAN=
if [ "${RAM_SANITIZE:-0}" = 1 ]; then
  HOST_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
  HOST_ASAN="detect_leaks=0"
fi
host() {
  if [ -n "${HOST_PRELOAD:-}" ]; then
    LD_PRELOAD="$HOST_PRELOAD" ASAN_OPTIONS="$HOST_ASAN" "$@"
  else
    "$@"
  fi
}
for t in "$BUILD"/test_*; do
  [ -x "$t" ] || continue
  run "$tag$(basename "$t")" "$t"
done
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  run "$tag$(basename "$t")" host sh "$t"
done
for t in tests/test_*.py; do
  [ -f "$t" ] || continue
  run "$tag$(basename "$t")" host python3 "$t"
done
}
# The fuzz targets (make test: FUZZ_SECONDS each) run one at a time in the
# background while the suites run: most test programs use one core, so the
# other core fuzzes instead of idling. Their lines are printed after the suites.
fuzz_pid=
if [ -n "${RAM_FUZZ_BUILD:-}" ] && [ "${FUZZ_SECONDS:-0}" -gt 0 ]; then
  fuzz_t0=$(date +%s)
  (env RAM_BUILD="$1" FUZZ_JOBS=1 sh tests/fuzz/run.sh "$RAM_FUZZ_BUILD" "$FUZZ_SECONDS" \
    ${FUZZ_TARGETS:-image pth model bpe sql index wordpiece} >"$log.fuzz" 2>&1
   echo $? >"$log.fuzzrc") &
  fuzz_pid=$!
fi
for b in "$@"; do suite "$b"; done
# Once, after the suites (make test sets these): test_concurrency under
# ThreadSanitizer, then the fuzz targets' lines (tests/fuzz/run.sh prints
# "PASS: fuzz_T (N execs in S s)" or a FAIL line naming the crash input).
# OpenBLAS stays single-threaded (its threads are not instrumented), but
# RAM_THREADS=2 keeps our own pool and its speed-sized splits in play: the
# pool takes OPENBLAS_NUM_THREADS only when RAM_THREADS is unset.
if [ -n "${RAM_TSAN_BUILD:-}" ]; then
  echo "#### ThreadSanitizer: $RAM_TSAN_BUILD"
  run tsan/test_concurrency env RAM_BUILD="$RAM_TSAN_BUILD" OPENBLAS_NUM_THREADS=1 RAM_THREADS=2 \
    TSAN_OPTIONS="${RAM_TSAN_OPTIONS:-}" "$RAM_TSAN_BUILD/test_concurrency"
fi
if [ -n "$fuzz_pid" ]; then
  echo "#### fuzz: $RAM_FUZZ_BUILD, ${FUZZ_SECONDS} s per target (started with the suites)"
  wait "$fuzz_pid"
  cat "$log.fuzz"; cat "$log.fuzz" >>"$log"
  rc=$(cat "$log.fuzzrc" 2>/dev/null || echo 99)
  if [ "$rc" != 0 ] && ! grep -q '^FAIL: ' "$log.fuzz"; then
    echo "FAIL: fuzz: exited with status $rc" | tee -a "$log"
  fi
  echo "TIME: fuzz $(($(date +%s) - fuzz_t0)) s (beside the suites)"
  rm -f "$log.fuzz" "$log.fuzzrc"
elif [ -n "${RAM_FUZZ_BUILD:-}" ]; then
  echo "SKIP: fuzz: FUZZ_SECONDS=0" | tee -a "$log"
fi
passed=$(grep -c '^PASS: ' "$log")
failed=$(grep -c '^FAIL: ' "$log")
skipped=$(grep -c '^SKIP: ' "$log")
if [ "$skipped" -gt 0 ]; then
  echo
  echo "Skipped:"
  grep '^SKIP: ' "$log" | sed 's/^SKIP: /  /'
fi
rm -f "$log" "$log.one"
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
