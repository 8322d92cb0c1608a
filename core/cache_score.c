/*
** cache_score.c — the int8 token cache of ram_index and RAM++ open-set scoring
** from it with the key/value projections folded into the queries. The layout
** and the algebra are described in cache_score.h; this file keeps the same
** order: packing, views, prefilter, the folded scorer, the test reference.
*/
#include "cache_score.h"

#include "cache_weights.h"
#include "gemm_q8.h"
#include "ops.h"
#include "rht.h"
#include "scratch.h"
#include "sgemm.h"
#include "tagger.h"

#include <math.h>
#include <string.h>

static const unsigned char CACHE_MAGIC[4] = {'R', 'T', 'Q', '8'};
#define CACHE_QUANT_INT8 1     /* layout 1: int8, one scale per token */
#define CACHE_QUANT_INT8_RHT 2 /* layout 2: the same after a randomized Hadamard rotation */
#define CACHE_MAX_TOKENS 65535
#define CACHE_MAX_DIM 65535

/* ------------------------------------------------------------------ rotation (rht.c) */

static int is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

/* ------------------------------------------------------------------ packing */

size_t ram_cache_packed_size(int n_tokens, int dim)
{
    if (n_tokens < 1 || dim < 1 || n_tokens > CACHE_MAX_TOKENS || dim > CACHE_MAX_DIM) return 0;
    return RAM_CACHE_HEADER + (size_t)n_tokens * 4 + (size_t)n_tokens * (size_t)dim;
}

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}
static unsigned get_u16(const unsigned char *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }

