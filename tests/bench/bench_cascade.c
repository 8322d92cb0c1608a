/*
** bench_cascade.c — issue 16's search that does not scan, measured: MATCH ... AND
** k = 20 over N stored pictures with the prefilter cascade against the
** exhaustive exact scan (recall@20 and both times, same run, one core), and
** tag = ? ORDER BY score DESC LIMIT 20 of a tag held by half of them (time and
** postings read), and the bytes the codes add per picture.
**
**     bench_cascade MODEL PHOTO_DIR DB N [QUERIES]
**
** The data (built once into DB, reused while it holds N rows): the R real
** pictures of PHOTO_DIR (tests/bench/cascade_photos.py) are inserted with
** MODEL (the bundled default model: real model outputs), then N - R rows are
** made from their entries without the model, each from two real pictures a,
** b (drawn with a fixed seed): tokens x = a + 0.25 (b - a) + 0.25 rms(a) g,
** g standard normal per element, repacked (core/cache_score.h), the unit CLS
** and its code from x's CLS; a's probabilities, except the class of the tag
** bench (class 0), which every other row holds at 0.6 + 0.39 u and the rest
** lack; a fresh key. They go in through the entry column (no inference), in
** transactions of 20,000. A table `real` holds the R real pictures alone.
**
** It also measures the exact stage alone (exact_*: MATCH's scorer over the
** real pictures' token caches, folded against the scorer before it, paired)
** and runs the cascade with the share of the table that rate allows in 0.3 s
** at 1,000,000 pictures (cascade_budget_*).
**
** The exhaustive rankings of the queries (minutes at 1M) are kept in
** DB.TABLE.exact2 and reused; the first query's exhaustive scan is timed in every
** run. Prints "key value" lines (run.sh reads them) and a summary.
*/
#include "bench_util.h"
#include "cache_score.h"
#include "cache_weights.h"
#include "ram.h"

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#define K 20
#define MAXQ 16

static const char *const g_aQuery[MAXQ] = {
    "a red circle",          "two blue stars",       "a striped square",   "many small yellow hearts",
    "a green triangle",      "a dotted purple ring", "an orange arrow",    "a cross on a black background",
    "a large pink heart",    "three cyan squares",   "a checkered star",   "a brown circle at the top left",
    "a plain white picture", "a gray background",    "a noisy background", "two small red triangles",
};

/* 16 other texts (tests/bench/cascade_proxies.py HELDOUT): the refit
** cascade's setting was chosen on the figures of the 16 above */
static const char *const g_aHeldout[MAXQ] = {
    "a blue circle",         "three red stars",       "a dotted square",      "two small green hearts",
    "a yellow triangle",     "a striped orange ring", "a purple arrow",       "a cross on a white background",
    "a large cyan heart",    "many pink squares",     "a checkered circle",   "a red star at the bottom right",
    "a plain black picture", "a brown background",    "a striped background", "one big blue triangle",
};

/* RAM_BENCH_CASCADE_READONLY=1: the database is opened immutable and
** nothing that writes runs (the cascade= sweeps): the refit cascade, the
** exact stage and the exhaustive scan only, on data owned by another tree. */
static int g_readonly;

static uint64_t g_rng = 0x16c16c16c16cull;
static double urand(void)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}
static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static int exec(sqlite3 *db, const char *sql)
{
    char *err = 0;
    int rc = sqlite3_exec(db, sql, 0, 0, &err);
    if (rc) fprintf(stderr, "bench_cascade: %s: %s\n", sql, err ? err : "");
    sqlite3_free(err);
    return rc;
}

static sqlite3_int64 num(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = 0;
    sqlite3_int64 v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, 0) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        fprintf(stderr, "bench_cascade: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return v;
}

static long stat_of(sqlite3 *db, const char *key)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT json_extract(ram_index_stats(), '$.%s')", key);
    return (long)num(db, sql);
}

