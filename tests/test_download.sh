#!/bin/sh
# test_download.sh — models/download.sh offline: file:// URLs serving small
# local files stand in for Hugging Face. Checks that a file with the pinned
# sum is accepted (and not fetched again), that a wrong or truncated file is
# refused (with the computed sum printed), that RAM_ALLOW_UNPINNED=1 accepts
# it, that the shipped pins (publisher sums and sizes of RAM++ and RAM) refuse
# a file of another size before hashing it, that the CLIP placeholder pins
# nothing, and that an interrupted
# download (a partial .part file) is resumed to the right sum.
# Prints PASS:/FAIL: lines (tests/run.sh counts them).
cd "$(dirname "$0")/.." || exit 2
# Only shell tools run here (nothing instrumented): under make asan, tests/run.sh
# preloads the sanitizer runtimes, with which curl hangs; drop them.
unset LD_PRELOAD ASAN_OPTIONS
command -v curl >/dev/null || command -v wget >/dev/null || { echo "SKIP: download: neither curl nor wget is installed"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "PASS: download.$1"; }
ko() { echo "FAIL: download.$1: $2"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

# The "published" file: 300 KB of deterministic bytes.
mkdir -p "$T/srv"
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "line %07d of the stand-in checkpoint\n", i }' >"$T/srv/ram_plus_swin_large_14m.pth"
good=$(sum "$T/srv/ram_plus_swin_large_14m.pth")
printf '%s  ram_plus_swin_large_14m.pth\n' "$good" >"$T/SUMS"

dl() { # dl DIR [VAR=value...]: fetch the RAM++ checkpoint into DIR from the stand-in
  d=$1; shift
  env RAM_DL_DIR="$d" RAM_SHA256SUMS="$T/SUMS" RAM_PLUS_URL="file://$T/srv/ram_plus_swin_large_14m.pth" \
    RAM_ALLOW_UNPINNED=0 "$@" timeout 60 sh models/download.sh fetch-ram_plus >"$T/out" 2>&1
}

# 1. correct sum accepted
if dl "$T/d1" && [ "$(sum "$T/d1/ram_plus_swin_large_14m.pth")" = "$good" ] && grep -q "sha256 $good OK" "$T/out"; then
  ok accepted_pinned
else ko accepted_pinned "$(tail -n 3 "$T/out")"; fi
# ... and a second run uses it without fetching
if dl "$T/d1" && grep -q "already here" "$T/out" && ! grep -q fetching "$T/out"; then ok not_refetched
else ko not_refetched "$(tail -n 3 "$T/out")"; fi

# 2. a wrong file is refused, its sum printed, nothing left under the final name
printf 'substituted\n' >"$T/srv/other"
if ! dl "$T/d2" RAM_PLUS_URL="file://$T/srv/other" && [ ! -f "$T/d2/ram_plus_swin_large_14m.pth" ] &&
   grep -q "refused: .*mismatch: got $(sum "$T/srv/other")" "$T/out"; then ok wrong_refused
else ko wrong_refused "$(tail -n 3 "$T/out")"; fi

# 3. a truncated file is refused too
head -c 1000 "$T/srv/ram_plus_swin_large_14m.pth" >"$T/srv/trunc"
if ! dl "$T/d3" RAM_PLUS_URL="file://$T/srv/trunc" && [ ! -f "$T/d3/ram_plus_swin_large_14m.pth" ]; then
  ok truncated_refused
else ko truncated_refused "$(tail -n 3 "$T/out")"; fi

# 4. RAM_ALLOW_UNPINNED=1 accepts it, saying so
if dl "$T/d4" RAM_PLUS_URL="file://$T/srv/other" RAM_ALLOW_UNPINNED=1 && [ -f "$T/d4/ram_plus_swin_large_14m.pth" ] &&
   grep -q "accepted because RAM_ALLOW_UNPINNED=1" "$T/out"; then ok unpinned_override
else ko unpinned_override "$(tail -n 3 "$T/out")"; fi

# 5. the shipped SHA256SUMS pins the publisher's RAM++ and RAM sums and sizes: the
#    stand-in is refused by its size (before hashing); the CLIP placeholder pins
#    nothing, so a CLIP file is refused with its computed sum printed
if ! dl "$T/d5" RAM_SHA256SUMS=models/SHA256SUMS && grep -q "size mismatch: got [0-9]* bytes, pinned 3010210801" "$T/out" &&
   [ ! -f "$T/d5/ram_plus_swin_large_14m.pth" ]; then ok shipped_size_refused
