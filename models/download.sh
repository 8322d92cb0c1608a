#!/bin/sh
# models/download.sh — fetches the official RAM++, RAM and Tag2Text checkpoints and the
# CLIP ViT-B/16 weights, checks each against its pinned size and SHA-256
# (models/SHA256SUMS) and converts them with build/ram-convert into
#   models/ram_plus.ram       RAM++ (ram_plus_swin_large_14m.pth)
#   models/ram.ram            RAM   (ram_swin_large_14m.pth)
#   models/ram_plus_clip.ram  RAM++ with the CLIP ViT-B/16 text tower (ram_score)
#   models/tag2text.ram       Tag2Text (tag2text_swin_14m.pth; captions)
#
#   sh models/download.sh [all|ram_plus|ram|clip|tag2text|fetch-only|fetch-ram_plus|...]   # make model = all
#
# Environment:
#   RAM_DL_DIR            where the checkpoints go (default models/download)
#   RAM_OUT_DIR           where the .ram files go (default models)
#   RAM_BUILD             build folder holding ram-convert (default build)
#   RAM_PLUS_URL, RAM_URL, CLIP_URL, TAG2TEXT_URL    override the source URLs
#   RAM_SHA256SUMS        the sums file (default models/SHA256SUMS)
#   RAM_ALLOW_UNPINNED=1  accept a file whose sum is not pinned or does not match
#                         (the computed sum is printed so it can be pinned)
#
# HOW IT WORKS: each file is downloaded to NAME.part with resume (curl -C -, or
# wget -c), so an interrupted run continues where it stopped; only a file whose
# SHA-256 matches its pinned line is renamed to NAME and used. A complete file
# with a wrong sum is refused (and kept as NAME.part.bad for inspection), so a
# corrupted or substituted download is never converted. Files already present
# and matching are not fetched again.
set -u
cd "$(dirname "$0")/.." || exit 2

