/*
** gemm_bf16.c — the bf16 linear layer of gemm_bf16.h: weight packing, the
** per-row rounding of the activations to bf16, and the product in three
** paths (AMX-BF16 tiles, AVX512-BF16, AVX-512F or AVX2 widening, portable
** scalar) chosen per call.
**
** WHY THIS DESIGN. bf16 keeps fp32's exponent range with an 8-bit
** significand: no scales, no zero points, no calibration, and the rounding
** error of a product is ~2^-9 relative per operand, about 30x below int8's
** on the same rows. It halves the weight bytes against fp32, and
** vdpbf16ps does 32 multiply-adds per instruction where an fp32 FMA does 16.
** EXACTNESS. The product of two bf16 values is exact in fp32 (8 + 8 bit
** significands), and vdpbf16ps adds, per fp32 lane, first the odd-indexed
** product of its pair and then the even one, each addition rounded to
** nearest even (Intel SDM pseudo-code; inputs denormal-as-zero). Every path
** here does exactly these fp32 additions in exactly this order: for k in
** pairs, s += x[2k+1] w[2k+1], s += x[2k] w[2k]; then y = s + b. The
** widening path's FMAs round once like mul+add because the product is
** exact. So all paths agree bit for bit (tests check it) and results do not
** depend on the thread count (threads split output columns). The rounding
** to bf16 flushes subnormals to zero so that no path sees one as input.
** BF16X2. A weight may carry lo, its bf16 rounding residual (W - hi,
** rounded): each pair of K then adds the pair of products with hi and then
** the pair with lo, in that order on every path, so bf16x2 is bit-identical
** across paths too. It removes the weights' rounding (~2^-9 relative per
** weight, the same for every token, so it does not average out over a
** forward) for twice the multiply-adds and weight bytes; the activations'
** rounding stays. SPLIT ACTIVATIONS (split_x): each row is rounded to
** hi and its residual to lo as well, and the pair of products with lo
** follows hi's (then W's residual's, when both are set: three products),
** which leaves the weights' rounding as the layer's only error. The
** precision choice per layer is core/weights.c's.
** FUSED STEPS (ram_bf16_linear_ex). A LayerNorm before the product runs on
** each row on its way to bf16, a residual add in the output step (the
** partial sums of AMX's K blocks then go to the scratch, not to y): the
** same values as the separate ops, without their passes over memory.
** AMX. Where the CPU has AMX-BF16 and the kernel grants this process the
** tile state (arch_prctl; refused e.g. when a thread's sigaltstack is too
** small for it), K a multiple of 32 runs on tiles: tdpbf16ps multiplies a
** 16 x 32 bf16 tile of rows by a 32 x 16 tile of weights, whose rows are
** exactly 16 consecutive 64-byte rows of a packed panel, so it reads the
** same layout. It sums the same exact products in its own order, so it is
** within fp32 rounding of the other paths, not bit-identical to them (its
** results still do not depend on the thread count). ~4x the vdpbf16ps
** kernel's rate here. The loop around the tiles is blocked for the caches
** (gemm_amx): streaming every row past each pair of panels, as it first
** did, left the products at ~21 % of the AMX peak on the forward's shapes.
** KERNEL. Register block of MR = 6 rows x 4 panels of 16 columns (24 zmm
** accumulators; the widening path 6 x 2, it needs two registers per
** panel): per pair of K, 4 weight loads and 6 broadcasts of a 32-bit pair
** of activations feed 24 vdpbf16ps. Loop order per thread: a group of
** panels (K x 64 bytes each, in L1/L2) against every 6-row block of the
** converted rows (streamed).
*/
#include "gemm_bf16.h"

#include "gemm_q8.h"

#include "ops.h"
#include "ops_vec_table.h"
#include "scratch.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BF_X86 1
#define BF_TARGET_F __attribute__((target("avx512f,avx512bw")))
#define BF_TARGET_BF __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define BF_TARGET_AMX __attribute__((target("avx512f,avx512bw,amx-tile,amx-bf16")))
#define BF_TARGET_AVX2 __attribute__((target("avx2,fma")))
#include <sys/syscall.h>
#include <unistd.h>
#else
#define BF_X86 0
#endif

#define MR 6
#define ROW_PAD 96 /* rows of the converted buffer are padded to this: a multiple of MR and of 32 (AMX) */
#define MIN_WORK_PER_THREAD ((size_t)1 << 22) /* multiply-adds below which one thread is used */

static int g_force_level = -1;

size_t ram_bf16_packed_bytes(int n, int k)
{
    if (n < 1 || k < 1 || n > (1 << 24) || k > (1 << 24)) return 0;
    return (size_t)(n + 15) / 16 * 16 * ((size_t)(k + 1) / 2 * 2) * sizeof(uint16_t);
}

uint16_t ram_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);        /* zero or subnormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* W's bf16 rounding (lo = 0) or the bf16 rounding of what that rounding
** left out (lo = 1; exact: w and its rounding share the exponent range), in
** the kernels' layout: panels of 16 outputs, pairs of K, zero padding. */
static void pack_part(const float *W, int n, int k, uint16_t *out, int lo)
{
    const int K2 = (k + 1) / 2, N16 = (n + 15) / 16;
    for (int p = 0; p < N16; p++)
        for (int k2 = 0; k2 < K2; k2++)
            for (int j = 0; j < 16; j++)
                for (int i = 0; i < 2; i++) {
                    int o = 16 * p + j, c = 2 * k2 + i;
                    uint16_t v = 0;
                    if (o < n && c < k) {
                        const float w = W[(size_t)o * k + c];
                        v = ram_f32_to_bf16(w);
                        if (lo) v = ram_f32_to_bf16(w - bf16_to_f32(v));
                    }
                    out[(((size_t)p * K2 + k2) * 16 + j) * 2 + i] = v;
                }
}

