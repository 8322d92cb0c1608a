-- schema.sql — a photo library on ram_index: the index, albums beside it, and
-- the queries a photo app runs against them (docs/INDEX.md is the reference).
--
--     make && sqlite3 library.db < sql/schema.sql
--
-- Run from the repository root: it indexes the golden test pictures with the
-- tiny test model that `make` builds (tests/test_index.sh runs this file).
-- For your own library, drop the ram_load() line (the default model, or
-- RAM_MODEL, is used) and point fsdir() at your folder.
.load build/ram
SELECT ram_load('build/models/golden_ram_plus_clip.ram') IS NOT NULL;

-- The index: one row per file, embeddings in photos_* shadow tables.
CREATE VIRTUAL TABLE IF NOT EXISTS photos USING ram_index(floor=0.01);

-- Your own tables refer to photos by path (or rowid).
CREATE TABLE IF NOT EXISTS albums(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS album_photos(
  album INTEGER NOT NULL REFERENCES albums(id),
  path TEXT NOT NULL,
  PRIMARY KEY (album, path)
) WITHOUT ROWID;

-- Index a folder. Rerunning it only embeds new or changed files; a crash or
-- Ctrl-C loses no finished embedding (the resume journal).
INSERT INTO photos(path, image)
  SELECT name, data FROM fsdir('tests/data/golden/images')
   WHERE name GLOB '*.jpg' OR name GLOB '*.png';

INSERT OR IGNORE INTO albums(name) VALUES ('holidays');
INSERT OR IGNORE INTO album_photos
  SELECT (SELECT id FROM albums WHERE name = 'holidays'), path FROM photos WHERE path GLOB '*.jpg';

-- Tag lookup (inverted index), with the tags the current thresholds select.
SELECT path, tags FROM photos WHERE tag = 'hot dog';

-- Any threshold, no inference: the probabilities are stored.
SELECT path, printf('%.3f', score) FROM photos WHERE tag = 'tag6' AND score > 0.7 ORDER BY score DESC;

-- Open vocabulary, ranked, within an album (k would count rows before the
-- join: rank everything, then keep the album's best).
SELECT p.path, printf('%.3f', p.score)
  FROM photos p JOIN album_photos a ON a.path = p.path
 WHERE p.photos MATCH 'a red bicycle'
   AND a.album = (SELECT id FROM albums WHERE name = 'holidays')
 ORDER BY p.score DESC LIMIT 10;

-- Files that share bytes (duplicates) are embedded once.
SELECT hex(key), count(*) FROM photos GROUP BY key HAVING count(*) > 1;

-- Housekeeping.
INSERT INTO photos(photos) VALUES('integrity-check');
SELECT count(*) FROM photos;
