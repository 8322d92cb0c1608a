-- ram_index(captions=1): a caption per row in photos_captions (FTS5), kept in
-- step with inserts, duplicates, entries, updates, deletes, rollbacks,
-- renames and DROP. Tags from golden RAM++, captions from the golden
-- Tag2Text (random weights: the words are odd, but they are the official
-- code's captions of these images, see sql/caption).
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT ram_caption_model('@B@/models/golden_tag2text.ram') IS NOT NULL;
CREATE VIRTUAL TABLE photos USING ram_index(captions=1);
INSERT INTO photos(path, image) VALUES('img0.jpg', readfile('@G@/images/img0.jpg')),
  ('img1.png', readfile('@G@/images/img1.png')), ('img2.jpg', readfile('@G@/images/img2.jpg'));
-- the caption column equals ram_caption() of the same bytes
SELECT path, caption = ram_caption(readfile('@G@/images/' || path)) FROM photos ORDER BY rowid;
SELECT rowid, caption FROM photos WHERE rowid = 2;
-- full-text search over the captions, back to the rows
SELECT p.path FROM photos_captions c JOIN photos p ON p.rowid = c.rowid
  WHERE photos_captions MATCH 'thanking' ORDER BY rank;
SELECT path, caption FROM photos WHERE rowid IN (1, 3);
SELECT count(*) FROM photos_captions WHERE photos_captions MATCH 'trillionrgosrgos OR thanking';
-- a duplicate is captioned from its twin, with no caption model at all
SELECT ram_caption_model(NULL) IS NULL;
INSERT INTO photos(path, image) VALUES('copy.png', readfile('@G@/images/img1.png'));
SELECT path FROM photos_captions c JOIN photos p ON p.rowid = c.rowid
  WHERE photos_captions MATCH 'thanking' ORDER BY path;
-- a new image needs the caption model: the statement fails whole
INSERT INTO photos(path, image) VALUES('img3.png', readfile('@G@/images/img3.png'));
SELECT count(*), (SELECT count(*) FROM photos_captions) FROM photos;
-- the table's own caption_model= (the same file), then update, delete, rollback
CREATE VIRTUAL TABLE pics USING ram_index(captions=1, caption_model='@B@/models/golden_tag2text.ram');
INSERT INTO pics(path, image) SELECT path, readfile('@G@/images/' || replace(path, 'copy.png', 'img1.png')) FROM photos;
SELECT count(*) FROM pics_captions WHERE pics_captions MATCH 'thanking';
UPDATE pics SET path = 'renamed.jpg' WHERE path = 'img0.jpg';
SELECT path, caption = (SELECT caption FROM photos WHERE path = 'img0.jpg') FROM pics WHERE path = 'renamed.jpg';
UPDATE pics SET image = readfile('@G@/images/img3.png') WHERE path = 'renamed.jpg';
SELECT ram_caption_model('@B@/models/golden_tag2text.ram') IS NOT NULL;
SELECT caption = ram_caption(readfile('@G@/images/img3.png')) FROM pics WHERE path = 'renamed.jpg';
DELETE FROM pics WHERE path = 'copy.png';
SELECT count(*) FROM pics_captions WHERE pics_captions MATCH 'thanking';
BEGIN;
DELETE FROM pics WHERE path = 'img1.png';
SELECT count(*) FROM pics_captions;
ROLLBACK;
SELECT count(*) FROM pics_captions WHERE pics_captions MATCH 'thanking';
INSERT INTO pics(pics) VALUES('integrity-check');
-- an entry brings no bytes: no caption, unless a row of the same image has one
CREATE VIRTUAL TABLE moved USING ram_index(captions=1);
INSERT INTO moved(path, entry) SELECT path, entry FROM photos WHERE path IN ('img0.jpg', 'img2.jpg');
SELECT path, caption IS NULL FROM moved ORDER BY path;
-- ... or the caption given with it, stored as is (ram-index stages both)
INSERT INTO moved(path, entry, caption) SELECT 'again.png', entry, caption FROM photos WHERE path = 'img1.png';
SELECT count(*) FROM moved_captions WHERE moved_captions MATCH 'thanking';
INSERT INTO moved(path, entry, caption) SELECT 'bad.png', entry, 7 FROM photos WHERE path = 'img1.png';
-- read-only, rename, drop
UPDATE pics SET caption = 'x';
ALTER TABLE pics RENAME TO album;
SELECT count(*) FROM album_captions;
INSERT INTO album(album) VALUES('integrity-check');
DROP TABLE album;
SELECT count(*) FROM sqlite_schema WHERE name GLOB 'album*';
-- a table without captions (as every table made before the option): NULL, no FTS table
CREATE VIRTUAL TABLE plain USING ram_index;
INSERT INTO plain(path, image) VALUES('img1.png', readfile('@G@/images/img1.png'));
SELECT path, caption IS NULL FROM plain;
SELECT count(*) FROM sqlite_schema WHERE name GLOB 'plain_captions*';
-- bad options
CREATE VIRTUAL TABLE b1 USING ram_index(captions=2);
CREATE VIRTUAL TABLE b2 USING ram_index(caption_model='@B@/models/golden_tag2text.ram');
CREATE VIRTUAL TABLE b3 USING ram_index(captions=1, caption_model='');
CREATE VIRTUAL TABLE b4 USING ram_index(captions=1, caption_model='@B@/models/golden_ram.ram');
INSERT INTO b4(path, image) VALUES('img1.png', readfile('@G@/images/img1.png'));
