/*
** ops_vec.h — the vector kernels of the op layer (ops.h), written once over
** a vector-width abstraction and compiled once per instruction set: this
** file is included by ops_vec_pick.c (portable: RAM_OPS_LEVEL 0), ops_avx2.c
** (1) and ops_avx512.c (2), each of which defines RAM_OPS_LEVEL and OPS_TABLE
** (the name of the struct ram_ops_vec it exports) and enables its
** instructions. ops_vec_pick.c picks the table from cpu.h's run-time
** choice, so a build for a baseline -march still runs AVX-512 here.
**
** HOW IT WORKS (speed): softmax, GELU and quick-GELU spend their time in
** expf/erff, which the compiler cannot vectorise, so with AVX2+FMA (8 lanes)
** or AVX-512 (16 lanes) they use a vector exp (Cody-Waite reduction by ln 2,
** degree-7 Taylor polynomial on |r| <= ln2/2, 2^n put into the exponent: about
** 1 ulp) and erf from it (Abramowitz & Stegun 7.1.26: absolute error
** <= 1.5e-7, multiplied by x/2 in GELU). Leftover elements of a row and the
** portable level take the scalar libm loops. LayerNorm's double sums use
** 4-lane double vectors (pairwise order: rounding differs from the scalar
** loop only in the last bits of a double).
*/
#include "ops_vec_table.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#if RAM_OPS_LEVEL >= 1
#include <immintrin.h>
#endif

/* ---- vector width abstraction: VW lanes of float, or none (RAM_VEC 0) ---- */
#if RAM_OPS_LEVEL == 2
#define RAM_VEC 1
#define VW 16
typedef __m512 vf;
#define vset1 _mm512_set1_ps
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vfma _mm512_fmadd_ps /* a*b + c */
#define vmax _mm512_max_ps
#define vmin _mm512_min_ps
#define vabs _mm512_abs_ps
#define vround(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vpow2i(n) /* 2^n for float n already integral, -126 <= n <= 127 */ \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define vsignof(r, x) /* r with the sign bit of x or-ed in (r >= 0) */ \
    _mm512_castsi512_ps(_mm512_or_si512(                               \
        _mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))))
#define vzero_below(x, lim, r) /* r, or 0 where x < lim */ \
    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_GE_OQ), (r))
#define vhsum _mm512_reduce_add_ps
#define vhmax _mm512_reduce_max_ps
#elif RAM_OPS_LEVEL == 1
#define RAM_VEC 1
#define VW 8
typedef __m256 vf;
#define vset1 _mm256_set1_ps
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vdiv _mm256_div_ps
#define vfma _mm256_fmadd_ps
#define vmax _mm256_max_ps
#define vmin _mm256_min_ps
#define vabs(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (x))
#define vround(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vpow2i(n) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define vsignof(r, x) _mm256_or_ps((r), _mm256_and_ps((x), _mm256_set1_ps(-0.0f)))
#define vzero_below(x, lim, r) _mm256_and_ps((r), _mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_GE_OQ))
static float vhsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static float vhmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#else
#define RAM_VEC 0
#endif

#if RAM_VEC
/* e^x per lane; 0 below x = -60 (e^-60 = 8.8e-27). Why 0: the tiny values
** (a softmax's masked entries at -100, quick GELU's tail) would otherwise
** become subnormal in the normalisation or in the products that use them,
** and each subnormal result costs the CPU a microcode assist of ~100 cycles
** (it made window attention 10x slower than its FLOPs). No fp32 sum in which
** such a term sits beside the row's largest (e^0 = 1) can see it. */
static inline vf vexp(vf x)
{
    vf x0 = x;
    x = vmin(vmax(x, vset1(-87.3f)), vset1(88.3f));
    vf n = vround(vmul(x, vset1(1.44269504088896341f)));
    vf r = vfma(n, vset1(-0.693145751953125f), x);   /* ln2 split: exact hi part ... */
    r = vfma(n, vset1(-1.42860682030941723e-6f), r); /* ... and the rest */
    vf p = vset1(1.0f / 5040);
    p = vfma(p, r, vset1(1.0f / 720));
    p = vfma(p, r, vset1(1.0f / 120));
    p = vfma(p, r, vset1(1.0f / 24));
    p = vfma(p, r, vset1(1.0f / 6));
    p = vfma(p, r, vset1(0.5f));
    p = vfma(p, r, vset1(1.0f));
    p = vfma(p, r, vset1(1.0f));
    return vzero_below(x0, -60.0f, vmul(p, vpow2i(n)));
}

