/*
** cascade_refit.c — the principal axes, the weighted ridge fit and the
** ranking of ram_index's refit cascade (cascade_refit.h).
*/
#include "cascade_refit.h"
#include "internal.h"
#include "sgemm.h"

#include <math.h>
#include <stdlib.h> /* qsort */
#include <string.h>

#define AXES_ITERS 30    /* subspace iterations: the basis, not the eigenvalues, is what the fit needs */
#define PIVOT_TOL 1e-12  /* relative pivot under which a direction is dropped */
#define COEF_ONE 16383.0 /* the largest |coefficient| in predict's fixed point (p <= 512 fits int32) */

int ram_refit_solve(double *a, double *b, int n)
{
    double dmax = 0;
    for (int i = 0; i < n * n; i++)
        if (!isfinite(a[i])) goto bad;
    for (int i = 0; i < n; i++) {
        if (!isfinite(b[i])) goto bad;
        dmax = a[i * n + i] > dmax ? a[i * n + i] : dmax;
    }
    int rank = 0;
    double tol = PIVOT_TOL * dmax;
    /* Cholesky, lower triangle in place; a dropped column is all zeros */
    for (int j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
        if (!(d > tol)) {
            for (int i = j; i < n; i++) a[i * n + j] = 0;
            continue;
        }
        d = sqrt(d);
        a[j * n + j] = d;
        rank++;
        for (int i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
    }
    for (int i = 0; i < n; i++) { /* L z = b */
        double s = b[i];
        for (int k = 0; k < i; k++) s -= a[i * n + k] * b[k];
        b[i] = a[i * n + i] != 0 ? s / a[i * n + i] : 0;
    }
    for (int i = n - 1; i >= 0; i--) { /* L^T x = z */
        double s = b[i];
        for (int k = i + 1; k < n; k++) s -= a[k * n + i] * b[k];
        b[i] = a[i * n + i] != 0 ? s / a[i * n + i] : 0;
    }
    return rank;
bad:
    memset(b, 0, sizeof(double) * (size_t)n);
    return -1;
}

ram_status ram_refit_ridge(const float *f, const float *y, const float *wt, int m, int p, double lam, double *coef,
                           struct ram_error *err)
{
    int n1 = p + 1;
    if (m < 1 || p < 0 || p > 4096 || !(lam >= 0))
        return ram_fail(err, RAM_ERR_ARG, "refit: bad sizes (%d rows, %d features)", m, p);
    double *mu = ram_calloc((size_t)n1 * 2 + (size_t)n1 * n1 + n1, sizeof(double));
    float *x = ram_malloc(sizeof(float) * (size_t)m * n1), *g = ram_malloc(sizeof(float) * (size_t)n1 * n1);
    if (!mu || !x || !g) {
        ram_free(mu), ram_free(x), ram_free(g);
        return ram_fail(err, RAM_ERR_NOMEM, "refit: out of memory");
    }
    double *sd = mu + n1, *a = sd + n1, *rhs = a + (size_t)n1 * n1, sw = 0;
    ram_status rc = RAM_OK;
    for (int i = 0; i < m && rc == RAM_OK; i++) {
        double w = wt ? wt[i] : 1;
        if (!isfinite(y[i]) || !(w >= 0) || !isfinite(w)) rc = RAM_ERR_ARG;
        sw += w;
        for (int j = 0; j < p; j++) {
            if (!isfinite(f[(size_t)i * p + j])) rc = RAM_ERR_ARG;
            mu[j] += f[(size_t)i * p + j];
        }
    }
    if (rc || !(sw > 0)) {
        ram_free(mu), ram_free(x), ram_free(g);
        return ram_fail(err, RAM_ERR_ARG, "refit: non-finite values or no weight");
    }
    for (int j = 0; j < p; j++) mu[j] /= m;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < p; j++) {
            double d = f[(size_t)i * p + j] - mu[j];
            sd[j] += d * d;
        }
    for (int j = 0; j < p; j++) sd[j] = sqrt(sd[j] / m) + 1e-6;
    /* rows sqrt(w) [1, (f - mu) / sd]: x^T x is the weighted normal matrix */
    for (int i = 0; i < m; i++) {
        double r = sqrt(wt ? wt[i] : 1);
        float *xi = x + (size_t)i * n1;
        xi[0] = (float)r;
        for (int j = 0; j < p; j++) xi[1 + j] = (float)(r * (f[(size_t)i * p + j] - mu[j]) / sd[j]);
        for (int j = 0; j < n1; j++) rhs[j] += xi[j] * r * y[i];
    }
    ram_sgemm(1, 0, n1, n1, m, 1.0f, x, n1, x, n1, 0.0f, g, n1, 0);
    for (int i = 0; i < n1; i++)
        for (int j = 0; j < n1; j++) /* symmetric by construction: the lower triangle, mirrored */
            a[i * n1 + j] = i >= j ? g[i * n1 + j] : g[j * n1 + i];
    for (int j = 1; j < n1; j++) a[j * n1 + j] += lam * sw;
    ram_refit_solve(a, rhs, n1);
    coef[0] = rhs[0];
    for (int j = 0; j < p; j++) {
        coef[1 + j] = rhs[1 + j] / sd[j];
        coef[0] -= coef[1 + j] * mu[j];
    }
    ram_free(mu), ram_free(x), ram_free(g);
    return RAM_OK;
}

