/*
** test_sql_threads.c — the extension as a C host sees it: ram.so loaded with
** sqlite3_load_extension into several connections in several threads,
** interruption, limits that only a C host can set up, result subtypes, and
** a measurement of what the SQL layer costs per image on top of the engine.
**
**     RAM_BUILD=build build/test_sql_threads
**
** Checks:
**   - two threads, each with its own connection, tagging different images at
**     the same time give exactly the single-thread results (tags, every
**     score of ram_tag_scores, ram_score), with the image cache defeated so
**     that the inferences really overlap; the model is mapped once
**     (registry refs) and released when the last connection closes;
**   - sqlite3_interrupt() during a call gives SQLITE_INTERRUPT and
**     "<function>(): interrupted" (image path, text path), never a crash;
**   - a blob longer than the connection's SQLITE_LIMIT_LENGTH: SQLITE_TOOBIG;
**   - ram_cls has subtype 223, ram_tokenize/ram_model subtype 'J';
**   - loading the extension twice into one connection;
**   - every sqlite3_malloc in each function failing in turn gives SQLITE_NOMEM
**     (no other code, no crash; no leak under make asan);
**   - INFO lines: SQL ram_tags() vs the core's ram_tag_image() per image.
*/
#include "harness.h"

#include "ram.h"

#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

static char g_so[1024], g_plus[1024], g_clip[1024];
static const char *g_img[4] = {"golden/images/img0.jpg", "golden/images/img1.png", "golden/images/img2.jpg",
                               "golden/images/img3.png"};
static unsigned char *g_blob[4];
static size_t g_len[4];

static sqlite3 *open_db(void)
{
    sqlite3 *db = 0;
    char *zErr = 0;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
    if (sqlite3_load_extension(db, g_so, 0, &zErr) != SQLITE_OK) {
        printf("load_extension(%s): %s\n", g_so, zErr ? zErr : "?");
        sqlite3_free(zErr);
        sqlite3_close(db);
        return 0;
    }
    return db;
}

/* Runs sql with ?1 bound to blob (if any) and ?2 to text (if any); returns
** the first column of the first row as a malloc'd string, "NULL", or
** "ERR <code>: <message>". */
static char *query1(sqlite3 *db, const char *sql, const void *blob, size_t n, const char *text)
{
    sqlite3_stmt *st = 0;
    char buf[1024];
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, 0);
    if (rc == SQLITE_OK) {
        if (blob) sqlite3_bind_blob64(st, 1, blob, n, SQLITE_STATIC);
        if (text) sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        const char *z = (const char *)sqlite3_column_text(st, 0);
        char *out = strdup(z ? z : "NULL");
        sqlite3_finalize(st);
        return out;
    }
    snprintf(buf, sizeof buf, "ERR %d: %s", sqlite3_extended_errcode(db), sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return strdup(buf);
}

static int exec_ok(sqlite3 *db, const char *sql)
{
    char *zErr = 0;
    int rc = sqlite3_exec(db, sql, 0, 0, &zErr);
    if (rc) printf("exec %s: %s\n", sql, zErr ? zErr : "?");
    sqlite3_free(zErr);
    return rc == SQLITE_OK;
}

/* Everything one image gives, as one string. */
static char *image_report(sqlite3 *db, int i)
{
    char *tags = query1(db, "SELECT ram_tags(?1)", g_blob[i], g_len[i], 0);
    char *scores =
        query1(db, "SELECT group_concat(printf('%.9g', score), ',') FROM ram_tag_scores(?1)", g_blob[i], g_len[i], 0);
    char *open =
        query1(db, "SELECT printf('%.9g', ram_score(?1, ?2))", g_blob[i], g_len[i], "a photo of a red bicycle.");
    size_t n = strlen(tags) + strlen(scores) + strlen(open) + 8;
    char *out = malloc(n);
    snprintf(out, n, "%s / %s / %s", tags, scores, open);
    free(tags);
    free(scores);
    free(open);
    return out;
}

static char *g_ref[4];