/* Floats are stored little-endian; on a big-endian host the bytes swap. */
static void put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(u >> (8 * i));
}
static float get_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One row: scale = absmax / 127, q = round(x / scale). Returns 0 if a value is not finite. */
static int quantize_row(const float *x, int dim, float *scale, int8_t *q)
{
    float mx = 0;
    for (int d = 0; d < dim; d++) {
        if (!isfinite(x[d])) return 0;
        float a = fabsf(x[d]);
        mx = a > mx ? a : mx;
    }
    *scale = mx / 127.0f;
    float inv = mx > 0 ? 127.0f / mx : 0;
    for (int d = 0; d < dim; d++) {
        long v = lrintf(x[d] * inv);
        q[d] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return 1;
}

/* Squared quantisation error of one row: sum_d (x_d - scale q_d)^2. */
static double row_error(const float *x, int dim, float scale, const int8_t *q)
{
    double e = 0;
    for (int d = 0; d < dim; d++) {
        double r = (double)x[d] - (double)scale * q[d];
        e += r * r;
    }
    return e;
}

ram_status ram_cache_pack(const float *embeds, int n_tokens, int dim, void *out, size_t cap, struct ram_error *err)
{
    size_t need = ram_cache_packed_size(n_tokens, dim);
    if (!need) return ram_fail(err, RAM_ERR_ARG, "token cache: %d x %d tokens out of range", n_tokens, dim);
    if (cap < need) return ram_fail(err, RAM_ERR_ARG, "token cache: buffer of %zu bytes, need %zu", cap, need);
    for (size_t i = 0; i < (size_t)n_tokens * dim; i++)
        if (!isfinite(embeds[i]))
            return ram_fail(err, RAM_ERR_ARG, "token cache: token %d holds a non-finite value", (int)(i / dim));
    unsigned char *p = out;
    unsigned char *sc = p + RAM_CACHE_HEADER;
    int8_t *q = (int8_t *)(sc + (size_t)n_tokens * 4);
    /* Plain int8 first; with a power-of-two width also the rotated form,
    ** kept when its error is smaller (almost always: embeddings have a few
    ** large channels; rows as flat as uniform noise are the exception). */
    double e_plain = 0, e_rot = 0;
    for (int t = 0; t < n_tokens; t++) {
        const float *x = embeds + (size_t)t * dim;
        float s;
        quantize_row(x, dim, &s, q + (size_t)t * dim);
        put_f32(sc + (size_t)t * 4, s);
        e_plain += row_error(x, dim, s, q + (size_t)t * dim);
    }
    int rot = 0;
    if (is_pow2(dim)) {
        size_t nq = (size_t)n_tokens * dim;
        float *row = ram_malloc(sizeof(float) * (size_t)dim), *sr = ram_malloc(sizeof(float) * (size_t)n_tokens);
        int8_t *qr = ram_malloc(nq);
        if (!row || !sr || !qr) {
            ram_free(row), ram_free(sr), ram_free(qr);
            return ram_fail(err, RAM_ERR_NOMEM, "token cache: out of memory");
        }
        for (int t = 0; t < n_tokens; t++) {
            memcpy(row, embeds + (size_t)t * dim, sizeof(float) * (size_t)dim);
            ram_rht_forward(row, dim);
            quantize_row(row, dim, &sr[t], qr + (size_t)t * dim);
            e_rot += row_error(row, dim, sr[t], qr + (size_t)t * dim); /* T is orthonormal */
        }
        if (e_rot < e_plain) {
            rot = 1;
            memcpy(q, qr, nq);
            for (int t = 0; t < n_tokens; t++) put_f32(sc + (size_t)t * 4, sr[t]);
        }
        ram_free(row), ram_free(sr), ram_free(qr);
    }
    memset(p, 0, RAM_CACHE_HEADER);
    memcpy(p, CACHE_MAGIC, 4);
    p[4] = rot ? 2 : 1;
    p[5] = rot ? CACHE_QUANT_INT8_RHT : CACHE_QUANT_INT8;
    put_u16(p + 6, (unsigned)n_tokens);
    put_u16(p + 8, (unsigned)dim);
    return RAM_OK;
}

ram_status ram_cache_view(const void *blob, size_t n, int n_tokens, int dim, struct ram_cache_tokens *v,
                          struct ram_error *err)
{
    const unsigned char *p = blob;
    memset(v, 0, sizeof *v);
    if (!p || n < RAM_CACHE_HEADER || memcmp(p, CACHE_MAGIC, 4))
        return ram_fail(err, RAM_ERR_FORMAT, "token cache: not a token blob");
    if (!(p[4] == 1 && p[5] == CACHE_QUANT_INT8) && !(p[4] == 2 && p[5] == CACHE_QUANT_INT8_RHT))
        return ram_fail(err, RAM_ERR_FORMAT, "token cache: layout %d.%d, this build reads 1.1 and 2.2", p[4], p[5]);
    int nt = (int)get_u16(p + 6), d = (int)get_u16(p + 8);
    if (p[5] == CACHE_QUANT_INT8_RHT && !is_pow2(d))
        return ram_fail(err, RAM_ERR_FORMAT, "token cache: a rotated layout needs a power-of-two width, not %d", d);
    if (nt != n_tokens || d != dim)
        return ram_fail(err, RAM_ERR_FORMAT, "token cache: %d x %d tokens, the model has %d x %d", nt, d, n_tokens,
                        dim);
    if (n != ram_cache_packed_size(nt, d))
        return ram_fail(err, RAM_ERR_FORMAT, "token cache: %zu bytes, expected %zu", n, ram_cache_packed_size(nt, d));
    const unsigned char *sc = p + RAM_CACHE_HEADER;
    for (int t = 0; t < nt; t++) {
        float s = get_f32(sc + (size_t)t * 4);
        if (!isfinite(s) || s < 0) return ram_fail(err, RAM_ERR_FORMAT, "token cache: bad scale of token %d", t);
    }
    v->n_tokens = nt;
    v->dim = d;
    v->scales = sc;
    v->q = (const int8_t *)(sc + (size_t)nt * 4);
    v->rotated = p[5] == CACHE_QUANT_INT8_RHT;
    return RAM_OK;
}

static void dequant_row(const struct ram_cache_tokens *v, int t, float *out)
{
    if (!v->q) {
        memcpy(out, v->f32 + (size_t)t * v->dim, sizeof(float) * (size_t)v->dim);
        return;
    }
    float s = get_f32(v->scales + (size_t)t * 4);
    const int8_t *q = v->q + (size_t)t * v->dim;
    for (int d = 0; d < v->dim; d++) out[d] = s * (float)q[d];
    if (v->rotated) ram_rht_inverse(out, v->dim);
}

void ram_cache_dequant(const struct ram_cache_tokens *v, float *out)
{
    for (int t = 0; t < v->n_tokens; t++) dequant_row(v, t, out + (size_t)t * v->dim);
}

void ram_cache_cls(const struct ram_cache_tokens *v, float *out) { dequant_row(v, 0, out); }

/* ------------------------------------------------------------------ prefilter */

size_t ram_cache_unit_size(int dim) { return dim < 1 || dim > CACHE_MAX_DIM ? 0 : 4 + (size_t)dim; }

ram_status ram_cache_pack_unit(const float *cls, int dim, void *out, size_t cap, struct ram_error *err)
{
    size_t need = ram_cache_unit_size(dim);
    if (!need || cap < need) return ram_fail(err, RAM_ERR_ARG, "token cache: bad unit vector buffer");
    double ss = 0;
    for (int d = 0; d < dim; d++) ss += (double)cls[d] * cls[d];
    if (!(ss > 0) || !isfinite(ss)) {
        memset(out, 0, need); /* a zero vector: cosine 0 with everything */
        return RAM_OK;
    }
    float inv = (float)(1.0 / sqrt(ss)), s;
    unsigned char *p = out;
    float row[CACHE_MAX_DIM > 4096 ? 4096 : CACHE_MAX_DIM];
    int8_t *q = (int8_t *)(p + 4);
    if (dim > 4096) return ram_fail(err, RAM_ERR_ARG, "token cache: unit vector wider than 4096");
    for (int d = 0; d < dim; d++) row[d] = cls[d] * inv;
    if (is_pow2(dim)) ram_rht_forward(row, dim);
    quantize_row(row, dim, &s, q);
    put_f32(p, s);
    return RAM_OK;
}

/* ------------------------------------------------------------------ sign codes */

size_t ram_cache_code_size(int dim) { return dim < 1 || dim > CACHE_MAX_DIM ? 0 : ((size_t)dim + 7) / 8; }

/* Bit d of code set when x[d] > 0 (a zero element, from a zero vector or a
** value that rounds to 0, counts as negative: either way it is one bit). */
static void sign_bits_i8(const int8_t *x, int dim, unsigned char *code)
{
    memset(code, 0, ram_cache_code_size(dim));
    for (int d = 0; d < dim; d++)
        if (x[d] > 0) code[d >> 3] |= (unsigned char)(1u << (d & 7));
}

static void sign_bits_f32(const float *x, int dim, unsigned char *code)
{
    memset(code, 0, ram_cache_code_size(dim));
    for (int d = 0; d < dim; d++)
        if (x[d] > 0) code[d >> 3] |= (unsigned char)(1u << (d & 7));
}

ram_status ram_cache_unit_code(const void *unit, size_t unit_len, int dim, unsigned char *code, struct ram_error *err)
{
    if (!ram_cache_unit_size(dim) || unit_len != ram_cache_unit_size(dim))
        return ram_fail(err, RAM_ERR_FORMAT, "token cache: a unit vector of %zu bytes, expected %zu", unit_len,
                        ram_cache_unit_size(dim));
    sign_bits_i8((const int8_t *)((const unsigned char *)unit + 4), dim, code);
    return RAM_OK;
}

int ram_cache_code_distance(const unsigned char *a, const unsigned char *b, size_t n)
{
    int d = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d += __builtin_popcountll(x ^ y);
    }
    for (; i < n; i++) d += __builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

/* ------------------------------------------------------------------ kernels */

static inline void axpy(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* Attention of nv folded query vectors U (nv x dim) over one image's tokens
** X (n_tok x dim, int8 or fp32, token j scaled by sc[j]): S (nv x n_tok)
** receives the softmax weights, P (nv x dim) the weighted sums of the tokens.
** Token-major, four query vectors at a time, so that each token row is read
** once per pass and the four partial results stay in registers (scores) or
** in L1 (pooled rows). The AVX2 kernels are the same loops as the portable
** ones below, eight lanes at a time. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256 load8_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}
static inline __m256 load8_f32(const float *p) { return _mm256_loadu_ps(p); }
static inline float hsum8(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

#define DEFINE_ATTEND(NAME, TYPE, LOAD)                                                                              \
    static void NAME(const TYPE *X, const float *sc, int n_tok, int dim, const float *U, int nv, float *S, float *P) \
    {                                                                                                                \
        int d8 = dim & ~7;                                                                                           \
        for (int j = 0; j < n_tok; j++) {                                                                            \
            const TYPE *x = X + (size_t)j * dim;                                                                     \
            int v = 0;                                                                                               \
            for (; v + 4 <= nv; v += 4) {                                                                            \
                const float *u0 = U + (size_t)v * dim, *u1 = u0 + dim, *u2 = u1 + dim, *u3 = u2 + dim;               \
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                          \
                for (int d = 0; d < d8; d += 8) {                                                                    \
                    __m256 xf = LOAD(x + d);                                                                         \
                    a0 = _mm256_fmadd_ps(xf, _mm256_loadu_ps(u0 + d), a0);                                           \
                    a1 = _mm256_fmadd_ps(xf, _mm256_loadu_ps(u1 + d), a1);                                           \
                    a2 = _mm256_fmadd_ps(xf, _mm256_loadu_ps(u2 + d), a2);                                           \
                    a3 = _mm256_fmadd_ps(xf, _mm256_loadu_ps(u3 + d), a3);                                           \
                }                                                                                                    \
                float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);                                \
                for (int d = d8; d < dim; d++) {                                                                     \
                    float xv = (float)x[d];                                                                          \
                    s0 += xv * u0[d], s1 += xv * u1[d], s2 += xv * u2[d], s3 += xv * u3[d];                          \
                }                                                                                                    \
                S[(size_t)v * n_tok + j] = sc[j] * s0;                                                               \
                S[(size_t)(v + 1) * n_tok + j] = sc[j] * s1;                                                         \
                S[(size_t)(v + 2) * n_tok + j] = sc[j] * s2;                                                         \
                S[(size_t)(v + 3) * n_tok + j] = sc[j] * s3;                                                         \
            }                                                                                                        \
            for (; v < nv; v++) {                                                                                    \
                const float *u0 = U + (size_t)v * dim;                                                               \
                __m256 a0 = _mm256_setzero_ps();                                                                     \
                for (int d = 0; d < d8; d += 8) a0 = _mm256_fmadd_ps(LOAD(x + d), _mm256_loadu_ps(u0 + d), a0);      \
                float s0 = hsum8(a0);                                                                                \
                for (int d = d8; d < dim; d++) s0 += (float)x[d] * u0[d];                                            \
                S[(size_t)v * n_tok + j] = sc[j] * s0;                                                               \
            }                                                                                                        \
        }                                                                                                            \
        ram_softmax_rows(S, nv, n_tok);                                                                              \
        memset(P, 0, sizeof(float) * (size_t)nv * dim);                                                              \
        for (int v = 0; v < nv; v++) {                                                                               \
            float *p = P + (size_t)v * dim;                                                                          \
            const float *s = S + (size_t)v * n_tok;                                                                  \
            int j = 0;                                                                                               \
            for (; j + 2 <= n_tok; j += 2) {                                                                         \
                const TYPE *x0 = X + (size_t)j * dim, *x1 = x0 + dim;                                                \
                float w0 = s[j] * sc[j], w1 = s[j + 1] * sc[j + 1];                                                  \
                __m256 b0 = _mm256_set1_ps(w0), b1 = _mm256_set1_ps(w1);                                             \
                for (int d = 0; d < d8; d += 8) {                                                                    \
                    __m256 acc = _mm256_loadu_ps(p + d);                                                             \
                    acc = _mm256_fmadd_ps(b0, LOAD(x0 + d), acc);                                                    \
                    acc = _mm256_fmadd_ps(b1, LOAD(x1 + d), acc);                                                    \
                    _mm256_storeu_ps(p + d, acc);                                                                    \
                }                                                                                                    \
                for (int d = d8; d < dim; d++) p[d] += w0 * (float)x0[d] + w1 * (float)x1[d];                        \
            }                                                                                                        \
            for (; j < n_tok; j++) {                                                                                 \
                const TYPE *x0 = X + (size_t)j * dim;                                                                \
                float w0 = s[j] * sc[j];                                                                             \
                for (int d = 0; d < dim; d++) p[d] += w0 * (float)x0[d];                                             \
            }                                                                                                        \
        }                                                                                                            \
    }

DEFINE_ATTEND(attend_i8, int8_t, load8_i8)
DEFINE_ATTEND(attend_f32, float, load8_f32)

#else /* portable */

#define DEFINE_ATTEND(NAME, TYPE)                                                                                    \
    static void NAME(const TYPE *X, const float *sc, int n_tok, int dim, const float *U, int nv, float *S, float *P) \
    {                                                                                                                \
        for (int j = 0; j < n_tok; j++) {                                                                            \
            const TYPE *x = X + (size_t)j * dim;                                                                     \
            for (int v = 0; v < nv; v++) {                                                                           \
                const float *u = U + (size_t)v * dim;                                                                \
                float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s0;                                                         \
                int d = 0;                                                                                           \
                for (; d + 8 <= dim; d += 8)                                                                         \
                    for (int l = 0; l < 8; l++) acc[l] += (float)x[d + l] * u[d + l];                                \
                s0 = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));              \
                for (; d < dim; d++) s0 += (float)x[d] * u[d];                                                       \
                S[(size_t)v * n_tok + j] = sc[j] * s0;                                                               \
            }                                                                                                        \
        }                                                                                                            \
        ram_softmax_rows(S, nv, n_tok);                                                                              \
        memset(P, 0, sizeof(float) * (size_t)nv * dim);                                                              \
        for (int v = 0; v < nv; v++)                                                                                 \
            for (int j = 0; j < n_tok; j++) {                                                                        \
                const TYPE *x = X + (size_t)j * dim;                                                                 \
                float w = S[(size_t)v * n_tok + j] * sc[j], *p = P + (size_t)v * dim;                                \
                for (int d = 0; d < dim; d++) p[d] += w * (float)x[d];                                               \
            }                                                                                                        \
    }