static uint32_t get32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* One entry blob (ext/entry_blob.c layout 1) as read from the table. */
typedef struct {
    unsigned char *a;
    int n;
} Blob;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Builds the table: real pictures by the model, the rest from their entries. */
static int build(sqlite3 *db, const char *zModel, const char *zDir, long nWant)
{
    DIR *d = opendir(zDir);
    if (!d) return fprintf(stderr, "bench_cascade: cannot open %s\n", zDir), 1;
    char **azName = 0;
    int nName = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".png")) {
            azName = realloc(azName, sizeof(char *) * (nName + 1));
            azName[nName++] = strdup(e->d_name);
        }
    closedir(d);
    qsort(azName, nName, sizeof(char *), cmp_str);
    if (exec(db, sqlite3_mprintf("CREATE VIRTUAL TABLE photos USING ram_index(model='%q', resume=0)", zModel)))
        return 1;
    double t0 = bench_now();
    exec(db, "BEGIN");
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, "INSERT INTO photos(path, image) VALUES(?1, ?2)", -1, &s, 0);
    for (int i = 0; i < nName; i++) {
        char path[4096];
        size_t n = 0;
        snprintf(path, sizeof path, "%s/%s", zDir, azName[i]);
        void *b = bench_read_file(path, &n);
        snprintf(path, sizeof path, "real/%s", azName[i]);
        sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(s, 2, b, (int)n, free);
        if (sqlite3_step(s) != SQLITE_DONE) fprintf(stderr, "bench_cascade: %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_reset(s);
        free(azName[i]);
    }
    free(azName);
    sqlite3_finalize(s);
    exec(db, "COMMIT");
    printf("# %d real pictures embedded in %.1f s\n", nName, bench_now() - t0);
    exec(db, sqlite3_mprintf("CREATE VIRTUAL TABLE real USING ram_index(model='%q', resume=0)", zModel));

    /* The real entries. */
    Blob *aReal = calloc((size_t)nName, sizeof(Blob));
    int nReal = 0;
    sqlite3_prepare_v2(db, "SELECT entry FROM photos ORDER BY rowid", -1, &s, 0);
    while (sqlite3_step(s) == SQLITE_ROW && nReal < nName) {
        aReal[nReal].n = sqlite3_column_bytes(s, 0);
        aReal[nReal].a = malloc((size_t)aReal[nReal].n);
        memcpy(aReal[nReal].a, sqlite3_column_blob(s, 0), (size_t)aReal[nReal].n);
        nReal++;
    }
    sqlite3_finalize(s);
    if (nReal < 2) return fprintf(stderr, "bench_cascade: %d real pictures\n", nReal), 1;
    exec(db, "INSERT INTO real(path, entry) SELECT path, entry FROM photos");
    const unsigned char *h = aReal[0].a;
    int nTok = (int)get32(h + 16), dim = (int)get32(h + 20);
    size_t nTokB = ram_cache_packed_size(nTok, dim), nUnit = ram_cache_unit_size(dim);
    float *xa = malloc(sizeof(float) * nTok * dim), *xb = malloc(sizeof(float) * nTok * dim);
    unsigned char *out = malloc(128 + 4 + 6 * 65536 + nTokB + nUnit);
    struct ram_error err;
    t0 = bench_now();
    exec(db, "BEGIN");
    sqlite3_prepare_v2(db, "INSERT INTO photos(path, entry) VALUES(?1, ?2)", -1, &s, 0);
    for (long i = nReal; i < nWant; i++) {
        int iA = (int)(urand() * nReal) % nReal, iB = (int)(urand() * nReal) % nReal;
        const Blob *A = &aReal[iA], *B = &aReal[iB];
        uint32_t nProbA = get32(A->a + 112);
        struct ram_cache_tokens va, vb;
        if (ram_cache_view(A->a + 128 + nProbA, nTokB, nTok, dim, &va, &err) ||
            ram_cache_view(B->a + 128 + get32(B->a + 112), nTokB, nTok, dim, &vb, &err))
            return fprintf(stderr, "bench_cascade: %s\n", err.msg), 1;
        ram_cache_dequant(&va, xa);
        ram_cache_dequant(&vb, xb);
        for (int t = 0; t < nTok; t++) {
            double ss = 0;
            for (int c = 0; c < dim; c++) ss += (double)xa[t * dim + c] * xa[t * dim + c];
            float rms = (float)sqrt(ss / dim);
            for (int c = 0; c < dim; c++) {
                int j = t * dim + c;
                xa[j] += 0.25f * (xb[j] - xa[j]) + 0.25f * rms * (float)nrand();
            }
        }
        memcpy(out, A->a, 128);
        for (int b = 0; b < 16; b++) out[64 + b] = (unsigned char)(b < 8 ? i >> (8 * b) : 0xA5); /* fresh key */
        /* probabilities: a's, class 0 held by every other row */
        unsigned char *pp = out + 128;
        memcpy(pp, A->a + 128, 4);
        int np = 0;
        if (i % 2) {
            float f = (float)(0.6 + 0.39 * urand());
            uint32_t u;
            memcpy(&u, &f, 4);
            pp[4] = 0, pp[5] = 0;
            put32(pp + 6, u);
            np = 1;
        }
        for (uint32_t o = 4; o + 6 <= nProbA; o += 6) {
            unsigned c = A->a[128 + o] | A->a[128 + o + 1] << 8;
            if (c == 0) continue;
            memcpy(pp + 4 + 6 * np++, A->a + 128 + o, 6);
        }
        uint32_t nProb = 4 + 6 * (uint32_t)np;
        if (ram_cache_pack(xa, nTok, dim, pp + nProb, nTokB, &err) ||
            ram_cache_pack_unit(xa, dim, pp + nProb + nTokB, nUnit, &err))
            return fprintf(stderr, "bench_cascade: %s\n", err.msg), 1;
        put32(out + 112, nProb);
        char path[64];
        snprintf(path, sizeof path, "made/%07ld.a%05d.b%05d", i, iA, iB); /* parents: rowids iA+1, iB+1 */
        sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(s, 2, out, (int)(128 + nProb + nTokB + nUnit), SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE) return fprintf(stderr, "bench_cascade: %s\n", sqlite3_errmsg(db)), 1;
        sqlite3_reset(s);
        if (i % 20000 == 0) {
            exec(db, "COMMIT");
            exec(db, "BEGIN");
            fprintf(stderr, "\r# %ld rows", i);
        }
    }
    sqlite3_finalize(s);
    exec(db, "COMMIT");
    printf("# %ld rows made from the real entries in %.1f s\n", nWant - nReal, bench_now() - t0);
    for (int i = 0; i < nReal; i++) free(aReal[i].a);
    free(aReal), free(xa), free(xb), free(out);
    return 0;
}

/* A query's top k: rowids (-1 past the end) and their exact scores. */
typedef struct {
    sqlite3_int64 id[K];
    double score[K];
} Top;

/* The top k of a query (in *pOut); its time. */
static double topk(sqlite3 *db, const char *zTable, const char *zText, int nPre, Top *pOut)
{
    char sql[256];
    if (nPre)
        snprintf(sql, sizeof sql, "SELECT rowid, score FROM %s WHERE %s MATCH ?1 AND k = %d AND prefilter = %d", zTable,
                 zTable, K, nPre);
    else
        snprintf(sql, sizeof sql, "SELECT rowid, score FROM %s WHERE %s MATCH ?1 AND k = %d", zTable, zTable, K);
    sqlite3_stmt *s = 0;
    double t0 = bench_now();
    if (sqlite3_prepare_v2(db, sql, -1, &s, 0)) return fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db)), -1;
    sqlite3_bind_text(s, 1, zText, -1, SQLITE_STATIC);
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW && n < K) {
        pOut->id[n] = sqlite3_column_int64(s, 0);
        pOut->score[n++] = sqlite3_column_double(s, 1);
    }
    for (; n < K; n++) pOut->id[n] = -1, pOut->score[n] = -1;
    sqlite3_finalize(s);
    return bench_now() - t0;
}

