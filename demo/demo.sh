#!/bin/sh
# demo.sh — the main job, run by `make demo` (make has built everything):
# indexes a folder of pictures with build/ram-index into a ram_index table,
# then asks it tag and open-vocabulary questions and prints the answers as
# tables you can check against the pictures.
#
#   make demo                                   # demo/photos on the bundled default model
#   make demo MODEL=models/ram_plus.ram DIR=~/Pictures   # real weights, real photos
#
# With the bundled default caption model (models/default_caption.ram, made by
# make from models/default/tag2text_default.pth) the table also stores a
# caption per picture (ram-index --captions), shown and searched with FTS5.
#
# Environment: MODEL (model file; default models/default.ram), DIR (folder;
# default demo/photos), DB (database; default demo/photos.db, or
# build/demo-<model name>.db with MODEL), BUILD (default build), and
# QUERIES_TAG / QUERIES_MATCH (';'-separated) to ask other questions.
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
DIR=${DIR:-demo/photos}
DIR=${DIR%/}

if [ ! -x "$BUILD/ram-index" ] || [ ! -f "$BUILD/ram.so" ]; then
  echo "demo: $BUILD/ram-index or $BUILD/ram.so is missing: run 'make demo' (or 'make' first)" >&2
  exit 1
fi
if ! command -v sqlite3 >/dev/null 2>&1; then
  echo "demo: the sqlite3 shell is missing (Debian: apt-get install sqlite3, or 'make deps')" >&2
  exit 1
fi
if [ ! -d "$DIR" ]; then
  echo "demo: DIR=$DIR is not a folder" >&2
  exit 1
fi

if [ -n "${MODEL:-}" ]; then
  if [ ! -f "$MODEL" ]; then
    echo "demo: MODEL=$MODEL does not exist" >&2
    exit 1
  fi
  name=$(basename "$MODEL"); name=${name%.*}
  DB=${DB:-$BUILD/demo-$name.db}
  set -- --model "$MODEL"
else
  if [ -z "${RAM_MODEL:-}" ] && [ ! -f models/default.ram ]; then
    {
      echo "demo: the bundled default model models/default.ram does not exist yet."
      if [ -d models/default ]; then
        echo "  It is converted from the trained checkpoint in models/default/ by make: run 'make'."
      else
        echo "  It is trained by models/train/train_default.py (PyTorch, CPU) into models/default/,"
        echo "  then converted by make into models/default.ram."
      fi
      echo "  Or run the demo on another model file: make demo MODEL=path/to/model.ram"
      echo "  (the official RAM++ weights: make model, then MODEL=models/ram_plus.ram)."
    } >&2
    exit 1
  fi
  # named explicitly: ram.so looks beside its own folder (BUILD/../models)
  if [ -z "${RAM_MODEL:-}" ]; then RAM_MODEL="$(pwd)/models/default.ram"; export RAM_MODEL; fi
  DB=${DB:-demo/photos.db}
  set --
  # captions by the bundled caption model, which knows the demo's kind of pictures
  if [ -z "${RAM_CAPTION_MODEL:-}" ] && [ -f models/default_caption.ram ]; then
    RAM_CAPTION_MODEL="$(pwd)/models/default_caption.ram"; export RAM_CAPTION_MODEL
  fi
  if [ -n "${RAM_CAPTION_MODEL:-}" ]; then set -- --captions; fi
fi

echo "== Indexing $DIR into $DB (build/ram-index; rerun to resume or add files)"
# --switch-model: the demo database follows the model (a retrained default
# model re-embeds it instead of leaving a table that refuses every query).
"$BUILD/ram-index" "$DIR" "$DB" --switch-model "$@" || exit $?

# The queries: readable tables; paths shown relative to DIR.
show() { # show TITLE SQL: a failing query (e.g. a tag the model lacks) says why, the demo goes on
  echo
  echo "== $1"
  out=$(sqlite3 -bail -cmd ".load $BUILD/ram" -cmd ".mode box" "$DB" "$2" 2>&1) || [ -n "${MODEL:-}" ] || status=1
  printf '%s\n' "${out:-(no pictures)}"
}
status=0
# ram-index stores names relative to the database's folder (symlinks of the
# folder resolved), or absolute ones outside it: show them relative to DIR.
real_dir=$(cd "$DIR" && pwd -P)
db_dir=$(cd "$(dirname "$DB")" && pwd -P)
case "$real_dir/" in
  "$db_dir"/*) prefix=${real_dir#"$db_dir"}; prefix=${prefix#/} ;;
  *) prefix=$real_dir ;;
esac
if [ -z "$prefix" ]; then rel=path; else
  rel="substr(path, length('$(printf '%s' "$prefix" | sed "s/'/''/g")') + 2)"; fi
echo
sqlite3 "$DB" "SELECT count(*) || ' pictures indexed (' || (SELECT count(*) FROM photos_images) ||
  ' distinct images)' FROM photos_files" || exit 1

# The defaults suit demo/photos; with MODEL (e.g. the official RAM++, 4585 tags
# such as dog, beach, red) ask your own: QUERIES_TAG='dog;beach' QUERIES_MATCH='...'.
QUERIES_TAG=${QUERIES_TAG:-red;circle;striped;black background}
QUERIES_MATCH=${QUERIES_MATCH:-a small blue triangle;two red circles on a black background;many small yellow stars}

IFS=';'
for t in $QUERIES_TAG; do
  t_sql=$(printf '%s' "$t" | sed "s/'/''/g")
  show "Tag query: SELECT path, score, tags FROM photos WHERE tag = '$t' ORDER BY score DESC" \
    "SELECT $rel AS picture, printf('%.3f', score) AS score, tags FROM photos
      WHERE tag = '$t_sql' ORDER BY score DESC LIMIT 12;"
done
for m in $QUERIES_MATCH; do
  m_sql=$(printf '%s' "$m" | sed "s/'/''/g")
  show "Open vocabulary: SELECT path, score FROM photos WHERE photos MATCH '$m' AND k = 5" \
    "SELECT $rel AS picture, printf('%.3f', score) AS score FROM photos
      WHERE photos MATCH '$m_sql' AND k = 5;"
done
unset IFS

# Captions (tables made with captions=1): a few, then full-text search over them.
if [ "$(sqlite3 "$DB" "SELECT value FROM photos_config WHERE key = 'captions'" 2>/dev/null)" = 1 ]; then
  show "Captions: SELECT path, caption FROM photos (written by the Tag2Text caption model)" \
    "SELECT $rel AS picture, caption FROM photos ORDER BY path LIMIT 12;"
  QUERIES_TEXT=${QUERIES_TEXT:-blue AND triangle;red circles;striped}
  IFS=';'
  for f in $QUERIES_TEXT; do
    f_sql=$(printf '%s' "$f" | sed "s/'/''/g")
    show "Full-text search over captions: ... FROM photos_captions WHERE photos_captions MATCH '$f' ORDER BY rank" \
      "SELECT $rel AS picture, p.caption FROM photos_captions c JOIN photos p ON p.rowid = c.rowid
        WHERE photos_captions MATCH '$f_sql' ORDER BY rank LIMIT 6;"
  done
  unset IFS
elif [ -z "${MODEL:-}" ]; then
  echo
  echo "(No captions: $DB was made without them, or models/default_caption.ram is missing; delete $DB and rerun.)"
fi
echo
echo "The pictures are in $DIR; the database is $DB (sqlite3 $DB, then .load $BUILD/ram)."
exit $status
