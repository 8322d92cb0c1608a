-- ram_embed (versioned layout), ram_cls, and embed blobs accepted wherever an image is.
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus_clip.ram'), '$.kind');
CREATE TABLE photos(name TEXT, img BLOB, emb BLOB);
INSERT INTO photos(name, img) VALUES ('img0', readfile('@G@/images/img0.jpg')), ('img1', readfile('@G@/images/img1.png')),
                                     ('img2', readfile('@G@/images/img2.jpg')), ('img3', readfile('@G@/images/img3.png'));
UPDATE photos SET emb = ram_embed(img);
-- header: 'RAME', version 1, header size 64, flags 1 (EXIF applied), 17 tokens, 512 dims, 0, 0, digest
SELECT hex(substr(emb, 1, 32)) FROM photos WHERE name = 'img0';
SELECT CAST(substr(emb, 33, 32) AS TEXT) = json_extract(ram_model(), '$.digest') FROM photos WHERE name = 'img0';
SELECT length(emb) = 64 + 17 * 512 * 4 FROM photos WHERE name = 'img0';
-- the same tags, scores and embeddings from the blob, without decoding
SELECT name, ram_tags(emb) = ram_tags(img) FROM photos ORDER BY name;
SELECT name, ram_score(emb, 'a photo of a red bicycle.') = ram_score(img, 'a photo of a red bicycle.') FROM photos ORDER BY name;
SELECT name, ram_embed(emb) = emb FROM photos ORDER BY name;
SELECT count(*) FROM photos p, ram_tag_scores(p.emb) s JOIN ram_tag_scores(p.img) t ON s.rowid = t.rowid WHERE s.score != t.score;
-- ram_cls: the CLS row (512 float32) = bytes 65.. of the embedding
SELECT name, length(ram_cls(img)), ram_cls(img) = substr(emb, 65, 2048), ram_cls(emb) = ram_cls(img) FROM photos ORDER BY name;
-- errors: blobs that start like an embedding but are not one (short, zero header, version 2,
-- truncated, zeroed digest), another model's embedding
SELECT ram_tags(x'52414D45');
SELECT ram_tags(x'52414D4500000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000');
SELECT ram_tags(x'52414D45020000004000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000');
SELECT ram_tags(substr(emb, 1, 1000)) FROM photos WHERE name = 'img0';
SELECT ram_tags(CAST(substr(emb, 1, 32) || zeroblob(32) || substr(emb, 65) AS BLOB)) FROM photos WHERE name = 'img0';
SELECT ram_embed('x');
SELECT ram_cls(42);
SELECT ram_cls(x'ffd8ff00');
SELECT json_extract(ram_load('@B@/models/golden_ram.ram'), '$.kind');
SELECT ram_tags(emb) FROM photos WHERE name = 'img0';
SELECT * FROM ram_tag_scores((SELECT emb FROM photos WHERE name = 'img0'));