/* Strict recall@K: the fraction of the exact top-K ids that a returned. */
static double recall(const Top *a, const Top *exact)
{
    int hit = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            if (a->id[i] == exact->id[j] && a->id[i] >= 0) {
                hit++;
                break;
            }
    return (double)hit / K;
}

/* Tie-aware recall@K, beside the strict one (never instead): the fraction of
** the K returned rows whose exact score is at least the exact K-th score
** minus TIE_EPS. The scores MATCH returns are the exact ones (the cascade
** scores its survivors with the same scorer, bit for bit), so a returned row
** that is not in the exact top-K but scores within TIE_EPS of it counts. */
#define TIE_EPS 1e-3
static double tie_recall(const Top *a, const Top *exact)
{
    int hit = 0;
    for (int i = 0; i < K; i++) hit += a->id[i] >= 0 && a->score[i] >= exact->score[K - 1] - TIE_EPS;
    return (double)hit / K;
}

/* The exhaustive top-k of every query, from DB.TABLE.exact when it has them. */
static int exact_rankings(sqlite3 *db, const char *zDb, const char *zTable, int nQ, Top *aExact, double *pTime)
{
    char file[4096];
    snprintf(file, sizeof file, "%s.%s.exact2", zDb, zTable);
    size_t n = 0;
    void *p = bench_read_file(file, &n);
    int have = p && n == sizeof(Top) * (size_t)nQ;
    if (have) memcpy(aExact, p, n);
    free(p);
    /* always time one exhaustive scan (the first query), and check it */
    Top a;
    *pTime = topk(db, zTable, g_aQuery[0], 0, &a);
    if (have && memcmp(&a, &aExact[0], sizeof a)) have = 0; /* the data changed */
    if (have) return 0;
    aExact[0] = a;
    for (int q = 1; q < nQ; q++) {
        topk(db, zTable, g_aQuery[q], 0, &aExact[q]);
        fprintf(stderr, "\r# exhaustive ranking %d/%d", q + 1, nQ);
    }
    FILE *f = g_readonly ? 0 : fopen(file, "wb");
    if (f) fwrite(aExact, sizeof(Top), (size_t)nQ, f), fclose(f);
    return 0;
}

/* Recall (strict and tie-aware: mean over the queries, and the worst query's
** strict one) and median time of the cascade at (cascade, prefilter). */
static void run_cascade(sqlite3 *db, const char *zTable, int nQ, const Top *aExact, int nCascade, int nPre,
                        double *pRecall, double *pTie, double *pMin, double *pTime)
{
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES('refit=0'); INSERT INTO %s(%s) VALUES('cascade=%d')", zTable,
             zTable, zTable, zTable, nCascade);
    exec(db, sql);
    double t[MAXQ], sum = 0, sumTie = 0, mn = 1;
    for (int q = 0; q < nQ; q++) {
        Top a;
        t[q] = topk(db, zTable, g_aQuery[q], nPre, &a);
        double r = recall(&a, &aExact[q]);
        sum += r;
        sumTie += tie_recall(&a, &aExact[q]);
        mn = r < mn ? r : mn;
    }
    *pRecall = sum / nQ;
    *pTie = sumTie / nQ;
    *pMin = mn;
    *pTime = bench_median(t, nQ);
}

/* The refit cascade (the default of prefilter = N; refit=64, set by the
** caller) at nPre exact scores: recall against aExact over the texts,
** median time; *pFirst the first query's time (it makes the connection's
** copy of the table when none is current). */
static void run_refit(sqlite3 *db, const char *zTable, const char *const *azText, int nQ, const Top *aExact, int nPre,
                      double *pRecall, double *pTie, double *pMin, double *pTime, double *pFirst)
{
    double t[MAXQ], sum = 0, sumTie = 0, mn = 1;
    for (int q = 0; q < nQ; q++) {
        Top a;
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT rowid, score FROM %s WHERE %s MATCH ?1 AND k = %d AND prefilter = %d", zTable,
                 zTable, K, nPre);
        sqlite3_stmt *s = 0;
        double t0 = bench_now();
        if (sqlite3_prepare_v2(db, sql, -1, &s, 0)) fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_bind_text(s, 1, azText[q], -1, SQLITE_STATIC);
        int n = 0, rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < K) {
            a.id[n] = sqlite3_column_int64(s, 0);
            a.score[n++] = sqlite3_column_double(s, 1);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) fprintf(stderr, "bench_cascade: %s\n", sqlite3_errmsg(db));
        for (; n < K; n++) a.id[n] = -1, a.score[n] = -1;
        sqlite3_finalize(s);
        t[q] = bench_now() - t0;
        if (q == 0 && pFirst) *pFirst = t[q];
        double r = recall(&a, &aExact[q]);
        sum += r;
        sumTie += tie_recall(&a, &aExact[q]);
        mn = r < mn ? r : mn;
    }
    if (pFirst && nQ > 1) t[0] = t[1]; /* the copy's making is reported apart */
    *pRecall = sum / nQ, *pTie = sumTie / nQ, *pMin = mn;
    *pTime = bench_median(t, nQ);
}