/* erf per lane: x P(x^2) / Q(x^2) on x clamped to +-3.925 (past it erf rounds
** to +-1 in float), P and Q of degree 5 fitted by tools/fit_erf.py: 1.7e-8 in
** double, a few float ulps as evaluated here. 15 operations and no exp: GELU
** ran 1.7x faster than with A&S 7.1.26 (an exp and a division per lane),
** whose error (1.5e-7) was no smaller. */
static inline vf verf(vf x)
{
    x = vmin(vmax(x, vset1(-3.925f)), vset1(3.925f));
    vf t = vmul(x, x);
    vf p = vset1(2.03070978e-06f);
    p = vfma(p, t, vset1(0.000287428055f));
    p = vfma(p, t, vset1(0.0038748652f));
    p = vfma(p, t, vset1(0.0530798601f));
    p = vfma(p, t, vset1(0.19294274f));
    p = vfma(p, t, vset1(1.12837902f));
    vf q = vset1(3.80263961e-05f);
    q = vfma(q, t, vset1(0.00118933454f));
    q = vfma(q, t, vset1(0.0151854999f));
    q = vfma(q, t, vset1(0.11515462f));
    q = vfma(q, t, vset1(0.504322708f));
    q = vfma(q, t, vset1(1.0f));
    return vdiv(vmul(x, p), q);
}
#endif

/* Sum and sum of squared deviations from mean over n floats, in double. */
static double ln_sum(const float *x, int n)
{
    int i = 0;
    double s = 0;
#if RAM_OPS_LEVEL >= 1
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    for (; i + 8 <= n; i += 8) {
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
    s = (t[0] + t[1]) + (t[2] + t[3]);
#endif
    for (; i < n; i++) s += x[i];
    return s;
}

static double ln_ssd(const float *x, int n, double mean)
{
    int i = 0;
    double ss = 0;
#if RAM_OPS_LEVEL >= 1
    __m256d m = _mm256_set1_pd(mean), a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    for (; i + 8 <= n; i += 8) {
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m);
        a0 = _mm256_add_pd(a0, _mm256_mul_pd(d0, d0));
        a1 = _mm256_add_pd(a1, _mm256_mul_pd(d1, d1));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
    ss = (t[0] + t[1]) + (t[2] + t[3]);
#endif
    for (; i < n; i++) {
        double d = x[i] - mean;
        ss += d * d;
    }
    return ss;
}

static void layernorm_rows(const float *x, float *y, int rows, int cols, const float *w, const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double mean = ln_sum(xr, cols) / cols;
        double ss = ln_ssd(xr, cols, mean);
        float inv = (float)(1.0 / sqrt(ss / cols + (double)eps));
        float m = (float)mean;
        int i = 0;
#if RAM_VEC /* the same operations in the same order as the scalar loop: the same bits */
        vf vm = vset1(m), vi = vset1(inv);
        for (; i + VW <= cols; i += VW)
            vstore(yr + i, vadd(vmul(vmul(vsub(vload(xr + i), vm), vi), vload(w + i)), vload(b + i)));
#endif
        for (; i < cols; i++) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
    }
}

