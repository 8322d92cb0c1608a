-- The bundled default model: ../models/default.ram from the folder holding ram.so.
-- lib: dflt
.load @LIB@
SELECT json_extract(ram_model(), '$.kind', '$.file');
SELECT ram_tags(readfile('@G@/images/img2.jpg'));
-- ram_load still overrides it
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT quote(ram_tags(readfile('@G@/images/img2.jpg')));