/* AMX tiles need the kernel's permission once per process (Linux >= 5.16:
** arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA); the answer is cached here
** (0 unknown, 1 granted, -1 not: an older kernel, or a refusal), and so is
** cpuid leaf 7's EDX (g_leaf7: bit 32 set once read): in a VM cpuid traps
** to the hypervisor, and every product asks (about 7 % of a small bf16
** product's time when it ran cpuid per call). These two are the state this
** file keeps. Asking twice is harmless, so a race between first callers
** only repeats the instruction or the system call. */
static int g_amx;
static uint64_t g_leaf7;

int ram_amx_usable(int feature)
{
#if BF_X86 && defined(SYS_arch_prctl)
    uint64_t l7 = __atomic_load_n(&g_leaf7, __ATOMIC_RELAXED);
    if (!l7) {
        unsigned a, b, c, d;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
        l7 = (uint64_t)1 << 32 | d;
        __atomic_store_n(&g_leaf7, l7, __ATOMIC_RELAXED);
    }
    const uint32_t d = (uint32_t)l7;
    if (!(d >> 24 & 1) || !(d >> feature & 1)) return 0; /* AMX-TILE and the feature's bit */
    int v = __atomic_load_n(&g_amx, __ATOMIC_RELAXED);
    if (!v) {
        v = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0 ? 1 : -1;
        __atomic_store_n(&g_amx, v, __ATOMIC_RELAXED);
    }
    return v > 0;
#else
    (void)feature;
    return 0;
#endif
}

int ram_bf16_level(void)
{
    int best = RAM_BF16_SCALAR;
#if BF_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = RAM_BF16_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
        best = RAM_BF16_AVX512;
        if (__builtin_cpu_supports("avx512bf16")) best = RAM_BF16_AVX512BF16;
        if (best == RAM_BF16_AVX512BF16 && ram_amx_usable(RAM_AMX_BF16)) best = RAM_BF16_AMX;
    }
#endif
    return g_force_level >= 0 && g_force_level < best ? g_force_level : best;
}

void ram_bf16_force_level(int level) { g_force_level = level; }

int ram_bf16_plain(void)
{
    const char *e = getenv("RAM_BF16");
    return e && !strcmp(e, "plain");
}

/* ------------------------------------------------------------------ activations */

/* Row r (its k values at xr) rounded into a; alo (split activations, else
** NULL) receives each value's residual x - a, rounded too. */
static void round_row_scalar(const float *xr, int r, int k, uint16_t *a, uint16_t *alo, int lda)
{
    uint16_t *ar = a + (size_t)r * lda;
    for (int i = 0; i < k; i++) ar[i] = ram_f32_to_bf16(xr[i]);
    for (int i = k; i < lda; i++) ar[i] = 0;
    if (!alo) return;
    uint16_t *lr = alo + (size_t)r * lda;
    for (int i = 0; i < k; i++) lr[i] = ram_f32_to_bf16(xr[i] - bf16_to_f32(ar[i]));
    for (int i = k; i < lda; i++) lr[i] = 0;
}

#if BF_X86
/* ram_f32_to_bf16 on 16 lanes. */
BF_TARGET_F static inline __m256i round16(__m512 v)
{
    const __m512i u = _mm512_castps_si512(v);
    const __m512i expo = _mm512_and_si512(u, _mm512_set1_epi32(0x7f800000));
    const __m512i mag = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                     _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
    r = _mm512_srli_epi32(r, 16);
    const __mmask16 sub = _mm512_cmpeq_epi32_mask(expo, _mm512_setzero_si512());
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(mag, _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, sub, _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* The residual v - h of 16 floats and their bf16 roundings h, itself
** rounded to bf16 (what a split operand's lo part holds). */
BF_TARGET_F static inline __m256i round16_residual(__m512 v, __m256i h)
{
    return round16(_mm512_sub_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))));
}

/* 16 floats rounded to bf16 at hi and, when lo is not NULL, the residual
** v - hi rounded to bf16 at lo (the split activations of bf16xa/x3). */
BF_TARGET_F static inline void round16_split(__m512 v, uint16_t *hi, uint16_t *lo)
{
    const __m256i h = round16(v);
    _mm256_storeu_si256((__m256i *)hi, h);
    if (lo) _mm256_storeu_si256((__m256i *)lo, round16_residual(v, h));
}

BF_TARGET_F static void round_row_avx512(const float *xr, int r, int k, uint16_t *a, uint16_t *alo, int lda)
{
    uint16_t *ar = a + (size_t)r * lda, *lr = alo ? alo + (size_t)r * lda : NULL;
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        round16_split(_mm512_loadu_ps(xr + i), ar + i, lr ? lr + i : NULL);
    }
    for (; i < k; i++) {
        ar[i] = ram_f32_to_bf16(xr[i]);
        if (lr) lr[i] = ram_f32_to_bf16(xr[i] - bf16_to_f32(ar[i]));
    }
    for (; i < lda; i++) {
        ar[i] = 0;
        if (lr) lr[i] = 0;
    }
}

/* The AMX path's layout of the rounded rows: tile by tile, each 16 rows x
** 32 K (1 KB) contiguous, tiles of one 16-row block in K order: element
** ((r / 16 * KS + c / 32) * 16 + r % 16) * 32 + c % 32 for KS = K / 32. A
** tile load then reads one contiguous kilobyte (two streams per 32-row
** block) instead of 16 rows' 64-byte pieces at the row stride (32 streams,
** which the prefetchers do not follow). K is a multiple of 32 here.
** The AMX CPUs have AVX512-BF16, whose vcvtne2ps2bf16 rounds 32 floats
** exactly as ram_f32_to_bf16 does (nearest even, a subnormal input as its
** signed zero, a NaN quieted: Intel SDM pseudo-code): one instruction where
** round16 takes ~12 per 16 values, a third of this pass's time. */
BF_TARGET_BF static inline __m512i round32_bf(__m512 v0, __m512 v1)
{
    return (__m512i)_mm512_cvtne2ps_pbh(v1, v0); /* v0 to the lower half */
}

