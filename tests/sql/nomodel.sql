-- No ram_load, no RAM_MODEL, no models/default.ram next to ram.so: clear errors.
-- lib: iso
.load @LIB@
SELECT ram_version() IS NOT NULL;
SELECT ram_tags(readfile('@G@/images/img0.jpg'));
SELECT ram_model();
SELECT ram_score(readfile('@G@/images/img0.jpg'), 'a cat');
SELECT ram_tokenize('a cat');
SELECT ram_embed(readfile('@G@/images/img0.jpg'));
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'));
-- NULL needs no model
SELECT quote(ram_tags(NULL));
-- ram_load errors
SELECT ram_load('@T@/no/such/file.ram');
SELECT ram_load('@G@/tag_list.txt');
SELECT ram_load('@G@/ram_plus_tiny.pth');
SELECT ram_load(42);
SELECT quote(ram_load(NULL));
-- DIRECTONLY: a view cannot load a file
CREATE VIEW v AS SELECT ram_load('@B@/models/golden_ram.ram');
SELECT * FROM v;
-- after a failed load, a good one works
SELECT json_extract(ram_load('@B@/models/golden_ram.ram'), '$.kind');
SELECT ram_tags(readfile('@G@/images/img2.jpg'));
