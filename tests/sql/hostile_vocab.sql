-- Hostile open-set input: description-count caps, hidden argument columns, non-finite ram_embed blobs.
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus_clip.ram'), '$.kind');
CREATE TABLE photos(name TEXT, img BLOB, emb BLOB);
INSERT INTO photos(name, img) VALUES ('img0', readfile('@G@/images/img0.jpg')), ('img1', readfile('@G@/images/img1.png'));
UPDATE photos SET emb = ram_embed(img);
-- the cap: 262,144 descriptions per vocabulary (refused before any is encoded or allocated)
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT json_group_array('' || value) FROM generate_series(1, 1000000)));
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT json_group_array('a') FROM generate_series(1, 262145)));
-- 5,141 tags x 51 descriptions = 262,191: over
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT json_group_array(json_object('tag', 't' || value, 'descriptions', (SELECT json_group_array('a photo of ' || value) FROM generate_series(1, 51)))) FROM generate_series(1, 5141)));
-- the official size, 4,585 tags x 51 descriptions = 233,835, and exactly the cap, work
-- (repeated descriptions: the text cache makes them cheap)
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT json_group_array(json_object('tag', 't' || value, 'descriptions', (SELECT json_group_array('a photo of ' || value) FROM generate_series(1, 51)))) FROM generate_series(1, 4585)));
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT json_group_array('a') FROM generate_series(1, 262144)));
-- ram_score's list has the same cap
SELECT ram_score(readfile('@G@/images/img0.jpg'), (SELECT json_group_array('') FROM generate_series(1, 262145)));
-- hidden columns echo the arguments, so filters on them hold
.parameter set @img "readfile('@G@/images/img0.jpg')"
SELECT (SELECT count(*) FROM ram_tag_scores(@img) WHERE image = @img) = (SELECT count(*) FROM ram_tag_scores(@img));
SELECT count(*) FROM ram_tag_scores(@img) WHERE image = @img;
SELECT count(*) FROM ram_tag_scores(@img) WHERE image != @img;
SELECT count(*) FROM photos p, ram_tag_scores(p.img) s WHERE s.image = p.img;
SELECT count(*), min(image = @img) FROM ram_tag_scores(@img, '["cat", "dog"]') WHERE vocabulary = '["cat", "dog"]';
SELECT DISTINCT vocabulary FROM ram_tag_scores(@img, '["cat", "dog"]');
SELECT count(*) FROM ram_tag_scores(NULL) WHERE image IS NULL;
-- ram_embed blobs holding NaN or infinity are refused (ram_embed never writes them)
SELECT ram_score(CAST(substr(emb, 1, 64) || x'0000C07F' || substr(emb, 69) AS BLOB), 'a cat') FROM photos WHERE name = 'img0';
SELECT ram_tags(CAST(substr(emb, 1, 100) || x'0000807F' || substr(emb, 105) AS BLOB)) FROM photos WHERE name = 'img0';
SELECT count(*) FROM photos p, ram_tag_scores(CAST(substr(p.emb, 1, length(p.emb) - 4) || x'000080FF' AS BLOB)) WHERE p.name = 'img0';
SELECT count(*) FROM photos p, ram_tag_scores(CAST(substr(p.emb, 1, 64) || x'0000C07F' || substr(p.emb, 69) AS BLOB), '["cat"]') WHERE p.name = 'img0';
SELECT length(ram_cls(CAST(substr(emb, 1, 64) || x'0000C07F' || substr(emb, 69) AS BLOB))) FROM photos WHERE name = 'img0';
-- the unmodified blob still works
SELECT ram_score(emb, 'a cat') = ram_score(img, 'a cat') FROM photos WHERE name = 'img0';