/* Orthonormalises the p rows of q (dim each) in place, in order (modified
** Gram-Schmidt in double, twice); a row that falls in the span of the ones
** before it is replaced by the first unit vector that does not. */
static void orthonormalise(float *q, int p, int dim, double *v)
{
    int next_e = 0;
    for (int i = 0; i < p; i++) {
        for (int d = 0; d < dim; d++) v[d] = q[(size_t)i * dim + d];
        for (int tries = 0;; tries++) {
            double before = 0, nrm = 0;
            for (int d = 0; d < dim; d++) before += v[d] * v[d];
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < i; j++) {
                    const float *qj = q + (size_t)j * dim;
                    double s = 0;
                    for (int d = 0; d < dim; d++) s += v[d] * qj[d];
                    for (int d = 0; d < dim; d++) v[d] -= s * qj[d];
                }
            for (int d = 0; d < dim; d++) nrm += v[d] * v[d];
            if (nrm > 1e-12 * before && nrm > 1e-300) {
                nrm = 1 / sqrt(nrm);
                for (int d = 0; d < dim; d++) q[(size_t)i * dim + d] = (float)(v[d] * nrm);
                break;
            }
            if (tries > dim) { /* cannot happen for i < dim; keeps the loop bounded */
                memset(q + (size_t)i * dim, 0, sizeof(float) * (size_t)dim);
                break;
            }
            memset(v, 0, sizeof(double) * (size_t)dim);
            v[next_e++ % dim] = 1;
        }
    }
}

