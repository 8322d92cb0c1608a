/*
** test_index.c — the ram_index virtual table through SQL: the session
** on the golden model and images, tag queries from the inverted index,
** MATCH against the goldens and ram_score, duplicates, re-inserts,
** DELETE/UPDATE/DROP, model and preprocessing changes, integrity checks,
** interrupts and a killed process resuming from the journal, and a WAL reader
** beside a writer. Messages are pinned exactly.
**
** Environment: RAM_BUILD (build folder: ram.so and models/), RAM_SO to test
** another ram.so.
*/
#include "harness.h"
#include "sql_harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>

static char g_so[1024], g_clip[1024], g_plus[1024], g_ram[1024], g_tmp[256];

static long stat_of(sqlite3 *db, const char *key);

/* ------------------------------------------------------------------ SQL helpers */

static sqlite3 *open_db(const char *file) { return sqlh_open(file, g_so, 10000); }

/* Rows of one statement, reals with %.6g (sql_harness.h). Caller frees. */
static char *rows(sqlite3 *db, const char *sql) { return sqlh_rows(db, sql, "%.6g"); }

static void check_sql(const char *name, sqlite3 *db, const char *sql, const char *want)
{
    char *got = rows(db, sql);
    check(!strcmp(got, want), name, "%s\n  got:  %s\n  want: %s", sql, got, want);
    free(got);
}

/* The detail column of EXPLAIN QUERY PLAN, rows joined by '\n'. */
static void check_plan(const char *name, sqlite3 *db, const char *sql, const char *want)
{
    char q[2048];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s = 0;
    char got[1024] = "";
    if (sqlite3_prepare_v2(db, q, -1, &s, 0) == SQLITE_OK)
        while (sqlite3_step(s) == SQLITE_ROW)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", got[0] ? "\n" : "",
                     (const char *)sqlite3_column_text(s, 3));
    else
        snprintf(got, sizeof got, "ERROR: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    check(!strcmp(got, want), name, "%s\n  got:  %s\n  want: %s", sql, got, want);
}

static int exec(sqlite3 *db, const char *sql) { return sqlh_exec(db, sql); }

static long long num(sqlite3 *db, const char *sql) { return sqlh_num(db, sql); }

static long stat_of(sqlite3 *db, const char *key)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT json_extract(ram_index_stats(), '$.%s')", key);
    return (long)num(db, sql);
}

/* ------------------------------------------------------------------ images */

static void *slurp(const char *path, int *n)
{
    size_t len = 0;
    void *p = read_file(path, &len);
    *n = (int)len;
    return p;
}

/* A distinct small PNG per seed (smooth pattern plus seeded noise). */
static void *make_png(int seed, int *n)
{
    int w = 64 + seed % 7, h = 48 + seed % 5;
    unsigned char *px = malloc((size_t)w * h * 3);
    uint32_t r = 2166136261u ^ (uint32_t)seed * 16777619u;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                r = r * 1664525u + 1013904223u;
                px[(y * w + x) * 3 + c] = (unsigned char)((x * (c + 1) * 3 + y * (seed % 11) + (r >> 28)) & 255);
            }
    VipsImage *im = vips_image_new_from_memory_copy(px, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    void *buf = 0;
    size_t len = 0;
    if (!im || vips_pngsave_buffer(im, &buf, &len, NULL)) buf = 0;
    if (im) g_object_unref(im);
    free(px);
    *n = (int)len;
    void *copy = malloc(len ? len : 1);
    if (buf) memcpy(copy, buf, len), g_free(buf);
    return copy;
}

/* src(name, data): the four golden images, then `extra` generated ones. */
static int fill_src(sqlite3 *db, int extra)
{
    if (exec(db, "CREATE TABLE IF NOT EXISTS src(name TEXT, data BLOB)")) return 1;
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, "INSERT INTO src VALUES(?1, ?2)", -1, &s, 0);
    static const char *gold[] = {"img0.jpg", "img1.png", "img2.jpg", "img3.png"};
    for (int i = 0; i < 4 + extra; i++) {
        char name[64], rel[128];
        int n;
        void *b;
        if (i < 4) {
            snprintf(name, sizeof name, "golden/%s", gold[i]);
            snprintf(rel, sizeof rel, "golden/images/%s", gold[i]);
            b = slurp(data_path(rel), &n);
        } else {
            snprintf(name, sizeof name, "gen/%04d.png", i - 4);
            b = make_png(i, &n);
        }
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(s, 2, b, n, SQLITE_TRANSIENT);
        sqlite3_step(s);
        sqlite3_reset(s);
        free(b);
    }
    sqlite3_finalize(s);
    return 0;
}

static char *fmt(const char *f, ...)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ & 7];
    va_list ap;
    va_start(ap, f);
    vsnprintf(p, 4096, f, ap);
    va_end(ap);
    return p;
}

/* ------------------------------------------------------------------ golden facts */

static const char *golden_tags[4] = {
    "tag0 | hot dog | tag2 | crème brûlée | tag6 | tag7 | tag8 | tag9 | tag10 | tag11",
    "tag6 | tag7 | tag8 | tag9",
    "",
    "tag2 | crème brûlée | tag6 | tag7 | tag8 | tag9 | tag11",
};

static float golden_prob(const char *dir, int img, int cls)
{
    struct npy a;
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s/img%d_probs.npy", dir, img);
    if (!npy_load(data_path(rel), &a)) return -1;
    float v = a.data[cls];
    npy_free(&a);
    return v;
}

/* ------------------------------------------------------------------ tests */

/* ------------------------------------------------------------------ filters the table cannot answer */

/* 1 when the ' | '-joined tag list holds tag t. */
static int tags_have(const char *tags, const char *t)
{
    size_t n = strlen(t);
    for (const char *q = tags; q && *q;) {
        const char *e = strstr(q, " | ");
        size_t len = e ? (size_t)(e - q) : strlen(q);
        if (len == n && !memcmp(q, t, n)) return 1;
        q = e ? e + 3 : 0;
    }
    return 0;
}

/* Every filter on tag or score gives the rows a brute-force reading of the
** stored tags and probabilities gives, or an error saying how to write it:
** never a silently empty result. */
static void test_filters(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) return;
    fill_src(db, 6);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    /* Brute force: each row's selected tags (the tags column) and its
    ** probability of 'hot dog' (the probs column at that class). */
    int cls = -1;
    for (int c = 0; c < 64 && cls < 0; c++) {
        char *t = rows(db, fmt("SELECT tag FROM photos WHERE tag = %d AND score >= 0.01 LIMIT 1", c));
        if (!strcmp(t, "hot dog")) cls = c;
        free(t);
    }
    check(cls >= 0, "index.filter.class_found", "no class named 'hot dog'");
    if (cls < 0) goto done;
    char want_not[4096] = "", want_in[4096] = "", want_lt[4096] = "";
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, "SELECT path, tags, probs FROM photos ORDER BY path", -1, &s, 0);
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(s, 0), *tags = (const char *)sqlite3_column_text(s, 1);
        float pr = 0;
        if (sqlite3_column_bytes(s, 2) >= 4 * (cls + 1))
            memcpy(&pr, (const char *)sqlite3_column_blob(s, 2) + 4 * cls, 4);
        n++;
        if (!tags_have(tags, "hot dog"))
            snprintf(want_not + strlen(want_not), sizeof want_not - strlen(want_not), "%s%s", want_not[0] ? "\n" : "",
                     path);
        else if (pr < 0.9)
            snprintf(want_lt + strlen(want_lt), sizeof want_lt - strlen(want_lt), "%s%s", want_lt[0] ? "\n" : "", path);
        for (int k = 0; k < 2; k++) {
            const char *t = k ? "tag10" : "hot dog";
            if (tags_have(tags, t))
                snprintf(want_in + strlen(want_in), sizeof want_in - strlen(want_in), "%s%s|%s", want_in[0] ? "\n" : "",
                         path, t);
        }
    }
    sqlite3_finalize(s);
    check(n == 10 && want_not[0] && want_in[0], "index.filter.brute_force", "%d rows, not: '%s', in: '%s'", n, want_not,
          want_in);

    /* What the table answers, or SQLite evaluates on the tag plan's columns. */
    check_sql(
        "index.filter.negation_documented", db,
        "SELECT path FROM photos WHERE rowid NOT IN (SELECT rowid FROM photos WHERE tag = 'hot dog') ORDER BY path",
        want_not);
    check_sql("index.filter.in_list", db,
              "SELECT path, tag FROM photos WHERE tag IN ('Hot Dog', 'tag10') ORDER BY path, tag = 'tag10'", want_in);
    check_sql("index.filter.in_list_class_index", db,
              fmt("SELECT path, tag FROM photos WHERE tag IN (%d, 'tag10') ORDER BY path, tag = 'tag10'", cls),
              want_in);
    check_sql("index.filter.or_of_tags", db,
              "SELECT path, tag FROM photos WHERE tag = 'hot dog' OR tag = 'tag10' ORDER BY path, tag = 'tag10'",
              want_in);
    check_sql("index.filter.score_upper_bound", db,
              "SELECT path FROM photos WHERE tag = 'hot dog' AND score < 0.9 ORDER BY path", want_lt);
    check_sql("index.filter.tags_like", db, "SELECT path FROM photos WHERE tags NOT LIKE '%hot dog%' ORDER BY path",
              want_not);

    /* What it cannot answer: an error that says how to write it. */
    static const char *const neg = "to exclude a tag write rowid NOT IN (SELECT rowid FROM photos WHERE tag = 'blue')";
    check_sql("index.filter.not_equal", db, "SELECT path FROM photos WHERE tag != 'hot dog'",
              fmt("ERROR: ram_index: tag != is not supported (a row has many tags); %s", neg));
    check_sql("index.filter.is_not", db, "SELECT path FROM photos WHERE tag IS NOT 'hot dog'",
              fmt("ERROR: ram_index: tag != is not supported (a row has many tags); %s", neg));
    check_sql("index.filter.not_eq", db, "SELECT path FROM photos WHERE NOT tag = 'hot dog'",
              fmt("ERROR: ram_index: tag has a value only in a tag query (tag = 'dog' or tag IN (...)); %s", neg));
    check_sql("index.filter.tag_or_score", db, "SELECT path FROM photos WHERE tag = 'hot dog' OR score > 0.9",
              fmt("ERROR: ram_index: tag has a value only in a tag query (tag = 'dog' or tag IN (...)); %s", neg));
    const char *cmp = fmt("ERROR: ram_index: tag takes one tag name, compared with = or IN (tag = 'dog', tag IN "
                          "('dog', 'cat')), not a pattern or a range; to match the selected tags' names write e.g. "
                          "tags LIKE '%%bl%%'; %s",
                          neg);
    check_sql("index.filter.like", db, "SELECT path FROM photos WHERE tag LIKE 'hot%'", cmp);
    check_sql("index.filter.glob", db, "SELECT path FROM photos WHERE tag GLOB 'hot*'", cmp);
    check_sql("index.filter.tag_gt", db, "SELECT path FROM photos WHERE tag > 'a'", cmp);
    check_sql("index.filter.tag_is_null", db, "SELECT path FROM photos WHERE tag IS NULL", cmp);
    const char *score = "ERROR: ram_index: score has a value only with tag = ... or MATCH (it is the queried tag's or "
                        "text's probability): write e.g. tag = 'dog' AND score > 0.5";
    check_sql("index.filter.score_alone", db, "SELECT path FROM photos WHERE score > 0.5", score);
    check_sql("index.filter.score_between", db, "SELECT path FROM photos WHERE score BETWEEN 0.2 AND 0.5", score);
    check_sql("index.filter.score_in", db, "SELECT path FROM photos WHERE score IN (0.5, 0.6)", score);
    /* A plain scan and SELECT * still work. */
    check_sql("index.filter.scan_ok", db, "SELECT count(*), count(score) FROM photos", "10|0");
