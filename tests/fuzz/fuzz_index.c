/*
** fuzz_index.c — the ram_index virtual table and arbitrary SQL, on a fresh
** in-memory database per input whose connection has the extension and
** build/models/golden_ram_plus_clip.ram loaded.
**
** The input is read as a program: up to 24 statements, each picked by one
** byte from the templates below and filled from the following bytes:
** CREATE VIRTUAL TABLE with arbitrary option lists (known keys with odd
** values, raw option text), INSERT/UPDATE/DELETE with bound values of any
** type (golden images, truncated or arbitrary blobs, ram_embed blobs, text,
** numbers, NULL), SELECT with every constraint the table plans for (tag,
** tag IN, score bounds, MATCH, k, prefilter, rowid, path, LIMIT, ORDER BY),
** the table's commands, transactions and savepoints, ALTER TABLE RENAME,
** DROP, threshold overrides, the scalar functions, ram_load of another
** model, and raw SQL text taken from the input.
**
** Nothing can run long or touch the file system: every input gets at most
** FUZZ_INDEX_STEPS progress callbacks (1,000 VM instructions each) and 3 s
** of wall time, then the statement is interrupted (the extension checks
** sqlite3_is_interrupted between images and network stages); SQLITE_LIMIT_*
** bound lengths, depth and columns, and no database can be attached. Model
** paths come from a fixed list; raw text (SQL, options, commands) has every
** '/' turned into '_' so a path never leaves the repository, and raw SQL
** runs under an authorizer refusing ATTACH, PRAGMA, CREATE VIRTUAL TABLE,
** ram_load, ram_set_max_pixels and load_extension (and VACUUM is skipped).
**
** With FUZZ_STATIC_EXT (make fuzz) the extension is linked in and registered
** with sqlite3_auto_extension; otherwise $RAM_BUILD/ram.so is loaded into
** every connection. A connection that lives for the whole process keeps the
** model mapped (the registry would unmap it with its last user).
*/
#include "fuzz.h"
#include <sqlite3.h>
#include <strings.h>
#include <time.h>

#ifdef FUZZ_STATIC_EXT
int sqlite3_ram_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);
#endif

#define FUZZ_INDEX_STEPS 20000 /* progress callbacks per input */
#define FUZZ_INDEX_STMTS 24    /* statements per input */

static sqlite3 *fuzz_index_anchor;
static void *fuzz_index_img[4];
static int fuzz_index_img_n[4];
static void *fuzz_index_emb[2];
static int fuzz_index_emb_n[2];
static char fuzz_index_model[3][512];
static int fuzz_index_steps;
static struct timespec fuzz_index_t0;
static int fuzz_index_raw; /* raw SQL running: the authorizer refuses more */
static int fuzz_index_trace;

static void fuzz_index_die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_index: %s: %s\n", what, msg ? msg : "?");
    abort();
}

static void *fuzz_index_readf(const char *path, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) fuzz_index_die("cannot open", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)len + 1);
    if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) fuzz_index_die("cannot read", path);
    fclose(f);
    *n = (int)len;
    return b;
}

static int fuzz_index_progress(void *arg)
{
    (void)arg;
    if (++fuzz_index_steps > FUZZ_INDEX_STEPS) return 1;
    if ((fuzz_index_steps & 63) == 0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - fuzz_index_t0.tv_sec > 3) return 1;
    }
    return 0;
}

static int fuzz_index_auth(void *arg, int op, const char *a, const char *b, const char *c, const char *d)
{
    (void)arg, (void)b, (void)c, (void)d;
    if (op == SQLITE_ATTACH || op == SQLITE_DETACH) return SQLITE_DENY;
    if (!fuzz_index_raw) return SQLITE_OK;
    if (op == SQLITE_PRAGMA || op == SQLITE_CREATE_VTABLE) return SQLITE_DENY;
    if (op == SQLITE_FUNCTION && b &&
        (!strcasecmp(b, "ram_load") || !strcasecmp(b, "ram_set_max_pixels") || !strcasecmp(b, "load_extension")))
        return SQLITE_DENY;
    return SQLITE_OK;
}

