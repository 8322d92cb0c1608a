#!/bin/sh
# test_python_pkg.sh — the Python package (bindings/python) in a fresh venv of
# Debian's /usr/bin/python3, offline: `pip install --no-index ./bindings/python`
# (the in-tree build backend needs nothing from an index), then, from another
# folder, sqlite_ram.load(conn) runs ram_tags with the bundled default model
# and gives the tags the build's ram.so gives with models/default.ram; then the
# wheel route: `pip wheel --no-index` makes sqlite_ram-V-py3-none-PLATFORM.whl
# holding ram0.so and the model, which installs and loads the same way, and
# `pip uninstall` removes it.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
PY=/usr/bin/python3
fail() { echo "FAIL: python_pkg.$1: $2"; }
pass() { echo "PASS: python_pkg.$1"; }
for f in "$B/ram.so" models/default.ram; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
[ -x "$PY" ] || { fail python "$PY is missing (Debian's python3)"; exit 1; }
B=$(cd "$B" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
IMG=$ROOT/demo/photos/04-a-large-plain-pink-star.png
mkdir -p "$T/elsewhere"
export SQLITE_RAM_BUILD="$B" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# The venv's python must not see a model installed on this machine.
export XDG_DATA_HOME="$T/xdg-home" XDG_DATA_DIRS="$T/xdg-dirs"
unset RAM_MODEL PYTHONPATH

if ! "$PY" -m venv "$T/venv" >"$T/venv.out" 2>&1; then
  fail venv "python3 -m venv failed (Debian package python3-venv): $(cat "$T/venv.out")"
  exit 1
fi
V=$T/venv/bin/python

# what the package must reproduce: the build's tags with models/default.ram
want=$(sqlite3 -batch -init /dev/null :memory: ".load $B/ram" \
  "SELECT ram_load('$ROOT/models/default.ram') IS NOT NULL" "SELECT ram_tags(readfile('$IMG'))" 2>&1 | tail -n 1)

cat >"$T/check.py" <<'EOF'
import os, sqlite3, sys
import sqlite_ram
img = sys.argv[1]
db = sqlite3.connect(":memory:")
sqlite_ram.load(db)
model = db.execute("SELECT json_extract(ram_model(), '$.file')").fetchone()[0]
tags = db.execute("SELECT ram_tags(?)", (open(img, "rb").read(),)).fetchone()[0]
assert os.path.isfile(sqlite_ram.loadable_path() + ".so"), sqlite_ram.loadable_path()
assert model == os.path.realpath(sqlite_ram.default_model_path()), (model, sqlite_ram.default_model_path())
# loading is switched off again after load()
try:
    db.execute("SELECT load_extension('x')")
    sys.exit("load_extension stayed enabled")
except sqlite3.OperationalError as e:
    assert "not authorized" in str(e), e
# a connection class without extension loading: a clear error
class NoExt: pass
try:
    sqlite_ram.load(NoExt())
    sys.exit("load() accepted a connection without enable_load_extension")
except RuntimeError as e:
    assert "extension loading" in str(e), e
print(sqlite_ram.__version__, tags, sep="\n")
EOF

# 1. pip install --no-index of the folder
find bindings/python | sort >"$T/tree.before"
if (cd "$T/elsewhere" && "$V" -m pip install -q --no-index "$ROOT/bindings/python") >"$T/pip1.out" 2>&1; then
  pass pip_install_dir
else
  fail pip_install_dir "$(cat "$T/pip1.out")"
fi
out=$(cd "$T/elsewhere" && "$V" "$T/check.py" "$IMG" 2>&1)
ver=$(printf '%s\n' "$out" | head -n 1)
got=$(printf '%s\n' "$out" | tail -n 1)
core_ver=$(sqlite3 -batch -init /dev/null :memory: ".load $B/ram" "SELECT ram_version()" 2>&1)
if [ "$ver" = "$core_ver" ] && [ -n "$want" ] && [ "$got" = "$want" ] && printf '%s' "$got" | grep -q star; then
  pass load_tags
else
  fail load_tags "package said '$out'; the build's tags '$want', version '$core_ver'"
fi
# no file written into the source tree by the build
find bindings/python | sort >"$T/tree.after"
if cmp -s "$T/tree.before" "$T/tree.after"; then
  pass source_tree_clean
else
  fail source_tree_clean "$(diff "$T/tree.before" "$T/tree.after")"
fi

# 2. the wheel: platform tag, contents, install, uninstall
plat=$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
whl=$T/wheels/sqlite_ram-$core_ver-py3-none-$plat.whl
(cd "$T/elsewhere" && "$V" -m pip wheel -q --no-index -w "$T/wheels" "$ROOT/bindings/python") >"$T/pip2.out" 2>&1
if [ -f "$whl" ] && "$V" -m zipfile -l "$whl" >"$T/list" 2>&1 &&
   grep -q 'sqlite_ram/lib/ram0.so' "$T/list" && grep -q 'sqlite_ram/share/sqlite-ram/default.ram' "$T/list"; then
  pass wheel
else
  fail wheel "no $whl with ram0.so and default.ram: $(ls "$T/wheels" 2>&1) $(cat "$T/pip2.out")"
fi
"$V" -m pip uninstall -q -y sqlite-ram >"$T/pip3.out" 2>&1
if (cd "$T/elsewhere" && "$V" -c 'import sqlite_ram' 2>/dev/null); then
  fail uninstall "sqlite_ram still importable after pip uninstall"
else
  pass uninstall
fi
if "$V" -m pip install -q --no-index "$whl" >"$T/pip4.out" 2>&1; then
  got=$(cd "$T/elsewhere" && "$V" "$T/check.py" "$IMG" 2>&1 | tail -n 1)
  [ "$got" = "$want" ] && pass wheel_load || fail wheel_load "got '$got', want '$want'"
else
  fail wheel_load "$(cat "$T/pip4.out")"
fi
