-- The bundled default model: ../models/default.ram from the folder holding ram.so.
-- lib: dflt
.load @LIB@
SELECT json_extract(ram_model(), '$.kind', '$.file');
SELECT ram_tags(readfile('@G@/images/img2.jpg'));
-- the default caption model beside it captions with no setup (the golden
-- Tag2Text's caption of img0, as in sql/caption), while RAM tags
SELECT ram_caption(readfile('@G@/images/img0.jpg'));
SELECT json_extract(ram_model(), '$.kind');
-- ram_load still overrides it
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT quote(ram_tags(readfile('@G@/images/img2.jpg')));
