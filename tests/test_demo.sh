#!/bin/sh
# test_demo.sh — the demo (`make demo`) on a temporary copy of demo/photos:
# build/ram-index indexes it (a non-image and a subfolder added: recursion
# and skips), a rerun and an interrupted run resume, then demo/demo.sh's
# queries are checked against demo/photos/MANIFEST.json (the true tags): every
# file a tag query returns shows that tag, and the best MATCH results show
# what the description says. The bundled default model is part of the
# product: without models/default.ram that is a failure, and the indexing
# checks still run on the golden test model (the answer checks cannot).
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
fail() { echo "FAIL: demo.$1: $2"; }
pass() { echo "PASS: demo.$1"; }
for f in "$B/ram-index" "$B/ram.so"; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
command -v sqlite3 >/dev/null 2>&1 || { fail sqlite3 "the sqlite3 shell is not installed"; exit 1; }
B=$(cd "$B" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cp -r demo/photos "$T/photos"
mkdir -p "$T/photos/notes"
echo "not a picture" > "$T/photos/notes/readme.txt"
MAN="$T/photos/MANIFEST.json"

MODEL_ARGS=
if [ -f models/default.ram ]; then
  pass default_model
  # named explicitly: ram.so of build/asan would look in build/models/
  RAM_MODEL="$ROOT/models/default.ram"; export RAM_MODEL
else
  fail default_model "models/default.ram is missing (make converts it from models/default/): ram-index is tested on the golden model, the demo answers are not checked"
  MODEL_ARGS="--model $B/models/golden_ram_plus_clip.ram"
fi
if [ -f models/default_caption.ram ]; then
  pass default_caption_model
  RAM_CAPTION_MODEL="$ROOT/models/default_caption.ram"; export RAM_CAPTION_MODEL
else
  fail default_caption_model "models/default_caption.ram is missing (make converts it from models/default/tag2text_default.pth)"
fi

# 1. indexing: 50 pictures, 2 non-images (the manifest, notes/readme.txt)
idx() { (cd "$T" && "$B/ram-index" photos "$@" $MODEL_ARGS); }
idx photos.db 2>"$T/run1.err"; rc=$?
if [ $rc -eq 0 ] && grep -q '52/52 files (100%), 50 new, 0 already indexed, 2 not images' "$T/run1.err"; then
  pass index
else
  fail index "rc=$rc: $(cat "$T/run1.err")"
fi
n=$(sqlite3 "$T/photos.db" "SELECT count(*) FROM photos_files WHERE path GLOB 'photos/[0-9][0-9]-*'")
[ "$n" = 50 ] && pass index_rows || fail index_rows "$n rows, want 50"

# 2. a rerun reads nothing already indexed, nor the non-images again (-v names
#    them, with the reason found when they were read)
idx photos.db -v 2>"$T/run2.err"; rc=$?
if [ $rc -eq 0 ] && grep -q '0 new, 50 already indexed, 2 not images' "$T/run2.err" &&
   [ "$(grep -c 'skipped .*(unchanged since a previous run: not read again)$' "$T/run2.err")" = 2 ] &&
   [ "$(grep -c 'skipped' "$T/run2.err")" = 2 ]; then
  pass rerun
else
  fail rerun "rc=$rc: $(cat "$T/run2.err")"
fi

# 3. interrupted (SIGTERM, as Ctrl-C, at some point: maybe before, during or after the
#    work), then resumed: the same 50 rows, consistent
(cd "$T" && exec "$B/ram-index" photos int.db --batch 4 $MODEL_ARGS 2>"$T/int.err") &
pid=$!
sleep 0.3
kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 130 ]; then fail interrupt "rc=$rc: $(cat "$T/int.err")"; fi
idx int.db 2>"$T/int2.err"; rc2=$?
n=$(sqlite3 "$T/int.db" "SELECT count(*) FROM photos_files")
if [ $rc2 -eq 0 ] && [ "$n" = 50 ] && grep -q '52/52 files' "$T/int2.err"; then
  pass interrupt_resume
