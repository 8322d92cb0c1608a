/*
** sgemm_avx2.c — the AVX2+FMA micro-kernel of sgemm.c: a 6 x 16 tile of C
** in 12 ymm accumulators, two vectors of packed B and one broadcast of A
** (15 of 16 registers). Compiled for AVX2 by target attributes whatever
** the build's -march; called only when cpu.c found the CPU runs it.
** A is read in place as in sgemm_avx512.c (rows a + r*rs, columns k*cs).
*/
#include "sgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define MR 6
#define NR 16

TARGET static void kernel(int kc, const float *a, long rs, long cs, const float *bp, float *c, long ldc, int m, int n,
                          float alpha, float beta, const float *bias)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *p0 = a, *p1 = a + 3 * rs;
#define ROW(x0, x1, p, off)                           \
    do {                                              \
        __m256 av = _mm256_broadcast_ss((p) + (off)); \
        x0 = _mm256_fmadd_ps(av, b0, x0);             \
        x1 = _mm256_fmadd_ps(av, b1, x1);             \
    } while (0)
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        ROW(c00, c01, p0, 0);
        ROW(c10, c11, p0, rs);
        ROW(c20, c21, p0, 2 * rs);
        ROW(c30, c31, p1, 0);
        ROW(c40, c41, p1, rs);
        ROW(c50, c51, p1, 2 * rs);
        bp += NR;
        p0 += cs, p1 += cs;
    }
#undef ROW
    /* alpha acc + beta C + bias, in that order; the last columns of C through a buffer */
    float tail[16], bt[16];
    const float *bi = bias;
    if (bias && n < NR) {
        for (int j = 0; j < NR; j++) bt[j] = j < n ? bias[j] : 0.0f;
        bi = bt;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    __m256 bi0 = bi ? _mm256_loadu_ps(bi) : _mm256_setzero_ps(), bi1 = bi ? _mm256_loadu_ps(bi + 8) : bi0;
#define OUT(r, x0, x1)                                                               \
    do {                                                                             \
        if (r < m) {                                                                 \
            float *cr = c + (long)(r)*ldc, *dst = n < NR ? tail : cr;                \
            if (n < NR && beta != 0.0f)                                              \
                for (int j = 0; j < NR; j++) tail[j] = j < n ? cr[j] : 0.0f;         \
            __m256 t0 = _mm256_mul_ps(va, x0), t1 = _mm256_mul_ps(va, x1);           \
            if (beta != 0.0f) {                                                      \
                t0 = _mm256_add_ps(t0, _mm256_mul_ps(vb, _mm256_loadu_ps(dst)));     \
                t1 = _mm256_add_ps(t1, _mm256_mul_ps(vb, _mm256_loadu_ps(dst + 8))); \
            }                                                                        \
            if (bi) t0 = _mm256_add_ps(t0, bi0), t1 = _mm256_add_ps(t1, bi1);        \
            _mm256_storeu_ps(dst, t0);                                               \
            _mm256_storeu_ps(dst + 8, t1);                                           \
            if (n < NR)                                                              \
                for (int j = 0; j < n; j++) cr[j] = tail[j];                         \
        }                                                                            \
    } while (0)
    OUT(0, c00, c01);
    OUT(1, c10, c11);
    OUT(2, c20, c21);
    OUT(3, c30, c31);
    OUT(4, c40, c41);
    OUT(5, c50, c51);
#undef OUT
}

const struct ram_sgemm_kernel ram_sgemm_kernel_avx2 = {MR, NR, kernel, ram_sgemm_pack_b_generic, 0, 0};
#else
const struct ram_sgemm_kernel ram_sgemm_kernel_avx2 = {0, 0, 0, 0, 0, 0};
#endif
