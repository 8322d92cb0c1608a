#!/bin/sh
# test_security.sh — what a database or a file name from someone else can
# make build/ram-index and the extension do (issue 20; the search page's
# side is section 5 of tests/test_serve.sh):
#   1. ram-index prints every name escaped (control characters, C1 controls,
#      invalid UTF-8 as \xNN), on a terminal (a pty) and not, cuts the
#      progress line between characters, keeps one message per line, and
#      stores the names as bytes; hidden (dot) files are counted and
#      reported, --hidden indexes them.
#   2. a table's recorded model file is opened only from a folder the user
#      trusts (the default model's, RAM_MODEL's) or when named in the
#      connection; errors about a file that is not a model say "bad magic"
#      and nothing of its bytes, its size or whether it exists.
#   3. DIRECTONLY: a view or trigger of the database cannot call ram_load(),
#      ram_set_max_pixels() or write a ram_index table.
#   4. 40 hand edits of a ram_index table's shadow tables: every kind of
#      statement gives a result or an error, never a crash or a hang.
# Loopback only, no network; bounded (every program run under timeout).
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
PY=/usr/bin/python3
fail() { echo "FAIL: security.$1: $2"; }
pass() { echo "PASS: security.$1"; }
for f in "$B/ram-index" "$B/ram.so" "$B/models/golden_ram_plus_clip.ram"; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
command -v sqlite3 >/dev/null 2>&1 || { fail sqlite3 "the sqlite3 shell is not installed"; exit 1; }
B=$(cd "$B" && pwd)
T=$(mktemp -d)
T=$(cd "$T" && pwd -P)
trap 'rm -rf "$T"' EXIT INT TERM
GOLD="$B/models/golden_ram_plus_clip.ram"
IMG=tests/data/golden/images
q() { timeout 60 sqlite3 -bail -cmd ".load $B/ram" "$@" 2>&1; }

