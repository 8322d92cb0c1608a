/*
** test_limits.c — limits and hostile files give clear errors (issue 7):
**   - images: a decompression bomb (30000x30000 PNG, tiny file) is refused
**     from its header (RAM_ERR_TOO_BIG, quickly), and max_pixels applies;
**   - text: over RAM_BPE_MAX_TEXT bytes is RAM_ERR_TOO_BIG; from SQL,
**     ram_tokenize/ram_score name the limit;
**   - model files: byte-for-byte edits of golden_ram.ram (same length, so
**     the header still parses) whose tensors point outside the file, whose
**     sizes disagree with their shapes, whose config disagrees with the
**     tensors, a truncated file and a huge header length are refused with
**     RAM_ERR_FORMAT (checksum skipped, so the structural checks are what
**     answers), and with the checksum on (the default; ram_load(path, 0)
**     skips it) any flipped data byte is "corrupted: checksum";
**   - model files changing under a process: a FIFO path is refused at once
**     (no open() that blocks forever); a file replaced by rename is loaded
**     anew by ram_load while older users keep the old mapping; a file
**     truncated or rewritten in place gives "changed on disk" before the
**     next inference instead of a SIGBUS.
** Hostile files are written to a temp folder and removed.
*/
#include "harness.h"
#include "bpe.h"
#include "ram.h"
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *build_dir(void)
{
    const char *b = getenv("RAM_BUILD");
    return b && *b ? b : "build";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char tmpdir[256];

/* Writes buf to tmpdir/name; returns the path (static ring). */
static const char *write_tmp(const char *name, const void *buf, size_t n)
{
    static char paths[4][512];
    static int k;
    char *p = paths[k++ & 3];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(buf, 1, n, f);
        fclose(f);
    }
    return p;
}

/* Replaces the first occurrence of from by to (same length) within the
** header of a copy of the model; NULL if from is not found. */
static unsigned char *edit_header(const unsigned char *m, size_t n, const char *from, const char *to)
{
    uint64_t hl;
    memcpy(&hl, m, 8);
    size_t fl = strlen(from);
    if (strlen(to) != fl || hl + 8 > n) return NULL;
    for (size_t i = 8; i + fl <= 8 + hl; i++) {
        if (memcmp(m + i, from, fl) == 0) {
            unsigned char *c = malloc(n);
            memcpy(c, m, n);
            memcpy(c + i, to, fl);
            return c;
        }
    }
    return NULL;
}

/* Loads path with or without the checksum; checks the status and that the
** message contains want (and is not empty). */
/* First column of the first row of sql as malloc'd text (NULL for SQL NULL). */
static int sql_text(sqlite3 *db, const char *sql, char **out)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, 0);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *z = sqlite3_column_text(st, 0);
        if (z) *out = strdup((const char *)z);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* A connection with the extension loaded (NULL on failure, checked). */
static sqlite3 *open_ext(void)
{
    sqlite3 *db = NULL;
    char lib[512], *e = NULL;
    snprintf(lib, sizeof lib, "%s/ram.so", build_dir());
    sqlite3_open(":memory:", &db);
    sqlite3_enable_load_extension(db, 1);
    int rc = sqlite3_load_extension(db, lib, 0, &e);
    check(rc == SQLITE_OK, "limits_sql_load", "%s", e ? e : "");
    sqlite3_free(e);
    return db;
}

static void expect_load(const char *name, const char *path, int verify, ram_status want_rc, const char *want)
{
    struct ram_model_params prm = ram_model_default_params();
    prm.verify_checksum = verify;
    struct ram_model *m = NULL;
    struct ram_error err;
    err.msg[0] = 0;
    ram_status rc = ram_model_init_from_file(path, &prm, &m, &err);
    if (rc == RAM_OK) ram_model_free(m);
    check(rc == want_rc && (rc == RAM_OK || (err.msg[0] && strstr(err.msg, want) != NULL)), name,
          "status %s (want %s), message '%s' (want '%s')", ram_status_str(rc), ram_status_str(want_rc),
          rc ? err.msg : "", want);
    printf("  %s: %s\n", name, rc ? err.msg : "(loaded)");
}

