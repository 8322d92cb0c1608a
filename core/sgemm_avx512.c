/*
** sgemm_avx512.c — the AVX-512 micro-kernel of sgemm.c: a 12 x 32 tile of C
** in 24 zmm accumulators, two vectors of packed B and one broadcast of A
** per row and k. Per k: 2 loads, 12 broadcasts, 24 FMAs, so the two FMA
** ports stay busy while the loads fit in the other ports. 12 rows, not the
** 14 that the registers allow: every Swin-L token count (9216, 2304, 576,
** 144) is a multiple of 12 and none of 14, whose last tile would be mostly
** padding at 144 rows. Compiled for AVX-512 by target attributes whatever the build's
** -march, and only called when cpu.c found the CPU and OS run it.
**
** A is read in place: row r of the tile at a + r*rs, column k at k*cs
** (rs = lda, cs = 1 for A; rs = 1, cs = lda for A^T). Four base pointers
** three rows apart keep every row address a base + rs*{0,4,8} bytes, so
** the loop needs no spilled row pointers.
*/
#include "sgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define MR 12
#define NR 32

/* How a tile's accumulators reach C: columns masked to n, then per element
** alpha acc + beta C + bias, in that order whatever kernel computed it (so a
** row's bits do not depend on the kernel). */
struct tile_out {
    __mmask16 k0, k1;
    __m512 va, vb, bi0, bi1;
    float beta;
    const float *bias;
};

TARGET static inline __attribute__((always_inline)) struct tile_out tile_out(int n, float alpha, float beta,
                                                                             const float *bias)
{
    struct tile_out o;
    o.k0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    o.k1 = n >= 32 ? 0xffff : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    o.va = _mm512_set1_ps(alpha), o.vb = _mm512_set1_ps(beta);
    __m512 z = _mm512_setzero_ps();
    o.bi0 = bias ? _mm512_maskz_loadu_ps(o.k0, bias) : z, o.bi1 = bias ? _mm512_maskz_loadu_ps(o.k1, bias + 16) : z;
    o.beta = beta, o.bias = bias;
    return o;
}

TARGET static inline __attribute__((always_inline)) void store_row(const struct tile_out *o, float *cr, __m512 x0,
                                                                   __m512 x1)
{
    __m512 t0 = _mm512_mul_ps(o->va, x0), t1 = _mm512_mul_ps(o->va, x1);
    if (o->beta != 0.0f) {
        t0 = _mm512_add_ps(t0, _mm512_mul_ps(o->vb, _mm512_maskz_loadu_ps(o->k0, cr)));
        t1 = _mm512_add_ps(t1, _mm512_mul_ps(o->vb, _mm512_maskz_loadu_ps(o->k1, cr + 16)));
    }
    if (o->bias) t0 = _mm512_add_ps(t0, o->bi0), t1 = _mm512_add_ps(t1, o->bi1);
    _mm512_mask_storeu_ps(cr, o->k0, t0);
    _mm512_mask_storeu_ps(cr + 16, o->k1, t1);
}

/* Row r of a kernel's tile to C (kernel() and kernel4() name o, c, ldc, m alike). */
#define OUT(r, x0, x1) \
    if (r < m) store_row(&o, c + (long)(r)*ldc, x0, x1)

TARGET static void kernel(int kc, const float *a, long rs, long cs, const float *bp, float *c, long ldc, int m, int n,
                          float alpha, float beta, const float *bias)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00,
           c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    const float *p0 = a, *p1 = a + 3 * rs, *p2 = a + 6 * rs, *p3 = a + 9 * rs;
    /* C's tile is written at the end: start fetching it now (it is often not in any cache) */
    for (int r = 0; r < m; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
#define ROW(x0, x1, p, off)                   \
    do {                                      \
        __m512 av = _mm512_set1_ps((p)[off]); \
        x0 = _mm512_fmadd_ps(av, b0, x0);     \
        x1 = _mm512_fmadd_ps(av, b1, x1);     \
    } while (0)
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0); /* B comes from L2: 8 steps ahead */
        _mm_prefetch((const char *)(bp + 8 * NR + 16), _MM_HINT_T0);
        ROW(c00, c01, p0, 0);
        ROW(c10, c11, p0, rs);
        ROW(c20, c21, p0, 2 * rs);
        ROW(c30, c31, p1, 0);
        ROW(c40, c41, p1, rs);
        ROW(c50, c51, p1, 2 * rs);
        ROW(c60, c61, p2, 0);
        ROW(c70, c71, p2, rs);
        ROW(c80, c81, p2, 2 * rs);
        ROW(c90, c91, p3, 0);
        ROW(ca0, ca1, p3, rs);
        ROW(cb0, cb1, p3, 2 * rs);
        bp += NR;
        p0 += cs, p1 += cs, p2 += cs, p3 += cs;
    }
