/*
** fuzz_sql.c — the SQL functions with arbitrary arguments on an in-memory
** database whose connection has loaded build/models/golden_ram_plus_clip.ram
** (and build/models/golden_tag2text.ram as its caption model; ram_xmp's
** second argument, an existing XMP sidecar, is untrusted file data).
**
** Input layout: byte 0 picks the function, byte 1 the number of arguments
** (0..2, so wrong arities are tried too), then per argument one type byte:
**   0 NULL, 1 INTEGER (8 bytes), 2 REAL (8 bytes), 3 TEXT and 4 BLOB (2-byte
**   little-endian length, then the bytes, truncated at the end of input),
**   5 one of the golden images (next byte), 6 TEXT of the rest of the input.
** Arguments are bound to "SELECT fn(?,...)" and the statement is stepped to
** the end. Per-connection settings the fuzzer may change (max pixels, EXIF,
** threshold overrides) are reset after every input.
**
** With FUZZ_STATIC_EXT (make fuzz) the extension is linked in and registered
** with sqlite3_auto_extension; otherwise $RAM_BUILD/ram.so is loaded.
*/
#include "fuzz.h"
#include <sqlite3.h>

#ifdef FUZZ_STATIC_EXT
int sqlite3_ram_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);
#endif

/* table: a table-valued function, called as SELECT * FROM name(...) (as a
** scalar it would not even prepare). */
static const struct {
    const char *name;
    int max_args, table;
} fuzz_sql_fn[] = {
    {"ram_tags", 2, 0},           {"ram_tag_scores", 2, 1},    {"ram_score", 2, 0},
    {"ram_tokenize", 1, 0},       {"ram_embed", 1, 0},         {"ram_cls", 1, 0},
    {"ram_model", 0, 0},          {"ram_set_threshold", 2, 0}, {"ram_reset_thresholds", 0, 0},
    {"ram_set_max_pixels", 1, 0}, {"ram_set_exif", 1, 0},      {"ram_version", 0, 0},
    {"ram_debug", 0, 0},          {"ram_caption", 2, 0},       {"ram_xmp", 2, 0},
    {"ram_tag_list", 1, 1},
};
#define FUZZ_SQL_NFN ((int)(sizeof fuzz_sql_fn / sizeof fuzz_sql_fn[0]))

static sqlite3 *fuzz_sql_db;
static void *fuzz_sql_img[4];
static int fuzz_sql_img_n[4];

static void fuzz_sql_die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_sql: %s: %s\n", what, msg ? msg : "?");
    abort();
}

static void *fuzz_sql_read(const char *path, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) fuzz_sql_die("cannot open", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)len + 1);
    if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) fuzz_sql_die("cannot read", path);
    fclose(f);
    *n = (int)len;
    return b;
}

static void fuzz_sql_exec(const char *sql)
{
    char *e = NULL;
    if (sqlite3_exec(fuzz_sql_db, sql, 0, 0, &e) != SQLITE_OK) fuzz_sql_die(sql, e);
}

static void fuzz_sql_open(void)
{
    if (fuzz_sql_db) return;
    char path[512];
    char *e = NULL;
#ifdef FUZZ_STATIC_EXT
    sqlite3_auto_extension((void (*)(void))sqlite3_ram_init);
#endif
    if (sqlite3_open(":memory:", &fuzz_sql_db) != SQLITE_OK) fuzz_sql_die("open", "");
#ifndef FUZZ_STATIC_EXT
    snprintf(path, sizeof path, "%s/ram.so", fuzz_build_dir());
    sqlite3_enable_load_extension(fuzz_sql_db, 1);
    if (sqlite3_load_extension(fuzz_sql_db, path, 0, &e) != SQLITE_OK) fuzz_sql_die(path, e);
#endif
    snprintf(path, sizeof path, "SELECT ram_load('%s/models/golden_ram_plus_clip.ram')", fuzz_build_dir());
    fuzz_sql_exec(path);
    /* A caption model beside it (Tag2Text), so that ram_caption runs whole. */
    snprintf(path, sizeof path, "SELECT ram_caption_model('%s/models/golden_tag2text.ram')", fuzz_build_dir());
    fuzz_sql_exec(path);
    static const char *imgs[4] = {"img0.jpg", "img1.png", "img2.jpg", "img3.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "tests/data/golden/images/%s", imgs[i]);
        fuzz_sql_img[i] = fuzz_sql_read(path, &fuzz_sql_img_n[i]);
    }
    (void)e;
}

/* Frees what the replay driver's leak check would otherwise report. */
static void fuzz_sql_close(void)
{
    if (!fuzz_sql_db) return;
    sqlite3_close(fuzz_sql_db);
    fuzz_sql_db = NULL;
    for (int i = 0; i < 4; i++) free(fuzz_sql_img[i]);
#ifdef FUZZ_STATIC_EXT
    sqlite3_reset_auto_extension();
#endif
}

static size_t fuzz_sql_len(const uint8_t *d, size_t n, size_t *i)
{
    size_t len = 0;
    if (*i < n) len = d[(*i)++];
    if (*i < n) len |= (size_t)d[(*i)++] << 8;
    if (len > n - *i) len = n - *i;
    return len;
}

FUZZ_ENTRY(data, size)
{
    if (size < 2) return 0;
    fuzz_sql_open();
    int fn = data[0] % FUZZ_SQL_NFN;
    int nargs = data[1] % 3;
    char sql[128];
    int k = snprintf(sql, sizeof sql, fuzz_sql_fn[fn].table ? "SELECT * FROM %s(" : "SELECT %s(", fuzz_sql_fn[fn].name);
    for (int a = 0; a < nargs; a++) k += snprintf(sql + k, sizeof sql - k, a ? ",?" : "?");
    snprintf(sql + k, sizeof sql - k, ")");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fuzz_sql_db, sql, -1, &st, 0) == SQLITE_OK) {
        size_t i = 2;
        for (int a = 1; a <= nargs; a++) {
            int t = i < size ? data[i++] % 7 : 0;
            int64_t v = 0;
            double r = 0;
            size_t len;
            switch (t) {
            case 0: sqlite3_bind_null(st, a); break;
            case 1:
                len = size - i < 8 ? size - i : 8;
                memcpy(&v, data + i, len);
                i += len;
                sqlite3_bind_int64(st, a, v);
                break;
            case 2:
                len = size - i < 8 ? size - i : 8;
                memcpy(&r, data + i, len);
                i += len;
                sqlite3_bind_double(st, a, r);
                break;
            case 3:
                len = fuzz_sql_len(data, size, &i);
                sqlite3_bind_text(st, a, (const char *)data + i, (int)len, SQLITE_TRANSIENT);
                i += len;
                break;
            case 4:
                len = fuzz_sql_len(data, size, &i);
                sqlite3_bind_blob(st, a, data + i, (int)len, SQLITE_TRANSIENT);
                i += len;
                break;
            case 5: {
                int m = i < size ? data[i++] % 4 : 0;
                sqlite3_bind_blob(st, a, fuzz_sql_img[m], fuzz_sql_img_n[m], SQLITE_STATIC);
                break;
            }
            default:
                sqlite3_bind_text(st, a, (const char *)data + i, (int)(size - i), SQLITE_TRANSIENT);
                i = size;
                break;
            }
        }
        while (sqlite3_step(st) == SQLITE_ROW) {}
        sqlite3_finalize(st);
    }
    fuzz_sql_exec("SELECT ram_set_max_pixels(4000000), ram_set_exif(1), ram_reset_thresholds()");
    return 0;
}