static void gelu(float *x, size_t n)
{
    size_t i = 0;
#if RAM_VEC
    for (; i + VW <= n; i += VW) {
        vf v = vload(x + i);
        vf e = verf(vmul(v, vset1(0.70710678118654752f)));
        vstore(x + i, vmul(vmul(vset1(0.5f), v), vadd(vset1(1.0f), e)));
    }
#endif
    for (; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void quick_gelu(float *x, size_t n)
{
    size_t i = 0;
#if RAM_VEC
    for (; i + VW <= n; i += VW) {
        vf v = vload(x + i);
        vstore(x + i, vdiv(v, vadd(vset1(1.0f), vexp(vmul(v, vset1(-1.702f))))));
    }
#endif
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

static void relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

#if RAM_VEC
/* Four rows of softmax_rows at once, each by exactly its operations (the
** same bits): a row's three passes hang on reductions (max, sum, 1 / sum),
** chains of dependent steps that left the vector units idle one row at a
** time (~20 cycles per 16 lanes on window attention's 144-wide rows);
** interleaved, the four rows' chains overlap. cols >= VW. */
static void softmax4(float *x, int cols)
{
    float *xr[4] = {x, x + cols, x + 2 * (size_t)cols, x + 3 * (size_t)cols}, mx[4], s[4];
    vf m[4], acc[4];
    int i;
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) m[r] = vload(xr[r]);
    for (i = VW; i + VW <= cols; i += VW)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) m[r] = vmax(m[r], vload(xr[r] + i));
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        mx[r] = vhmax(m[r]);
        for (int t = i; t < cols; t++) mx[r] = xr[r][t] > mx[r] ? xr[r][t] : mx[r];
        m[r] = vset1(mx[r]), acc[r] = vset1(0.0f);
    }
    for (i = 0; i + VW <= cols; i += VW)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            vf e = vexp(vsub(vload(xr[r] + i), m[r]));
            vstore(xr[r] + i, e);
            acc[r] = vadd(acc[r], e);
        }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        s[r] = vhsum(acc[r]);
        for (int t = i; t < cols; t++) {
            float d = xr[r][t] - mx[r];
            xr[r][t] = d < -60.0f ? 0.0f : expf(d);
            s[r] += xr[r][t];
        }
        m[r] = vset1(1.0f / s[r]);
    }
    for (i = 0; i + VW <= cols; i += VW)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) vstore(xr[r] + i, vmul(vload(xr[r] + i), m[r]));
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        float inv = 1.0f / s[r];
        for (int t = i; t < cols; t++) xr[r][t] *= inv;
    }
}
#endif

/* x[i] /= div over n floats (the quotient is exact IEEE: the same bits
** in vector and scalar lanes). */
static void div_all(float *x, size_t n, float div)
{
    size_t i = 0;
#if RAM_VEC
    for (vf v = vset1(div); i + VW <= n; i += VW) vstore(x + i, vdiv(vload(x + i), v));
#endif
    for (; i < n; i++) x[i] = x[i] / div;
}

/* Softmax of each row of x / div (div 1: of x). The rows are divided a
** block at a time, just before their softmax reads them from cache: a
** separate pass would carry the whole matrix through memory once more. */
static void softmax_rows_div(float *x, int rows, int cols, float div)
{
    int r = 0;
#if RAM_VEC
    if (cols >= VW)
        for (; r + 4 <= rows; r += 4) {
            if (div != 1.0f) div_all(x + (size_t)r * cols, 4 * (size_t)cols, div);
            softmax4(x + (size_t)r * cols, cols);
        }
#endif
    for (; r < rows; r++) {
        if (div != 1.0f) div_all(x + (size_t)r * cols, (size_t)cols, div);
        float *xr = x + (size_t)r * cols;
        int i = 0;
        float mx = xr[0], s = 0;
#if RAM_VEC
        if (cols >= VW) {
            vf m = vload(xr);
            for (i = VW; i + VW <= cols; i += VW) m = vmax(m, vload(xr + i));
            mx = vhmax(m);
        }
#endif
        for (; i < cols; i++) mx = xr[i] > mx ? xr[i] : mx;
        i = 0;
#if RAM_VEC
        {
            vf vm = vset1(mx), acc = vset1(0.0f);
            for (; i + VW <= cols; i += VW) {
                vf e = vexp(vsub(vload(xr + i), vm));
                vstore(xr + i, e);
                acc = vadd(acc, e);
            }
            s = vhsum(acc);
        }
#endif
        for (; i < cols; i++) {
            float d = xr[i] - mx;
            xr[i] = d < -60.0f ? 0.0f : expf(d); /* no subnormals: see vexp */
            s += xr[i];
        }
        float inv = 1.0f / s;
        i = 0;
#if RAM_VEC
        for (vf vi = vset1(inv); i + VW <= cols; i += VW) vstore(xr + i, vmul(vload(xr + i), vi));
#endif
        for (; i < cols; i++) xr[i] *= inv;
    }
}

static void softmax_rows(float *x, int rows, int cols) { softmax_rows_div(x, rows, cols, 1.0f); }

