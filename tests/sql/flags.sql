-- Function flags tell the truth (docs/SQL.md "Flags"): the functions whose result changes with
-- the connection's model, thresholds or settings are not deterministic, so SQLite refuses them
-- where a stored result would go stale without notice: index expressions, generated columns.
.load @LIB@
SELECT json_extract(ram_load('@B@/models/golden_ram_plus_clip.ram'), '$.kind');
CREATE TABLE t(img BLOB);
INSERT INTO t VALUES (readfile('@G@/images/img0.jpg'));
CREATE INDEX t_tags ON t(ram_tags(img));
CREATE INDEX t_tags_zh ON t(ram_tags(img, 'zh'));
CREATE INDEX t_embed ON t(ram_embed(img));
CREATE INDEX t_cls ON t(ram_cls(img));
CREATE INDEX t_score ON t(ram_score(img, 'a cat'));
CREATE INDEX t_tok ON t(ram_tokenize('a cat'));
CREATE INDEX t_temb ON t(ram_text_embed('a cat'));
CREATE TABLE g1(img BLOB, tags TEXT GENERATED ALWAYS AS (ram_tags(img)));
CREATE TABLE g2(img BLOB, tags TEXT GENERATED ALWAYS AS (ram_tags(img)) STORED);
CREATE TABLE g3(img BLOB, s REAL GENERATED ALWAYS AS (ram_score(img, 'a cat')));
SELECT count(*) FROM sqlite_schema WHERE name IN ('t_tags', 't_tags_zh', 't_embed', 't_cls', 't_score', 't_tok', 't_temb', 'g1', 'g2', 'g3');
-- the stale result they would keep: the same image, two thresholds, two answers
SELECT ram_tags(img) FROM t;
SELECT ram_set_threshold('tag0', 1.0);
SELECT ram_tags(img) FROM t;
-- still innocuous: a view or trigger of the database may use them
CREATE VIEW v AS SELECT ram_tags(img) AS tags FROM t;
SELECT tags FROM v;
-- ram_thumbnail and ram_version depend only on their arguments and the build: deterministic
CREATE INDEX t_thumb ON t(ram_thumbnail(img, 8));
CREATE TABLE g4(x, v TEXT GENERATED ALWAYS AS (ram_version()));
SELECT count(*) FROM sqlite_schema WHERE name IN ('t_thumb', 'g4');
