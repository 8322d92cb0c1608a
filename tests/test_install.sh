#!/bin/sh
# test_install.sh — `make install PREFIX=$tmp` of the build, then the installed
# tree used from another folder: the sqlite3 shell `.load`s PREFIX/lib/ram0
# (entry point sqlite3_ram_init derived from the file name) and tags a picture
# with the installed default model, as the build's ram.so does with
# models/default.ram; the installed ram-index finds ../lib/ram0.so. Then the
# default model's search order (ext/model_path.c): RAM_MODEL wins over
# everything, $XDG_DATA_HOME/sqlite-ram over PREFIX/share/sqlite-ram, which wins
# over $XDG_DATA_DIRS; without any file the error names every place looked at;
# a table's model in one of those folders is trusted (ext/model_trust.c).
# Then DESTDIR staging and make uninstall; last, that make asan-build writes
# nothing into models/ (only the top-level build copies the default models there).
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
fail() { echo "FAIL: install.$1: $2"; }
pass() { echo "PASS: install.$1"; }
for f in "$B/ram.so" "$B/ram-index" "$B/ram-convert" models/default.ram "$B/models/golden_ram.ram"; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
command -v sqlite3 >/dev/null 2>&1 || { fail sqlite3 "the sqlite3 shell is not installed"; exit 1; }
B=$(cd "$B" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
P=$T/prefix
IMG=$ROOT/demo/photos/04-a-large-plain-pink-star.png
mkdir -p "$T/elsewhere" "$T/xdg-home" "$T/xdg-dirs"

# make itself runs without the sanitizer runtimes run.sh preloads for the hosts;
# -o models/default.ram: the installed model is the one make built, even when
# BUILD is build/asan (which has no default.ram of its own).
mk() { (env -u LD_PRELOAD make -s --no-print-directory BUILD="$B" -o models/default.ram "$@") >"$T/make.out" 2>&1; }
# q SQL...: the shell from $T/elsewhere, no RAM_MODEL, XDG folders of this test.
q() {
  (cd "$T/elsewhere" && env -u RAM_MODEL XDG_DATA_HOME="$T/xdg-home" XDG_DATA_DIRS="$T/xdg-dirs" \
    sqlite3 -batch -init /dev/null :memory: ".load $P/lib/ram0" "$@" 2>&1)
}
model_file() { q "SELECT json_extract(ram_model(), '\$.file')"; }

# 1. make install: the files, then the installed extension tags with the installed model
if mk install PREFIX="$P"; then
  missing=
  for f in lib/ram0.so bin/ram-index bin/ram-search bin/ram-convert share/sqlite-ram/default.ram \
           share/sqlite-ram/bpe_simple_vocab_16e6.txt share/doc/sqlite-ram/README.md \
           share/doc/sqlite-ram/SQL.md share/doc/sqlite-ram/SCALE.md share/doc/sqlite-ram/MODELS.md; do
    [ -f "$P/$f" ] || missing="$missing $f"
  done
  [ -z "$missing" ] && pass files || fail files "not installed:$missing"
else
  fail files "make install failed: $(cat "$T/make.out")"
  exit 1
fi
want=$(env -u RAM_MODEL sqlite3 -batch -init /dev/null :memory: ".load $B/ram" \
  "SELECT ram_load('$ROOT/models/default.ram') IS NOT NULL" "SELECT ram_tags(readfile('$IMG'))" 2>&1 | tail -n 1)
got=$(q "SELECT ram_tags(readfile('$IMG'))")
file=$(model_file)
if [ "$file" = "$P/share/sqlite-ram/default.ram" ] && [ -n "$want" ] && [ "$got" = "$want" ] &&
   printf '%s' "$got" | grep -q 'star'; then
  pass load_installed
else
  fail load_installed "model '$file', tags '$got', the build's tags '$want'"
fi
# the installed ram-index (PREFIX/bin) loads PREFIX/lib/ram0.so and the installed model
mkdir -p "$T/pics" && cp "$IMG" "$T/pics/"
(cd "$T/elsewhere" && env -u RAM_MODEL XDG_DATA_HOME="$T/xdg-home" XDG_DATA_DIRS="$T/xdg-dirs" \
  "$P/bin/ram-index" "$T/pics" "$T/pics.db" --threads 1 >"$T/ri.out" 2>&1); rc=$?
n=$(sqlite3 "$T/pics.db" "SELECT count(*) FROM photos_files" 2>&1)
if [ $rc -eq 0 ] && [ "$n" = 1 ] && grep -q "model $P/share/sqlite-ram/default.ram" "$T/ri.out"; then
  pass ram_index_installed
else
  fail ram_index_installed "rc=$rc, rows '$n': $(cat "$T/ri.out")"
fi

# 2. the search order
cp "$B/models/golden_ram.ram" "$T/golden_ram.ram"
mkdir -p "$T/xdg-home/sqlite-ram" "$T/xdg-dirs/sqlite-ram"
cp "$B/models/golden_ram.ram" "$T/xdg-home/sqlite-ram/default.ram"
cp "$B/models/golden_ram.ram" "$T/xdg-dirs/sqlite-ram/default.ram"
file=$(model_file)
[ "$file" = "$T/xdg-home/sqlite-ram/default.ram" ] && pass xdg_over_prefix ||
  fail xdg_over_prefix "model '$file', want the one in XDG_DATA_HOME"
file=$(cd "$T/elsewhere" && RAM_MODEL="$T/golden_ram.ram" XDG_DATA_HOME="$T/xdg-home" \
  sqlite3 -batch -init /dev/null :memory: ".load $P/lib/ram0" "SELECT json_extract(ram_model(), '\$.file')" 2>&1)
[ "$file" = "$T/golden_ram.ram" ] && pass ram_model_wins || fail ram_model_wins "model '$file'"
rm "$T/xdg-home/sqlite-ram/default.ram"
file=$(model_file)
[ "$file" = "$P/share/sqlite-ram/default.ram" ] && pass prefix_over_data_dirs ||
  fail prefix_over_data_dirs "model '$file'"
mv "$P/share/sqlite-ram/default.ram" "$T/installed.ram"
file=$(model_file)
[ "$file" = "$T/xdg-dirs/sqlite-ram/default.ram" ] && pass data_dirs || fail data_dirs "model '$file'"
rm "$T/xdg-dirs/sqlite-ram/default.ram"
# no file anywhere: the error names the four places, in order
err=$(q "SELECT ram_tags(readfile('$IMG'))")
places="$T/xdg-home/sqlite-ram/default.ram, $P/share/sqlite-ram/default.ram, $T/xdg-dirs/sqlite-ram/default.ram, $P/models/default.ram"
if printf '%s' "$err" | grep -qF "ram_tags(): no model loaded" && printf '%s' "$err" | grep -qF "no default model at $places ("; then
  pass error_lists_places
else
  fail error_lists_places "got: $err"
fi
# XDG_DATA_HOME unset: ~/.local/share (HOME of this test)
err=$(cd "$T/elsewhere" && env -u RAM_MODEL -u XDG_DATA_HOME HOME="$T/home" XDG_DATA_DIRS="$T/xdg-dirs" \
  sqlite3 -batch -init /dev/null :memory: ".load $P/lib/ram0" "SELECT ram_tags(readfile('$IMG'))" 2>&1)
printf '%s' "$err" | grep -qF "no default model at $T/home/.local/share/sqlite-ram/default.ram, " &&
  pass xdg_default_home || fail xdg_default_home "got: $err"
mv "$T/installed.ram" "$P/share/sqlite-ram/default.ram"
# ext/model_trust.c trusts every folder of this search order: a table recording a
# model in XDG_DATA_HOME/sqlite-ram opens in a fresh connection; one elsewhere does not
mkdir -p "$T/xdg-home/sqlite-ram" "$T/other"
for d in "$T/xdg-home/sqlite-ram" "$T/other"; do
  cp "$B/models/golden_ram.ram" "$d/mine.ram"
  rm -f "$T/t.db"
  qdb() { (cd "$T/elsewhere" && env -u RAM_MODEL XDG_DATA_HOME="$T/xdg-home" XDG_DATA_DIRS="$T/xdg-dirs" \
    sqlite3 -batch -init /dev/null "$T/t.db" ".load $P/lib/ram0" "$@" 2>&1); }
  qdb "SELECT ram_load('$d/mine.ram') IS NOT NULL" \
      "CREATE VIRTUAL TABLE p USING ram_index(model='$d/mine.ram')" >/dev/null
  r=$(qdb "SELECT count(*) FROM p WHERE tag = 'tag6'")
  if [ "$d" = "$T/other" ]; then
    case "$r" in *"not in a folder trusted for models"*) pass model_elsewhere_untrusted ;;
      *) fail model_elsewhere_untrusted "$r" ;; esac
  else
    [ "$r" = 0 ] && pass model_in_xdg_trusted || fail model_in_xdg_trusted "$r"
  fi