static void test_model_files(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/golden_ram.ram", build_dir());
    size_t n = 0;
    unsigned char *m = read_file(path, &n);
    if (!m) {
        check(0, "limits_model_read", "cannot read %s", path);
        return;
    }
    expect_load("limits_model_golden_loads", path, 1, RAM_OK, "");

    /* The last tensor (vocab.tags_zh) ends past the end of the file. */
    unsigned char *c = edit_header(m, n, "[2968898,2968995]", "[2968898,9968995]");
    check(c != NULL, "limits_model_edit_found", "golden_ram.ram header changed: update the edits");
    if (c) {
        const char *p = write_tmp("past_end.ram", c, n);
        expect_load("limits_model_tensor_past_end", p, 0, RAM_ERR_FORMAT, "");
        expect_load("limits_model_tensor_past_end_checksum", p, 1, RAM_ERR_FORMAT, "");
        free(c);
    }
    /* A tensor whose byte range disagrees with its shape (3072 bytes needed). */
    c = edit_header(m, n, "\"data_offsets\":[0,3072]", "\"data_offsets\":[0,3076]");
    if (c) {
        expect_load("limits_model_size_vs_shape", write_tmp("size_shape.ram", c, n), 0, RAM_ERR_FORMAT, "");
        free(c);
    }
    /* Offsets reversed (begin > end). */
    c = edit_header(m, n, "\"data_offsets\":[0,3072]", "\"data_offsets\":[3072,0]");
    if (c) {
        expect_load("limits_model_offsets_reversed", write_tmp("reversed.ram", c, n), 0, RAM_ERR_FORMAT, "");
        free(c);
    }
    /* Config disagrees with the tensors: embed_dim and num_class. */
    c = edit_header(m, n, "\"embed_dim\":\"16\"", "\"embed_dim\":\"32\"");
    check(c != NULL, "limits_model_edit_embed_dim", "no embed_dim 16 in the header");
    if (c) {
        expect_load("limits_model_config_embed_dim", write_tmp("embed_dim.ram", c, n), 0, RAM_ERR_FORMAT, "");
        free(c);
    }
    c = edit_header(m, n, "\"num_class\":\"12\"", "\"num_class\":\"13\"");
    if (c) {
        expect_load("limits_model_config_num_class", write_tmp("num_class.ram", c, n), 0, RAM_ERR_FORMAT, "");
        free(c);
    }
    c = edit_header(m, n, "\"depths\":\"2,2,2,2\"", "\"depths\":\"2,9,2,2\"");
    if (c) {
        expect_load("limits_model_config_depths", write_tmp("depths.ram", c, n), 0, RAM_ERR_FORMAT, "");
        free(c);
    }
    c = edit_header(m, n, "\"image_size\":\"128\"", "\"image_size\":\"999\"");
    if (c) {
        expect_load("limits_model_config_image_size", write_tmp("image_size.ram", c, n), 0, RAM_ERR_FORMAT, "");
        free(c);
    }
    /* Truncated: the data section is cut short. */
    expect_load("limits_model_truncated", write_tmp("truncated.ram", m, n - 1000), 0, RAM_ERR_FORMAT, "");
    expect_load("limits_model_truncated_header", write_tmp("trunc_hdr.ram", m, 4000), 0, RAM_ERR_FORMAT, "");
    /* Huge header length. */
    c = malloc(n);
    memcpy(c, m, n);
    uint64_t huge = (uint64_t)1 << 62;
    memcpy(c, &huge, 8);
    expect_load("limits_model_huge_header_len", write_tmp("huge_hdr.ram", c, n), 0, RAM_ERR_FORMAT, "");
    /* A flipped data byte: only the checksum can tell. */
    memcpy(c, m, n);
    c[n / 2] ^= 0x40;
    const char *flipped = write_tmp("flipped.ram", c, n);
    expect_load("limits_model_checksum_flip", flipped, 1, RAM_ERR_FORMAT, "checksum");
    free(c);

    /* The core check on demand: a model mapped without the checksum pass
    ** can be verified later. */
    {
        struct ram_model_params prm = ram_model_default_params();
        struct ram_model *mdl = NULL;
        struct ram_error er;
        prm.verify_checksum = 0;
        ram_status s0 = ram_model_init_from_file(flipped, &prm, &mdl, &er);
        ram_status s1 = s0 ? s0 : ram_model_verify(mdl, &er);
        check(s0 == RAM_OK && s1 == RAM_ERR_FORMAT && strstr(er.msg, "checksum"), "limits_model_verify_later",
              "load %d, verify %d: %s", s0, s1, er.msg);
        ram_model_free(mdl);
        mdl = NULL;
        s0 = ram_model_init_from_file(path, &prm, &mdl, &er);
        s1 = s0 ? s0 : ram_model_verify(mdl, &er);
        check(s0 == RAM_OK && s1 == RAM_OK, "limits_model_verify_later_ok", "load %d, verify %d: %s", s0, s1, er.msg);
        ram_model_free(mdl);
    }

    /* From SQL: ram_load(path) verifies; ram_load(path, 0) skips the pass
    ** and says so in its JSON; a later ram_load(path) verifies the mapping
    ** that is already shared. */
    sqlite3 *db = open_ext();
    char *e = NULL;
    int rc;
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT ram_load('%s')", flipped);
    rc = sqlite3_exec(db, sql, 0, 0, &e);
    check(rc != SQLITE_OK && e && strstr(e, "checksum"), "limits_sql_ram_load_checksum", "%s", e ? e : "(no error)");
    printf("  ram_load(flipped): %s\n", e ? e : "");
    sqlite3_free(e);
    e = NULL;
    char *got = NULL;
    snprintf(sql, sizeof sql, "SELECT json_extract(ram_load('%s', 0), '$.verified')", flipped);
    rc = sql_text(db, sql, &got);
    check(rc == SQLITE_OK && got && !strcmp(got, "0"), "limits_sql_ram_load_noverify", "rc %d: %s", rc,
          got ? got : sqlite3_errmsg(db));
    free(got);
    got = NULL;
    snprintf(sql, sizeof sql, "SELECT ram_load('%s', 1)", flipped);
    rc = sqlite3_exec(db, sql, 0, 0, &e);
    check(rc != SQLITE_OK && e && strstr(e, "checksum"), "limits_sql_ram_load_verify_mapped", "%s",
          e ? e : "(no error)");
    sqlite3_free(e);
    e = NULL;
    snprintf(sql, sizeof sql,
             "SELECT json_extract(ram_load('%s', 0), '$.verified') || ' ' || "
             "json_extract(ram_load('%s'), '$.verified') || ' ' || "
             "json_extract(ram_model(), '$.verified')",
             path, path);
    rc = sql_text(db, sql, &got);
    check(rc == SQLITE_OK && got && !strcmp(got, "0 1 1"), "limits_sql_ram_load_verify_later", "rc %d: %s", rc,
          got ? got : sqlite3_errmsg(db));
    free(got);
    got = NULL;
    static const char *bad[] = {"2", "-1", "'0'", "0.0", "NULL"};
    for (int i = 0; i < 5; i++) {
        snprintf(sql, sizeof sql, "SELECT ram_load('%s', %s)", path, bad[i]);
        rc = sqlite3_exec(db, sql, 0, 0, &e);
        check(rc == SQLITE_ERROR && e && strstr(e, "argument 2 (verify the checksum) must be 0 or 1"),
              "limits_sql_ram_load_verify_arg", "%s: %s", bad[i], e ? e : "(no error)");
        sqlite3_free(e);
        e = NULL;
    }
    sqlite3_close(db);
    free(m);
}