else
  fail interrupt_resume "first rc=$rc, rerun rc=$rc2, $n rows: $(cat "$T/int.err" "$T/int2.err")"
fi

if [ -n "$MODEL_ARGS" ]; then exit 0; fi

# 4. the demo itself on a temporary database
DIR="$T/photos" DB="$T/demo.db" BUILD="$B" sh demo/demo.sh >"$T/demo.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '^== Tag query' "$T/demo.out")" -ge 3 ] &&
   [ "$(grep -c '^== Open vocabulary' "$T/demo.out")" -ge 2 ] && grep -q -- '-a-small-plain-blue-triangle\.png' "$T/demo.out"; then
  pass demo_sh
else
  fail demo_sh "rc=$rc"; cat "$T/demo.out"
fi

# 4b. the demo after its model changed (as when the default model is retrained):
#     the demo database is re-embedded, not left refusing every query
sqlite3 "$T/demo.db" "UPDATE photos_gens SET digest = '0123456789abcdef0123456789abcdef'"
DIR="$T/photos" DB="$T/demo.db" BUILD="$B" sh demo/demo.sh >"$T/demo2.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q '0 new, 50 re-embedded, 0 already indexed' "$T/demo2.out" && ! grep -q '^Error' "$T/demo2.out"; then
  pass demo_sh_model_changed
else
  fail demo_sh_model_changed "rc=$rc: $(head -20 "$T/demo2.out")"
fi

# 5. the demo's queries against the manifest
q() { sqlite3 -bail -cmd ".load $B/ram" "$T/photos.db" "$@"; }
truth="CREATE TEMP TABLE truth AS SELECT 'photos/' || json_extract(value, '\$.file') AS path,
  json_extract(value, '\$.tags') AS tags, json_extract(value, '\$.attrs') AS a
  FROM json_each(readfile('$MAN'), '\$.pictures');"
# The README's claims about the default model, checked on the demo's pictures:
# colours and backgrounds are near perfect (F1 0.98-1.0), so a tag query for one
# returns exactly the pictures that show it (a wrong or a missing file fails);
# shapes (F1 0.89) and fill patterns (0.92) are the weakest groups, so for them
# the claim is their pooled F1 over the demo's queries, at least 0.80 (the
# held-out figures less a margin for a 50-picture sample); each miss is listed.
sp_tp=0; sp_fp=0; sp_fn=0
for t in red circle striped "black background" blue triangle; do
  r=$(q "$truth CREATE TEMP TABLE got AS SELECT path FROM photos WHERE tag = '$t';
    SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM got JOIN truth USING (path)
        WHERE EXISTS (SELECT 1 FROM json_each(truth.tags) WHERE value = '$t')),
      (SELECT count(*) FROM truth WHERE EXISTS (SELECT 1 FROM json_each(truth.tags) WHERE value = '$t'));")
  got=${r%%|*}; rest=${r#*|}; good=${rest%%|*}; all=${rest#*|}
  echo "INFO: tag '$t': $got returned, $good correct; $all pictures show it"
  case "$t" in
  circle|striped|triangle)
    if [ -n "$got" ] && [ "$got" -gt 0 ]; then
      sp_tp=$((sp_tp + good)); sp_fp=$((sp_fp + got - good)); sp_fn=$((sp_fn + all - good))
      [ "$got" = "$good" ] && [ "$good" = "$all" ] ||
        echo "INFO: demo.tag.$t: $((got - good)) wrong, $((all - good)) missed (counted in the shapes+patterns F1)"
      pass "tag.$t"
    else
      fail "tag.$t" "no file returned ($all pictures show '$t')"
    fi ;;
  *)
    if [ -n "$got" ] && [ "$got" -gt 0 ] && [ "$got" = "$good" ] && [ "$good" = "$all" ]; then
      pass "tag.$t"
    else
      fail "tag.$t" "$got returned, $good of them show '$t' ($all pictures show it): $(q "SELECT path FROM photos WHERE tag = '$t'" | tr '\n' ' ')"
    fi ;;
  esac