ram_status ram_refit_axes(const float *x, int m, int dim, int p, float *mean, float *axes, float *scale,
                          struct ram_error *err)
{
    if (m < 1 || dim < 1 || dim > 65536 || p < 1 || p > dim)
        return ram_fail(err, RAM_ERR_ARG, "refit: bad sizes for the axes (%d rows of %d, %d axes)", m, dim, p);
    float *xc = ram_malloc(sizeof(float) * (size_t)m * dim), *cov = ram_malloc(sizeof(float) * (size_t)dim * dim);
    float *y = ram_malloc(sizeof(float) * (size_t)p * dim);
    double *acc = ram_malloc(sizeof(double) * (size_t)dim);
    if (!xc || !cov || !y || !acc) {
        ram_free(xc), ram_free(cov), ram_free(y), ram_free(acc);
        return ram_fail(err, RAM_ERR_NOMEM, "refit: out of memory");
    }
    memset(acc, 0, sizeof(double) * (size_t)dim);
    for (int i = 0; i < m; i++)
        for (int d = 0; d < dim; d++) acc[d] += x[(size_t)i * dim + d];
    for (int d = 0; d < dim; d++) mean[d] = (float)(acc[d] / m);
    for (int i = 0; i < m; i++)
        for (int d = 0; d < dim; d++) xc[(size_t)i * dim + d] = x[(size_t)i * dim + d] - mean[d];
    ram_sgemm(1, 0, dim, dim, m, 1.0f / (float)m, xc, dim, xc, dim, 0.0f, cov, dim, 0);
    /* a fixed pseudo-random start, then q <- orth(q cov) */
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < (size_t)p * dim; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        axes[i] = (float)((double)(s >> 11) * (1.0 / 9007199254740992.0) - 0.5);
    }
    orthonormalise(axes, p, dim, acc);
    for (int it = 0; it < AXES_ITERS; it++) {
        ram_sgemm(0, 0, p, dim, dim, 1.0f, axes, dim, cov, dim, 0.0f, y, dim, 0);
        memcpy(axes, y, sizeof(float) * (size_t)p * dim);
        orthonormalise(axes, p, dim, acc);
    }
    /* each axis' int8 step from the rows' largest |coordinate| (float, in
    ** dimension order: the steps the copies of ram_index were made with) */
    for (int j = 0; j < p; j++) scale[j] = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < p; j++) {
            float z = 0;
            for (int d = 0; d < dim; d++) z += xc[(size_t)i * dim + d] * axes[(size_t)j * dim + d];
            scale[j] = fabsf(z) > scale[j] ? fabsf(z) : scale[j];
        }
    for (int j = 0; j < p; j++) scale[j] = scale[j] > 0 ? scale[j] * 1.25f / 127 : 1;
    ram_free(xc), ram_free(cov), ram_free(y), ram_free(acc);
    return RAM_OK;
}

ram_status ram_refit_project_q8(float *x, int m, int dim, const float *mean, const float *axes, const float *scale,
                                int p, int8_t *q, struct ram_error *err)
{
    if (m < 0 || dim < 1 || p < 1 || p > dim)
        return ram_fail(err, RAM_ERR_ARG, "refit: bad sizes for the projection (%d rows of %d, %d axes)", m, dim, p);
    if (m == 0) return RAM_OK;
    float *z = ram_malloc(sizeof(float) * (size_t)m * p);
    if (!z) return ram_fail(err, RAM_ERR_NOMEM, "refit: out of memory");
    for (int i = 0; i < m; i++)
        for (int d = 0; d < dim; d++) x[(size_t)i * dim + d] -= mean[d];
    ram_sgemm(0, 1, m, p, dim, 1.0f, x, dim, axes, dim, 0.0f, z, p, 0);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < p; j++) {
            float v = roundf(z[(size_t)i * p + j] / scale[j]);
            q[(size_t)i * p + j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    ram_free(z);
    return RAM_OK;
}

void ram_refit_query_coef(const float *t, int dim, const float *axes, const float *scale, int p, float *c)
{
    for (int j = 0; j < p; j++) {
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)axes[(size_t)j * dim + d] * t[d];
        c[j] = (float)s * scale[j];
    }
}

