/*
** test_concurrency.c — 4 threads, each with its own connection to its own
** in-memory database, run ram_tags, ram_score (golden_ram_plus_clip.ram) and
** inserts into a ram_index table at the same time, several rounds over the
** four golden images, then a MATCH over the table; every thread's results must equal the sequential run's
** (one string of all results per run, compared byte for byte).
** `make tsan` builds this binary and ram.so with -fsanitize=thread and runs
** it (suppressions with reasons: tests/tsan.supp).
*/
#include "harness.h"
#include <pthread.h>
#include <sqlite3.h>

#define N_THREADS 4
#define ROUNDS 3

static const char *bdir;
static void *img[4];
static int img_n[4];

struct run {
    char *out; /* all results, appended */
    size_t n, cap;
    char err[512];
};

static void app(struct run *r, const char *s)
{
    size_t l = strlen(s);
    if (r->n + l + 2 > r->cap) {
        r->cap = (r->n + l + 2) * 2;
        r->out = realloc(r->out, r->cap);
    }
    memcpy(r->out + r->n, s, l);
    r->n += l;
    r->out[r->n++] = '\n';
    r->out[r->n] = 0;
}

/* Runs sql (image i bound to ?1 when it has one) and appends every column. */
static int q(struct run *r, sqlite3 *db, const char *sql, int i)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, 0) != SQLITE_OK) goto fail;
    if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_blob(st, 1, img[i], img_n[i], SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            app(r, t ? t : "NULL");
        }
    if (rc != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    return 0;
fail:
    if (!r->err[0]) snprintf(r->err, sizeof r->err, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return 1;
}

static void *work(void *arg)
{
    struct run *r = arg;
    sqlite3 *db = NULL;
    char *e = NULL;
    char buf[1024];
    sqlite3_open(":memory:", &db);
    sqlite3_enable_load_extension(db, 1);
    snprintf(buf, sizeof buf, "%s/ram.so", bdir);
    if (sqlite3_load_extension(db, buf, 0, &e) != SQLITE_OK) {
        snprintf(r->err, sizeof r->err, "load: %s", e ? e : "");
        sqlite3_free(e);
        sqlite3_close(db);
        return NULL;
    }
    snprintf(buf, sizeof buf, "SELECT ram_load('%s/models/golden_ram_plus_clip.ram')", bdir);
    q(r, db, buf, 0);
    r->n = 0; /* ram_load's result (a JSON description) is not compared */
    q(r, db, "CREATE VIRTUAL TABLE photos USING ram_index", 0);
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < 4; i++) {
            q(r, db, "SELECT ram_tags(?1)", i);
            q(r, db, "SELECT printf('%.6f', ram_score(?1, 'a photo of a cat'))", i);
            q(r, db, "SELECT printf('%.6f', ram_score(?1, '[\"a dog\",\"a red square\"]'))", i);
            snprintf(buf, sizeof buf, "INSERT INTO photos(path, image) VALUES('r%d_%d', ?1)", round, i);
            q(r, db, buf, i);
        }
    q(r, db, "SELECT path, tags FROM photos ORDER BY path", 0);
    /* MATCH's exact stage: the threads' first MATCH makes the model's folded
    ** key/value weights at once (cache_weights.c publishes one set) */
    q(r, db, "SELECT path, printf('%.6f', score) FROM photos WHERE photos MATCH 'a photo of a cat' AND k = 3", 0);
    sqlite3_close(db);
    return NULL;
}

int main(void)
{
    bdir = getenv("RAM_BUILD");
    if (!bdir || !*bdir) bdir = "build";
    static const char *names[4] = {"golden/images/img0.jpg", "golden/images/img1.png", "golden/images/img2.jpg",
                                   "golden/images/img3.png"};
    for (int i = 0; i < 4; i++) {
        size_t n = 0;
        img[i] = read_file(data_path(names[i]), &n);
        img_n[i] = (int)n;
        if (!img[i]) {
            check(0, "concurrency_images", "cannot read %s", names[i]);
            return harness_exit();
        }
    }
    struct run seq = {0};
    work(&seq);
    check(seq.err[0] == 0 && seq.n > 0, "concurrency_sequential_run", "%s", seq.err);
    struct run par[N_THREADS];
    pthread_t th[N_THREADS];
    memset(par, 0, sizeof par);
    for (int t = 0; t < N_THREADS; t++) pthread_create(&th[t], NULL, work, &par[t]);
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    int same = 1, errs = 0;
    for (int t = 0; t < N_THREADS; t++) {
        if (par[t].err[0]) {
            errs++;
            printf("  thread %d: %s\n", t, par[t].err);
        }
        if (!par[t].out || !seq.out || strcmp(par[t].out, seq.out)) same = 0;
    }
    check(errs == 0, "concurrency_4_threads_no_error", "%d threads failed", errs);
    check(same, "concurrency_4_threads_equal_sequential", "a thread's results differ from the sequential run");
    printf("  %zu bytes of results per run (%d rounds x 4 images x ram_tags, 2 ram_score, index insert; a MATCH)\n",
           seq.n, ROUNDS);
    for (int t = 0; t < N_THREADS; t++) free(par[t].out);
    free(seq.out);
    for (int i = 0; i < 4; i++) free(img[i]);
    (void)check_close_npy;
    return harness_exit();
}