struct worker {
    int first; /* images first, first + 1 */
    int iters;
    int mismatches;
    int errors;
    char detail[512];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    sqlite3 *db = open_db();
    if (!db) {
        w->errors++;
        return 0;
    }
    char sql[1200];
    snprintf(sql, sizeof sql, "SELECT ram_load('%s') IS NOT NULL", g_clip);
    char *r = query1(db, sql, 0, 0, 0);
    if (strcmp(r, "1")) w->errors++;
    free(r);
    for (int it = 0; it < w->iters; it++) {
        /* The pixel limit is part of the image cache key: a new limit per
        ** iteration makes every call a real inference. */
        snprintf(sql, sizeof sql, "SELECT ram_set_max_pixels(%d)", 100000000 - 1000 * w->first - it);
        exec_ok(db, sql);
        for (int k = 0; k < 2; k++) {
            int i = w->first + k;
            char *rep = image_report(db, i);
            if (strcmp(rep, g_ref[i])) {
                if (!w->mismatches++)
                    snprintf(w->detail, sizeof w->detail, "img%d iter %d: %.200s vs %.200s", i, it, rep, g_ref[i]);
            }
            free(rep);
        }
    }
    sqlite3_close(db);
    return 0;
}

static void interrupt_now(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite3_interrupt(sqlite3_context_db_handle(ctx));
    sqlite3_result_int(ctx, 1);
}

static void set_length_limit(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, sqlite3_value_int(argv[0]));
    sqlite3_result_null(ctx);
}

static void subtype_of(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite3_result_int(ctx, (int)sqlite3_value_subtype(argv[0]));
}

/* ------------------------------------------------------------------ OOM injection */

/* SQLite's allocator, wrapped so that the Nth allocation from now fails
** (g_fail_after counts down; < 0 disables). Everything ext/ allocates goes
** through it (sqlite3_malloc64); the engine's own allocator is not touched. */
static sqlite3_mem_methods g_mem;
static int g_fail_after = -1;

static int oom_tick(void)
{
    int n = __atomic_load_n(&g_fail_after, __ATOMIC_RELAXED);
    if (n < 0) return 0;
    if (n == 0) return 1;
    __atomic_store_n(&g_fail_after, n - 1, __ATOMIC_RELAXED);
    return 0;
}
static void *oom_malloc(int n) { return oom_tick() ? 0 : g_mem.xMalloc(n); }
static void *oom_realloc(void *p, int n) { return oom_tick() ? 0 : g_mem.xRealloc(p, n); }
static void oom_free(void *p) { g_mem.xFree(p); }
static int oom_size(void *p) { return g_mem.xSize(p); }
static int oom_roundup(int n) { return g_mem.xRoundup(n); }
static int oom_init(void *a) { return g_mem.xInit(a); }
static void oom_shutdown(void *a) { g_mem.xShutdown(a); }

static void oom_install(void)
{
    static sqlite3_mem_methods m;
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_mem);
    m = g_mem;
    m.xMalloc = oom_malloc;
    m.xRealloc = oom_realloc;
    m.xFree = oom_free;
    m.xSize = oom_size;
    m.xRoundup = oom_roundup;
    m.xInit = oom_init;
    m.xShutdown = oom_shutdown;
    sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}

