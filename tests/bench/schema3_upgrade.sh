#!/bin/sh
# schema3_upgrade.sh — how long a schema-3 ram_index table of N pictures takes
# to upgrade to schema 4 (the 'upgrade' command, or its first write:
# ext/index_codes.c reads every stored int8 CLS vector to make its 1-bit code
# and builds the postings index (tag, score)). Not part of make bench (it
# writes about 1.3 GB at N = 1,000,000); docs/INDEX.md gives its figures.
#
#   sh tests/bench/schema3_upgrade.sh [N] [BUILD]     (default 1000000 build)
#
# The table: the 50 demo pictures indexed with the bundled default model,
# turned into schema 3 the way tests/test_index.c does, then its _cls rows and
# postings repeated (round robin over the 50) up to N pictures. Prints the
# time of the upgrade, and, for scale, of a plain read of every _cls vector
# and of a CREATE INDEX of the same shape on a copy of the postings.
N=${1:-1000000}
B=${2:-build}
cd "$(dirname "$0")/../.." || exit 2
DB=$(mktemp -d)/upgrade.db
trap 'rm -rf "$(dirname "$DB")"' EXIT INT TERM
q() { sqlite3 -batch -init /dev/null "$DB" ".load $B/ram" "$@"; }
now() { date +%s.%N; }
# step NAME SQL...: the statements' wall and CPU seconds in one sqlite3 shell
# (on a loaded machine the CPU time is the figure to compare)
step() {
  name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$DB.time" sqlite3 -batch -init /dev/null "$DB" ".load $B/ram" "$@" >/dev/null || exit 1
  read -r w u s <"$DB.time"
  echo "schema3_upgrade: $name: $w s wall, $(echo "$u + $s" | bc) s CPU"
}
q "SELECT ram_load('models/default.ram') IS NOT NULL" \
  "CREATE VIRTUAL TABLE photos USING ram_index(model='$(pwd)/models/default.ram')" \
  "INSERT INTO photos(path, image) SELECT name, readfile(name) FROM fsdir('demo/photos') WHERE name LIKE '%.png'" >/dev/null || exit 1
q "DROP TABLE photos_codes;
   CREATE TABLE photos_p3(tag INTEGER, img INTEGER, score INTEGER NOT NULL, PRIMARY KEY(tag, img)) WITHOUT ROWID;
   INSERT INTO photos_p3 SELECT tag, img, score FROM photos_postings; DROP TABLE photos_postings;
   ALTER TABLE photos_p3 RENAME TO photos_postings;
   UPDATE photos_config SET value = 3 WHERE key = 'version'; DELETE FROM photos_config WHERE key = 'cascade';" || exit 1
t0=$(now)
q "CREATE TEMP TABLE base AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, v FROM photos_cls;
   CREATE TEMP TABLE basep AS SELECT b.k, p.tag, p.score FROM photos_postings p JOIN base b ON b.id = p.img;
   WITH RECURSIVE s(i) AS (SELECT (SELECT max(id) FROM photos_cls) + 1 UNION ALL SELECT i + 1 FROM s WHERE i < $N)
   INSERT INTO photos_cls(id, v) SELECT i, (SELECT v FROM base WHERE k = i % (SELECT count(*) FROM base)) FROM s;
   INSERT INTO photos_postings(tag, img, score) SELECT bp.tag, c.id, bp.score FROM photos_cls c
     JOIN basep bp ON bp.k = c.id % (SELECT count(*) FROM base) WHERE c.id > (SELECT max(id) FROM base);" || exit 1
t1=$(now)
n=$(q "SELECT count(*) FROM photos_cls")
np=$(q "SELECT count(*) FROM photos_postings")
echo "schema3_upgrade: $n pictures, $np postings ($(du -m "$DB" | cut -f1) MB), made in $(echo "$t1 - $t0" | bc) s"
step "read every _cls vector" "SELECT sum(length(v)) FROM photos_cls"
step "upgrade (codes + postings index, model load included)" "SELECT ram_load('models/default.ram') IS NOT NULL" \
  "INSERT INTO photos(photos) VALUES('upgrade')"
[ "$(q "SELECT value FROM photos_config WHERE key = 'version'; SELECT count(*) = $N FROM photos_codes" | tr '\n' ' ')" = "4 1 " ] ||
  { echo "schema3_upgrade: the table was not upgraded"; exit 1; }
step "the same CREATE INDEX alone" "CREATE INDEX tmp_ps ON photos_postings(tag, score)"
step "model load alone" "SELECT ram_load('models/default.ram') IS NOT NULL"
