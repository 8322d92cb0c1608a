-- Editable thresholds: ram_set_threshold (connection), main.ram_thresholds (persistent), precedence.
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
CREATE TABLE photos(name TEXT, img BLOB);
INSERT INTO photos VALUES ('img1', readfile('@G@/images/img1.png'));
SELECT ram_tags(img) FROM photos;
SELECT tag, round(score, 4), threshold FROM ram_tag_scores((SELECT img FROM photos)) WHERE tag IN ('tag0', 'tag6');
-- a connection override (tag0 scores 0.4524 on img1): selected now
SELECT ram_set_threshold('tag0', 0.4);
SELECT ram_tags(img) FROM photos;
SELECT tag, threshold, selected FROM ram_tag_scores((SELECT img FROM photos)) WHERE tag = 'tag0';
-- 1.0 never selects (selection is score > threshold)
SELECT ram_set_threshold('tag6', 1);
SELECT ram_tags(img) FROM photos;
-- NULL removes one override
SELECT quote(ram_set_threshold('tag6', NULL));
SELECT ram_tags(img) FROM photos;
SELECT ram_reset_thresholds();
SELECT ram_tags(img) FROM photos;
SELECT ram_reset_thresholds();
-- the persistent table
CREATE TABLE ram_thresholds(tag TEXT PRIMARY KEY, threshold REAL);
INSERT INTO ram_thresholds VALUES ('tag0', 0.45), ('tag9', 0.99), ('no such tag', 0.1);
SELECT ram_tags(img) FROM photos;
SELECT tag, threshold FROM ram_tag_scores((SELECT img FROM photos)) WHERE tag IN ('tag0', 'tag9');
-- a connection override beats the table
SELECT ram_set_threshold('tag9', 0.2);
SELECT ram_tags(img) FROM photos;
SELECT ram_reset_thresholds();
-- table changes are seen by the next statement
UPDATE ram_thresholds SET threshold = 0.7 WHERE tag = 'tag0';
SELECT ram_tags(img) FROM photos;
DELETE FROM ram_thresholds WHERE tag = 'tag9';
SELECT ram_tags(img) FROM photos;
-- inside a transaction, and after its rollback
BEGIN;
INSERT INTO ram_thresholds VALUES ('tag8', 1.0);
SELECT ram_tags(img) FROM photos;
ROLLBACK;
SELECT ram_tags(img) FROM photos;
-- NULL rows are ignored
INSERT INTO ram_thresholds VALUES ('tag7', NULL);
SELECT ram_tags(img) FROM photos;
DROP TABLE ram_thresholds;
SELECT ram_tags(img) FROM photos;
-- a TEMP table of that name is not read (main only)
CREATE TEMP TABLE ram_thresholds(tag TEXT, threshold REAL);
INSERT INTO temp.ram_thresholds VALUES ('tag6', 1.0);
SELECT ram_tags(img) FROM photos;
DROP TABLE temp.ram_thresholds;
-- overrides apply to RAM as well (same class names)
SELECT ram_set_threshold('tag0', 0.01);
SELECT json_extract(ram_load('@B@/models/golden_ram.ram'), '$.kind');
SELECT ram_tags(img) FROM photos;
SELECT ram_reset_thresholds();
-- errors
SELECT ram_set_threshold(1, 0.5);
SELECT ram_set_threshold('tag0', 1.5);
SELECT ram_set_threshold('tag0', -0.1);
SELECT ram_set_threshold('tag0', 'high');
CREATE TABLE ram_thresholds(tag TEXT PRIMARY KEY, threshold REAL);
INSERT INTO ram_thresholds VALUES ('tag0', 'high');
SELECT ram_tags(img) FROM photos;
SELECT * FROM ram_tag_scores((SELECT img FROM photos));
UPDATE ram_thresholds SET threshold = 2;
SELECT ram_tags(img) FROM photos;
DROP TABLE ram_thresholds;
CREATE TABLE ram_thresholds(name TEXT, value REAL);
SELECT ram_tags(img) FROM photos;
DROP TABLE ram_thresholds;
SELECT ram_tags(img) FROM photos;
-- DIRECTONLY: not from a view or trigger
CREATE VIEW v AS SELECT ram_set_threshold('tag0', 0.1);
SELECT * FROM v;
-- a ram_thresholds that calls the ram functions itself is refused, not recursed into
-- (regression case, 2026-11-26: a view or generated column calling ram_tags() recursed without end)
CREATE TABLE pics(img BLOB);
INSERT INTO pics SELECT img FROM photos;
CREATE VIEW ram_thresholds AS SELECT 'tag6' AS tag, length(ram_tags(img)) / 100.0 AS threshold FROM pics;
SELECT ram_tags(img) FROM photos;
SELECT count(*) FROM ram_tag_scores((SELECT img FROM photos));
DROP VIEW ram_thresholds;
-- a generated column cannot call ram_tags() at all (it is not deterministic): refused at CREATE
CREATE TABLE ram_thresholds(tag TEXT, x BLOB, threshold REAL GENERATED ALWAYS AS (length(ram_tags(x)) / 100.0));
-- a view of plain values works
CREATE VIEW ram_thresholds AS SELECT 'tag6' AS tag, 0.99 AS threshold;
SELECT ram_tags(img) FROM photos;
DROP VIEW ram_thresholds;