/* A connection with the extension and the golden model, limits set. */
static sqlite3 *fuzz_index_connect(void)
{
    sqlite3 *db = NULL;
    char *e = NULL;
    char sql[700];
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) fuzz_index_die("open", sqlite3_errmsg(db));
#ifndef FUZZ_STATIC_EXT
    char path[512];
    snprintf(path, sizeof path, "%s/ram.so", fuzz_build_dir());
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
    if (sqlite3_load_extension(db, path, 0, &e) != SQLITE_OK) fuzz_index_die(path, e);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)0);
#endif
    snprintf(sql, sizeof sql, "SELECT ram_load('%s')", fuzz_index_model[0]);
    if (sqlite3_exec(db, sql, 0, 0, &e) != SQLITE_OK) fuzz_index_die(sql, e);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1 << 16);
    sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 100);
    sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 50);
    sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 8);
    sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 20000);
    sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100);
    sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 16);
    sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 4);
    sqlite3_progress_handler(db, 1000, fuzz_index_progress, NULL);
    sqlite3_set_authorizer(db, fuzz_index_auth, NULL);
    return db;
}

static void fuzz_index_setup(void)
{
    if (fuzz_index_anchor) return;
#ifdef FUZZ_STATIC_EXT
    sqlite3_auto_extension((void (*)(void))sqlite3_ram_init);
#endif
    static const char *models[3] = {"golden_ram_plus_clip.ram", "golden_ram_plus.ram", "golden_ram.ram"};
    for (int i = 0; i < 3; i++)
        snprintf(fuzz_index_model[i], sizeof fuzz_index_model[i], "%s/models/%s", fuzz_build_dir(), models[i]);
    /* Small pictures (decode and resize are most of an insert's time), one
    ** with an EXIF rotation, and one golden photo. */
    static const char *imgs[4] = {"images/orient6.jpg", "images/pal.png", "images/rgb16.png", "golden/images/img0.jpg"};
    for (int i = 0; i < 4; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/%s", imgs[i]);
        fuzz_index_img[i] = fuzz_index_readf(path, &fuzz_index_img_n[i]);
    }
    fuzz_index_trace = getenv("FUZZ_INDEX_TRACE") != NULL;
    fuzz_index_anchor = fuzz_index_connect();
    sqlite3_progress_handler(fuzz_index_anchor, 0, 0, 0);
    /* Two ram_embed blobs (EXIF on, EXIF off), accepted in place of images. */
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(fuzz_index_anchor, "SELECT ram_set_exif(?2), ram_embed(?1)", -1, &st, 0) != SQLITE_OK)
            fuzz_index_die("prepare", sqlite3_errmsg(fuzz_index_anchor));
        sqlite3_bind_blob(st, 1, fuzz_index_img[i], fuzz_index_img_n[i], SQLITE_STATIC);
        sqlite3_bind_int(st, 2, 1 - i);
        if (sqlite3_step(st) != SQLITE_ROW) fuzz_index_die("ram_embed", sqlite3_errmsg(fuzz_index_anchor));
        fuzz_index_emb_n[i] = sqlite3_column_bytes(st, 1);
        fuzz_index_emb[i] = malloc((size_t)fuzz_index_emb_n[i] + 1);
        memcpy(fuzz_index_emb[i], sqlite3_column_blob(st, 1), (size_t)fuzz_index_emb_n[i]);
        sqlite3_finalize(st);
    }
}

/* Frees what the replay driver's leak check would otherwise report. */
static void fuzz_index_close(void)
{
    if (!fuzz_index_anchor) return;
    sqlite3_close(fuzz_index_anchor);
    fuzz_index_anchor = NULL;
    for (int i = 0; i < 4; i++) free(fuzz_index_img[i]);
    for (int i = 0; i < 2; i++) free(fuzz_index_emb[i]);
#ifdef FUZZ_STATIC_EXT
    sqlite3_reset_auto_extension();
#endif
}

/* ------------------------------------------------------------ input reader */

struct fuzz_index_in {
    const uint8_t *d;
    size_t n, i;
};

