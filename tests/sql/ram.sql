-- The RAM model (not RAM++): tags of the golden images (tests/data/golden/ram/tags.json).
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram.ram'), '$.kind', '$.descriptions_per_tag');
SELECT ram_tags(readfile('@G@/images/img0.jpg'));
SELECT ram_tags(readfile('@G@/images/img1.png'));
SELECT ram_tags(readfile('@G@/images/img2.jpg'));
SELECT ram_tags(readfile('@G@/images/img3.png'));
SELECT ram_tags(readfile('@G@/images/img1.png'), 'zh');
-- switching models in one connection: same image, other model, other tags
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT ram_tags(readfile('@G@/images/img1.png'));
