#!/bin/sh
# make bench: runs the benchmarks of one build folder and prints a table;
# writes BUILD/bench/results.json. Figures are for comparison (ratios within
# one run); nothing here passes or fails.
#
#   sh tests/bench/run.sh [BUILD]
#
# Environment:
#   RAM_BENCH_MODEL   a real model file (default: a random full-size RAM++ made
#                     once by ram-convert --random into BUILD/bench/, 1.3 GB)
#   RAM_BENCH_INT8    its int8 conversion (ram-convert --quant int8; default: the
#                     same random weights, made once into BUILD/bench/, 0.7 GB);
#                     timed interleaved with fp32, plus the agreement figures.
#                     0 skips the int8 comparison (its keys are then null)
#   RAM_BENCH_IMAGE   the image to tag (default: a 1024x1024 JPEG made from a
#                     demo picture with the vips CLI)
#   RAM_BENCH_RUNS    timed forwards per thread count (median; default 5)
#   RAM_BENCH_KERNEL_ROUNDS  rounds of bench_kernels (peaks and sgemm shapes; default 2)
#   RAM_BENCH_PRECISION  0 skips bench_precision (fp32/bf16/int8 side by side on a
#                     trained-like random RAM++ made once into BUILD/bench/ by
#                     ram-convert --random --trained-like, 1.3 + 0.9 GB; its keys
#                     are then null)
#   RAM_BENCH_INDEX   0 skips bench_index (its keys are then null)
#   RAM_BENCH_N       images bench_index generates (default here 20000)
#   RAM_BENCH_INDEX_MODEL  a RAM++ with a CLIP text tower for bench_index (default:
#                     a random one made once into BUILD/bench/, 1.6 GB)
#   RAM_BENCH_INSERT_N  camera-size JPEGs bench_index inserts with one
#                     INSERT ... SELECT (default 3; issue 9's cores busy)
#   RAM_BENCH_TORCH   0 skips bench_torch.py, this project's own PyTorch port (NOT
#                     the official code: make bench-peers times that); its keys
#                     torch_port_* are then null; skipped with a note when the
#                     Python has no torch
#   RAM_BENCH_TORCH_RUNS  timed forwards of the port per thread count (default 3)
#   RAM_BENCH_PYTHON  the Python with torch (default /usr/bin/python3, Debian's)
#   RAM_BENCH_TAG2TEXT  0 skips bench_tag2text (its keys t2t_* are then null)
#   RAM_BENCH_TAG2TEXT_MODEL  a Tag2Text model file (default: a random full-size one,
#                     ram-convert --random tag2text_swin_b_384, made once into
#                     BUILD/bench/, 1.5 GB)
#   RAM_BENCH_TAG2TEXT_RUNS  timed images per thread count (median; default 2)
#   RAM_BENCH_SHARDS  0 skips bench_shards.sh (indexing throughput, 1 x 2 threads
#                     vs 2 x 1 thread on shards; its keys are then null)
# The whole run stays under 10 minutes on 2 cores (bench_index is cut at 300 s)
# plus about 2 for Tag2Text.
BUILD=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
OUT=$BUILD/bench
mkdir -p "$OUT"
RUNS=${RAM_BENCH_RUNS:-5}

MODEL=${RAM_BENCH_MODEL:-}
if [ -z "$MODEL" ]; then
  MODEL=$OUT/ram_plus_random.ram
  if [ ! -f "$MODEL" ]; then
    echo "bench: writing a random full-size RAM++ (ram_plus_swin_l_384) to $MODEL"
    "$BUILD/ram-convert" --random ram_plus_swin_l_384 -o "$MODEL" >/dev/null || exit 1
  fi
