-- ram_tag_list: the vocabulary of the connection's model and of the caption
-- model as a table (class, tag, tag_zh, threshold in force, model threshold).
.load @LIB@
.mode list
-- RAM++: every class once, in class order, names as ram_tag_scores gives them
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT count(*), min(class), max(class), count(DISTINCT tag) FROM ram_tag_list;
SELECT class, tag, tag_zh, threshold, model_threshold FROM ram_tag_list ORDER BY class LIMIT 3;
SELECT count(*) FROM ram_tag_list l JOIN ram_tag_scores(readfile('@G@/images/img0.jpg')) s
    ON s.rowid = l.class AND s.tag = l.tag AND s.tag_zh = l.tag_zh AND s.threshold = l.threshold;
SELECT rowid = class FROM ram_tag_list WHERE class = 5;
-- the threshold in force follows ram_set_threshold and main.ram_thresholds; the model's stays
SELECT ram_set_threshold('hot dog', 0.25);
CREATE TABLE ram_thresholds(tag TEXT PRIMARY KEY, threshold REAL);
INSERT INTO ram_thresholds VALUES ('tag2', 0.5);
SELECT class, tag, threshold, model_threshold FROM ram_tag_list WHERE threshold <> model_threshold;
SELECT ram_reset_thresholds();
DELETE FROM ram_thresholds;
SELECT count(*) FROM ram_tag_list WHERE threshold <> model_threshold;
-- RAM
SELECT json_extract(ram_load('@B@/models/golden_ram.ram'), '$.kind');
SELECT count(*), group_concat(tag, ',') FROM (SELECT tag FROM ram_tag_list ORDER BY class LIMIT 4);
-- the caption model: none yet
SELECT tag FROM ram_tag_list('caption');
-- Tag2Text as the caption model beside RAM: its 3,429 tags, the deleted ones at 1.0;
-- overrides do not apply to the caption's predicted tags, so its threshold in force is the model's
SELECT ram_caption_model('@B@/models/golden_tag2text.ram') IS NOT NULL;
SELECT ram_set_threshold('tennis', 0.1);
SELECT count(*), sum(model_threshold = 1.0), sum(threshold <> model_threshold) FROM ram_tag_list('caption');
SELECT class, tag, threshold FROM ram_tag_list('caption') ORDER BY class LIMIT 2;
SELECT count(*) FROM ram_tag_list;
SELECT count(*) FROM ram_tag_list WHERE model = 'caption';
-- Tag2Text as the connection's model: the same list, overrides in force
SELECT ram_caption_model(NULL) IS NULL;
SELECT json_extract(ram_load('@B@/models/golden_tag2text.ram'), '$.kind');
SELECT count(*), sum(threshold <> model_threshold) FROM ram_tag_list('caption');
SELECT count(*), sum(threshold <> model_threshold) FROM ram_tag_list;
-- errors
SELECT * FROM ram_tag_list(3);
SELECT * FROM ram_tag_list('Caption');
SELECT * FROM ram_tag_list(x'00');
