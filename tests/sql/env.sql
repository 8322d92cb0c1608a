-- RAM_MODEL names the model (before the bundled default).
-- lib: dflt
-- env: RAM_MODEL=@B@/models/golden_ram_plus.ram
.load @LIB@
SELECT json_extract(ram_model(), '$.kind', '$.file');
SELECT quote(ram_tags(readfile('@G@/images/img2.jpg')));