fi
IMAGE=${RAM_BENCH_IMAGE:-}
if [ -z "$IMAGE" ]; then
  IMAGE=$OUT/bench_1024.jpg
  if [ ! -f "$IMAGE" ]; then
    src=$(ls demo/photos/*.png 2>/dev/null | head -n 1)
    if [ -n "$src" ] && command -v vips >/dev/null; then
      w=$(vipsheader -f width "$src")
      vips resize "$src" "$IMAGE" "$(awk "BEGIN{print 1024/$w}")" || exit 1
    else
      IMAGE=tests/data/golden/images/img0.jpg
    fi
  fi
fi

# int8: the same weights quantized (ram-convert --quant int8); for a real model
# RAM_BENCH_INT8 must name its conversion. The golden models are converted too
# for the agreement on the golden images.
INT8=${RAM_BENCH_INT8:-}
if [ -z "$INT8" ] && [ -z "${RAM_BENCH_MODEL:-}" ]; then
  INT8=$OUT/ram_plus_random_int8.ram
  # remade when ram-convert is newer: the int8 layer choice and format live there
  if [ ! -f "$INT8" ] || [ "$BUILD/ram-convert" -nt "$INT8" ]; then
    echo "bench: writing its int8 conversion to $INT8"
    "$BUILD/ram-convert" --random ram_plus_swin_l_384 --quant int8 -o "$INT8" >/dev/null || exit 1
  fi
fi
[ "$INT8" = 0 ] && INT8=
G=tests/data/golden
GQ=$OUT/golden_ram_plus_int8.ram
GA=$OUT/bench_golden_agree.out
: >"$GA"
if [ -n "$INT8" ] && "$BUILD/ram-convert" $G/ram_plus_tiny.pth -o "$GQ" --quant int8 --tags $G/tag_list.txt \
     --tags-zh $G/tag_list_chinese.txt --thresholds $G/tag_list_threshold.txt >/dev/null; then
  "$BUILD/bench/bench_model" --agree "$BUILD/models/golden_ram_plus.ram" "$GQ" $G/images/* >"$GA" || cat "$GA"
fi

# The machine's measured peaks and every sgemm path on the forward's shapes
# (bench_kernels.c; fractions of the FMA peak measured in the same rounds).
K=$OUT/bench_kernels.out
echo "bench: kernels (measured FMA/VNNI/BF16/AMX peaks, sgemm paths and the bf16 layers on the forward's shapes, ${RAM_BENCH_KERNEL_ROUNDS:-2} rounds)"
"$BUILD/bench/bench_kernels" "${RAM_BENCH_KERNEL_ROUNDS:-2}" >"$K" || { cat "$K"; exit 1; }

echo "bench: model $MODEL ($(wc -c <"$MODEL") bytes), image $IMAGE, $RUNS runs per thread count${INT8:+, int8 $INT8}"
T=$OUT/bench_model.out
"$BUILD/bench/bench_model" "$MODEL" "$IMAGE" "$RUNS" $INT8 >"$T" || { cat "$T"; exit 1; }

# This project's PyTorch port of the RAM++ modules (models/train/ram_modules.py,
# not the official code: the comparison with the official PyTorch code and with
# ONNX Runtime is make bench-peers, docs/BENCH.md) at full size, random weights;
# the same image, the same thread counts, the same run.
TOR=$OUT/bench_torch.out
: >"$TOR"
PY=${RAM_BENCH_PYTHON:-/usr/bin/python3}
if [ "${RAM_BENCH_TORCH:-1}" != 0 ]; then
  if "$PY" -c 'import torch' 2>/dev/null; then
    # --ours: our extension runs beside each torch forward in the same process
    # (same thread count, same minute); the speedups come from those pairs.
    echo "bench: the project's PyTorch port, not the official code (bench_torch.py, ${RAM_BENCH_TORCH_RUNS:-3} runs per thread count, paired with ours, at most 300 s)"
    timeout 300 "$PY" tests/bench/bench_torch.py "$IMAGE" "${RAM_BENCH_TORCH_RUNS:-3}" --ours="$BUILD/ram,$MODEL" >"$TOR" 2>&1 ||
      echo "bench: bench_torch.py failed or timed out (see $TOR)"
  else
    echo "bench: NOTE: $PY has no torch; the PyTorch-port rows are skipped (RAM_BENCH_PYTHON names another)"
  fi
fi

# Issue 19: fp32, bf16 (converted at load), int8 (--quant int8) and the accurate
# bf16 mix (bf16acc: Swin bf16x2, decoder bf16x3, models/README.md) of one
# trained-like random RAM++ (probabilities spread like a trained model's, where
# rounding errors show), forwards interleaved at 1 and 2 threads; agreement
# with fp32 on the bench image, skimage's photos and generated inputs. The
# models are remade when ram-convert is newer (the int8 layer choice lives there).
PREC=$OUT/bench_precision.out
: >"$PREC"
if [ "${RAM_BENCH_PRECISION:-1}" != 0 ] && [ -x "$BUILD/bench/bench_precision" ]; then
  TL=$OUT/ram_plus_trained_like.ram
  TL8=$OUT/ram_plus_trained_like_int8.ram
  for f in "$TL" "$TL8"; do
    if [ ! -f "$f" ] || [ "$BUILD/ram-convert" -nt "$f" ]; then
      echo "bench: writing a trained-like random RAM++ to $f"
      q=; [ "$f" = "$TL8" ] && q="--quant int8"
      "$BUILD/ram-convert" --random ram_plus_swin_l_384 --trained-like $q -o "$f" >/dev/null || exit 1
    fi
  done
  SK=/usr/lib/python3/dist-packages/skimage/data
  photos=$(ls $SK/astronaut.png $SK/chelsea.png $SK/coffee.png 2>/dev/null)
  echo "bench: fp32 / bf16 / int8 side by side (bench_precision, $RUNS runs per thread count)"
  "$BUILD/bench/bench_precision" "$TL" "$TL8" "$RUNS" "$IMAGE" $photos >"$PREC" 2>&1 ||
    echo "bench: bench_precision failed (see $PREC)"
  # The same paths on the bench model (the plain random one unless RAM_BENCH_MODEL names a real one;
  # probabilities near 0.5, the fidelity setting) and its int8 conversion: agreement only.
  if [ -n "$INT8" ]; then
    RAM_BENCH_GEN=2 "$BUILD/bench/bench_precision" "$MODEL" "$INT8" 0 "$IMAGE" $photos >"$OUT/bench_precision_random.out" 2>&1 ||
      echo "bench: bench_precision on $MODEL failed"
  fi
fi
pval() { awk -v k="$1" '$1 == k { print $2 }' "$PREC"; }
rval() { [ -f "$OUT/bench_precision_random.out" ] && awk -v k="$1" '$1 == k { print $2 }' "$OUT/bench_precision_random.out"; }

IDX=$OUT/bench_index.out
: >"$IDX"
if [ -x "$BUILD/bench/bench_index" ] && [ "${RAM_BENCH_INDEX:-1}" != 0 ]; then
  # bench_index needs a RAM++ with a CLIP text tower: made once here (rather than
  # by bench_index in /tmp, where a timed-out run would leave 1.6 GB behind).
  IMODEL=${RAM_BENCH_INDEX_MODEL:-$OUT/ram_plus_clip_random.ram}
  if [ ! -f "$IMODEL" ]; then
    echo "bench: writing a random full-size RAM++ with a CLIP text tower to $IMODEL"
    printf '%s\n' '{"preset": "ram_plus_swin_l_384", "clip_vocab": 49408, "clip_context": 77, "clip_width": 512, "clip_heads": 8, "clip_layers": 12, "clip_embed_dim": 512}' >"$OUT/clip_random.json"
    "$BUILD/ram-convert" --random "$OUT/clip_random.json" -o "$IMODEL" --bpe "$BUILD/bpe_simple_vocab_16e6.txt" >/dev/null || exit 1
  fi
  echo "bench: bench_index (N=${RAM_BENCH_N:-20000}, at most 300 s)"
  RAM_BUILD=$BUILD timeout 300 "$BUILD/bench/bench_index" "$IMODEL" "${RAM_BENCH_N:-20000}" >"$IDX" 2>&1
fi

# Issue 14: Tag2Text, tags only and tags + caption at 1 and 2 threads, split
# by stage, fp32 and with the int8 caption decoder (bench_tag2text.c).
T2T=$OUT/bench_tag2text.out
: >"$T2T"
if [ "${RAM_BENCH_TAG2TEXT:-1}" != 0 ] && [ -x "$BUILD/bench/bench_tag2text" ]; then
  TM=${RAM_BENCH_TAG2TEXT_MODEL:-$OUT/tag2text_random.ram}
  if [ ! -f "$TM" ]; then
    echo "bench: writing a random full-size Tag2Text (tag2text_swin_b_384) to $TM"
    "$BUILD/ram-convert" --random tag2text_swin_b_384 -o "$TM" >/dev/null || exit 1
  fi
  echo "bench: Tag2Text tags and captions (bench_tag2text, ${RAM_BENCH_TAG2TEXT_RUNS:-2} runs per thread count, fp32 and int8 decoder)"
  "$BUILD/bench/bench_tag2text" "$TM" "$IMAGE" "${RAM_BENCH_TAG2TEXT_RUNS:-2}" >"$T2T" 2>&1 ||
    echo "bench: bench_tag2text failed (see $T2T)"
fi
t2v() { awk -v k="$1" '$1 == k { print $2 }' "$T2T"; }
# GFLOP/s of a stage (GFLOP key, seconds key) and its fraction of the same run's FMA peak.
t2rate() { g=$(t2v "$1"); s=$(t2v "$2"); [ -n "$g" ] && [ -n "$s" ] && awk "BEGIN{ if ($s > 0) printf \"%.1f\", $g/$s }"; }
t2frac() { r=$(t2rate "$1" "$2"); p=$(t2v "t2t_fma_peak_gflops_$3"); [ -n "$r" ] && [ -n "$p" ] && awk "BEGIN{ if ($p > 0) printf \"%.3f\", $r/$p }"; }
t2bw() { mb=$(t2v "t2t_decoder_step_mb_$1"); n=$(t2v t2t_steps); s=$(t2v "$2"); [ -n "$mb" ] && [ -n "$s" ] && awk "BEGIN{ if ($s > 0) printf \"%.1f\", $mb*$n/1000/$s }"; }
for th in 1t 2t; do
  eval "T2R_TAGS_$th=\$(t2rate t2t_gflop_tags t2t_tags_total_s_$th)"
  eval "T2F_TAGS_$th=\$(t2frac t2t_gflop_tags t2t_tags_total_s_$th $th)"
  eval "T2R_ALL_$th=\$(t2rate t2t_gflop_caption t2t_caption_total_s_$th)"
  eval "T2F_ALL_$th=\$(t2frac t2t_gflop_caption t2t_caption_total_s_$th $th)"
  eval "T2R_DEC_$th=\$(t2rate t2t_gflop_decoding t2t_decoding_s_$th)"
  eval "T2BW_$th=\$(t2bw fp32 t2t_decoding_s_$th)"
  eval "T2BW8_$th=\$(t2bw int8 t2t_decoding_int8_s_$th)"
done
t2sp() { a=$(t2v "$1"); b=$(t2v "$2"); [ -n "$a" ] && [ -n "$b" ] && awk "BEGIN{ if ($b > 0) printf \"%.2f\", $a/$b }"; }
T2SP8_1=$(t2sp t2t_decoding_s_1t t2t_decoding_int8_s_1t); T2SP8_2=$(t2sp t2t_decoding_s_2t t2t_decoding_int8_s_2t)
# Verified int8 decoding (int8 drafts checked by fp32): its speed against fp32's, same run.
T2SPV_1=$(t2sp t2t_decoding_s_1t t2t_decoding_verified_s_1t); T2SPV_2=$(t2sp t2t_decoding_s_2t t2t_decoding_verified_s_2t)

# Issue 16: the prefilter cascade and tag top-k over 1,000,000 pictures
# (tests/bench/cascade.sh; the data is made once, about 4 GB; RAM_BENCH_CASCADE=0 skips it),
# then over 20,000 real model outputs alone (keys cascade_realonly_*; RAM_BENCH_CASCADE_REAL=0 skips it).
CAS=$OUT/bench_cascade.out
: >"$CAS"
if [ -x "$BUILD/bench/bench_cascade" ] && [ "${RAM_BENCH_CASCADE:-1}" != 0 ]; then
  echo "bench: bench_cascade (N=${RAM_BENCH_CASCADE_N:-1000000}; the first run makes the data)"
  sh tests/bench/cascade.sh "$BUILD" >"$CAS" 2>/dev/null
fi
cval() { awk -v k="$1" '$1 == k { print $2 }' "$CAS" | head -n 1; }

val() { awk -v k="$1" '$1 == k { print $2 }' "$T"; }
kval() { awk -v k="$1" '$1 == k { print $2 }' "$K"; }
gval() { awk -v k="$1" '$1 == k { print $2 }' "$GA"; }
# bench_index's figures, from its printed lines (null when absent).
score=$(sed -n 's/^2\. exact open-set scoring.*: \([0-9.]*\) images\/s.*/\1/p' "$IDX" | head -n 1)
storage=$(sed -n 's/^3\. storage:.*(\([0-9.]*\) bytes;.*/\1/p' "$IDX" | head -n 1)
spi=$(sed -n 's/^5\. INSERT.* threads: \([0-9.]*\) s per image.*/\1/p' "$IDX" | head -n 1)
ival() { awk -v k="$1" '$1 == k { print $2 }' "$IDX" | head -n 1; }
# Issue 9: cores busy during an INSERT ... SELECT at 2 threads, next to what a
# 2-thread sgemm reads as in the same minute, and the measured gain of
# decoding the next image while the model runs (bench_index figure 5).
icores=$(ival index_cores_busy); isgemm=$(ival index_sgemm_cores_busy)
idec=$(ival index_decode_fraction); igain=$(ival index_pipeline_gain)
ibound=$(ival index_cores_bound)
index=
[ -n "$spi" ] && index=$(awk "BEGIN{ if ($spi > 0) printf \"%.3f\", 1/$spi }")

# Issue 16: a machine's indexing throughput, one 2-thread ram-index against two
# 1-thread ones on two shards, fp32 and int8 (the bench model and its int8
# conversion), rounds interleaved (bench_shards.sh; RAM_BENCH_SHARDS=0 skips).
SHD=$OUT/bench_shards.out
: >"$SHD"
if [ "${RAM_BENCH_SHARDS:-1}" != 0 ]; then
  echo "bench: indexing throughput, 1 x 2 threads vs 2 x 1 thread on shards (bench_shards.sh)"
  sh tests/bench/bench_shards.sh "$BUILD" "$MODEL" "$INT8" >"$SHD" || echo "bench: bench_shards.sh failed"
fi
sval() { awk -v k="$1" '$1 == k { print $2 }' "$SHD"; }
# bench_near_dup: ram_index_duplicates' pair comparison (8,000 vectors of 512), blocked
# matrix products vs the plain int8 loop, one thread, same run.
ND=$OUT/bench_near_dup.out
: >"$ND"
[ -x "$BUILD/bench/bench_near_dup" ] && { "$BUILD/bench/bench_near_dup" 8000 >"$ND" 2>&1 || cat "$ND"; }
dval() { awk -v k="$1" '$1 == k { print $2 }' "$ND"; }

# RAM++ 324.9 GFLOP per image, RAM 324.4 (ARCHITECTURE.md section 12).
GFLOP=324.9
L1=$(val latency_s_1t); L2=$(val latency_s_2t)
P1=$(val sgemm_peak_gflops_1t); P2=$(val sgemm_peak_gflops_2t)
F1=$(awk "BEGIN{printf \"%.3f\", $GFLOP/$L1/$P1}")
F2=$(awk "BEGIN{printf \"%.3f\", $GFLOP/$L2/$P2}")
# The machine, not the library: the measured fp32 FMA peak of the same runs
# (bench_model measures it before each forward pair), each path's forward
# as a fraction of it, and the 2-thread scaling of the whole forward.
FP1=$(val fma_peak_gflops_1t); FP2=$(val fma_peak_gflops_2t)
OL1=$(val latency_s_1t_openblas); OL2=$(val latency_s_2t_openblas)
P8_1=$(val latency_s_1t_int8); P8_2=$(val latency_s_2t_int8)
frac() { [ -n "$1" ] && [ -n "$2" ] && awk "BEGIN{ if ($1 > 0 && $2 > 0) printf \"%.3f\", $GFLOP/$1/$2 }"; }
FF1=$(frac "$L1" "$FP1"); FF2=$(frac "$L2" "$FP2")
# 1 thread in CPU time (the 1-thread peak is CPU time too): the work's
# efficiency whatever share of the core a busy machine leaves us.
FC1=$(frac "$(val cpu_s_1t)" "$FP1")
FO1=$(frac "$OL1" "$FP1"); FO2=$(frac "$OL2" "$FP2")
FI1=$(frac "$P8_1" "$FP1"); FI2=$(frac "$P8_2" "$FP2")
# bf16 and int8 against their own peaks: AMX tiles where the kernel grants
# them (what the paths then run on), else vdpbf16ps / vpdpbusd; the forward's
# GFLOP (the fp32 forward's multiply-adds, not the extra products of the
# bf16 mix) over the trained-like path's latency. The peaks come from
# bench_kernels, minutes before bench_precision: on a busy machine, approximate.
own_peak() { v=$(kval "peak_amx_$1_$3"); [ -n "$v" ] || v=$(kval "peak_$2_$3"); echo "$v"; }
PB1=$(own_peak bf16 bf16 gflops_1t); PB2=$(own_peak bf16 bf16 gflops_2t)
PQ1=$(own_peak int8 vnni gops_1t); PQ2=$(own_peak int8 vnni gops_2t)
OWNB1=$(frac "$(pval latency_s_1t_bf16)" "$PB1"); OWNB2=$(frac "$(pval latency_s_2t_bf16)" "$PB2")
OWNA1=$(frac "$(pval latency_s_1t_bf16acc)" "$PB1"); OWNA2=$(frac "$(pval latency_s_2t_bf16acc)" "$PB2")
OWNQ1=$(frac "$(pval latency_s_1t_int8)" "$PQ1"); OWNQ2=$(frac "$(pval latency_s_2t_int8)" "$PQ2")
SC=$(awk "BEGIN{ if ($L2 > 0) printf \"%.2f\", $L1/$L2 }")
SCO=$(awk "BEGIN{ if ($OL2 > 0) printf \"%.2f\", $OL1/$OL2 }")
SB1=$(val sgemm_openblas_gflops_1t); SB2=$(val sgemm_openblas_gflops_2t)
OCORE=$(val openblas_core); KERN=$(val kernels)
CPUNAME=$(sed -n 's/^cpu_model //p' "$K")
G1=$(awk "BEGIN{printf \"%.1f\", $GFLOP/$L1}")
G2=$(awk "BEGIN{printf \"%.1f\", $GFLOP/$L2}")
nul() { if [ -n "$1" ]; then echo "$1"; else echo null; fi; }
tval() { awk -v k="$1" '$1 == k { print $2 }' "$TOR"; }
TL1=$(tval torch_latency_s_1t); TL2=$(tval torch_latency_s_2t)
# How many times our latency the PyTorch port takes (> 1: we are faster): from the
# runs paired inside bench_torch.py when there are some, else from
# bench_model's separate runs (RS1, RS2 always the latter).
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk "BEGIN{ if ($2 > 0) printf \"%.2f\", $1/$2 }"; }
RS1=$(ratio "$TL1" "$L1"); RS2=$(ratio "$TL2" "$L2")
SP1=$(tval paired_speedup_vs_torch_1t); SP2=$(tval paired_speedup_vs_torch_2t)
[ -n "$SP1" ] || SP1=$RS1
[ -n "$SP2" ] || SP2=$RS2

