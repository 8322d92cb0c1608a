-- Tag2Text captions (ram_caption, ram_caption_model): the golden captions of
-- tests/data/golden/tag2text (tag2text/img*_result.json), predicted and user
-- tags, and a connection that tags with RAM++ and captions with Tag2Text.
.load @LIB@
-- no caption model yet: the connection's model is not Tag2Text
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT ram_caption(readfile('@G@/images/img0.jpg'));
-- the connection's own model is Tag2Text
SELECT json_extract(ram_load('@B@/models/golden_tag2text.ram'), '$.kind', '$.tags', '$.text_encoder');
SELECT ram_tags(readfile('@G@/images/img0.jpg'));
SELECT ram_caption(readfile('@G@/images/img0.jpg'));
SELECT ram_caption(readfile('@G@/images/img0.jpg'), 'dog,grass,running');
SELECT ram_caption(readfile('@G@/images/img2.jpg'), NULL);
SELECT ram_caption(readfile('@G@/images/img2.jpg'), 'None') = ram_caption(readfile('@G@/images/img2.jpg'));
-- two models: RAM++ for tags, Tag2Text for captions
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.kind');
SELECT ram_caption_model('@B@/models/golden_tag2text.ram') IS NOT NULL;
SELECT ram_tags(readfile('@G@/images/img1.png'));
SELECT ram_caption(readfile('@G@/images/img1.png'));
SELECT ram_caption(readfile('@G@/images/img1.png'), 'Café, naïve résumé,  HOT-DOG!');
SELECT ram_tags(readfile('@G@/images/img1.png'));
SELECT ram_caption(readfile('@G@/images/img3.png'), 'red bicycle,snowy mountain,cup of coffee,wooden chair,yellow taxi,sunset over the sea,guitar,person,man,woman,street,building,tree,sky');
-- errors and NULL
SELECT ram_caption(NULL) IS NULL, ram_caption(NULL, 'dog') IS NULL;
SELECT ram_caption('not a blob');
SELECT ram_caption(readfile('@G@/images/img1.png'), 3);
SELECT ram_caption(x'00010203');
SELECT ram_caption_model('@B@/models/golden_ram.ram');
SELECT ram_caption_model('@T@/no_such_file.ram');
SELECT ram_caption_model(7);
-- forgetting the caption model: back to "no caption model"
SELECT ram_caption_model(NULL) IS NULL;
SELECT ram_caption(readfile('@G@/images/img1.png'));
-- which decoder: fp32 for an fp32 file; for an int8 file the weight-only int8
-- decoder's drafts checked by fp32 (fp32's captions: test_tag2text checks it)
SELECT json_extract(ram_load('@B@/models/golden_tag2text.ram'), '$.dtype', '$.caption_decoder');
SELECT json_extract(ram_load('@B@/models/golden_tag2text_int8.ram'), '$.dtype', '$.caption_decoder');
SELECT length(ram_caption(readfile('@G@/images/img0.jpg'), 'dog,grass,running')) > 0;
SELECT json_extract(ram_load('@B@/models/golden_ram_plus.ram'), '$.caption_decoder') IS NULL;