/* The refit cascade on zTable: at the share of 1M pictures the exact stage
** scores in 0.3 s (rate), and at 3 % and 5 % of the table; bench texts, and
** the held-out ones when the table is small enough for their exhaustive
** rankings (here, not cached). Prints refit_* lines. */
static void refit_section(sqlite3 *db, const char *zTable, const char *zKey, sqlite3_int64 have, double rate, int nQ,
                          const Top *aExact)
{
    static Top aHeld[MAXQ];
    int bHeld = have <= 100000;
    if (bHeld)
        for (int q = 0; q < MAXQ; q++) topk(db, zTable, g_aHeldout[q], 0, &aHeld[q]);
    const double aShare[] = {rate > 0 ? 0.3 * rate / 1e6 : 0, 0.03, 0.05};
    const char *aTag[] = {"budget", "3pct", "5pct"};
    double first = 0;
    for (int i = 0; i < 3; i++) {
        if (aShare[i] <= 0) continue;
        int nPre = (int)(aShare[i] * (double)have + 0.5);
        nPre = nPre < K ? K : nPre;
        double r, rt, mn, t, rh = -1, mnh = -1, th = 0;
        run_refit(db, zTable, g_aQuery, nQ, aExact, nPre, &r, &rt, &mn, &t, i == 0 ? &first : 0);
        if (bHeld) run_refit(db, zTable, g_aHeldout, MAXQ, aHeld, nPre, &rh, &rt, &mnh, &th, 0);
        printf("# refit cascade on %s, %s: prefilter=%d (%.2f%% of %lld): recall@20 %.3f (worst %.2f) in %.4f s; "
               "held-out %.3f (worst %.2f)\n",
               zTable, aTag[i], nPre, 100.0 * nPre / (double)have, (long long)have, r, mn, t, rh, mnh);
        printf("%s_%s_share %.4f\n%s_%s_prefilter %d\n%s_%s_recall_at_20 %.3f\n%s_%s_worst_recall %.3f\n%s_%s_s %.4f\n",
               zKey, aTag[i], aShare[i], zKey, aTag[i], nPre, zKey, aTag[i], r, zKey, aTag[i], mn, zKey, aTag[i], t);
        if (bHeld)
            printf("%s_%s_heldout_recall_at_20 %.3f\n%s_%s_heldout_worst_recall %.3f\n", zKey, aTag[i], rh, zKey,
                   aTag[i], mnh);
    }
    printf("%s_first_query_s %.3f\n", zKey, first);
}

/* The exact stage's rate on one core: MATCH's scorer (core/cache_score.c)
** over the token caches of up to 4096 stored pictures of zTable, one query
** text, batches of 64 as MATCH scores them; the folded scorer against the
** one before it (ram_cache_query_per_image), alternating rounds of about
** 0.2 s each so that both see the same load. Prints exact_* lines; returns
** the folded scorer's rate (0 when it could not be measured). */
static double exact_rate(sqlite3 *db, const char *zModel, const char *zTable)
{
    enum { NMAX = 4096, B = 64 };
    struct ram_error err;
    struct ram_model *m = 0;
    if (ram_model_init_from_file(zModel, NULL, &m, &err)) {
        fprintf(stderr, "bench_cascade: %s: %s\n", zModel, err.msg);
        return 0;
    }
    double rate = 0;
    int nt = m->n_image_tokens, dim = m->embed_dim, n = 0;
    size_t nb = ram_cache_packed_size(nt, dim);
    unsigned char *blob = malloc(nb * NMAX);
    struct ram_cache_tokens *v = calloc(NMAX, sizeof *v);
    float *lab = malloc(sizeof(float) * dim), *p[4] = {malloc(sizeof(float) * NMAX), malloc(sizeof(float) * NMAX),
                                                       malloc(sizeof(float) * NMAX), malloc(sizeof(float) * NMAX)};
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT tokens FROM %s_tokens LIMIT %d", zTable, NMAX);
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, sql, -1, &s, 0);
    while (s && sqlite3_step(s) == SQLITE_ROW && n < NMAX)
        if ((size_t)sqlite3_column_bytes(s, 0) == nb) {
            memcpy(blob + nb * n, sqlite3_column_blob(s, 0), nb);
            if (ram_cache_view(blob + nb * n, nb, nt, dim, &v[n], &err) == RAM_OK) n++;
        }
    sqlite3_finalize(s);
    sqlite3_prepare_v2(db, "SELECT ram_text_embed(?1)", -1, &s, 0);
    sqlite3_bind_text(s, 1, g_aQuery[0], -1, SQLITE_STATIC);
    int ok = s && sqlite3_step(s) == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == sizeof(float) * dim;
    if (ok) memcpy(lab, sqlite3_column_blob(s, 0), sizeof(float) * dim);
    sqlite3_finalize(s);
    struct ram_cache_query *q = 0;
    n -= n % B;
    if (ok && n >= B && ram_cache_query_init(m, lab, 1, 1, B, &q, &err) == RAM_OK) {
        double t[4] = {0, 0, 0, 0}, cnt[4] = {0, 0, 0, 0}, diff = 0, adiff = 0;
        /* the approximate stage also in batches of 256 (its bf16 products' fixed costs spread over more rows) */
        struct ram_cache_query *q256 = 0;
        int on = ram_cache_query_approx(q, 1), modes = on ? 4 : 2;
        if (on && (ram_cache_query_init(m, lab, 1, 1, 256, &q256, &err) || !ram_cache_query_approx(q256, 1))) modes = 3;
        for (int round = 0; round < 16; round++)
            for (int mode = 0; mode < modes; mode++) { /* 0: per image (before), 1: folded, 2, 3: approximate */
                ram_cache_query_per_image(q, mode == 0);
                ram_cache_query_approx(q, mode == 2);
                int b = mode == 3 ? 256 : B;
                double t0 = bench_now();
                do {
                    for (int i = 0; i < n; i += b)
                        ram_cache_score(mode == 3 ? q256 : q, v + i, n - i < b ? n - i : b, p[mode] + i, &err);
                    cnt[mode] += n;
                } while (bench_now() - t0 < 0.2);
                t[mode] += bench_now() - t0;
            }
        for (int i = 0; i < n; i++) diff = fmax(diff, fabs((double)p[0][i] - p[1][i]));
        for (int i = 0; on && i < n; i++) adiff = fmax(adiff, fabs((double)p[2][i] - p[1][i]));
        ram_cache_query_approx(q, 0);
        ram_cache_query_per_image(q, 0);
        ram_cache_query_free(q256);
        rate = cnt[1] / t[1];
        if (modes == 4) {
            printf("# approximate stage in batches of 256: %.0f scores/s, %.2fx the exact one (batches of 64)\n",
                   cnt[3] / t[3], (cnt[3] / t[3]) / (cnt[1] / t[1]));
            printf("exact_approx256_per_s %.0f\nexact_approx256_speedup %.2f\n", cnt[3] / t[3],
                   (cnt[3] / t[3]) / (cnt[1] / t[1]));
        }
        if (on) {
            printf("# approximate (bf16) stage, same run: %.0f scores/s, %.2fx the exact one; max |approx - exact| "
                   "%.2g\n",
                   cnt[2] / t[2], (cnt[2] / t[2]) / (cnt[1] / t[1]), adiff);
            printf("exact_approx_per_s %.0f\nexact_approx_speedup %.2f\nexact_approx_max_diff %.2g\n", cnt[2] / t[2],
                   (cnt[2] / t[2]) / (cnt[1] / t[1]), adiff);
        }
        /* A query's first batch: with the model's key/value weights already made
        ** (every query after the model's first) against making them in the
        ** query, as every query did before they moved to the model. */
        double ts[2] = {0, 0}, cs[2] = {0, 0};
        for (int round = 0; round < 16; round++)
            for (int mode = 0; mode < 2; mode++) { /* 0: weights made by the query, 1: kept by the model */
                double t0 = bench_now();
                do {
                    struct ram_cache_query *q1 = 0;
                    if (mode == 0) ram_cache_release_weights(m);
                    if (ram_cache_query_init(m, lab, 1, 1, B, &q1, &err) == RAM_OK)
                        ram_cache_score(q1, v, B, p[0], &err);
                    ram_cache_query_free(q1);
                    cs[mode]++;
                } while (bench_now() - t0 < 0.05);
                ts[mode] += bench_now() - t0;
            }
        printf("# a query's first batch of %d: %.3f ms with the model's weights, %.3f ms making them (saves %.3f ms "
               "per query)\n",
               B, 1e3 * ts[1] / cs[1], 1e3 * ts[0] / cs[0], 1e3 * (ts[0] / cs[0] - ts[1] / cs[1]));
        printf("exact_first_batch_ms %.3f\nexact_first_batch_ms_making_weights %.3f\n", 1e3 * ts[1] / cs[1],
               1e3 * ts[0] / cs[0]);
        printf("# exact stage, one core, %d stored pictures of %s: %.0f scores/s folded, %.0f before (%.2fx); max "
               "|difference| %.2g\n",
               n, zTable, cnt[1] / t[1], cnt[0] / t[0], (cnt[1] / t[1]) / (cnt[0] / t[0]), diff);
        printf("exact_per_s %.0f\nexact_per_s_before %.0f\nexact_speedup %.2f\nexact_max_diff %.2g\n", cnt[1] / t[1],
               cnt[0] / t[0], (cnt[1] / t[1]) / (cnt[0] / t[0]), diff);
    } else {
        fprintf(stderr, "bench_cascade: exact rate: %s\n", ok ? err.msg : "no tokens or no text embedding");
    }
    ram_cache_query_free(q);
    ram_model_free(m);
    free(blob), free(v), free(lab), free(p[0]), free(p[1]), free(p[2]), free(p[3]);
    return rate;
}

