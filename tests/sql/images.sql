-- Image handling: formats, EXIF orientation, pixel limit, undecodable data.
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
-- formats libvips reads (GIF, WebP, TIFF, CMYK JPEG, palette and 16-bit PNG) all tag
SELECT typeof(ram_tags(readfile('@I@/pal.gif'))), typeof(ram_tags(readfile('@I@/rgb.webp'))),
       typeof(ram_tags(readfile('@I@/cmyk.tif'))), typeof(ram_tags(readfile('@I@/cmyk.jpg'))),
       typeof(ram_tags(readfile('@I@/pal.png'))), typeof(ram_tags(readfile('@I@/rgb16.png')));
-- EXIF orientation: applied by default; ram_set_exif(0) is the official behaviour (ignore it).
-- orient1..8.jpg hold the same stored pixels with orientation tags 1..8.
SELECT ram_embed(readfile('@I@/orient6.jpg')) = ram_embed(readfile('@I@/orient1.jpg'));
SELECT ram_set_exif(0);
SELECT substr(ram_embed(readfile('@I@/orient6.jpg')), 65) = substr(ram_embed(readfile('@I@/orient1.jpg')), 65);
SELECT hex(substr(ram_embed(readfile('@I@/orient6.jpg')), 13, 4));
SELECT ram_set_exif(1);
SELECT hex(substr(ram_embed(readfile('@I@/orient6.jpg')), 13, 4));
-- the pixel limit (default 100 megapixels): refused from the header, SQLITE_TOOBIG (18)
SELECT ram_tags(readfile('@I@/bomb.webp'));
SELECT ram_tags(readfile('@I@/bomb.png'));
SELECT ram_set_max_pixels(60000);
SELECT length(ram_tags(readfile('@G@/images/img0.jpg'))) > 0;
SELECT ram_set_max_pixels(59999);
SELECT ram_tags(readfile('@G@/images/img0.jpg'));
SELECT * FROM ram_tag_scores(readfile('@G@/images/img0.jpg'));
SELECT ram_set_max_pixels(100000000);
-- undecodable data
SELECT ram_tags(x'');
SELECT ram_tags(zeroblob(10));
SELECT ram_tags(x'89504e470d0a1a0a0000');
SELECT ram_tags(substr(readfile('@G@/images/img0.jpg'), 1, 2000));
SELECT ram_embed(CAST('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>' AS BLOB));
-- argument types
SELECT ram_tags('@G@/images/img0.jpg');
SELECT ram_tags(42);
SELECT ram_tags(4.2);
SELECT ram_tags(readfile('@G@/images/img0.jpg'), 'fr');
SELECT ram_tags(readfile('@G@/images/img0.jpg'), 1);
SELECT ram_set_exif(2);
SELECT ram_set_exif('yes');
SELECT ram_set_max_pixels(0);
SELECT ram_set_max_pixels('many');
-- DIRECTONLY settings cannot be reached from a trigger
CREATE TABLE t(x);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT ram_set_max_pixels(1000000000000); END;
INSERT INTO t VALUES (1);
