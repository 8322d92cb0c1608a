#!/bin/sh
# make bench-peers: this engine against the official PyTorch RAM++ and ONNX
# Runtime, in one run on the same images (docs/BENCH.md). Not part of make
# test or make bench. Prepares what is missing under BUILD/peers/, then runs
# tests/bench/peers.py, which prints the table and writes BUILD/bench/peers.json.
#
#   RAM_OFFICIAL_REPO=/path/to/recognize-anything sh tests/bench/peers.sh [BUILD]
#
# Environment:
#   RAM_OFFICIAL_REPO  a checkout of the official code, xinyu1205/recognize-
#                      anything (required; never part of this repository)
#   RAM_PEERS_RUNS     timed forwards per path and thread count (default 5)
#   RAM_PEERS_THREADS  thread counts (default "1 2")
#   RAM_PEERS_BF16     our bf16 model file; default: BUILD/peers/ours_bf16.ram made
#                      by ram-convert --dtype bf16 when ram-convert offers it;
#                      0 leaves bf16 out (n/a)
#   RAM_PEERS_INT8     our int8 model file; default: ram-convert --quant int8 of
#                      the same weights; 0 leaves int8 out (n/a)
#   RAM_PEERS_SKIP     peers to leave out: "official", "ort" or both
#   RAM_PEERS_PHOTOS   use only the first N fidelity photos (default all 17; 0: timing only)
#   RAM_PEERS_IMAGE    the image timed (default scikit-image's astronaut.png)
#   RAM_PEERS_PYTHON   the Python with Debian's torch (default /usr/bin/python3)
#   RAM_PEERS_SEED     seed of the random official model (default 19)
#   RAM_PEERS_T2T_RUNS timed Tag2Text captions per thread count (default 3); the
#                      Tag2Text comparison is skipped with RAM_PEERS_SKIP="tag2text"
BUILD=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
P=$BUILD/peers
mkdir -p "$P" "$BUILD/bench"
PY=${RAM_PEERS_PYTHON:-/usr/bin/python3}
REPO=${RAM_OFFICIAL_REPO:-}
say() { echo "bench-peers: $*"; }

if [ -z "$REPO" ] || [ ! -f "$REPO/ram/models/ram_plus.py" ]; then
  say "RAM_OFFICIAL_REPO must name a checkout of the official code, the public GitHub repository"
  say "xinyu1205/recognize-anything, cloned outside this repository (e.g. /work/peers/recognize-anything);"
  say "then: RAM_OFFICIAL_REPO=/work/peers/recognize-anything make bench-peers (docs/BENCH.md)"
  exit 2
fi
REPO=$(cd "$REPO" && pwd)
if ! "$PY" -c 'import torch, torchvision, PIL, scipy, numpy' 2>/dev/null; then
  say "$PY lacks torch/torchvision/PIL/scipy: apt-get install python3-torch python3-torchvision python3-pil python3-scipy"
  exit 2
fi
SK=$("$PY" -c 'import os, skimage.data as d; print(os.path.dirname(d.__file__))' 2>/dev/null)
MPL=$("$PY" -c 'import matplotlib; print(matplotlib.get_data_path() + "/sample_data")' 2>/dev/null)
if [ -z "$SK" ] || [ -z "$MPL" ]; then
  say "the fidelity photos come from Debian's python3-skimage and python3-matplotlib: apt-get install them"
  exit 2
fi
if ! echo " ${RAM_PEERS_SKIP:-} " | grep -q ' ort '; then
  command -v node >/dev/null || { say "node is needed for ONNX Runtime (apt-get install nodejs npm)"; exit 2; }
fi

# ONNX Runtime from npm into BUILD/peers (its install script would fetch GPU
# binaries that the CPU provider does not need: skipped).
if [ ! -d "$P/node_modules/onnxruntime-node" ] && ! echo " ${RAM_PEERS_SKIP:-} " | grep -q ' ort '; then
  say "installing onnxruntime-node into $P (npm)"
  [ -f "$P/package.json" ] || echo '{"name": "ram-bench-peers", "private": true}' >"$P/package.json"
  (cd "$P" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node >/dev/null) || exit 1
fi

# The shims of peers_shims.py leave the official arithmetic alone: the official
# classes reproduce the project's golden logits (tests/data/golden) with them.
export RAM_OFFICIAL_REPO="$REPO"
if ! "$PY" tests/bench/peers_official.py check-golden tests/data/golden >"$P/check_golden.out" 2>&1; then
  tail -n 5 "$P/check_golden.out"; say "the official code with the shims does not reproduce the goldens"; exit 1
fi
say "$(tail -n 1 "$P/check_golden.out")"

# The official full-size RAM++ with random weights, in the official layout.
PTH=$P/ram_plus_official_random.pth
if [ ! -f "$PTH" ]; then
  say "writing the official RAM++ (Swin-L 384) with random weights to $PTH"
  "$PY" tests/bench/peers_official.py make-model "$PTH" --seed "${RAM_PEERS_SEED:-19}" 2>&1 | grep -v '^---\|^load checkpoint\|^build/\|^/' || exit 1
  [ -f "$PTH" ] || exit 1