/* C (M x W, rows at stride ldc) = [C +] A B for A (M x K, stride lda) and B
** (K x W, stride ldb): the two small products of one attention head, where
** a BLAS call costs more than the arithmetic. Vectors run along the rows of
** C; four rows at a time share each load of B and keep eight independent
** sums in flight (one row alone would wait on the FMA latency). acc: C =
** C0 + A B (the scores start as the bias and mask, read where they are
** cached instead of copied into C first; C0 may be C; rows at stride ldc). */
static void small_gemm(const float *A, int lda, const float *B, int ldb, const float *C0, float *C, int ldc, int M,
                       int K, int W, int acc)
{
    int i = 0;
#if RAM_VEC && VW == 16
    /* 32 registers: eight rows share each load of B, sixteen sums in flight
    ** (four rows issue 6 loads per 8 FMAs: the load ports, not the FMA
    ** units, set the pace). Every sum still runs over k in order: the same
    ** bits as the four-row loop. */
    for (; i + 8 <= M; i += 8) {
        const float *a = A + (size_t)i * lda, *c0 = C0 + (size_t)i * ldc;
        float *c = C + (size_t)i * ldc;
        int j = 0;
        for (; j + 2 * VW <= W; j += 2 * VW) {
            vf x[8], y[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) {
                x[r] = acc ? vload(c0 + (size_t)r * ldc + j) : vset1(0.0f);
                y[r] = acc ? vload(c0 + (size_t)r * ldc + j + VW) : vset1(0.0f);
            }
            for (int k = 0; k < K; k++) {
                vf b0 = vload(B + (size_t)k * ldb + j), b1 = vload(B + (size_t)k * ldb + j + VW);
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    vf v = vset1(a[(size_t)r * lda + k]);
                    x[r] = vfma(v, b0, x[r]), y[r] = vfma(v, b1, y[r]);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++)
                vstore(c + (size_t)r * ldc + j, x[r]), vstore(c + (size_t)r * ldc + j + VW, y[r]);
        }
        for (; j + VW <= W; j += VW) {
            vf x[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) x[r] = acc ? vload(c0 + (size_t)r * ldc + j) : vset1(0.0f);
            for (int k = 0; k < K; k++) {
                vf b0 = vload(B + (size_t)k * ldb + j);
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) x[r] = vfma(vset1(a[(size_t)r * lda + k]), b0, x[r]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) vstore(c + (size_t)r * ldc + j, x[r]);
        }
        for (int r = 0; r < 8; r++) { /* the columns left of these eight rows */
            const float *ar = a + (size_t)r * lda, *cr0 = c0 + (size_t)r * ldc;
            float *cr = c + (size_t)r * ldc;
            for (int jj = j; jj < W; jj++) {
                float x = acc ? cr0[jj] : 0.0f;
                for (int k = 0; k < K; k++) x += ar[k] * B[(size_t)k * ldb + jj];
                cr[jj] = x;
            }
        }
    }
#endif
#if RAM_VEC
    for (; i + 4 <= M; i += 4) {
        const float *a0 = A + (size_t)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        float *c0 = C + (size_t)i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        const float *c00 = C0 + (size_t)i * ldc, *c10 = c00 + ldc, *c20 = c10 + ldc, *c30 = c20 + ldc;
        int j = 0;
        for (; j + 2 * VW <= W; j += 2 * VW) {
            vf z = vset1(0.0f);
            vf x0 = acc ? vload(c00 + j) : z, y0 = acc ? vload(c00 + j + VW) : z;
            vf x1 = acc ? vload(c10 + j) : z, y1 = acc ? vload(c10 + j + VW) : z;
            vf x2 = acc ? vload(c20 + j) : z, y2 = acc ? vload(c20 + j + VW) : z;
            vf x3 = acc ? vload(c30 + j) : z, y3 = acc ? vload(c30 + j + VW) : z;
            for (int k = 0; k < K; k++) {
                vf b0 = vload(B + (size_t)k * ldb + j), b1 = vload(B + (size_t)k * ldb + j + VW);
                vf v = vset1(a0[k]);
                x0 = vfma(v, b0, x0), y0 = vfma(v, b1, y0);
                v = vset1(a1[k]);
                x1 = vfma(v, b0, x1), y1 = vfma(v, b1, y1);
                v = vset1(a2[k]);
                x2 = vfma(v, b0, x2), y2 = vfma(v, b1, y2);
                v = vset1(a3[k]);
                x3 = vfma(v, b0, x3), y3 = vfma(v, b1, y3);
            }
            vstore(c0 + j, x0), vstore(c0 + j + VW, y0), vstore(c1 + j, x1), vstore(c1 + j + VW, y1);
            vstore(c2 + j, x2), vstore(c2 + j + VW, y2), vstore(c3 + j, x3), vstore(c3 + j + VW, y3);
        }
        for (; j + VW <= W; j += VW) {
            vf z = vset1(0.0f);
            vf x0 = acc ? vload(c00 + j) : z, x1 = acc ? vload(c10 + j) : z;
            vf x2 = acc ? vload(c20 + j) : z, x3 = acc ? vload(c30 + j) : z;
            for (int k = 0; k < K; k++) {
                vf b0 = vload(B + (size_t)k * ldb + j);
                x0 = vfma(vset1(a0[k]), b0, x0), x1 = vfma(vset1(a1[k]), b0, x1);
                x2 = vfma(vset1(a2[k]), b0, x2), x3 = vfma(vset1(a3[k]), b0, x3);
            }
            vstore(c0 + j, x0), vstore(c1 + j, x1), vstore(c2 + j, x2), vstore(c3 + j, x3);
        }
        for (int r = 0; r < 4; r++) { /* the columns left of these four rows */
            const float *ar = A + (size_t)(i + r) * lda, *cr0 = C0 + (size_t)(i + r) * ldc;
            float *cr = C + (size_t)(i + r) * ldc;
            for (int jj = j; jj < W; jj++) {
                float x = acc ? cr0[jj] : 0.0f;
                for (int k = 0; k < K; k++) x += ar[k] * B[(size_t)k * ldb + jj];
                cr[jj] = x;
            }
        }
    }
#endif
    for (; i < M; i++) {
        const float *ar = A + (size_t)i * lda, *cr0 = C0 + (size_t)i * ldc;
        float *cr = C + (size_t)i * ldc;
        for (int j = 0; j < W; j++) {
            float x = acc ? cr0[j] : 0.0f;
            for (int k = 0; k < K; k++) x += ar[k] * B[(size_t)k * ldb + j];
            cr[j] = x;
        }
    }
}