DEFINE_ATTEND(attend_i8, int8_t)
DEFINE_ATTEND(attend_f32, float)

#endif

/* One image: scales into sc (n_tok floats of scratch), then the kernel. */
static void attend(const struct ram_cache_tokens *img, float *sc, const float *U, int nv, float *S, float *P)
{
    int nt = img->n_tokens;
    if (img->q) {
        for (int j = 0; j < nt; j++) sc[j] = get_f32(img->scales + (size_t)j * 4);
        attend_i8(img->q, sc, nt, img->dim, U, nv, S, P);
    } else {
        for (int j = 0; j < nt; j++) sc[j] = 1.0f;
        attend_f32(img->f32, sc, nt, img->dim, U, nv, S, P);
    }
}

/* The blocked attention of the folded scorer: the same two products as
** attend() on tokens converted to floats once per image and layer (int8 times
** the token's scale, into X, n_tok x dim), register-blocked so that each
** vector of X and U is loaded once per block instead of once per pair:
** scores JB tokens x 4 query vectors at a time (4 x 4 = 16 accumulators with
** AVX-512, 2 x 4 with AVX2), pooling 4 query vectors x 2 vectors of width
** at a time over all tokens, written once (the per-pair kernels above read,
** convert and rewrite every pooled row once per token pair). Short blocks
** at the edges repeat the last row (computed, not stored), so the loops
** keep constant trip counts and their accumulators stay in registers. */
#if defined(__AVX512F__)
typedef __m512 vf;
#define VW 16
#define JB 4
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_I8(p, s) _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p)))), s)
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vf;
#define VW 8
#define JB 2
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_HSUM(v) hsum8(v)
#define V_I8(p, s) _mm256_mul_ps(load8_i8(p), s)
#else
typedef float vf;
#define VW 1
#define JB 2
#define V_ZERO() 0.0f
#define V_LOAD(p) (*(p))
#define V_STORE(p, v) (*(p) = (v))
#define V_SET1(x) (x)
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_HSUM(v) (v)
#define V_I8(p, s) ((float)*(p) * (s))
#endif

