/*
** ops.c — element-wise kernels and the single caller of cblas_sgemm.
** Reductions that decide accuracy (LayerNorm statistics) accumulate in double
** so that our results stay within the golden tolerance whatever the row width.
**
** HOW IT WORKS (speed): softmax, GELU and quick-GELU spend their time in
** expf/erff, which the compiler cannot vectorise, so with AVX2+FMA (8 lanes)
** or AVX-512 (16 lanes) they use a vector exp (Cody-Waite reduction by ln 2,
** degree-7 Taylor polynomial on |r| <= ln2/2, 2^n put into the exponent: about
** 1 ulp) and erf from it (Abramowitz & Stegun 7.1.26: absolute error
** <= 1.5e-7, multiplied by x/2 in GELU). Leftover elements of a row and
** machines without AVX2 take the scalar libm loops. LayerNorm's double sums
** use 4-lane double vectors (pairwise order: rounding differs from the
** scalar loop only in the last bits of a double).
*/
#include "ops.h"

#include "gemm_q8.h"
#include "ram.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* OpenBLAS's own prototypes; declared here to avoid depending on its extra headers. */
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

/* ---- vector width abstraction: VW lanes of float, or none (RAM_VEC 0) ---- */
#if defined(__AVX512F__)
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
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), \
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))))
#define vhsum _mm512_reduce_add_ps
#define vhmax _mm512_reduce_max_ps
#elif defined(__AVX2__) && defined(__FMA__)
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
/* e^x per lane. Inputs are clamped to [-87.3, 88.3] (results below 1.2e-38
** are not 0 but are negligible wherever they are summed or multiplied here). */
static inline vf vexp(vf x)
{
    x = vmin(vmax(x, vset1(-87.3f)), vset1(88.3f));
    vf n = vround(vmul(x, vset1(1.44269504088896341f)));
    vf r = vfma(n, vset1(-0.693145751953125f), x); /* ln2 split: exact hi part ... */
    r = vfma(n, vset1(-1.42860682030941723e-6f), r); /* ... and the rest */
    vf p = vset1(1.0f / 5040);
    p = vfma(p, r, vset1(1.0f / 720));
    p = vfma(p, r, vset1(1.0f / 120));
    p = vfma(p, r, vset1(1.0f / 24));
    p = vfma(p, r, vset1(1.0f / 6));
    p = vfma(p, r, vset1(0.5f));
    p = vfma(p, r, vset1(1.0f));
    p = vfma(p, r, vset1(1.0f));
    return vmul(p, vpow2i(n));
}

/* erf per lane (A&S 7.1.26 on |x|, sign restored). */
static inline vf verf(vf x)
{
    vf a = vabs(x);
    vf t = vdiv(vset1(1.0f), vfma(a, vset1(0.3275911f), vset1(1.0f)));
    vf p = vset1(1.061405429f);
    p = vfma(p, t, vset1(-1.453152027f));
    p = vfma(p, t, vset1(1.421413741f));
    p = vfma(p, t, vset1(-0.284496736f));
    p = vfma(p, t, vset1(0.254829592f));
    p = vmul(p, t);
    vf e = vexp(vsub(vset1(0.0f), vmul(a, a)));
    vf y = vsub(vset1(1.0f), vmul(p, e));
    return vsignof(y, x);
}
#endif

void ram_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void ram_linear(const float *x, int rows, int in, const float *W, const float *b, int out, float *y)
{
    if (b) {
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * out, b, sizeof(float) * out);
    }
    ram_gemm(0, 1, rows, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}

ram_status ram_linear_q(const float *x, int rows, int in, const float *W, const struct ram_q8_weight *q,
                        const float *b, int out, float *y, struct ram_error *err)
{
    if (q) return ram_q8_linear(x, rows, q, b, y, err);
    ram_linear(x, rows, in, W, b, out, y);
    return RAM_OK;
}

/* Sum and sum of squared deviations from mean over n floats, in double. */
static double ln_sum(const float *x, int n)
{
    int i = 0;
    double s = 0;
#if defined(__AVX2__)
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
#if defined(__AVX2__)
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

void ram_layernorm(const float *x, float *y, int rows, int cols, const float *w, const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double mean = ln_sum(xr, cols) / cols;
        double ss = ln_ssd(xr, cols, mean);
        float inv = (float)(1.0 / sqrt(ss / cols + (double)eps));
        float m = (float)mean;
        for (int i = 0; i < cols; i++) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
    }
}

void ram_gelu(float *x, size_t n)
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

void ram_quick_gelu(float *x, size_t n)
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

void ram_relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void ram_softmax_rows(float *x, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
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
            xr[i] = expf(xr[i] - mx);
            s += xr[i];
        }
        float inv = 1.0f / s;
        for (i = 0; i < cols; i++) xr[i] *= inv;
    }
}

void ram_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

float ram_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void ram_ops_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }
int ram_ops_get_threads(void) { return openblas_get_num_threads(); }

void ram_set_threads(int n) { ram_ops_set_threads(n); }
int ram_get_threads(void) { return ram_ops_get_threads(); }

void ram_l2_normalize(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) v[i] *= inv;
}
