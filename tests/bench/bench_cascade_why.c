/*
** bench_cascade_why.c — why the cascade of bench_cascade misses the exact
** top-20, in numbers: for every query it reads the exact MATCH score of every
** row of a table (one exhaustive scan) and the CLS embedding of every row,
** and prints
**   (a) what the rows made from two real pictures plus noise do to the exact
**       score: how it follows the score of the picture it was made from
**       (its parent a, named in its path "made/I.aA.bB" by bench_cascade),
**       and how much of the exact top-20 comes from a few parents;
**   (b) how close the exact top-100 lie: the scores at ranks 1, 20, 21, 100
**       and how many rows score within eps of the 20th;
**   (c) the rank correlation (Spearman) of each proxy with the exact score
**       (CLS cosine, its 1-bit sign-code Hamming distance, and for the made
**       rows the parent's own exact score, an oracle of "which picture"), and
**       the recall@20 each proxy would allow if the exact stage scored its
**       best P rows (the ceiling of a cascade built on it). A fourth proxy
**       follows the decoder without new storage: the query's exact score on
**       M anchor rows (every n/M-th) is regressed (ridge, on logits) on those
**       rows' stored class probabilities (as logits), and every row is then
**       ranked by the fitted combination of its own stored probabilities.
**       On tables up to MAX_SUMMARY_ROWS rows two more measure what a summary
**       of the tokens keeps: the decoder's own score with every token
**       replaced by the CLS, and with the CLS then the mean of the other
**       tokens (in RAM++ the CLS is that mean, so the two agree).
**
**     bench_cascade_why MODEL DB TABLE [QUERIES [TEXT_MODEL]]   (RAM_SO: the extension)
**
** TEXT_MODEL: for a MODEL without a text encoder (the full-size random
** ones), the query texts are embedded by TEXT_MODEL's (the bundled default
** model's: the same 512-wide CLIP space) and the exact score of every row
** is computed here by the table's model over its stored tokens, as MATCH
** would.
**
** A diagnostic for docs/SCALE.md, run by hand (minutes at 1M rows: one
** exhaustive scan per query); prints "# ..." lines and "why_* value" lines.
*/
#include "bench_util.h"
#include "cache_score.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

#define K 20
#define MAXQ 16
#define MAX_SUMMARY_ROWS 100000 /* the decoder-on-a-summary proxies: 4 KB per row */

static const char *const g_aQuery[MAXQ] = {
    "a red circle",          "two blue stars",       "a striped square",   "many small yellow hearts",
    "a green triangle",      "a dotted purple ring", "an orange arrow",    "a cross on a black background",
    "a large pink heart",    "three cyan squares",   "a checkered star",   "a brown circle at the top left",
    "a plain white picture", "a gray background",    "a noisy background", "two small red triangles",
};

typedef struct {
    int n;                /* rows */
    long *aRowid;         /* rowid of row i */
    int *aParent;         /* row index of the parent (a), -1 for a real picture */
    float *aCls;          /* n x dim, unit length */
    unsigned char *aCode; /* n x code bytes */
    float *aFeat;         /* n x (1 + nClass): 1, then the stored class logits (floor for those not kept) */
    unsigned char **aTok; /* each row's packed tokens (only when scored here, not by MATCH) */
    size_t nTokB;
    float *aSum; /* n x 2 x dim: the CLS and the mean of the other tokens (small tables only) */
    int dim, nCode, nClass;
} Rows;

static uint32_t get32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static float get_f32(const unsigned char *p)
{
    uint32_t u = get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float logit(double p)
{
    p = p < 1e-6 ? 1e-6 : p > 1 - 1e-6 ? 1 - 1e-6 : p;
    return (float)log(p / (1 - p));
}

/* Solves the symmetric positive definite system A x = b (n x n, A destroyed) by Cholesky. */
static int solve_spd(double *A, double *b, int n)
{
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int k = 0; k < j; k++) d -= A[j * n + k] * A[j * n + k];
        if (d <= 0) return 1;
        d = sqrt(d);
        A[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (int k = 0; k < j; k++) v -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = v / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++) v -= A[i * n + k] * b[k];
        b[i] = v / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = b[i];
        for (int k = i + 1; k < n; k++) v -= A[k * n + i] * b[k];
        b[i] = v / A[i * n + i];
    }
    return 0;
}

