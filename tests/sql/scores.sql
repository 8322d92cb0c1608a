-- ram_tag_scores without a vocabulary: one row per tag of the model.
.load @LIB@
.mode list
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT rowid, tag, tag_zh, round(score, 4), threshold, selected, round(margin, 4)
  FROM ram_tag_scores(readfile('@G@/images/img0.jpg'));
-- the documented query shape
SELECT tag, round(score, 4) FROM ram_tag_scores(readfile('@G@/images/img1.png'))
 WHERE score > 0.8 ORDER BY score DESC LIMIT 5;
-- selected rows are exactly ram_tags, in class order
SELECT (SELECT group_concat(tag, ' | ') FROM ram_tag_scores(readfile('@G@/images/img3.png')) WHERE selected)
     = ram_tags(readfile('@G@/images/img3.png'));
-- margin = score - threshold
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg')) WHERE abs(margin - (score - threshold)) > 1e-12;
-- named hidden arguments work too
SELECT count(*) FROM ram_tag_scores WHERE image = readfile('@G@/images/img2.jpg');
-- a join: one scan per photo
CREATE TABLE photos(name TEXT, img BLOB);
INSERT INTO photos VALUES ('img0', readfile('@G@/images/img0.jpg')), ('img1', readfile('@G@/images/img1.png')),
                          ('img2', readfile('@G@/images/img2.jpg')), ('img3', readfile('@G@/images/img3.png'));
SELECT p.name, count(s.tag) FROM photos p, ram_tag_scores(p.img) s WHERE s.selected GROUP BY p.name ORDER BY p.name;
SELECT p.name, s.tag FROM photos p JOIN ram_tag_scores(p.img) s WHERE s.score > 0.85 ORDER BY p.name, s.rowid;
-- tag search across photos
SELECT name FROM photos WHERE ram_tags(img) LIKE '%hot dog%' ORDER BY name;
-- errors
SELECT * FROM ram_tag_scores;
SELECT * FROM ram_tag_scores('not a blob');
SELECT * FROM ram_tag_scores(x'0102030405');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), 42);
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '["cat"]');
CREATE VIRTUAL TABLE s2 USING ram_tag_scores;