/* X (n_tok x dim floats): the image's tokens, each times its scale. */
static void tokens_to_float(const struct ram_cache_tokens *img, float *X)
{
    int nt = img->n_tokens, dim = img->dim, dv = dim - dim % VW;
    for (int j = 0; j < nt; j++) {
        float s = get_f32(img->scales + (size_t)j * 4);
        const int8_t *q = img->q + (size_t)j * dim;
        float *x = X + (size_t)j * dim;
        vf sv = V_SET1(s);
        int d = 0;
        for (; d < dv; d += VW) V_STORE(x + d, V_I8(q + d, sv));
        for (; d < dim; d++) x[d] = (float)q[d] * s;
    }
}

/* Query vector v's pooled row goes to P + (v / heads) * tstride + (v % heads)
** * hstride: (dim, heads * dim) for the rows of the fp32 products, (R * dim,
** dim) for the head-major blocks of the approximate path. */
#define PROW(v) (P + (size_t)((v) / heads) * tstride + (size_t)((v) % heads) * hstride)
/* Scores of tokens [j0, j0 + NJ) against every query vector, NJ x 4 at a
** time. Each score sums the same products in the same order whatever NJ,
** so a token's scores do not depend on the block it falls in. */
#define SCORE_BLOCK(NJ)                                                                                          \
    for (int v0 = 0; v0 < nv; v0 += 4) {                                                                         \
        const float *x[NJ], *u[4];                                                                               \
        vf acc[NJ][4];                                                                                           \
        for (int a = 0; a < NJ; a++) x[a] = X + (size_t)(j0 + a) * dim;                                          \
        for (int b = 0; b < 4; b++) u[b] = U + (size_t)(v0 + b < nv ? v0 + b : nv - 1) * dim;                    \
        _Pragma("GCC unroll 4") for (int a = 0; a < NJ; a++) _Pragma("GCC unroll 4") for (int b = 0; b < 4; b++) \
            acc[a][b] = V_ZERO();                                                                                \
        for (int d = 0; d < dv; d += VW) {                                                                       \
            vf u0 = V_LOAD(u[0] + d), u1 = V_LOAD(u[1] + d), u2 = V_LOAD(u[2] + d), u3 = V_LOAD(u[3] + d);       \
            _Pragma("GCC unroll 4") for (int a = 0; a < NJ; a++)                                                 \
            {                                                                                                    \
                vf xa = V_LOAD(x[a] + d);                                                                        \
                acc[a][0] = V_FMA(xa, u0, acc[a][0]);                                                            \
                acc[a][1] = V_FMA(xa, u1, acc[a][1]);                                                            \
                acc[a][2] = V_FMA(xa, u2, acc[a][2]);                                                            \
                acc[a][3] = V_FMA(xa, u3, acc[a][3]);                                                            \
            }                                                                                                    \
        }                                                                                                        \
        for (int a = 0; a < NJ; a++)                                                                             \
            for (int b = 0; b < 4 && v0 + b < nv; b++) {                                                         \
                float s = V_HSUM(acc[a][b]);                                                                     \
                for (int d = dv; d < dim; d++) s += x[a][d] * u[b][d];                                           \
                S[(size_t)(v0 + b) * n_tok + j0 + a] = s;                                                        \
            }                                                                                                    \
    }