done
# F1 = 2TP / (2TP + FP + FN), compared in integers: F1 >= 0.80 <=> 100*2TP >= 80*(2TP+FP+FN)
if [ $((200 * sp_tp)) -ge $((80 * (2 * sp_tp + sp_fp + sp_fn))) ] && [ "$sp_tp" -gt 0 ]; then
  pass tag.shapes_patterns_f1
else
  fail tag.shapes_patterns_f1 "F1 of the shape and pattern queries below 0.80: $sp_tp right, $sp_fp wrong, $sp_fn missed"
fi
echo "INFO: shapes+patterns on the demo: $sp_tp right, $sp_fp wrong, $sp_fn missed"

# MATCH: the best result shows every attribute the description names; the
# second best at least its colour and shape.
match() { # match NAME DESCRIPTION JSON-ATTRS
  r=$(q "$truth CREATE TEMP TABLE got AS SELECT rowid AS r, path, score FROM photos
      WHERE photos MATCH '$2' AND k = 2;
    SELECT group_concat(ok, ' ') FROM (SELECT (SELECT count(*) = (SELECT count(*) FROM json_each('$3'))
        FROM json_each('$3') e WHERE json_extract(truth.a, '\$.' || e.key) = e.value) AS ok
      FROM got JOIN truth USING (path) ORDER BY score DESC);
    SELECT group_concat(path || ' ' || printf('%.3f', score), ', ') FROM (SELECT * FROM got ORDER BY score DESC);")
  first=$(echo "$r" | head -1); names=$(echo "$r" | tail -1)
  if [ "${first%% *}" = 1 ]; then pass "match.$1"; else fail "match.$1" "best of '$2': $names"; fi
  echo "INFO: '$2': $names"
}
match blue_triangle 'a small blue triangle' '{"colour":"blue","shape":"triangle","count":"one"}'
r=$(q "$truth SELECT count(*) FROM (SELECT path FROM photos WHERE photos MATCH 'two red circles on a black background' AND k = 2) g
  JOIN truth USING (path) WHERE json_extract(a, '\$.colour') = 'red' AND json_extract(a, '\$.shape') = 'circle'")
# both best results must be red circles (phase 2 trained only on the tests'
# "count size colour shape" phrases put an orange-cross picture second here;
# its candidates now also name backgrounds, patterns and positions)
[ "$r" = 2 ] && pass match.red_circles_top2 || fail match.red_circles_top2 "$r of the best 2 are red circles"

# Captions (demo.sh indexed demo.db with --captions and the default caption
# model): every picture has one, and they name what the picture shows. The
# claims are models/default/caption.json's held-out figures (through this C
# engine: colour 1.0, colour + shape + count 0.90 on seen colour x shape
# pairs, 0.51 on unseen ones) less a margin for a 50-picture sample: the
# colour named in at least 48 captions, colour + shape + count together in at
# least 41 (41 measured, 3 of the misses the demo's blue triangles, an unseen
# pair; the two models before gave 42 and 40); each miss is listed. A word counts when it stands alone: ' red ' in ' ' || caption || ' '.
if [ -n "${RAM_CAPTION_MODEL:-}" ]; then
  cq() { sqlite3 -bail -cmd ".load $B/ram" "$T/demo.db" "$@"; }
  words="CREATE TEMP TABLE cap AS SELECT p.path, ' ' || p.caption || ' ' AS c, json_extract(t.a, '\$.colour') AS colour,
      json_extract(t.a, '\$.count') AS cnt,
      CASE WHEN json_extract(t.a, '\$.count') = 'one' THEN json_extract(t.a, '\$.shape')
           WHEN json_extract(t.a, '\$.shape') = 'cross' THEN 'crosses' ELSE json_extract(t.a, '\$.shape') || 's' END AS shape
    FROM photos p JOIN truth t USING (path);
    CREATE TEMP TABLE ok AS SELECT path, c, instr(c, ' ' || colour || ' ') > 0 AS col, instr(c, ' ' || shape || ' ') > 0 AS shp,
      CASE cnt WHEN 'one' THEN c GLOB ' a *' OR c GLOB ' an *' ELSE c GLOB ' ' || cnt || ' *' END AS num FROM cap;"
  r=$(cq "$truth $words SELECT count(*), count(NULLIF(trim(c), '')), sum(col), sum(col AND shp AND num), sum(shp), sum(num) FROM ok;")
  IFS='|' read -r n_rows n_cap n_col n_all n_shp n_num <<EOF_R
$r
EOF_R
  echo "INFO: captions of the 50 demo pictures: colour $n_col, shape $n_shp, count $n_num, all three $n_all"
  [ "$n_rows" = 50 ] && [ "$n_cap" = 50 ] && pass caption.every_row || fail caption.every_row "$r"
  [ "${n_col:-0}" -ge 48 ] && pass caption.colour ||
    fail caption.colour "$n_col of 50 captions name the colour (the misses: INFO lines)"
  [ "${n_all:-0}" -ge 41 ] && pass caption.colour_shape_count ||
    fail caption.colour_shape_count "$n_all of 50 captions name colour, shape and count (the misses: INFO lines)"
  cq "$truth $words SELECT 'INFO: caption miss ' || path || ':' || c FROM ok WHERE NOT (col AND shp AND num)"
  # full-text search: what the captions say is found, and only that
  r=$(cq "$truth SELECT count(*), sum(json_extract(a, '\$.colour') = 'red'), (SELECT count(*) FROM photos WHERE ' ' || caption || ' ' GLOB '* red *')
    FROM photos_captions c JOIN photos p ON p.rowid = c.rowid JOIN truth t ON t.path = p.path WHERE photos_captions MATCH 'red'")
  IFS='|' read -r n_fts n_red n_said <<EOF_R
$r
EOF_R
  if [ "${n_fts:-0}" -gt 0 ] && [ "$n_fts" = "$n_said" ] && [ "$n_red" = "$n_fts" ]; then pass caption.fts; else
    fail caption.fts "MATCH 'red': $n_fts rows, $n_red of them red, $n_said captions say red"; fi
  # out of the box: ram_caption() with no ram_caption_model() equals the stored caption
  r=$(cq "SELECT count(*) FROM photos WHERE caption = ram_caption(readfile('$T/' || path))")
  [ "$r" = 50 ] && pass caption.sql_equals_index || fail caption.sql_equals_index "$r of 50 equal"
fi

# --no-verify: the model file's checksum pass is skipped (a corrupted copy
# loads and indexes), and without it the same copy is refused at load.
MF=${RAM_MODEL:-$B/models/golden_ram_plus_clip.ram}
mkdir -p "$T/few" && cp "$T"/photos/0[1-3]-* "$T/few/"
cp "$MF" "$T/flipped.ram"
size=$(wc -c <"$T/flipped.ram")
# one byte in the middle of the data section (weights), XOR 1: a tiny change
python3 -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^1]))" "$T/flipped.ram" $((size / 2))
(cd "$T" && "$B/ram-index" few nv1.db --model flipped.ram 2>"$T/nv1.err"); rc=$?
if [ $rc = 1 ] && grep -q 'corrupted: checksum' "$T/nv1.err"; then pass verify.refused; else fail verify.refused "rc=$rc: $(cat "$T/nv1.err")"; fi
(cd "$T" && "$B/ram-index" few nv2.db --model flipped.ram --no-verify 2>"$T/nv2.err"); rc=$?
n=$(sqlite3 "$T/nv2.db" "SELECT count(*) FROM photos_files" 2>&1)
if [ $rc = 0 ] && [ "$n" = 3 ]; then pass verify.skipped; else fail verify.skipped "rc=$rc, $n rows: $(cat "$T/nv2.err")"; fi
# a table bound to a file (model=) is indexed with it: --no-verify does not load the default first
(cd "$T" && RAM_MODEL="$T/none.ram" "$B/ram-index" few nv2.db --no-verify 2>"$T/nv2b.err"); rc=$?
if [ $rc = 0 ] && grep -q '0 new, 3 already indexed' "$T/nv2b.err"; then pass verify.skipped_bound; else fail verify.skipped_bound "rc=$rc: $(cat "$T/nv2b.err")"; fi
# the same without --model: the default file (RAM_MODEL here) loaded unverified
(cd "$T" && RAM_MODEL="$T/flipped.ram" "$B/ram-index" few nv3.db --no-verify 2>"$T/nv3.err"); rc=$?
n=$(sqlite3 "$T/nv3.db" "SELECT count(*) FROM photos_files" 2>&1)
if [ $rc = 0 ] && [ "$n" = 3 ]; then pass verify.skipped_default; else fail verify.skipped_default "rc=$rc, $n rows: $(cat "$T/nv3.err")"; fi

