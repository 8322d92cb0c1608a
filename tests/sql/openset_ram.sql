-- Open-set scoring with a RAM model (no reweighting: one description per tag).
.load @LIB@
SELECT json_extract(ram_load('@T@/ram_clip.ram'), '$.kind', '$.text_encoder');
SELECT round(ram_score(readfile('@G@/images/img0.jpg'), 'a photo of a red bicycle.'), 4)
     = (SELECT round(score, 4) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '["a photo of a red bicycle."]'));
SELECT count(*) FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '["a red bicycle", "a cup of coffee"]');
SELECT ram_tokenize('a photo of a cat.');
-- several descriptions per tag need RAM++
SELECT ram_score(readfile('@G@/images/img0.jpg'), '["a red bicycle", "a bike"]');
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'), '{"bike": ["a red bicycle", "a bike"]}');