/* ram_load(path)'s digest as malloc'd text, or the error message prefixed with "error: ". */
static char *sql_load_digest(sqlite3 *db, const char *path)
{
    char sql[1024], *got = NULL;
    snprintf(sql, sizeof sql, "SELECT json_extract(ram_load('%s'), '$.digest')", path);
    if (sql_text(db, sql, &got) != SQLITE_OK) {
        char buf[600];
        snprintf(buf, sizeof buf, "error: %s", sqlite3_errmsg(db));
        free(got);
        got = strdup(buf);
    }
    return got ? got : strdup("(null)");
}

/* ram_tags() of an image file under tests/data: the tags, or the error
** message prefixed with "error: " (malloc'd). */
static char *sql_tags(sqlite3 *db, const char *image)
{
    size_t n = 0;
    void *b = read_file(data_path(image), &n);
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    if (b && sqlite3_prepare_v2(db, "SELECT ram_tags(?)", -1, &st, 0) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, b, (int)n, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *z = sqlite3_column_text(st, 0);
            out = strdup(z ? (const char *)z : "");
        }
    }
    if (!out) {
        char buf[600];
        snprintf(buf, sizeof buf, "error: %s", sqlite3_errmsg(db));
        out = strdup(buf);
    }
    sqlite3_finalize(st);
    free(b);
    return out;
}

