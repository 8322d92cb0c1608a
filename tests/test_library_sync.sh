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
if [ -z "$MODEL_ARGS" ]; then
  grep -q "^ram-index: this is \(the bundled\|a\) demo .*model (41 tags, 64x64 pixels): it does not recognise real-world objects; for photos run \`make model\`, then --model models/ram_plus.ram$" "$T/r1.err" &&
    pass demo_model_said || fail demo_model_said "$(cat "$T/r1.err")"
fi
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
roots=$(sqlite3 "$T/lib.db" "SELECT group_concat(tbl || ':' || root) FROM ram_index_roots")
[ "$roots" = "photos:lib" ] && pass root_recorded || fail root_recorded "$roots"

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

# 5. the symlinked folder was named and left out; --follow-symlinks walks it,
#    once, through a loop too
grep -q '^ram-index: lib/linked is a symlink to a folder: not followed (--follow-symlinks follows it)$' "$T/r1.err" &&
  pass symlink_reported || fail symlink_reported "$(cat "$T/r1.err")"
ln -s .. "$L/c/loop"                                    # lib/c/loop -> lib
idx lib lib.db --follow-symlinks 2>"$T/r5.err"; rc=$?
s=$(summary "$T/r5.err")
[ $rc = 0 ] && [ "$(rows)" = "$present lib/linked/four.png" ] &&
  [ "$s" = "ram-index: 1 new, 4 unchanged, 0 changed, 0 moved, 0 gone; not indexed: 2 (1 not images, 1 too large, 0 unreadable); 1 inferences" ] &&
  pass follow_symlinks || fail follow_symlinks "rc=$rc, rows $(rows): $(cat "$T/r5.err")"
rm "$L/c/loop"

# 6. skip reasons are the decoder's text, remembered, named by -v on every run
why=$(sqlite3 "$T/lib.db" "SELECT path || ': ' || reason FROM ram_index_skipped ORDER BY path" | tr '\n' '|')
[ "$why" = "lib/a/huge.png: ram_index: image: 12000x9000 is 108000000 pixels, over the limit of 100000000|lib/c/broken.jpg: ram_index: image: unrecognised format: VipsForeignLoad: buffer is not in a known format|" ] &&
  pass skip_reasons || fail skip_reasons "$why"
idx lib lib.db -v 2>"$T/r6.err"
grep -q '^ram-index: skipped lib/a/huge.png: ram_index: image: 12000x9000 is 108000000 pixels, over the limit of 100000000 (unchanged since a previous run: not read again)$' "$T/r6.err" &&
  pass verbose_every_run || fail verbose_every_run "$(cat "$T/r6.err")"

# 7. --max-pixels, --exclude (repeatable), --files-from (stdin) on new tables
idx lib lib.db --table small --max-pixels 1000 2>"$T/r7.err"; rc=$?
s=$(summary "$T/r7.err")
[ $rc = 0 ] && [ "$s" = "ram-index: 0 new, 0 unchanged, 0 changed, 0 moved, 0 gone; not indexed: 6 (1 not images, 5 too large, 0 unreadable); 0 inferences" ] &&
  pass max_pixels || fail max_pixels "rc=$rc: $(cat "$T/r7.err")"
idx lib lib.db --table small 2>"$T/r7b.err"; rc=$?        # the default limit again: retried
s=$(summary "$T/r7b.err")
[ $rc = 0 ] && [ "$s" = "ram-index: 4 new, 0 unchanged, 0 changed, 0 moved, 0 gone; not indexed: 2 (1 not images, 1 too large, 0 unreadable); 3 inferences" ] &&
  pass max_pixels_retried || fail max_pixels_retried "rc=$rc: $(cat "$T/r7b.err")"
idx lib lib.db --table ex --exclude 'c' --exclude '*.jpg' 2>"$T/r8.err"; rc=$?
ex=$(sqlite3 "$T/lib.db" "SELECT group_concat(path, ' ') FROM (SELECT path FROM ex_files ORDER BY path)")
[ $rc = 0 ] && [ "$ex" = "lib/a/uno.png" ] && grep -q '^ram-index: 1 file or folder left out by --exclude$' "$T/r8.err" &&
  pass exclude || fail exclude "rc=$rc, rows $ex: $(cat "$T/r8.err")"
(cd "$T" && find lib/c -name '*.png' | sort | "$B/ram-index" --files-from - lib.db --table list $MODEL_ARGS) 2>"$T/r9.err"; rc=$?
li=$(sqlite3 "$T/lib.db" "SELECT group_concat(path, ' ') FROM (SELECT path FROM list_files ORDER BY path)")
[ $rc = 0 ] && [ "$li" = "lib/c/dup.png lib/c/six.png lib/c/three.png" ] && pass files_from || fail files_from "rc=$rc, rows $li: $(cat "$T/r9.err")"
"$B/ram-index" --help 2>&1 | grep -q -- '--files-from LIST' && "$B/ram-index" --help 2>&1 | grep -q -- '--exclude GLOB' &&
  "$B/ram-index" --help 2>&1 | grep -q -- '--max-pixels N' && "$B/ram-index" --help 2>&1 | grep -q -- '--follow-symlinks' &&
  "$B/ram-index" --help 2>&1 | grep -q -- '--prune' && pass help || fail help "$("$B/ram-index" --help 2>&1)"

# 8. two writers at once over overlapping folders (all of w, and w/sub again)
#    into one database: both finish, every file once, the table consistent
W="$T/w"
mkdir -p "$W/sub"
i=0
for f in "$P"/*.png "$P"/*.jpg; do
  i=$((i + 1)); [ $i -gt 24 ] && break
  if [ $((i % 2)) = 0 ]; then cp "$f" "$W/sub/"; else cp "$f" "$W/"; fi
done
(cd "$T" && timeout 120 "$B/ram-index" w two.db --batch 2 --threads 1 $MODEL_ARGS 2>"$T/w1.err") & p1=$!
(cd "$T" && timeout 120 "$B/ram-index" w/sub two.db --batch 2 --threads 1 $MODEL_ARGS 2>"$T/w2.err") & p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
n=$(sqlite3 "$T/two.db" "SELECT count(*), count(DISTINCT path) FROM photos_files")
distinct=$(sqlite3 "$T/two.db" "SELECT count(*) FROM photos_images")
out=$(sqlite3 -cmd ".load $B/ram" "$T/two.db" "INSERT INTO photos(photos) VALUES('integrity-check'); PRAGMA integrity_check" 2>&1)
i1=$(sed -n 's/.*; \([0-9]*\) inferences$/\1/p' "$T/w1.err"); i2=$(sed -n 's/.*; \([0-9]*\) inferences$/\1/p' "$T/w2.err")
inf=$(( ${i1:-0} + ${i2:-0} ))
roots=$(sqlite3 "$T/two.db" "SELECT group_concat(root, ' ') FROM (SELECT root FROM ram_index_roots ORDER BY root)")
[ "$roots" = "w w/sub" ] && pass two_roots || fail two_roots "$roots"
echo "INFO: two writers: $n rows, $distinct distinct images, $inf inferences in all; $(grep " inferences$" "$T/w1.err") / $(grep " inferences$" "$T/w2.err")"
[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$n" = "24|24" ] && [ "$distinct" = 24 ] && [ "$out" = ok ] && [ "$inf" = 24 ] &&
  pass two_writers || fail two_writers "rc $rc1 $rc2, rows $n, $distinct images, $inf inferences, check: $out: $(cat "$T/w1.err" "$T/w2.err")"