/* bf16 values back to fp32: the lower (hi = 0) or upper 16 of 32. */
BF_TARGET_BF static inline __m512 widen16(__m512i h, int upper)
{
    const __m256i half = upper ? _mm512_extracti64x4_epi64(h, 1) : _mm512_castsi512_si256(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

BF_TARGET_BF static void round_row_tiles(const float *xr, int r, int k, uint16_t *a, uint16_t *alo)
{
    const size_t KS = (size_t)k / 32, base = (size_t)r / 16 * KS * 512 + (size_t)(r % 16) * 32;
    for (int i = 0; i < k; i += 32) {
        const size_t at = base + (size_t)i / 32 * 512;
        const __m512 v0 = _mm512_loadu_ps(xr + i), v1 = _mm512_loadu_ps(xr + i + 16);
        const __m512i h = round32_bf(v0, v1);
        _mm512_storeu_si512(a + at, h);
        if (alo) /* split activations: the residuals, rounded the same way */
            _mm512_storeu_si512(alo + at,
                                round32_bf(_mm512_sub_ps(v0, widen16(h, 0)), _mm512_sub_ps(v1, widen16(h, 1))));
    }
}
#endif

#if BF_X86
/* pack_part with the rounding on 16 lanes (round16, the same function as
** ram_f32_to_bf16): one row of W at a time, 16 values become 8 pairs of K,
** each a 4-byte store 64 bytes apart in the layout. Loading a full-size
** model for the bf16 path packs ~0.6 G values (hi and lo); the scalar
** rounding took most of that load's time. */
BF_TARGET_F static void pack_part_avx512(const float *W, int n, int k, uint16_t *out, int lo)
{
    const int K2 = (k + 1) / 2, N16 = (n + 15) / 16;
    for (int p = 0; p < N16; p++)
        for (int j = 0; j < 16; j++) {
            const int o = 16 * p + j;
            uint16_t *dst = out + ((size_t)p * K2 * 16 + j) * 2; /* pair k2 at dst + k2 * 32 */
            if (o >= n) {
                for (int k2 = 0; k2 < K2; k2++) dst[(size_t)k2 * 32] = dst[(size_t)k2 * 32 + 1] = 0;
                continue;
            }
            const float *wr = W + (size_t)o * k;
            int c = 0;
            for (; c + 16 <= k; c += 16) {
                const __m512 v = _mm512_loadu_ps(wr + c);
                __m256i h = round16(v);
                if (lo) h = round16_residual(v, h);
                uint32_t t[8];
                _mm256_storeu_si256((__m256i *)t, h);
                for (int q = 0; q < 8; q++) memcpy(dst + (size_t)(c / 2 + q) * 32, &t[q], 4);
            }
            for (; c < k; c++) { /* the tail, and the zero past an odd K */
                uint16_t v = ram_f32_to_bf16(wr[c]);
                if (lo) v = ram_f32_to_bf16(wr[c] - bf16_to_f32(v));
                dst[(size_t)(c / 2) * 32 + c % 2] = v;
                if (c + 1 == k && k % 2) dst[(size_t)(c / 2) * 32 + 1] = 0;
            }
        }
}
#endif

static void pack_any(const float *W, int n, int k, uint16_t *out, int lo)
{
#if BF_X86
    if (ram_bf16_level() >= RAM_BF16_AVX512) {
        pack_part_avx512(W, n, k, out, lo);
        return;
    }
#endif
    pack_part(W, n, k, out, lo);
}

void ram_bf16_pack(const float *W, int n, int k, uint16_t *packed) { pack_any(W, n, k, packed, 0); }

void ram_bf16_pack_lo(const float *W, int n, int k, uint16_t *lo) { pack_any(W, n, k, lo, 1); }

/* ------------------------------------------------------------------ products */

struct bf_job {
    const uint16_t *a;   /* rows (padded to MR) x lda bf16 */
    const uint16_t *alo; /* split activations: their residuals, laid out like a; else NULL */
    int rows, lda;
    const struct ram_bf16_weight *w;
    const float *bias; /* may be NULL */
    float *y;          /* rows x n */
    int p0, p1;        /* panels of this job */
    int level;         /* decided once per call */
    const float *x;    /* conversion phase: rows r0..r1 of x */
    int r0, r1;
    const float *ln_w, *ln_b; /* ln_w not NULL: each row LayerNorm'ed (weight, bias, ln_eps) before rounding */
    float ln_eps;
    float *lnrow; /* this job's normed row (k floats, in the scratch) */
    int add;      /* y += the result (a residual), in the output step */
    float *part;  /* K-blocked AMX: the partial sums (rows padded to 32 x n, in the scratch) */
};

static void gemm_scalar(const struct bf_job *j)
{
    const struct ram_bf16_weight *w = j->w;
    const int K2 = (w->k + 1) / 2;
    for (int o = j->p0 * 16; o < j->p1 * 16 && o < w->n; o++) {
        const size_t off = (size_t)(o / 16) * K2 * 32 + (o % 16) * 2;
        const uint16_t *b = w->packed + off, *l = w->lo ? w->lo + off : NULL;
        for (int r = 0; r < j->rows; r++) {
            const uint16_t *a = j->a + (size_t)r * j->lda, *al = j->alo ? j->alo + (size_t)r * j->lda : NULL;
            float s = 0;
            for (int k2 = 0; k2 < K2; k2++) {
                const uint16_t *bk = b + (size_t)k2 * 32;
                s += bf16_to_f32(a[2 * k2 + 1]) * bf16_to_f32(bk[1]);
                s += bf16_to_f32(a[2 * k2]) * bf16_to_f32(bk[0]);
                if (al) { /* split activations: the residuals' pair next */
                    s += bf16_to_f32(al[2 * k2 + 1]) * bf16_to_f32(bk[1]);
                    s += bf16_to_f32(al[2 * k2]) * bf16_to_f32(bk[0]);
                }
                if (l) { /* bf16x2: the residual's pair after the pair of W's rounding, as the kernels do */
                    s += bf16_to_f32(a[2 * k2 + 1]) * bf16_to_f32(l[(size_t)k2 * 32 + 1]);
                    s += bf16_to_f32(a[2 * k2]) * bf16_to_f32(l[(size_t)k2 * 32]);
                }
            }
            const float v = s + (j->bias ? j->bias[o] : 0.0f);
            float *yo = j->y + (size_t)r * w->n + o;
            *yo = j->add ? *yo + v : v;
        }
    }
}

#if BF_X86
/* Stores the MR x NP block at rows r0.., panels p.. (rows past j->rows are
** padding; columns past n masked), adding the bias. */
BF_TARGET_F static inline __attribute__((always_inline)) void store_block(const struct bf_job *j, int r0, int p,
                                                                          const int NP, __m512 acc[MR][4])
{
    const struct ram_bf16_weight *w = j->w;
    for (int q = 0; q < NP; q++) {
        const int o = (p + q) * 16, cnt = w->n - o < 16 ? w->n - o : 16;
        const __mmask16 mk = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
        const __m512 bb = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o) : _mm512_setzero_ps();
        for (int r = 0; r < MR && r0 + r < j->rows; r++) {
            float *yr = j->y + (size_t)(r0 + r) * w->n + o;
            __m512 v = _mm512_add_ps(acc[r][q], bb);
            if (j->add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yr), v);
            _mm512_mask_storeu_ps(yr, mk, v);
        }
    }
}