/* The anchor-regression proxy (header comment): out[i] for every row. */
static void anchor_proxy(const Rows *r, const float *score, int nAnchor, float *out)
{
    int d = 1 + r->nClass, step = r->n / nAnchor > 0 ? r->n / nAnchor : 1;
    double *A = calloc((size_t)d * d, sizeof(double)), *b = calloc((size_t)d, sizeof(double));
    for (int i = 0; i < r->n; i += step) {
        const float *f = r->aFeat + (size_t)i * d;
        double y = logit(score[i]);
        for (int a = 0; a < d; a++) {
            b[a] += f[a] * y;
            for (int c = 0; c <= a; c++) A[a * d + c] += (double)f[a] * f[c];
        }
    }
    double tr = 0;
    for (int a = 0; a < d; a++) tr += A[a * d + a];
    for (int a = 0; a < d; a++) A[a * d + a] += 1e-3 * tr / d; /* ridge */
    if (solve_spd(A, b, d)) memset(b, 0, sizeof(double) * d);
    for (int i = 0; i < r->n; i++) {
        const float *f = r->aFeat + (size_t)i * d;
        double v = 0;
        for (int a = 0; a < d; a++) v += b[a] * f[a];
        out[i] = (float)v;
    }
    free(A), free(b);
}

/* The decoder's own score of each row with its tokens replaced by a
** summary (a measure of what a summary keeps, not a fast proxy: it costs
** the exact scorer): mode 0, every token the CLS; mode 1, the CLS then
** the mean of the other tokens in their places. */
static int summary_proxy(const Rows *r, const struct ram_model *m, const float *qv, int nTok, int mode, float *out)
{
    struct ram_cache_query *cq = 0;
    struct ram_error err;
    if (ram_cache_query_init(m, qv, 1, 1, 64, &cq, &err)) return fprintf(stderr, "query: %s\n", err.msg), 1;
    float *buf = malloc(sizeof(float) * 64 * nTok * r->dim);
    struct ram_cache_tokens v[64];
    for (int i0 = 0; i0 < r->n; i0 += 64) {
        int n = r->n - i0 < 64 ? r->n - i0 : 64;
        for (int i = 0; i < n; i++) {
            const float *sm = r->aSum + (size_t)(i0 + i) * 2 * r->dim;
            float *t = buf + (size_t)i * nTok * r->dim;
            for (int j = 0; j < nTok; j++)
                memcpy(t + (size_t)j * r->dim, sm + (j && mode ? r->dim : 0), sizeof(float) * r->dim);
            v[i] = (struct ram_cache_tokens){nTok, r->dim, NULL, NULL, t, 0};
        }
        if (ram_cache_score(cq, v, n, out + i0, &err)) return fprintf(stderr, "score: %s\n", err.msg), 1;
    }
    free(buf);
    ram_cache_query_free(cq);
    return 0;
}

/* Index of the value v in a sorted-by-key permutation: ranks (average ties). */
static const float *g_key;
static int cmp_desc(const void *a, const void *b)
{
    float x = g_key[*(const int *)a], y = g_key[*(const int *)b];
    return x > y ? -1 : x < y ? 1 : (*(const int *)a - *(const int *)b);
}
static void ranks_of(const float *v, int n, int *perm, double *rank)
{
    for (int i = 0; i < n; i++) perm[i] = i;
    g_key = v;
    qsort(perm, (size_t)n, sizeof(int), cmp_desc);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[perm[j + 1]] == v[perm[i]]) j++;
        for (int t = i; t <= j; t++) rank[perm[t]] = 0.5 * (i + j);
        i = j + 1;
    }
}