printf '\n%-34s %12s %12s\n' "per image (median of $RUNS)" "1 thread" "2 threads"
printf '%-34s %12s %12s\n' "decode+preprocess s" "$(val preprocess_s_1t)" "$(val preprocess_s_2t)"
printf '%-34s %12s %12s\n' "visual encoder s" "$(val visual_s_1t)" "$(val visual_s_2t)"
printf '%-34s %12s %12s\n' "tagging decoder s" "$(val tagging_s_1t)" "$(val tagging_s_2t)"
printf '%-34s %12s %12s\n' "total s" "$L1" "$L2"
printf '%-34s %12s %12s\n' "forward GFLOP/s ($GFLOP GFLOP)" "$G1" "$G2"
printf '%-34s %12s %12s\n' "fp32 FMA peak GFLOP/s (measured)" "$FP1" "$FP2"
printf '%-34s %12s %12s\n' "fraction of FMA peak ($KERN)" "$FF1" "$FF2"
printf '%-34s %12s\n' "  1 thread, in CPU time" "$(nul "$FC1")"
printf '%-34s %12s\n' "2-thread scaling (1t / 2t latency)" "$SC"
printf '%-34s %12s %12s\n' "total s, OpenBLAS sgemm ($OCORE)" "$OL1" "$OL2"
printf '%-34s %12s %12s\n' "  fraction of FMA peak" "$(nul "$FO1")" "$(nul "$FO2")"
printf '%-34s %12s\n' "  2-thread scaling" "$(nul "$SCO")"
printf '%-34s %12s %12s\n' "sgemm 2048^2 GFLOP/s, ours ($KERN)" "$P1" "$P2"
printf '%-34s %12s %12s\n' "sgemm 2048^2 GFLOP/s, OpenBLAS" "$SB1" "$SB2"
printf '%-34s %12s %12s\n' "fraction of our sgemm peak" "$F1" "$F2"
printf '%-34s %12s %12s\n' "int8 VNNI peak Gop/s (measured)" "$(nul "$(kval peak_vnni_gops_1t)")" "$(nul "$(kval peak_vnni_gops_2t)")"
printf '%-34s %12s %12s\n' "bf16 peak GFLOP/s (measured)" "$(nul "$(kval peak_bf16_gflops_1t)")" "$(nul "$(kval peak_bf16_gflops_2t)")"
printf '%-34s %12s %12s\n' "AMX bf16 peak GFLOP/s (measured)" "$(nul "$(kval peak_amx_bf16_gflops_1t)")" "$(nul "$(kval peak_amx_bf16_gflops_2t)")"
printf '%-34s %12s %12s\n' "AMX int8 peak Gop/s (measured)" "$(nul "$(kval peak_amx_int8_gops_1t)")" "$(nul "$(kval peak_amx_int8_gops_2t)")"
printf '%-34s %12s %12s\n' "bf16 products mix / own peak, plain" "$(nul "$(kval bf16_forward_mix_plain_fraction_1t)")" "$(nul "$(kval bf16_forward_mix_plain_fraction_2t)")"
printf '%-34s %12s %12s\n' "  same, accurate mix (issued)" "$(nul "$(kval bf16_forward_mix_acc_fraction_1t)")" "$(nul "$(kval bf16_forward_mix_acc_fraction_2t)")"
printf '%-34s %12s %12s\n' "sgemm forward mix / FMA peak, ours" "$(nul "$(kval sgemm_forward_mix_${KERN}_fraction_1t)")" "$(nul "$(kval sgemm_forward_mix_${KERN}_fraction_2t)")"
printf '%-34s %12s %12s\n' "  same, OpenBLAS" "$(nul "$(kval sgemm_forward_mix_openblas_fraction_1t)")" "$(nul "$(kval sgemm_forward_mix_openblas_fraction_2t)")"
printf '%-34s %12s %12s\n' "our PyTorch port (not official) s" "$(nul "$TL1")" "$(nul "$TL2")"
printf '%-34s %12s %12s\n' "  of which visual encoder s" "$(nul "$(tval torch_visual_s_1t)")" "$(nul "$(tval torch_visual_s_2t)")"
printf '%-34s %12s %12s\n' "  of which tagging head s" "$(nul "$(tval torch_tagging_s_1t)")" "$(nul "$(tval torch_tagging_s_2t)")"
printf '%-34s %12s %12s\n' "ours, paired with each torch run s" "$(nul "$(tval ours_paired_latency_s_1t)")" "$(nul "$(tval ours_paired_latency_s_2t)")"
printf '%-34s %12s %12s\n' "our port / ours latency (paired)" "$(nul "$SP1")" "$(nul "$SP2")"
printf '%-34s %12s %12s\n' "  vs bench_model's separate runs" "$(nul "$RS1")" "$(nul "$RS2")"
printf '%-34s %12s\n' "our PyTorch port peak RSS bytes" "$(nul "$(tval torch_peak_rss_bytes)")"
printf '%-34s %12s %12s\n' "int8: total s (paired run)" "$(nul "$(val latency_s_1t_int8)")" "$(nul "$(val latency_s_2t_int8)")"
printf '%-34s %12s %12s\n' "int8: fp32 total s (same run)" "$(nul "$(val latency_s_1t_fp32_paired)")" "$(nul "$(val latency_s_2t_fp32_paired)")"
printf '%-34s %12s %12s\n' "int8: speedup vs fp32" "$(nul "$(val speedup_int8_1t)")" "$(nul "$(val speedup_int8_2t)")"
printf '%-34s %12s %12s\n' "int8: fp32-equivalent / FMA peak" "$(nul "$FI1")" "$(nul "$FI2")"
printf '%-34s %12s %12s\n' "int8: speedup in CPU time" "$(nul "$(val speedup_int8_1t_cpu)")" "$(nul "$(val speedup_int8_2t_cpu)")"
printf '%-34s %12s %12s\n' "int8: kernel speedup (Swin shapes)" "$(nul "$(val q8_kernel_speedup_1t)")" "$(nul "$(val q8_kernel_speedup_2t)")"
printf '%-34s %12s\n' "int8: max |p - p_fp32| (random)" "$(nul "$(val int8_max_prob_diff)")"
printf '%-34s %12s\n' "int8: same tag sets (random)" "$(nul "$(val int8_tagset_agreement)")"
printf '%-34s %12s\n' "int8: flipped classes (random)" "$(nul "$(val int8_tag_flips)")"
printf '%-34s %12s\n' "int8: max |p - p_fp32| (golden)" "$(nul "$(gval golden_int8_max_prob_diff)")"
printf '%-34s %12s\n' "int8: same tag sets (golden)" "$(nul "$(gval golden_int8_tagset_agreement)")"
printf '%-34s %12s %12s\n' "trained-like: fp32 s" "$(nul "$(pval latency_s_1t_fp32)")" "$(nul "$(pval latency_s_2t_fp32)")"
printf '%-34s %12s %12s\n' "trained-like: bf16 plain s" "$(nul "$(pval latency_s_1t_bf16)")" "$(nul "$(pval latency_s_2t_bf16)")"
printf '%-34s %12s %12s\n' "trained-like: int8 s" "$(nul "$(pval latency_s_1t_int8)")" "$(nul "$(pval latency_s_2t_int8)")"
printf '%-34s %12s %12s\n' "  bf16 / int8 speedup vs fp32 (2t)" "$(nul "$(pval speedup_bf16_2t)")" "$(nul "$(pval speedup_int8_2t)")"
printf '%-34s %12s %12s\n' "  max |p - p_fp32| bf16 / int8" "$(nul "$(pval bf16_max_prob_diff)")" "$(nul "$(pval int8_max_prob_diff)")"
printf '%-34s %12s %12s\n' "  flips (max fp32 gap) bf16" "$(nul "$(pval bf16_tag_flips)")" "$(nul "$(pval bf16_flip_max_margin)")"
printf '%-34s %12s %12s\n' "  flips (max fp32 gap) int8" "$(nul "$(pval int8_tag_flips)")" "$(nul "$(pval int8_flip_max_margin)")"
printf '%-34s %12s %12s\n' "  bf16 accurate (default) s" "$(nul "$(pval latency_s_1t_bf16acc)")" "$(nul "$(pval latency_s_2t_bf16acc)")"
printf '%-34s %12s %12s\n' "  bf16acc max |dp| / flips" "$(nul "$(pval bf16acc_max_prob_diff)")" "$(nul "$(pval bf16acc_tag_flips)")"
printf '%-34s %12s %12s\n' "  own peak fraction: bf16 plain" "$(nul "$OWNB1")" "$(nul "$OWNB2")"
printf '%-34s %12s %12s\n' "    bf16 accurate / int8" "$(nul "$OWNA1") / $(nul "$OWNQ1")" "$(nul "$OWNA2") / $(nul "$OWNQ2")"
printf '%-34s %12s %12s\n' "  fp32 probabilities min / max" "$(nul "$(pval fp32_prob_min)")" "$(nul "$(pval fp32_prob_max)")"
printf '%-34s %12s %12s\n' "random: max |dp| bf16 / int8" "$(nul "$(rval bf16_max_prob_diff)")" "$(nul "$(rval int8_max_prob_diff)")"
printf '%-34s %12s %12s\n' "random: flips bf16 / int8" "$(nul "$(rval bf16_tag_flips)")" "$(nul "$(rval int8_tag_flips)")"
printf '%-34s %12s %12s\n' "2 images: s/image, both threads each" "$(nul "$(val throughput_s_all_cores)")" "$(nul "$(val throughput_s_all_cores_int8)")"
printf '%-34s %12s %12s\n' "  one image per thread (fp32 / int8)" "$(nul "$(val throughput_s_per_core)")" "$(nul "$(val throughput_s_per_core_int8)")"
printf '%-34s %12s %12s\n' "  gain of one image per thread" "$(nul "$(val throughput_gain_per_core)")" "$(nul "$(val throughput_gain_per_core_int8)")"
printf '%-34s %12s %12s\n' "Tag2Text: decode+preprocess s" "$(nul "$(t2v t2t_preprocess_s_1t)")" "$(nul "$(t2v t2t_preprocess_s_2t)")"
printf '%-34s %12s %12s\n' "  Swin-B s" "$(nul "$(t2v t2t_swin_s_1t)")" "$(nul "$(t2v t2t_swin_s_2t)")"
printf '%-34s %12s %12s\n' "  tagging head s" "$(nul "$(t2v t2t_tagging_s_1t)")" "$(nul "$(t2v t2t_tagging_s_2t)")"
printf '%-34s %12s %12s\n' "  tags only s" "$(nul "$(t2v t2t_tags_total_s_1t)")" "$(nul "$(t2v t2t_tags_total_s_2t)")"
printf '%-34s %12s %12s\n' "  tag encoder s" "$(nul "$(t2v t2t_tag_encoder_s_1t)")" "$(nul "$(t2v t2t_tag_encoder_s_2t)")"
printf '%-34s %12s %12s\n' "  decoding s ($(nul "$(t2v t2t_steps)") steps)" "$(nul "$(t2v t2t_decoding_s_1t)")" "$(nul "$(t2v t2t_decoding_s_2t)")"
printf '%-34s %12s %12s\n' "  tags + caption s" "$(nul "$(t2v t2t_caption_total_s_1t)")" "$(nul "$(t2v t2t_caption_total_s_2t)")"
printf '%-34s %12s %12s\n' "  tags only GFLOP/s, / FMA peak" "$(nul "$T2R_TAGS_1t") $(nul "$T2F_TAGS_1t")" "$(nul "$T2R_TAGS_2t") $(nul "$T2F_TAGS_2t")"
printf '%-34s %12s %12s\n' "  tags + caption GFLOP/s, / peak" "$(nul "$T2R_ALL_1t") $(nul "$T2F_ALL_1t")" "$(nul "$T2R_ALL_2t") $(nul "$T2F_ALL_2t")"
printf '%-34s %12s %12s\n' "  decoding GFLOP/s" "$(nul "$T2R_DEC_1t")" "$(nul "$T2R_DEC_2t")"
printf '%-34s %12s %12s\n' "  decoder weights read GB/s" "$(nul "$T2BW_1t")" "$(nul "$T2BW_2t")"
printf '%-34s %12s %12s\n' "  int8 decoder: decoding s" "$(nul "$(t2v t2t_decoding_int8_s_1t)")" "$(nul "$(t2v t2t_decoding_int8_s_2t)")"
printf '%-34s %12s %12s\n' "  int8 decoder: tags + caption s" "$(nul "$(t2v t2t_caption_total_int8_s_1t)")" "$(nul "$(t2v t2t_caption_total_int8_s_2t)")"
printf '%-34s %12s %12s\n' "  int8 decoding speedup vs fp32" "$(nul "$T2SP8_1")" "$(nul "$T2SP8_2")"
printf '%-34s %12s %12s\n' "  int8 weights read GB/s" "$(nul "$T2BW8_1t")" "$(nul "$T2BW8_2t")"
printf '%-34s %12s\n' "  int8 same caption (image, gen.)" "$(nul "$(t2v t2t_int8_same_caption)") $(nul "$(t2v t2t_int8_same_caption_gen)")/$(nul "$(t2v t2t_int8_gen_images)")"
printf '%-34s %12s %12s\n' "  verified int8: decoding s" "$(nul "$(t2v t2t_decoding_verified_s_1t)")" "$(nul "$(t2v t2t_decoding_verified_s_2t)")"
printf '%-34s %12s %12s\n' "  verified decoding speedup vs fp32" "$(nul "$T2SPV_1")" "$(nul "$T2SPV_2")"
printf '%-34s %12s\n' "  verified drafted / confirmed" "$(nul "$(t2v t2t_verified_draft_steps)") $(nul "$(t2v t2t_verified_draft_held)")"
printf '%-34s %12s\n' "  verified same caption (image, gen.)" "$(nul "$(t2v t2t_verified_same_caption)") $(nul "$(t2v t2t_verified_same_caption_gen)")/$(nul "$(t2v t2t_int8_gen_images)")"
printf '%-34s %12s\n' "model load s" "$(val load_s)"
printf '%-34s %12s\n' "peak RSS bytes" "$(val peak_rss_bytes)"
printf '%-34s %12s\n' "index images/s (SQL INSERT)" "$(nul "$index")"
printf '%-34s %12s\n' "index cores busy (INSERT, 2 thr)" "$(nul "$icores")"
printf '%-34s %12s\n' "  2-thread sgemm, same minute" "$(nul "$isgemm")"
printf '%-34s %12s\n' "  bound from the serial share" "$(nul "$ibound")"
printf '%-34s %12s\n' "  decode share / overlap gain" "$(nul "$idec") / $(nul "$igain")"
printf '%-34s %12s\n' "score images/s (cached, 1 thread)" "$(nul "$score")"
printf '%-34s %12s\n' "storage bytes per image" "$(nul "$storage")"
printf '%-34s %12s %12s\n' "index images/s 1 x 2t / 2 x 1t fp32" "$(nul "$(sval index_images_per_s_1x2t_fp32)")" "$(nul "$(sval index_images_per_s_2x1t_fp32)")"
printf '%-34s %12s %12s\n' "  same, int8" "$(nul "$(sval index_images_per_s_1x2t_int8)")" "$(nul "$(sval index_images_per_s_2x1t_int8)")"
printf '%-34s %12s %12s\n' "  2 x 1t / 1 x 2t, fp32 / int8" "$(nul "$(sval index_2x1t_over_1x2t_fp32)")" "$(nul "$(sval index_2x1t_over_1x2t_int8)")"
printf '%-34s %12s %12s\n' "duplicates pairs/s blocked / loop" "$(nul "$(dval near_dup_pairs_per_s)")" "$(nul "$(dval near_dup_loop_pairs_per_s)")"
printf '%-34s %12s\n' "  speedup (same run)" "$(nul "$(dval near_dup_speedup)")"