/* One row's pair of K (two bf16 at a2) against NP panels' pairs. */
BF_TARGET_BF static inline __attribute__((always_inline)) void row_dp(__m512 acc[4], const uint16_t *a2p, const int NP,
                                                                      const __m512bh bv[4])
{
    int32_t a2;
    memcpy(&a2, a2p, 4);
    const __m512bh av = (__m512bh)_mm512_set1_epi32(a2);
#pragma GCC unroll 4
    for (int q = 0; q < NP; q++) acc[q] = _mm512_dpbf16_ps(acc[q], av, bv[q]);
}

/* MR rows x NP panels over the whole K with vdpbf16ps (X2: and the
** residual lo after W's rounding, per pair of K). */
BF_TARGET_BF static inline __attribute__((always_inline)) void micro_bf(const struct bf_job *j, int r0, int p,
                                                                        const int NP, const int X2, const int XS)
{
    const struct ram_bf16_weight *w = j->w;
    const int K2 = (w->k + 1) / 2, lda = j->lda;
    const size_t ps = (size_t)K2 * 32; /* uint16 per panel */
    const uint16_t *b = w->packed + (size_t)p * ps, *l = X2 ? w->lo + (size_t)p * ps : NULL;
    const uint16_t *a = j->a + (size_t)r0 * lda, *al = XS ? j->alo + (size_t)r0 * lda : NULL;
    __m512 acc[MR][4];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    for (int k2 = 0; k2 < K2; k2++) {
        __m512bh bv[4];
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++) bv[q] = (__m512bh)_mm512_loadu_si512(b + q * ps + (size_t)k2 * 32);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            row_dp(acc[r], a + (size_t)r * lda + 2 * k2, NP, bv);
            if (XS) row_dp(acc[r], al + (size_t)r * lda + 2 * k2, NP, bv);
        }
        if (X2) {
#pragma GCC unroll 4
            for (int q = 0; q < NP; q++) bv[q] = (__m512bh)_mm512_loadu_si512(l + q * ps + (size_t)k2 * 32);
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) row_dp(acc[r], a + (size_t)r * lda + 2 * k2, NP, bv);
        }
    }
    store_block(j, r0, p, NP, acc);
}

/* The same sums with AVX-512F: each pair widened to two fp32 vectors, odd
** product added first. */
BF_TARGET_F static inline __attribute__((always_inline)) void micro_f(const struct bf_job *j, int r0, int p,
                                                                      const int NP, const int X2, const int XS)
{
    const struct ram_bf16_weight *w = j->w;
    const int K2 = (w->k + 1) / 2, lda = j->lda;
    const size_t ps = (size_t)K2 * 32;
    const uint16_t *b = w->packed + (size_t)p * ps, *l = X2 ? w->lo + (size_t)p * ps : NULL;
    const uint16_t *a = j->a + (size_t)r0 * lda;
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512 acc[MR][4];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    for (int k2 = 0; k2 < K2; k2++) {
        __m512 bo[2], be[2], lo_o[2], lo_e[2];
#pragma GCC unroll 2
        for (int q = 0; q < NP; q++) {
            __m512i v = _mm512_loadu_si512(b + q * ps + (size_t)k2 * 32);
            bo[q] = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
            be[q] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            if (X2) {
                v = _mm512_loadu_si512(l + q * ps + (size_t)k2 * 32);
                lo_o[q] = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
                lo_e[q] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            const uint16_t *ar = a + (size_t)r * lda + 2 * k2;
            const __m512 ao = _mm512_set1_ps(bf16_to_f32(ar[1])), ae = _mm512_set1_ps(bf16_to_f32(ar[0]));
#pragma GCC unroll 2
            for (int q = 0; q < NP; q++) {
                acc[r][q] = _mm512_fmadd_ps(ao, bo[q], acc[r][q]);
                acc[r][q] = _mm512_fmadd_ps(ae, be[q], acc[r][q]);
                if (XS) {
                    const uint16_t *lr = j->alo + (size_t)(r0 + r) * lda + 2 * k2;
                    acc[r][q] = _mm512_fmadd_ps(_mm512_set1_ps(bf16_to_f32(lr[1])), bo[q], acc[r][q]);
                    acc[r][q] = _mm512_fmadd_ps(_mm512_set1_ps(bf16_to_f32(lr[0])), be[q], acc[r][q]);
                }
                if (X2) {
                    acc[r][q] = _mm512_fmadd_ps(ao, lo_o[q], acc[r][q]);
                    acc[r][q] = _mm512_fmadd_ps(ae, lo_e[q], acc[r][q]);
                }
            }
        }
    }
    store_block(j, r0, p, NP, acc);
}

/* AMX: 32 rows x 32 columns (two panels) per block, C in tiles 0-3, A
** in 4-5, B in 6-7; K in steps of 32 (one tile row is 64 bytes). Used when
** K is a multiple of 32; rows are padded to ROW_PAD by the caller. */
struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

BF_TARGET_AMX static void amx_store(const struct bf_job *j, int r0, int o, const float *c)
{
    const struct ram_bf16_weight *w = j->w;
    const int cnt = w->n - o < 16 ? w->n - o : 16;
    const __mmask16 mk = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
    const __m512 bb = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o) : _mm512_setzero_ps();
    for (int r = 0; r < 16 && r0 + r < j->rows; r++) {
        float *yr = j->y + (size_t)(r0 + r) * w->n + o;
        __m512 v = _mm512_add_ps(_mm512_loadu_ps(c + 16 * r), bb);
        if (j->add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yr), v);
        _mm512_mask_storeu_ps(yr, mk, v);
    }
}