/* Spearman's rho of x and y over the rows with mask[i] (all when mask NULL). */
static double spearman(const float *x, const float *y, int n, const char *mask)
{
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i]) a[m] = x[i], b[m] = y[i], m++;
    int *perm = malloc(sizeof(int) * (m ? m : 1));
    double *ra = malloc(sizeof(double) * (m ? m : 1)), *rb = malloc(sizeof(double) * (m ? m : 1));
    ranks_of(a, m, perm, ra);
    ranks_of(b, m, perm, rb);
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < m; i++) ma += ra[i], mb += rb[i];
    ma /= m, mb /= m;
    for (int i = 0; i < m; i++)
        sab += (ra[i] - ma) * (rb[i] - mb), saa += (ra[i] - ma) * (ra[i] - ma), sbb += (rb[i] - mb) * (rb[i] - mb);
    free(a), free(b), free(perm), free(ra), free(rb);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

/* Of the exact top-K (top[]), how many lie in the best P rows by proxy. */
static double ceiling_recall(const float *proxy, int n, const int *top, int P, int *perm, double *rank)
{
    ranks_of(proxy, n, perm, rank);
    int hit = 0;
    for (int i = 0; i < K; i++) hit += rank[top[i]] < P;
    return (double)hit / K;
}

static int load_rows(sqlite3 *db, const char *zTable, Rows *r)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*), max(rowid) FROM %s", zTable);
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, sql, -1, &s, 0);
    if (sqlite3_step(s) != SQLITE_ROW) return 1;
    r->n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    r->aRowid = malloc(sizeof(long) * r->n);
    if (r->aTok) free(r->aTok), r->aTok = calloc((size_t)r->n, sizeof(unsigned char *));
    r->aParent = malloc(sizeof(int) * r->n);
    r->nCode = (int)ram_cache_code_size(r->dim);
    r->aCls = malloc(sizeof(float) * (size_t)r->n * r->dim);
    r->aCode = malloc((size_t)r->n * r->nCode);
    snprintf(sql, sizeof sql, "SELECT rowid, path, cls, entry FROM %s ORDER BY rowid", zTable);
    sqlite3_prepare_v2(db, sql, -1, &s, 0);
    int i = 0;
    unsigned char unit[4 + 4096];
    struct ram_error err;
    while (sqlite3_step(s) == SQLITE_ROW && i < r->n) {
        r->aRowid[i] = (long)sqlite3_column_int64(s, 0);
        const char *p = (const char *)sqlite3_column_text(s, 1), *a = p ? strstr(p, ".a") : 0;
        r->aParent[i] = a ? atoi(a + 2) : -1; /* the parent's index among the real pictures = its row */
        const float *c = sqlite3_column_blob(s, 2);
        if (sqlite3_column_bytes(s, 2) != (int)(sizeof(float) * r->dim)) return fprintf(stderr, "bad cls\n"), 1;
        double ss = 0;
        for (int d = 0; d < r->dim; d++) ss += (double)c[d] * c[d];
        for (int d = 0; d < r->dim; d++) r->aCls[(size_t)i * r->dim + d] = (float)(c[d] / sqrt(ss + 1e-30));
        ram_cache_pack_unit(c, r->dim, unit, sizeof unit, &err);
        ram_cache_unit_code(unit, ram_cache_unit_size(r->dim), r->dim, r->aCode + (size_t)i * r->nCode, &err);
        const unsigned char *e = sqlite3_column_blob(s, 3);
        if (sqlite3_column_bytes(s, 3) < 132) return fprintf(stderr, "bad entry\n"), 1;
        if (!r->aFeat) {
            r->nClass = (int)get32(e + 24);
            r->aFeat = malloc(sizeof(float) * (size_t)r->n * (1 + r->nClass));
        }
        float fl = get_f32(e + 28), *f = r->aFeat + (size_t)i * (1 + r->nClass);
        f[0] = 1;
        for (int k = 0; k < r->nClass; k++) f[1 + k] = logit(fl);
        for (uint32_t o = 4; o + 6 <= get32(e + 112); o += 6) {
            unsigned k = e[128 + o] | e[128 + o + 1] << 8;
            if ((int)k < r->nClass) f[1 + k] = logit(get_f32(e + 128 + o + 2));
        }
        if (r->aTok) {
            uint32_t nProb = get32(e + 112);
            r->nTokB = get32(e + 116);
            r->aTok[i] = malloc(r->nTokB);
            memcpy(r->aTok[i], e + 128 + nProb, r->nTokB);
        }
        if (r->n <= MAX_SUMMARY_ROWS) {
            uint32_t nProb = get32(e + 112), nTokB = get32(e + 116), nTok = get32(e + 16);
            struct ram_cache_tokens v;
            struct ram_error e3;
            if (!r->aSum) r->aSum = malloc(sizeof(float) * (size_t)r->n * 2 * r->dim);
            float *tok = malloc(sizeof(float) * nTok * r->dim), *out = r->aSum + (size_t)i * 2 * r->dim;
            if (ram_cache_view(e + 128 + nProb, nTokB, (int)nTok, r->dim, &v, &e3))
                return fprintf(stderr, "bad tokens: %s\n", e3.msg), 1;
            ram_cache_dequant(&v, tok);
            memcpy(out, tok, sizeof(float) * r->dim);
            for (int d = 0; d < r->dim; d++) {
                double m = 0;
                for (uint32_t t = 1; t < nTok; t++) m += tok[(size_t)t * r->dim + d];
                out[r->dim + d] = (float)(m / (nTok - 1));
            }
            free(tok);
        }
        if (++i % 100000 == 0) fprintf(stderr, "\r# %d rows read", i);
    }
    sqlite3_finalize(s);
    r->n = i;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) return fprintf(stderr, "usage: bench_cascade_why MODEL DB TABLE [QUERIES [TEXT_MODEL]]\n"), 2;
    const char *zModel = argv[1], *zDb = argv[2], *zTable = argv[3];
    int nQ = argc > 4 ? atoi(argv[4]) : 4;
    if (nQ < 1 || nQ > MAXQ) nQ = 4;
    const char *so = getenv("RAM_SO") ? getenv("RAM_SO") : "build/ram";
    setenv("RAM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    sqlite3 *db = 0;
    char *err = 0;
    sqlite3_open(zDb, &db);
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, so, 0, &err)) return fprintf(stderr, "load %s: %s\n", so, err), 1;
    char *zSql = sqlite3_mprintf("SELECT ram_load('%q')", zModel);
    sqlite3_exec(db, zSql, 0, 0, 0);
    sqlite3_free(zSql);
    sqlite3_exec(db, "PRAGMA cache_size = -2000000", 0, 0, 0);

    struct ram_model *pModel = 0;
    struct ram_error merr;
    if (ram_model_init_from_file(zModel, NULL, &pModel, &merr)) return fprintf(stderr, "model: %s\n", merr.msg), 1;
    Rows r = {0};
    sqlite3_stmt *s = 0;
    /* A model without a text encoder (the full-size random ones): the texts are
    ** embedded by TEXT_MODEL's, and the exact scores computed here with the
    ** table's model over its stored tokens (what MATCH computes). */
    sqlite3 *dbText = db;
    if (argc > 5) {
        sqlite3_open(":memory:", &dbText);
        sqlite3_enable_load_extension(dbText, 1);
        if (sqlite3_load_extension(dbText, so, 0, &err)) return fprintf(stderr, "load %s: %s\n", so, err), 1;
        zSql = sqlite3_mprintf("SELECT ram_load('%q')", argv[5]);
        sqlite3_exec(dbText, zSql, 0, 0, 0);
        sqlite3_free(zSql);
        r.aTok = calloc(1, 1); /* set below, once the row count is known */
    }
    sqlite3_prepare_v2(dbText, "SELECT length(ram_text_embed('x')) / 4", -1, &s, 0);
    sqlite3_step(s);
    r.dim = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    double t0 = bench_now();
    if (load_rows(db, zTable, &r)) return 1;
    /* rowid -> row */
    long maxId = 0;
    for (int i = 0; i < r.n; i++) maxId = r.aRowid[i] > maxId ? r.aRowid[i] : maxId;
    int *aRow = malloc(sizeof(int) * (maxId + 1));
    for (int i = 0; i < r.n; i++) aRow[r.aRowid[i]] = i;
    int nReal = 0;
    for (int i = 0; i < r.n; i++) nReal += r.aParent[i] < 0;
    printf("# %s: %d rows (%d real pictures), dim %d, read in %.1f s\n", zTable, r.n, nReal, r.dim, bench_now() - t0);

    float *score = malloc(sizeof(float) * r.n), *cosv = malloc(sizeof(float) * r.n), *ham = malloc(sizeof(float) * r.n),
          *par = malloc(sizeof(float) * r.n), *anc1 = malloc(sizeof(float) * r.n), *anc2 = malloc(sizeof(float) * r.n),
          *sum0 = malloc(sizeof(float) * r.n), *sum1 = malloc(sizeof(float) * r.n);
    int *perm = malloc(sizeof(int) * r.n), top[100];
    double *rank = malloc(sizeof(double) * r.n);
    char *realMask = malloc(r.n), *madeMask = malloc(r.n);
    for (int i = 0; i < r.n; i++) realMask[i] = r.aParent[i] < 0, madeMask[i] = !realMask[i];
    /* survivors P as fractions of the table (at least K) */
    static const double aFrac[] = {0.0002, 0.001, 0.004, 0.016, 0.05, 0.1, 0.25};
    static const double aEps[] = {1e-4, 1e-3, 1e-2};
    for (int q = 0; q < nQ; q++) {
        /* the query's unit embedding and code */
        float qv[4096];
        unsigned char unit[4 + 4096], qc[512];
        struct ram_error e2;
        sqlite3_prepare_v2(dbText, "SELECT ram_text_embed(?1)", -1, &s, 0);
        sqlite3_bind_text(s, 1, g_aQuery[q], -1, SQLITE_STATIC);
        sqlite3_step(s);
        memcpy(qv, sqlite3_column_blob(s, 0), sizeof(float) * r.dim);
        sqlite3_finalize(s);
        ram_cache_pack_unit(qv, r.dim, unit, sizeof unit, &e2);
        ram_cache_unit_code(unit, ram_cache_unit_size(r.dim), r.dim, qc, &e2);
        /* the exact score of every row */
        char sql[256];
        t0 = bench_now();
        int m = 0;
        if (r.aTok) {
            double qn2 = 0;
            float qu2[4096];
            for (int d = 0; d < r.dim; d++) qn2 += (double)qv[d] * qv[d];
            for (int d = 0; d < r.dim; d++) qu2[d] = (float)(qv[d] / sqrt(qn2));
            struct ram_cache_query *cq = 0;
            struct ram_cache_tokens v[64];
            if (ram_cache_query_init(pModel, qu2, 1, 1, 64, &cq, &e2)) return fprintf(stderr, "%s\n", e2.msg), 1;
            for (int i0 = 0; i0 < r.n; i0 += 64) {
                int n = r.n - i0 < 64 ? r.n - i0 : 64;
                for (int i = 0; i < n; i++)
                    if (ram_cache_view(r.aTok[i0 + i], r.nTokB, pModel->n_image_tokens, r.dim, &v[i], &e2))
                        return fprintf(stderr, "%s\n", e2.msg), 1;
                if (ram_cache_score(cq, v, n, score + i0, &e2)) return fprintf(stderr, "%s\n", e2.msg), 1;
            }
            ram_cache_query_free(cq);
            m = r.n;
        } else {
            snprintf(sql, sizeof sql, "SELECT rowid, score FROM %s WHERE %s MATCH ?1", zTable, zTable);
            sqlite3_prepare_v2(db, sql, -1, &s, 0);
            sqlite3_bind_text(s, 1, g_aQuery[q], -1, SQLITE_STATIC);
            while (sqlite3_step(s) == SQLITE_ROW) {
                long id = (long)sqlite3_column_int64(s, 0);
                if (id <= maxId) score[aRow[id]] = (float)sqlite3_column_double(s, 1), m++;
            }
            sqlite3_finalize(s);
        }
        double tScan = bench_now() - t0;
        double qs = 0;
        for (int d = 0; d < r.dim; d++) qs += (double)qv[d] * qv[d];
        for (int i = 0; i < r.n; i++) {
            double c = 0;
            const float *x = r.aCls + (size_t)i * r.dim;
            for (int d = 0; d < r.dim; d++) c += (double)x[d] * qv[d];
            cosv[i] = (float)(c / sqrt(qs));
            ham[i] = (float)-ram_cache_code_distance(qc, r.aCode + (size_t)i * r.nCode, (size_t)r.nCode);
            par[i] = r.aParent[i] < 0 ? score[i] : score[r.aParent[i]];
        }
        anchor_proxy(&r, score, 200, anc1);
        anchor_proxy(&r, score, 1000, anc2);
        int bSum = r.aSum && pModel->n_image_tokens > 1;
        if (bSum) {
            double qn = 0;
            for (int d = 0; d < r.dim; d++) qn += (double)qv[d] * qv[d];
            float qu[4096];
            for (int d = 0; d < r.dim; d++) qu[d] = (float)(qv[d] / sqrt(qn));
            if (summary_proxy(&r, pModel, qu, pModel->n_image_tokens, 0, sum0) ||
                summary_proxy(&r, pModel, qu, pModel->n_image_tokens, 1, sum1))
                return 1;
            double r0 = spearman(sum0, score, r.n, 0), r1 = spearman(sum1, score, r.n, 0);
            printf("#   Spearman with the exact score: the decoder on the CLS alone %.3f, on the CLS and the mean "
                   "token %.3f\n",
                   r0, r1);
            printf("why_q%d_rho_dec_cls %.3f\nwhy_q%d_rho_dec_mean %.3f\n", q, r0, q, r1);
        }
        /* (b) the exact top-100 */
        ranks_of(score, r.n, perm, rank);
        for (int i = 0; i < 100 && i < r.n; i++) top[i] = perm[i];
        float s20 = score[top[K - 1]];
        printf("# query %d '%s': exhaustive scan %.2f s over %d rows\n", q, g_aQuery[q], tScan, m);
        printf("#   exact scores at ranks 1/20/21/100: %.6f %.6f %.6f %.6f\n", score[top[0]], s20, score[top[K]],
               score[top[99]]);
        printf("why_q%d_top 1:%.6f/20:%.6f/21:%.6f/100:%.6f\n", q, score[top[0]], s20, score[top[K]], score[top[99]]);
        for (int j = 0; j < 3; j++) {
            int nWithin = 0;
            for (int i = 0; i < r.n; i++) nWithin += score[i] >= s20 - aEps[j];
            printf("#   rows scoring >= s20 - %g: %d\n", aEps[j], nWithin);
            printf("why_q%d_within_%g %d\n", q, aEps[j], nWithin);
        }
        /* (a) the families of the top-20 */
        if (nReal < r.n) {
            int aFam[K], nFam = 0, nRealTop = 0;
            for (int i = 0; i < K; i++) {
                int f = r.aParent[top[i]] < 0 ? top[i] : r.aParent[top[i]];
                nRealTop += r.aParent[top[i]] < 0;
                int seen = 0;
                for (int j = 0; j < nFam; j++) seen |= aFam[j] == f;
                if (!seen) aFam[nFam++] = f;
            }
            /* the best real picture's exact rank among the real ones, and the fraction of variance
            ** of the made rows' score their parent explains (between-family / total) */
            double mAll = 0, vAll = 0, vWithin = 0;
            int nMade = 0;
            for (int i = 0; i < r.n; i++)
                if (madeMask[i]) mAll += score[i], nMade++;
            mAll /= nMade;
            /* family means */
            double *fs = calloc((size_t)r.n, sizeof(double));
            int *fn = calloc((size_t)r.n, sizeof(int));
            for (int i = 0; i < r.n; i++)
                if (madeMask[i]) fs[r.aParent[i]] += score[i], fn[r.aParent[i]]++;
            for (int i = 0; i < r.n; i++)
                if (madeMask[i]) {
                    double d = score[i] - mAll, w = score[i] - fs[r.aParent[i]] / fn[r.aParent[i]];
                    vAll += d * d, vWithin += w * w;
                }
            free(fs), free(fn);
            printf("#   top-20: %d distinct parent pictures, %d real pictures; parent explains %.3f of the made "
                   "rows' score variance\n",
                   nFam, nRealTop, vAll > 0 ? 1 - vWithin / vAll : 0);
            printf("why_q%d_top20_parents %d\nwhy_q%d_top20_real %d\nwhy_q%d_parent_r2 %.3f\n", q, nFam, q, nRealTop, q,
                   vAll > 0 ? 1 - vWithin / vAll : 0);
            printf("#   Spearman(made row score, parent's score) %.3f\n", spearman(score, par, r.n, madeMask));
            printf("why_q%d_rho_parent %.3f\n", q, spearman(score, par, r.n, madeMask));
        }
        /* (c) the proxies */
        double rc = spearman(cosv, score, r.n, 0), rh = spearman(ham, score, r.n, 0);
        double rcr = spearman(cosv, score, r.n, realMask), rhr = spearman(ham, score, r.n, realMask);
        printf("#   Spearman with the exact score: CLS cosine %.3f (real pictures %.3f), 1-bit codes %.3f (real "
               "%.3f)\n",
               rc, rcr, rh, rhr);
        printf("why_q%d_rho_cls %.3f\nwhy_q%d_rho_cls_real %.3f\nwhy_q%d_rho_code %.3f\nwhy_q%d_rho_code_real %.3f\n",
               q, rc, q, rcr, q, rh, q, rhr);
        double ra1 = spearman(anc1, score, r.n, 0), ra2 = spearman(anc2, score, r.n, 0);
        printf("#   Spearman with the exact score: stored class logits fitted on 200 / 1000 anchors %.3f / %.3f\n", ra1,
               ra2);
        printf("why_q%d_rho_anchor200 %.3f\nwhy_q%d_rho_anchor1000 %.3f\n", q, ra1, q, ra2);
        printf("#   recall@20 ceiling if the exact stage scored the best P by the proxy:\n");
        for (size_t j = 0; j < sizeof aFrac / sizeof aFrac[0]; j++) {
            int P = (int)(aFrac[j] * r.n) > K ? (int)(aFrac[j] * r.n) : K;
            double c1 = ceiling_recall(cosv, r.n, top, P, perm, rank);
            double c2 = ceiling_recall(ham, r.n, top, P, perm, rank);
            double c3 = nReal < r.n ? ceiling_recall(par, r.n, top, P, perm, rank) : -1;
            double c4 = ceiling_recall(anc1, r.n, top, P, perm, rank);
            double c5 = ceiling_recall(anc2, r.n, top, P, perm, rank);
            if (bSum) {
                double c6 = ceiling_recall(sum0, r.n, top, P, perm, rank),
                       c7 = ceiling_recall(sum1, r.n, top, P, perm, rank);
                printf("#     P=%-6d decoder on the CLS alone %.2f, on the CLS and the mean token %.2f\n", P, c6, c7);
                printf("why_q%d_ceiling_dec_%d %.2f/%.2f\n", q, P, c6, c7);
            }
            printf("#     P=%-6d (%.2f%%) CLS cosine %.2f  1-bit codes %.2f  parent's score (oracle) %.2f  anchors "
                   "200 %.2f  1000 %.2f\n",
                   P, 100 * aFrac[j], c1, c2, c3, c4, c5);
            printf("why_q%d_ceiling_%d %.2f/%.2f/%.2f/%.2f/%.2f\n", q, P, c1, c2, c3, c4, c5);
        }
        fflush(stdout);
    }
    sqlite3_close(db);
    return 0;
}
