-- A default.ram that is not a model file.
-- lib: bad
.load @LIB@
SELECT ram_tags(readfile('@G@/images/img2.jpg'));
SELECT ram_model();