done:
    sqlite3_close(db);
}

/* ------------------------------------------------------------------ entries that travel */

/* Entries read from one database's table are stored in another's without
** running the model: the same probabilities, tags and MATCH scores; an
** entry of another model, or stored embeddings given as image bytes, are
** refused with what to do. */
static void test_entries(void)
{
    char a[300], b[300];
    snprintf(a, sizeof a, "%s.entries_a.db", g_tmp);
    snprintf(b, sizeof b, "%s.entries_b.db", g_tmp);
    unlink(a), unlink(b);
    sqlite3 *db = open_db(a);
    if (!db) return;
    fill_src(db, 4);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    exec(db, fmt("ATTACH '%s' AS b", b));
    exec(db, fmt("CREATE VIRTUAL TABLE b.photos USING ram_index(model='%s')", g_clip));
    long inf0 = stat_of(db, "inferences");
    check_sql("index.entry.copy", db, "INSERT INTO b.photos(path, entry) SELECT path, entry FROM main.photos", "");
    check(stat_of(db, "inferences") == inf0, "index.entry.no_inference", "%ld inferences",
          stat_of(db, "inferences") - inf0);
    check_sql("index.entry.same_rows", db,
              "SELECT count(*), sum(x.probs = y.probs), sum(x.key = y.key), sum(x.tags = y.tags), sum(x.cls = y.cls) "
              "FROM main.photos x JOIN b.photos y USING(path)",
              "8|8|8|8|8");
    char *m1 = rows(db, "SELECT path, printf('%.9g', score) FROM main.photos WHERE photos MATCH 'a red bicycle'");
    char *m2 = rows(db, "SELECT path, printf('%.9g', score) FROM b.photos WHERE photos MATCH 'a red bicycle'");
    check(!strcmp(m1, m2) && strlen(m1) > 40, "index.entry.same_match", "main:\n%s\nb:\n%s", m1, m2);
    free(m1), free(m2);
    check_sql("index.entry.tag_query", db, "SELECT count(*) FROM b.photos WHERE tag = 'hot dog'", "1");
    check_sql("index.entry.integrity", db, "INSERT INTO b.photos(photos) VALUES('integrity-check')", "");
    /* Again: the rows are there, nothing changes. */
    check_sql("index.entry.rerun", db, "INSERT INTO b.photos(path, entry) SELECT path, entry FROM main.photos", "");
    check_sql("index.entry.rerun_rows", db, "SELECT count(*) FROM b.photos", "8");
    /* ram_tags() and ram_score() read an entry with the connection's model. */
    exec(db, fmt("SELECT ram_load('%s')", g_clip));
    check_sql("index.entry.ram_tags", db, "SELECT count(*), sum(ram_tags(entry) = tags) FROM main.photos", "8|8");
    check_sql("index.entry.ram_score", db,
              "SELECT count(*), max(abs(ram_score(entry, 'a red bicycle') - score)) < 1e-5 FROM b.photos "
              "WHERE photos MATCH 'a red bicycle'",
              "8|1");
    check(stat_of(db, "inferences") == inf0, "index.entry.functions_no_inference", "%ld inferences",
          stat_of(db, "inferences") - inf0);
    /* Refusals. */
    exec(db, fmt("CREATE VIRTUAL TABLE b.other USING ram_index(model='%s')", g_plus));
    char *want = rows(db, "SELECT 'ERROR: ram_index: the entry was made with another model or preprocessing (digest ' "
                          "|| substr(g1.digest, 1, 12) || '..., prep1 exif=1) than other uses (digest ' || "
                          "substr(g2.digest, 1, 12) || '..., prep1 exif=1): insert the image bytes instead, or "
                          "store the entry in a table of that model' FROM main.photos_gens g1, b.other_gens g2");
    check_sql("index.entry.other_model_refused", db,
              "INSERT INTO b.other(path, entry) SELECT path, entry FROM main.photos", want);
    free(want);
    check_sql("index.entry.other_model_nothing_written", db, "SELECT count(*) FROM b.other", "0");
    const char *emb = "ERROR: ram_index: image is a ram_embed() BLOB, not image bytes; to store a row without "
                      "running the model, insert the entry column of another ram_index table: INSERT INTO "
                      "photos(path, entry) SELECT path, entry FROM other.photos";
    check_sql("index.entry.ram_embed_as_image", db,
              "INSERT INTO b.photos(path, image) SELECT 'e', ram_embed(data) FROM src LIMIT 1", emb);
    check_sql("index.entry.entry_as_image", db,
              "INSERT INTO b.photos(path, image) SELECT 'e', entry FROM main.photos LIMIT 1",
              "ERROR: ram_index: image is a ram_index entry BLOB, not image bytes; to store a row without running "
              "the model, insert the entry column of another ram_index table: INSERT INTO photos(path, entry) "
              "SELECT path, entry FROM other.photos");
    check_sql("index.entry.ram_embed_as_entry", db,
              "INSERT INTO b.photos(path, entry) SELECT 'e', ram_embed(data) FROM src LIMIT 1",
              "ERROR: ram_index: entry must be a BLOB read from the entry column of a ram_index table (this is a "
              "ram_embed() BLOB, which lacks the probabilities)");
    check_sql("index.entry.truncated", db,
              "INSERT INTO b.photos(path, entry) SELECT 'e', substr(entry, 1, 2000) FROM main.photos LIMIT 1",
              "ERROR: ram_index: entry: not a valid ram_index entry BLOB (sizes do not add up)");
    check_sql("index.entry.both", db,
              "INSERT INTO b.photos(path, image, entry) SELECT 'e', data, (SELECT entry FROM main.photos LIMIT 1) "
              "FROM src LIMIT 1",
              "ERROR: ram_index: give image or entry, not both");
    check_sql("index.entry.read_only", db, "UPDATE b.photos SET entry = x'00'",
              "ERROR: ram_index: column entry is read-only");
    sqlite3_close(db);
    unlink(a), unlink(b);
}

/* ------------------------------------------------------------------ bad files in SQL */

/* on_error=skip: an INSERT ... SELECT over a folder with a broken and an
** oversized file stores the others and records those two with the
** decoder's reason in photos_skipped; without it the statement fails whole. */
static void test_on_error_skip(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) return;
    fill_src(db, 2);
    exec(db, "INSERT INTO src VALUES('broken.jpg', x'00010203')");
    exec(db, fmt("CREATE VIRTUAL TABLE strict USING ram_index(model='%s')", g_clip));
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s', on_error=skip)", g_clip));
    check_sql("index.on_error.default_fails", db, "INSERT INTO strict(path, image) SELECT name, data FROM src",
              "ERROR: ram_index: image: unrecognised format: VipsForeignLoad: buffer is not in a known format");
    check_sql("index.on_error.default_nothing", db, "SELECT count(*) FROM strict", "0");
    exec(db, "SELECT ram_set_max_pixels(200000)"); /* img2.jpg, 640x427, is over it */
    check_sql("index.on_error.skip_goes_on", db, "INSERT INTO photos(path, image) SELECT name, data FROM src", "");
    check_sql("index.on_error.rows", db, "SELECT count(*) FROM photos", "5");
    check_sql("index.on_error.recorded", db, "SELECT path, reason FROM photos_skipped ORDER BY path",
              "broken.jpg|ram_index: image: unrecognised format: VipsForeignLoad: buffer is not in a known format\n"
              "golden/img2.jpg|ram_index: image: 640x427 is 273280 pixels, over the limit of 200000");
    exec(db, "SELECT ram_set_max_pixels(100000000)");
    check_sql("index.on_error.retry", db, "INSERT INTO photos(path, image) SELECT name, data FROM src", "");
    check_sql("index.on_error.retry_rows", db,
              "SELECT (SELECT count(*) FROM photos), (SELECT group_concat(path) FROM photos_skipped)", "6|broken.jpg");
    check_sql("index.on_error.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    check_sql("index.on_error.bad_value", db, "CREATE VIRTUAL TABLE x USING ram_index(on_error=maybe)",
              "ERROR: ram_index: on_error must be 'fail' or 'skip', got 'maybe'");
    check_sql("index.on_error.rename", db, "ALTER TABLE photos RENAME TO pics; SELECT count(*) FROM pics_skipped", "");
    check_sql("index.on_error.renamed", db, "SELECT count(*) FROM pics_skipped", "1");
    check_sql("index.on_error.drop", db, "DROP TABLE pics; SELECT count(*) FROM sqlite_schema WHERE name GLOB 'pics_*'",
              "");
    check_sql("index.on_error.dropped", db, "SELECT count(*) FROM sqlite_schema WHERE name GLOB 'pics_*'", "0");
    sqlite3_close(db);
}