/* Tiles 4/5 (two 16-row blocks of A) against panel b0 into tiles 0/2 and,
** when two, panel b1 into tiles 1/3. */
BF_TARGET_AMX static inline __attribute__((always_inline)) void amx_panels(const uint16_t *b0, const uint16_t *b1,
                                                                           int two)
{
    _tile_loadd(6, b0, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(2, 5, 6);
    if (two) {
        _tile_loadd(7, b1, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(3, 5, 7);
    }
}

/* The tile products of one 32 x 32 block (rows at a, panels at b and b +
** ps; two: the second panel exists) for pairs of K k2a..k2b into tiles 0-3:
** per step of 32 K, W's rounding, then its residual (lo), then the
** activations' residual (al) against W's rounding. Every C tile sees the
** same sequence of products whatever the blocking around it, so blocking
** changes no bit. */
BF_TARGET_AMX static inline __attribute__((always_inline)) void amx_ksteps(const uint16_t *a, const uint16_t *al,
                                                                           size_t at, const uint16_t *b,
                                                                           const uint16_t *l, size_t ps, int k2a,
                                                                           int k2b, int two)
{
    /* a, al: the rows in the tile layout (round_rows_tiles); at: the
    ** distance of the second 16-row block from the first */
    for (int k2 = k2a; k2 < k2b; k2 += 16) {
        const size_t t = (size_t)k2 * 32; /* one tile, 512 bf16, per 16 pairs of K */
        _tile_loadd(4, a + t, 64);
        _tile_loadd(5, a + at + t, 64);
        amx_panels(b + t, b + ps + t, two);
        if (l) /* bf16x2: the weights' residual with the same rows */
            amx_panels(l + t, l + ps + t, two);
        if (al) { /* split activations: their residual with W's rounding */
            _tile_loadd(4, al + t, 64);
            _tile_loadd(5, al + at + t, 64);
            amx_panels(b + t, b + ps + t, two);
        }
    }
}

/* Asks for the lines of y that block (r0, p) will write (32 rows x 128
** bytes, for writing: prefetchw) before its products run, so that the
** output step's stores find them in cache instead of each waiting for its
** line (perf: 56 % of amx_store's samples sat on the store to y, amx_store
** 5 % of the mix's forward). Paired runs, minima of 4, 1 / 2 threads:
** Swin stage 1 (9,216 rows, K = 192-768: little work per output) 1.12-1.36x,
** K = 384-768 shapes 1.04-1.14x faster. */
BF_TARGET_AMX static inline void amx_prefetch_y(const struct bf_job *j, int r0, int p)
{
    const int n = j->w->n;
    for (int r = 0; r < 32 && r0 + r < j->rows; r++) {
        const float *yr = j->y + (size_t)(r0 + r) * n + p * 16;
        _mm_prefetch((const char *)yr, _MM_HINT_ET0);
        _mm_prefetch((const char *)(yr + 16), _MM_HINT_ET0);
    }
}

/* Tiles 0-3 (plus the bias) to y at rows r0.., panel p (and p + 1 when two). */
BF_TARGET_AMX static void amx_finish(const struct bf_job *j, int r0, int p, int two)
{
    float c[4][256] __attribute__((aligned(64)));
    _tile_stored(0, c[0], 64);
    _tile_stored(2, c[2], 64);
    amx_store(j, r0, p * 16, c[0]);
    if (r0 + 16 < j->rows) amx_store(j, r0 + 16, p * 16, c[2]);
    if (two) {
        _tile_stored(1, c[1], 64);
        _tile_stored(3, c[3], 64);
        amx_store(j, r0, p * 16 + 16, c[1]);
        if (r0 + 16 < j->rows) amx_store(j, r0 + 16, p * 16 + 16, c[3]);
    }
}

/* Panels p0..p1 (in pairs from p0) against rows r0..r1 (a multiple of 32
** apart, or to the padded end), the whole K per block: the edges of the
** blocked loop below. */
BF_TARGET_AMX static void amx_whole_k(const struct bf_job *j, int p0, int p1, int r0, int r1)
{
    const struct ram_bf16_weight *w = j->w;
    const int K2 = (w->k + 1) / 2;
    const size_t ps = (size_t)K2 * 32;
    for (int p = p0; p < p1; p += 2)
        for (int r = r0; r < r1; r += 32) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            const size_t ro = (size_t)r * K2 * 2; /* 16-row blocks are 16 x K apart in the tile layout */
            amx_prefetch_y(j, r, p);
            amx_ksteps(j->a + ro, j->alo ? j->alo + ro : NULL, (size_t)16 * K2 * 2, w->packed + (size_t)p * ps,
                       w->lo ? w->lo + (size_t)p * ps : NULL, ps, 0, K2, p + 1 < p1);
            amx_finish(j, r, p, p + 1 < p1);
        }
}

/* AMX blocking. A 32 x 32 block of C lives in tiles 0-3 while its products
** run; what limits the rate is where the operand tiles come from. Blocks of
** NC columns of W (and lo) are sized for L2 and reused by every row block;
** the 32 rows of one row block are reused by every column pair of the
** block; a K longer than AMX_KC_MAX (amx_k_blocked) is cut into blocks of
** AMX_KC, the partial sums
** of the 32 x 32 blocks kept in the scratch (part) between them (an fp32
** tile stored and loaded back is exact, so this changes no bit) over MC rows
** at a time (that part stays in L2). A last partial row block runs in the
** same loop, its missing rows the buffer's zero padding: as a pass of its
** own (amx_whole_k) it read every weight a second time for up to 31 rows,
** 38 MB per stage-4 product of the mix at 144 rows (1.1-1.27x faster on those
** products). Only a last odd or partial panel takes the whole K at once
** (amx_whole_k). */
#define AMX_KC 512                 /* K per block when K is longer than AMX_KC_MAX */
#define AMX_KC_MAX 3072            /* K up to this runs unblocked (half of it with split activations) */
#define AMX_MC 256                 /* rows per block of y when K is blocked */
#define AMX_L2_W ((size_t)1 << 20) /* bytes of W (and lo) per column block */

/* K blocks or the whole K per C block: unblocked, the A tiles of one row
** block (32 x K bf16, twice that split: up to 192 KB) stay in L2 beside the
** column block of W, and no partial sums leave the tiles. Measured per
** product of the mix (minima of 4 paired runs, 1 thread, load ~8): K =
** 1,536 and K = 3,072 (bf16x2) 1.11-1.20x faster unblocked; K = 6,144 and
** K = 3,072 with split activations (384 KB of A tiles) 1.07-1.09x slower. */
static int amx_k_blocked(int k, int split) { return (long)k * (split ? 2 : 1) > AMX_KC_MAX; }

BF_TARGET_AMX static void gemm_amx(const struct bf_job *j)
{
    const struct ram_bf16_weight *w = j->w;
    const int K2 = (w->k + 1) / 2, n = w->n;
    const size_t ps = (size_t)K2 * 32, ldy = (size_t)n * 4;
    struct amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
    /* interior: full pairs of full panels, full 32-row blocks */
    int pe = j->p0 + (j->p1 - j->p0) / 2 * 2;
    while (pe > j->p0 && pe * 16 > n) pe -= 2;
    const int full_rows = (j->rows + 31) / 32 * 32; /* the last block's missing rows are the buffer's zero padding */
    const int kc2 = amx_k_blocked(w->k, j->alo != NULL) ? AMX_KC / 2 : K2, mc = kc2 < K2 ? AMX_MC : full_rows;
    int ncp = (int)(AMX_L2_W / ((size_t)kc2 * 64 * 2 * (w->lo ? 2 : 1))) * 2; /* panels per column block */
    if (ncp < 2) ncp = 2;
    for (int nb = j->p0; nb < pe; nb += ncp) {
        const int ne = nb + ncp < pe ? nb + ncp : pe;
        for (int mb = 0; mb < full_rows; mb += mc) {
            const int me = mb + mc < full_rows ? mb + mc : full_rows;
            for (int kb = 0; kb < K2; kb += kc2) {
                const int ke = kb + kc2 < K2 ? kb + kc2 : K2;
                for (int r0 = mb; r0 < me; r0 += 32)
                    for (int p = nb; p < ne; p += 2) {
                        /* the partial sums, when K is blocked (part is NULL otherwise: no
                        ** offset may be applied to it, C11 6.5.6) */
                        float *c = kc2 < K2 ? j->part + (size_t)r0 * n + p * 16 : NULL;
                        if (kb == 0) {
                            _tile_zero(0);
                            _tile_zero(1);
                            _tile_zero(2);
                            _tile_zero(3);
                        } else { /* the partial sums of the K blocks before */
                            _tile_loadd(0, c, ldy);
                            _tile_loadd(1, c + 16, ldy);
                            _tile_loadd(2, c + (size_t)16 * n, ldy);
                            _tile_loadd(3, c + (size_t)16 * n + 16, ldy);
                        }
                        const size_t ro = (size_t)r0 * K2 * 2;
                        if (ke == K2) amx_prefetch_y(j, r0, p);
                        amx_ksteps(j->a + ro, j->alo ? j->alo + ro : NULL, (size_t)16 * K2 * 2,
                                   w->packed + (size_t)p * ps, w->lo ? w->lo + (size_t)p * ps : NULL, ps, kb, ke, 1);
                        if (ke == K2) {
                            amx_finish(j, r0, p, 1);
                        } else {
                            _tile_stored(0, c, ldy);
                            _tile_stored(1, c + 16, ldy);
                            _tile_stored(2, c + (size_t)16 * n, ldy);
                            _tile_stored(3, c + (size_t)16 * n + 16, ldy);
                        }
                    }
            }
        }
    }
    amx_whole_k(j, pe, j->p1, 0, j->rows);
    _tile_release();
}

/* One instance per panel count NP and mode (X2: the weights' residual, XS:
** the activations' residual), so that the register blocks stay unrolled. */
#define BF_KERNELS(X2, XS, SUFFIX)                                                                                 \
    BF_TARGET_BF static void bf1##SUFFIX(const struct bf_job *j, int r0, int p) { micro_bf(j, r0, p, 1, X2, XS); } \
    BF_TARGET_BF static void bf2##SUFFIX(const struct bf_job *j, int r0, int p) { micro_bf(j, r0, p, 2, X2, XS); } \
    BF_TARGET_BF static void bf3##SUFFIX(const struct bf_job *j, int r0, int p) { micro_bf(j, r0, p, 3, X2, XS); } \
    BF_TARGET_BF static void bf4##SUFFIX(const struct bf_job *j, int r0, int p) { micro_bf(j, r0, p, 4, X2, XS); } \
    BF_TARGET_F static void f1##SUFFIX(const struct bf_job *j, int r0, int p) { micro_f(j, r0, p, 1, X2, XS); }    \
    BF_TARGET_F static void f2##SUFFIX(const struct bf_job *j, int r0, int p) { micro_f(j, r0, p, 2, X2, XS); }
BF_KERNELS(0, 0, _plain)
BF_KERNELS(1, 0, _wlo)
BF_KERNELS(0, 1, _xlo)
BF_KERNELS(1, 1, _both)
#undef BF_KERNELS

static void gemm_blocked(const struct bf_job *j)
{
    typedef void (*kernel)(const struct bf_job *, int, int);
    static const kernel kbf[4][5] = {{0, bf1_plain, bf2_plain, bf3_plain, bf4_plain},
                                     {0, bf1_wlo, bf2_wlo, bf3_wlo, bf4_wlo},
                                     {0, bf1_xlo, bf2_xlo, bf3_xlo, bf4_xlo},
                                     {0, bf1_both, bf2_both, bf3_both, bf4_both}};
    static const kernel kf[4][3] = {
        {0, f1_plain, f2_plain}, {0, f1_wlo, f2_wlo}, {0, f1_xlo, f2_xlo}, {0, f1_both, f2_both}};
    const int G = j->level >= RAM_BF16_AVX512BF16 ? 4 : 2, mode = (j->w->lo != NULL) + 2 * (j->alo != NULL);
    for (int p = j->p0; p < j->p1; p += G) {
        int np = j->p1 - p < G ? j->p1 - p : G;
        for (int r0 = 0; r0 < j->rows; r0 += MR) (G == 4 ? kbf[mode] : kf[mode])[np](j, r0, p);
    }
}
#endif

#if BF_X86
/* AVX2+FMA: the widening path on 8 lanes, 4 rows x one panel (16 columns,
** two registers each for the odd and the even products): the same fp32
** additions in the same order as the others, so bit-identical to them. */
BF_TARGET_AVX2 static void gemm_avx2(const struct bf_job *j)
{
    const struct ram_bf16_weight *w = j->w;
    const int K2 = (w->k + 1) / 2, lda = j->lda;
    const size_t ps = (size_t)K2 * 32;
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int p = j->p0; p < j->p1; p++) {
        const uint16_t *b = w->packed + (size_t)p * ps, *l = w->lo ? w->lo + (size_t)p * ps : NULL;
        for (int r0 = 0; r0 < j->rows; r0 += 4) { /* rows are padded to ROW_PAD: rows r0..r0 + 3 exist */
            const uint16_t *a = j->a + (size_t)r0 * lda;
            __m256 acc[4][2];
            for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            for (int k2 = 0; k2 < K2; k2++) {
                __m256 bo[2], be[2], lo_o[2], lo_e[2];
                for (int h = 0; h < 2; h++) { /* columns 8h..8h + 7 */
                    __m256i v = _mm256_loadu_si256((const __m256i *)(b + (size_t)k2 * 32 + 16 * h));
                    bo[h] = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
                    be[h] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
                    if (l) {
                        v = _mm256_loadu_si256((const __m256i *)(l + (size_t)k2 * 32 + 16 * h));
                        lo_o[h] = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
                        lo_e[h] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
                    }
                }
                for (int r = 0; r < 4; r++) {
                    int32_t pair; /* the row's two bf16 values, widened in registers */
                    memcpy(&pair, a + (size_t)r * lda + 2 * k2, 4);
                    const __m256i pv = _mm256_set1_epi32(pair);
                    const __m256 ao = _mm256_castsi256_ps(_mm256_and_si256(pv, hi)),
                                 ae = _mm256_castsi256_ps(_mm256_slli_epi32(pv, 16));
                    __m256 lo_ao = ao, lo_ae = ae;
                    if (j->alo) {
                        memcpy(&pair, j->alo + (size_t)(r0 + r) * lda + 2 * k2, 4);
                        const __m256i lv = _mm256_set1_epi32(pair);
                        lo_ao = _mm256_castsi256_ps(_mm256_and_si256(lv, hi));
                        lo_ae = _mm256_castsi256_ps(_mm256_slli_epi32(lv, 16));
                    }
                    for (int h = 0; h < 2; h++) {
                        acc[r][h] = _mm256_fmadd_ps(ao, bo[h], acc[r][h]);
                        acc[r][h] = _mm256_fmadd_ps(ae, be[h], acc[r][h]);
                        if (j->alo) {
                            acc[r][h] = _mm256_fmadd_ps(lo_ao, bo[h], acc[r][h]);
                            acc[r][h] = _mm256_fmadd_ps(lo_ae, be[h], acc[r][h]);
                        }
                        if (l) {
                            acc[r][h] = _mm256_fmadd_ps(ao, lo_o[h], acc[r][h]);
                            acc[r][h] = _mm256_fmadd_ps(ae, lo_e[h], acc[r][h]);
                        }
                    }
                }
            }
            for (int r = 0; r < 4 && r0 + r < j->rows; r++)
                for (int h = 0; h < 2; h++) {
                    float t[8];
                    _mm256_storeu_ps(t, acc[r][h]);
                    for (int c = 0; c < 8 && p * 16 + 8 * h + c < w->n; c++) {
                        const int o = p * 16 + 8 * h + c;
                        const float v = t[c] + (j->bias ? j->bias[o] : 0.0f);
                        float *yo = j->y + (size_t)(r0 + r) * w->n + o;
                        *yo = j->add ? *yo + v : v;
                    }
                }
        }
    }
}
#endif

