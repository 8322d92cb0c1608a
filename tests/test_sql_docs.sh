#!/bin/sh
# test_sql_docs.sh — runs every ```sql example of docs/SQL.md in Debian's
# sqlite3 shell (STYLE.md rule 15i: every documented example is executed).
# One "PASS: sql_docs/N" or "FAIL: sql_docs/N: ..." line per example.
#
#   sh tests/test_sql_docs.sh        # RAM_BUILD=build by default
#
# HOW IT WORKS: each block runs in a fresh shell, from the repository root,
# after `.load` of the build's ram.so and a silent ram_load() of the tiny
# CLIP test model (build/ in the block means the build folder). A block
# passes when the shell reports no error and the block's full-line comments
# "-- text" (the documented results) appear, in order, among the lines it
# printed.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
if [ ! -f "$B/ram.so" ] || [ ! -f "$B/models/golden_ram_plus_clip.ram" ]; then
  echo "FAIL: sql_docs: $B/ram.so or the golden test models are missing (run make first)"
  exit 1
fi
B=$(cd "$B" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
# Under `make asan` the instrumented ram.so needs the sanitizer runtimes first.
PRE=""
if [ "${RAM_SANITIZE:-}" = 1 ]; then
  PRE="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)"
fi
awk -v dir="$T" '
  /^```sql[ \t]*$/ { n++; inb = 1; next }
  /^```/ && inb    { inb = 0; next }
  inb              { print > (dir "/block" n ".sql") }
' docs/SQL.md
count=0
for f in "$T"/block*.sql; do
  [ -f "$f" ] || continue
  count=$((count + 1))
  name=$(basename "$f" .sql)
  {
    echo ".load $B/ram"
    echo ".output /dev/null"
    echo "SELECT ram_load('$B/models/golden_ram_plus_clip.ram');"
    echo ".output stdout"
    sed -e "s|build/|$B/|g" "$f"
  } >"$T/run.sql"
  env -u RAM_MODEL LD_PRELOAD="$PRE" ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    sqlite3 -batch -init /dev/null :memory: <"$T/run.sql" >"$T/out" 2>&1
  sed -n 's/^-- //p' "$f" >"$T/want"
  if grep -q -i 'error' "$T/out"; then
    echo "FAIL: sql_docs/$name: $(grep -i -m 1 'error' "$T/out")"
  elif [ -s "$T/want" ] && ! awk 'NR == FNR { w[++n] = $0; next } k < n && $0 == w[k + 1] { k++ } END { exit k < n }' \
         "$T/want" "$T/out"; then
    echo "FAIL: sql_docs/$name: documented results not printed; got:"
    head -n 20 "$T/out"
  else
    echo "PASS: sql_docs/$name"
  fi
done
[ "$count" -gt 0 ] || echo "FAIL: sql_docs: no sql example found in docs/SQL.md"
exit 0
