#!/bin/sh
# test_serve.sh — the local search page (issue 8, demo/serve.py) and the SQL
# function behind its thumbnails:
#   1. ram_thumbnail() in the sqlite3 shell: JPEG of the right size, EXIF
#      orientation applied, no metadata; NULLs; argument errors; non-images,
#      refused formats and the pixel limit (header-checked) as errors.
#   2. a temporary index of demo/photos made by the build's ram-index, served
#      on a free port; the page driven in headless Chromium (tests/serve_page.mjs,
#      playwright-core installed into $RAM_BUILD/npm when missing): vocabulary
#      autocompletion, a tag and a description search (SQL and timing shown,
#      grid filled, ranked), the large view; screenshot to $RAM_BUILD/search.png
#      (and docs/search.png with RAM_SCREENSHOT=1), whose content serve_page.mjs
#      checks: the first thumbnails' pixels are not blank, the count shown is the query's.
#   3. what must be refused: paths instead of row ids, URL-encoded traversal,
#      unknown ids, rows whose stored path leaves the root (.., absolute, a
#      symlink), a foreign Host header, a cross-site request; the server listens
#      on 127.0.0.1 only; API errors are JSON the page shows; an edited file
#      gets a new thumbnail.
#   4. an index of absolute paths (one row naming /etc/passwd): the root is not
#      guessed as /, --root confines it; an index of another model stops the
#      server at start with the command that re-embeds it.
# The answers are checked against demo/photos/MANIFEST.json on the bundled
# default model; without models/default.ram (issue 6, not landed) the page
# runs on the golden test model and a NOTE says the ranking is not checked.
# Under sanitizers (RAM_SANITIZE=1) the browser part is skipped: node and
# Chromium are not instrumented; everything else runs.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
PY=/usr/bin/python3 # Debian's: its sqlite3 loads extensions (pyenv's cannot)
fail() { echo "FAIL: serve.$1: $2"; }
pass() { echo "PASS: serve.$1"; }
for f in "$B/ram-index" "$B/ram.so"; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
command -v sqlite3 >/dev/null 2>&1 || { fail sqlite3 "the sqlite3 shell is not installed"; exit 1; }
"$PY" -c 'import sqlite3; sqlite3.Connection.enable_load_extension' 2>/dev/null ||
  { fail python "$PY cannot load SQLite extensions (Debian's python3 is needed)"; exit 1; }
B=$(cd "$B" && pwd)
T=$(mktemp -d)
SRV=
stop_server() {
  if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; SRV=; fi
}
trap 'stop_server; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