fi
ONNX=$P/official.onnx
if ! echo " ${RAM_PEERS_SKIP:-} " | grep -q ' ort ' && { [ ! -f "$ONNX" ] || [ "$PTH" -nt "$ONNX" ]; }; then
  say "exporting it to ONNX with torch.onnx ($ONNX, about 2 minutes)"
  "$PY" tests/bench/peers_official.py export-onnx "$PTH" "$ONNX" 2>&1 | grep -v '^---\|^load checkpoint\|^build/\|^/\|Warning\|^ *\(if\|for\|assert\|return\)' || exit 1
  [ -f "$ONNX" ] || exit 1
fi

# Ours: the same .pth through ram-convert (again whenever ram-convert is newer).
D=$REPO/ram/data
TAGS="--tags $D/ram_tag_list.txt --tags-zh $D/ram_tag_list_chinese.txt --thresholds $D/ram_tag_list_threshold.txt"
conv() { # conv OUT [options]: converts when missing or older than the .pth or ram-convert
  out=$1; shift
  if [ ! -f "$out" ] || [ "$PTH" -nt "$out" ] || [ "$BUILD/ram-convert" -nt "$out" ]; then
    "$BUILD/ram-convert" "$PTH" -o "$out" $TAGS "$@" >/dev/null
  fi
}
conv "$P/ours_fp32.ram" || exit 1
OURS="fp32=$P/ours_fp32.ram"
BF16=${RAM_PEERS_BF16:-}
if [ -z "$BF16" ]; then
  if "$BUILD/ram-convert" --help 2>&1 | grep -q 'bf16'; then
    conv "$P/ours_bf16.ram" --dtype bf16 && BF16=$P/ours_bf16.ram
  else
    say "ram-convert has no --dtype bf16 here: bf16 is n/a"
  fi
fi
[ -n "$BF16" ] && [ "$BF16" != 0 ] && OURS="$OURS bf16=$BF16"
INT8=${RAM_PEERS_INT8:-}
if [ -z "$INT8" ]; then
  conv "$P/ours_int8.ram" --quant int8 && INT8=$P/ours_int8.ram
fi
[ -n "$INT8" ] && [ "$INT8" != 0 ] && OURS="$OURS int8=$INT8"

# Real photos: scikit-image's and matplotlib's sample photographs.
PHOTOS=
for f in astronaut.png chelsea.png coffee.png rocket.jpg motorcycle_left.png motorcycle_right.png \
         hubble_deep_field.jpg retina.jpg ihc.png camera.png coins.png moon.png grass.png gravel.png brick.png; do
  [ -f "$SK/$f" ] && PHOTOS="$PHOTOS $SK/$f"
done
for f in grace_hopper.jpg Minduka_Present_Blue_Pack.png; do
  [ -f "$MPL/$f" ] && PHOTOS="$PHOTOS $MPL/$f"
done
[ -n "${RAM_PEERS_PHOTOS:-}" ] && PHOTOS=$(echo $PHOTOS | tr ' ' '\n' | head -n "$RAM_PEERS_PHOTOS" | tr '\n' ' ')
IMAGE=${RAM_PEERS_IMAGE:-$SK/astronaut.png}

say "models: $OURS; official $PTH; ONNX $ONNX"
RAM_PEERS_OURS="$OURS" RAM_PEERS_OFFICIAL_PTH="$PTH" RAM_PEERS_ONNX="$ONNX" RAM_PEERS_BUILD="$BUILD" \
RAM_PEERS_NODE_MODULES="$P/node_modules" RAM_PEERS_PYTHON="$PY" \
  "$PY" tests/bench/peers.py "$BUILD/bench" "$IMAGE" $PHOTOS
rc=$?

# Tag2Text (issue 14): the official generate (inference_tag2text's call) against
# our ram_caption, the same random weights (the official constructor's, through
# ram-convert for us), the same image, interleaved in one run (peers_tag2text.py).
if ! echo " ${RAM_PEERS_SKIP:-} " | grep -q ' tag2text '; then
  TPTH=$P/tag2text_official_random.pth
  if [ ! -f "$TPTH" ]; then
    say "writing the official Tag2Text (Swin-B 384) with random weights to $TPTH"
    "$PY" tests/bench/peers_tag2text.py make-model "$TPTH" --seed 14 2>&1 | grep '^peers_tag2text'
    [ -f "$TPTH" ] || exit 1
  fi
  TOURS=$P/tag2text_ours.ram
  if [ ! -f "$TOURS" ] || [ "$TPTH" -nt "$TOURS" ] || [ "$BUILD/ram-convert" -nt "$TOURS" ]; then
    "$BUILD/ram-convert" "$TPTH" -o "$TOURS" >/dev/null || exit 1
  fi
  say "Tag2Text: the official generate against ram_caption (${RAM_PEERS_T2T_RUNS:-3} runs per thread count)"
  "$PY" tests/bench/peers_tag2text.py run "$TPTH" "$TOURS" "$BUILD/ram" "$IMAGE" "${RAM_PEERS_T2T_RUNS:-3}" \
    2>"$BUILD/bench/peers_tag2text.err" >"$BUILD/bench/peers_tag2text.out" ||
    { tail -n 5 "$BUILD/bench/peers_tag2text.err"; rc=1; }
  grep -v '_tags ' "$BUILD/bench/peers_tag2text.out"
fi
exit $rc