#if RAM_VEC && VW == 16
#define LO64(a, b) _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
#define HI64(a, b) _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
/* dst[c * ldd + i] = src[i * lds + c] for a 16 x 16 block, in registers:
** interleave 32-bit then 64-bit elements within 128-bit lanes (each lane
** then holds 4 x 4 transposed blocks), then move the lanes into place. */
static void transpose16(const float *src, size_t lds, float *dst, size_t ldd)
{
    vf r[16], a[16], b[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = vload(src + i * lds);
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2)
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
#pragma GCC unroll 4
    for (int g = 0; g < 16; g += 4) { /* b[g + m], lane L: rows g..g+3 of column 4L + m */
        b[g] = LO64(a[g], a[g + 2]), b[g + 1] = HI64(a[g], a[g + 2]);
        b[g + 2] = LO64(a[g + 1], a[g + 3]), b[g + 3] = HI64(a[g + 1], a[g + 3]);
    }
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        vf c = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x44), e = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x44);
        vf f = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xEE), g = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xEE);
        vstore(dst + (size_t)m * ldd, _mm512_shuffle_f32x4(c, e, 0x88));
        vstore(dst + (size_t)(4 + m) * ldd, _mm512_shuffle_f32x4(c, e, 0xDD));
        vstore(dst + (size_t)(8 + m) * ldd, _mm512_shuffle_f32x4(f, g, 0x88));
        vstore(dst + (size_t)(12 + m) * ldd, _mm512_shuffle_f32x4(f, g, 0xDD));
    }
}
#undef LO64
#undef HI64
#endif

/* kt (d x N) = the transpose of k's first d columns (N rows at stride ld):
** the scalar loop's strided stores cost as much as the product q k^T they
** feed. AVX-512 moves 16 x 16 blocks through registers (the columns left
** over are gathered), AVX2 gathers a key column 8 rows at a time. */
static void transpose_keys(const float *k, int ld, int N, int d, float *kt)
{
    int j = 0;
#if RAM_VEC && VW == 16
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(ld));
    for (; j + VW <= N; j += VW) {
        int c = 0;
        for (; c + VW <= d; c += VW) transpose16(k + (size_t)j * ld + c, (size_t)ld, kt + (size_t)c * N + j, (size_t)N);
        for (; c < d; c++)
            _mm512_storeu_ps(kt + (size_t)c * N + j, _mm512_i32gather_ps(rows, k + (size_t)j * ld + c, 4));
    }