# ------------------------------------------------------------ 1. ram_thumbnail
q() { sqlite3 -bail -cmd ".load $B/ram" :memory: "$@" 2>&1; }
# JPEG facts of a file: "WxH exif=0/1" from its markers (Python, no libvips tools needed)
jpeg_info() {
  "$PY" - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
if d[:2] != b"\xff\xd8" or d[-2:] != b"\xff\xd9":
    print("not-a-jpeg"); sys.exit()
i, exif, size = 2, 0, "?"
while i + 4 <= len(d) and d[i] == 0xFF:
    m, n = d[i + 1], struct.unpack(">H", d[i + 2:i + 4])[0]
    if m == 0xE1 and d[i + 4:i + 8] == b"Exif": exif = 1
    if m in (0xC0, 0xC1, 0xC2):
        h, w = struct.unpack(">HH", d[i + 5:i + 9]); size = "%dx%d" % (w, h)
    if m == 0xDA: break
    i += 2 + n
print("%s exif=%d" % (size, exif))
EOF
}
thumb_is() { # NAME FILE SIZE WANT
  out=$(q "SELECT writefile('$T/$1.jpg', ram_thumbnail(readfile('$2'), $3))")
  got=$(jpeg_info "$T/$1.jpg" 2>&1)
  if [ "$got" = "$4" ]; then pass "thumbnail.$1"; else fail "thumbnail.$1" "got '$got' ($out), want '$4'"; fi
}
thumb_is png_down demo/photos/42-many-small-checkered-orange-rings.png 64 "64x51 exif=0"
thumb_is png_up demo/photos/42-many-small-checkered-orange-rings.png 320 "320x256 exif=0"
thumb_is exif_rotated tests/data/images/orient6.jpg 64 "48x64 exif=0"   # stored 32x24, orientation 6
thumb_is exif_none tests/data/images/orient1.jpg 64 "64x48 exif=0"
thumb_is cmyk tests/data/images/cmyk.jpg 40 "40x20 exif=0"            # 32x16 CMYK
thumb_is grey_alpha tests/data/images/ga.png 50 "50x37 exif=0"       # 23x17 grey + alpha
r=$(q "SELECT count(*) FROM (SELECT 1 WHERE substr(hex(ram_thumbnail(readfile('tests/data/images/pal.gif'), 30)), 1, 6) = 'FFD8FF')
  UNION ALL SELECT typeof(ram_thumbnail(readfile('tests/data/images/rgb16.png'), 30))
  UNION ALL SELECT quote(ram_thumbnail(NULL, 30)) UNION ALL SELECT quote(ram_thumbnail(x'00', NULL))" | tr '\n' ' ')
[ "$r" = "1 blob NULL NULL " ] && pass thumbnail.formats_and_null || fail thumbnail.formats_and_null "$r"

err_is() { # NAME SQL-EXPRESSION EXPECTED-MESSAGE-PART [SETUP]
  out=$(q "${4:-}SELECT $2;")
  case "$out" in
    *"$3"*) pass "thumbnail.$1" ;;
    *) fail "thumbnail.$1" "SELECT $2 gave: $out" ;;
  esac
}
img="readfile('demo/photos/42-many-small-checkered-orange-rings.png')"
err_is size_zero "ram_thumbnail($img, 0)" "ram_thumbnail(): argument 2 must be an INTEGER size in 1..4096"
err_is size_big "ram_thumbnail($img, 4097)" "argument 2 must be an INTEGER size in 1..4096"
err_is size_text "ram_thumbnail($img, '64')" "argument 2 must be an INTEGER size in 1..4096"
err_is size_real "ram_thumbnail($img, 6.5)" "argument 2 must be an INTEGER size in 1..4096"
err_is image_text "ram_thumbnail('photo.jpg', 64)" "ram_thumbnail(): argument 1 must be a BLOB of image bytes (use readfile('photo.jpg'))"
err_is not_image "ram_thumbnail(x'0011223344556677', 64)" "ram_thumbnail(): image: unrecognised format"
err_is empty "ram_thumbnail(x'', 64)" "ram_thumbnail(): image: empty blob"
err_is svg "ram_thumbnail(CAST('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"/>' AS BLOB), 64)" "ram_thumbnail(): image: "
err_is bomb_png "ram_thumbnail(readfile('tests/data/images/bomb.png'), 64)" "ram_thumbnail(): image: 30000x30000 is 900000000 pixels, over the limit of 100000000"
err_is bomb_webp "ram_thumbnail(readfile('tests/data/images/bomb.webp'), 64)" "over the limit of 100000000"
err_is pixel_limit "ram_thumbnail($img, 64)" "ram_thumbnail(): image: 160x128 is 20480 pixels, over the limit of 20000" \
  "SELECT ram_set_max_pixels(20000);"
# SQLITE_TOOBIG (18) for the limit, as the other image functions
r=$("$PY" - "$B/ram" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(":memory:"); db.enable_load_extension(True); db.load_extension(sys.argv[1])
try:
    db.execute("SELECT ram_thumbnail(?, 64)", (open("tests/data/images/bomb.png", "rb").read(),)).fetchone()
    print("no error")
except sqlite3.DataError as e:
    print("DataError")  # SQLITE_TOOBIG
except sqlite3.Error as e:
    print(type(e).__name__, e)
EOF
)
[ "$r" = DataError ] && pass thumbnail.toobig_code || fail thumbnail.toobig_code "$r"