/* Copies build_dir()/models/name to tmpdir/to; returns the path. */
static const char *copy_model(const char *name, const char *to)
{
    char src[512];
    size_t n = 0;
    snprintf(src, sizeof src, "%s/models/%s", build_dir(), name);
    void *b = read_file(src, &n);
    check(b != NULL, "limits_change_read_model", "cannot read %s", src);
    const char *p = write_tmp(to, b ? b : "", b ? n : 0);
    free(b);
    return p;
}

/* A view's function that gives the model file a new mtime, once. */
static char g_touch_path[512];
static int g_touch_left;
static void touch_model(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc, (void)argv;
    if (g_touch_left > 0) {
        struct timespec later[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
        struct stat sb;
        stat(g_touch_path, &sb);
        later[1].tv_sec = sb.st_mtim.tv_sec + 1; /* a different mtime even on a coarse clock */
        later[1].tv_nsec = sb.st_mtim.tv_nsec;
        utimensat(AT_FDCWD, g_touch_path, later, 0);
        g_touch_left--;
    }
    sqlite3_result_int(ctx, 1);
}

/* A FIFO as model path: open() would block until a writer comes, forever.
** alarm(10) ends the suite (SIGALRM) rather than hanging it. */
static void test_fifo(void)
{
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/model.fifo", tmpdir);
    if (mkfifo(fifo, 0600)) {
        check(0, "limits_fifo_mkfifo", "mkfifo %s failed", fifo);
        return;
    }
    alarm(10);
    double t0 = now_s();
    expect_load("limits_fifo_core", fifo, 1, RAM_ERR_IO, "not a regular file");
    sqlite3 *db = open_ext();
    char *got = sql_load_digest(db, fifo);
    check(strstr(got, "error: ") == got && strstr(got, "not a regular file"), "limits_fifo_sql", "%s", got);
    printf("  limits_fifo_sql: %s (%.2f s)\n", got, now_s() - t0);
    free(got);
    sqlite3_close(db);
    alarm(0);
}

/* A model file replaced by rename: ram_load maps the new file; a connection
** that loaded the old one keeps working on it. */
static void test_rename(void)
{
    const char *path = copy_model("golden_ram_plus.ram", "swap.ram");
    char p[512], other[512];
    snprintf(p, sizeof p, "%s", path);
    snprintf(other, sizeof other, "%s/models/golden_ram.ram", build_dir());
    sqlite3 *db1 = open_ext(), *db2 = open_ext();
    char *d_old = sql_load_digest(db1, p), *d_want = sql_load_digest(db2, other);
    char *before = sql_tags(db1, "golden/images/img0.jpg");
    const char *next = copy_model("golden_ram.ram", "swap.new");
    check(rename(next, p) == 0, "limits_rename_mv", "rename onto %s failed", p);
    char *d_new = sql_load_digest(db2, p);
    check(strcmp(d_new, d_want) == 0 && strcmp(d_new, d_old) != 0, "limits_rename_new_digest",
          "after the rename ram_load gives %s; old file %s, new file %s", d_new, d_old, d_want);
    printf("  limits_rename_new_digest: %s -> %s\n", d_old, d_new);
    char *after = sql_tags(db1, "golden/images/img1.png");
    check(strncmp(before, "error: ", 7) && strncmp(after, "error: ", 7), "limits_rename_old_user_works",
          "before '%s', after '%s'", before, after);
    free(d_old);
    free(d_want);
    free(d_new);
    free(before);
    free(after);
    sqlite3_close(db1);
    sqlite3_close(db2);
}

/* A model file truncated or rewritten in place: an error before the next
** inference (core and SQL), not a SIGBUS in the mapping. */
static void test_truncated_in_place(void)
{
    const char *path = copy_model("golden_ram_plus_clip.ram", "core_trunc.ram");
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    struct ram_model *m = NULL;
    struct ram_state *st = NULL;
    struct ram_error err;
    err.msg[0] = 0;
    ram_status s0 = ram_model_init_from_file(p, NULL, &m, &err);
    if (!s0) s0 = ram_state_init(m, &st, &err);
    ram_status s1 = s0 ? s0 : ram_model_check_file(m, &err);
    check(s0 == RAM_OK && s1 == RAM_OK, "limits_check_file_ok", "load %d, check %d: %s", s0, s1, err.msg);
    if (!s0) {
        check(truncate(p, 4096) == 0, "limits_check_file_truncate", "truncate %s failed", p);
        s1 = ram_model_check_file(m, &err);
        check(s1 == RAM_ERR_IO && strstr(err.msg, "changed on disk"), "limits_check_file_truncated", "status %d: %s",
              s1, err.msg);
        size_t n = 0;
        void *img = read_file(data_path("golden/images/img1.png"), &n);
        struct ram_model_info info;
        ram_model_get_info(m, &info);
        float *probs = malloc(sizeof(float) * (size_t)info.num_class);
        s1 = ram_tag_image(st, img, n, NULL, NULL, probs, &err);
        check(s1 == RAM_ERR_IO && strstr(err.msg, "changed on disk"), "limits_check_file_tag_image", "status %d: %s",
              s1, err.msg);
        printf("  limits_check_file_tag_image: %s\n", err.msg);
        free(probs);
        free(img);
    }
    ram_state_free(st);
    ram_model_free(m);

    /* Same size, new mtime: rewritten in place. */
    path = copy_model("golden_ram.ram", "core_touch.ram");
    snprintf(p, sizeof p, "%s", path);
    m = NULL;
    s0 = ram_model_init_from_file(p, NULL, &m, &err);
    if (!s0) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {0, 0}};
        clock_gettime(CLOCK_REALTIME, &ts[1]);
        ts[1].tv_sec += 10;
        check(utimensat(AT_FDCWD, p, ts, 0) == 0, "limits_check_file_utime", "utimensat %s failed", p);
        s1 = ram_model_check_file(m, &err);
    }
    check(s0 == RAM_OK && s1 == RAM_ERR_IO && strstr(err.msg, "changed on disk"), "limits_check_file_rewritten",
          "load %d, check %d: %s", s0, s1, err.msg);
    ram_model_free(m);

    /* From SQL: the inference after the truncation is an error; the process lives on. */
    path = copy_model("golden_ram_plus_clip.ram", "sql_trunc.ram");
    snprintf(p, sizeof p, "%s", path);
    sqlite3 *db = open_ext();
    char *d = sql_load_digest(db, p), *t0 = sql_tags(db, "golden/images/img0.jpg");
    check(strncmp(d, "error: ", 7) && strncmp(t0, "error: ", 7), "limits_sql_trunc_before", "%s; %s", d, t0);
    /* Image embeddings made before: ram_score on them only runs the text tower and the tagger. */
    size_t n = 0;
    void *img = read_file(data_path("golden/images/img0.jpg"), &n);
    sqlite3_stmt *ins = NULL;
    sqlite3_exec(db, "CREATE TEMP TABLE e(b)", 0, 0, 0);
    if (img && sqlite3_prepare_v2(db, "INSERT INTO e VALUES (ram_embed(?))", -1, &ins, 0) == SQLITE_OK) {
        sqlite3_bind_blob(ins, 1, img, (int)n, SQLITE_STATIC);
        check(sqlite3_step(ins) == SQLITE_DONE, "limits_sql_trunc_embed", "%s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(ins);
    free(img);
    check(truncate(p, 4096) == 0, "limits_sql_trunc_truncate", "truncate %s failed", p);
    char *t1 = sql_tags(db, "golden/images/img1.png");
    check(strstr(t1, "error: ") == t1 && strstr(t1, "changed on disk"), "limits_sql_trunc_tags", "%s", t1);
    printf("  limits_sql_trunc_tags: %s\n", t1);
    char *sc = NULL;
    int rc = sql_text(db, "SELECT ram_score(b, 'a cat asleep on a sofa') FROM e", &sc);
    check(rc != SQLITE_OK && strstr(sqlite3_errmsg(db), "changed on disk"), "limits_sql_trunc_text", "rc %d: %s", rc,
          rc ? sqlite3_errmsg(db) : "(no error)");
    free(sc);
    free(d);
    free(t0);
    free(t1);
    sqlite3_close(db);
}

/* Rewritten in place with another valid model (same inode, new mtime):
** the connection maps the file again on its next call, as a new ram_load
** would, instead of failing every call. */
static void test_rewritten_in_place(void)
{
    char p[512];
    size_t n = 0;
    const char *path = copy_model("golden_ram_plus_clip.ram", "sql_rewrite.ram");
    snprintf(p, sizeof p, "%s", path);
    sqlite3 *db = open_ext();
    char *d = sql_load_digest(db, p);
    char src[512];
    snprintf(src, sizeof src, "%s/models/golden_ram.ram", build_dir());
    void *other = read_file(src, &n);
    FILE *f = other ? fopen(p, "r+b") : NULL; /* in place: the same inode */
    int wrote = f && ftruncate(fileno(f), 0) == 0 && fwrite(other, 1, n, f) == n;
    if (f) fclose(f);
    struct timespec later[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    utimensat(AT_FDCWD, p, later, 0); /* a new mtime even on a coarse clock */
    char *t1 = sql_tags(db, "golden/images/img1.png");
    char *d2 = NULL;
    sql_text(db, "SELECT json_extract(ram_model(), '$.digest')", &d2);
    char *d3 = sql_load_digest(db, src);
    check(wrote && strncmp(t1, "error: ", 7) && d2 && d3 && !strcmp(d2, d3) && strcmp(d, d2),
          "limits_sql_rewritten_reloaded", "wrote %d, tags '%s', digest %s -> %s (want %s)", wrote, t1, d,
          d2 ? d2 : "?", d3 ? d3 : "?");
    free(other);
    free(d);
    free(d2);
    free(d3);
    free(t1);
    sqlite3_close(db);
}

/* Rewritten while ram_tags() is in the middle of its call (here: from the
** main.ram_thresholds view it reads): the call fails cleanly, it does not
** remap under itself (that freed buffers in use: ASan heap-use-after-free);
** the next call maps the new file. */
static void test_rewritten_midcall(void)
{
    const char *path = copy_model("golden_ram_plus_clip.ram", "sql_midcall.ram");
    snprintf(g_touch_path, sizeof g_touch_path, "%s", path);
    g_touch_left = 1;
    sqlite3 *db = open_ext();
    char *d = sql_load_digest(db, g_touch_path);
    sqlite3_create_function(db, "touch_model", 0, SQLITE_UTF8, 0, touch_model, 0, 0);
    sqlite3_exec(db, "CREATE VIEW ram_thresholds AS SELECT 'tag0' AS tag, 0.5 AS threshold WHERE touch_model()", 0, 0,
                 0);
    char *t0 = sql_tags(db, "golden/images/img0.jpg");
    char *t1 = sql_tags(db, "golden/images/img0.jpg");
    check(g_touch_left == 0 && strstr(t0, "changed on disk") && strncmp(t1, "error: ", 7),
          "limits_sql_rewritten_midcall", "touched %d; first call: %s; second: %s", 1 - g_touch_left, t0, t1);
    free(d);
    free(t0);
    free(t1);
    sqlite3_close(db);
}

static void test_images(void)
{
    static float chw[3 * 64 * 64];
    struct ram_error err;
    size_t n = 0;
    const char *bombs[] = {"images/bomb.png", "images/bomb.webp"};
    for (int i = 0; i < 2; i++) {
        void *b = read_file(data_path(bombs[i]), &n);
        double t0 = now_s();
        ram_status rc = b ? ram_image_preprocess(b, n, 64, NULL, chw, &err) : RAM_ERR_IO;
        double dt = now_s() - t0;
        char name[64];
        snprintf(name, sizeof name, "limits_image_bomb_%s", strchr(bombs[i], '.') + 1);
        check(rc == RAM_ERR_TOO_BIG && strstr(err.msg, "over the limit") && dt < 2.0, name, "status %s in %.2f s: %s",
              ram_status_str(rc), dt, rc ? err.msg : "");
        printf("  %s: %s (%.3f s)\n", bombs[i], rc ? err.msg : "", dt);
        free(b);
    }
    void *b = read_file(data_path("golden/images/img1.png"), &n);
    struct ram_image_params p = ram_image_default_params();
    check(p.max_pixels == 100000000ull, "limits_image_default_100mp", "%llu", (unsigned long long)p.max_pixels);
    p.max_pixels = 1000;
    ram_status rc = b ? ram_image_preprocess(b, n, 64, &p, chw, &err) : RAM_ERR_IO;
    check(rc == RAM_ERR_TOO_BIG && strstr(err.msg, "over the limit of 1000"), "limits_image_max_pixels", "%s",
          rc ? err.msg : "accepted");
    free(b);
}

static void test_text(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt", build_dir());
    size_t n = 0;
    char *v = read_file(path, &n);
    struct ram_bpe *bpe = NULL;
    struct ram_error err;
    if (!v || ram_bpe_init(v, n, &bpe, &err)) {
        check(0, "limits_text_vocab", "cannot load %s", path);
        free(v);
        return;
    }
    free(v);
    size_t big = (size_t)RAM_BPE_MAX_TEXT + 1;
    char *t = malloc(big);
    memset(t, 'a', big);
    int32_t ids[RAM_CLIP_CONTEXT];
    int nid = 0;
    ram_status rc = ram_bpe_tokenize(bpe, t, big, ids, RAM_CLIP_CONTEXT, &nid, &err);
    check(rc == RAM_ERR_TOO_BIG && err.msg[0], "limits_text_over_max", "%s", rc ? err.msg : "accepted");
    printf("  %zu bytes: %s\n", big, rc ? err.msg : "");
    rc = ram_bpe_tokenize(bpe, t, big - 1, ids, RAM_CLIP_CONTEXT, &nid, &err);
    check(rc == RAM_OK && nid == RAM_CLIP_CONTEXT, "limits_text_at_max", "%s", rc ? err.msg : "");
    ram_bpe_free(bpe);

    /* From SQL: ram_tokenize and ram_score name their limit. */
    sqlite3 *db = NULL;
    char *e = NULL;
    snprintf(path, sizeof path, "%s/ram.so", build_dir());
    sqlite3_open(":memory:", &db);
    sqlite3_enable_load_extension(db, 1);
    sqlite3_load_extension(db, path, 0, 0);
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT ram_load('%s/models/golden_ram_plus_clip.ram')", build_dir());
    sqlite3_exec(db, sql, 0, 0, 0);
    const char *q[] = {"SELECT ram_tokenize(printf('%.*c', 2000000, 'a'))",
                       "SELECT ram_score(x'00', printf('%.*c', 2000000, 'a'))"};
    const char *names[] = {"limits_sql_tokenize_too_long", "limits_sql_score_too_long"};
    for (int i = 0; i < 2; i++) {
        int src = sqlite3_exec(db, q[i], 0, 0, &e);
        check(src != SQLITE_OK && e && strstr(e, "too long"), names[i], "%s", e ? e : "(no error)");
        printf("  %s: %s\n", names[i], e ? e : "");
        sqlite3_free(e);
        e = NULL;
    }
    sqlite3_close(db);
    free(t);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ram_limits_XXXXXX");
    if (!mkdtemp(tmpdir)) return 2;
    test_images();
    test_text();
    test_model_files();
    test_fifo();
    test_rename();
    test_truncated_in_place();
    test_rewritten_in_place();
    test_rewritten_midcall();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) printf("could not remove %s\n", tmpdir);
    (void)check_close_npy;
    return harness_exit();
}