# ------------------------------------------------------------ 1. ram-index output
mkdir -p "$T/p/.hidden-folder"
img=$(ls "$IMG"/*.png "$IMG"/*.jpg 2>/dev/null | head -1)
cp "$img" "$T/p/$(printf 'a-\033]0;pwned\007\033[2J-title')".png
cp "$img" "$T/p/$(printf 'b-new\nline-ram-index: fake')".png
cp "$img" "$T/p/$(printf 'c-caf\303\251-\377\376-\302\233-c1')".png
# a long name of two-byte characters: the progress line shows its end
cp "$img" "$T/p/d-$("$PY" -c 'print("\u00e9" * 70, end="")').png"
printf 'not a picture' >"$T/p/$(printf 'e-\033[31mred\033[0m').txt"
cp "$img" "$T/p/.dot.png"
cp "$img" "$T/p/.hidden-folder/x.png"
"$PY" - "$B/ram-index" "$T" "$GOLD" <<'EOF'
import os, pty, re, struct, subprocess, sys, termios, fcntl
exe, tdir, gold = sys.argv[1:4]
def check(n, cond, why=""):
    print(("PASS: security.%s" % n) if cond else ("FAIL: security.%s: %s" % (n, why)), flush=True)
def clean(out, name):
    """The output is valid UTF-8 holding no control character but newline
    (and, on a terminal, ram-index's own line rewrite \\r ESC[K) and no C1
    control; every line is one of ram-index's."""
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        return "not UTF-8: %s" % e
    text = text.replace("\r\x1b[K", "\n").replace("\r\n", "\n")  # the pty's own \r\n
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0]
    if bad:
        return "control characters %r in %r" % (sorted(set(bad)), text[:300])
    lines = [l for l in text.split("\n") if l]
    stray = [l for l in lines if not re.match(r"(ram-index: |\d+/\d+ files )", l)]
    return "lines not of ram-index: %r" % stray if stray else None

def run(args, tty, cols=80):
    if tty:
        m, s = pty.openpty()
        fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
        p = subprocess.Popen(args, cwd=tdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=s)
        os.close(s)
        out = b""
        while True:
            try:
                d = os.read(m, 65536)
            except OSError:
                break
            if not d:
                break
            out += d
        os.close(m)
        return p.wait(timeout=120), out
    r = subprocess.run(args, cwd=tdir, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, timeout=120)
    return r.returncode, r.stderr

rc, out = run([exe, "p", "t1.db", "--model", gold, "-v", "--batch", "1"], tty=True, cols=60)
why = clean(out, "tty")
check("ram_index_tty_escaped", rc == 0 and not why, "rc %d: %s" % (rc, why))
text = out.decode("utf-8", "replace")
check("ram_index_names_shown_escaped", "skipped p/e-\\x1b[31mred\\x1b[0m.txt: " in text, text[-300:])
# the progress lines are cut at the terminal's width, between characters
rows = [l for l in text.replace("\r\x1b[K", "\n").split("\n") if re.match(r"\d+/\d+ files ", l)]
check("ram_index_tty_width", rows and all(len(l.encode()) <= 59 for l in rows[:-1]),
      "%r" % [l for l in rows if len(l.encode()) > 59][:3])
check("ram_index_hidden_counted", "ram-index: 2 hidden files or folders skipped (names starting with '.'; "
      "--hidden indexes them)" in text, text[-300:])

rc, out = run([exe, "p", "t2.db", "--model", gold, "-v"], tty=False)
why = clean(out, "pipe")
text = out.decode("utf-8", "replace")
check("ram_index_pipe_escaped", rc == 0 and not why and "skipped p/e-\\x1b[31mred\\x1b[0m.txt: " in text,
      "rc %d: %s %r" % (rc, why, text[-400:]))
check("ram_index_counts", "5/5 files (100%), 4 new, 0 already indexed, 1 not images" in text, text[-300:])
# an error naming a file: escaped as well (a database path with escapes)
rc, out = run([exe, "p\x1b[2J", "t3.db", "--model", gold], tty=False)
check("ram_index_error_escaped", rc != 0 and b"\x1b" not in out and b"p\\x1b[2J is not a folder" in out, repr(out))

rc, out = run([exe, "p", "t4.db", "--model", gold, "--hidden"], tty=False)
check("ram_index_hidden_included", rc == 0 and b"7/7 files (100%), 6 new" in out and b"hidden" not in out, repr(out))
EOF
# the names are stored as their bytes
r=$(sqlite3 "$T/t2.db" "SELECT count(*) FROM photos_files WHERE hex(path) GLOB '*FFFE2DC29B*' OR hex(path) GLOB '*0A6C696E65*'")
[ "$r" = 2 ] && pass ram_index_bytes_stored || fail ram_index_bytes_stored "$r rows"

# ------------------------------------------------------------ 2. the model a table records
# A table bound to a model file, then a database whose model row names
# another file: a text file, a missing one, a symlink out of a trusted folder.
mkdir -p "$T/models" "$T/f"
cp "$img" "$T/f/"
cp "$GOLD" "$T/models/m.ram"
printf 'root:*:20000:0:99999:7:::\n' >"$T/secret"
printf 'tiny' >"$T/tiny"
ln -s "$T/secret" "$T/models/link.ram"
(cd "$T" && timeout 120 "$B/ram-index" f good.db --model models/m.ram) >"$T/good.log" 2>&1 || fail setup "$(cat "$T/good.log")"
number=$(od -An -tu8 -N8 "$T/secret" | tr -d ' ')   # the leak of issue 20: the first 8 bytes as a number
leaks() { # TEXT: 0 when it tells nothing of the secret file
  case "$1" in *"$number"*|*"root:"*|*bytes*|*"header length"*|*"No such file"*) return 1 ;; esac
  return 0
}
hostile() { # NAME PATH: a copy of good.db whose model row is PATH
  cp "$T/good.db" "$T/$1.db"
  sqlite3 "$T/$1.db" "UPDATE photos_config SET value = '$2' WHERE key = 'model'"
}
msg_of() { # DB: the error of a tag query in a fresh connection (no RAM_MODEL: only the default folder is trusted)
  (unset RAM_MODEL; q "$1" "SELECT count(*) FROM photos WHERE tag = 'tag6'")
}
hostile secret "$T/secret"
r=$(msg_of "$T/secret.db")
case "$r" in
  *"ram_index: table photos records the model file '$T/secret', which is not in a folder trusted for models"*"if you trust that file, run SELECT ram_load('$T/secret') first, or set RAM_MODEL to it"*)
    leaks "$r" && pass model_untrusted_refused || fail model_untrusted_refused "leaks: $r" ;;
  *) fail model_untrusted_refused "$r" ;;
esac
# a missing file says the same (no existence oracle)
hostile missing "$T/nothing-here"
r2=$(msg_of "$T/missing.db")
[ "$(echo "$r2" | sed "s|$T/nothing-here|X|g")" = "$(echo "$r" | sed "s|$T/secret|X|g")" ] &&
  pass model_missing_same_message || fail model_missing_same_message "$r2"
# a symlink in a trusted folder pointing out of it is not trusted
hostile link "$T/models/link.ram"
r=$( (RAM_MODEL="$T/models/m.ram"; export RAM_MODEL; q "$T/link.db" "SELECT count(*) FROM photos WHERE tag = 'tag6'") )
case "$r" in *"records the model file '$T/models/link.ram', which is not in a folder trusted"*) pass model_symlink_out_refused ;;
  *) fail model_symlink_out_refused "$r" ;; esac
# the bound model in RAM_MODEL's folder opens in a fresh connection; so does
# a file named in the connection by ram_load()
r=$( (RAM_MODEL="$T/models/other.ram"; export RAM_MODEL; q "$T/good.db" "SELECT count(*) >= 0 FROM photos WHERE tag = 'tag6'") )
[ "$r" = 1 ] && pass model_trusted_folder || fail model_trusted_folder "$r"
cp "$T/models/m.ram" "$T/elsewhere.ram"
hostile named "$T/elsewhere.ram"
r=$(msg_of "$T/named.db" | head -1)
r2=$( (unset RAM_MODEL; q "$T/named.db" "SELECT json_extract(ram_load('$T/elsewhere.ram'), '\$.kind'); SELECT count(*) >= 0 FROM photos WHERE tag = 'tag6'") | tr '\n' ' ')
case "$r" in *"not in a folder trusted"*) [ "$r2" = "RAM++ 1 " ] && pass model_named_in_connection || fail model_named_in_connection "$r2" ;;
  *) fail model_named_in_connection "untrusted first: $r" ;; esac
# the user chose to load it: a file that is not a model says so, and nothing more
for f in secret tiny; do
  r=$(q :memory: "SELECT ram_load('$T/$f')")
  if [ "${r#*ram_load(): }" = "cannot load $T/$f: $T/$f: not a model file (bad magic)" ]; then
    leaks "$r" && pass "bad_magic_$f" || fail "bad_magic_$f" "leaks: $r"
  else
    fail "bad_magic_$f" "$r"
  fi
done
# control characters of a recorded path do not reach the terminal
hostile esc "$(printf '/tmp/\033]0;pwned\007\033[2J.ram')"
r=$(msg_of "$T/esc.db")
case "$r" in *"/tmp/\\x1b]0;pwned\\x07\\x1b[2J.ram"*) printf '%s' "$r" | grep -q "$(printf '\033')" &&
  fail model_path_escaped "raw ESC in: $r" || pass model_path_escaped ;; *) fail model_path_escaped "$r" ;; esac
# ram-index does not load a recorded model it does not trust either
(cd "$T" && unset RAM_MODEL && timeout 120 "$B/ram-index" f secret.db) >"$T/ri.log" 2>&1; rc=$?
r=$(cat "$T/ri.log")
case "$r" in *"table photos records the model file '$T/secret', which is not in a folder trusted for models"*"rerun with --model '$T/secret'"*)
  [ $rc = 1 ] && leaks "$r" && pass ram_index_model_untrusted || fail ram_index_model_untrusted "rc $rc: $r" ;;
  *) fail ram_index_model_untrusted "rc $rc: $r" ;; esac
(cd "$T" && RAM_MODEL="$T/models/x.ram" timeout 120 "$B/ram-index" f good.db) >"$T/ri2.log" 2>&1 &&
  grep -q '0 new, 1 already indexed' "$T/ri2.log" && pass ram_index_model_trusted || fail ram_index_model_trusted "$(cat "$T/ri2.log")"

# ------------------------------------------------------------ 3. DIRECTONLY
# A database can hold views and triggers; none may call the functions that
# open files or change the connection's limits, nor write a ram_index table.
cp "$T/good.db" "$T/trap.db"
sqlite3 "$T/trap.db" "CREATE TABLE t(x);
  CREATE VIEW v_load AS SELECT ram_load('$T/secret') AS x;
  CREATE VIEW v_pixels AS SELECT ram_set_max_pixels(1000000000000) AS x;
  CREATE VIEW v_index AS SELECT path FROM photos;
  CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO photos(photos) VALUES('model=$T/secret'); END;" 2>&1
r=$( (RAM_MODEL="$T/models/m.ram"; export RAM_MODEL
  for s in "SELECT * FROM v_load" "SELECT * FROM v_pixels" "SELECT * FROM v_index" "INSERT INTO t VALUES(1)"; do
    q "$T/trap.db" "$s" | head -1; done) )
n=$(printf '%s\n' "$r" | grep -c 'unsafe use of')
[ "$n" = 4 ] && pass directonly || fail directonly "$r"

# ------------------------------------------------------------ 4. hand-edited shadow tables
# A database edited by hand (or made hostile) may hold anything in the shadow
# tables of a ram_index table: every statement gives a result or an error,
# never a crash (under ASan in make test's second pass: the shell loads the
# instrumented ram.so).
mkdir -p "$T/g" && cp "$IMG"/* "$T/g/"
(cd "$T" && timeout 120 "$B/ram-index" g c.db --model "$GOLD") >"$T/c.log" 2>&1 || fail corrupt_setup "$(cat "$T/c.log")"
one=$(ls "$T"/g/* | head -1)
n=$(sqlite3 "$T/c.db" "SELECT count(*) FROM photos_files")
[ "$n" = 4 ] || fail corrupt_setup "$n rows: $(cat "$T/c.log")"
crashed=
n=0
while IFS= read -r edit; do
  [ -n "$edit" ] || continue
  n=$((n + 1))
  cp "$T/c.db" "$T/ce.db"
  sqlite3 "$T/ce.db" "PRAGMA writable_schema=0; $edit" >/dev/null 2>&1
  # on stdin: the shell goes on after an error (given as arguments, it stops at the first)
  out=$(printf '%s\n' "SELECT 'start';" "SELECT count(*) FROM photos;" \
    "SELECT path, tags, length(probs) FROM photos WHERE tag = 'tag6';" \
    "SELECT path, score FROM photos WHERE photos MATCH 'a red bicycle' AND k = 3;" \
    "SELECT * FROM photos WHERE rowid = 1;" "SELECT stale, length(cls) FROM photos;" \
    "SELECT ram_score(readfile('$one'), 'a cat');" \
    "INSERT INTO photos(photos) VALUES('integrity-check');" \
    "INSERT INTO photos(path, image) VALUES('new.png', readfile('$one'));" \
    "DELETE FROM photos WHERE rowid = 2;" "INSERT INTO photos(photos) VALUES('reembed');" "SELECT 'end';" |
    timeout 60 sqlite3 -cmd ".load $B/ram" -cmd "SELECT ram_load('$GOLD')" "$T/ce.db" 2>&1)
  rc=$?
  case "$out" in *start*end*) ;; *) rc=200 ;; esac  # every statement was run
  if [ $rc -ge 124 ] || printf '%s' "$out" | grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer'; then
    crashed="$crashed
  [$edit] rc $rc: $(printf '%s' "$out" | grep -m3 'Sanitizer\|runtime error\|rror' )"
  fi
done <<'EDITS'
UPDATE photos_images SET probs = x'00'
UPDATE photos_images SET probs = zeroblob(100000)
UPDATE photos_images SET probs = 'text'
UPDATE photos_images SET probs = 3.5
UPDATE photos_images SET gen = 99
UPDATE photos_images SET gen = 'x'
UPDATE photos_images SET key = x'00'
UPDATE photos_images SET key = 42
UPDATE photos_images SET nref = -3
DELETE FROM photos_images
UPDATE photos_tokens SET tokens = x'00'
UPDATE photos_tokens SET tokens = zeroblob(10)
UPDATE photos_tokens SET tokens = randomblob(length(tokens))
UPDATE photos_tokens SET tokens = substr(tokens, 1, length(tokens) - 1)
DELETE FROM photos_tokens
UPDATE photos_files SET img = 999999
UPDATE photos_files SET img = -1
UPDATE photos_files SET path = NULL
UPDATE photos_files SET path = x'ff00ff'
UPDATE photos_postings SET img = 999999
UPDATE photos_postings SET tag = 99999999
UPDATE photos_postings SET tag = -5
UPDATE photos_postings SET score = 'x'
UPDATE photos_cls SET v = x'01'
DELETE FROM photos_cls
UPDATE photos_config SET value = 'x' WHERE key = 'gen'
UPDATE photos_config SET value = -1 WHERE key = 'n_tokens'
UPDATE photos_config SET value = 0 WHERE key = 'dim'
UPDATE photos_config SET value = 100000000 WHERE key = 'num_class'
UPDATE photos_config SET value = 'x' WHERE key = 'floor'
UPDATE photos_config SET value = 99 WHERE key = 'version'
UPDATE photos_config SET value = 7 WHERE key = 'layout'
DELETE FROM photos_config WHERE key = 'gen'
DELETE FROM photos_gens
UPDATE photos_gens SET prep = 'prep99 exif=7'
UPDATE photos_gens SET digest = x'00'
DROP TABLE photos_tokens
DROP TABLE photos_postings
DROP TABLE photos_files
DROP TABLE photos_config
EDITS
[ -z "$crashed" ] && [ "$n" = 40 ] && pass shadow_edits_no_crash || fail shadow_edits_no_crash "$n edits:$crashed"
