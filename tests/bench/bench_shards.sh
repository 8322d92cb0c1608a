#!/bin/sh
# bench_shards.sh — indexing throughput of one machine, two recipes, same run
# (issue 16, docs/SCALE.md): one `ram-index --threads 2` over every picture,
# against two `ram-index --threads 1` processes at once, each over half of
# them (two shards). fp32 and int8 models, rounds interleaved; prints
# "key value" lines for tests/bench/run.sh (results.json).
#
#   sh tests/bench/bench_shards.sh BUILD FP32_MODEL [INT8_MODEL]
#
# Environment: RAM_BENCH_SHARDS_N pictures (default 6, from demo/photos:
# distinct bytes, small files, so decoding, serial in a 2-thread process, is
# a negligible part: the comparison is of the model's threads), RAM_BENCH_SHARDS_ROUNDS
# (default 3; the median wall time is kept). Each process's start (model
# mapped, table created) is measured alone with an empty list and taken off,
# so the figures are per-picture throughput, as over a long run.
B=${1:?BUILD}
FP32=${2:?model}
INT8=${3:-}
N=${RAM_BENCH_SHARDS_N:-6}
ROUNDS=${RAM_BENCH_SHARDS_ROUNDS:-3}
W=$B/bench/shards
rm -rf "$W"
mkdir -p "$W/img"
i=0
for src in demo/photos/*.png demo/photos/*.jpg; do
  [ $i -lt "$N" ] || break
  cp "$src" "$W/img/p$i.${src##*.}" || exit 1
  i=$((i + 1))
done
[ $i = "$N" ] || { echo "bench_shards: only $i pictures in demo/photos" >&2; exit 1; }
ls "$W"/img/* >"$W/all"
: >"$W/none"
half=$((N / 2))
head -n $half "$W/all" >"$W/half0"
tail -n +$((half + 1)) "$W/all" >"$W/half1"
now() { date +%s.%N; }
run() { # list db threads model
  "$B/ram-index" --files-from "$1" "$2" --threads "$3" --model "$4" --no-verify --batch 64 2>"$2.err" ||
    { cat "$2.err" >&2; exit 1; }
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for kind in fp32 int8; do
  M=$FP32
  [ $kind = int8 ] && M=$INT8
  [ -n "$M" ] || continue
  run "$W/none" "$W/warm.db" 1 "$M" # the model in the page cache
  : >"$W/$kind.start" ; : >"$W/$kind.one" ; : >"$W/$kind.two"
  r=0
  while [ $r -lt "$ROUNDS" ]; do
    rm -f "$W"/*.db*
    t0=$(now); run "$W/none" "$W/s.db" 1 "$M"; t1=$(now)
    awk "BEGIN{print $t1 - $t0}" >>"$W/$kind.start"
    t0=$(now); run "$W/all" "$W/one.db" 2 "$M"; t1=$(now)
    awk "BEGIN{print $t1 - $t0}" >>"$W/$kind.one"
    t0=$(now)
    run "$W/half0" "$W/a.db" 1 "$M" &
    p=$!
    run "$W/half1" "$W/b.db" 1 "$M"
    wait $p || exit 1
    t1=$(now)
    awk "BEGIN{print $t1 - $t0}" >>"$W/$kind.two"
    r=$((r + 1))
  done
  S=$(median <"$W/$kind.start"); O=$(median <"$W/$kind.one"); T=$(median <"$W/$kind.two")
  awk -v k=$kind -v n="$N" -v s="$S" -v o="$O" -v t="$T" 'BEGIN {
    one = n / (o - s); two = n / (t - s)
    printf "index_start_s_%s %.3f\n", k, s
    printf "index_images_per_s_1x2t_%s %.3f\n", k, one
    printf "index_images_per_s_2x1t_%s %.3f\n", k, two
    printf "index_2x1t_over_1x2t_%s %.3f\n", k, two / one }'
done
rm -rf "$W"