static void test_session(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) {
        check(0, "index.session.open", "cannot load %s", g_so);
        return;
    }
    fill_src(db, 0);
    check_sql("index.session.create", db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip), "");
    check_sql("index.session.insert", db,
              "INSERT INTO photos(path, image) SELECT name, data FROM src WHERE name GLOB '*.jpg' OR name GLOB '*.png'",
              "");
    for (int i = 0; i < 4; i++) {
        char *got = rows(db, fmt("SELECT tags FROM photos WHERE path GLOB 'golden/img%d.*'", i));
        check(!strcmp(got, golden_tags[i]), fmt("index.session.tags_img%d", i), "got '%s'", got);
        free(got);
    }
    /* tag = ? (English, Chinese, class index) equals the golden selection. */
    static const char *zh[] = {"标签0", "热狗"};
    for (int cls = 0; cls < 12; cls++) {
        float thr = 0;
        FILE *f = fopen(data_path("golden/tag_list_threshold.txt"), "r");
        for (int k = 0; k <= cls && f; k++)
            if (fscanf(f, "%f", &thr) != 1) break;
        if (f) fclose(f);
        char want[256] = "";
        for (int i = 0; i < 4; i++)
            if (golden_prob("ram_plus", i, cls) > thr)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%sgolden/img%d", want[0] ? "," : "", i);
        char *got = rows(db, fmt("SELECT group_concat(substr(path, 1, 11), ',') FROM "
                                 "(SELECT path FROM photos WHERE tag = %d ORDER BY path)",
                                 cls));
        check(!strcmp(got, want[0] ? want : "NULL"), fmt("index.session.tag_class_%d", cls), "got %s want %s", got,
              want);
        free(got);
    }
    check_sql("index.session.tag_english", db, "SELECT path, tag FROM photos WHERE tag = 'hot dog'",
              "golden/img0.jpg|hot dog");
    check_sql("index.session.tag_english_case", db, "SELECT count(*) FROM photos WHERE tag = 'Hot Dog'", "1");
    (void)zh;
    check_sql("index.session.tag_chinese", db, "SELECT path FROM photos WHERE tag = '标签0'", "golden/img0.jpg");
    check_sql("index.session.tag_score", db,
              "SELECT path, round(score, 4) FROM photos WHERE tag = 'hot dog' AND score > 0.5 ORDER BY score DESC",
              fmt("golden/img0.jpg|%.4g\ngolden/img3.png|%.4g\ngolden/img1.png|%.4g",
                  round(golden_prob("ram_plus", 0, 1) * 1e4) / 1e4, round(golden_prob("ram_plus", 3, 1) * 1e4) / 1e4,
                  round(golden_prob("ram_plus", 1, 1) * 1e4) / 1e4));
    {
        /* Bounds at exactly a stored probability: > excludes it, >= keeps it. */
        char *v = rows(db, "SELECT printf('%!.17g', score) FROM photos WHERE tag = 'hot dog' AND path GLOB '*img0*'");
        check_sql("index.session.score_gt_exact", db,
                  fmt("SELECT count(*) FROM photos WHERE tag = 'hot dog' AND score > %s", v), "0");
        check_sql("index.session.score_ge_exact", db,
                  fmt("SELECT count(*) FROM photos WHERE tag = 'hot dog' AND score >= %s", v), "1");
        check_sql("index.session.score_above_one", db,
                  "SELECT count(*) FROM photos WHERE tag = 'hot dog' AND score > 1e300", "0");
        free(v);
    }
    check_sql("index.session.tag_in", db,
              "SELECT path, tag FROM photos WHERE tag IN ('hot dog', 'tag10') ORDER BY tag, path",
              "golden/img0.jpg|hot dog\ngolden/img0.jpg|tag10");
    check_plan("index.session.tag_in_explain", db, "SELECT path FROM photos WHERE tag IN ('a', 'b') AND score > 0.9",
               "SCAN photos VIRTUAL TABLE INDEX 19:tag+score");
    check_plan("index.session.tag_explain", db, "SELECT path, tags FROM photos WHERE tag = 'dog'",
               "SCAN photos VIRTUAL TABLE INDEX 3:tag");
    check_plan("index.session.match_explain", db,
               "SELECT path, score FROM photos WHERE photos MATCH 'a dog catching a frisbee' AND k = 20",
               "SCAN photos VIRTUAL TABLE INDEX 68:match");

    /* MATCH with the golden descriptions of "red bicycle": the official open-set probabilities. */
    const char *bike = "'[\"a photo of a red bicycle.\", \"A red bicycle is a two-wheeled, pedal-driven vehicle "
                       "painted in a bright red colour; it usually has a diamond-shaped frame, thin spoked wheels, "
                       "black rubber tyres, a saddle, handlebars with brake levers, a chain drive and often a bell, "
                       "a basket or mudguards, and it is commonly seen parked against walls, leaning on railings or "
                       "ridden along city streets, parks and country lanes by people of all ages.\", "
                       "\"Bicycles: RED frame & chrome parts!\"]'";
    double worst = 0;
    int nrows = 0;
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, fmt("SELECT path, score FROM photos WHERE photos MATCH %s AND k = 20", bike), -1, &s, 0);
    double prev = 2;
    int ordered = 1;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int img = sqlite3_column_text(s, 0)[10] - '0';
        double sc = sqlite3_column_double(s, 1);
        worst = fmax(worst, fabs(sc - golden_prob("openset", img, 0)));
        ordered &= sc <= prev;
        prev = sc;
        nrows++;
    }
    sqlite3_finalize(s);
    check(nrows == 4 && ordered && worst <= 0.01, "index.session.match_golden", "%d rows, ordered %d, error %.3g",
          nrows, ordered, worst);
    printf("# MATCH vs official open-set probabilities (int8 cache): max abs error %.2e\n", worst);
    check_sql("index.session.match_k", db,
              "SELECT count(*) FROM photos WHERE photos MATCH 'a photo of a red bicycle.' AND k = 2", "2");
    check_sql("index.session.match_with_tag", db,
              "SELECT group_concat(substr(path, 8, 4)), count(DISTINCT tag) FROM photos "
              "WHERE photos MATCH 'a photo of a red bicycle.' AND tag = 'tag6'",
              "img0,img3,img1|1");
    check_plan("index.session.match_with_tag_explain", db,
               "SELECT path FROM photos WHERE photos MATCH 'a red bicycle' AND tag = 'tag6'",
               "SCAN photos VIRTUAL TABLE INDEX 516:match+tag");
    check_sql("index.session.match_limit_offset", db,
              "SELECT group_concat(substr(path, 8, 4)) FROM (SELECT path FROM photos "
              "WHERE photos MATCH 'a photo of a red bicycle.' LIMIT 2 OFFSET 1)",
              "img3,img1");
    check_sql("index.session.match_limit", db,
              "SELECT count(*) FROM (SELECT path FROM photos WHERE photos MATCH 'a photo of a red bicycle.' "
              "ORDER BY score DESC LIMIT 3)",
              "3");

    /* MATCH (the int8 cache) is within the cache's error of ram_score, which
    ** computes from the image in fp32 whatever the index holds. */
    exec(db, fmt("SELECT ram_load('%s')", g_clip));
    {
        /* The last: a JSON list whose description holds \u0000 and 300 bytes
        ** after it (the whole decoded string is the description). */
        const char *texts[] = {"'a photo of a red bicycle.'", "'a dog catching a frisbee'", bike,
                               "('[\"a\\u0000' || hex(zeroblob(150)) || '\"]')"};
        for (int t = 0; t < 4; t++) {
            char *got = rows(db, fmt("SELECT count(*), max(abs(p.score - ram_score(s.data, %s))) FROM photos p "
                                     "JOIN src s ON s.name = p.path WHERE p.photos MATCH %s",
                                     texts[t], texts[t]));
            double e = atof(strchr(got, '|') ? strchr(got, '|') + 1 : "1");
            check(!strncmp(got, "4|", 2) && e <= 0.01, fmt("index.session.match_near_ram_score_%d", t), "%s", got);
            free(got);
        }
    }
    /* ram_score gives the same value for the same image whether or not an
    ** index holds it: before and after inserting it into a ram_index table
    ** of another connection's main schema. */
    {
        sqlite3 *other = open_db(":memory:");
        if (other) {
            exec(other, fmt("SELECT ram_load('%s')", g_clip));
            fill_src(other, 0);
            const char *q = "SELECT group_concat(printf('%.17g', ram_score(data, 'a photo of a red bicycle.'))) "
                            "FROM (SELECT data FROM src ORDER BY name)";
            char *before = rows(other, q);
            exec(other, "CREATE VIRTUAL TABLE photos USING ram_index");
            exec(other, "INSERT INTO photos(path, image) SELECT name, data FROM src");
            char *after = rows(other, q);
            check(strlen(before) > 10 && !strcmp(before, after), "index.session.ram_score_same_indexed_or_not",
                  "before %s, after %s", before, after);
            free(before);
            free(after);
            sqlite3_close(other);
        }
    }
    /* And, within the int8 cache's error, ram_score on a connection without the index (fresh inference). */
    sqlite3 *fresh = open_db(":memory:");
    if (fresh) {
        exec(fresh, fmt("SELECT ram_load('%s')", g_clip));
        sqlite3_stmt *m = 0;
        double e = 0;
        int cnt = 0;
        sqlite3_prepare_v2(db,
                           "SELECT s.data, p.score FROM photos p JOIN src s ON s.name = p.path "
                           "WHERE p.photos MATCH 'a photo of a red bicycle.'",
                           -1, &m, 0);
        while (sqlite3_step(m) == SQLITE_ROW) {
            sqlite3_stmt *f = 0;
            sqlite3_prepare_v2(fresh, "SELECT ram_score(?1, 'a photo of a red bicycle.')", -1, &f, 0);
            sqlite3_bind_value(f, 1, sqlite3_column_value(m, 0));
            if (sqlite3_step(f) == SQLITE_ROW)
                e = fmax(e, fabs(sqlite3_column_double(f, 0) - sqlite3_column_double(m, 1))), cnt++;
            sqlite3_finalize(f);
        }
        sqlite3_finalize(m);
        check(cnt == 4 && e <= 0.01, "index.session.match_vs_fresh_ram_score", "%d rows, error %.3g", cnt, e);
        printf("# MATCH (int8 cache) vs ram_score from the image: max abs error %.2e\n", e);
        sqlite3_close(fresh);
    }
    check_sql("index.session.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    sqlite3_close(db);
}