/* The survivor path's other half: reading a picture's tokens by id, as the
** cascade does for each survivor (SELECT tokens FROM T_tokens WHERE id = ?,
** the blob copied out), over 20,000 ids drawn at random from zTable's
** range; prints exact_token_read_us (per picture, same run as the rates). */
static int cmp_i64(const void *a, const void *b)
{
    sqlite3_int64 x = *(const sqlite3_int64 *)a, y = *(const sqlite3_int64 *)b;
    return (x > y) - (x < y);
}

/* sorted: the ids in increasing order; blob: through sqlite3_blob_reopen and
** sqlite3_blob_read (no SQL statement per row) */
static void token_reads(sqlite3 *db, const char *zTable, const char *zHow, int sorted, int blob)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT max(id) FROM %s_tokens", zTable);
    sqlite3_int64 nMax = num(db, sql);
    snprintf(sql, sizeof sql, "SELECT tokens FROM %s_tokens WHERE id = ?1", zTable);
    sqlite3_stmt *s = 0;
    if (nMax < 1 || sqlite3_prepare_v2(db, sql, -1, &s, 0) != SQLITE_OK) return;
    unsigned char buf[1 << 16];
    uint64_t seed = g_rng;
    g_rng = 0x5eed16; /* the same ids in every call */
    enum { NR = 20000 };
    static sqlite3_int64 aId[NR];
    for (int i = 0; i < NR; i++) aId[i] = 1 + (sqlite3_int64)(urand() * (double)nMax);
    if (sorted) qsort(aId, NR, sizeof aId[0], cmp_i64);
    double t0 = bench_now(), bytes = 0;
    int n = 0;
    char zTok[128];
    snprintf(zTok, sizeof zTok, "%s_tokens", zTable);
    sqlite3_blob *pBlob = 0;
    for (; blob && n < NR; n++) {
        int rc = pBlob ? sqlite3_blob_reopen(pBlob, aId[n])
                       : sqlite3_blob_open(db, "main", zTok, "tokens", aId[n], 0, &pBlob);
        int nb = rc == SQLITE_OK ? sqlite3_blob_bytes(pBlob) : 0;
        if (nb > 0 && nb <= (int)sizeof buf && sqlite3_blob_read(pBlob, buf, nb, 0) == SQLITE_OK) bytes += nb;
    }
    sqlite3_blob_close(pBlob);
    for (; n < NR; n++) {
        sqlite3_bind_int64(s, 1, aId[n]);
        if (sqlite3_step(s) == SQLITE_ROW) {
            int nb = sqlite3_column_bytes(s, 0);
            if (nb <= (int)sizeof buf) memcpy(buf, sqlite3_column_blob(s, 0), (size_t)nb), bytes += nb;
        }
        sqlite3_reset(s);
    }
    double t = bench_now() - t0;
    sqlite3_finalize(s);
    g_rng = seed;
    printf("# reading tokens by id (%s), %d random ids of %lld in %s: %.2f us per picture (%.0f bytes each)\n", zHow, n,
           (long long)nMax, zTable, 1e6 * t / n, bytes / n);
    printf("exact_token_read_us_%s %.2f\n", zHow, 1e6 * t / n);
}

