#!/bin/sh
# test_sql.sh — drives Debian's sqlite3 shell with the scripts of tests/sql/
# and compares what it prints (stdout and stderr, interleaved in order) with
# tests/sql/NAME.expected, one "PASS: sql/NAME" or "FAIL: sql/NAME: ..." line
# per script. Error messages are part of the expected output, so every error
# path a script exercises is pinned (SQLite's do_catchsql_test habit).
#
#   sh tests/test_sql.sh                      # RAM_BUILD=build by default
#   RAM_SQL_REGEN=1 sh tests/test_sql.sh      # rewrite the .expected files (review the diff!)
#
# HOW IT WORKS. Each script starts with `.load @LIB@`. Placeholders are
# replaced before the run and the same paths are turned back into
# placeholders in the output, so expected files hold no machine paths:
#   @B@   the build folder (absolute): @B@/models/golden_*.ram
#   @G@   tests/data/golden     @I@  tests/data/images     @T@  a temp folder
#   @T@/ram_clip.ram  RAM (not RAM++) with the CLIP text tower, made by ram-convert
#   @LIB@ a copy of ram.so, chosen by a "-- lib: NAME" line in the script:
#         iso   (default) @T@/iso/lib/ram.so, with no models/default.ram next to it
#         dflt  @T@/dflt/lib/ram.so with @T@/dflt/models/default.ram = golden_ram.ram
#               and default_caption.ram = golden_tag2text.ram
#         bad   @T@/bad/lib/ram.so with a default.ram that is not a model file
# A "-- env: RAM_MODEL=VALUE" line sets RAM_MODEL (otherwise it is unset).
# sql/examples.sql runs too (its build/ and tests/data paths rewritten), compared
# with tests/sql/examples.expected.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
if ! command -v sqlite3 >/dev/null 2>&1; then
  echo "FAIL: sql: the sqlite3 shell is not installed"
  exit 1
fi
if [ ! -f "$B/ram.so" ] || [ ! -f "$B/models/golden_ram_plus.ram" ]; then
  echo "FAIL: sql: $B/ram.so or the golden test models are missing (run make first)"
  exit 1
fi
B=$(cd "$B" && pwd)
ROOT=$(pwd)
G=$ROOT/tests/data/golden
I=$ROOT/tests/data/images
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
for d in iso dflt bad; do
  mkdir -p "$T/$d/lib" "$T/$d/models"
  cp "$B/ram.so" "$T/$d/lib/ram.so"
done
cp "$B/models/golden_ram.ram" "$T/dflt/models/default.ram"
cp "$B/models/golden_tag2text.ram" "$T/dflt/models/default_caption.ram"
printf 'not a model file\n' >"$T/bad/models/default.ram"
# A RAM (not RAM++) model with a CLIP text tower, for open-set on RAM: @T@/ram_clip.ram.
"$B/ram-convert" "$G/ram_tiny.pth" -o "$T/ram_clip.ram" --tags "$G/tag_list.txt" \
  --tags-zh "$G/tag_list_chinese.txt" --thresholds "$G/tag_list_threshold.txt" \
  --clip "$G/clip_tiny.pth" --clip-heads 2 --bpe "$B/bpe_simple_vocab_16e6.txt" >/dev/null 2>&1 ||
  echo "FAIL: sql: ram-convert could not build $T/ram_clip.ram"

# How the shell runs: with stdout unbuffered (coreutils' libstdbuf, what
# stdbuf -o0 preloads) so that stdout and stderr interleave in order; under
# `make asan` (RAM_SANITIZE=1) the sanitizer runtimes are preloaded first, as
# an instrumented ram.so in an uninstrumented sqlite3 needs (leaks are
# checked by test_sql_threads, which is instrumented itself).
PRE=""
if [ "${RAM_SANITIZE:-}" = 1 ]; then
  PRE="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)"
fi
for lib in /usr/libexec/coreutils/libstdbuf.so /usr/lib/coreutils/libstdbuf.so; do
  if [ -f "$lib" ]; then PRE="$PRE $lib"; break; fi
done
# shell [VAR=VALUE...] < script: the sqlite3 shell, RAM_MODEL unset unless given.
# XDG_DATA_HOME and XDG_DATA_DIRS point into @T@, so that a model installed on
# this machine (~/.local/share/sqlite-ram, /usr/share/sqlite-ram) is never
# picked up and the "no model" error lists only paths of this run.
shell() {
  env -u RAM_MODEL XDG_DATA_HOME="$T/xdg-home" XDG_DATA_DIRS="$T/xdg-dirs" LD_PRELOAD="$PRE" _STDBUF_O=0 _STDBUF_E=0 \
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" "$@" \
    sqlite3 -batch -init /dev/null :memory:
}

# run_script SQLFILE OUTFILE: substitutes, runs, un-substitutes.
run_script() {
  lib=$(sed -n 's/^-- lib: *\([a-z]*\).*/\1/p' "$1" | head -n 1)
  [ -n "$lib" ] || lib=iso
  envline=$(sed -n 's/^-- env: *RAM_MODEL=\(.*\)$/\1/p' "$1" | head -n 1)
  sed -e "s|@LIB@|$T/$lib/lib/ram|g" -e "s|@B@|$B|g" -e "s|@G@|$G|g" -e "s|@I@|$I|g" \
      -e "s|@T@|$T|g" "$1" >"$T/script.sql"
  if [ -n "$envline" ]; then
    envval=$(printf '%s' "$envline" | sed -e "s|@B@|$B|g" -e "s|@T@|$T|g")
    (cd "$T" && shell RAM_MODEL="$envval" <"$T/script.sql") >"$T/raw.out" 2>&1
  else
    (cd "$T" && shell <"$T/script.sql") >"$T/raw.out" 2>&1
  fi
  sed -e "s|$T|@T@|g" -e "s|$B|@B@|g" -e "s|$G|@G@|g" -e "s|$I|@I@|g" "$T/raw.out" >"$2"
}

check_output() { # NAME OUT EXPECTED
  if [ "${RAM_SQL_REGEN:-}" = 1 ]; then
    cp "$2" "$3"
    echo "PASS: sql/$1 (regenerated)"
  elif [ ! -f "$3" ]; then
    echo "FAIL: sql/$1: $3 is missing"
  elif cmp -s "$2" "$3"; then
    echo "PASS: sql/$1"
  else
    echo "FAIL: sql/$1: output differs from $3:"
    diff -u "$3" "$2" | head -n 40
  fi
}

for f in tests/sql/*.sql; do
  name=$(basename "$f" .sql)
  run_script "$f" "$T/$name.out"
  check_output "$name" "$T/$name.out" "tests/sql/$name.expected"
done

# sql/examples.sql: written for `sqlite3 < sql/examples.sql` from the
# repository root after make; run it with this build folder.
if [ -f sql/examples.sql ]; then
  sed -e "s|build/|$B/|g" -e "s|tests/data/|$ROOT/tests/data/|g" sql/examples.sql >"$T/ex.sql"
  (cd "$T" && shell <"$T/ex.sql") >"$T/ex.raw" 2>&1
  sed -e "s|$B|build|g" -e "s|$ROOT/||g" "$T/ex.raw" >"$T/examples.out"
  check_output examples "$T/examples.out" tests/sql/examples.expected
fi
exit 0