static void test_duplicates_and_writes(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) return;
    fill_src(db, 6);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_plus));
    long inf0 = stat_of(db, "inferences"), hash0 = stat_of(db, "hashed");
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    exec(db, "INSERT INTO photos(path, image) SELECT 'copy/' || name, data FROM src WHERE name GLOB 'golden/*'");
    exec(db, "INSERT INTO photos(path, image) SELECT 'again/' || name, data FROM src WHERE name = 'golden/img0.jpg'");
    check(stat_of(db, "inferences") - inf0 == 10, "index.dup.embedded_once", "%ld inferences for 10 distinct images",
          stat_of(db, "inferences") - inf0);
    check_sql(
        "index.dup.counts", db,
        "SELECT (SELECT count(*) FROM photos), (SELECT count(*) FROM photos_images), "
        "(SELECT nref FROM photos_images WHERE id = (SELECT img FROM photos_files WHERE path = 'golden/img0.jpg'))",
        "15|10|3");
    check_sql("index.dup.same_key", db,
              "SELECT count(DISTINCT key) FROM photos WHERE path IN ('golden/img0.jpg', 'copy/golden/img0.jpg')", "1");

    /* Re-running the same INSERT costs a hash per image, not an inference. */
    inf0 = stat_of(db, "inferences");
    hash0 = stat_of(db, "hashed");
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    check(stat_of(db, "inferences") == inf0 && stat_of(db, "hashed") - hash0 == 10, "index.reinsert.skips",
          "%ld inferences, %ld hashes", stat_of(db, "inferences") - inf0, stat_of(db, "hashed") - hash0);
    check_sql("index.reinsert.count", db, "SELECT count(*) FROM photos", "15");

    /* Tag queries read postings, not every row. */
    long post0 = stat_of(db, "postings_read");
    char *n = rows(db, "SELECT count(*) FROM photos WHERE tag = 'hot dog'");
    check(stat_of(db, "postings_read") - post0 == atol(n), "index.tag.reads_only_postings", "%ld postings for %s rows",
          stat_of(db, "postings_read") - post0, n);
    free(n);

    /* UPDATE: a rename costs nothing; new bytes re-point the row. */
    inf0 = stat_of(db, "inferences");
    exec(db, "UPDATE photos SET path = 'renamed.jpg' WHERE path = 'golden/img2.jpg'");
    check_sql("index.update.rename", db,
              "SELECT count(*) FROM photos WHERE path = 'renamed.jpg' AND key = "
              "(SELECT key FROM photos WHERE path = 'copy/golden/img2.jpg')",
              "1");
    exec(db, "UPDATE photos SET image = (SELECT data FROM src WHERE name = 'golden/img1.png') "
             "WHERE path = 'renamed.jpg'");
    check(stat_of(db, "inferences") == inf0, "index.update.no_inference", NULL);
    check_sql("index.update.repoint", db,
              "SELECT tags, (SELECT nref FROM photos_images WHERE key = p.key) FROM photos p "
              "WHERE path = 'renamed.jpg'",
              fmt("%s|3", golden_tags[1]));
    check_sql("index.update.readonly", db, "UPDATE photos SET tags = 'x' WHERE rowid = 1",
              "ERROR: ram_index: column tags is read-only");
    check_sql("index.update.not_blob", db, "UPDATE photos SET image = 'text' WHERE rowid = 1",
              "ERROR: ram_index: image must be a BLOB of encoded image bytes, got TEXT");
    /* An existing path with new bytes: the file changed. */
    exec(db, "INSERT INTO photos(path, image) SELECT 'golden/img3.png', data FROM src WHERE name = 'gen/0000.png'");
    check_sql("index.insert.path_changed", db,
              "SELECT count(*), max(key = (SELECT key FROM photos WHERE path = 'gen/0000.png')) FROM photos "
              "WHERE path = 'golden/img3.png'",
              "1|1");

    /* DELETE keeps shared entries and drops unshared ones with their postings:
    ** img2 and img3 were only kept by their copies now (their own paths
    ** point at other bytes), img0 and img1 stay. */
    exec(db, "DELETE FROM photos WHERE path GLOB 'copy/*' OR path GLOB 'again/*'");
    check_sql("index.delete.shared", db,
              "SELECT count(*), (SELECT count(*) FROM photos_images), (SELECT count(*) FROM photos_cls) FROM photos",
              "10|8|8");
    check_sql("index.delete.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    exec(db, "DELETE FROM photos");
    check_sql("index.delete.all", db,
              "SELECT (SELECT count(*) FROM photos_images), (SELECT count(*) FROM photos_postings), "
              "(SELECT count(*) FROM photos_cls), (SELECT count(*) FROM photos_files)",
              "0|0|0|0");

    /* Errors. */
    check_sql("index.err.image_null", db, "INSERT INTO photos(path, image) VALUES('a', NULL)",
              "ERROR: ram_index: image must be a BLOB of encoded image bytes, got NULL");
    check_sql("index.err.bad_image", db, "INSERT INTO photos(path, image) VALUES('a', x'00010203')",
              "ERROR: ram_index: image: unrecognised format: VipsForeignLoad: buffer is not in a known format");
    check_sql("index.err.unknown_tag", db, "SELECT * FROM photos WHERE tag = 'frisbee catching'",
              "ERROR: ram_index: no tag 'frisbee catching' in the model's vocabulary (use MATCH for free text)");
    check_sql("index.err.below_floor", db, "SELECT * FROM photos WHERE tag = 'tag0' AND score > 0.001",
              "ERROR: ram_index: score > 0.001 is below the index floor 0.01 (probabilities under the floor are "
              "not kept; see the floor option)");
    check_sql("index.err.k_without_match", db, "SELECT * FROM photos WHERE k = 3",
              "ERROR: ram_index: k and prefilter need a MATCH constraint");
    check_sql("index.err.no_text_encoder", db, "SELECT * FROM photos WHERE photos MATCH 'a dog'",
              "ERROR: ram_index: MATCH needs a model with a CLIP text encoder (convert it with ram-convert --clip "
              "...)");
    check_sql("index.err.command", db, "INSERT INTO photos(photos) VALUES('optimise')",
              "ERROR: ram_index: unknown command 'optimise' (expected integrity-check, reembed, delete-stale, model, "
              "model=PATH, exif=0|1, cascade=N, refit=P or upgrade)");
    check_sql("index.err.option", db, "CREATE VIRTUAL TABLE t2 USING ram_index(colour=1)",
              "ERROR: ram_index: unknown option 'colour' (expected model, floor, store_images, exif, resume, on_error, "
              "captions, caption_model or cascade)");
    check_sql("index.err.option_msg", db, "CREATE VIRTUAL TABLE t2 USING ram_index(floor=2)",
              "ERROR: ram_index: floor must be a number in (0, 1], got '2'");
    check_sql("index.err.name", db, "CREATE VIRTUAL TABLE tags USING ram_index(floor=0.5)",
              "ERROR: ram_index: a table cannot be named like its column 'tags'");

    /* DROP removes every shadow table. */
    exec(db, "DROP TABLE photos");
    check_sql("index.drop", db, "SELECT count(*) FROM sqlite_schema WHERE name GLOB 'photos*'", "0");
    sqlite3_close(db);
}

/* Tag queries and the tags column follow the current thresholds, from the
** stored probabilities: no inference. */
static void test_thresholds(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) return;
    fill_src(db, 0);
    exec(db, fmt("SELECT ram_load('%s')", g_plus));
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_plus));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    long inf0 = stat_of(db, "inferences");
    /* (tag query rows come best first: sorted by path here) */
    check_sql("index.thr.model", db,
              "SELECT group_concat(p) FROM (SELECT substr(path, 8, 4) AS p FROM photos WHERE tag = 'tag6' ORDER BY 1)",
              "img0,img1,img3");
    exec(db, "SELECT ram_set_threshold('tag6', 0.8)");
    check_sql("index.thr.override", db, "SELECT group_concat(substr(path, 8, 4)) FROM photos WHERE tag = 'tag6'",
              "img0");
    check_sql("index.thr.tags_column", db, "SELECT tags FROM photos WHERE path = 'golden/img1.png'",
              "tag7 | tag8 | tag9");
    exec(db, "CREATE TABLE ram_thresholds(tag TEXT PRIMARY KEY, threshold REAL)");
    exec(db, "INSERT INTO ram_thresholds VALUES('hot dog', 0.5)");
    check_sql("index.thr.table", db,
              "SELECT group_concat(substr(path, 8, 4)) FROM (SELECT path FROM photos WHERE tag = 'hot dog' "
              "ORDER BY path)",
              "img0,img1,img3");
    check_sql("index.thr.tags_zh", db, "SELECT tags_zh FROM photos WHERE path = 'golden/img1.png'",
              "标签1 | 标签7 | 标签8 | 标签9");
    /* A name with an embedded NUL is another name, whole: 'hot dog' followed
    ** by a NUL and 300 more bytes must neither match 'hot dog' nor be read
    ** past its end (the copy once stopped at the NUL, the length did not). */
    exec(db, "INSERT INTO ram_thresholds VALUES('hot dog' || char(0) || hex(zeroblob(150)), 1.0)");
    exec(db, "SELECT ram_set_threshold('tag7' || char(0) || hex(zeroblob(150)), 1.0)");
    check_sql("index.thr.nul_name", db, "SELECT tags_zh FROM photos WHERE path = 'golden/img1.png'",
              "标签1 | 标签7 | 标签8 | 标签9");
    check(stat_of(db, "inferences") == inf0, "index.thr.no_inference", NULL);
    sqlite3_close(db);
}

/* Copies a file (for a model that changes under a table). */
static int copy_file(const char *from, const char *to)
{
    int n;
    void *b = slurp(from, &n);
    if (!b) return 1;
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(b, 1, (size_t)n, f) == (size_t)n;
    if (f) fclose(f);
    free(b);
    return !ok;
}

static void test_model_change(void)
{
    char model[512], dbfile[512];
    snprintf(model, sizeof model, "%s/model.ram", g_tmp);
    snprintf(dbfile, sizeof dbfile, "%s/model.db", g_tmp);
    unlink(dbfile);
    copy_file(g_plus, model);
    sqlite3 *db = open_db(dbfile);
    if (!db) return;
    fill_src(db, 2);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s', store_images=1)", model));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    sqlite3_close(db);

    /* The model file is replaced by another one: refused, not mixed. */
    copy_file(g_ram, model);
    db = open_db(dbfile);
    /* A new connection opens a table's model= file only when the user named
    ** it (or it lies in a model folder): the database alone does not choose
    ** (model_trust.c); the refusal names the file and how to allow it. */
    check_sql("index.model.untrusted_refused", db, "SELECT count(*) FROM photos WHERE tag = 'tag6'",
              fmt("ERROR: ram_index: table photos records the model file '%s', which is not in a folder trusted for "
                  "models (the default model's or RAM_MODEL's) nor named in this connection: a database does not "
                  "choose the files this process opens; if you trust that file, run SELECT ram_load('%s') first, or "
                  "set RAM_MODEL to it",
                  model, model));
    exec(db, fmt("SELECT ram_load('%s')", model));
    char *want = rows(db, fmt("SELECT '%s'", model));
    char *got = rows(db, "INSERT INTO photos(path, image) SELECT 'x/' || name, data FROM src");
    check(!strncmp(got, fmt("ERROR: ram_index: the model file '%s' (digest ", model),
                   strlen(fmt("ERROR: ram_index: the model file '%s' (digest ", model))) &&
              strstr(got, fmt("is not the one photos was built with (digest ")) &&
              strstr(got, fmt("to switch, run INSERT INTO photos(photos) VALUES('model=%s')", model)),
          "index.model.changed_file_refused", "%s", got);
    free(got);
    free(want);
    check_sql("index.model.scan_still_works", db, "SELECT count(*) FROM photos", "6");

    /* Switching: every row becomes stale and queries refuse to mix. */
    check_sql("index.model.switch", db, fmt("INSERT INTO photos(photos) VALUES('model=%s')", model), "");
    check_sql("index.model.stale_refused", db, "SELECT count(*) FROM photos WHERE tag = 'tag6'",
              "ERROR: ram_index: 6 images in photos were embedded with another model or preprocessing; re-insert "
              "them, or run INSERT INTO photos(photos) VALUES('reembed') or VALUES('delete-stale')");
    check_sql("index.model.stale_column", db, "SELECT count(*), sum(stale), count(tags) FROM photos", "6|6|0");
    /* Re-inserting re-embeds exactly the stale rows it meets. */
    long inf0 = stat_of(db, "inferences");
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src WHERE name GLOB 'golden/*'");
    check(stat_of(db, "inferences") - inf0 == 4, "index.model.reinsert_reembeds", "%ld",
          stat_of(db, "inferences") - inf0);
    check_sql("index.model.partly_stale", db, "SELECT sum(stale) FROM photos", "2");
    /* 'reembed' does the rest from the stored bytes. */
    inf0 = stat_of(db, "inferences");
    check_sql("index.model.reembed", db, "INSERT INTO photos(photos) VALUES('reembed')", "");
    check(stat_of(db, "inferences") - inf0 == 2, "index.model.reembed_count", "%ld", stat_of(db, "inferences") - inf0);
    check_sql("index.model.fresh", db, "SELECT sum(stale), count(*) FROM photos", "0|6");
    {
        /* RAM's tags for img0 (golden/ram). */
        char *t = rows(db, "SELECT count(*) FROM photos WHERE tag = 'tag0'");
        check(strncmp(t, "ERROR", 5), "index.model.query_after_reembed", "%s", t);
        free(t);
    }
    check_sql("index.model.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    /* A preprocessing change is a new generation too. */
    check_sql("index.prep.switch", db, "INSERT INTO photos(photos) VALUES('exif=0')", "");
    check_sql("index.prep.stale", db, "SELECT sum(stale) FROM photos", "6");
    check_sql("index.prep.delete_stale", db, "INSERT INTO photos(photos) VALUES('delete-stale')", "");
    check_sql("index.prep.after_delete", db,
              "SELECT count(*), (SELECT count(*) FROM photos_images), (SELECT count(*) FROM photos_blobs) FROM photos",
              "0|0|0");
    sqlite3_close(db);
    unlink(dbfile);
    unlink(fmt("%s-ramjournal", dbfile));
    unlink(model);
}

static void test_corruption_detected(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) return;
    fill_src(db, 0);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_plus));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    exec(db, "DELETE FROM photos_postings WHERE (tag, img) IN (SELECT tag, img FROM photos_postings LIMIT 1)");
    char *got = rows(db, "INSERT INTO photos(photos) VALUES('integrity-check')");
    check(!strncmp(got, "ERROR: ram_index: integrity-check failed: ", 42), "index.integrity.missing_posting", "%s",
          got);
    free(got);
    exec(db, "UPDATE photos_images SET nref = 5 WHERE id = 1");
    check_sql("index.integrity.nref", db, "INSERT INTO photos(photos) VALUES('integrity-check')",
              "ERROR: ram_index: integrity-check failed: 1 images have a wrong reference count");
    exec(db, "UPDATE photos_images SET nref = 1 WHERE id = 1");
    /* Damaged blobs are reported, never misread. */
    exec(db, "UPDATE photos_tokens SET tokens = substr(tokens, 1, 100) WHERE id = 2");
    check_sql("index.corrupt.tokens_match", db, "SELECT count(*) FROM photos WHERE photos MATCH 'x'",
              "ERROR: ram_index: MATCH needs a model with a CLIP text encoder (convert it with ram-convert --clip "
              "...)");
    check_sql("index.corrupt.tokens_cls", db, "SELECT cls IS NULL FROM photos WHERE rowid = 2", "1");
    got = rows(db, "INSERT INTO photos(photos) VALUES('integrity-check')");
    check(!strncmp(got, "ERROR: ram_index: integrity-check failed: ", 42), "index.corrupt.tokens_integrity", "%s", got);
    free(got);
    exec(db, "UPDATE photos_images SET probs = x'0102030405' WHERE id = 3");
    check_sql("index.corrupt.probs_tags", db, "SELECT tags IS NULL, probs IS NULL FROM photos WHERE rowid = 3", "1|1");
    exec(db, "UPDATE photos_images SET probs = randomblob(400) WHERE id = 3");
    check_sql("index.corrupt.random_probs", db, "SELECT count(*) FROM photos WHERE rowid = 3 AND tags IS NULL", "1");
    /* a row with a damaged probs blob can still be deleted, its postings with it */
    check_sql("index.corrupt.probs_delete", db, "DELETE FROM photos WHERE rowid = 3", "");
    check_sql("index.corrupt.probs_deleted", db,
              "SELECT count(*), (SELECT count(*) FROM photos_postings WHERE img = 3) FROM photos WHERE rowid = 3",
              "0|0");
    sqlite3_close(db);
    /* MATCH over a damaged token blob (a model with a text tower). */
    db = open_db(":memory:");
    fill_src(db, 0);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    exec(db, "UPDATE photos_tokens SET tokens = zeroblob(length(tokens)) WHERE id = 2");
    check_sql("index.corrupt.match", db, "SELECT count(*) FROM photos WHERE photos MATCH 'a dog'",
              "ERROR: ram_index: image 2: token cache: not a token blob");
    /* a shortened prefilter vector: an error, not an image silently missing */
    exec(db, "UPDATE photos_tokens SET tokens = (SELECT tokens FROM photos_tokens WHERE id = 1) WHERE id = 2");
    exec(db, "UPDATE photos_cls SET v = x'00' WHERE id = 1");
    check_sql("index.corrupt.cls_prefilter", db,
              "SELECT count(*) FROM photos WHERE photos MATCH 'a dog' AND k = 2 AND prefilter = 2",
              "ERROR: ram_index: image 1 has a malformed prefilter vector (run integrity-check)");
    check_sql("index.corrupt.cls_integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')",
              "ERROR: ram_index: integrity-check failed: 1 prefilter vectors have a wrong size");
    sqlite3_close(db);
}