/* acc[i] = sum_j cq[j] q[i * p + j], 16 at a time: int8 widened to int16,
** pairs multiplied and summed to int32 (vpmaddwd); the same integers as the
** plain loop, in any order. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
__attribute__((target("avx2"))) static void dots_avx2(const int8_t *q, int64_t n, int p, const int16_t *cq,
                                                      int32_t *acc)
{
    int p16 = p & ~15;
    for (int64_t i = 0; i < n; i++) {
        const int8_t *r = q + i * p;
        __m256i s = _mm256_setzero_si256();
        for (int j = 0; j < p16; j += 16) {
            __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r + j)));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i *)(cq + j))));
        }
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        int32_t t = _mm_cvtsi128_si32(h);
        for (int j = p16; j < p; j++) t += (int32_t)cq[j] * r[j];
        acc[i] = t;
    }
}
#endif

ram_status ram_refit_predict_q8(const int8_t *q, int64_t n, int p, const float *c, float c0, float *pred)
{
    /* 16-bit fixed-point coefficients: the integer dot products vectorise
    ** (and give the same sums in any order); the ranking only needs the
    ** coefficients to 1 part in 16383 of the largest. */
    int16_t cq[RAM_REFIT_MAX_AXES];
    float cmax = 0;
    if (p < 1 || p > RAM_REFIT_MAX_AXES || n < 0) return RAM_ERR_ARG; /* the fixed point's range, cq's size */
    for (int j = 0; j < p; j++) cmax = fabsf(c[j]) > cmax ? fabsf(c[j]) : cmax;
    float unit = cmax > 0 ? cmax / (float)COEF_ONE : 0;
    for (int j = 0; j < p; j++) cq[j] = (int16_t)(cmax > 0 ? lrintf(c[j] / unit) : 0);
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2")) {
        int32_t acc[256];
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
            int nb = n - i0 < 256 ? (int)(n - i0) : 256;
            dots_avx2(q + i0 * p, nb, p, cq, acc);
            for (int i = 0; i < nb; i++) pred[i0 + i] = c0 + unit * (float)acc[i];
        }
        return RAM_OK;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        const int8_t *r = q + i * p;
        int32_t acc = 0;
        for (int j = 0; j < p; j++) acc += (int32_t)cq[j] * r[j];
        pred[i] = c0 + unit * (float)acc;
    }
    return RAM_OK;
}

/* ------------------------------------------------------------------ the rounds */

