#!/bin/sh
# pack.sh BUILD OUTDIR — makes the npm package tarball OUTDIR/sqlite-ram-V.tgz
# from this folder plus BUILD/ram.so (as lib/ram0.so) and models/default.ram
# (as share/sqlite-ram/default.ram), staged in a temporary folder so that the
# source tree never holds built files. `npm pack` needs no network.
#   sh bindings/node/pack.sh build build/dist && npm install build/dist/sqlite-ram-0.1.0.tgz
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: pack.sh BUILD OUTDIR}
out=${2:?usage: pack.sh BUILD OUTDIR}
model=${SQLITE_RAM_MODEL:-$root/models/default.ram}
for f in "$build/ram.so" "$model"; do
  [ -f "$f" ] || { echo "pack.sh: $f is missing: run make first" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
cp "$here/package.json" "$here/index.js" "$here/index.d.ts" "$stage/"
mkdir -p "$stage/lib" "$stage/share/sqlite-ram"
cp "$build/ram.so" "$stage/lib/ram0.so"
cp "$model" "$stage/share/sqlite-ram/default.ram"
(cd "$stage" && npm pack --silent --pack-destination "$out" >/dev/null)
ls "$out"/sqlite-ram-*.tgz