/* ------------------------------------------------------------------ interrupt, kill, resume */

static int g_stop_after;
static void stop_after(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    if (--g_stop_after == 0) sqlite3_interrupt(sqlite3_context_db_handle(ctx));
    sqlite3_result_int(ctx, 1);
}

static void test_interrupt_resume(void)
{
    char dbfile[512];
    snprintf(dbfile, sizeof dbfile, "%s/intr.db", g_tmp);
    unlink(dbfile);
    unlink(fmt("%s-ramjournal", dbfile));
    sqlite3 *db = open_db(dbfile);
    if (!db) return;
    fill_src(db, 36);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_plus));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src WHERE rowid <= 5");
    sqlite3_create_function(db, "stop_after", 0, SQLITE_UTF8, 0, stop_after, 0, 0);
    g_stop_after = 30;
    long inf0 = stat_of(db, "inferences");
    char *got = rows(db, "INSERT INTO photos(path, image) SELECT name, data FROM src WHERE stop_after()");
    long done = stat_of(db, "inferences") - inf0;
    check(!strcmp(got, "ERROR: interrupted"), "index.interrupt.stops", "%s", got);
    free(got);
    check_sql("index.interrupt.committed_kept", db, "SELECT count(*) FROM photos", "5");
    check_sql("index.interrupt.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    long inf1 = stat_of(db, "inferences"), hit1 = stat_of(db, "journal_hits");
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    long redo = stat_of(db, "inferences") - inf1, hits = stat_of(db, "journal_hits") - hit1;
    check(hits >= 16 && hits + redo == 35 && done >= hits, "index.interrupt.resumes",
          "%ld embedded before, %ld hits, %ld redone", done, hits, redo);
    check_sql("index.interrupt.final", db, "SELECT count(*), (SELECT count(*) FROM photos_images) FROM photos",
              "40|40");
    check_sql("index.interrupt.final_integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    sqlite3_close(db);
    unlink(dbfile);
    unlink(fmt("%s-ramjournal", dbfile));
}

static void tick(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static int n;
    if (++n == 25) {
        /* Tell the parent, then wait to be killed mid-statement. */
        int fd = sqlite3_value_int(argv[0]);
        if (write(fd, "x", 1) != 1) _exit(3);
    }
    sqlite3_result_int(ctx, 1);
}

static void test_kill_resume(void)
{
    char dbfile[512];
    snprintf(dbfile, sizeof dbfile, "%s/kill.db", g_tmp);
    unlink(dbfile);
    unlink(fmt("%s-wal", dbfile));
    unlink(fmt("%s-ramjournal", dbfile));
    sqlite3 *db = open_db(dbfile);
    if (!db) return;
    exec(db, "PRAGMA journal_mode=WAL");
    fill_src(db, 56);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_plus));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src WHERE rowid <= 4");
    sqlite3_close(db);

    /* The child is a fresh process (exec): forking a process that runs
    ** BLAS and libvips thread pools is not safe. */
    int fds[2];
    if (pipe(fds)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", fds[1]);
        execl("/proc/self/exe", "test_index", "--kill-child", dbfile, fd, (char *)0);
        _exit(4);
    }
    close(fds[1]);
    char ch;
    ssize_t r = read(fds[0], &ch, 1);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    close(fds[0]);
    check(r == 1 && WIFSIGNALED(status), "index.kill.killed_mid_insert", "read %zd, status %d", r, status);

    db = open_db(dbfile);
    if (!db) return;
    exec(db, fmt("SELECT ram_load('%s')", g_plus));
    check_sql("index.kill.pragma_integrity", db, "PRAGMA integrity_check", "ok");
    check_sql("index.kill.index_integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    check_sql("index.kill.rolled_back", db, "SELECT count(*) FROM photos", "4");
    long inf0 = stat_of(db, "inferences"), hit0 = stat_of(db, "journal_hits");
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    long redo = stat_of(db, "inferences") - inf0, hits = stat_of(db, "journal_hits") - hit0;
    /* At least 20 embeddings were done before the kill (the child signals
    ** at the 25th row; 4 were indexed), and at most 7 of them can be pending
    ** in the journal (a commit every 8, or after 2 s, which on a loaded
    ** machine moves the boundaries: 14 and 15 hits were seen), so >= 13. */
    check(hits >= 13 && hits + redo == 56, "index.kill.resumes_from_journal", "%ld journal hits, %ld inferences", hits,
          redo);
    check_sql("index.kill.no_loss_no_double", db,
              "SELECT count(*), count(DISTINCT path), (SELECT count(*) FROM photos_images) FROM photos", "60|60|60");
    check_sql("index.kill.final_integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    sqlite3_close(db);
    sqlite3 *j = 0;
    if (sqlite3_open(fmt("%s-ramjournal", dbfile), &j) == SQLITE_OK)
        check_sql("index.kill.journal_forgotten", j, "SELECT count(*) FROM journal", "0");
    sqlite3_close(j);
    unlink(dbfile);
    unlink(fmt("%s-wal", dbfile));
    unlink(fmt("%s-shm", dbfile));
    unlink(fmt("%s-ramjournal", dbfile));
    unlink(fmt("%s-ramjournal-wal", dbfile));
    unlink(fmt("%s-ramjournal-shm", dbfile));
}

/* ------------------------------------------------------------------ WAL: a reader beside a writer */

struct reader_arg {
    const char *file;
    volatile int stop;
    int queries, errors;
    long long min_seen, max_seen;
    char err[256];
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    sqlite3 *db = open_db(a->file);
    if (!db) {
        a->errors++;
        return 0;
    }
    exec(db, fmt("SELECT ram_load('%s')", g_clip)); /* the table's model= file, allowed here (model_trust.c) */
    a->min_seen = 1 << 30;
    while (!a->stop) {
        long long n = num(db, "SELECT count(*) FROM photos");
        char *t = rows(db, "SELECT count(*) FROM photos WHERE tag = 'tag6' AND score > 0.2");
        char *m = rows(db, "SELECT count(*) FROM photos WHERE photos MATCH 'a photo of a red bicycle.' AND k = 3");
        if (n < 0 || !strncmp(t, "ERROR", 5) || !strncmp(m, "ERROR", 5)) {
            a->errors++;
            snprintf(a->err, sizeof a->err, "%lld / %s / %s", n, t, m);
        }
        if (n < a->min_seen) a->min_seen = n;
        if (n > a->max_seen) a->max_seen = n;
        a->queries++;
        free(t), free(m);
    }
    sqlite3_close(db);
    return 0;
}

static void test_wal_reader(void)
{
    char dbfile[512];
    snprintf(dbfile, sizeof dbfile, "%s/wal.db", g_tmp);
    unlink(dbfile);
    sqlite3 *db = open_db(dbfile);
    if (!db) return;
    exec(db, "PRAGMA journal_mode=WAL");
    fill_src(db, 60);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src WHERE rowid <= 4");
    struct reader_arg a = {dbfile, 0, 0, 0, 0, 0, ""};
    pthread_t th;
    pthread_create(&th, 0, reader_main, &a);
    int rc = exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    usleep(100000);
    a.stop = 1;
    pthread_join(th, 0);
    check(rc == SQLITE_OK, "index.wal.writer", NULL);
    check(a.errors == 0 && a.queries > 0, "index.wal.reader_queries", "%d queries, %d errors: %s", a.queries, a.errors,
          a.err);
    check(a.min_seen == 4 || a.min_seen == 64, "index.wal.reader_snapshot", "saw %lld..%lld rows", a.min_seen,
          a.max_seen);
    printf("# WAL reader: %d queries during the write, saw %lld..%lld rows\n", a.queries, a.min_seen, a.max_seen);
    sqlite3_close(db);
    unlink(dbfile);
    unlink(fmt("%s-wal", dbfile));
    unlink(fmt("%s-shm", dbfile));
    unlink(fmt("%s-ramjournal", dbfile));
}

/* The child of test_kill_resume: a long INSERT that the parent kills. */
static int kill_child(const char *dbfile, int fd)
{
    sqlite3 *c = open_db(dbfile);
    if (!c) return 5;
    exec(c, fmt("SELECT ram_load('%s')", g_plus)); /* the table's model= file, allowed here (model_trust.c) */
    sqlite3_create_function(c, "tick", 1, SQLITE_UTF8, 0, tick, 0, 0);
    sqlite3_exec(c, fmt("INSERT INTO photos(path, image) SELECT name, data FROM src WHERE tick(%d)", fd), 0, 0, 0);
    return 0; /* not reached when killed in time */
}

/* A command undone by a rollback (of the transaction, a savepoint, or an
** interrupted statement) is undone in memory too: rows written afterwards
** belong to a generation the table has, and integrity-check passes, also
** after reopening. A failed model= leaves the table usable. */
static void test_rollback_commands(void)
{
    char dbfile[512];
    snprintf(dbfile, sizeof dbfile, "%s/rollback.db", g_tmp);
    unlink(dbfile);
    sqlite3 *db = open_db(dbfile);
    if (!db) return;
    fill_src(db, 0);
    exec(db, fmt("SELECT ram_load('%s')", g_plus));
    exec(db, "CREATE VIRTUAL TABLE p USING ram_index(store_images=1)");
    exec(db, "INSERT INTO p(path, image) SELECT name, data FROM src WHERE name GLOB '*img0*'");
    const char *ins = "INSERT INTO p(path, image) SELECT '%s', data FROM src WHERE name GLOB '*img%d*'";
    const char *good = "SELECT (SELECT sum(stale) FROM p), (SELECT count(*) FROM p WHERE tag = 'hot dog') >= 0";

    exec(db, "BEGIN; INSERT INTO p(p) VALUES('exif=0'); ROLLBACK");
    exec(db, fmt(ins, "a", 1));
    check_sql("index.rollback.txn", db, good, "0|1");
    check_sql("index.rollback.txn_integrity", db, "INSERT INTO p(p) VALUES('integrity-check')", "");

    exec(db, "BEGIN; SAVEPOINT s; INSERT INTO p(p) VALUES('exif=0'); ROLLBACK TO s; RELEASE s; COMMIT");
    exec(db, fmt(ins, "b", 2));
    check_sql("index.rollback.savepoint", db, good, "0|1");

    exec(db, fmt("BEGIN; INSERT INTO p(p) VALUES('model=%s'); ROLLBACK", g_plus));
    exec(db, fmt(ins, "c", 3));
    check_sql("index.rollback.model", db, good, "0|1");
    check_sql("index.rollback.model_config", db, "SELECT quote(value) FROM p_config WHERE key = 'model'", "NULL");

    /* interrupted inside a transaction: SQLite rolls all of it back */
    sqlite3_create_function(db, "stop_after", 0, SQLITE_UTF8, 0, stop_after, 0, 0);
    exec(db, "BEGIN; INSERT INTO p(p) VALUES('exif=0')");
    g_stop_after = 2;
    char *r = rows(db, "INSERT INTO p(path, image) SELECT 'z/' || name, data FROM src WHERE stop_after()");
    check(!strcmp(r, "ERROR: interrupted") && sqlite3_get_autocommit(db), "index.rollback.interrupted", "%s", r);
    free(r);
    if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
    exec(db, fmt(ins, "d", 1));
    check_sql("index.rollback.interrupt", db, good, "0|1");

    /* a failed model= (not a model file) changes nothing */
    r = rows(db, "INSERT INTO p(p) VALUES('model=/dev/null')");
    check(!strncmp(r, "ERROR: ram_index: cannot load the model '/dev/null'", 51), "index.model.bad_switch_error", "%s",
          r);
    free(r);
    check_sql("index.model.bad_switch_table_usable", db, good, "0|1");
    exec(db, fmt(ins, "e", 2));
    check_sql("index.model.bad_switch_insert", db, "SELECT count(*) FROM p", "6");
    sqlite3_close(db);

    db = open_db(dbfile);
    if (!db) return;
    exec(db, fmt("SELECT ram_load('%s')", g_plus));
    check_sql("index.rollback.reopened", db, "INSERT INTO p(p) VALUES('integrity-check')", "");
    check_sql("index.rollback.reopened_fresh", db, good, "0|1");
    /* model='' is an error that says so, not "out of memory" */
    check_sql("index.create.model_empty", db, "CREATE VIRTUAL TABLE q USING ram_index(model='')",
              "ERROR: ram_index: model= needs the path of a model file (leave it out to use the connection's model)");
    /* a tampered config size is a corrupt table, not an allocation of gigabytes */
    exec(db, "UPDATE p_config SET value = 2147483647 WHERE key = 'num_class'");
    sqlite3_close(db);
    db = open_db(dbfile);
    if (!db) return;
    r = rows(db, "SELECT count(*) FROM p");
    check(strstr(r, "p_config holds impossible sizes") != NULL, "index.config.impossible_sizes", "%s", r);
    free(r);
    sqlite3_close(db);
    unlink(dbfile);
    unlink(fmt("%s-ramjournal", dbfile));
}

/* MATCH lists: the reason of a refused list is the parser's, not a guess. */
static void test_match_lists(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db) return;
    fill_src(db, 0);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    check_sql("index.match.empty_list", db, "SELECT count(*) FROM photos WHERE photos MATCH '[]'",
              "ERROR: ram_index: MATCH is an empty JSON array (give at least one description)");
    check_sql("index.match.not_string", db, "SELECT count(*) FROM photos WHERE photos MATCH '[\"a dog\", 7]'",
              "ERROR: ram_index: MATCH: item 2 of the JSON array is not a string");
    check_sql("index.match.over_cap", db,
              "SELECT count(*) FROM photos WHERE photos MATCH (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "
              "SELECT i + 1 FROM c WHERE i < 262145) SELECT json_group_array('') FROM c) AND k = 2",
              "ERROR: ram_index: MATCH has 262145 descriptions; the limit is 262144");
    check_sql("index.match.list_works", db,
              "SELECT count(*) FROM photos WHERE photos MATCH '[\"a dog\", \"a hot dog\"]' AND k = 2", "2");
    sqlite3_close(db);
}

