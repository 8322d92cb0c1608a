#!/bin/sh
# Installs the Debian packages the build and the tests need, when missing.
# Runs apt-get only if something is absent (as root; otherwise says what to install).
set -e
# chromium: headless, for tests/test_serve.sh (the search page, driven by playwright-core from npm).
PKGS="build-essential pkg-config libvips-dev libopenblas-dev libxxhash-dev libsqlite3-dev sqlite3 python3 chromium"
# libexempi-dev, libexpat1-dev: ram_xmp() merges tags into XMP sidecars with Adobe's XMP Toolkit
# (exempi), after an expat well-formedness check; libimage-exiftool-perl reads them back in
# tests/test_xmp.sh.
PKGS="$PKGS libexempi-dev libexpat1-dev libimage-exiftool-perl"
# python3-venv: tests/test_python_pkg.sh installs the Python package into a fresh venv.
PKGS="$PKGS python3-venv"
# clang and its compiler-rt (libFuzzer for -fsanitize=fuzzer; Debian 12 only recommends it):
# the fuzz targets that make test runs (tests/fuzz/).
PKGS="$PKGS clang libclang-rt-14-dev"
# clang-format: make lint (run by make test) checks the committed .clang-format.
PKGS="$PKGS clang-format"
# slurm-wlm, munge, parallel: tests/test_scale.sh runs a one-node Slurm cluster (slurmctld,
# slurmd, munged on localhost) and GNU parallel over shards of an index (docs/SCALE.md).
PKGS="$PKGS slurm-wlm munge parallel"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root, or: sudo apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
