#!/bin/sh
# test_node_pkg.sh — the Node package (bindings/node): bindings/node/pack.sh
# makes sqlite-ram-V.tgz from the build, npm installs it beside better-sqlite3@12
# and libsql@0.5 (from npm, into build/npm-node, kept between runs: never
# committed), and from another folder load(db) runs ram_tags with the bundled
# default model in both, giving the tags the build's ram.so gives with
# models/default.ram. The Buffer is bound as `.get([buf])`, the form the
# package documents: libsql 0.5 aborts the process on a lone Buffer (its
# bug, README "Node"); better-sqlite3 is checked with both forms.
# Without the npm registry (and nothing installed yet) the test prints SKIP
# with the reason; in CI npm is reachable.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
fail() { echo "FAIL: node_pkg.$1: $2"; }
pass() { echo "PASS: node_pkg.$1"; }
for f in "$B/ram.so" models/default.ram; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
for c in node npm; do
  command -v $c >/dev/null 2>&1 || { fail $c "$c is not installed"; exit 1; }
done
B=$(cd "$B" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
IMG=$ROOT/demo/photos/04-a-large-plain-pink-star.png
# One npm folder for the build and the sanitizer suites (better-sqlite3 compiles
# its native part when no prebuilt binary can be downloaded: once, not per suite).
case "$B" in "$ROOT"/build|"$ROOT"/build/*) NPM_DIR=$ROOT/build/npm-node ;; *) NPM_DIR=$B/npm-node ;; esac
NPM_DIR=${RAM_NPM_NODE:-$NPM_DIR}
export XDG_DATA_HOME="$T/xdg-home" XDG_DATA_DIRS="$T/xdg-dirs"
unset RAM_MODEL

# 1. better-sqlite3@12 and libsql@0.5 from npm, when missing
have() { [ -f "$NPM_DIR/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] &&
         [ -f "$NPM_DIR/node_modules/libsql/package.json" ]; }
if ! have; then
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' >"$NPM_DIR/package.json"
  if ! timeout 60 npm ping >"$T/ping.log" 2>&1; then
    echo "SKIP: node_pkg: the npm registry is unreachable ($(tail -n 1 "$T/ping.log")); nothing was tested"
    exit 0
  fi
  (cd "$NPM_DIR" && timeout 600 npm install --no-audit --no-fund better-sqlite3@12 libsql@0.5) >"$T/npm.log" 2>&1
  # npm 11 skips dependencies' install scripts unless approved: build it explicitly.
  if [ ! -f "$NPM_DIR/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
    (cd "$NPM_DIR" && timeout 900 npm rebuild better-sqlite3) >>"$T/npm.log" 2>&1
  fi
  have || { fail npm_install "better-sqlite3@12 or libsql@0.5 not installed in $NPM_DIR: $(tail -n 5 "$T/npm.log")"; exit 1; }
fi

# 2. the package: packed from this build, installed from the tarball
if sh bindings/node/pack.sh "$B" "$T/dist" >"$T/pack.log" 2>&1 &&
   (cd "$NPM_DIR" && npm install --no-save --prefer-offline --no-audit --no-fund "$T"/dist/sqlite-ram-*.tgz) >>"$T/pack.log" 2>&1 &&
   [ -f "$NPM_DIR/node_modules/sqlite-ram/lib/ram0.so" ] &&
   [ -f "$NPM_DIR/node_modules/sqlite-ram/share/sqlite-ram/default.ram" ]; then
  pass pack_install
else
  fail pack_install "$(cat "$T/pack.log")"
  exit 1
fi

want=$(sqlite3 -batch -init /dev/null :memory: ".load $B/ram" \
  "SELECT ram_load('$ROOT/models/default.ram') IS NOT NULL" "SELECT ram_tags(readfile('$IMG'))" 2>&1 | tail -n 1)
cat >"$T/check.js" <<'EOF'
// node check.js DRIVER IMAGE [lone]: prints the model file and the tags
const fs = require("fs");
const Database = require(process.argv[2]);
const ram = require("sqlite-ram");
const db = new Database(":memory:");
if (ram.load(db) !== db) throw new Error("load() must return db");
if (!fs.existsSync(ram.getLoadablePath())) throw new Error("no " + ram.getLoadablePath());
let threw = false;
try { ram.load({}); } catch (e) { threw = e instanceof TypeError; }
if (!threw) throw new Error("load({}) did not throw a TypeError");
const buf = fs.readFileSync(process.argv[3]);
const row = db.prepare("SELECT json_extract(ram_model(), '$.file') AS file, ram_tags(?) AS tags").get([buf]);
if (row.file !== fs.realpathSync(ram.getDefaultModelPath())) throw new Error("model " + row.file);
console.log(row.tags);
if (process.argv[4] === "lone") console.log(db.prepare("SELECT ram_tags(?) AS t").get(buf).t);
EOF
mkdir -p "$T/elsewhere"
for drv in better-sqlite3 libsql; do
  lone=; [ $drv = better-sqlite3 ] && lone=lone
  out=$(cd "$T/elsewhere" && NODE_PATH="$NPM_DIR/node_modules" node "$T/check.js" $drv "$IMG" $lone 2>&1); rc=$?
  bad=
  [ $rc -eq 0 ] || bad="exit $rc"
  printf '%s\n' "$out" | while IFS= read -r l; do [ "$l" = "$want" ] || echo x; done | grep -q x && bad="$bad tags"
  if [ -z "$bad" ] && [ -n "$want" ] && printf '%s' "$out" | grep -q star; then
    pass "load_$drv"
  else
    fail "load_$drv" "$bad: '$out', want '$want'"
  fi
done
# libsql's lone-Buffer abort, for the record (not ours: no extension loaded here)
cat >"$T/lone.js" <<'EOF'
const D = require("libsql"); const db = new D(":memory:");
console.log(db.prepare("SELECT length(?) AS n").get(Buffer.from([1, 2, 3])).n);
EOF
# in a shell of its own, whose "Aborted" goes to the captured stderr
out=$(cd "$T/elsewhere" && NODE_PATH="$NPM_DIR/node_modules" sh -c 'node "$1"' sh "$T/lone.js" 2>&1); rc=$?
echo "INFO: node_pkg: plain libsql $(node -p "require('$NPM_DIR/node_modules/libsql/package.json').version") with .get(lone Buffer): exit $rc$( [ $rc -ne 0 ] && printf ', %s' "$(printf '%s' "$out" | grep -m1 panicked)")"