static void attend_blocked(const float *X, int n_tok, int dim, const float *U, int nv, float *S, float *P, int heads,
                           size_t hstride, size_t tstride)
{
    int dv = dim - dim % VW, j0 = 0;
    /* JB tokens per block, then the last few one by one (the default model
    ** has 5 tokens: a padded second block of JB did 8 tokens' work) */
    for (; j0 + JB <= n_tok; j0 += JB) SCORE_BLOCK(JB)
    for (; j0 < n_tok; j0++) SCORE_BLOCK(1)
#undef SCORE_BLOCK
    ram_softmax_rows(S, nv, n_tok);
    int d2 = dim - dim % (2 * VW);
    for (int v0 = 0; v0 < nv; v0 += 4) {
        const float *w[4];
        float *po[4]; /* the pooled rows' places, worked out once per block */
        for (int b = 0; b < 4; b++) {
            int vb = v0 + b < nv ? v0 + b : nv - 1;
            w[b] = S + (size_t)vb * n_tok;
            po[b] = PROW(vb);
        }
        for (int d = 0; d < d2; d += 2 * VW) {
            vf a00 = V_ZERO(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            for (int j = 0; j < n_tok; j++) {
                const float *xj = X + (size_t)j * dim + d;
                vf x0 = V_LOAD(xj), x1 = V_LOAD(xj + VW), wb;
                wb = V_SET1(w[0][j]), a00 = V_FMA(wb, x0, a00), a01 = V_FMA(wb, x1, a01);
                wb = V_SET1(w[1][j]), a10 = V_FMA(wb, x0, a10), a11 = V_FMA(wb, x1, a11);
                wb = V_SET1(w[2][j]), a20 = V_FMA(wb, x0, a20), a21 = V_FMA(wb, x1, a21);
                wb = V_SET1(w[3][j]), a30 = V_FMA(wb, x0, a30), a31 = V_FMA(wb, x1, a31);
            }
            vf out[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
            for (int b = 0; b < 4 && v0 + b < nv; b++) {
                V_STORE(po[b] + d, out[b][0]);
                V_STORE(po[b] + d + VW, out[b][1]);
            }
        }
        for (int b = 0; b < 4 && v0 + b < nv; b++)
            for (int d = d2; d < dim; d++) {
                float a = 0;
                for (int j = 0; j < n_tok; j++) a += w[b][j] * X[(size_t)j * dim + d];
                po[b][d] = a;
            }
    }
}
#undef PROW

/* ------------------------------------------------------------------ scorer */

struct ram_cache_query {
    const struct ram_model *m; /* borrowed: outlives the query */
    int n_tags, des, max_images, max_rows;
    int hid, heads, dh, dim, n_tok, inter;
    float *label;               /* n_tags * des x dim; owned (ram_free) */
    float *h0;                  /* des == 1: n_tags x hid first-layer input; owned */
    float *u0;                  /* des == 1: n_tags x heads x dim folded first-layer queries; owned */
    float *u0r;                 /* the same rotated (T u0) for rotated caches; owned */
    float *lrot;                /* the label rows rotated, for the prefilter (power-of-two widths); owned */
    float *Ur;                  /* n_tags * heads x dim: one image's query vectors rotated */
    int rot;                    /* power-of-two width: pictures may be stored rotated (layout 2) */
    int per_image;              /* ram_cache_query_per_image: the key/value weights as stored, rotations per image */
    int approx;                 /* ram_cache_query_approx: the dense products in bf16 */
    struct ram_scratch scratch; /* the bf16 products' rounded rows; owned */
    const struct ram_cache_weights *mw[RAM_CACHE_W_SETS]; /* the model's weights, once fetched; borrowed */
    int *perm;  /* max_images: the order images are scored in (rotated ones first); owned */
    float *mem; /* one block for the scratch below; owned (ram_free) */
    float *H, *Q, *U, *P, *C, *A, *I, *T, *L; /* max_rows x (hid|hid|heads*dim|heads*dim|hid|hid|inter|hid|dim) */
    float *E;                                 /* n_tok x dim: one image's CLS row, token scales */
    float *S;                                 /* n_tags * heads x n_tok: attention weights */
};

void ram_cache_query_free(struct ram_cache_query *q)
{
    if (!q) return;
    ram_free(q->perm);
    ram_free(q->label);
    ram_free(q->h0);
    ram_free(q->u0);
    ram_free(q->u0r);
    ram_free(q->lrot);
    ram_free(q->mem);
    ram_scratch_free(&q->scratch);
    ram_free(q);
}

/* Folded queries of rows x hid queries Q: U (rows x heads x dim), row r head
** h = Wk_h^T Q_h / sqrt(dh). */
static void fold_queries(const struct ram_cache_query *q, const struct ram_tagger_layer_w *w, const float *Q, int rows,
                         float *U)
{
    float alpha = 1.0f / sqrtf((float)q->dh);
    for (int h = 0; h < q->heads; h++)
        ram_gemm(0, 0, rows, q->dim, q->dh, alpha, Q + (size_t)h * q->dh, q->hid, w->k_w + (size_t)h * q->dh * q->dim,
                 q->dim, 0.0f, U + (size_t)h * q->dim, q->heads * q->dim);
}

/* ReLU(wordvec_proj(L)) for rows label rows (identity projection when the
** model has none). */
static void project_labels(const struct ram_model *m, const float *L, int rows, float *H)
{
    int dim = m->embed_dim, hid = m->tagger.hidden;
    if (m->wordvec_w)
        ram_linear_packed(L, rows, dim, m->wordvec_w, ram_tagger_packed(m, 0, RAM_TAGGER_WORDVEC), m->wordvec_b, hid,
                          H);
    else
        memcpy(H, L, sizeof(float) * (size_t)rows * dim);
    ram_relu(H, (size_t)rows * hid);
}

ram_status ram_cache_query_init(const struct ram_model *m, const float *label_embed, int n_tags, int des_per_tag,
                                int max_images, struct ram_cache_query **out, struct ram_error *err)
{
    struct ram_cache_query *q = 0;
    *out = 0;
    ram_status rc = ram_model_check_file(m, err); /* reads the tagger's weights: see ram.h */
    if (rc) return rc;
    if (n_tags < 1 || des_per_tag < 1 || max_images < 1)
        return ram_fail(err, RAM_ERR_ARG, "open-set query: %d tags x %d descriptions, %d images", n_tags, des_per_tag,
                        max_images);
    if (des_per_tag > 1 && m->kind != RAM_KIND_RAM_PLUS)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "open-set query: several descriptions per tag need a RAM++ model");
    if (m->tagger.n_heads < 1 || m->tagger.hidden % m->tagger.n_heads || !m->tagger_layers)
        return ram_fail(err, RAM_ERR_ARG, "open-set query: the model has no tagging decoder");
    size_t rows, cnt;
    if (!ram_mul_ok((size_t)n_tags, (size_t)max_images, &rows) || rows > (1u << 20) ||
        !ram_mul_ok((size_t)n_tags, (size_t)des_per_tag, &cnt) || cnt > (1u << 24))
        return ram_fail(err, RAM_ERR_TOO_BIG, "open-set query: %d tags x %d images is too many", n_tags, max_images);
    q = ram_calloc(1, sizeof *q);
    if (!q) goto nomem;
    q->m = m;
    q->n_tags = n_tags;
    q->des = des_per_tag;
    q->max_images = max_images;
    q->max_rows = (int)rows;
    q->hid = m->tagger.hidden;
    q->heads = m->tagger.n_heads;
    q->dh = q->hid / q->heads;
    q->dim = m->embed_dim;
    q->n_tok = m->n_image_tokens;
    q->inter = m->tagger.intermediate;
    q->rot = is_pow2(q->dim);
    if (m->tagger.encoder_width != q->dim || (!m->wordvec_w && q->hid != q->dim))
        return ram_cache_query_free(q), ram_fail(err, RAM_ERR_ARG, "open-set query: inconsistent widths");

    size_t per_row = (size_t)5 * q->hid + (size_t)2 * q->heads * q->dim + (size_t)q->inter + q->dim;
    size_t nfl = per_row * rows + (size_t)q->n_tok * q->dim + (size_t)n_tags * q->heads * q->n_tok +
                 (size_t)n_tags * q->heads * q->dim;
    q->label = ram_malloc(sizeof(float) * cnt * q->dim);
    q->mem = ram_malloc(sizeof(float) * nfl);
    q->perm = ram_malloc(sizeof(int) * (size_t)max_images);
    if (!q->label || !q->mem || !q->perm) goto nomem;
    memcpy(q->label, label_embed, sizeof(float) * cnt * q->dim);
    float *p = q->mem;
    q->H = p, p += rows * q->hid;
    q->Q = p, p += rows * q->hid;
    q->U = p, p += rows * q->heads * q->dim;
    q->P = p, p += rows * q->heads * q->dim;
    q->C = p, p += rows * q->hid;
    q->A = p, p += rows * q->hid;
    q->I = p, p += rows * q->inter;
    q->T = p, p += rows * q->hid;
    q->L = p, p += rows * q->dim;
    q->E = p, p += (size_t)q->n_tok * q->dim;
    q->Ur = p, p += (size_t)n_tags * q->heads * q->dim;
    q->S = p;
    if (is_pow2(q->dim)) {
        q->lrot = ram_malloc(sizeof(float) * cnt * q->dim);
        if (!q->lrot) goto nomem;
        memcpy(q->lrot, q->label, sizeof(float) * cnt * q->dim);
        for (size_t r = 0; r < cnt; r++) ram_rht_forward(q->lrot + r * q->dim, q->dim);
    }

    if (des_per_tag == 1) {
        /* The first layer does not depend on the image: H0, Q0 and u0 once. */
        q->h0 = ram_malloc(sizeof(float) * n_tags * q->hid);
        q->u0 = ram_malloc(sizeof(float) * n_tags * q->heads * q->dim);
        if (!q->h0 || !q->u0) goto nomem;
        project_labels(m, q->label, n_tags, q->h0);
        const struct ram_tagger_layer_w *w = &m->tagger_layers[0];
        float *Q0 = q->Q; /* scratch: n_tags <= rows */
        ram_linear_packed(q->h0, n_tags, q->hid, w->q_w, ram_tagger_packed(m, 0, RAM_TAGGER_Q), w->q_b, q->hid, Q0);
        fold_queries(q, w, Q0, n_tags, q->u0);
        if (is_pow2(q->dim)) {
            size_t nu = (size_t)n_tags * q->heads;
            q->u0r = ram_malloc(sizeof(float) * nu * q->dim);
            if (!q->u0r) goto nomem;
            memcpy(q->u0r, q->u0, sizeof(float) * nu * q->dim);
            for (size_t r = 0; r < nu; r++) ram_rht_forward(q->u0r + r * q->dim, q->dim);
        }
    }
    *out = q;
    return RAM_OK;
nomem:
    ram_cache_query_free(q);
    return ram_fail(err, RAM_ERR_NOMEM, "open-set query: out of memory");
}

void ram_cache_query_per_image(struct ram_cache_query *q, int on) { q->per_image = on != 0; }

int ram_cache_query_approx(struct ram_cache_query *q, int on)
{
    /* only where bf16 products are faster than fp32 ones (vdpbf16ps or AMX) */
    q->approx = on && ram_bf16_level() >= RAM_BF16_AVX512BF16;
    return q->approx;
}

/* H rows of image i = ReLU(wordvec(sum_d softmax_d(exp(s) cls_n . e_d) e_d)). */
static void reweight(struct ram_cache_query *q, const struct ram_cache_tokens *img, float *L)
{
    int dim = q->dim, D = q->des;
    float *cls = q->E; /* scratch: first row */
    float w[256];
    float *wd = D <= 256 ? w : q->S; /* S holds n_tags * heads * n_tok >= D floats? not always */
    ram_cache_cls(img, cls);
    double ss = 0;
    for (int d = 0; d < dim; d++) ss += (double)cls[d] * cls[d];
    float inv = (float)(1.0 / sqrt(ss)), scale = expf(q->m->reweight_scale);
    for (int d = 0; d < dim; d++) cls[d] *= inv;
    for (int t = 0; t < q->n_tags; t++) {
        const float *e = q->label + (size_t)t * D * dim;
        for (int k = 0; k < D; k++) wd[k] = scale * ram_dot(cls, e + (size_t)k * dim, dim);
        ram_softmax_rows(wd, 1, D);
        float *l = L + (size_t)t * dim;
        memset(l, 0, sizeof(float) * dim);
        for (int k = 0; k < D; k++) axpy(l, wd[k], e + (size_t)k * dim, dim);
    }
}

/* y (R x out) = x W^T + b + res: in bf16 with the residual added in the
** product's output step when bw is set (the approximate mode), else the
** fp32 packed product and then the add, as the exact scorer always did. */
static ram_status product_add(struct ram_cache_query *q, const float *x, int R, int in,
                              const struct ram_bf16_weight *bw, const float *W, const struct ram_sgemm_packed *P,
                              const float *b, const float *res, int out, float *y, struct ram_error *err)
{
    if (bw) {
        struct ram_q8_fuse add = {0};
        add.add = 1;
        memcpy(y, res, sizeof(float) * (size_t)R * out);
        return ram_bf16_linear_ex(x, R, bw, b, y, &add, &q->scratch, err);
    }
    ram_linear_packed(x, R, in, W, P, b, out, y);
    ram_add(y, res, (size_t)R * out);
    return RAM_OK;
}

ram_status ram_cache_score(struct ram_cache_query *q, const struct ram_cache_tokens *imgs, int n, float *probs,
                           struct ram_error *err)
{
    const struct ram_model *m = q->m;
    int T = q->n_tags, hid = q->hid, dim = q->dim, heads = q->heads, nv = T * heads;
    ram_status rc = ram_model_check_file(m, err);
    if (rc) return rc;
    if (n < 1 || n > q->max_images)
        return ram_fail(err, RAM_ERR_ARG, "open-set scoring: %d images, at most %d per call", n, q->max_images);
    for (int i = 0; i < n; i++)
        if (imgs[i].n_tokens != q->n_tok || imgs[i].dim != dim || (!imgs[i].q && !imgs[i].f32) ||
            (imgs[i].rotated && !q->rot))
            return ram_fail(err, RAM_ERR_ARG, "open-set scoring: image %d has %d x %d tokens, the model %d x %d", i,
                            imgs[i].n_tokens, imgs[i].dim, q->n_tok, dim);
    if (q->des > 256 && (size_t)q->des > (size_t)nv * q->n_tok)
        return ram_fail(err, RAM_ERR_TOO_BIG, "open-set scoring: too many descriptions per tag");
    int R = n * T, na = 0, *perm = q->perm;
    /* The order of the rows: images stored rotated first, the others after, so
    ** that each group's products read the weights of its own space and no
    ** image is rotated (a row's result does not depend on the other rows, so
    ** the order changes no bits). The scorer before that: the given order. */
    for (int i = 0; i < n; i++)
        if (q->per_image || imgs[i].rotated) perm[na++] = i;
    for (int i = 0, j = na; i < n; i++)
        if (!q->per_image && !imgs[i].rotated) perm[j++] = i;
    int Ra = q->per_image ? 0 : na * T; /* rows [0, Ra) rotated, [Ra, R) plain */
    int approx = q->approx && !q->per_image;
    for (int set = 0; set < RAM_CACHE_W_SETS && !q->per_image; set++) {
        /* a space's sets when the batch holds a picture stored in it; the bf16 ones only approximate */
        int need = set == RAM_CACHE_W_BF16_DENSE ? approx : ((set & 1) ? Ra > 0 : Ra < R) && (set < 2 || approx);
        if (need && !q->mw[set] && !(q->mw[set] = ram_cache_weights_get(m, set, err))) return RAM_ERR_NOMEM;
    }
    /* the approximate path's bf16 value sets by group, and its dense layers (one set for both) */
    const struct ram_cache_weights *bw[2] = {q->mw[RAM_CACHE_W_BF16_PLAIN], q->mw[RAM_CACHE_W_BF16_ROT]};
    const struct ram_cache_weights *bd = q->mw[RAM_CACHE_W_BF16_DENSE];

    /* Layer-0 input. */
    if (q->des == 1) {
        for (int i = 0; i < n; i++) memcpy(q->H + (size_t)i * T * hid, q->h0, sizeof(float) * T * hid);
    } else {
        for (int i = 0; i < n; i++) reweight(q, &imgs[perm[i]], q->L + (size_t)i * T * dim);
        project_labels(m, q->L, R, q->H);
    }

    for (int l = 0; l < m->tagger.n_layers; l++) {
        const struct ram_tagger_layer_w *w = &m->tagger_layers[l];
        /* lw[g]: group g's weights (0 plain, 1 rotated; NULL when the group is empty) */
        const struct ram_cache_layer_w *lw[2] = {q->mw[0] ? &q->mw[0]->lw[l] : 0, q->mw[1] ? &q->mw[1]->lw[l] : 0};
        const struct ram_cache_layer_w *bl = approx ? &bd->lw[l] : 0;
        int folded = !q->per_image;
        int fixed = l == 0 && q->des == 1;
        if (!fixed) {
            if (bl)
                rc = ram_bf16_linear(q->H, R, &bl->bq, w->q_b, q->Q, &q->scratch, err);
            else
                ram_linear_packed(q->H, R, hid, w->q_w, ram_tagger_packed(m, l, RAM_TAGGER_Q), w->q_b, hid, q->Q);
            if (rc) return rc;
            if (!folded) fold_queries(q, w, q->Q, R, q->U);
            /* U_h = (Wk_h^T / sqrt(dh)) Q_h, each group in its space */
            for (int g = 0; folded && g < 2; g++) {
                int r0 = g ? 0 : Ra, rows = g ? Ra : R - Ra;
                for (int h = 0; rows && h < heads; h++)
                    ram_sgemm_packed(rows, q->Q + (size_t)r0 * hid + (size_t)h * q->dh, hid, &lw[g]->pk[h], 0.0f,
                                     q->U + ((size_t)r0 * heads + h) * dim, heads * dim, NULL);
            }
        }
        /* the pooled rows: R x heads x dim for the fp32 products, heads x R x
        ** dim (each head's rows contiguous) for the bf16 ones */
        size_t hstride = approx ? (size_t)R * dim : (size_t)dim, tstride = approx ? (size_t)dim : (size_t)heads * dim;
        for (int i = 0; i < n; i++) {
            const struct ram_cache_tokens *img = &imgs[perm[i]];
            const float *Ui = fixed ? (img->rotated ? q->u0r : q->u0) : q->U + (size_t)i * nv * dim;
            float *Pi = q->P + (size_t)i * T * tstride;
            if (folded && img->q) {
                tokens_to_float(img, q->E);
                attend_blocked(q->E, q->n_tok, dim, Ui, nv, q->S, Pi, heads, hstride, tstride);
            } else if (folded) {
                attend_blocked(img->f32, q->n_tok, dim, Ui, nv, q->S, Pi, heads, hstride, tstride);
            } else {
                /* before: the products in the plain space, rotated images' vectors
                ** rotated one by one (x.u = (T x).(T u)) */
                if (!fixed && img->rotated) {
                    memcpy(q->Ur, Ui, sizeof(float) * (size_t)nv * dim);
                    ram_rht_rows(q->Ur, nv, dim, 1);
                    Ui = q->Ur;
                }
                attend(img, q->E, Ui, nv, q->S, Pi);
                if (img->rotated) ram_rht_rows(Pi, nv, dim, 0);
            }
        }
        /* ctx = Wv_h pooled_h + bv_h, per head, over all rows. */
        for (int g = 0; folded && !approx && g < 2; g++) {
            int r0 = g ? 0 : Ra, rows = g ? Ra : R - Ra;
            for (int h = 0; rows && h < heads; h++)
                ram_sgemm_packed(rows, q->P + ((size_t)r0 * heads + h) * dim, heads * dim, &lw[g]->pv[h], 0.0f,
                                 q->C + (size_t)r0 * hid + (size_t)h * q->dh, hid, w->v_b + (size_t)h * q->dh);
        }
        if (approx) {
            /* head h's contexts into T (heads x R x dh), then interleaved into C (R x hid) */
            int dh = q->dh;
            for (int g = 0; g < 2; g++) {
                int r0 = g ? 0 : Ra, rows = g ? Ra : R - Ra;
                for (int h = 0; rows && h < heads && !rc; h++)
                    rc = ram_bf16_linear(q->P + ((size_t)h * R + r0) * dim, rows, &bw[g]->lw[l].bv[h],
                                         w->v_b + (size_t)h * dh, q->T + ((size_t)h * R + r0) * dh, &q->scratch, err);
            }
            if (rc) return rc;
            for (int r = 0; r < R; r++)
                for (int h = 0; h < heads; h++)
                    memcpy(q->C + (size_t)r * hid + (size_t)h * dh, q->T + ((size_t)h * R + r) * dh,
                           sizeof(float) * (size_t)dh);
        }
        if (!folded) {
            for (int h = 0; h < heads; h++)
                ram_gemm(0, 1, R, q->dh, dim, 1.0f, q->P + (size_t)h * dim, heads * dim,
                         w->v_w + (size_t)h * q->dh * dim, dim, 0.0f, q->C + (size_t)h * q->dh, hid);
            for (int r = 0; r < R; r++) ram_add(q->C + (size_t)r * hid, w->v_b, (size_t)hid);
        }
        /* A = LN(ctx Wo^T + bo + H); H' = LN(W2 GELU(W1 A + b1) + b2 + A). */
        rc = product_add(q, q->C, R, hid, bl ? &bl->bao : 0, w->ao_w, ram_tagger_packed(m, l, RAM_TAGGER_AO), w->ao_b,
                         q->H, hid, q->A, err);
        if (rc) return rc;
        ram_layernorm(q->A, q->A, R, hid, w->aln_w, w->aln_b, m->tagger.eps);
        if (bl) {
            rc = ram_bf16_linear(q->A, R, &bl->bi, w->i_b, q->I, &q->scratch, err);
            if (rc) return rc;
        } else {
            ram_linear_packed(q->A, R, hid, w->i_w, ram_tagger_packed(m, l, RAM_TAGGER_I), w->i_b, q->inter, q->I);
        }
        /* row by row: a row's elements must take the same (vector or scalar)
        ** path whatever the rows before it, or its bits would depend on the batch */
        for (int r = 0; r < R; r++) ram_gelu(q->I + (size_t)r * q->inter, (size_t)q->inter);
        rc = product_add(q, q->I, R, q->inter, bl ? &bl->bo : 0, w->o_w, ram_tagger_packed(m, l, RAM_TAGGER_O), w->o_b,
                         q->A, hid, q->T, err);
        if (rc) return rc;
        ram_layernorm(q->T, q->H, R, hid, w->oln_w, w->oln_b, m->tagger.eps);
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++)
            probs[(size_t)perm[i] * T + t] =
                ram_sigmoid(ram_dot(q->H + ((size_t)i * T + t) * hid, m->fc_w, hid) + m->fc_b[0]);
    return RAM_OK;
}

float ram_cache_prefilter(const struct ram_cache_query *q, const void *unit, size_t unit_len)
{
    int dim = q->dim;
    if (unit_len != ram_cache_unit_size(dim)) return -2.0f;
    const unsigned char *p = unit;
    const int8_t *v = (const int8_t *)(p + 4);
    float s = get_f32(p), best = -2.0f;
    size_t rows = (size_t)q->n_tags * q->des;
    const float *lab = q->lrot ? q->lrot : q->label; /* unit vectors are stored rotated (power-of-two widths) */
    for (size_t r = 0; r < rows; r++) {
        const float *e = lab + r * dim;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int d = 0;
        for (; d + 8 <= dim; d += 8)
            for (int l = 0; l < 8; l++) acc[l] += (float)v[d + l] * e[d + l];
        float c = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; d < dim; d++) c += (float)v[d] * e[d];
        c *= s;
        best = c > best ? c : best;
    }
    return best;
}