done

# 3. make uninstall removes every installed file; DESTDIR stages under another root
if mk uninstall PREFIX="$P" && [ -z "$(find "$P" -type f)" ]; then
  pass uninstall
else
  fail uninstall "left: $(find "$P" -type f | tr '\n' ' ') $(cat "$T/make.out")"
fi
if mk install DESTDIR="$T/stage" PREFIX=/usr && [ -f "$T/stage/usr/lib/ram0.so" ] &&
   [ -f "$T/stage/usr/share/sqlite-ram/default.ram" ] && [ ! -e /usr/lib/ram0.so ]; then
  pass destdir
else
  fail destdir "$(cat "$T/make.out")"
fi

# 4. Only the top-level build writes models/*.ram (where the extension and the
# tests find the default models): make asan-build converts into its own build
# folder. Dry runs with the default models' sources pretended new (-W): the
# top-level build shows its copy (the control), asan-build shows no write to
# models/ (it used to copy build/asan/default.ram over models/default.ram).
# The Makefile's defaults (BUILD=build): make test's own flags and variables
# (MAKEFLAGS) are not passed down to these dry runs. GNU make does not pass -W
# to a sub-make, so the sanitizer build dry-runs into an empty folder of its
# own, where everything is to be made (whatever build/asan holds already).
W="-W models/default/ram_plus_default.pth -W models/default/tag2text_default.pth"
dry() { env -u LD_PRELOAD -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n --no-print-directory $W "$@" 2>&1; }
top=$(dry all | grep -c 'mv models/default\.ram\.tmp models/default\.ram$')
asan=$(dry asan-build ASAN_BUILD="$T/asan-dry")
conv=$(printf '%s\n' "$asan" | grep -c "ram-convert models/default/ram_plus_default\\.pth -o $T/asan-dry/default\\.ram")
wr=$(printf '%s\n' "$asan" | grep -E '(^|[ ])models/[A-Za-z0-9_]*\.ram' | head -3)
[ "$top" = 1 ] && [ "$conv" = 1 ] && [ -z "$wr" ] && pass asan_build_keeps_models ||
  fail asan_build_keeps_models "top-level copies: $top, asan conversions: $conv, asan writes: $wr"
