#!/bin/sh
# Issue 16's search that does not scan, measured (tests/bench/bench_cascade.c):
# MATCH ... AND k = 20 with the prefilter cascade against the exhaustive scan
# over N pictures (default 1,000,000), one core; tag top-20 of a tag held by
# half of them. The data is made once into BUILD/bench/cascade_N.db (about
# 4 GB at 1M, a few minutes) from the bundled default model's outputs over
# 2000 generated pictures (cascade_photos.py), and reused; the exhaustive
# rankings too (DB.TABLE.exact2).
#
# Then the same over real model outputs only: R generated pictures (default
# 20,000; RAM_BENCH_CASCADE_REAL=0 skips it), each through the model, no rows
# made from others (docs/SCALE.md says why both are measured). Its lines carry
# the prefix "realonly_". Made once (a few minutes), reused.
#
#   sh tests/bench/cascade.sh [BUILD] [N]       (make bench runs it; make bench-cascade alone)
BUILD=${1:-build}
N=${2:-${RAM_BENCH_CASCADE_N:-1000000}}
R=${RAM_BENCH_CASCADE_REAL:-20000}
cd "$(dirname "$0")/../.." || exit 2
OUT=$BUILD/bench
mkdir -p "$OUT"
if [ ! -f "$OUT/cascade_photos/01999.png" ]; then
  /usr/bin/python3 tests/bench/cascade_photos.py "$OUT/cascade_photos" 2000 >/dev/null || exit 1
fi
RAM_SO=$BUILD/ram nice -n 10 "$BUILD/bench/bench_cascade" "$BUILD/default.ram" "$OUT/cascade_photos" \
  "$OUT/cascade_$N.db" "$N" "${RAM_BENCH_CASCADE_QUERIES:-4}" || exit 1
[ "$R" -gt 0 ] 2>/dev/null || exit 0
LAST=$(printf '%05d' $((R - 1)))
if [ ! -f "$OUT/cascade_photos_$R/$LAST.png" ]; then
  /usr/bin/python3 tests/bench/cascade_photos.py "$OUT/cascade_photos_$R" "$R" >/dev/null || exit 1
fi
RAM_SO=$BUILD/ram nice -n 10 "$BUILD/bench/bench_cascade" "$BUILD/default.ram" "$OUT/cascade_photos_$R" \
  "$OUT/cascade_real_$R.db" "$R" 8 | sed 's/^\([a-z]\)/realonly_\1/'