/* ------------------------------------------------------------------ the prefilter cascade, postings in score order */

/* Turns table zName of schema 4 into the schema 3 layout that builds before
** it wrote (postings keyed (tag, img), no codes), as an old file has it. */
static void make_schema3(sqlite3 *db, const char *zName)
{
    exec(db, fmt("DROP TABLE %s_codes;"
                 "CREATE TABLE %s_p3(tag INTEGER, img INTEGER, score INTEGER NOT NULL, PRIMARY KEY(tag, img)) "
                 "WITHOUT ROWID;"
                 "INSERT INTO %s_p3 SELECT tag, img, score FROM %s_postings; DROP TABLE %s_postings;"
                 "ALTER TABLE %s_p3 RENAME TO %s_postings;"
                 "UPDATE %s_config SET value = 3 WHERE key = 'version'; DELETE FROM %s_config WHERE key = 'cascade';",
                 zName, zName, zName, zName, zName, zName, zName, zName, zName));
}

/* A copy zName of the table photos (by entry), made schema 3. */
static void add_schema3_copy(sqlite3 *db, const char *zName)
{
    exec(db, fmt("CREATE VIRTUAL TABLE %s USING ram_index(model='%s')", zName, g_clip));
    exec(db, fmt("INSERT INTO %s(path, entry) SELECT path, entry FROM photos", zName));
    make_schema3(db, zName);
}

/* db closed and file a opened again, the test model loaded: the tables are
** read afresh (a schema-3 layout made under a connection is seen as such). */
static sqlite3 *reopen_loaded(sqlite3 *db, const char *a)
{
    sqlite3_close(db);
    db = open_db(a);
    if (db) exec(db, fmt("SELECT ram_load('%s')", g_clip));
    return db;
}