# The URLs below are written from knowledge of the public hosting (Hugging Face);
# there is no network on the machine that wrote them, so they are UNVERIFIED.
RAM_PLUS_URL=${RAM_PLUS_URL:-https://huggingface.co/xinyu1205/recognize-anything-plus-model/resolve/main/ram_plus_swin_large_14m.pth}
RAM_URL=${RAM_URL:-https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/ram_swin_large_14m.pth}
TAG2TEXT_URL=${TAG2TEXT_URL:-https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/tag2text_swin_14m.pth}
# openai/clip-vit-base-patch16 in Hugging Face CLIPModel names (ram-convert --clip reads text_model.*).
CLIP_URL=${CLIP_URL:-https://huggingface.co/openai/clip-vit-base-patch16/resolve/main/model.safetensors}

DL=${RAM_DL_DIR:-models/download}
OUTDIR=${RAM_OUT_DIR:-models}
BUILD=${RAM_BUILD:-build}
SUMS=${RAM_SHA256SUMS:-models/SHA256SUMS}
WHAT=${1:-all}

say() { echo "download: $*"; }
die() { echo "download: error: $*" >&2; exit 1; }
size() { wc -c <"$1" | tr -d ' '; }

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null; then shasum -a 256 "$1" | cut -d' ' -f1
  else die "neither sha256sum nor shasum is installed"; fi
}

# The pinned sum of a file name: the first field of its line in $SUMS; lines
# whose sum is not 64 hex digits (the "unverified" placeholders) pin nothing.
pinned() {
  [ -f "$SUMS" ] || return 0
  awk -v n="$1" '$1 !~ /^#/ && $2 == n && length($1) == 64 && $1 !~ /[^0-9a-f]/ { print $1; exit }' "$SUMS"
}

# The pinned size of a file name: "#size BYTES NAME" in $SUMS, or nothing.
pinned_size() {
  [ -f "$SUMS" ] || return 0
  awk -v n="$1" '$1 == "#size" && $3 == n && $2 ~ /^[0-9]+$/ { print $2; exit }' "$SUMS"
}

# check NAME FILE: 0 when FILE's size and sum are the pinned ones (or
# RAM_ALLOW_UNPINNED=1). The size is checked first: a truncated or padded
# file of several GB is refused without hashing it.
check() {
  name=$1; file=$2
  want_size=$(pinned_size "$name")
  if [ -n "$want_size" ] && [ "$(size "$file")" != "$want_size" ]; then
    msg="$name: size mismatch: got $(size "$file") bytes, pinned $want_size"
    if [ "${RAM_ALLOW_UNPINNED:-0}" = 1 ]; then
      say "$msg; accepted because RAM_ALLOW_UNPINNED=1"
      return 0
    fi
    echo "download: refused: $msg (set RAM_ALLOW_UNPINNED=1 to accept it)" >&2
    return 1
  fi
  got=$(sha256 "$file")
  want=$(pinned "$name")
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    say "$name: sha256 $got OK"
    return 0
  fi
  if [ -z "$want" ]; then
    msg="$name: no pinned sha256 in $SUMS (computed $got)"
  else
    msg="$name: sha256 mismatch: got $got, pinned $want"
  fi
  if [ "${RAM_ALLOW_UNPINNED:-0}" = 1 ]; then
    say "$msg; accepted because RAM_ALLOW_UNPINNED=1"
    return 0
  fi
  echo "download: refused: $msg (set RAM_ALLOW_UNPINNED=1 to accept it)" >&2
  return 1
}

# fetch NAME URL: leaves $DL/NAME verified, or fails.
fetch() {
  name=$1; url=$2; dst=$DL/$name; part=$dst.part
  mkdir -p "$DL" || die "cannot create $DL"
  if [ -f "$dst" ]; then
    say "$name: already here ($(size "$dst") bytes), checking"
    check "$name" "$dst" && return 0
    mv "$dst" "$dst.bad"; return 1
  fi
  if [ -f "$part" ]; then say "$name: resuming $url at $(size "$part") bytes"
  else say "$name: fetching $url"; fi
  if command -v curl >/dev/null; then
    # -C - continues after the bytes already in $part; --fail: HTTP errors are errors.
    curl -L --fail --retry 3 -C - -o "$part" "$url" || { say "$name: download failed (partial file kept; rerun to resume)"; return 1; }
  elif command -v wget >/dev/null; then
    wget -c -O "$part" "$url" || { say "$name: download failed (partial file kept; rerun to resume)"; return 1; }
  else
    die "neither curl nor wget is installed"
  fi
  say "$name: $(size "$part") bytes"
  if check "$name" "$part"; then
    mv "$part" "$dst"
    return 0
  fi
  mv "$part" "$part.bad"
  return 1
}

convert() {
  out=$1; shift
  [ -x "$BUILD/ram-convert" ] || die "$BUILD/ram-convert is missing (run make first)"
  mkdir -p "$OUTDIR"
  say "converting: $BUILD/ram-convert $* -o $OUTDIR/$out"
  "$BUILD/ram-convert" "$@" -o "$OUTDIR/$out" >/dev/null || die "ram-convert failed for $out"
  say "$OUTDIR/$out: $(size "$OUTDIR/$out") bytes"
}

bpe() {
  v=$BUILD/bpe_simple_vocab_16e6.txt
  [ -f "$v" ] || { mkdir -p "$BUILD" && gzip -dc models/bpe_simple_vocab_16e6.txt.gz >"$v"; }
  echo "$v"
}

rc=0
case $WHAT in
  fetch-ram_plus) fetch ram_plus_swin_large_14m.pth "$RAM_PLUS_URL" || rc=1 ;;
  fetch-ram) fetch ram_swin_large_14m.pth "$RAM_URL" || rc=1 ;;
  fetch-clip) fetch clip_vit_b16.safetensors "$CLIP_URL" || rc=1 ;;
  fetch-tag2text) fetch tag2text_swin_14m.pth "$TAG2TEXT_URL" || rc=1 ;;
  fetch-only)
    for w in ram_plus ram clip tag2text; do sh models/download.sh "fetch-$w" || rc=1; done ;;
  ram_plus)
    fetch ram_plus_swin_large_14m.pth "$RAM_PLUS_URL" && convert ram_plus.ram "$DL/ram_plus_swin_large_14m.pth" || rc=1 ;;
  ram)
    fetch ram_swin_large_14m.pth "$RAM_URL" && convert ram.ram "$DL/ram_swin_large_14m.pth" || rc=1 ;;
  clip)
    fetch ram_plus_swin_large_14m.pth "$RAM_PLUS_URL" && fetch clip_vit_b16.safetensors "$CLIP_URL" &&
      convert ram_plus_clip.ram "$DL/ram_plus_swin_large_14m.pth" --clip "$DL/clip_vit_b16.safetensors" \
        --bpe "$(bpe)" || rc=1 ;;
  tag2text)
    fetch tag2text_swin_14m.pth "$TAG2TEXT_URL" && convert tag2text.ram "$DL/tag2text_swin_14m.pth" || rc=1 ;;
  all)
    for w in ram_plus ram clip tag2text; do sh models/download.sh "$w" || rc=1; done ;;
  *) die "unknown target '$WHAT' (all, ram_plus, ram, clip, tag2text, fetch-only, fetch-ram_plus, fetch-ram, fetch-clip, fetch-tag2text)" ;;
esac
[ $rc = 0 ] && say "$WHAT: done" || say "$WHAT: FAILED"
exit $rc
