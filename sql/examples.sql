-- examples.sql — every query of docs/SQL.md in one runnable walkthrough:
-- a small photo library tagged, searched and scored with plain SQL.
--
--     make && sqlite3 < sql/examples.sql
--
-- Run from the repository root. It uses the tiny test model with a CLIP text
-- tower that `make` builds from the golden checkpoints, and the golden test
-- pictures, so its output is checked by tests/test_sql.sh
-- (tests/sql/examples.expected). With a real model, replace the ram_load()
-- path (or drop it to use RAM_MODEL / models/default.ram).
.load build/ram
.mode list
.headers off

-- Choose the model (once per connection; the file is mapped once per process).
SELECT json_extract(ram_load('build/models/golden_ram_plus_clip.ram'),
                    '$.kind', '$.tags', '$.text_encoder');

-- A photo library.
CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT, img BLOB, emb BLOB, tags TEXT);
INSERT INTO photos(name, img) VALUES
  ('img0.jpg', readfile('tests/data/golden/images/img0.jpg')),
  ('img1.png', readfile('tests/data/golden/images/img1.png')),
  ('img2.jpg', readfile('tests/data/golden/images/img2.jpg')),
  ('img3.png', readfile('tests/data/golden/images/img3.png'));

-- Tag every photo once; keep the embeddings so nothing is decoded again.
UPDATE photos SET emb = ram_embed(img);
UPDATE photos SET tags = ram_tags(emb);
SELECT name, tags FROM photos ORDER BY id;

-- Chinese tag names.
SELECT name, ram_tags(emb, 'zh') FROM photos WHERE id = 1;

-- Search by tag.
SELECT name FROM photos WHERE ' | ' || tags || ' | ' LIKE '% | hot dog | %';

-- Every tag's score for one photo, best first.
SELECT tag, round(score, 3) AS score, threshold, selected
  FROM ram_tag_scores((SELECT emb FROM photos WHERE id = 4))
 ORDER BY score DESC LIMIT 5;

-- Tags over a margin, across the library (a join with the table-valued function).
SELECT p.name, s.tag, round(s.margin, 3)
  FROM photos p, ram_tag_scores(p.emb) s
 WHERE s.margin > 0.35
 ORDER BY p.id, s.rowid;

-- Open-set: how likely is a concept described in words (RAM++ with a text tower)?
SELECT name, round(ram_score(emb, 'a photo of a red bicycle.'), 3) AS p
  FROM photos ORDER BY p DESC;

-- A concept described several ways: the image picks the descriptions that fit.
SELECT name, round(ram_score(emb, '["a photo of a snowy mountain.",
                                     "Snow-capped summit, rocky ridges, glaciers."]'), 3)
  FROM photos ORDER BY id;

-- A custom vocabulary: one row per tag, threshold 0.5.
SELECT tag, round(score, 3), selected
  FROM ram_tag_scores((SELECT emb FROM photos WHERE id = 1),
       '[{"tag": "red bicycle", "descriptions": ["a photo of a red bicycle."]},
         {"tag": "cup of coffee", "descriptions": ["a photo of a cup of coffee."]}]');

-- Thresholds: for this connection...
SELECT ram_set_threshold('tag0', 0.4);
SELECT ram_tags(emb) FROM photos WHERE id = 2;
SELECT ram_reset_thresholds();
-- ...or kept in the database file.
CREATE TABLE ram_thresholds(tag TEXT PRIMARY KEY, threshold REAL);
INSERT INTO ram_thresholds VALUES ('tag9', 0.99);
SELECT ram_tags(emb) FROM photos WHERE id = 2;
DROP TABLE ram_thresholds;

-- The CLS embedding, a float32 vector (sqlite-vec's vec0 takes it as is).
SELECT name, length(ram_cls(emb)) FROM photos WHERE id = 1;

-- The CLIP tokenizer.
SELECT ram_tokenize('a photo of a cat.');

-- Image limits and EXIF orientation, per connection.
SELECT ram_set_max_pixels(50000000), ram_set_exif(1);

-- What was built and what is loaded.
SELECT ram_version() IS NOT NULL, json_extract(ram_debug(), '$.image_formats') LIKE '%jpeg%';
