-- Open-set scoring with the CLIP text tower: ram_tag_scores vocabularies,
-- ram_score, ram_tokenize (tests/data/golden/openset/tags.json).
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus_clip.ram'), '$.kind', '$.text_encoder');
CREATE TABLE v(j TEXT);
-- the official description file format: [{"tag": [descriptions]}, ...]
INSERT INTO v VALUES (CAST(readfile('@G@/openset/openset_tags.json') AS TEXT));
CREATE TABLE photos(name TEXT, img BLOB);
INSERT INTO photos VALUES ('img0', readfile('@G@/images/img0.jpg')), ('img1', readfile('@G@/images/img1.png')),
                          ('img2', readfile('@G@/images/img2.jpg')), ('img3', readfile('@G@/images/img3.png'));
SELECT p.name, (SELECT group_concat(tag, ' | ') FROM ram_tag_scores(p.img, (SELECT j FROM v)) WHERE selected)
  FROM photos p ORDER BY p.name;
SELECT rowid, tag, tag_zh, round(score, 5), threshold, selected, round(margin, 5)
  FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT j FROM v));
-- the same vocabulary as {"tag": ..., "descriptions": [...]} objects, and as one object
SELECT tag, round(score, 5) FROM ram_tag_scores(readfile('@G@/images/img3.png'),
  (SELECT json_group_array(json_object('tag', d.key, 'descriptions', json(d.value)))
     FROM v, json_each(v.j) AS item, json_each(item.value) AS d));
SELECT tag, round(score, 5) FROM ram_tag_scores(readfile('@G@/images/img3.png'),
  (SELECT json_group_object(d.key, json(d.value)) FROM v, json_each(v.j) AS item, json_each(item.value) AS d));
-- vocabulary column echoes the argument; tag_zh when given
SELECT tag, tag_zh, vocabulary FROM ram_tag_scores(readfile('@G@/images/img0.jpg'),
  '[{"tag": "bike", "tag_zh": "自行车", "descriptions": ["a photo of a red bicycle."]}]');
-- plain strings: the tag is its one description
SELECT tag, round(score, 5) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'),
  '["a photo of a red bicycle.", "a photo of a snowy mountain."]');
-- ram_score of one text equals the one-tag vocabulary
SELECT round(ram_score(readfile('@G@/images/img0.jpg'), 'a photo of a red bicycle.'), 5);
-- ram_score of a JSON list = the concept with its descriptions (reweighted by the CLS)
SELECT round(ram_score(img, (SELECT json_extract(j, '$[0]."red bicycle"') FROM v)), 5) FROM photos ORDER BY name;
SELECT round(ram_score(readfile('@G@/images/img0.jpg'), json_array('a photo of a red bicycle.')), 5);
-- text that only looks like JSON is one description
SELECT round(ram_score(readfile('@G@/images/img0.jpg'), '[draft] a red bicycle'), 5)
     = round(ram_score(readfile('@G@/images/img0.jpg'), json_array('[draft] a red bicycle')), 5);
-- empty text is a valid description (start and end tokens only)
SELECT typeof(ram_score(readfile('@G@/images/img0.jpg'), ''));
-- the text cache: scoring many rows against one description encodes it once
SELECT json_extract(ram_debug(), '$.caches.text.used') > 0;
-- tokenizer: clip.tokenize(text, truncate=True) without padding
SELECT ram_tokenize('a photo of a cat.');
SELECT ram_tokenize('');
SELECT json_array_length(ram_tokenize(hex(zeroblob(400)))), json_extract(ram_tokenize(hex(zeroblob(400))), '$[76]');
-- open-set thresholds: 0.5, overridable by tag name
SELECT ram_set_threshold('snowy mountain', 0.6);
SELECT tag, threshold, selected FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), (SELECT j FROM v));
SELECT ram_reset_thresholds();
-- errors
SELECT ram_score(readfile('@G@/images/img0.jpg'), 42);
SELECT ram_score(readfile('@G@/images/img0.jpg'), '[]');
SELECT ram_score(readfile('@G@/images/img0.jpg'), '["a cat", 3]');
SELECT ram_score(readfile('@G@/images/img0.jpg'), hex(zeroblob(600000)));
SELECT ram_score('img0.jpg', 'a cat');
SELECT ram_score(x'00112233', 'a cat');
SELECT ram_tokenize(42);
SELECT ram_tokenize(hex(zeroblob(600000)));
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), 'not json');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '3');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '["cat", 3]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '["cat", {"tag": "dog", "descriptions": ["a", "b"]}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[{"tag": "dog", "descriptions": []}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[{"tag": "dog", "descriptions": ["a", 1]}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[{"tag": 5}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[{"tag": "dog", "colour": "red"}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[{"a": ["x"], "b": ["y"]}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '[{"tag": "dog", "tag_zh": 1}]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '{"dog": 1}');
SELECT * FROM ram_tag_scores(42, '["cat"]');
SELECT count(*) FROM ram_tag_scores(NULL, '["cat"]');
-- a model without a text encoder
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.text_encoder');
SELECT ram_score(readfile('@G@/images/img0.jpg'), 'a cat');
SELECT ram_tokenize('a cat');