# ------------------------------------------------------------ 2. an index, the server
MODEL_ARGS=
RANKING=0
if [ -f models/default.ram ]; then
  RAM_MODEL="$ROOT/models/default.ram"; export RAM_MODEL
  RANKING=1
  TAG=star TEXT="a small blue triangle" TEXT_WANT="blue triangle"
  VOCAB_FILE="$ROOT/models/default/ram_tag_list.txt"
else
  echo "NOTE: serve: default model missing, ranking assertions skipped (models/default.ram, issue 6: the page runs on the golden test model)"
  MODEL_ARGS="--model $B/models/golden_ram_plus_clip.ram"
  TAG= TEXT="a small blue triangle" TEXT_WANT= VOCAB_FILE=
fi
cp -r demo/photos "$T/photos"
(cd "$T" && "$B/ram-index" photos photos.db $MODEL_ARGS) >"$T/index.log" 2>&1 ||
  { fail index "$(cat "$T/index.log")"; exit 1; }
COUNT=$(sqlite3 "$T/photos.db" "SELECT count(*) FROM photos_files")
[ "$COUNT" = 50 ] && pass index || fail index "$COUNT rows, want 50"
if [ -z "$TAG" ]; then # golden model: a tag some pictures show (its tags are invented words)
  TAG=$(sqlite3 -cmd ".load $B/ram" "$T/photos.db" "SELECT tags FROM photos WHERE rowid = 1" | sed 's/ | .*//')
fi