/* The AMX tiles run the product (and the rows are in their layout). */
static int amx_layout(const struct bf_job *j) { return BF_X86 && j->level == RAM_BF16_AMX && j->w->k % 32 == 0; }

static void *gemm_thread(void *arg)
{
    const struct bf_job *j = arg;
#if BF_X86
    if (amx_layout(j)) {
        gemm_amx(j);
        return NULL;
    }
    if (j->level >= RAM_BF16_AVX512) {
        gemm_blocked(j);
        return NULL;
    }
    if (j->level == RAM_BF16_AVX2) {
        gemm_avx2(j);
        return NULL;
    }
#endif
    gemm_scalar(j);
    return NULL;
}

/* Rows r0..r1 of x, each LayerNorm'ed first when ln_w (ram_layernorm's
** values, row by row: the normed row stays in L1 on its way to bf16 instead
** of a pass of its own over memory), rounded in the product's layout. */
static void *round_thread(void *arg)
{
    const struct bf_job *j = arg;
    uint16_t *a = (uint16_t *)j->a, *alo = (uint16_t *)j->alo;
    const int k = j->w->k;
    for (int r = j->r0; r < j->r1; r++) {
        const float *xr = ram_row_layernormed(j->x + (size_t)r * k, k, j->ln_w, j->ln_b, j->ln_eps, j->lnrow);
#if BF_X86
        if (amx_layout(j)) {
            round_row_tiles(xr, r, k, a, alo);
            continue;
        }
        if (j->level >= RAM_BF16_AVX512) {
            round_row_avx512(xr, r, k, a, alo, j->lda);
            continue;
        }
#endif
        round_row_scalar(xr, r, k, a, alo, j->lda);
    }
    return NULL;
}

