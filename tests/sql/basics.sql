-- ram_version, ram_load, ram_model, ram_tags (RAM++), NULLs, argument counts.
.load @LIB@
SELECT ram_version() = (SELECT ram_version());
SELECT typeof(ram_version());
-- ram_load returns the same JSON as ram_model
SELECT ram_load('@B@/models/golden_ram_plus.ram') = ram_model();
SELECT json_extract(ram_model(), '$.kind', '$.tags', '$.descriptions_per_tag', '$.image_size',
                    '$.embed_dim', '$.image_tokens', '$.dtype', '$.text_encoder');
SELECT json_extract(ram_model(), '$.file') = '@B@/models/golden_ram_plus.ram';
SELECT length(json_extract(ram_model(), '$.digest')), json_extract(ram_model(), '$.size') > 0;
-- RAM++ tags of the golden images (tests/data/golden/ram_plus/tags.json)
SELECT ram_tags(readfile('@G@/images/img0.jpg'));
SELECT ram_tags(readfile('@G@/images/img1.png'));
SELECT quote(ram_tags(readfile('@G@/images/img2.jpg')));
SELECT ram_tags(readfile('@G@/images/img3.png'));
SELECT ram_tags(readfile('@G@/images/img0.jpg'), 'zh');
SELECT ram_tags(readfile('@G@/images/img3.png'), 'zh');
SELECT ram_tags(readfile('@G@/images/img3.png'), 'EN') = ram_tags(readfile('@G@/images/img3.png'));
-- NULL in, NULL out
SELECT quote(ram_tags(NULL)), quote(ram_tags(NULL, 'zh')), quote(ram_tags(readfile('@G@/images/img0.jpg'), NULL));
SELECT quote(ram_embed(NULL)), quote(ram_cls(NULL)), quote(ram_score(NULL, 'x')), quote(ram_tokenize(NULL));
SELECT count(*) FROM ram_tag_scores(NULL);
-- reloading the same file keeps one registry entry
SELECT ram_load('@B@/models/../models/golden_ram_plus.ram') = ram_model();
SELECT json_array_length(ram_debug(), '$.models.loaded');
-- wrong argument counts are SQLite's own errors
SELECT ram_tags();
SELECT ram_tags(x'00', 'en', 1);
SELECT ram_score(x'00');
SELECT ram_load();
-- ram_debug: the keys tests and bug reports rely on
SELECT json_type(ram_debug(), '$.simd'), json_type(ram_debug(), '$.openblas.config'),
       json_type(ram_debug(), '$.libvips'), json_type(ram_debug(), '$.image_formats'),
       json_type(ram_debug(), '$.threads'), json_extract(ram_debug(), '$.interrupt'),
       json_type(ram_debug(), '$.caches.image.hits');