start_server() { # DB [OPTION...]: starts demo/serve.py on a free port; sets URL, PORT, SRV
  URL=
  db=$1; shift
  "$PY" demo/serve.py "$db" --port 0 --ext "$B/ram" "$@" >"$T/serve.out" 2>"$T/serve.err" &
  SRV=$!
  i=0
  while [ $i -lt 600 ]; do # up to 60 s (the vocabulary query runs one inference)
    URL=$(grep -o 'http://[^ ]*/' "$T/serve.out" 2>/dev/null | head -1)
    [ -n "$URL" ] && break
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  PORT=${URL##*:}; PORT=${PORT%/}
  [ -n "$URL" ]
}
if start_server "$T/photos.db"; then
  pass start
else
  fail start "no URL printed: $(cat "$T/serve.out" "$T/serve.err")"; exit 1
fi
case "$URL" in http://127.0.0.1:*) pass bind_default ;; *) fail bind_default "$URL" ;; esac

# ------------------------------------------------------------ 2b. the page in Chromium
if [ "${RAM_SANITIZE:-0}" = 1 ]; then
  echo "NOTE: serve.page: the browser checks are skipped under sanitizers (node and Chromium are not instrumented)"
else
  if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then sh tools/deps.sh >"$T/deps.log" 2>&1; fi
  NPM_DIR=${RAM_NPM:-$B/npm}
  if [ ! -f "$NPM_DIR/node_modules/playwright-core/package.json" ] && command -v npm >/dev/null 2>&1; then
    mkdir -p "$NPM_DIR"
    timeout 300 npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent playwright-core >"$T/npm.log" 2>&1
  fi
  if [ ! -x /usr/bin/chromium ]; then
    fail page "/usr/bin/chromium is missing (make deps, as root, installs it)"
  elif ! command -v node >/dev/null 2>&1; then
    fail page "node is missing"
  elif [ ! -f "$NPM_DIR/node_modules/playwright-core/package.json" ]; then
    fail page "cannot install playwright-core into $NPM_DIR: $(tail -3 "$T/npm.log" 2>/dev/null)"
  else
    rm -f "$B/search.png"
    URL="$URL" NPM_DIR="$NPM_DIR" TAG="$TAG" TEXT="$TEXT" TEXT_WANT="$TEXT_WANT" RANKING=$RANKING \
      MANIFEST="$ROOT/demo/photos/MANIFEST.json" SHOT="$B/search.png" PROFILE="$T/chromium-profile" \
      K=24 COUNT="$COUNT" VOCAB_FILE="$VOCAB_FILE" timeout 180 node tests/serve_page.mjs >"$T/node.out" 2>"$T/node.err"
    rc=$?
    cat "$T/node.out"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$T/node.out"; then
      fail page "node exited with $rc: $(tail -5 "$T/node.err")"
    fi
    if [ -s "$B/search.png" ]; then
      pass screenshot
      if [ "${RAM_SCREENSHOT:-0}" = 1 ]; then # for the README: 256 colours when the vips tool is there
        { vips copy "$B/search.png" "docs/search.png[palette,compression=9]" 2>/dev/null ||
          cp "$B/search.png" docs/search.png; } && echo "INFO: wrote docs/search.png"
      fi
    else
      fail screenshot "no $B/search.png"
    fi
    ls "$T"/photos.db.thumbs/*-256.jpg >/dev/null 2>&1 && pass thumbnail_cache || fail thumbnail_cache "nothing in $T/photos.db.thumbs"
  fi
fi
stop_server

# ------------------------------------------------------------ 3. what must be refused
# Rows whose stored path leaves the root, added after the fact (the bytes are
# a real photo's, so the rows are valid index rows): '..', absolute, a symlink
# inside the folder pointing out, and a file that is gone.
ln -s /etc/passwd "$T/photos/zz-link.png"
photo="readfile('photos/14-a-large-plain-orange-heart.png')"
(cd "$T" && sqlite3 -bail -cmd ".load $B/ram" photos.db "
  INSERT INTO photos(rowid, path, image) VALUES (1001, 'photos/../../../../../../etc/passwd', $photo);
  INSERT INTO photos(rowid, path, image) VALUES (1002, '/etc/passwd', $photo);
  INSERT INTO photos(rowid, path, image) VALUES (1003, 'photos/zz-link.png', $photo);
  INSERT INTO photos(rowid, path, image) VALUES (1004, 'photos/gone.png', $photo);") >"$T/evil.log" 2>&1 ||
  fail hostile_rows "$(cat "$T/evil.log")"
start_server "$T/photos.db" || { fail restart "$(cat "$T/serve.err")"; exit 1; }
"$PY" - "$URL" "$PORT" "$T" <<'EOF'
import http.client, json, os, socket, struct, subprocess, sys
url, port, tdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def check(n, cond, why=""):
    print(("PASS: serve.http.%s" % n) if cond else ("FAIL: serve.http.%s: %s" % (n, why)), flush=True)
def get(path, host=None, headers=()):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("GET", path, skip_host=True)  # the path goes out exactly as written
    c.putheader("Host", host or "127.0.0.1:%d" % port)
    for k, v in headers:
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body

s, h, b = get("/")
check("page", s == 200 and b"<title>sqlite-ram search</title>" in b and "default-src 'self'" in h.get("Content-Security-Policy", ""), "status %d: %r" % (s, b[:200]))
s, h, b = get("/api/search?q=&k=5")
j = json.loads(b) if s == 200 else {}
check("api_search", s == 200 and len(j.get("results", [])) == 5 and j.get("sql", "").endswith("LIMIT 5"), "status %d: %r" % (s, b[:200]))
s, h, b = get("/api/search?q=x&k=100000")
check("k_limit", s == 400 and json.loads(b).get("error") == "k must be in 1..500", "status %d: %r" % (s, b[:200]))
s, h, b = get("/api/photo/999999")
check("api_error_json", s == 404 and h.get("Content-Type", "").startswith("application/json") and
      "no row 999999" in json.loads(b).get("error", ""), "status %d: %r" % (s, b[:200]))

# a good picture: thumbnail 256, large 1024, the original's bytes
def longest(jpeg):
    i = 2
    while i + 9 < len(jpeg):
        m, n = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            h_, w_ = struct.unpack(">HH", jpeg[i + 5:i + 9]); return max(w_, h_)
        i += 2 + n
    return None
s, h, b = get("/thumb/14")
check("thumb", s == 200 and h.get("Content-Type") == "image/jpeg" and longest(b) == 256, "status %d: %r" % (s, b[:200]))
s, h, b = get("/photo/14")
check("large", s == 200 and longest(b) == 1024, "status %d: %r" % (s, b[:200]))
s, h, b = get("/original/14")
real = open(os.path.join(tdir, "photos/14-a-large-plain-orange-heart.png"), "rb").read()
check("original", s == 200 and b == real and h.get("Content-Type") == "image/png", "status %d: %r" % (s, b[:200]))
s, h, b = get("/api/photo/14")
j = json.loads(b) if s == 200 else {}
check("details", s == 200 and j.get("scores") and "WHERE rowid = 14" in j.get("sql", ""), "status %d: %r" % (s, b[:200]))
check("cache_files", any(f.endswith("-256.jpg") for f in os.listdir(os.path.join(tdir, "photos.db.thumbs"))), "no file in photos.db.thumbs")

# refused: paths, encodings, unknown ids, rows leaving the root
refuse = {
    "/photo/../../etc/passwd": 404, "/photo/..%2f..%2fetc%2fpasswd": 404,
    "/photo/%2e%2e%2f%2e%2e%2fetc%2fpasswd": 404, "/thumb/%2e%2e/%2e%2e/etc/passwd": 404,
    "/original/%2fetc%2fpasswd": 404, "//etc/passwd": 404, "/static/../../../etc/passwd": 404,
    "/static/../demo/serve.py": 404, "/serve.py": 404, "/photo/1/../../../etc/passwd": 404,
    "/photo/-1": 404, "/photo/1.0": 404, "/photo/0x1": 404, "/thumb/999999": 404,
    "/original/999999": 404, "/api/photo/999999": 404, "/photo/99999999999999999999": 404,
    "/original/1001": 403, "/thumb/1001": 403, "/photo/1001": 403,
    "/original/1002": 403, "/thumb/1002": 403,
    "/original/1003": 403, "/thumb/1003": 403,
    "/original/1004": 404,
}
wrong = []
for p, want in refuse.items():
    s, h, b = get(p)
    if s != want or b"root:" in b:
        wrong.append("%s -> %d (want %d)%s" % (p, s, want, " LEAKED" if b"root:" in b else ""))
check("refused", not wrong, "; ".join(wrong))
s, h, b = get("/api/info", host="attacker.example:%d" % port)
check("host_header", s == 403, "status %d: %r" % (s, b[:200]))
# another site's page may not use the pictures: the browser says so in Sec-Fetch-Site
s, h, b = get("/thumb/14", headers=[("Sec-Fetch-Site", "cross-site")])
s2, h2, b2 = get("/thumb/14", headers=[("Sec-Fetch-Site", "same-origin")])
check("cross_site", s == 403 and s2 == 200 and h2.get("Cross-Origin-Resource-Policy") == "same-origin",
      "cross-site %d, same-origin %d, CORP %r" % (s, s2, h2.get("Cross-Origin-Resource-Policy")))

# an edited file gets a new thumbnail (the cache name holds its size and mtime)
f14 = os.path.join(tdir, "photos/14-a-large-plain-orange-heart.png")
s, h, before = get("/thumb/14")
data = open(os.path.join(tdir, "photos/07-two-small-plain-red-circles.png"), "rb").read()
open(f14, "wb").write(data)
os.utime(f14, ns=(os.stat(f14).st_atime_ns, os.stat(f14).st_mtime_ns + 10**9))
s2, h2, after = get("/thumb/14")
s3, h3, orig = get("/original/14")
check("thumb_edited_file", s == 200 and s2 == 200 and after != before and longest(after) == 256 and orig == data,
      "status %d/%d, same bytes %s" % (s, s2, after == before))

# listening on 127.0.0.1 only
try:
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True).stdout.split()
    local = [w for w in out if w.endswith(":%d" % port)]
    check("listen_loopback", local == ["127.0.0.1:%d" % port], "ss shows %s" % local)
except FileNotFoundError:
    print("NOTE: serve.http.listen_loopback: no ss command")
addrs = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
reached = []
for a in addrs:
    try:
        socket.create_connection((a, port), timeout=2).close()
        reached.append(a)
    except OSError:
        pass
check("not_on_network", not reached, "reachable on %s" % reached)
if not addrs:
    print("NOTE: serve.http.not_on_network: this machine has no non-loopback address to try")
EOF
stop_server

# ------------------------------------------------------------ 4. absolute paths, another model
# An index of absolute paths with one row naming /etc/passwd: the root is not
# guessed as / (the server stops and asks for --root); with --root the row is 403.
(cd "$T" && "$B/ram-index" "$T/photos" abs.db $MODEL_ARGS) >"$T/abs.log" 2>&1 || fail abs_index "$(cat "$T/abs.log")"
sqlite3 -bail -cmd ".load $B/ram" "$T/abs.db" "INSERT INTO photos(rowid, path, image)
  VALUES (2001, '/etc/passwd', readfile('$T/photos/14-a-large-plain-orange-heart.png'))" >"$T/abs2.log" 2>&1 ||
  fail abs_row "$(cat "$T/abs2.log")"
if start_server "$T/abs.db"; then
  fail abs_root_guess "started with root / : $(cat "$T/serve.out")"; stop_server
else
  wait "$SRV" 2>/dev/null; SRV=
  grep -q 'no common folder narrower than /: name the photo folder with --root' "$T/serve.err" &&
    pass abs_root_guess || fail abs_root_guess "$(cat "$T/serve.err")"
fi
if start_server "$T/abs.db" --root "$T/photos"; then
  good=$(sqlite3 "$T/abs.db" "SELECT id FROM photos_files WHERE path LIKE '%/01-%'")
  status() { "$PY" -c 'import sys, urllib.request, urllib.error
try: print(urllib.request.urlopen(sys.argv[1], timeout=30).status)
except urllib.error.HTTPError as e: print(e.code)' "$1"; }
  s1=$(status "${URL}original/2001")
  s2=$(status "${URL}original/$good")
  [ "$s1" = 403 ] && [ "$s2" = 200 ] && pass abs_root_given || fail abs_root_given "/etc/passwd row $s1, a photo $s2"
  stop_server
else
  fail abs_root_given "$(cat "$T/serve.err")"
fi

# A table whose images another model embedded: the server stops at start and
# names the command that re-embeds it (every query would fail otherwise).
cp "$T/photos.db" "$T/other.db"
sqlite3 "$T/other.db" "UPDATE photos_gens SET digest = '0123456789abcdef0123456789abcdef'"
if start_server "$T/other.db"; then
  fail other_model "started: $(cat "$T/serve.out")"; stop_server
else
  wait "$SRV" 2>/dev/null; SRV=
  grep -q 'cannot answer queries: .*not the one photos was built with' "$T/serve.err" &&
    grep -q 'DIR .*other.db --switch-model' "$T/serve.err" && pass other_model || fail other_model "$(cat "$T/serve.err")"
fi

# The table's model is its current model= (in photos_config), not the one of
# its CREATE statement: after ram-index moved the table to another file, the
# first one may be gone.
mkdir -p "$T/few" && cp "$T"/photos/0[1-2]-* "$T/few/"
cp "$B/models/golden_ram_plus_clip.ram" "$T/mA.ram" && cp "$B/models/golden_ram_plus_clip.ram" "$T/mB.ram"
(cd "$T" && "$B/ram-index" few moved.db --model mA.ram && "$B/ram-index" few moved.db --model mB.ram) >"$T/moved.log" 2>&1 ||
  fail moved_index "$(cat "$T/moved.log")"
rm -f "$T/mA.ram"
if start_server "$T/moved.db"; then
  f=$("$PY" -c 'import json, sys, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + "api/info"))["model"]["file"])' "$URL")
  [ "$f" = "$(cd "$T" && pwd -P)/mB.ram" ] && pass moved_model || fail moved_model "serves with '$f'"
  stop_server
else
  fail moved_model "$(cat "$T/serve.err")"
fi