else ko shipped_size_refused "$(tail -n 3 "$T/out")"; fi
if grep -q "^497c178836ba66698ca226c7895317e6e800034be986452dbd2593298d50e87d  ram_plus_swin_large_14m.pth$" models/SHA256SUMS &&
   grep -q "^15c729c793af28b9d107c69f85836a1356d76ea830d4714699fb62e55fcc08ed  ram_swin_large_14m.pth$" models/SHA256SUMS &&
   grep -q "^#size 5625634877 ram_swin_large_14m.pth$" models/SHA256SUMS; then ok shipped_pins
else ko shipped_pins "models/SHA256SUMS lacks the published RAM++/RAM pins"; fi
# the Tag2Text release pin (docs/TAG2TEXT.md section 7): a stand-in is refused by its size
if grep -q "^4ce96f0ce98f940a6680d567f66a38ccc9ca8c4e638e5f5c5c2e881a0e3502ac  tag2text_swin_14m.pth$" models/SHA256SUMS &&
   grep -q "^#size 4478705095 tag2text_swin_14m.pth$" models/SHA256SUMS &&
   ! env RAM_DL_DIR="$T/d5t" TAG2TEXT_URL="file://$T/srv/ram_plus_swin_large_14m.pth" RAM_ALLOW_UNPINNED=0 \
     timeout 60 sh models/download.sh fetch-tag2text >"$T/out" 2>&1 &&
   grep -q "size mismatch: got [0-9]* bytes, pinned 4478705095" "$T/out" && [ ! -f "$T/d5t/tag2text_swin_14m.pth" ]; then
  ok shipped_tag2text_pin
else ko shipped_tag2text_pin "$(tail -n 3 "$T/out")"; fi
if ! env RAM_DL_DIR="$T/d5c" CLIP_URL="file://$T/srv/ram_plus_swin_large_14m.pth" RAM_ALLOW_UNPINNED=0 \
     timeout 60 sh models/download.sh fetch-clip >"$T/out" 2>&1 &&
   grep -q "clip_vit_b16.safetensors: no pinned sha256 .*computed $good" "$T/out"; then ok placeholder_refused
else ko placeholder_refused "$(tail -n 3 "$T/out")"; fi

# 5b. a pinned size with the right size but another sum is refused by its sum;
#     a wrong size is refused even when the sum line would match
printf '%s  ram_plus_swin_large_14m.pth\n#size %s ram_plus_swin_large_14m.pth\n' "$good" \
  "$(wc -c <"$T/srv/ram_plus_swin_large_14m.pth" | tr -d ' ')" >"$T/SUMS"
if dl "$T/d5s" && grep -q "sha256 $good OK" "$T/out"; then ok size_and_sum_accepted
else ko size_and_sum_accepted "$(tail -n 3 "$T/out")"; fi
sed 's/^#size [0-9]*/#size 12345/' "$T/SUMS" >"$T/SUMS2" && mv "$T/SUMS2" "$T/SUMS"
if ! dl "$T/d5w" && grep -q "size mismatch: got [0-9]* bytes, pinned 12345" "$T/out" &&
   [ ! -f "$T/d5w/ram_plus_swin_large_14m.pth" ]; then ok size_refused
else ko size_refused "$(tail -n 3 "$T/out")"; fi
printf '%s  ram_plus_swin_large_14m.pth\n' "$good" >"$T/SUMS"

# 6. an interrupted download (first 100,000 bytes in .part) is resumed to the right sum
mkdir -p "$T/d6"
head -c 100000 "$T/srv/ram_plus_swin_large_14m.pth" >"$T/d6/ram_plus_swin_large_14m.pth.part"
if dl "$T/d6" && grep -q "resuming .* at 100000 bytes" "$T/out" &&
   [ "$(sum "$T/d6/ram_plus_swin_large_14m.pth")" = "$good" ] && [ ! -f "$T/d6/ram_plus_swin_large_14m.pth.part" ]; then
  ok resumed
else ko resumed "$(tail -n 3 "$T/out")"; fi

# 7. an unknown target is an error
if ! sh models/download.sh nonsense >"$T/out" 2>&1 && grep -q "unknown target" "$T/out"; then
  ok unknown_target
else ko unknown_target "$(tail -n 3 "$T/out")"; fi