echo "bench: CPU $CPUNAME, kernels $KERN, OpenBLAS core $OCORE, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(date -u +%Y-%m-%dT%H:%MZ)"

cat >"$OUT/results.json" <<EOF
{
  "model": "$MODEL",
  "runs": $RUNS,
  "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
  "cpu_model": "$CPUNAME",
  "kernels": "$KERN",
  "openblas_core": "$OCORE",
  "openblas_coretype_env": "${OPENBLAS_CORETYPE:-}",
  "fma_peak_gflops_1t": $(nul "$FP1"),
  "fma_peak_gflops_2t": $(nul "$FP2"),
  "fraction_of_fma_peak_1t": $(nul "$FF1"),
  "fraction_of_fma_peak_2t": $(nul "$FF2"),
  "fraction_of_fma_peak_1t_cpu": $(nul "$FC1"),
  "scaling_2t": $(nul "$SC"),
  "latency_s_1t_openblas": $(nul "$OL1"),
  "latency_s_2t_openblas": $(nul "$OL2"),
  "fraction_of_fma_peak_1t_openblas": $(nul "$FO1"),
  "fraction_of_fma_peak_2t_openblas": $(nul "$FO2"),
  "scaling_2t_openblas": $(nul "$SCO"),
  "fraction_of_fma_peak_1t_int8": $(nul "$FI1"),
  "fraction_of_fma_peak_2t_int8": $(nul "$FI2"),
  "sgemm_openblas_gflops_1t": $(nul "$SB1"),
  "sgemm_openblas_gflops_2t": $(nul "$SB2"),
  "throughput_s_all_cores": $(nul "$(val throughput_s_all_cores)"),
  "throughput_s_per_core": $(nul "$(val throughput_s_per_core)"),
  "throughput_gain_per_core": $(nul "$(val throughput_gain_per_core)"),
  "throughput_s_all_cores_int8": $(nul "$(val throughput_s_all_cores_int8)"),
  "throughput_s_per_core_int8": $(nul "$(val throughput_s_per_core_int8)"),
  "throughput_gain_per_core_int8": $(nul "$(val throughput_gain_per_core_int8)"),
  "cpu_s_1t": $(nul "$(val cpu_s_1t)"),
  "cpu_s_2t": $(nul "$(val cpu_s_2t)"),
  "split_idle_2t": $(nul "$(val split_idle_2t)"),
  "latency_s_2t_equal_halves": $(nul "$(val latency_s_2t_equal_halves)"),
  "peak_fma256_gflops_1t": $(nul "$(kval peak_fma256_gflops_1t)"),
  "peak_vnni_gops_1t": $(nul "$(kval peak_vnni_gops_1t)"),
  "peak_vnni_gops_2t": $(nul "$(kval peak_vnni_gops_2t)"),
  "peak_bf16_gflops_1t": $(nul "$(kval peak_bf16_gflops_1t)"),
  "peak_bf16_gflops_2t": $(nul "$(kval peak_bf16_gflops_2t)"),
  "peak_amx_bf16_gflops_1t": $(nul "$(kval peak_amx_bf16_gflops_1t)"),
  "peak_amx_bf16_gflops_2t": $(nul "$(kval peak_amx_bf16_gflops_2t)"),
  "peak_amx_int8_gops_1t": $(nul "$(kval peak_amx_int8_gops_1t)"),
  "peak_amx_int8_gops_2t": $(nul "$(kval peak_amx_int8_gops_2t)"),
  "bf16_forward_mix_plain_fraction_1t": $(nul "$(kval bf16_forward_mix_plain_fraction_1t)"),
  "bf16_forward_mix_plain_fraction_2t": $(nul "$(kval bf16_forward_mix_plain_fraction_2t)"),
  "bf16_forward_mix_acc_fraction_1t": $(nul "$(kval bf16_forward_mix_acc_fraction_1t)"),
  "bf16_forward_mix_acc_fraction_2t": $(nul "$(kval bf16_forward_mix_acc_fraction_2t)"),
  "trained_like_bf16_fraction_of_own_peak_1t": $(nul "$OWNB1"),
  "trained_like_bf16_fraction_of_own_peak_2t": $(nul "$OWNB2"),
  "trained_like_bf16acc_fraction_of_own_peak_1t": $(nul "$OWNA1"),
  "trained_like_bf16acc_fraction_of_own_peak_2t": $(nul "$OWNA2"),
  "trained_like_int8_fraction_of_own_peak_1t": $(nul "$OWNQ1"),
  "trained_like_int8_fraction_of_own_peak_2t": $(nul "$OWNQ2"),
  "sgemm_forward_mix_fraction_1t": $(nul "$(kval sgemm_forward_mix_${KERN}_fraction_1t)"),
  "sgemm_forward_mix_fraction_2t": $(nul "$(kval sgemm_forward_mix_${KERN}_fraction_2t)"),
  "sgemm_forward_mix_fraction_1t_openblas": $(nul "$(kval sgemm_forward_mix_openblas_fraction_1t)"),
  "sgemm_forward_mix_fraction_2t_openblas": $(nul "$(kval sgemm_forward_mix_openblas_fraction_2t)"),
  "latency_s_1t": $L1,
  "latency_s_2t": $L2,
  "preprocess_s_1t": $(val preprocess_s_1t),
  "preprocess_s_2t": $(val preprocess_s_2t),
  "visual_s_1t": $(val visual_s_1t),
  "visual_s_2t": $(val visual_s_2t),
  "tagging_s_1t": $(val tagging_s_1t),
  "tagging_s_2t": $(val tagging_s_2t),
  "gflop_per_image": $GFLOP,
  "sgemm_peak_gflops_1t": $P1,
  "sgemm_peak_gflops_2t": $P2,
  "fraction_of_sgemm_peak_1t": $F1,
  "fraction_of_sgemm_peak_2t": $F2,
  "cascade_pictures": $(nul "$(cval cascade_pictures)"),
  "cascade_exhaustive_s": $(nul "$(cval cascade_exhaustive_s)"),
  "cascade_default_s": $(nul "$(cval cascade_default_s)"),
  "cascade_default_recall_at_20": $(nul "$(cval cascade_default_recall_at_20)"),
  "cascade_default_tie_recall_at_20": $(nul "$(cval cascade_default_tie_recall_at_20)"),
  "cascade_tie_eps": $(nul "$(cval cascade_tie_eps)"),
  "cascade_speedup": $(nul "$(cval cascade_speedup)"),
  "cascade_real_recall_at_20": $(nul "$(cval cascade_real_recall_at_20)"),
  "cascade_real_tie_recall_at_20": $(nul "$(cval cascade_real_tie_recall_at_20)"),
  "cascade_code_bytes_per_picture": $(nul "$(cval cascade_code_bytes_per_picture)"),
  "tag_topk_held": $(nul "$(cval tag_topk_held)"),
  "tag_topk_ms": $(nul "$(cval tag_topk_ms)"),
  "tag_topk_postings_read": $(nul "$(cval tag_topk_postings_read)"),
  "example_prefilter200_recall_at_20": $(nul "$(cval example_sweep_200 | cut -d/ -f1)"),
  "example_prefilter200_s": $(nul "$(cval example_sweep_200 | cut -d/ -f3)"),
  "example_every_picture_s": $(nul "$(cval example_sweep_200 | cut -d/ -f4)"),
  "cascade_realonly_pictures": $(nul "$(cval realonly_cascade_pictures)"),
  "cascade_realonly_exhaustive_s": $(nul "$(cval realonly_cascade_exhaustive_s)"),
  "cascade_realonly_default_recall_at_20": $(nul "$(cval realonly_cascade_default_recall_at_20)"),
  "cascade_realonly_default_tie_recall_at_20": $(nul "$(cval realonly_cascade_default_tie_recall_at_20)"),
  "cascade_realonly_default_s": $(nul "$(cval realonly_cascade_default_s)"),
  "cascade_realonly_prefilter4000_recall_at_20": $(nul "$(cval realonly_cascade_sweep_16000_4000 | cut -d/ -f1)"),
  "cascade_realonly_prefilter4000_tie_recall_at_20": $(nul "$(cval realonly_cascade_sweep_16000_4000 | cut -d/ -f3)"),
  "cascade_realonly_prefilter4000_s": $(nul "$(cval realonly_cascade_sweep_16000_4000 | cut -d/ -f4)"),
  "cascade_exact_per_s": $(nul "$(cval exact_per_s)"),
  "cascade_exact_per_s_before": $(nul "$(cval exact_per_s_before)"),
  "cascade_exact_speedup": $(nul "$(cval exact_speedup)"),
  "cascade_exact_max_diff": $(nul "$(cval exact_max_diff)"),
  "cascade_budget_share_of_1m": $(nul "$(cval cascade_budget_share)"),
  "cascade_budget_prefilter": $(nul "$(cval cascade_budget_prefilter)"),
  "cascade_budget_recall_at_20": $(nul "$(cval cascade_budget_recall_at_20)"),
  "cascade_budget_s": $(nul "$(cval cascade_budget_s)"),
  "cascade_realonly_budget_prefilter": $(nul "$(cval realonly_cascade_budget_prefilter)"),
  "cascade_realonly_budget_recall_at_20": $(nul "$(cval realonly_cascade_budget_recall_at_20)"),
  "cascade_realonly_budget_tie_recall_at_20": $(nul "$(cval realonly_cascade_budget_tie_recall_at_20)"),
  "cascade_realonly_budget_s": $(nul "$(cval realonly_cascade_budget_s)"),
  "index_images_per_s": $(nul "$index"),
  "index_cores_busy": $(nul "$icores"),
  "index_sgemm_cores_busy": $(nul "$isgemm"),
  "index_cores_bound": $(nul "$ibound"),
  "index_decode_fraction": $(nul "$idec"),
  "index_pipeline_gain": $(nul "$igain"),
  "score_images_per_s": $(nul "$score"),
  "storage_bytes_per_image": $(nul "$storage"),
  "index_images_per_s_1x2t_fp32": $(nul "$(sval index_images_per_s_1x2t_fp32)"),
  "index_images_per_s_2x1t_fp32": $(nul "$(sval index_images_per_s_2x1t_fp32)"),
  "index_2x1t_over_1x2t_fp32": $(nul "$(sval index_2x1t_over_1x2t_fp32)"),
  "index_images_per_s_1x2t_int8": $(nul "$(sval index_images_per_s_1x2t_int8)"),
  "index_images_per_s_2x1t_int8": $(nul "$(sval index_images_per_s_2x1t_int8)"),
  "index_2x1t_over_1x2t_int8": $(nul "$(sval index_2x1t_over_1x2t_int8)"),
  "torch_port_latency_s_1t": $(nul "$TL1"),
  "torch_port_latency_s_2t": $(nul "$TL2"),
  "torch_port_visual_s_2t": $(nul "$(tval torch_visual_s_2t)"),
  "torch_port_tagging_s_2t": $(nul "$(tval torch_tagging_s_2t)"),
  "torch_port_peak_rss_bytes": $(nul "$(tval torch_peak_rss_bytes)"),
  "speedup_vs_torch_port_1t": $(nul "$SP1"),
  "speedup_vs_torch_port_2t": $(nul "$SP2"),
  "ours_paired_latency_s_1t": $(nul "$(tval ours_paired_latency_s_1t)"),
  "ours_paired_latency_s_2t": $(nul "$(tval ours_paired_latency_s_2t)"),
  "latency_s_1t_int8": $(nul "$(val latency_s_1t_int8)"),
  "latency_s_2t_int8": $(nul "$(val latency_s_2t_int8)"),
  "latency_s_1t_fp32_paired": $(nul "$(val latency_s_1t_fp32_paired)"),
  "latency_s_2t_fp32_paired": $(nul "$(val latency_s_2t_fp32_paired)"),
  "speedup_int8_1t": $(nul "$(val speedup_int8_1t)"),
  "speedup_int8_2t": $(nul "$(val speedup_int8_2t)"),
  "cpu_s_1t_int8": $(nul "$(val cpu_s_1t_int8)"),
  "cpu_s_1t_fp32_paired": $(nul "$(val cpu_s_1t_fp32_paired)"),
  "speedup_int8_1t_cpu": $(nul "$(val speedup_int8_1t_cpu)"),
  "speedup_int8_2t_cpu": $(nul "$(val speedup_int8_2t_cpu)"),
  "q8_kernel_speedup_1t": $(nul "$(val q8_kernel_speedup_1t)"),
  "q8_kernel_speedup_2t": $(nul "$(val q8_kernel_speedup_2t)"),
  "int8_max_prob_diff": $(nul "$(val int8_max_prob_diff)"),
  "int8_tagset_agreement": $(nul "$(val int8_tagset_agreement)"),
  "int8_agreement_inputs": $(nul "$(val int8_agreement_inputs)"),
  "int8_tag_flips": $(nul "$(val int8_tag_flips)"),
  "int8_flip_max_margin": $(nul "$(val int8_flip_max_margin)"),
  "golden_int8_max_prob_diff": $(nul "$(gval golden_int8_max_prob_diff)"),
  "golden_int8_tagset_agreement": $(nul "$(gval golden_int8_tagset_agreement)"),
  "trained_like_latency_s_1t_fp32": $(nul "$(pval latency_s_1t_fp32)"),
  "trained_like_latency_s_2t_fp32": $(nul "$(pval latency_s_2t_fp32)"),
  "trained_like_latency_s_1t_bf16": $(nul "$(pval latency_s_1t_bf16)"),
  "trained_like_latency_s_2t_bf16": $(nul "$(pval latency_s_2t_bf16)"),
  "trained_like_latency_s_1t_int8": $(nul "$(pval latency_s_1t_int8)"),
  "trained_like_latency_s_2t_int8": $(nul "$(pval latency_s_2t_int8)"),
  "trained_like_speedup_bf16_2t": $(nul "$(pval speedup_bf16_2t)"),
  "trained_like_speedup_int8_2t": $(nul "$(pval speedup_int8_2t)"),
  "trained_like_bf16_max_prob_diff": $(nul "$(pval bf16_max_prob_diff)"),
  "trained_like_bf16_tag_flips": $(nul "$(pval bf16_tag_flips)"),
  "trained_like_bf16_flip_max_margin": $(nul "$(pval bf16_flip_max_margin)"),
  "trained_like_int8_max_prob_diff": $(nul "$(pval int8_max_prob_diff)"),
  "trained_like_int8_tag_flips": $(nul "$(pval int8_tag_flips)"),
  "trained_like_int8_flip_max_margin": $(nul "$(pval int8_flip_max_margin)"),
  "trained_like_latency_s_1t_bf16acc": $(nul "$(pval latency_s_1t_bf16acc)"),
  "trained_like_latency_s_2t_bf16acc": $(nul "$(pval latency_s_2t_bf16acc)"),
  "trained_like_bf16acc_max_prob_diff": $(nul "$(pval bf16acc_max_prob_diff)"),
  "trained_like_bf16acc_tag_flips": $(nul "$(pval bf16acc_tag_flips)"),
  "trained_like_bf16acc_flip_max_margin": $(nul "$(pval bf16acc_flip_max_margin)"),
  "trained_like_fp32_prob_min": $(nul "$(pval fp32_prob_min)"),
  "trained_like_fp32_prob_max": $(nul "$(pval fp32_prob_max)"),
  "bf16_level": $(nul "$(pval bf16_level)"),
  "random_bf16_max_prob_diff": $(nul "$(rval bf16_max_prob_diff)"),
  "random_bf16_tag_flips": $(nul "$(rval bf16_tag_flips)"),
  "random_int8_max_prob_diff": $(nul "$(rval int8_max_prob_diff)"),
  "random_int8_tag_flips": $(nul "$(rval int8_tag_flips)"),
  "near_dup_pairs_per_s": $(nul "$(dval near_dup_pairs_per_s)"),
  "near_dup_loop_pairs_per_s": $(nul "$(dval near_dup_loop_pairs_per_s)"),
  "near_dup_speedup": $(nul "$(dval near_dup_speedup)"),
  "t2t_preprocess_s_1t": $(nul "$(t2v t2t_preprocess_s_1t)"),
  "t2t_preprocess_s_2t": $(nul "$(t2v t2t_preprocess_s_2t)"),
  "t2t_swin_s_1t": $(nul "$(t2v t2t_swin_s_1t)"),
  "t2t_swin_s_2t": $(nul "$(t2v t2t_swin_s_2t)"),
  "t2t_tagging_s_1t": $(nul "$(t2v t2t_tagging_s_1t)"),
  "t2t_tagging_s_2t": $(nul "$(t2v t2t_tagging_s_2t)"),
  "t2t_tags_total_s_1t": $(nul "$(t2v t2t_tags_total_s_1t)"),
  "t2t_tags_total_s_2t": $(nul "$(t2v t2t_tags_total_s_2t)"),
  "t2t_tag_encoder_s_1t": $(nul "$(t2v t2t_tag_encoder_s_1t)"),
  "t2t_tag_encoder_s_2t": $(nul "$(t2v t2t_tag_encoder_s_2t)"),
  "t2t_decoding_s_1t": $(nul "$(t2v t2t_decoding_s_1t)"),
  "t2t_decoding_s_2t": $(nul "$(t2v t2t_decoding_s_2t)"),
  "t2t_caption_total_s_1t": $(nul "$(t2v t2t_caption_total_s_1t)"),
  "t2t_caption_total_s_2t": $(nul "$(t2v t2t_caption_total_s_2t)"),
  "t2t_steps": $(nul "$(t2v t2t_steps)"),
  "t2t_gflop_tags": $(nul "$(t2v t2t_gflop_tags)"),
  "t2t_gflop_caption": $(nul "$(t2v t2t_gflop_caption)"),
  "t2t_gflop_decoding": $(nul "$(t2v t2t_gflop_decoding)"),
  "t2t_fma_peak_gflops_1t": $(nul "$(t2v t2t_fma_peak_gflops_1t)"),
  "t2t_fma_peak_gflops_2t": $(nul "$(t2v t2t_fma_peak_gflops_2t)"),
  "t2t_tags_gflops_1t": $(nul "$T2R_TAGS_1t"),
  "t2t_tags_gflops_2t": $(nul "$T2R_TAGS_2t"),
  "t2t_tags_fraction_of_fma_peak_1t": $(nul "$T2F_TAGS_1t"),
  "t2t_tags_fraction_of_fma_peak_2t": $(nul "$T2F_TAGS_2t"),
  "t2t_caption_gflops_1t": $(nul "$T2R_ALL_1t"),
  "t2t_caption_gflops_2t": $(nul "$T2R_ALL_2t"),
  "t2t_caption_fraction_of_fma_peak_1t": $(nul "$T2F_ALL_1t"),
  "t2t_caption_fraction_of_fma_peak_2t": $(nul "$T2F_ALL_2t"),
  "t2t_decoder_weights_gbs_1t": $(nul "$T2BW_1t"),
  "t2t_decoder_weights_gbs_2t": $(nul "$T2BW_2t"),
  "t2t_decoding_int8_s_1t": $(nul "$(t2v t2t_decoding_int8_s_1t)"),
  "t2t_decoding_int8_s_2t": $(nul "$(t2v t2t_decoding_int8_s_2t)"),
  "t2t_caption_total_int8_s_1t": $(nul "$(t2v t2t_caption_total_int8_s_1t)"),
  "t2t_caption_total_int8_s_2t": $(nul "$(t2v t2t_caption_total_int8_s_2t)"),
  "t2t_int8_decoding_speedup_1t": $(nul "$T2SP8_1"),
  "t2t_int8_decoding_speedup_2t": $(nul "$T2SP8_2"),
  "t2t_int8_weights_gbs_1t": $(nul "$T2BW8_1t"),
  "t2t_int8_weights_gbs_2t": $(nul "$T2BW8_2t"),
  "t2t_int8_same_caption": $(nul "$(t2v t2t_int8_same_caption)"),
  "t2t_int8_same_caption_gen": $(nul "$(t2v t2t_int8_same_caption_gen)"),
  "t2t_int8_gen_images": $(nul "$(t2v t2t_int8_gen_images)"),
  "t2t_decoding_verified_s_1t": $(nul "$(t2v t2t_decoding_verified_s_1t)"),
  "t2t_decoding_verified_s_2t": $(nul "$(t2v t2t_decoding_verified_s_2t)"),
  "t2t_caption_total_verified_s_1t": $(nul "$(t2v t2t_caption_total_verified_s_1t)"),
  "t2t_caption_total_verified_s_2t": $(nul "$(t2v t2t_caption_total_verified_s_2t)"),
  "t2t_verified_decoding_speedup_1t": $(nul "$T2SPV_1"),
  "t2t_verified_decoding_speedup_2t": $(nul "$T2SPV_2"),
  "t2t_verified_same_caption": $(nul "$(t2v t2t_verified_same_caption)"),
  "t2t_verified_same_caption_gen": $(nul "$(t2v t2t_verified_same_caption_gen)"),
  "t2t_verified_draft_steps": $(nul "$(t2v t2t_verified_draft_steps)"),
  "t2t_verified_draft_held": $(nul "$(t2v t2t_verified_draft_held)"),
  "t2t_verified_first_divergence": $(nul "$(t2v t2t_verified_first_divergence)"),
  "t2t_verified_draft_steps_gen": $(nul "$(t2v t2t_verified_draft_steps_gen)"),
  "t2t_verified_draft_held_gen": $(nul "$(t2v t2t_verified_draft_held_gen)"),
  "load_s": $(val load_s),
  "peak_rss_bytes": $(val peak_rss_bytes)
}
EOF
echo "bench: wrote $OUT/results.json"