#undef ROW
    struct tile_out o = tile_out(n, alpha, beta, bias);
    OUT(0, c00, c01);
    OUT(1, c10, c11);
    OUT(2, c20, c21);
    OUT(3, c30, c31);
    OUT(4, c40, c41);
    OUT(5, c50, c51);
    OUT(6, c60, c61);
    OUT(7, c70, c71);
    OUT(8, c80, c81);
    OUT(9, c90, c91);
    OUT(10, ca0, ca1);
    OUT(11, cb0, cb1);
}

/* The same for tiles of at most 4 rows (a decoding step's 3, the last rows
** of a product): 8 accumulators, where the 12-row kernel would spend 12
** rows of FMAs on zero padding. Each element of C sees the same operations
** in the same order as in kernel() (FMAs over k from zero, then alpha,
** beta C, bias), so a row's bits do not depend on which of the two ran it. */
TARGET static void kernel4(int kc, const float *a, long rs, long cs, const float *bp, float *c, long ldc, int m, int n,
                           float alpha, float beta, const float *bias)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int r = 0; r < m; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
#define ROW(x0, x1, off)                    \
    do {                                    \
        __m512 av = _mm512_set1_ps(a[off]); \
        x0 = _mm512_fmadd_ps(av, b0, x0);   \
        x1 = _mm512_fmadd_ps(av, b1, x1);   \
    } while (0)
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + 8 * NR + 16), _MM_HINT_T0);
        ROW(c00, c01, 0);
        ROW(c10, c11, rs);
        ROW(c20, c21, 2 * rs);
        ROW(c30, c31, 3 * rs);
        bp += NR;
        a += cs;
    }
#undef ROW
    struct tile_out o = tile_out(n, alpha, beta, bias);
    OUT(0, c00, c01);
    OUT(1, c10, c11);
    OUT(2, c20, c21);
    OUT(3, c30, c31);
#undef OUT
}

/* 16 x 16 transpose of rows src[i*ld .. +16] (i < 16) into dst[j*dld + i]. */
TARGET static void transpose16(const float *src, long ld, float *dst, long dld)
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ld);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    /* r[4q + s] now holds, per 128-bit lane L, element (row 4q + e, col 4L + s') ... gather lanes */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
    }
    /* r[idx] holds column j = ? : the mapping is checked against the scalar packer in tests/test_ops.c */
    static const int col[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + col[i] * dld, r[i]);
}

/* B^T blocks (the weights of x @ W^T, W rows contiguous in k): whole 16 x 16
** blocks by register transposes, the edges by the generic packer. */
TARGET static void pack_b(int tB, const float *B, long ldb, int k0, int kc, int j0, int nc, int nr, float *bp)
{
    if (!tB) {
        ram_sgemm_pack_b_generic(tB, B, ldb, k0, kc, j0, nc, nr, bp);
        return;
    }
    int kfull = kc / 16 * 16;
    for (int jp = 0; jp < nc; jp += nr) {
        float *dst = bp + (long)jp * kc;
        int w = nc - jp < nr ? nc - jp : nr;
        if (w < nr || kfull == 0) {
            ram_sgemm_pack_b_generic(tB, B, ldb, k0, kc, j0 + jp, w, nr, dst);
            continue;
        }
        for (int jj = 0; jj < nr; jj += 16)
            for (int k = 0; k < kfull; k += 16)
                transpose16(B + (long)(j0 + jp + jj) * ldb + k0 + k, ldb, dst + (long)k * nr + jj, nr);
        for (int k = kfull; k < kc; k++)
            for (int jj = 0; jj < nr; jj++) dst[(long)k * nr + jj] = B[(long)(j0 + jp + jj) * ldb + k0 + k];
    }
}

const struct ram_sgemm_kernel ram_sgemm_kernel_avx512 = {MR, NR, kernel, pack_b, 4, kernel4};
#else
const struct ram_sgemm_kernel ram_sgemm_kernel_avx512 = {0, 0, 0, 0, 0, 0};
#endif