/* The approximate stage as a ranking stage, on real outputs: every picture
** of zTable (up to 20,000) scored exactly and approximately for each query;
** how many members of the exact top 20 fall outside the approximate top N
** (ties at the 20th counted as members), summed over the queries, for a few
** N. Prints exact_approx_miss_N lines. */
static void approx_misses(sqlite3 *db, const char *zModel, const char *zTable, int nQ)
{
    enum { NMAX = 20000, B = 64 };
    static const int aN[] = {20, 32, 50, 100, 200};
    struct ram_error err;
    struct ram_model *m = 0;
    if (ram_model_init_from_file(zModel, NULL, &m, &err)) return;
    int nt = m->n_image_tokens, dim = m->embed_dim, n = 0, miss[5] = {0, 0, 0, 0, 0}, members = 0;
    size_t nb = ram_cache_packed_size(nt, dim);
    unsigned char *blob = malloc(nb * NMAX);
    struct ram_cache_tokens *v = calloc(NMAX, sizeof *v);
    float *lab = malloc(sizeof(float) * dim), *ex = malloc(sizeof(float) * NMAX), *ap = malloc(sizeof(float) * NMAX);
    double worst = 0;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT tokens FROM %s_tokens LIMIT %d", zTable, NMAX);
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, sql, -1, &s, 0);
    while (s && sqlite3_step(s) == SQLITE_ROW && n < NMAX)
        if ((size_t)sqlite3_column_bytes(s, 0) == nb) {
            memcpy(blob + nb * n, sqlite3_column_blob(s, 0), nb);
            if (ram_cache_view(blob + nb * n, nb, nt, dim, &v[n], &err) == RAM_OK) n++;
        }
    sqlite3_finalize(s);
    s = 0;
    sqlite3_prepare_v2(db, "SELECT ram_text_embed(?1)", -1, &s, 0);
    int on = 0;
    for (int qi = 0; s && qi < nQ && n > K; qi++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, g_aQuery[qi], -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_ROW || (size_t)sqlite3_column_bytes(s, 0) != sizeof(float) * dim) break;
        memcpy(lab, sqlite3_column_blob(s, 0), sizeof(float) * dim);
        struct ram_cache_query *q = 0;
        if (ram_cache_query_init(m, lab, 1, 1, B, &q, &err)) break;
        for (int mode = 0; mode < 2; mode++) {
            on = ram_cache_query_approx(q, mode);
            for (int i = 0; i < n; i += B) ram_cache_score(q, v + i, n - i < B ? n - i : B, (mode ? ap : ex) + i, &err);
        }
        ram_cache_query_free(q);
        if (!on) break;
        /* the exact 20th score, and each picture's rank in the approximate order */
        float *srt = malloc(sizeof(float) * n);
        memcpy(srt, ex, sizeof(float) * n);
        float kth = -1;
        for (int k = 0; k < K; k++) { /* K largest by selection: n is small */
            int b = k;
            for (int i = k + 1; i < n; i++)
                if (srt[i] > srt[b]) b = i;
            float tmp = srt[k];
            srt[k] = srt[b], srt[b] = tmp, kth = srt[k];
        }
        free(srt);
        for (int i = 0; i < n; i++) {
            worst = fmax(worst, fabs((double)ap[i] - ex[i]));
            if (ex[i] < kth) continue;
            int better = 0;
            for (int j = 0; j < n; j++) better += ap[j] > ap[i] || (ap[j] == ap[i] && j < i);
            members++;
            for (int k = 0; k < 5; k++) miss[k] += better >= aN[k];
        }
    }
    sqlite3_finalize(s);
    if (on && members) {
        printf("# approximate stage as a ranking stage, %d queries over %d real pictures of %s: exact top-20 members "
               "(%d) outside the approximate top N: ",
               nQ, n, zTable, members);
        for (int k = 0; k < 5; k++) printf("N=%d: %d%s", aN[k], miss[k], k < 4 ? ", " : "");
        printf("; max |approx - exact| %.2g\n", worst);
        for (int k = 0; k < 5; k++) printf("exact_approx_miss_%d %d\n", aN[k], miss[k]);
        printf("exact_approx_members %d\nexact_approx_pictures %d\nexact_approx_rank_max_diff %.2g\n", members, n,
               worst);
    }
    ram_model_free(m);
    free(blob), free(v), free(lab), free(ex), free(ap);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_cascade MODEL PHOTO_DIR DB N [QUERIES]\n");
        return 2;
    }
    const char *zModel = argv[1], *zDir = argv[2], *zDb = argv[3];
    long nWant = atol(argv[4]);
    int nQ = argc > 5 ? atoi(argv[5]) : 8;
    if (nQ < 1 || nQ > MAXQ) nQ = 8;
    const char *so = getenv("RAM_SO") ? getenv("RAM_SO") : "build/ram";
    setenv("RAM_THREADS", "1", 1); /* one core: read by the extension's thread pool and OpenBLAS */
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    g_readonly = getenv("RAM_BENCH_CASCADE_READONLY") && atoi(getenv("RAM_BENCH_CASCADE_READONLY"));
    /* BENCH_CASCADE_EXACT=TABLE: the exact stage alone on DB's TABLE, the
    ** database opened read-only (a shared table may be read, never written) */
    const char *zExact = getenv("BENCH_CASCADE_EXACT");
    if (zExact && *zExact) {
        sqlite3 *db = 0;
        char *err = 0;
        char *zUri = sqlite3_mprintf("file:%s?mode=ro", zDb);
        if (sqlite3_open_v2(zUri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, 0) != SQLITE_OK)
            return fprintf(stderr, "open %s: %s\n", zDb, sqlite3_errmsg(db)), 1;
        sqlite3_free(zUri);
        sqlite3_enable_load_extension(db, 1);
        if (sqlite3_load_extension(db, so, 0, &err)) return fprintf(stderr, "load %s: %s\n", so, err), 1;
        exec(db, sqlite3_mprintf("SELECT ram_load('%q')", zModel));
        double rate = exact_rate(db, zModel, zExact);
        /* the same ids read through SQLite's page cache (the default 2 MB), then
        ** through a memory map of the file, then the page cache again (the
        ** first pass may also pay for the disk) */
        const char *zR = getenv("BENCH_CASCADE_READS") ? getenv("BENCH_CASCADE_READS") : zExact;
        token_reads(db, zR, "first", 0, 0);
        exec(db, "PRAGMA mmap_size = 17179869184");
        token_reads(db, zR, "mmap", 0, 0);
        exec(db, "PRAGMA mmap_size = 0");
        token_reads(db, zR, "cache", 0, 0);
        token_reads(db, zR, "cache_sorted", 1, 0);
        token_reads(db, zR, "blob", 0, 1);
        token_reads(db, zR, "blob_sorted", 1, 1);
        token_reads(db, zR, "cache_again", 0, 0);
        if (!getenv("BENCH_CASCADE_NO_MISSES")) approx_misses(db, zModel, zExact, nQ);
        sqlite3_close(db);
        return rate > 0 ? 0 : 1;
    }
    for (int pass = 0; pass < 2; pass++) {
        sqlite3 *db = 0;
        if (g_readonly) {
            char *zUri = sqlite3_mprintf("file:%s?immutable=1", zDb);
            sqlite3_open_v2(zUri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, 0);
            sqlite3_free(zUri);
        } else {
            sqlite3_open(zDb, &db);
        }
        sqlite3_enable_load_extension(db, 1);
        char *err = 0;
        if (sqlite3_load_extension(db, so, 0, &err)) return fprintf(stderr, "load %s: %s\n", so, err), 1;
        exec(db, sqlite3_mprintf("SELECT ram_load('%q')", zModel));
        exec(db, "PRAGMA cache_size = -2000000");
        sqlite3_int64 have = num(db, "SELECT CASE WHEN (SELECT count(*) FROM sqlite_schema WHERE name = "
                                     "'photos_files') THEN (SELECT count(*) FROM photos_files) ELSE 0 END");
        if (have != nWant) {
            if (pass || g_readonly) return fprintf(stderr, "bench_cascade: build failed\n"), 1;
            sqlite3_close(db);
            unlink(zDb);
            sqlite3_open(zDb, &db);
            sqlite3_enable_load_extension(db, 1);
            sqlite3_load_extension(db, so, 0, 0);
            exec(db, "PRAGMA journal_mode = WAL");
            exec(db, "PRAGMA synchronous = OFF");
            int rc = build(db, zModel, zDir, nWant);
            sqlite3_close(db);
            if (rc) return 1;
            continue;
        }
        sqlite3_int64 nReal = num(db, "SELECT count(*) FROM real_files");
        printf("cascade_pictures %lld\ncascade_real_pictures %lld\ncascade_queries %d\n", (long long)have,
               (long long)nReal, nQ);
        /* warm the page cache: the codes, int8 vectors and tokens are read once */
        num(db, "SELECT sum(length(c)) FROM photos_codes");
        num(db, "SELECT sum(length(v)) FROM photos_cls");

        double rate = exact_rate(db, zModel, "real");
        approx_misses(db, zModel, "real", nQ);

        static Top aExact[MAXQ], aReal[MAXQ];
        double tExact = 0, tRealExact = 0;
        exact_rankings(db, zDb, "photos", nQ, aExact, &tExact);
        exact_rankings(db, zDb, "real", nQ, aReal, &tRealExact);
        printf("cascade_exhaustive_s %.3f\n", tExact);
        /* the refit cascade: time (and recall on made rows) over every picture, recall on the real ones alone */
        /* set once: any commit (a command too) makes the connection's copy again */
        if (!g_readonly)
            exec(db, "INSERT INTO photos(photos) VALUES('refit=64'); INSERT INTO real(real) VALUES('refit=64')");
        refit_section(db, "photos", "refit", have, rate, nQ, aExact);
        refit_section(db, "real", "refit_real", nReal, rate, nQ, aReal);
        if (g_readonly) {
            sqlite3_close(db);
            break;
        }
        /* the sweep: recall@20 and time per (cascade, prefilter) */
        /* cascade=0: the int8 vector of every image (no 1-bit stage), for reference */
        static const int aC[] = {0, 4000, 16000, 0, 4000, 16000, 16000, 64000},
                         aP[] = {200, 200, 200, 1000, 1000, 1000, 4000, 16000};
        double bestT = 1e9;
        int bestC = 0, bestP = 0;
        double bestR = 0, bestMin = 0;
        for (size_t i = 0; i < sizeof aC / sizeof aC[0]; i++) {
            double r, rt, mn, t;
            run_cascade(db, "photos", nQ, aExact, aC[i], aP[i], &r, &rt, &mn, &t);
            printf("# cascade=%-6d prefilter=%-5d recall@20 %.3f (worst query %.2f), tie-aware (eps %g) %.3f  %.3f "
                   "s  (%.0fx faster than exhaustive)\n",
                   aC[i], aP[i], r, mn, TIE_EPS, rt, t, tExact / t);
            printf("cascade_sweep_%d_%d %.3f/%.3f/%.3f/%.4f\n", aC[i], aP[i], r, mn, rt, t);
            if (r >= 0.95 && t < bestT) bestT = t, bestC = aC[i], bestP = aP[i], bestR = r, bestMin = mn;
        }
        /* The budget: the exact scores one core does in 0.3 s (the rate above, the
        ** prefilter stages not counted), as a share of 1,000,000 pictures, applied to
        ** this table: prefilter = that share of its rows (cascade = 4 x that). */
        if (rate > 0) {
            double share = 0.3 * rate / 1e6;
            int nPre = (int)(share * (double)have + 0.5), nCas;
            nPre = nPre < K ? K : nPre;
            nCas = 4 * nPre > 4000 ? 4 * nPre : 4000;
            double r, rt, mn, t;
            run_cascade(db, "photos", nQ, aExact, nCas, nPre, &r, &rt, &mn, &t);
            printf("# the exact stage's 0.3 s at 1M: %.0f scores = %.2f%% of 1M; here prefilter=%d cascade=%d: "
                   "recall@20 %.3f (worst %.2f), tie-aware %.3f, %.3f s\n",
                   0.3 * rate, 100 * share, nPre, nCas, r, mn, rt, t);
            printf("cascade_budget_share %.4f\ncascade_budget_prefilter %d\ncascade_budget_recall_at_20 %.3f\n"
                   "cascade_budget_worst_recall %.3f\ncascade_budget_tie_recall_at_20 %.3f\ncascade_budget_s %.4f\n",
                   share, nPre, r, mn, rt, t);
        }
        /* the default: cascade=4000 (INDEX_CASCADE_DEFAULT), prefilter=200 */
        double r, rt, mn, t;
        run_cascade(db, "photos", nQ, aExact, 4000, 200, &r, &rt, &mn, &t);
        printf("cascade_default_recall_at_20 %.3f\ncascade_default_worst_recall %.3f\ncascade_default_s %.4f\n", r, mn,
               t);
        printf("cascade_default_tie_recall_at_20 %.3f\ncascade_tie_eps %g\n", rt, TIE_EPS);
        printf("cascade_speedup %.1f\n", tExact / t);
        if (bestC)
            printf("cascade_best_at_95 %d/%d\ncascade_best_recall %.3f\ncascade_best_worst %.3f\ncascade_best_s "
                   "%.4f\n",
                   bestC, bestP, bestR, bestMin, bestT);
        /* the real pictures alone, survivors scaled to their count */
        int cR = (int)(nReal / 10 > K ? nReal / 10 : K), pR = (int)(nReal / 50 > K ? nReal / 50 : K);
        run_cascade(db, "real", nQ, aReal, cR, pR, &r, &rt, &mn, &t);
        printf("cascade_real_recall_at_20 %.3f\ncascade_real_worst_recall %.3f\ncascade_real_survivors %d/%d\n", r, mn,
               cR, pR);
        printf("cascade_real_tie_recall_at_20 %.3f\n", rt);
        printf("cascade_real_exhaustive_s %.4f\ncascade_real_s %.4f\n", tRealExact, t);
        exec(db, "INSERT INTO photos(photos) VALUES('refit=64'); INSERT INTO real(real) VALUES('refit=64')");

        /* search by example (index_similar.c): a stored picture's CLS as the query, the CLS cosine of
        ** every picture against the prefilter = N closest by the codes */
        static const int aPx[] = {200, 1000, 4000};
        for (int j = 0; j < 3; j++) {
            double sr = 0, te[MAXQ], tc[MAXQ], mnx = 1;
            for (int qi = 0; qi < nQ; qi++) {
                Top a[2];
                for (int pass2 = 0; pass2 < 2; pass2++) {
                    char sql[256];
                    snprintf(sql, sizeof sql,
                             "SELECT rowid FROM photos WHERE photos MATCH (SELECT cls FROM real WHERE rowid = %d) "
                             "AND k = %d%s",
                             1 + 37 * qi, K, pass2 ? "" : " AND prefilter = ?1");
                    sqlite3_stmt *st = 0;
                    double t0 = bench_now();
                    sqlite3_prepare_v2(db, sql, -1, &st, 0);
                    if (!pass2) sqlite3_bind_int(st, 1, aPx[j]);
                    int n = 0;
                    while (sqlite3_step(st) == SQLITE_ROW && n < K) a[pass2].id[n++] = sqlite3_column_int64(st, 0);
                    for (; n < K; n++) a[pass2].id[n] = -1;
                    sqlite3_finalize(st);
                    (pass2 ? te : tc)[qi] = bench_now() - t0;
                }
                double rr = recall(&a[0], &a[1]);
                sr += rr;
                mnx = rr < mnx ? rr : mnx;
            }
            double tmc = bench_median(tc, nQ), tme = bench_median(te, nQ);
            printf("# search by example, prefilter=%-4d recall@20 %.3f (worst %.2f)  %.4f s, every picture %.3f s\n",
                   aPx[j], sr / nQ, mnx, tmc, tme);
            printf("example_sweep_%d %.3f/%.3f/%.4f/%.4f\n", aPx[j], sr / nQ, mnx, tmc, tme);
        }

        /* tag top-20 of class 0, held by every other row */
        sqlite3_int64 nHeld = num(db, "SELECT count(*) FROM photos WHERE tag = 0"); /* selected: reads them all */
        double tt[21];
        long r0 = stat_of(db, "postings_read");
        for (int i = 0; i < 21; i++) {
            double t0 = bench_now();
            num(db, "SELECT count(*) FROM (SELECT path, score FROM photos WHERE tag = 0 ORDER BY score DESC LIMIT 20)");
            tt[i] = bench_now() - t0;
        }
        long nRead = (stat_of(db, "postings_read") - r0) / 21;
        printf("tag_topk_held %lld\ntag_topk_ms %.3f\ntag_topk_postings_read %ld\n", (long long)nHeld,
               1000 * bench_median(tt, 21), nRead);
        /* storage: the codes per picture (dbstat, pages included) */
        sqlite3_int64 nCodeBytes = num(db, "SELECT sum(pgsize) FROM dbstat WHERE name = 'photos_codes'");
        sqlite3_int64 nImg = num(db, "SELECT count(*) FROM photos_images");
        printf("cascade_code_bytes_per_picture %.1f\n", nImg > 0 ? (double)nCodeBytes / nImg : 0);
        sqlite3_close(db);
        break;
    }
    return 0;
}