int ram_cache_query_codes(const struct ram_cache_query *q, unsigned char *out, size_t cap)
{
    int rows = q->n_tags * q->des;
    size_t nc = ram_cache_code_size(q->dim);
    if (cap / nc < (size_t)rows) return -1;
    const float *lab = q->lrot ? q->lrot : q->label; /* the space of the stored unit vectors */
    for (int r = 0; r < rows; r++) sign_bits_f32(lab + (size_t)r * q->dim, q->dim, out + nc * (size_t)r);
    return rows;
}

/* ------------------------------------------------------------------ reference */

#ifdef RAM_TEST
ram_status ram_cache_reference(const struct ram_model *m, const float *image_embeds, const float *label_embed,
                               int n_tags, int des_per_tag, float *probs, struct ram_error *err)
{
    int dim = m->embed_dim, hid = m->tagger.hidden, heads = m->tagger.n_heads, dh = hid / heads;
    int nt = m->n_image_tokens, inter = m->tagger.intermediate, D = des_per_tag;
    ram_status rc = RAM_OK;
    float *L = ram_malloc(sizeof(float) * n_tags * dim), *H = ram_malloc(sizeof(float) * n_tags * hid);
    float *Q = ram_malloc(sizeof(float) * n_tags * hid), *K = ram_malloc(sizeof(float) * nt * hid);
    float *V = ram_malloc(sizeof(float) * nt * hid), *C = ram_malloc(sizeof(float) * n_tags * hid);
    float *A = ram_malloc(sizeof(float) * n_tags * hid), *I = ram_malloc(sizeof(float) * n_tags * inter);
    float *s = ram_malloc(sizeof(float) * (nt > D ? nt : D));
    if (!L || !H || !Q || !K || !V || !C || !A || !I || !s) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "reference: out of memory");
        goto done;
    }
    /* Label rows: reweighted by the CLS (RAM++ section 5 steps 3-5). */
    for (int t = 0; t < n_tags; t++) {
        float *l = L + (size_t)t * dim;
        const float *e = label_embed + (size_t)t * D * dim;
        if (D == 1) {
            memcpy(l, e, sizeof(float) * dim);
            continue;
        }
        double nn = 0;
        for (int d = 0; d < dim; d++) nn += (double)image_embeds[d] * image_embeds[d];
        nn = sqrt(nn);
        for (int k = 0; k < D; k++) {
            double a = 0;
            for (int d = 0; d < dim; d++) a += image_embeds[d] / nn * e[(size_t)k * dim + d];
            s[k] = expf(m->reweight_scale) * (float)a;
        }
        ram_softmax_rows(s, 1, D);
        for (int d = 0; d < dim; d++) {
            double a = 0;
            for (int k = 0; k < D; k++) a += s[k] * e[(size_t)k * dim + d];
            l[d] = (float)a;
        }
    }
    project_labels(m, L, n_tags, H);
    for (int li = 0; li < m->tagger.n_layers; li++) {
        const struct ram_tagger_layer_w *w = &m->tagger_layers[li];
        ram_linear(H, n_tags, hid, w->q_w, w->q_b, hid, Q);
        ram_linear(image_embeds, nt, dim, w->k_w, w->k_b, hid, K);
        ram_linear(image_embeds, nt, dim, w->v_w, w->v_b, hid, V);
        for (int t = 0; t < n_tags; t++)
            for (int h = 0; h < heads; h++) {
                for (int j = 0; j < nt; j++) {
                    double a = 0;
                    for (int c = 0; c < dh; c++)
                        a += (double)Q[(size_t)t * hid + h * dh + c] * K[(size_t)j * hid + h * dh + c];
                    s[j] = (float)(a / sqrt((double)dh));
                }
                ram_softmax_rows(s, 1, nt);
                for (int c = 0; c < dh; c++) {
                    double a = 0;
                    for (int j = 0; j < nt; j++) a += (double)s[j] * V[(size_t)j * hid + h * dh + c];
                    C[(size_t)t * hid + h * dh + c] = (float)a;
                }
            }
        ram_linear(C, n_tags, hid, w->ao_w, w->ao_b, hid, A);
        ram_add(A, H, (size_t)n_tags * hid);
        ram_layernorm(A, A, n_tags, hid, w->aln_w, w->aln_b, m->tagger.eps);
        ram_linear(A, n_tags, hid, w->i_w, w->i_b, inter, I);
        ram_gelu(I, (size_t)n_tags * inter);
        ram_linear(I, n_tags, inter, w->o_w, w->o_b, hid, C);
        ram_add(C, A, (size_t)n_tags * hid);
        ram_layernorm(C, H, n_tags, hid, w->oln_w, w->oln_b, m->tagger.eps);
    }
    for (int t = 0; t < n_tags; t++) {
        double a = m->fc_b[0];
        for (int c = 0; c < hid; c++) a += (double)H[(size_t)t * hid + c] * m->fc_w[c];
        probs[t] = ram_sigmoid((float)a);
    }
done:
    ram_free(L), ram_free(H), ram_free(Q), ram_free(K), ram_free(V);
    ram_free(C), ram_free(A), ram_free(I), ram_free(s);
    return rc;
}
#endif

/* ------------------------------------------------------------------ unit vectors, decoded */

ram_status ram_cache_unit_floats(const void *unit, size_t unit_len, int dim, float *out)
{
    if (!unit || !ram_cache_unit_size(dim) || unit_len != ram_cache_unit_size(dim)) return RAM_ERR_FORMAT;
    const unsigned char *p = unit;
    float s = get_f32(p);
    if (!isfinite(s)) return RAM_ERR_FORMAT;
    for (int d = 0; d < dim; d++) out[d] = s * (float)((const int8_t *)(p + 4))[d];
    return RAM_OK;
}