/* Every allocation of each statement's step fails in turn: the statement
** must then fail with SQLITE_NOMEM (never another code, never a crash or a
** leak under ASan), and succeed once the allocations are exhausted. */
static void oom_tests(void)
{
    static const char *sqls[] = {
        "SELECT ram_tags(?1)",
        "SELECT group_concat(tag) FROM ram_tag_scores(?1)",
        "SELECT group_concat(tag) FROM ram_tag_scores(?1, '[\"a cat\", {\"tag\": \"dog\", "
        "\"descriptions\": [\"a dog\"]}]')",
        "SELECT ram_score(?1, '[\"a red bicycle\", \"a bike\"]')",
        "SELECT length(ram_embed(?1)) + length(ram_cls(?1))",
        "SELECT ram_tokenize('a photo of a cat.')",
        "SELECT ram_model() || ram_debug()",
        "SELECT ram_set_threshold('tag0', 0.5) + ram_reset_thresholds()",
        "SELECT ram_tags(?1)", /* again, with the persistent table below */
    };
    int bad = 0, runs = 0;
    char why[512] = "";
    char sql[1200];
    sqlite3 *db = open_db();
    snprintf(sql, sizeof sql, "SELECT ram_load('%s')", g_clip);
    free(query1(db, sql, 0, 0, 0));
    for (size_t k = 0; k < sizeof sqls / sizeof sqls[0]; k++) {
        if (k == 8)
            exec_ok(db, "CREATE TABLE ram_thresholds(tag TEXT, threshold REAL);"
                        "INSERT INTO ram_thresholds VALUES ('tag6', 0.9)");
        for (int n = 0; n < 100000; n++) {
            /* a fresh image-cache key each time: the whole path runs */
            snprintf(sql, sizeof sql, "SELECT ram_set_max_pixels(%d)", 50000000 + (int)k * 10000 + n);
            exec_ok(db, sql);
            sqlite3_stmt *st = 0;
            sqlite3_prepare_v2(db, sqls[k], -1, &st, 0);
            sqlite3_bind_blob(st, 1, g_blob[0], (int)g_len[0], SQLITE_STATIC);
            __atomic_store_n(&g_fail_after, n, __ATOMIC_RELAXED);
            int rc = sqlite3_step(st);
            __atomic_store_n(&g_fail_after, -1, __ATOMIC_RELAXED);
            runs++;
            if (rc != SQLITE_ROW && rc != SQLITE_NOMEM && !bad++) {
                snprintf(why, sizeof why, "%s, allocation %d: rc %d (%s)", sqls[k], n, rc, sqlite3_errmsg(db));
            }
            sqlite3_finalize(st);
            if (rc == SQLITE_ROW) break;
        }
    }
    /* ram_load and the extension's init under OOM, on fresh connections. */
    for (int n = 0; n < 100000; n++) {
        __atomic_store_n(&g_fail_after, n, __ATOMIC_RELAXED);
        sqlite3 *d2 = 0;
        int ok = 0;
        if (sqlite3_open(":memory:", &d2) == SQLITE_OK) {
            sqlite3_db_config(d2, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
            char *zErr = 0;
            if (sqlite3_load_extension(d2, g_so, 0, &zErr) == SQLITE_OK) {
                snprintf(sql, sizeof sql, "SELECT ram_tags(ram_load('%s') || '')", g_plus);
                sqlite3_stmt *st = 0;
                if (sqlite3_prepare_v2(d2, sql, -1, &st, 0) == SQLITE_OK) {
                    int rc = sqlite3_step(st);
                    ok = rc == SQLITE_ROW || rc == SQLITE_ERROR; /* ram_tags of TEXT: a type error */
                    if (rc != SQLITE_ROW && rc != SQLITE_ERROR && rc != SQLITE_NOMEM && !bad++)
                        snprintf(why, sizeof why, "load, allocation %d: rc %d", n, rc);
                    if (rc == SQLITE_ERROR && strstr(sqlite3_errmsg(d2), "argument 1 must be a BLOB") == 0) ok = 0;
                }
                sqlite3_finalize(st);
            }
            sqlite3_free(zErr);
        }
        __atomic_store_n(&g_fail_after, -1, __ATOMIC_RELAXED);
        sqlite3_close(d2);
        runs++;
        if (ok) break;
    }
    char *r = query1(db, "SELECT ram_tags(?1)", g_blob[1], g_len[1], 0);
    check(bad == 0 && !strcmp(r, "tag7 | tag8 | tag9"), "sql_oom", "%d bad of %d runs: %s; after: %s", bad, runs, why,
          r);
    free(r);
    printf("INFO: OOM injection: %d runs\n", runs);
    sqlite3_close(db);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *a, int n)
{
    qsort(a, (size_t)n, sizeof *a, cmp_double);
    return a[n / 2];
}

/* JPEG bytes with a comment segment holding k after SOI: other bytes, same pixels. */
static unsigned char *jpeg_variant(const unsigned char *jpg, size_t n, int k, size_t *out_n)
{
    unsigned char *v = malloc(n + 10);
    memcpy(v, jpg, 2);
    unsigned char com[10] = {0xFF,
                             0xFE,
                             0x00,
                             0x08,
                             'v',
                             (unsigned char)(k >> 24),
                             (unsigned char)(k >> 16),
                             (unsigned char)(k >> 8),
                             (unsigned char)k,
                             'v'};
    memcpy(v + 2, com, 10);
    memcpy(v + 12, jpg + 2, n - 2);
    *out_n = n + 10;
    return v;
}

static void bench(void)
{
    enum { N = 40 };
    struct ram_error err;
    struct ram_model *m = 0;
    struct ram_state *st = 0;
    if (ram_model_init_from_file(g_plus, 0, &m, &err) || ram_state_init(m, &st, &err)) {
        check(0, "sql_threads.bench_model", "%s", err.msg);
        return;
    }
    struct ram_model_info info;
    ram_model_get_info(m, &info);
    float *probs = malloc(sizeof(float) * (size_t)info.num_class);
    unsigned char *var[N];
    size_t nvar[N];
    for (int k = 0; k < N; k++) var[k] = jpeg_variant(g_blob[0], g_len[0], k, &nvar[k]);

    sqlite3 *db = open_db();
    char sql[1200];
    snprintf(sql, sizeof sql, "SELECT ram_load('%s')", g_plus);
    free(query1(db, sql, 0, 0, 0));
    sqlite3_stmt *q = 0;
    sqlite3_prepare_v2(db, "SELECT ram_tags(?1)", -1, &q, 0);
    /* warm both paths once */
    ram_tag_image(st, var[0], nvar[0], 0, 0, probs, &err);
    sqlite3_bind_blob(q, 1, var[0], (int)nvar[0], SQLITE_STATIC);
    sqlite3_step(q);
    sqlite3_reset(q);

    /* Interleaved, so that load from other processes hits both alike;
    ** medians of the per-call times. */
    enum { REPS = 3, S = REPS * (N - 1) };
    static double tc[S], ts[S], th[S];
    int ns = 0;
    for (int rep = 0; rep < REPS; rep++) {
        for (int k = 1; k < N; k++, ns++) {
            double t0 = now_s();
            ram_tag_image(st, var[k], nvar[k], 0, 0, probs, &err);
            double t1 = now_s();
            /* distinct bytes each time: the SQL call misses the image cache */
            var[k][8] = (unsigned char)(var[k][8] + 1);
            sqlite3_bind_blob(q, 1, var[k], (int)nvar[k], SQLITE_STATIC);
            sqlite3_step(q);
            sqlite3_reset(q);
            double t2 = now_s();
            sqlite3_step(q); /* the same blob again: a cache hit */
            sqlite3_reset(q);
            double t3 = now_s();
            tc[ns] = t1 - t0;
            ts[ns] = t2 - t1;
            th[ns] = t3 - t2;
        }
    }
    double mc = median(tc, ns) * 1e6, ms = median(ts, ns) * 1e6, mh = median(th, ns) * 1e6;
    printf("INFO: per image (golden tiny RAM++, 300x200 JPEG, medians of %d): core ram_tag_image "
           "%.1f us, SQL ram_tags %.1f us, overhead %.1f us (%.1f%%); SQL cache hit %.1f us\n",
           ns, mc, ms, ms - mc, 100.0 * (ms - mc) / mc, mh);
    sqlite3_finalize(q);
    sqlite3_close(db);
    for (int k = 0; k < N; k++) free(var[k]);
    free(probs);
    ram_state_free(st);
    ram_model_free(m);
}

int main(void)
{
    (void)check_close_npy; /* harness.h helper this test does not need */
    oom_install();         /* before SQLite initialises; inactive until oom_tests() */
    const char *b = getenv("RAM_BUILD");
    if (!b) b = "build";
    snprintf(g_so, sizeof g_so, "%s/ram.so", b);
    snprintf(g_plus, sizeof g_plus, "%s/models/golden_ram_plus.ram", b);
    snprintf(g_clip, sizeof g_clip, "%s/models/golden_ram_plus_clip.ram", b);
    for (int i = 0; i < 4; i++) {
        g_blob[i] = read_file(data_path(g_img[i]), &g_len[i]);
        if (!g_blob[i]) {
            check(0, "sql_threads_data", "cannot read %s", data_path(g_img[i]));
            return harness_exit();
        }
    }

    sqlite3 *db = open_db();
    check(db != 0, "sql_load_extension", "cannot load %s", g_so);
    if (!db) return harness_exit();

    /* Single-thread reference. */
    char sql[1200];
    snprintf(sql, sizeof sql, "SELECT json_extract(ram_load('%s'), '$.kind')", g_clip);
    char *r = query1(db, sql, 0, 0, 0);
    check(!strcmp(r, "RAM++"), "sql_threads_load", "%s", r);
    free(r);
    for (int i = 0; i < 4; i++) g_ref[i] = image_report(db, i);
    check(!strncmp(g_ref[0], "tag0 | hot dog | tag2 | crème brûlée | tag6", 44), "sql_threads_reference", "%s",
          g_ref[0]);
    sqlite3_close(db);

    /* Two threads, own connections, different images, at the same time. */
    struct worker w[2] = {{0, 6, 0, 0, ""}, {2, 6, 0, 0, ""}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++) pthread_create(&th[t], 0, worker_main, &w[t]);
    for (int t = 0; t < 2; t++) pthread_join(th[t], 0);
    for (int t = 0; t < 2; t++) {
        check(w[t].errors == 0 && w[t].mismatches == 0, t ? "sql_threads_worker1" : "sql_threads_worker0",
              "%d errors, %d mismatches: %s", w[t].errors, w[t].mismatches, w[t].detail);
    }

    /* Every connection closed: the registry let the model go. */
    db = open_db();
    r = query1(db, "SELECT json_array_length(ram_debug(), '$.models.loaded')", 0, 0, 0);
    check(!strcmp(r, "0"), "sql_registry_released", "loaded models after close: %s", r);
    free(r);

    /* Two connections on one model share one registry entry. */
    sqlite3 *db2 = open_db();
    snprintf(sql, sizeof sql, "SELECT ram_load('%s')", g_clip);
    free(query1(db, sql, 0, 0, 0));
    free(query1(db2, sql, 0, 0, 0));
    r = query1(db,
               "SELECT json_extract(ram_debug(), '$.models.loaded[0].refs') || '/' || "
               "json_array_length(ram_debug(), '$.models.loaded')",
               0, 0, 0);
    check(!strcmp(r, "2/1"), "sql_registry_shared", "refs/entries: %s", r);
    free(r);
    sqlite3_close(db2);

    /* Interruption. */
    sqlite3_create_function(db, "interrupt_now", 0, SQLITE_UTF8, 0, interrupt_now, 0, 0);
    exec_ok(db, "CREATE TABLE t(b BLOB)");
    sqlite3_stmt *ins = 0;
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1)", -1, &ins, 0);
    sqlite3_bind_blob(ins, 1, g_blob[1], (int)g_len[1], SQLITE_STATIC);
    sqlite3_step(ins);
    sqlite3_finalize(ins);
    exec_ok(db, "SELECT ram_set_max_pixels(99999999)"); /* a fresh cache key */
    r = query1(db, "SELECT interrupt_now(), ram_tags(b) FROM t", 0, 0, 0);
    /* query1 returns column 0 on success: it must not succeed. */
    check(!strcmp(r, "ERR 9: ram_tags(): interrupted"), "sql_interrupt_image", "%s", r);
    free(r);
    r = query1(db, "SELECT interrupt_now(), ram_score(b, 'a text never encoded before') FROM t", 0, 0, 0);
    check(!strcmp(r, "ERR 9: ram_score(): interrupted"), "sql_interrupt_text", "%s", r);
    free(r);
    r = query1(db, "SELECT ram_tags(b) FROM t", 0, 0, 0);
    check(!strcmp(r, "tag6 | tag7 | tag8 | tag9"), "sql_interrupt_recovers", "%s", r);
    free(r);

    /* A blob over SQLITE_LIMIT_LENGTH reaching the function: SQLite checks
    ** the limit wherever a value is made or read, so the only way in is a
    ** limit lowered while the statement runs, after a co-routine (a subquery
    ** with LIMIT is not flattened) produced the value. */
    sqlite3_create_function(db, "set_length_limit", 1, SQLITE_UTF8, 0, set_length_limit, 0, 0);
    r = query1(db,
               "SELECT ram_tags(x) FROM (SELECT b AS x FROM t LIMIT 1) "
               "WHERE set_length_limit(1000) IS NULL",
               0, 0, 0);
    char want[256];
    snprintf(want, sizeof want, "ERR 18: ram_tags(): argument 1 is too big (%zu bytes, over SQLITE_LIMIT_LENGTH 1000)",
             g_len[1]);
    check(!strcmp(r, want), "sql_limit_length", "%s", r);
    free(r);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000000);

    /* Result subtypes. */
    sqlite3_create_function(db, "subtype_of", 1, SQLITE_UTF8, 0, subtype_of, 0, 0);
    r = query1(db,
               "SELECT subtype_of(ram_cls(b)) || ',' || subtype_of(ram_tokenize('a')) || ',' || "
               "subtype_of(ram_model()) || ',' || length(ram_cls(b)) FROM t",
               0, 0, 0);
    check(!strcmp(r, "223,74,74,2048"), "sql_subtypes", "%s", r);
    free(r);

    /* Loading the extension a second time into the same connection. */
    char *zErr = 0;
    int rc = sqlite3_load_extension(db, g_so, 0, &zErr);
    sqlite3_free(zErr);
    snprintf(sql, sizeof sql, "SELECT ram_load('%s') IS NOT NULL", g_plus);
    free(query1(db, sql, 0, 0, 0));
    r = query1(db, "SELECT ram_tags(b) FROM t", 0, 0, 0);
    check(rc == SQLITE_OK && !strcmp(r, "tag6 | tag7 | tag8 | tag9"), "sql_load_twice", "rc %d, %s", rc, r);
    free(r);
    sqlite3_close(db);

    oom_tests();
    bench();
    for (int i = 0; i < 4; i++) {
        free(g_blob[i]);
        free(g_ref[i]);
    }
    return harness_exit();
}