#elif RAM_VEC
    const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(ld));
    for (; j + VW <= N; j += VW)
        for (int c = 0; c < d; c++)
            _mm256_storeu_ps(kt + (size_t)c * N + j, _mm256_i32gather_ps(k + (size_t)j * ld + c, rows, 4));
#endif
    for (; j < N; j++)
        for (int c = 0; c < d; c++) kt[(size_t)c * N + j] = k[(size_t)j * ld + c];
}

static void attention_head(const float *q, const float *k, const float *v, int ld, int N, int d, float scale,
                           const float *s0, float *s, float *kt, float *o, int ldo)
{
    /* q * scale into the second half of kt: a vector pass (the caller's
    ** strided scalar loop cost a few % of the head), and the product's
    ** rows side by side instead of 3C floats apart */
    float *qs = kt + (size_t)d * N;
    for (int i = 0; i < N; i++) {
        const float *qi = q + (size_t)i * ld;
        float *qo = qs + (size_t)i * d;
        int c = 0;
#if RAM_VEC
        for (vf vs = vset1(scale); c + VW <= d; c += VW) vstore(qo + c, vmul(vload(qi + c), vs));
#endif
        for (; c < d; c++) qo[c] = qi[c] * scale;
    }
    transpose_keys(k, ld, N, d, kt);
    small_gemm(qs, d, kt, N, s0, s, N, N, d, N, 1); /* s = s0 + q k^T */
    softmax_rows(s, N, N);
    /* v's rows packed into kt's room (free again) first: at Swin's stride
    ** (3C floats, a multiple of 1 KB past stage 1) the N rows the product
    ** walks through for every block of output rows fall into a few L1
    ** sets and were fetched from L2 again each time. */
    for (int j = 0; j < N; j++) memcpy(kt + (size_t)j * d, v + (size_t)j * ld, sizeof(float) * d);
    small_gemm(s, N, kt, d, o, o, ldo, N, N, d, 0); /* o = p v (o as C0: not read) */
}

static float dot(const float *a, const float *b, int n)
{
    int i = 0;
    float s = 0;
#if RAM_VEC
    vf s0 = vset1(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 4 * VW <= n; i += 4 * VW) {
        s0 = vfma(vload(a + i), vload(b + i), s0);
        s1 = vfma(vload(a + i + VW), vload(b + i + VW), s1);
        s2 = vfma(vload(a + i + 2 * VW), vload(b + i + 2 * VW), s2);
        s3 = vfma(vload(a + i + 3 * VW), vload(b + i + 3 * VW), s3);
    }
    for (; i + VW <= n; i += VW) s0 = vfma(vload(a + i), vload(b + i), s0);
    s = vhsum(vadd(vadd(s0, s1), vadd(s2, s3)));
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* y[r * ldy + o] = dot(x_r, W_o, n) + (b ? b[o] : 0) for rows x outs pairs
** (x rows and W rows n floats apart), each bit for bit what dot() gives:
** blocks of DR rows x DO outputs run dot()'s exact operation sequence (4
** accumulators striding 4 vectors, the vector tail into the first, the
** same horizontal sum, the scalar tail) side by side, so that the FMA
** chains of DR * DO dots hide each other's latency and each load serves
** several of them; what is left over calls dot() itself. */
#define DR 2
#define DO 3
#if RAM_VEC
/* The 2 x 3 block's 24 accumulators as named variables (arrays of vectors
** stay in memory): acc u v k for row u, output v, lane group k. */
#define DOTS_ACC4(u, v) \
    vf c##u##v##0 = vset1(0.0f), c##u##v##1 = c##u##v##0, c##u##v##2 = c##u##v##0, c##u##v##3 = c##u##v##0
#define DOTS_FMA(u, v, k, off) c##u##v##k = vfma(x##u, vload(wb[v] + i + (off)), c##u##v##k)
#define DOTS_LANE(k)                                                                     \
    do {                                                                                 \
        const vf x0 = vload(xa[0] + i + (k)*VW), x1 = vload(xa[1] + i + (k)*VW);         \
        DOTS_FMA(0, 0, k, (k)*VW), DOTS_FMA(0, 1, k, (k)*VW), DOTS_FMA(0, 2, k, (k)*VW); \
        DOTS_FMA(1, 0, k, (k)*VW), DOTS_FMA(1, 1, k, (k)*VW), DOTS_FMA(1, 2, k, (k)*VW); \
    } while (0)