/* ram_bf16_linear with f's steps (NULL: none). */
static ram_status linear(const float *x, int rows, const struct ram_bf16_weight *w, const float *b, float *y,
                         const struct ram_q8_fuse *f, struct ram_scratch *scratch, struct ram_error *err)
{
    if (!x || !w || !w->packed || !y || rows < 0 || !ram_bf16_packed_bytes(w->n, w->k) || (f && f->ln_w && !f->ln_b))
        return ram_fail(err, RAM_ERR_ARG, "bf16 linear: invalid arguments");
    if (rows == 0) return RAM_OK;
    const float *ln_w = f ? f->ln_w : NULL;
    const int lda = (w->k + 1) / 2 * 2, split = w->split_x != 0, add = f && f->add;
    const size_t padded = (size_t)(rows + ROW_PAD - 1) / ROW_PAD * ROW_PAD, one = padded * lda;
    const int P = (w->n + 15) / 16;
    const int T = ram_job_count((double)rows * w->n * w->k, (double)MIN_WORK_PER_THREAD, P);
    const int level = ram_bf16_level();
    /* The converted rows (a normed row per job, and the partial sums of a
    ** K-blocked AMX product) live in the caller's
    ** scratch (scratch.h: 64-byte aligned, so that with K a multiple of 32
    ** every row starts a cache line and an AMX tile row or a 6-row block
    ** never straddles two), or without one in a buffer of this call only. */
    const size_t rows_bytes = (one * (split ? 2 : 1) * sizeof(uint16_t) + 63) / 64 * 64,
                 ln_bytes = ln_w ? (size_t)T * (((size_t)w->k + 15) / 16 * 16) * sizeof(float) : 0,
                 part_bytes = BF_X86 && level == RAM_BF16_AMX && w->k % 32 == 0 && amx_k_blocked(w->k, split)
                                  ? (size_t)(rows + 31) / 32 * 32 * w->n * sizeof(float)
                                  : 0;
    struct ram_scratch own = {0}, *s = scratch ? scratch : &own;
    uint16_t *buf = ram_scratch_get(s, rows_bytes + ln_bytes + part_bytes);
    if (!buf) return ram_fail(err, RAM_ERR_NOMEM, "bf16 linear: out of memory for %d x %d rows", rows, w->k);
    float *lnrows = (float *)((char *)buf + rows_bytes), *part = (float *)((char *)buf + rows_bytes + ln_bytes);
    struct bf_job base = {.a = buf,
                          .alo = split ? buf + one : NULL,
                          .rows = rows,
                          .lda = lda,
                          .w = w,
                          .bias = b,
                          .y = y,
                          .x = x,
                          .level = level,
                          .ln_w = ln_w,
                          .ln_b = ln_w ? f->ln_b : NULL,
                          .ln_eps = ln_w ? f->ln_eps : 0.0f,
                          .add = add,
                          .part = part_bytes ? part : NULL},
                  jobs[RAM_MAX_JOBS];
    /* the padding rows are zero: past the last row in row order, or the
    ** whole last partial 16-row block in the tile layout (its rows are
    ** written after this) */
    const size_t pad0 = (size_t)rows * lda, pad1 = (size_t)rows / 16 * 16 * lda, pad = amx_layout(&base) ? pad1 : pad0;
    memset(buf + pad, 0, (one - pad) * sizeof(uint16_t));
    if (split) memset(buf + one + pad, 0, (one - pad) * sizeof(uint16_t));
    for (int t = 0; t < T; t++) {
        jobs[t] = base;
        jobs[t].p0 = (int)((long)P * t / T), jobs[t].p1 = (int)((long)P * (t + 1) / T);
        jobs[t].r0 = (int)((long)rows * t / T), jobs[t].r1 = (int)((long)rows * (t + 1) / T);
        jobs[t].lnrow = ln_w ? lnrows + (size_t)t * (ln_bytes / T / sizeof(float)) : NULL;
    }
    ram_run_jobs(round_thread, jobs, sizeof jobs[0], T);
    ram_run_jobs(gemm_thread, jobs, sizeof jobs[0], T);
    ram_scratch_free(&own);
    return RAM_OK;
}

ram_status ram_bf16_linear(const float *x, int rows, const struct ram_bf16_weight *w, const float *b, float *y,
                           struct ram_scratch *scratch, struct ram_error *err)
{
    return linear(x, rows, w, b, y, NULL, scratch, err);
}

ram_status ram_bf16_linear_ex(const float *x, int rows, const struct ram_bf16_weight *w, const float *b, float *y,
                              const struct ram_q8_fuse *f, struct ram_scratch *scratch, struct ram_error *err)
{
    return linear(x, rows, w, b, y, f, scratch, err);
}