# Another model than the table's images were embedded with (simulated: the
# table's generation names another digest): ram-index stops and says what to
# do; --switch-model re-embeds; files of the table it did not find are named.
mkdir -p "$T/more" && cp "$T"/photos/04-* "$T/more/"
(cd "$T" && "$B/ram-index" few sw.db && "$B/ram-index" more sw.db) 2>"$T/sw0.err" || fail switch.setup "$(cat "$T/sw0.err")"
sqlite3 "$T/sw.db" "UPDATE photos_gens SET digest = '0123456789abcdef0123456789abcdef'"
(cd "$T" && "$B/ram-index" few sw.db 2>"$T/sw1.err"); rc=$?
if [ $rc = 1 ] && grep -q 'holds 4 images embedded with another model (digest 0123456789abcdef0123456789abcdef)' "$T/sw1.err" &&
   grep -q 'Rerun with --switch-model' "$T/sw1.err" && grep -q 'into another table with --table NEW' "$T/sw1.err"; then pass switch.refused; else fail switch.refused "rc=$rc: $(cat "$T/sw1.err")"; fi
(cd "$T" && "$B/ram-index" few sw.db --switch-model 2>"$T/sw2.err"); rc=$?
if [ $rc = 0 ] && grep -q '0 new, 3 re-embedded, 0 already indexed' "$T/sw2.err" &&
   grep -q "1 file of table photos is still embedded with another model (not found under few)" "$T/sw2.err"; then
  pass switch.reembedded
else
  fail switch.reembedded "rc=$rc: $(cat "$T/sw2.err")"
fi
r=$(sqlite3 -cmd ".load $B/ram" "$T/sw.db" "SELECT count(*) FROM photos WHERE tag = 'red'" 2>&1)
case "$r" in *"embedded with another model"*) pass switch.stale_refused ;;
  *) fail switch.stale_refused "$r" ;; esac
(cd "$T" && "$B/ram-index" more sw.db 2>"$T/sw3.err"); rc=$?
r=$(sqlite3 -cmd ".load $B/ram" "$T/sw.db" "SELECT count(*) FROM photos WHERE stale; SELECT count(*) FROM photos WHERE tag = 'star'" 2>&1 | tr '\n' ' ')
if [ $rc = 0 ] && grep -q '0 new, 1 re-embedded' "$T/sw3.err" && [ "$r" = "0 1 " ]; then
  pass switch.resumed
else
  fail switch.resumed "rc=$rc, '$r': $(cat "$T/sw3.err")"
fi