static unsigned fuzz_index_u8(struct fuzz_index_in *in) { return in->i < in->n ? in->d[in->i++] : 0; }
static unsigned fuzz_index_pick(struct fuzz_index_in *in, unsigned n) { return fuzz_index_u8(in) % n; }

/* Length-prefixed (1 byte) raw bytes, '/' turned into '_', no NUL. */
static void fuzz_index_raw_text(struct fuzz_index_in *in, char *out, size_t cap)
{
    size_t len = fuzz_index_u8(in), k = 0;
    if (len > in->n - in->i) len = in->n - in->i;
    for (size_t j = 0; j < len && k + 1 < cap; j++) {
        char ch = (char)in->d[in->i + j];
        out[k++] = ch == '/' ? '_' : ch == 0 ? ' ' : ch;
    }
    in->i += len;
    out[k] = 0;
}

static const char *const fuzz_index_names[] = {"t0", "t1", "photos", "\"a b\"", "path", "t0_images", "tag"};
#define FUZZ_INDEX_NNAMES 7
static const char *fuzz_index_name(struct fuzz_index_in *in)
{
    unsigned r = fuzz_index_u8(in);
    return fuzz_index_names[r < 200 ? r % 3 : r % FUZZ_INDEX_NNAMES];
}

static const char *const fuzz_index_texts[] = {
    "tag6",
    "hot dog",
    "Hot Dog",
    "标签6",
    "tag11",
    "a red bicycle",
    "[\"a dog\",\"a red square\"]",
    "[]",
    "[1,2]",
    "[\"\"]",
    "",
    " ",
    "\xff\xfe",
    "tag",
    "integrity-check",
    "reembed",
    "delete-stale",
    "model",
    "exif=0",
    "exif=1",
    "model=",
    "model=tests",
    "model=Makefile",
    "[\"a\",",
    "null",
    "0",
    "-1",
};
#define FUZZ_INDEX_NTEXTS ((unsigned)(sizeof fuzz_index_texts / sizeof fuzz_index_texts[0]))

/* Binds parameter a to a value drawn from the input. */
static void fuzz_index_bind(struct fuzz_index_in *in, sqlite3_stmt *st, int a)
{
    static const double reals[] = {0.0,
                                   -0.0,
                                   0.01,
                                   0.009999,
                                   0.5,
                                   0.9,
                                   1.0,
                                   1.5,
                                   -1.0,
                                   1e308,
                                   1e-320,
                                   __builtin_inf(),
                                   -__builtin_inf(),
                                   __builtin_nan("")};
    static const int64_t ints[] = {0, 1, -1, 2, 5, 11, 12, 20, 1000, 2147483647, -2147483648LL, INT64_MAX, INT64_MIN};
    unsigned t = fuzz_index_pick(in, 10);
    switch (t) {
    case 0: sqlite3_bind_null(st, a); break;
    case 1: sqlite3_bind_int64(st, a, ints[fuzz_index_pick(in, sizeof ints / sizeof ints[0])]); break;
    case 2: sqlite3_bind_double(st, a, reals[fuzz_index_pick(in, sizeof reals / sizeof reals[0])]); break;
    case 3: {
        int64_t v = 0;
        size_t len = in->n - in->i < 8 ? in->n - in->i : 8;
        memcpy(&v, in->d + in->i, len);
        in->i += len;
        if (fuzz_index_u8(in) & 1)
            sqlite3_bind_int64(st, a, v);
        else {
            double r;
            memcpy(&r, &v, sizeof r);
            sqlite3_bind_double(st, a, r);
        }
        break;
    }
    case 4:
        sqlite3_bind_text(st, a, fuzz_index_texts[fuzz_index_pick(in, FUZZ_INDEX_NTEXTS)], -1, SQLITE_STATIC);
        break;
    case 5:
    case 6: {
        unsigned m = fuzz_index_pick(in, 4);
        sqlite3_bind_blob(st, a, fuzz_index_img[m], fuzz_index_img_n[m], SQLITE_STATIC);
        break;
    }
    case 7: { /* a golden image or embedding blob, cut or with one byte changed */
        unsigned m = fuzz_index_pick(in, 6);
        const uint8_t *src = m < 4 ? fuzz_index_img[m] : fuzz_index_emb[m - 4];
        int len = m < 4 ? fuzz_index_img_n[m] : fuzz_index_emb_n[m - 4];
        unsigned how = fuzz_index_u8(in);
        unsigned pos = fuzz_index_u8(in) | fuzz_index_u8(in) << 8;
        uint8_t *b = malloc((size_t)len);
        memcpy(b, src, (size_t)len);
        if (how & 1)
            len = (int)(pos % (unsigned)len);
        else
            b[pos % (unsigned)len] ^= (uint8_t)(how | 1);
        sqlite3_bind_blob(st, a, b, len, SQLITE_TRANSIENT);
        free(b);
        break;
    }
    case 8: {
        unsigned m = fuzz_index_pick(in, 2);
        sqlite3_bind_blob(st, a, fuzz_index_emb[m], fuzz_index_emb_n[m], SQLITE_STATIC);
        break;
    }
    default: { /* raw bytes, as TEXT or BLOB */
        unsigned kind = fuzz_index_u8(in);
        size_t len = fuzz_index_u8(in);
        if (len > in->n - in->i) len = in->n - in->i;
        if (kind & 1)
            sqlite3_bind_blob(st, a, in->d + in->i, (int)len, SQLITE_TRANSIENT);
        else
            sqlite3_bind_text(st, a, (const char *)in->d + in->i, (int)len, SQLITE_TRANSIENT);
        in->i += len;
        break;
    }
    }
}