static void test_cascade(void)
{
    char a[300];
    snprintf(a, sizeof a, "%s.cascade.db", g_tmp);
    unlink(a);
    sqlite3 *db = open_db(a);
    if (!db) return;
    fill_src(db, 6);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s', cascade=3)", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    exec(db, "INSERT INTO photos(photos) VALUES('refit=0')"); /* the cascade of the codes (test_refit: the other) */
    long long n = num(db, "SELECT count(*) FROM photos_images");
    const char *q = "SELECT path, printf('%.9g', score) FROM photos WHERE photos MATCH 'a red bicycle'";
    char topk[256];
    char *exact = rows(db, q);
    /* Survivors covering every image: exactly the exhaustive ranking. */
    exec(db, "INSERT INTO photos(photos) VALUES('cascade=100')");
    char *all = rows(db, fmt("%s AND prefilter = 100", q));
    check(!strcmp(exact, all) && strlen(exact) > 40, "index.cascade.covers_all_exact", "exhaustive:\n%s\ncascade:\n%s",
          exact, all);
    free(all);
    /* The stages: every code, cascade int8 cosines, prefilter exact scores. */
    exec(db, "INSERT INTO photos(photos) VALUES('cascade=3')");
    long c0 = stat_of(db, "codes_scanned"), p0 = stat_of(db, "prefilter_scanned"), s0 = stat_of(db, "images_scored");
    check_sql("index.cascade.rows", db, fmt("SELECT count(*) FROM (%s AND k = 2 AND prefilter = 2)", q), "2");
    check(stat_of(db, "codes_scanned") - c0 == n && stat_of(db, "prefilter_scanned") - p0 == 3 &&
              stat_of(db, "images_scored") - s0 == 2,
          "index.cascade.stages", "%lld images: %ld codes, %ld int8, %ld exact", n, stat_of(db, "codes_scanned") - c0,
          stat_of(db, "prefilter_scanned") - p0, stat_of(db, "images_scored") - s0);
    /* The codes stay in memory until a write: by this connection, or by another. */
    long l0 = stat_of(db, "codes_loaded");
    c0 = stat_of(db, "codes_scanned");
    free(rows(db, fmt("%s AND k = 2 AND prefilter = 2", q)));
    check(stat_of(db, "codes_loaded") == l0 && stat_of(db, "codes_scanned") - c0 == n, "index.cascade.cached",
          "%ld loaded, %ld compared", stat_of(db, "codes_loaded") - l0, stat_of(db, "codes_scanned") - c0);
    exec(db, "INSERT INTO photos(path, entry) SELECT 'copy', entry FROM photos WHERE rowid = 1"); /* same image */
    /* another key: a new image entry with the same embeddings (an entry is not re-hashed) */
    exec(db, "INSERT INTO photos(path, entry) SELECT 'twin', CAST(substr(entry, 1, 64) || "
             "x'0123456789abcdef0123456789abcdef' "
             "|| substr(entry, 81) AS BLOB) FROM photos WHERE rowid = 2");
    l0 = stat_of(db, "codes_loaded");
    exec(db, "INSERT INTO photos(photos) VALUES('cascade=100')");
    all = rows(db, fmt("%s AND prefilter = 100", q));
    char *exact2 = rows(db, q);
    check(!strcmp(all, exact2) && stat_of(db, "codes_loaded") - l0 == n + 1, "index.cascade.reload_own_write",
          "%ld loaded\n%s\nexact:\n%s", stat_of(db, "codes_loaded") - l0, all, exact2);
    free(all), free(exact2);
    sqlite3 *db2 = open_db(a);
    exec(db2, fmt("SELECT ram_load('%s')", g_clip));
    exec(db2, "DELETE FROM photos WHERE path IN ('copy', 'twin')");
    sqlite3_close(db2);
    l0 = stat_of(db, "codes_loaded");
    all = rows(db, fmt("%s AND prefilter = 100", q));
    check(!strcmp(all, exact) && stat_of(db, "codes_loaded") - l0 == n, "index.cascade.reload_other_connection",
          "%ld loaded\n%s", stat_of(db, "codes_loaded") - l0, all);
    free(all);
    exec(db, "INSERT INTO photos(photos) VALUES('cascade=3')");
    /* prefilter above cascade: at least prefilter survive the 1-bit stage */
    p0 = stat_of(db, "prefilter_scanned");
    check_sql("index.cascade.prefilter_above", db, fmt("SELECT count(*) FROM (%s AND k = 2 AND prefilter = 5)", q),
              "2");
    check(stat_of(db, "prefilter_scanned") - p0 == 5, "index.cascade.prefilter_above_count", "%ld",
          stat_of(db, "prefilter_scanned") - p0);
    /* cascade=0: no 1-bit stage, the int8 vector of every image */
    exec(db, "INSERT INTO photos(photos) VALUES('cascade=0')");
    c0 = stat_of(db, "codes_scanned"), p0 = stat_of(db, "prefilter_scanned");
    free(rows(db, fmt("%s AND k = 2 AND prefilter = 2", q)));
    check(stat_of(db, "codes_scanned") == c0 && stat_of(db, "prefilter_scanned") - p0 == n, "index.cascade.off",
          "%ld codes, %ld int8", stat_of(db, "codes_scanned") - c0, stat_of(db, "prefilter_scanned") - p0);
    exec(db, "INSERT INTO photos(photos) VALUES('cascade=3')");
    /* Bad options. */
    const char *bad = "ram_index: cascade must be a count of images (0 or more; 0 reads the int8 prefilter vector "
                      "of every image), got ";
    check_sql("index.cascade.bad_option", db,
              fmt("CREATE VIRTUAL TABLE t2 USING ram_index(model='%s', cascade=-1)", g_clip),
              fmt("ERROR: %s'-1'", bad));
    check_sql("index.cascade.bad_command", db, "INSERT INTO photos(photos) VALUES('cascade=many')",
              fmt("ERROR: %s'many'", bad));
    check_sql("index.cascade.empty_command", db, "INSERT INTO photos(photos) VALUES('cascade=')",
              fmt("ERROR: %s''", bad));
    check_sql("index.cascade.kept", db, "SELECT value FROM photos_config WHERE key = 'cascade'", "3");
    /* Tag top-k: the postings best first, ORDER BY consumed, about LIMIT read. */
    long long tag = num(db, "SELECT tag FROM photos_postings GROUP BY tag ORDER BY count(*) DESC, tag LIMIT 1");
    long long nTag = num(db, fmt("SELECT count(*) FROM photos_postings WHERE tag = %lld", tag));
    char *want = rows(db, fmt("SELECT f.path FROM photos_postings p JOIN photos_files f ON f.img = p.img "
                              "WHERE p.tag = %lld ORDER BY p.score DESC LIMIT 3",
                              tag));
    snprintf(topk, sizeof topk,
             "SELECT path FROM photos WHERE tag = %lld AND score >= 0.01 ORDER BY score DESC LIMIT 3", tag);
    long r0 = stat_of(db, "postings_read");
    char *got = rows(db, topk);
    long nRead = stat_of(db, "postings_read") - r0;
    check(!strcmp(got, want) && nTag > 5, "index.topk.order", "tag %lld (%lld postings):\n%s\nwant:\n%s", tag, nTag,
          got, want);
    check(nRead == 3, "index.topk.postings_read", "%ld postings read for LIMIT 3 of %lld", nRead, nTag);
    free(got), free(want);
    check_plan("index.topk.plan", db, topk, "SCAN photos VIRTUAL TABLE INDEX 1059:tag+score by score");
    /* tag IN (...): SQLite sorts (each value is filtered on its own). */
    want = rows(db, fmt("SELECT f.path FROM photos_postings p JOIN photos_files f ON f.img = p.img "
                        "WHERE p.tag IN (%lld, 0) AND p.score > 1065353216 * 0 ORDER BY p.score DESC LIMIT 4",
                        tag));
    got = rows(
        db, fmt("SELECT path FROM photos WHERE tag IN (%lld, 0) AND score >= 0.01 ORDER BY score DESC LIMIT 4", tag));
    check(!strcmp(got, want), "index.topk.in_sorted", "%s\nwant:\n%s", got, want);
    free(got), free(want);
    check_sql("index.cascade.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    /* Old databases: a schema-3 table answers (the int8 scan, sorted tag
    ** queries) and is upgraded by 'upgrade' or its first write. */
    db = reopen_loaded(db, a);
    add_schema3_copy(db, "old2");
    make_schema3(db, "photos");
    db = reopen_loaded(db, a);
    check_sql("index.old.version", db, "SELECT value FROM photos_config WHERE key = 'version'", "3");
    c0 = stat_of(db, "codes_scanned"), p0 = stat_of(db, "prefilter_scanned");
    all = rows(db, fmt("%s AND prefilter = 100", q));
    check(!strcmp(exact, all), "index.old.match", "old:\n%s\nnew:\n%s", all, exact);
    check(stat_of(db, "codes_scanned") == c0 && stat_of(db, "prefilter_scanned") - p0 == n, "index.old.int8_scan",
          "%ld codes, %ld int8", stat_of(db, "codes_scanned") - c0, stat_of(db, "prefilter_scanned") - p0);
    free(all);
    r0 = stat_of(db, "postings_read");
    want = rows(db, topk);
    check(stat_of(db, "postings_read") - r0 == nTag, "index.old.topk_reads_all", "%ld postings read of %lld",
          stat_of(db, "postings_read") - r0, nTag);
    /* a first write that fails takes its upgrade back with it */
    check_sql("index.old.failed_write", db, "INSERT INTO photos(path, image) VALUES('x', 'not an image')",
              "ERROR: ram_index: image must be a BLOB of encoded image bytes, got TEXT");
    check_sql("index.old.failed_write_undone", db,
              "SELECT (SELECT value FROM photos_config WHERE key = 'version'), (SELECT count(*) FROM sqlite_schema "
              "WHERE name = 'photos_codes')",
              "3|0");
    check_sql("index.old.failed_write_topk", db, topk, want);
    check_sql("index.old.upgrade", db, "INSERT INTO photos(photos) VALUES('upgrade')", "");
    check_sql("index.old.upgraded", db,
              "SELECT (SELECT value FROM photos_config WHERE key = 'version'), (SELECT count(*) FROM photos_codes), "
              "(SELECT count(*) FROM photos_cls)",
              fmt("4|%lld|%lld", n, n));
    check_sql("index.old.integrity", db, "INSERT INTO photos(photos) VALUES('integrity-check')", "");
    r0 = stat_of(db, "postings_read");
    check_sql("index.old.topk_same", db, topk, want);
    check(stat_of(db, "postings_read") - r0 == 3, "index.old.topk_index", "%ld postings read",
          stat_of(db, "postings_read") - r0);
    free(want);
    c0 = stat_of(db, "codes_scanned");
    all = rows(db, fmt("%s AND prefilter = 100", q));
    check(!strcmp(exact, all) && stat_of(db, "codes_scanned") - c0 == n, "index.old.cascade", "%s", all);
    free(all);
    /* the first write upgrades */
    check_sql("index.old.write", db, "DELETE FROM old2 WHERE rowid = 1", "");
    check_sql("index.old.write_upgraded", db,
              "SELECT (SELECT value FROM old2_config WHERE key = 'version'), (SELECT count(*) FROM old2_codes), "
              "(SELECT count(*) FROM old2_cls)",
              fmt("4|%lld|%lld", n - 1, n - 1));
    check_sql("index.old.write_integrity", db, "INSERT INTO old2(old2) VALUES('integrity-check')", "");
    /* A rename carries the shadow tables' indexes (the upgrade's postings
    ** index too) along under the new name (ALTER TABLE keeps an index's name):
    ** the old name is free again, for a schema-3 table of that name to be
    ** made and upgraded in turn. */
    exec(db, "ALTER TABLE old2 RENAME TO old3");
    check_sql("index.old.rename_index", db,
              "SELECT name || ' ON ' || tbl_name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'old%' "
              "ORDER BY name",
              "old3_files_img ON old3_files\nold3_images_gen ON old3_images\nold3_postings_score ON old3_postings");
    check_sql("index.old.rename_integrity", db, "INSERT INTO old3(old3) VALUES('integrity-check')", "");
    add_schema3_copy(db, "old2");
    db = reopen_loaded(db, a);
    check_sql("index.old.upgrade_after_rename", db, "INSERT INTO old2(old2) VALUES('upgrade')", "");
    check_sql("index.old.upgraded_after_rename", db,
              "SELECT (SELECT value FROM old2_config WHERE key = 'version'), (SELECT group_concat(tbl_name) FROM "
              "sqlite_schema WHERE name = 'old2_postings_score')",
              "4|old2_postings");
    /* A code that is not its vector's is caught. */
    exec(db, "UPDATE photos_codes SET c = zeroblob(length(c)) WHERE id = 2");
    check_sql("index.cascade.integrity_code", db, "INSERT INTO photos(photos) VALUES('integrity-check')",
              "ERROR: ram_index: integrity-check failed: image 2 has a code that is not its prefilter vector's");
    exec(db, "DELETE FROM photos_codes WHERE id = 2");
    check_sql("index.cascade.integrity_missing", db, "INSERT INTO photos(photos) VALUES('integrity-check')",
              fmt("ERROR: ram_index: integrity-check failed: %lld codes, %lld prefilter vectors", n - 1, n));
    free(exact);
    sqlite3_close(db);
    unlink(a);
}

/* ------------------------------------------------------------------ the refit cascade */

static long g_progress, g_progress_stop;
static int progress_count(void *db)
{
    if (++g_progress == g_progress_stop) sqlite3_interrupt(db);
    return 0;
}

