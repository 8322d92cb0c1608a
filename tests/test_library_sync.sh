#!/bin/sh
# test_library_sync.sh — build/ram-index keeps an index in step with a real
# folder (nested, PNG and JPEG, a duplicate, a symlinked folder, an oversized
# and a broken file): the same rows whether the folder is named `lib`,
# `./lib/` or by its absolute path; after a rename, a delete, an edit in place
# and an addition, a rerun reads only the touched files, the moved file costs
# no inference, the edited one has new probabilities, the gone one is
# reported and --prune deletes its row. Bundled default model.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
fail() { echo "FAIL: sync.$1: $2"; }
pass() { echo "PASS: sync.$1"; }
for f in "$B/ram-index" "$B/ram.so"; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
command -v sqlite3 >/dev/null 2>&1 || { fail sqlite3 "the sqlite3 shell is not installed"; exit 1; }
B=$(cd "$B" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
MODEL_ARGS=
if [ -f models/default.ram ]; then
  RAM_MODEL="$ROOT/models/default.ram"; export RAM_MODEL
else
  fail default_model "models/default.ram is missing (make builds it): run on the golden test model"
  MODEL_ARGS="--model $B/models/golden_ram_plus_clip.ram"
fi
P=demo/photos
L="$T/lib"
mkdir -p "$L/a/b" "$L/c" "$T/outside"
cp "$P"/01-*.png "$L/a/one.png"
cp "$P"/02-*.jpg "$L/a/b/two.jpg"
cp "$P"/03-*.png "$L/c/three.png"
cp "$P"/01-*.png "$L/c/dup.png"                 # a duplicate of a/one.png
cp "$P"/04-*.png "$T/outside/four.png"
ln -s "$T/outside" "$L/linked"                  # a symlinked folder
echo "not a picture" > "$L/c/broken.jpg"        # a broken file
# an oversized picture: 12000 x 9000 (108 megapixels) grey PNG, 100 KB
python3 - "$L/a/huge.png" <<'PYEOF'
import struct, sys, zlib
w, h = 12000, 9000
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
raw = zlib.compress((b"\0" + b"\x80" * w) * h, 9)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                              + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
PYEOF

idx() { (cd "$T" && "$B/ram-index" "$@" $MODEL_ARGS); }
q() { sqlite3 -cmd ".load $B/ram" "$T/lib.db" "$1"; }
rows() { sqlite3 "$T/lib.db" "SELECT group_concat(path, ' ') FROM (SELECT path FROM photos_files ORDER BY path)"; }
summary() { grep '^ram-index: [0-9]* new, ' "$1"; }

# 1. first run
idx lib lib.db 2>"$T/r1.err"; rc=$?
s=$(summary "$T/r1.err")
[ $rc = 0 ] && [ "$s" = "ram-index: 4 new, 0 unchanged, 0 changed, 0 moved, 0 gone; not indexed: 2 (1 not images, 1 too large, 0 unreadable); 3 inferences" ] &&
  pass first_run || fail first_run "rc=$rc: $(cat "$T/r1.err")"
r1=$(rows)
[ "$r1" = "lib/a/b/two.jpg lib/a/one.png lib/c/dup.png lib/c/three.png" ] && pass rows_normalised || fail rows_normalised "$r1"

# 2. the same folder spelled otherwise: the same rows, nothing read
for spelling in ./lib/ "$T/lib" "$T//lib/./"; do
  idx "$spelling" lib.db 2>"$T/r2.err"; rc=$?
  s=$(summary "$T/r2.err")
  [ $rc = 0 ] && [ "$(rows)" = "$r1" ] &&
    [ "$s" = "ram-index: 0 new, 4 unchanged, 0 changed, 0 moved, 0 gone; not indexed: 2 (1 not images, 1 too large, 0 unreadable); 0 inferences" ] ||
    { fail same_rows "$spelling: rc=$rc, rows $(rows): $(cat "$T/r2.err")"; spelling=bad; break; }
done
[ "$spelling" != bad ] && pass same_rows

# 3. rename, delete, edit in place, add; rerun
before=$(sqlite3 "$T/lib.db" "SELECT hex(i.probs) FROM photos_files f JOIN photos_images i ON i.id = f.img WHERE f.path = 'lib/c/three.png'")
mv "$L/a/one.png" "$L/a/uno.png"
rm "$L/a/b/two.jpg"
cat "$P"/05-*.jpg > "$L/c/three.png"                # other bytes, same name
cp "$P"/06-*.png "$L/c/six.png"
idx lib lib.db -v 2>"$T/r3.err"; rc=$?
s=$(summary "$T/r3.err")
[ $rc = 0 ] && [ "$s" = "ram-index: 1 new, 1 unchanged, 1 changed, 1 moved, 1 gone (--prune deletes their rows); not indexed: 2 (1 not images, 1 too large, 0 unreadable); 2 inferences" ] &&
  pass rerun_counts || fail rerun_counts "rc=$rc: $(cat "$T/r3.err")"
# 2 inferences for the edited and the added file: the move cost none
grep -q 'lib/a/b/two.jpg is gone (--prune deletes its row)' "$T/r3.err" && pass gone_reported || fail gone_reported "$(cat "$T/r3.err")"
after=$(sqlite3 "$T/lib.db" "SELECT hex(i.probs) FROM photos_files f JOIN photos_images i ON i.id = f.img WHERE f.path = 'lib/c/three.png'")
[ -n "$after" ] && [ "$after" != "$before" ] && pass edited_new_probs || fail edited_new_probs "probabilities unchanged"
r3=$(rows)
[ "$r3" = "lib/a/b/two.jpg lib/a/uno.png lib/c/dup.png lib/c/six.png lib/c/three.png" ] && pass rows_after_changes || fail rows_after_changes "$r3"

# 4. --prune: rows = files present
idx lib lib.db --prune 2>"$T/r4.err"; rc=$?
s=$(summary "$T/r4.err")
present=$(cd "$T" && find lib -type f \( -name '*.png' -o -name '*.jpg' \) ! -name huge.png ! -name broken.jpg | sort | tr '\n' ' ' | sed 's/ $//')
[ $rc = 0 ] && [ "$(rows)" = "$present" ] &&
  [ "$s" = "ram-index: 0 new, 4 unchanged, 0 changed, 0 moved, 1 gone (rows deleted); not indexed: 2 (1 not images, 1 too large, 0 unreadable); 0 inferences" ] &&
  pass prune || fail prune "rc=$rc, rows $(rows), present $present: $(cat "$T/r4.err")"
out=$(q "INSERT INTO photos(photos) VALUES('integrity-check'); SELECT count(*) FROM ram_index_stat WHERE tbl = 'photos'" 2>&1)
[ "$out" = 4 ] && pass integrity || fail integrity "$out"