/* A bounded min-heap of (prediction, position): the cap best, ties to the
** lower position. */
struct pick {
    float v;
    int pos;
};
static int pick_better(const struct pick *a, const struct pick *b)
{
    return a->v > b->v || (a->v == b->v && a->pos < b->pos);
}
static void pick_add(struct pick *h, int *n, int cap, float v, int pos)
{
    struct pick x = {v, pos};
    int i;
    if (*n == cap) {
        if (!pick_better(&x, &h[0])) return;
        h[0] = x, i = 0;
        for (;;) { /* sift down: the worse child up */
            int w = i, l = 2 * i + 1, r = l + 1;
            if (l < cap && pick_better(&h[w], &h[l])) w = l;
            if (r < cap && pick_better(&h[w], &h[r])) w = r;
            if (w == i) return;
            struct pick t = h[i];
            h[i] = h[w], h[w] = t, i = w;
        }
    }
    i = (*n)++;
    h[i] = x;
    while (i > 0 && pick_better(&h[(i - 1) / 2], &h[i])) {
        struct pick t = h[i];
        h[i] = h[(i - 1) / 2], h[(i - 1) / 2] = t, i = (i - 1) / 2;
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

struct ranked {
    float y;
    int i;
};
static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    return x->y < y->y ? -1 : x->y > y->y ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* The best cap unscored positions by pred into pos (increasing), marked done. */
static int pick_next(const float *pred, unsigned char *done, int64_t n, int cap, struct pick *h, int *pos)
{
    int m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!done[i]) pick_add(h, &m, cap, pred[i], (int)i);
    for (int i = 0; i < m; i++) pos[i] = h[i].pos, done[h[i].pos] = 1;
    qsort(pos, (size_t)m, sizeof(int), cmp_int);
    return m;
}

ram_status ram_refit_cascade(const struct ram_refit_table *t, const float *cos_coef, int budget,
                             int (*score)(void *arg, const int *pos, int n, float *probs), void *arg, int *pos,
                             float *probs, int *n_scored, struct ram_error *err)
{
    int64_t n = t->n;
    int p = t->p;
    *n_scored = 0;
    if (n < 0 || n > 0x7fffffff || p < 1 || p > RAM_REFIT_MAX_AXES || budget < 0)
        return ram_fail(err, RAM_ERR_ARG, "refit: bad sizes (%lld pictures, %d axes)", (long long)n, p);
    if (budget == 0 || n == 0) return RAM_OK;
    if (budget >= n) { /* every picture: no anchors, no fits (up to n rows of them), one call in order */
        for (int i = 0; i < (int)n; i++) pos[i] = i;
        if (score(arg, pos, (int)n, probs)) return ram_fail(err, RAM_ERR_INTERRUPTED, "refit: stopped by the scorer");
        *n_scored = (int)n;
        return RAM_OK;
    }
    int n0 = (int)((int64_t)budget * RAM_REFIT_ANCHORS / 100); /* 64-bit: budget x 15 passes 2^31 at 143M */
    n0 = n0 < RAM_REFIT_MIN_ANCHORS ? RAM_REFIT_MIN_ANCHORS : n0;
    n0 = n0 > budget ? budget : n0;
    float *pred = ram_malloc(sizeof(float) * (size_t)n), *f = ram_malloc(sizeof(float) * (size_t)budget * p);
    float *y = ram_malloc(sizeof(float) * (size_t)budget * 2), *c = ram_malloc(sizeof(float) * (size_t)p);
    unsigned char *done = ram_calloc((size_t)n, 1);
    struct pick *h = ram_malloc(sizeof(struct pick) * (size_t)budget);
    struct ranked *rk = ram_malloc(sizeof(struct ranked) * (size_t)budget);
    double *coef = ram_malloc(sizeof(double) * ((size_t)p + 1));
    ram_status rc = RAM_OK;
    if (!pred || !f || !y || !c || !done || !h || !rk || !coef) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "refit: out of memory");
        goto done;
    }
    float *w = y + budget;
    /* anchors: half evenly spaced, half the best by the cheap cosine */
    int even = cos_coef ? n0 - n0 / 2 : n0, m = even;
    for (int i = 0; i < even; i++) pos[i] = (int)((double)n * i / even), done[pos[i]] = 1;
    if (cos_coef && n0 > even) {
        ram_refit_predict_q8(t->q, n, p, cos_coef, 0, pred);
        m += pick_next(pred, done, n, n0 - even, h, pos + even);
        qsort(pos, (size_t)m, sizeof(int), cmp_int);
    }
    if (score(arg, pos, m, probs)) {
        rc = ram_fail(err, RAM_ERR_INTERRUPTED, "refit: stopped by the scorer");
        goto done;
    }
    for (int rd = 0; rd < RAM_REFIT_ROUNDS && m < budget; rd++) {
        int per = rd == RAM_REFIT_ROUNDS - 1 ? budget - m : (budget - n0) / RAM_REFIT_ROUNDS;
        if (per < 1) per = budget - m;
        for (int i = 0; i < m; i++) {
            double pr = probs[i] < 1e-6 ? 1e-6 : probs[i] > 1 - 1e-6 ? 1 - 1e-6 : probs[i];
            y[i] = (float)log(pr / (1 - pr));
            for (int j = 0; j < p; j++) f[(size_t)i * p + j] = t->q[(size_t)pos[i] * p + j] * t->scale[j];
        }
        if (rd > 0) { /* weighted to the top: 0.2 + 5 (rank / m)^4 */
            for (int i = 0; i < m; i++) rk[i].y = y[i], rk[i].i = i;
            qsort(rk, (size_t)m, sizeof *rk, cmp_ranked);
            for (int i = 0; i < m; i++) {
                double r = (double)i / m;
                w[rk[i].i] = (float)(0.2 + 5 * r * r * r * r);
            }
        }
        rc = ram_refit_ridge(f, y, rd > 0 ? w : 0, m, p, RAM_REFIT_LAMBDA, coef, err);
        if (rc) goto done;
        for (int j = 0; j < p; j++) c[j] = (float)(coef[1 + j] * t->scale[j]);
        ram_refit_predict_q8(t->q, n, p, c, (float)coef[0], pred);
        int got = pick_next(pred, done, n, per, h, pos + m);
        if (score(arg, pos + m, got, probs + m)) {
            rc = ram_fail(err, RAM_ERR_INTERRUPTED, "refit: stopped by the scorer");
            goto done;
        }
        m += got;
    }
    *n_scored = m;
done:
    ram_free(pred), ram_free(f), ram_free(y), ram_free(c), ram_free(done), ram_free(h), ram_free(rk), ram_free(coef);
    return rc;
}
