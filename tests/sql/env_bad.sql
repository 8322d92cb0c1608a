-- RAM_MODEL naming a missing file is an error (no silent fallback to the default).
-- lib: dflt
-- env: RAM_MODEL=@T@/missing.ram
.load @LIB@
SELECT ram_tags(readfile('@G@/images/img2.jpg'));
SELECT ram_model();
SELECT json_extract(ram_load('@B@/models/golden_ram.ram'), '$.kind');