/* MATCH with prefilter = N by default: N exact scores, chosen in rounds by
** a ridge fit on the principal axes of the stored CLS (docs/SCALE.md). */
static void test_refit(void)
{
    char a[300];
    snprintf(a, sizeof a, "%s.refit.db", g_tmp);
    unlink(a);
    sqlite3 *db = open_db(a);
    if (!db) return;
    fill_src(db, 6);
    exec(db, fmt("CREATE VIRTUAL TABLE photos USING ram_index(model='%s')", g_clip));
    exec(db, "INSERT INTO photos(path, image) SELECT name, data FROM src");
    long long n = num(db, "SELECT count(*) FROM photos_images");
    const char *q = "SELECT path, printf('%.9g', score) FROM photos WHERE photos MATCH 'a red bicycle'";
    char *exact = rows(db, q);
    /* a budget of the whole table: exactly the exhaustive ranking */
    long s0 = stat_of(db, "images_scored"), p0 = stat_of(db, "prefilter_scanned"), c0 = stat_of(db, "codes_scanned");
    char *all = rows(db, fmt("%s AND prefilter = 100", q));
    check(!strcmp(exact, all) && strlen(exact) > 40 && stat_of(db, "images_scored") - s0 == n &&
              stat_of(db, "codes_scanned") == c0,
          "index.refit.covers_all_exact", "%ld scored\nexhaustive:\n%s\nrefit:\n%s", stat_of(db, "images_scored") - s0,
          exact, all);
    free(all);
    /* below: prefilter exact scores, the fit ranks every picture, the same answer every run */
    s0 = stat_of(db, "images_scored"), p0 = stat_of(db, "prefilter_scanned");
    char *one = rows(db, fmt("%s AND k = 3 AND prefilter = 6", q));
    check(stat_of(db, "images_scored") - s0 == 6 && stat_of(db, "prefilter_scanned") - p0 == n, "index.refit.budget",
          "%ld scored, %ld ranked of %lld", stat_of(db, "images_scored") - s0, stat_of(db, "prefilter_scanned") - p0,
          n);
    char *two = rows(db, fmt("%s AND k = 3 AND prefilter = 6", q));
    check(!strcmp(one, two) && strlen(one) > 20, "index.refit.deterministic", "%s\nthen\n%s", one, two);
    free(two);
    /* its scores are the exact ones: each row is in the exhaustive list */
    char *line = strtok(one, "\n");
    int nIn = 0;
    for (; line; line = strtok(0, "\n")) nIn += strstr(exact, line) != 0;
    check(nIn == 3, "index.refit.exact_scores", "%d of 3 rows with their exhaustive score", nIn);
    free(one);
    /* interrupted mid-query (a third into its statements: the token reads): SQLITE_INTERRUPT, then answers again */
    g_progress = 0, g_progress_stop = -1;
    sqlite3_progress_handler(db, 1, progress_count, db);
    free(rows(db, fmt("%s AND k = 1 AND prefilter = 8", q)));
    long nOps = g_progress;
    g_progress = 0, g_progress_stop = nOps / 3;
    s0 = stat_of(db, "images_scored");
    char *got = rows(db, fmt("%s AND k = 1 AND prefilter = 8", q));
    int rcInt = sqlite3_errcode(db);
    sqlite3_progress_handler(db, 0, 0, 0);
    long nScored = stat_of(db, "images_scored") - s0;
    check(!strcmp(got, "ERROR: interrupted") && rcInt == SQLITE_INTERRUPT && nOps > 40 && nScored < 8,
          "index.refit.interrupt", "%s (rc %d, %ld steps, %ld scored)", got, rcInt, nOps, nScored);
    free(got);
    check_sql("index.refit.after_interrupt", db, fmt("%s AND prefilter = 100", q), exact);
    /* a write by another connection: the copy and its axes are made again */
    sqlite3 *db2 = open_db(a);
    exec(db2, fmt("SELECT ram_load('%s')", g_clip));
    exec(db2, "DELETE FROM photos WHERE rowid = 1");
    sqlite3_close(db2);
    char *exact2 = rows(db, q);
    g_progress = 0, g_progress_stop = -1;
    sqlite3_progress_handler(db, 1, progress_count, db);
    check_sql("index.refit.after_write", db, fmt("%s AND prefilter = 100", q), exact2);
    long nMake = g_progress; /* the copy made, then the same query on it */
    g_progress = 0;
    free(rows(db, fmt("%s AND prefilter = 100", q)));
    long nKept = g_progress;
    /* interrupted while the copy is made, right after a commit by another connection (review item 14):
    ** halfway through the statements the copy adds, before any score */
    db2 = open_db(a);
    exec(db2, fmt("SELECT ram_load('%s')", g_clip));
    exec(db2, "INSERT INTO photos(photos) VALUES('refit=64')");
    sqlite3_close(db2);
    g_progress = 0, g_progress_stop = (nMake - nKept) / 2;
    s0 = stat_of(db, "images_scored");
    got = rows(db, fmt("%s AND prefilter = 100", q));
    rcInt = sqlite3_errcode(db);
    sqlite3_progress_handler(db, 0, 0, 0);
    check(!strcmp(got, "ERROR: interrupted") && rcInt == SQLITE_INTERRUPT && nMake - nKept > 1000 &&
              stat_of(db, "images_scored") == s0,
          "index.refit.interrupt_copy", "%s (rc %d, %ld + %ld steps, %ld scored)", got, rcInt, nKept, nMake - nKept,
          stat_of(db, "images_scored") - s0);
    free(got);
    check_sql("index.refit.after_interrupt_copy", db, fmt("%s AND prefilter = 100", q), exact2);
    free(exact2);
    /* refit=0 is the cascade of the codes and frees the copy at once (review item 16); bad values are refused */
    sqlite3_int64 mem0 = sqlite3_memory_used();
    exec(db, "INSERT INTO photos(photos) VALUES('refit=0')");
    sqlite3_int64 mem1 = sqlite3_memory_used();
    check(mem0 - mem1 >= 4096, "index.refit.off_frees", "%lld bytes before, %lld after", (long long)mem0,
          (long long)mem1);
    c0 = stat_of(db, "codes_scanned");
    free(rows(db, fmt("%s AND k = 2 AND prefilter = 2", q)));
    check(stat_of(db, "codes_scanned") - c0 == n - 1, "index.refit.off", "%ld codes",
          stat_of(db, "codes_scanned") - c0);
    check_sql("index.refit.bad", db, "INSERT INTO photos(photos) VALUES('refit=1000')",
              "ERROR: ram_index: refit must be a count of axes from 0 (off) to 256 and at most the embedding width, "
              "got '1000'");
    check_sql("index.refit.bad_text", db, "INSERT INTO photos(photos) VALUES('refit=x')",
              "ERROR: ram_index: refit must be a count of axes from 0 (off) to 256 and at most the embedding width, "
              "got 'x'");
    exec(db, "INSERT INTO photos(photos) VALUES('refit=5')");
    check_sql("index.refit.kept", db, "SELECT value FROM photos_config WHERE key = 'refit'", "5");
    /* with k and a budget over 4 x (2k + 32) the rounds may score in bf16 (on CPUs that have it) and
    ** rescore their best 2k + 32 exactly: the answer is still the exhaustive one, scores and all
    ** (20 copies of each picture by entry, new keys: 180 images) */
    exec(db, fmt("CREATE VIRTUAL TABLE big USING ram_index(model='%s')", g_clip));
    exec(db, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20) "
             "INSERT INTO big(path, entry) SELECT path || '#' || i, CAST(substr(entry, 1, 64) || randomblob(16) || "
             "substr(entry, 81) AS BLOB) FROM photos, c ORDER BY i, photos.rowid");
    long long nBig = num(db, "SELECT count(*) FROM big_images");
    const char *qb = "SELECT path, printf('%.9g', score) FROM big WHERE big MATCH 'a red bicycle' AND k = 2";
    char *exactBig = rows(db, qb);
    s0 = stat_of(db, "images_scored");
    check_sql("index.refit.approx_whole_table", db, fmt("%s AND prefilter = %lld", qb, nBig), exactBig);
    long nBigScored = stat_of(db, "images_scored") - s0; /* + 36 rescored when the bf16 rounds ran */
    printf("# refit on %lld images, k = 2: %ld scores (%s)\n", nBig, nBigScored,
           nBigScored == nBig + 36 ? "bf16 rounds, 36 rescored exactly" : "exact rounds: no bf16 on this CPU");
    check(nBig == 20 * (n - 1) && (nBigScored == nBig || nBigScored == nBig + 36), "index.refit.approx_table",
          "%lld images, %ld scored", nBig, nBigScored);
    /* a k whose 2k + 32 passes INT_MAX (review item 11): exact rounds, every picture once */
    s0 = stat_of(db, "images_scored");
    char *hugeK = rows(db, fmt("SELECT count(*) FROM big WHERE big MATCH 'a red bicycle' AND k = 1500000000 AND "
                               "prefilter = %lld",
                               nBig));
    check(atoll(hugeK) == nBig && stat_of(db, "images_scored") - s0 == nBig, "index.refit.huge_k",
          "%s rows, %ld scored of %lld", hugeK, stat_of(db, "images_scored") - s0, nBig);
    free(hugeK);
    /* a budget of a third of the table (review item 6): the anchors, the fits and the rounds choose, and
    ** the top 3 scores are the exhaustive ones (copies of one picture tie: the scores are compared) */
    const char *qs = "SELECT group_concat(s, ' ') FROM (SELECT printf('%.9g', score) AS s FROM big WHERE big MATCH "
                     "'a red bicycle' AND k = 3";
    char *top3 = rows(db, fmt("%s)", qs));
    s0 = stat_of(db, "images_scored");
    char *top3Refit = rows(db, fmt("%s AND prefilter = 60)", qs));
    check(!strcmp(top3, top3Refit) && stat_of(db, "images_scored") - s0 <= 60, "index.refit.top3",
          "exhaustive %s, refit %s (%ld scored)", top3, top3Refit, stat_of(db, "images_scored") - s0);
    free(top3), free(top3Refit);
    free(exactBig);
    exec(db, "DROP TABLE big");
    /* an old file (schema 3, no codes, no refit key) answers with the refit cascade */
    make_schema3(db, "photos");
    exec(db, "DELETE FROM photos_config WHERE key = 'refit'");
    db = reopen_loaded(db, a);
    exact2 = rows(db, q);
    s0 = stat_of(db, "images_scored");
    check_sql("index.refit.old_file", db, fmt("%s AND prefilter = 100", q), exact2);
    free(rows(db, fmt("%s AND k = 2 AND prefilter = 3", q)));
    check(stat_of(db, "images_scored") - s0 == n - 1 + 3, "index.refit.old_file_budget", "%ld scored",
          stat_of(db, "images_scored") - s0);
    free(exact2);
    free(exact);
    sqlite3_close(db);
    unlink(a);
}

int main(int argc, char **argv)
{
    const char *build = getenv("RAM_BUILD") ? getenv("RAM_BUILD") : "build";
    snprintf(g_so, sizeof g_so, "%s", getenv("RAM_SO") ? getenv("RAM_SO") : fmt("%s/ram", build));
    snprintf(g_clip, sizeof g_clip, "%s/models/golden_ram_plus_clip.ram", build);
    snprintf(g_plus, sizeof g_plus, "%s/models/golden_ram_plus.ram", build);
    snprintf(g_ram, sizeof g_ram, "%s/models/golden_ram.ram", build);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_index.%d", (int)getpid());
    if (argc == 1) mkdir(g_tmp, 0700);
    if (VIPS_INIT("test_index")) {
        check(0, "index.vips", "%s", vips_error_buffer());
        return harness_exit();
    }
    (void)check_close_npy;
    if (argc == 4 && !strcmp(argv[1], "--kill-child")) return kill_child(argv[2], atoi(argv[3]));
    test_session();
    test_duplicates_and_writes();
    test_thresholds();
    test_model_change();
    test_rollback_commands();
    test_match_lists();
    test_cascade();
    test_refit();
    test_filters();
    test_entries();
    test_on_error_skip();
    test_corruption_detected();
    test_interrupt_resume();
    test_kill_resume();
    test_wal_reader();
    rmdir(g_tmp);
    return harness_exit();
}