/* Prepares the first statement of sql, binds every parameter from the
** input, steps it to the end and finalizes it. */
static void fuzz_index_run(sqlite3 *db, struct fuzz_index_in *in, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, 0) != SQLITE_OK || !st) {
        if (fuzz_index_trace) fprintf(stderr, "  %s -> prepare: %s\n", sql, sqlite3_errmsg(db));
        return;
    }
    int np = sqlite3_bind_parameter_count(st);
    for (int a = 1; a <= np; a++) fuzz_index_bind(in, st, a);
    volatile size_t sum = 0;
    int rc, rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        for (int c = 0; c < sqlite3_column_count(st); c++) sum += (size_t)sqlite3_column_bytes(st, c);
    }
    if (fuzz_index_trace) /* FUZZ_INDEX_TRACE=1: what a seed does */
        fprintf(stderr, "  %s -> %d rows, %s\n", sql, rows, rc == SQLITE_DONE ? "done" : sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

/* One CREATE VIRTUAL TABLE option. */
static void fuzz_index_option(struct fuzz_index_in *in, char *out, size_t cap)
{
    static const char *const vals[] = {"0", "1",   "on",     "off", "yes", "2",    "-1",  "0.01", "1.0", "1.01",
                                       "0", "nan", "1e-300", "''",  "'x'", "\"\"", "1 2", "(1)",  ""};
    static const char *const keys[] = {"model", "floor", "store_images", "exif", "resume", "MODEL", "other", ""};
    char raw[128];
    unsigned w = fuzz_index_pick(in, 6);
    if (w == 0) {
        unsigned m = fuzz_index_pick(in, 6);
        const char *p = m < 3 ? fuzz_index_model[m] : m == 3 ? "no_such_file.ram" : m == 4 ? "tests" : "Makefile";
        snprintf(out, cap, "model='%.*s'", (int)(cap > 9 ? cap - 9 : 0), p); /* cut, never overflow */
    } else if (w == 5) {
        fuzz_index_raw_text(in, raw, sizeof raw);
        snprintf(out, cap, "%s", raw);
    } else {
        snprintf(out, cap, "%s%s%s", keys[fuzz_index_pick(in, 8)], fuzz_index_u8(in) & 3 ? "=" : " ",
                 vals[fuzz_index_pick(in, sizeof vals / sizeof vals[0])]);
    }
}

static void fuzz_index_where(struct fuzz_index_in *in, const char *t, char *out, size_t cap)
{
    static const char *const cons[] = {
        "tag = ?", "tag IN (?, ?)", "score > ?", "score >= ?",   "score < ?", "%s MATCH ?",
        "k = ?",   "prefilter = ?", "rowid = ?", "path = ?",     "rowid > ?", "stale = ?",
        "tag = ?", "%s MATCH ?",    "key = ?",   "path IS NULL", "k > ?",     "tag > ?",
    };
    unsigned n = fuzz_index_pick(in, 4);
    size_t k = 0;
    out[0] = 0;
    for (unsigned j = 0; j < n && k < cap; j++) {
        char c[64];
        snprintf(c, sizeof c, cons[fuzz_index_pick(in, sizeof cons / sizeof cons[0])], t);
        k += (size_t)snprintf(out + k, cap - k, "%s%s", j ? " AND " : " WHERE ", c);
    }
}

FUZZ_ENTRY(data, size)
{
    fuzz_index_setup();
    fuzz_index_steps = 0;
    fuzz_index_raw = 0;
    clock_gettime(CLOCK_MONOTONIC, &fuzz_index_t0);
    sqlite3 *db = fuzz_index_connect();
    struct fuzz_index_in in = {data, size, 0};
    char sql[4096], a[2048], b[1024];
    for (int s = 0; s < FUZZ_INDEX_STMTS && in.i < in.n; s++) {
        const char *t = fuzz_index_name(&in);
        unsigned op = fuzz_index_pick(&in, 24);
        switch (op) {
        case 0:
        case 1: { /* CREATE VIRTUAL TABLE with options */
            unsigned n = fuzz_index_pick(&in, 5);
            size_t k = 0;
            a[0] = 0;
            for (unsigned j = 0; j < n && k < sizeof a - 600; j++) {
                fuzz_index_option(&in, b, 600);
                k += (size_t)snprintf(a + k, sizeof a - k, "%s%s", j ? ", " : "", b);
            }
            if (n)
                snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE %s USING ram_index(%s)", t, a);
            else
                snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE %s USING ram_index", t);
            break;
        }
        case 2:
        case 3: snprintf(sql, sizeof sql, "INSERT INTO %s(path, image) VALUES(?, ?)", t); break;
        case 4: snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s(rowid, path, image) VALUES(?, ?, ?)", t); break;
        case 5: snprintf(sql, sizeof sql, "INSERT INTO %s(path, image) VALUES(?, ?), (?, ?), (?, ?)", t); break;
        case 6:
        case 7:
        case 8: {
            static const char *const cols[] = {"path, tags, score",
                                               "rowid, path, tags_zh, stale",
                                               "key, probs, cls, image, entry",
                                               "*, tag, k, prefilter",
                                               "count(*)",
                                               "path, score",
                                               "taken, taken_source, camera_make, camera_model, latitude, "
                                               "longitude, mtime"};
            static const char *const tails[] = {"",
                                                " ORDER BY score DESC",
                                                " LIMIT ?",
                                                " ORDER BY score DESC LIMIT ?",
                                                " ORDER BY path",
                                                " ORDER BY rowid DESC LIMIT ? OFFSET ?"};
            fuzz_index_where(&in, t, a, sizeof a);
            snprintf(sql, sizeof sql, "SELECT %s FROM %s%s%s", cols[fuzz_index_pick(&in, 7)], t, a,
                     tails[fuzz_index_pick(&in, 6)]);
            break;
        }
        case 9: {
            static const char *const w[] = {"rowid = ?", "path = ?", "1", "tag = ?", "%s MATCH ?", "rowid > ?"};
            snprintf(a, sizeof a, w[fuzz_index_pick(&in, 6)], t);
            snprintf(sql, sizeof sql, "DELETE FROM %s WHERE %s", t, a);
            break;
        }
        case 10: {
            static const char *const set[] = {"path = ?",
                                              "image = ?",
                                              "tags = ?",
                                              "rowid = ?",
                                              "score = ?",
                                              "path = ?, image = ?",
                                              "key = ?",
                                              "mtime = ?, taken = ?",
                                              "latitude = ?, camera_make = ?"};
            snprintf(sql, sizeof sql, "UPDATE %s SET %s WHERE rowid = ?", t, set[fuzz_index_pick(&in, 9)]);
            break;
        }
        case 11:
        case 12: { /* a command */
            unsigned m = fuzz_index_pick(&in, 10);
            static const char *const cmd[] = {"integrity-check", "reembed", "delete-stale",
                                              "model",           "exif=0",  "exif=1"};
            if (m < 6)
                snprintf(a, sizeof a, "%s", cmd[m]);
            else if (m < 9)
                snprintf(a, sizeof a, "model=%s", fuzz_index_model[m - 6]);
            else
                fuzz_index_raw_text(&in, a, 200);
            char *q = sqlite3_mprintf("INSERT INTO %s(%s) VALUES(%Q)", t, t, a);
            snprintf(sql, sizeof sql, "%s", q ? q : "");
            sqlite3_free(q);
            break;
        }
        case 13: {
            static const char *const tx[] = {"BEGIN",      "COMMIT",         "ROLLBACK",     "SAVEPOINT s1",
                                             "RELEASE s1", "ROLLBACK TO s1", "SAVEPOINT s2", "ROLLBACK TO s2"};
            snprintf(sql, sizeof sql, "%s", tx[fuzz_index_pick(&in, 8)]);
            break;
        }
        case 14: snprintf(sql, sizeof sql, "DROP TABLE %s", t); break;
        case 15: snprintf(sql, sizeof sql, "ALTER TABLE %s RENAME TO %s", t, fuzz_index_name(&in)); break;
        case 16: {
            static const char *const f[] = {"SELECT ram_set_threshold(?, ?)",
                                            "SELECT ram_reset_thresholds()",
                                            "SELECT ram_set_exif(?)",
                                            "SELECT ram_index_stats()",
                                            "SELECT ram_score(?, ?)",
                                            "SELECT ram_tags(?, ?)",
                                            "SELECT ram_tokenize(?)",
                                            "SELECT ram_set_max_pixels(?)",
                                            "SELECT ram_tag_scores.* FROM ram_tag_scores(?, ?)"};
            snprintf(sql, sizeof sql, "%s", f[fuzz_index_pick(&in, 9)]);
            break;
        }
        case 17:
            snprintf(sql, sizeof sql,
                     "CREATE TABLE IF NOT EXISTS ram_thresholds(tag TEXT PRIMARY KEY, threshold "
                     "REAL); INSERT OR REPLACE INTO ram_thresholds VALUES(?, ?)");
            fuzz_index_run(db, &in, sql);
            snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO ram_thresholds VALUES(?, ?)");
            break;
        case 18: snprintf(sql, sizeof sql, "SELECT ram_load('%s')", fuzz_index_model[fuzz_index_pick(&in, 3)]); break;
        case 19: /* joins and subqueries against the table */
            snprintf(sql, sizeof sql,
                     "SELECT a.path, b.score FROM %s a JOIN %s b ON a.rowid = b.rowid WHERE b.%s MATCH ? "
                     "AND b.k = ?",
                     t, t, t);
            break;
        case 20:
            snprintf(sql, sizeof sql, "SELECT ram_score(image, ?), ram_tags(image) FROM %s WHERE rowid = ?", t);
            break;
        case 21: snprintf(sql, sizeof sql, "SELECT name FROM sqlite_schema WHERE name LIKE '%%%s%%'", "_"); break;
        case 22: /* entries that travel, between two of the tables, and read by the functions */
            if (fuzz_index_u8(&in) & 1)
                snprintf(sql, sizeof sql, "INSERT INTO %s(path, entry) SELECT path || ?, entry FROM %s", t,
                         fuzz_index_name(&in));
            else
                snprintf(sql, sizeof sql, "SELECT ram_score(entry, ?), ram_tags(entry) FROM %s WHERE rowid = ?", t);
            break;
        default: { /* raw SQL from the input (up to 255 bytes) */
            fuzz_index_raw_text(&in, sql, sizeof sql);
            if (strcasestr(sql, "vacuum")) continue;
            fuzz_index_raw = 1;
            fuzz_index_run(db, &in, sql);
            fuzz_index_raw = 0;
            continue;
        }
        }
        fuzz_index_run(db, &in, sql);
    }
    sqlite3_progress_handler(db, 0, 0, 0);
    if (sqlite3_close(db) != SQLITE_OK) fuzz_index_die("close", sqlite3_errmsg(db));
    return 0;
}