#define DOTS_SUM(u, v) s[u][v] = vhsum(vadd(vadd(c##u##v##0, c##u##v##1), vadd(c##u##v##2, c##u##v##3)))
#endif
static void dots(const float *x, int rows, const float *W, int outs, int n, const float *b, float *y, int ldy)
{
    int o = 0;
    for (; o + DO <= outs; o += DO) {
        int r = 0;
        for (; r + DR <= rows; r += DR) {
            const float *xa[DR] = {x + (size_t)r * n, x + (size_t)(r + 1) * n};
            const float *wb[DO] = {W + (size_t)o * n, W + (size_t)(o + 1) * n, W + (size_t)(o + 2) * n};
            float s[DR][DO] = {{0}};
            int i = 0;
#if RAM_VEC
            DOTS_ACC4(0, 0);
            DOTS_ACC4(0, 1);
            DOTS_ACC4(0, 2);
            DOTS_ACC4(1, 0);
            DOTS_ACC4(1, 1);
            DOTS_ACC4(1, 2);
            for (; i + 4 * VW <= n; i += 4 * VW) {
                DOTS_LANE(0);
                DOTS_LANE(1);
                DOTS_LANE(2);
                DOTS_LANE(3);
            }
            for (; i + VW <= n; i += VW) DOTS_LANE(0); /* dot()'s vector tail goes to its first accumulator */
            DOTS_SUM(0, 0), DOTS_SUM(0, 1), DOTS_SUM(0, 2);
            DOTS_SUM(1, 0), DOTS_SUM(1, 1), DOTS_SUM(1, 2);
#endif
            for (int u = 0; u < DR; u++)
                for (int v = 0; v < DO; v++) {
                    float t = s[u][v];
                    for (int k = i; k < n; k++) t += xa[u][k] * wb[v][k];
                    y[(size_t)(r + u) * ldy + o + v] = t + (b ? b[o + v] : 0.0f);
                }
        }
        for (; r < rows; r++)
            for (int v = 0; v < DO; v++)
                y[(size_t)r * ldy + o + v] = dot(x + (size_t)r * n, W + (size_t)(o + v) * n, n) + (b ? b[o + v] : 0.0f);
    }
    for (; o < outs; o++)
        for (int r = 0; r < rows; r++)
            y[(size_t)r * ldy + o] = dot(x + (size_t)r * n, W + (size_t)o * n, n) + (b ? b[o] : 0.0f);
}
#undef DR
#undef DO
#undef DOTS_ACC4
#undef DOTS_FMA
#undef DOTS_LANE
#undef DOTS_SUM

static void reweight_rows(const float *q, const float *rows, int n, int des, int E, float *w, float *out)
{
    for (int i = 0; i < n; i++) {
        const float *r = rows + (size_t)i * des * E;
        float *wi = w + (size_t)i * des, *oi = out + (size_t)i * E;
        for (int d = 0; d < des; d++) wi[d] = dot(q, r + (size_t)d * E, E);
        softmax_rows(wi, 1, des);
        memset(oi, 0, sizeof(float) * (size_t)E);
        for (int d = 0; d < des; d++) { /* the rows are in L2 from the dot products */
            const float *rd = r + (size_t)d * E;
            int e = 0;
#if RAM_VEC
            vf wd = vset1(wi[d]);
            for (; e + VW <= E; e += VW) vstore(oi + e, vfma(wd, vload(rd + e), vload(oi + e)));
#endif
            for (; e < E; e++) oi[e] += wi[d] * rd[e];
        }
    }
}

static void add(float *y, const float *x, size_t n)
{
    size_t i = 0;
#if RAM_VEC
    for (; i + VW <= n; i += VW) vstore(y + i, vadd(vload(y + i), vload(x + i)));
#endif
    for (; i < n; i++) y[i] += x[i];
}

const struct ram_ops_vec OPS_TABLE = {layernorm_rows, gelu,          quick_gelu, relu, softmax_rows_div, add, dot,
                                      attention_head, reweight_rows, dots};
