/*
** gemm_q8.c — the int8 linear layer of gemm_q8.h: weight packing, dynamic
** per-row activation quantization, the u8 x s8 -> s32 product (AVX512-VNNI
** kernel and a portable scalar path that gives bit-identical results) and
** the fp32 epilogue (zero-point correction, scales, bias).
**
** WHY THIS DESIGN. Swin-L and the tagging decoder spend ~95 % of their
** multiply-adds in linear layers with K, N >= 192. Zen 4 runs one 512-bit
** vpdpbusd (64 u8 x s8 multiply-adds into 16 int32 lanes) per cycle against
** two 256-bit fp32 FMAs (16 multiply-adds), so int8 has 4x the arithmetic
** peak of fp32 and reads 4x fewer weight bytes.
**   - Weights: symmetric per output channel (W ~ s_w[o] * q, q in [-127, 127])
**     so that no weight zero point exists and the correction is one term.
**   - Activations: asymmetric per row (x ~ s_a[r] * (a - z_a[r]), a in u8,
**     range always containing 0) because vpdpbusd needs an unsigned operand
**     and GELU outputs are lopsided (>= -0.17): symmetric s8 would waste half
**     the codes on them. Then
**         y[r][o] = s_a[r] s_w[o] (sum_k a q  -  z_a[r] colsum[o]) + b[o]
**     with colsum[o] = sum_k q[o][k] computed once per weight.
**   - Exactness: |a q| <= 255 * 128 and K <= RAM_Q8_MAX_K keep every int32
**     sum exact (vpdpbusd does not saturate), so the integer part of both
**     paths is identical, and the epilogue uses the same fp32 operations in
**     the same order (convert, s_a * s_w, one fused multiply-add with b):
**     kernel and fallback agree bit for bit, which the tests check.
** AMX. Where the CPU has AMX-INT8 and the kernel grants the tile state
** (ram_amx_usable), K a multiple of 64 runs on tiles (tdpbusd: 16 x 64 u8
** rows times 64 x 16 s8 weights, the latter being 16 consecutive 64-byte
** rows of a packed panel as stored): exact int32 sums again, so bit-identical.
** AVX2. CPUs without AVX512-VNNI (AVX2 only) widen the u8 rows and the s8
** weights to int16 and sum products in pairs with vpmaddwd (|2 * 255 *
** 128| fits easily), two partial sums per column added at the end: exact
** integer sums again, so bit-identical too, at ~1/4 of vpdpbusd's rate but
** several times the portable loop's. CPUs with AVX-VNNI (vpdpbusd on
** 256-bit registers, e.g. Intel client CPUs since Alder Lake) get a kernel
** of their own.
** KERNEL. Register block of MR = 6 rows x up to 4 panels (64 columns): 24
** zmm accumulators, 4 weight loads and 6 broadcasts of 4 activation bytes
** per 24 vpdpbusd. Loop order per thread: a group of 4 panels (K x 64 bytes:
** 12-384 KB, stays in L1/L2) against every 6-row block of the quantized
** activations (streamed). Threads split the panels (output columns); the
** activations are quantized first, split by rows, in a separate phase.
** FUSED STEPS (ram_q8_linear_ex). A LayerNorm before the product runs on
** each row in that phase, just before the row is quantized (it stays in L1;
** no normed copy is written and read back), and a residual add runs in the
** epilogue (y += result while the result is in registers): Swin's blocks
** use both, and get the separate ops' values bit for bit.
** SPLIT FORMS (struct ram_q8_weight's lo / split_x / lo_mean; a measuring
** tool for the precision choice, models/README.md): W's rounding residual
** as a second int8 matrix, the activations' as second u8 rows (made in the
** quantization phase while the row is in L1), or the residual matrix
** applied only to the mean of the rows as a bias correction (int8m). Each
** extra product is an ordinary one added into y after the first, so the
** bits stay the same at every kernel level and thread count. On AMX,
** int8x2's two products run in one pass (gemm_amx_x2: each A tile is
** multiplied with both weight panels, y written once, in the operations of
** the two passes, so the same bits): the second pass re-read the rows and
** read and wrote y again, which cost about as much as its tile products on
** Swin's many-row, narrow layers.
*/
#include "gemm_q8.h"

#include "jobs.h"
#include "ops_vec_table.h"
#include "scratch.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define Q8_X86 1
#define Q8_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define Q8_TARGET_AMX __attribute__((target("avx512f,avx512bw,avx512vnni,amx-tile,amx-int8")))
#define Q8_TARGET_AVX2 __attribute__((target("avx2")))
#define Q8_TARGET_AVXVNNI __attribute__((target("avx2,avxvnni")))
#include <cpuid.h>
#else
#define Q8_X86 0
#endif

#define MR 6                                  /* rows per register block */
#define ROW_PAD 96                            /* quantized rows are padded to this: a multiple of MR and of AMX's 32 */
#define MIN_WORK_PER_THREAD ((size_t)1 << 22) /* multiply-adds below which one thread is used */

static int g_force_scalar;
static int g_no_fuse_x2; /* ram_q8_fuse_x2(0): int8x2 on tiles in two passes (tests) */

size_t ram_q8_packed_bytes(int n, int k)
{
    if (n < 1 || k < 1 || k > RAM_Q8_MAX_K || n > (1 << 24)) return 0;
    return (size_t)(n + 15) / 16 * 16 * ((size_t)(k + 3) / 4 * 4);
}

static size_t pidx(int o, int k, int K4) /* byte of W[o][k] in the packed form */
{
    return (((size_t)(o / 16) * K4 + k / 4) * 16 + o % 16) * 4 + k % 4;
}

/* Moves r codes of a row by one step (up if r > 0) so that the row's code
** sum equals the rounded sum of w / scale: the rounding errors of a row then
** cancel on the mean of its inputs (GELU outputs and LayerNorm biases give
** inputs a common offset, which would otherwise turn the row's summed
** rounding error into a systematic output shift). The codes moved are those
** whose rounding was closest to a tie (err = w / scale - q, in (-0.5, 0.5]
** before clamping), so each gains at most ~1 step of error and only
** |r| ~ sqrt(k / 12) of them move. */
static void keep_row_sum(int8_t *q, float *e, int k, long r)
{
    const int dir = r > 0 ? 1 : -1;
    for (; r != 0; r -= dir) {
        int best = -1;
        float bf = 0;
        for (int i = 0; i < k; i++) {
            float f = e[i] * (float)dir; /* how far q is below (dir) its value */
            if (f > bf && q[i] + dir <= 127 && q[i] + dir >= -127) bf = f, best = i;
        }
        if (best < 0) return;
        q[best] = (int8_t)(q[best] + dir);
        e[best] -= (float)dir;
    }
}

/* Codes of one row into q (k), their rounding errors into e (k); returns the scale. */
static float quantize_row(const float *row, int k, int8_t *q, float *e)
{
    float mx = 0;
    for (int i = 0; i < k; i++) mx = fabsf(row[i]) > mx ? fabsf(row[i]) : mx;
    if (!(mx > 0)) { /* zero row (or NaN): all codes 0 */
        for (int i = 0; i < k; i++) q[i] = 0;
        return 0.0f;
    }
    const float inv = 127.0f / mx;
    double resid = 0;
    for (int i = 0; i < k; i++) {
        long c = lrintf(row[i] * inv);
        c = c > 127 ? 127 : c < -127 ? -127 : c;
        q[i] = (int8_t)c;
        e[i] = row[i] * inv - (float)c;
        resid += e[i];
    }
    keep_row_sum(q, e, k, lrint(resid));
    return mx / 127.0f;
}

ram_status ram_q8_quantize_pack(const float *W, int n, int k, int8_t *packed, float *scale, struct ram_error *err)
{
    const int K4 = (k + 3) / 4;
    size_t nb = ram_q8_packed_bytes(n, k);
    if (!nb) return ram_fail(err, RAM_ERR_TOO_BIG, "int8: a %d x %d matrix is out of range", n, k);
    int8_t *q = ram_malloc((size_t)k * (1 + sizeof(float)) + sizeof(float));
    if (!q) return ram_fail(err, RAM_ERR_NOMEM, "int8: out of memory quantizing a %d x %d matrix", n, k);
    float *e = (float *)(((uintptr_t)(q + k) + 3) & ~(uintptr_t)3); /* k floats after the k codes */
    memset(packed, 0, nb);
    for (int o = 0; o < n; o++) {
        scale[o] = quantize_row(W + (size_t)o * k, k, q, e);
        for (int i = 0; i < k; i++) packed[pidx(o, i, K4)] = q[i];
    }
    ram_free(q);
    return RAM_OK;
}

ram_status ram_q8_quantize_pack_lo(const float *W, int n, int k, const int8_t *packed, const float *scale,
                                   int8_t *lo_packed, float *lo_scale, struct ram_error *err)
{
    const int K4 = (k + 3) / 4;
    if (!ram_q8_packed_bytes(n, k))
        return ram_fail(err, RAM_ERR_TOO_BIG, "int8: a %d x %d matrix is out of range", n, k);
    float *r = ram_malloc(sizeof(float) * (size_t)n * k);
    if (!r) return ram_fail(err, RAM_ERR_NOMEM, "int8: out of memory splitting a %d x %d matrix", n, k);
    for (int o = 0; o < n; o++)
        for (int i = 0; i < k; i++)
            r[(size_t)o * k + i] = W[(size_t)o * k + i] - scale[o] * (float)packed[pidx(o, i, K4)];
    ram_status rc = ram_q8_quantize_pack(r, n, k, lo_packed, lo_scale, err);
    ram_free(r);
    return rc;
}

ram_status ram_q8_weight_new(int n, int k, const int8_t *packed, const float *scale, struct ram_q8_weight **out,
                             struct ram_error *err)
{
    *out = NULL;
    size_t nb = ram_q8_packed_bytes(n, k);
    if (!nb || !packed || !scale) return ram_fail(err, RAM_ERR_ARG, "int8 weight: invalid %d x %d matrix", n, k);
    const int N16 = (n + 15) / 16, K4 = (k + 3) / 4;
    struct ram_q8_weight *w = ram_malloc(sizeof *w + sizeof(int32_t) * (size_t)N16 * 16 + 63);
    if (!w) return ram_fail(err, RAM_ERR_NOMEM, "out of memory for int8 weight sums");
    w->n = n, w->k = k, w->packed = packed, w->scale = scale;
    w->bf16 = (struct ram_bf16_weight){.packed = NULL};
    w->lo = NULL, w->split_x = 0, w->lo_mean = 0;
    w->colsum = (int32_t *)(((uintptr_t)(w + 1) + 63) & ~(uintptr_t)63);
    for (int p = 0; p < N16; p++) {
        int32_t s[64] = {0}; /* one lane per byte of a 64-byte row: vectorises */
        const int8_t *b = packed + (size_t)p * K4 * 64;
        for (int k4 = 0; k4 < K4; k4++)
            for (int t = 0; t < 64; t++) s[t] += b[(size_t)k4 * 64 + t];
        for (int j = 0; j < 16; j++)
            w->colsum[(size_t)p * 16 + j] = s[4 * j] + s[4 * j + 1] + s[4 * j + 2] + s[4 * j + 3];
    }
    *out = w;
    return RAM_OK;
}

ram_status ram_q8_weight_new_bf16(int n, int k, const uint16_t *packed, struct ram_q8_weight **out,
                                  struct ram_error *err)
{
    *out = NULL;
    if (!packed || !ram_bf16_packed_bytes(n, k))
        return ram_fail(err, RAM_ERR_ARG, "bf16 weight: invalid %d x %d matrix", n, k);
    struct ram_q8_weight *w = ram_calloc(1, sizeof *w);
    if (!w) return ram_fail(err, RAM_ERR_NOMEM, "out of memory for a bf16 weight");
    w->n = n, w->k = k;
    w->bf16 = (struct ram_bf16_weight){.n = n, .k = k, .packed = packed};
    *out = w;
    return RAM_OK;
}

void ram_q8_weight_free(struct ram_q8_weight *w) { ram_free(w); }

/* Asked once per call by the calling thread and handed to the workers in
** the job (no shared cache: __builtin_cpu_supports reads a table that libgcc
** fills before main, so this is cheap and race-free). */
int ram_q8_have_vnni(void)
{
#if Q8_X86
    return g_force_scalar != 1 && g_force_scalar != 3 && g_force_scalar != 4 && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

int ram_q8_have_amx(void) { return !g_force_scalar && ram_q8_have_vnni() && ram_amx_usable(RAM_AMX_INT8); }

int ram_q8_have_avx2(void)
{
#if Q8_X86
    return g_force_scalar != 1 && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* AVX-VNNI (vpdpbusd on 256-bit registers: Intel client CPUs since Alder Lake),
** read from cpuid leaf 7 subleaf 1 EAX bit 4 (GCC 12's
** __builtin_cpu_supports("avxvnni") says 0 on this CPU, which has it). The
** answer is kept after the first call: cpuid traps to the hypervisor in a
** VM (6.6 us per call here, asked by every int8 product). Any thread may
** fill it; they all store the same value. */
int ram_q8_have_avxvnni(void)
{
#if Q8_X86
    static atomic_int cpu_has = -1; /* -1: not read yet */
    if (g_force_scalar == 1 || g_force_scalar == 3 || !ram_q8_have_avx2()) return 0;
    int v = atomic_load_explicit(&cpu_has, memory_order_relaxed);
    if (v < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid_max(0, NULL) >= 7) __cpuid_count(7, 1, a, b, c, d);
        v = (int)((a >> 4) & 1);
        atomic_store_explicit(&cpu_has, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}

void ram_q8_force_scalar(int force_scalar) { g_force_scalar = force_scalar; }

void ram_q8_fuse_x2(int on) { g_no_fuse_x2 = !on; }

/* ------------------------------------------------------------------ activations */

/* Scale and zero point of a row whose range (with 0 added) is [lo, hi]. */
static void row_params(float lo, float hi, float *sa, float *inv, int32_t *za)
{
    float s = (hi - lo) / 255.0f;
    if (!(s > 0) || !isfinite(s)) s = 1.0f; /* all-zero row (or non-finite input) */
    *sa = s;
    *inv = 1.0f / s;
    long z = lrintf(-lo * *inv);
    *za = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
}

static uint8_t quant1(float x, float inv, int32_t z)
{
    long q = lrintf(x * inv) + z;
    return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

/* One row xr (k floats) into ar (lda bytes), its scale and zero point. */
static void quant_row_scalar(const float *xr, int k, uint8_t *ar, int lda, float *sa, int32_t *za)
{
    float lo = 0, hi = 0, inv;
    for (int i = 0; i < k; i++) lo = xr[i] < lo ? xr[i] : lo, hi = xr[i] > hi ? xr[i] : hi;
    row_params(lo, hi, sa, &inv, za);
    for (int i = 0; i < k; i++) ar[i] = quant1(xr[i], inv, *za);
    memset(ar + k, 0, (size_t)(lda - k));
}

#if Q8_X86
/* Same values as quant_rows_scalar: min/max are exact whatever the order,
** and cvtps_epi32 rounds to nearest even like lrintf. */
Q8_TARGET static void quant_row_avx512(const float *xr, int k, uint8_t *ar, int lda, float *sa, int32_t *za)
{
    __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 v = _mm512_loadu_ps(xr + i);
        vlo = _mm512_min_ps(vlo, v), vhi = _mm512_max_ps(vhi, v);
    }
    float lo = _mm512_reduce_min_ps(vlo), hi = _mm512_reduce_max_ps(vhi), inv;
    for (int t = i; t < k; t++) lo = xr[t] < lo ? xr[t] : lo, hi = xr[t] > hi ? xr[t] : hi;
    row_params(lo, hi, sa, &inv, za);
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vz = _mm512_set1_epi32(*za), v0 = _mm512_setzero_si512(), v255 = _mm512_set1_epi32(255);
    for (i = 0; i + 16 <= k; i += 16) {
        __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xr + i), vinv)), vz);
        q = _mm512_min_epi32(_mm512_max_epi32(q, v0), v255);
        _mm_storeu_si128((__m128i *)(ar + i), _mm512_cvtepi32_epi8(q));
    }
    for (; i < k; i++) ar[i] = quant1(xr[i], inv, *za);
    memset(ar + k, 0, (size_t)(lda - k));
}
#endif

static void quant_row(int vnni, const float *xr, int k, uint8_t *ar, int lda, float *sa, int32_t *za)
{
#if Q8_X86
    if (vnni) {
        quant_row_avx512(xr, k, ar, lda, sa, za);
        return;
    }
#endif
    quant_row_scalar(xr, k, ar, lda, sa, za);
}

void ram_q8_quantize_rows(const float *x, int rows, int k, uint8_t *a, int lda, float *sa, int32_t *za)
{
    const int vnni = ram_q8_have_vnni();
    for (int r = 0; r < rows; r++) quant_row(vnni, x + (size_t)r * k, k, a + (size_t)r * lda, lda, sa + r, za + r);
}

/* ------------------------------------------------------------------ products */

/* One thread's share: panels [p0, p1) against all rows. Output either the
** raw int32 sums (acc) or the dequantized fp32 result (y). */
struct q8_job {
    const uint8_t *a; /* rows (padded to MR) x lda u8 */
    int rows, lda;
    const float *sa; /* per row, NULL for raw output */
    const int32_t *za;
    const struct ram_q8_weight *w;
    const float *bias; /* may be NULL */
    float *y;          /* rows x n, or NULL */
    int32_t *acc;      /* rows x n, or NULL */
    int p0, p1;
    int vnni;    /* 1: the AVX512-VNNI path (decided once per call) */
    int avx2;    /* 1: the AVX2 path where VNNI is absent */
    int avxvnni; /* 1: the AVX-VNNI path (256-bit vpdpbusd) where AVX512-VNNI is absent */
    int amx;     /* 1: AMX-INT8 tiles (K a multiple of 64; decided once per call) */
    int x2;      /* 1 (AMX only): w->lo's product in the same pass as w's (gemm_amx_x2) */
    int add;     /* fused epilogue (ram_q8_linear_ex): y += result */
    /* quantization phase; rows are LayerNorm'ed first into lnrow (k floats of this job) when ln_w */
    const float *x;
    int r0, r1;
    const float *ln_w, *ln_b;
    float ln_eps;
    float *lnrow;
    /* lo_mean: columns [c0, c1) of the quantized rows' mean (into mean), then the bias
    ** with the correction (bias2) for the panels [p0, p1) */
    int c0, c1;
    float *mean, *bias2;
    /* split_x: the residual x - sa (a - za) of each row, quantized too (resrow: k floats of this job) */
    uint8_t *a_lo;
    float *sa_lo, *resrow;
    int32_t *za_lo;
};

/* y[r][o] or acc[r][o] from the integer sum v of row r, column o. */
static void store1(const struct q8_job *j, int r, int o, int32_t v)
{
    const struct ram_q8_weight *w = j->w;
    size_t at = (size_t)r * w->n + o;
    if (j->acc) {
        j->acc[at] = v;
        return;
    }
    int32_t c = (int32_t)((uint32_t)v - (uint32_t)j->za[r] * (uint32_t)w->colsum[o]);
    float f = fmaf((float)c, j->sa[r] * w->scale[o], j->bias ? j->bias[o] : 0.0f);
    j->y[at] = j->add ? j->y[at] + f : f;
}

static void gemm_scalar(const struct q8_job *j)
{
    const struct ram_q8_weight *w = j->w;
    const int K4 = (w->k + 3) / 4;
    for (int p = j->p0; p < j->p1; p++)
        for (int r = 0; r < j->rows; r++) {
            const uint8_t *a = j->a + (size_t)r * j->lda;
            for (int o = p * 16; o < p * 16 + 16 && o < w->n; o++) {
                const int8_t *b = w->packed + (size_t)p * K4 * 64 + (o % 16) * 4;
                int32_t s = 0;
                for (int k4 = 0; k4 < K4; k4++)
                    for (int i = 0; i < 4; i++) s += (int32_t)a[4 * k4 + i] * b[(size_t)k4 * 64 + i];
                store1(j, r, o, s);
            }
        }
}

#if Q8_X86
/* Writes the MR x NP block of sums at rows r0.., panels p.. (rows >= j->rows
** are padding and dropped; columns >= n masked). */
Q8_TARGET static inline __attribute__((always_inline)) void store_block(const struct q8_job *j, int r0, int p,
                                                                        const int NP, __m512i acc[MR][4])
{
    const struct ram_q8_weight *w = j->w;
    for (int q = 0; q < NP; q++) {
        const int o = (p + q) * 16, cnt = w->n - o < 16 ? w->n - o : 16;
        const __mmask16 mk = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
        const __m512i cs = _mm512_load_si512(w->colsum + o);
        const __m512 sc = _mm512_maskz_loadu_ps(mk, w->scale + o);
        const __m512 bb = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o) : _mm512_setzero_ps();
        for (int r = 0; r < MR && r0 + r < j->rows; r++) {
            size_t at = (size_t)(r0 + r) * w->n + o;
            if (j->acc) {
                _mm512_mask_storeu_epi32(j->acc + at, mk, acc[r][q]);
                continue;
            }
            __m512i c = _mm512_sub_epi32(acc[r][q], _mm512_mullo_epi32(_mm512_set1_epi32(j->za[r0 + r]), cs));
            __m512 s = _mm512_mul_ps(_mm512_set1_ps(j->sa[r0 + r]), sc);
            __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), s, bb);
            if (j->add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, j->y + at), v);
            _mm512_mask_storeu_ps(j->y + at, mk, v);
        }
    }
}

/* MR rows x NP panels over the whole K. */
Q8_TARGET static inline __attribute__((always_inline)) void micro(const struct q8_job *j, int r0, int p, const int NP)
{
    const struct ram_q8_weight *w = j->w;
    const int K4 = (w->k + 3) / 4, lda = j->lda;
    const size_t ps = (size_t)K4 * 64;
    const int8_t *b = w->packed + (size_t)p * ps;
    const uint8_t *a = j->a + (size_t)r0 * lda;
    __m512i acc[MR][4];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_si512();
    for (int k4 = 0; k4 < K4; k4++) {
        __m512i bv[4];
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++) bv[q] = _mm512_loadu_si512(b + q * ps + (size_t)k4 * 64);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, a + (size_t)r * lda + 4 * k4, 4);
            const __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 4
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], av, bv[q]);
        }
    }
    store_block(j, r0, p, NP, acc);
}

Q8_TARGET static void micro1(const struct q8_job *j, int r0, int p) { micro(j, r0, p, 1); }
Q8_TARGET static void micro2(const struct q8_job *j, int r0, int p) { micro(j, r0, p, 2); }
Q8_TARGET static void micro3(const struct q8_job *j, int r0, int p) { micro(j, r0, p, 3); }
Q8_TARGET static void micro4(const struct q8_job *j, int r0, int p) { micro(j, r0, p, 4); }

/* AMX: 32 rows x 32 columns (two panels) per block; C in tiles 0-3, A in
** 4-5, B in 6-7; K in steps of 64 (a tile row is 64 bytes; a B tile is 16
** consecutive 64-byte rows of a panel, as stored). Sums are exact int32, so
** results equal the other paths' bit for bit. */
struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

Q8_TARGET_AMX static void amx_store(const struct q8_job *j, int r0, int o, const int32_t *c)
{
    const struct ram_q8_weight *w = j->w;
    const int cnt = w->n - o < 16 ? w->n - o : 16;
    const __mmask16 mk = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
    const __m512i cs = _mm512_load_si512(w->colsum + o);
    const __m512 sc = _mm512_maskz_loadu_ps(mk, w->scale + o);
    const __m512 bb = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o) : _mm512_setzero_ps();
    for (int r = 0; r < 16 && r0 + r < j->rows; r++) {
        const size_t at = (size_t)(r0 + r) * w->n + o;
        const __m512i acc = _mm512_load_si512(c + 16 * r);
        if (j->acc) {
            _mm512_mask_storeu_epi32(j->acc + at, mk, acc);
            continue;
        }
        __m512i d = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(j->za[r0 + r]), cs));
        __m512 s = _mm512_mul_ps(_mm512_set1_ps(j->sa[r0 + r]), sc);
        __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, bb);
        if (j->add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, j->y + at), v);
        _mm512_mask_storeu_ps(j->y + at, mk, v);
    }
}

/* amx_store of two tiles side by side (32 columns, the first 16 all below
** n) for the dequantized output: one pass over the rows, each row's scale
** and zero point read once for both. */
Q8_TARGET_AMX static void amx_store_pair(const struct q8_job *j, int r0, int o, const int32_t *c0, const int32_t *c1)
{
    const struct ram_q8_weight *w = j->w;
    const int cnt = w->n - o - 16 < 16 ? w->n - o - 16 : 16;
    const __mmask16 mk = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
    const __m512i cs0 = _mm512_load_si512(w->colsum + o), cs1 = _mm512_load_si512(w->colsum + o + 16);
    const __m512 sc0 = _mm512_loadu_ps(w->scale + o), sc1 = _mm512_maskz_loadu_ps(mk, w->scale + o + 16);
    const __m512 bb0 = j->bias ? _mm512_loadu_ps(j->bias + o) : _mm512_setzero_ps();
    const __m512 bb1 = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o + 16) : _mm512_setzero_ps();
    for (int r = 0; r < 16 && r0 + r < j->rows; r++) {
        float *yr = j->y + (size_t)(r0 + r) * w->n + o;
        const __m512i za = _mm512_set1_epi32(j->za[r0 + r]);
        const __m512 sa = _mm512_set1_ps(j->sa[r0 + r]);
        __m512i d0 = _mm512_sub_epi32(_mm512_load_si512(c0 + 16 * r), _mm512_mullo_epi32(za, cs0));
        __m512i d1 = _mm512_sub_epi32(_mm512_load_si512(c1 + 16 * r), _mm512_mullo_epi32(za, cs1));
        __m512 v0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_mul_ps(sa, sc0), bb0);
        __m512 v1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_mul_ps(sa, sc1), bb1);
        if (j->add) {
            v0 = _mm512_add_ps(_mm512_loadu_ps(yr), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yr + 16), v1);
        }
        _mm512_storeu_ps(yr, v0);
        _mm512_mask_storeu_ps(yr + 16, mk, v1);
    }
}

/* Cache blocks of the AMX loop: rows x panels such that the block's
** quantized rows (A_BLOCK bytes unless all rows fit in A_ALL), its weights
** (B_BLOCK) and its outputs (C_BLOCK) stay in L2 while the panel pairs and
** 32-row blocks inside it are done. Without them, every panel pair read all
** of A again from L3 once A outgrew L2 (tile loop alone, one core: 4,608 x
** 768 -> 3,072 rows 690 -> 1,300 GMAC/s; Swin's 576 x 3,072 -> 768 fc2
** 1,340 -> 1,520). The sums are exact, so the order changes no bit. */
#define A_ALL ((size_t)1 << 20)
#define A_BLOCK ((size_t)1 << 18)
#define B_BLOCK ((size_t)1 << 20)
#define C_BLOCK ((size_t)1 << 18)

/* Every AMX loop here uses the same eight 16 x 64-byte tiles. */
Q8_TARGET_AMX static void amx_tiles_16x64(void)
{
    struct amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
}

/* Rows per block (a multiple of 32) so that a block's rows (A_BLOCK) and
** its output for nbp panels (C_BLOCK) stay in cache; every row when all of
** A fits (A_ALL). */
static int amx_row_block(const struct q8_job *j, int nbp)
{
    if ((size_t)j->rows * j->lda <= A_ALL) return j->rows;
    size_t byc = C_BLOCK / ((size_t)nbp * 16 * sizeof(float)), bya = A_BLOCK / (size_t)j->lda;
    int mb = (int)((byc < bya ? byc : bya) / 32 * 32);
    return mb < 32 ? 32 : mb;
}

Q8_TARGET_AMX static void gemm_amx(const struct q8_job *j)
{
    const struct ram_q8_weight *w = j->w;
    const int K4 = (w->k + 3) / 4;
    const size_t ps = (size_t)K4 * 64;
    amx_tiles_16x64();
    /* panels per block: an even count (pairs), at least one pair */
    const int nbp = (int)(B_BLOCK / ps) / 2 * 2 > 2 ? (int)(B_BLOCK / ps) / 2 * 2 : 2;
    const int mb = amx_row_block(j, nbp);
    int32_t c[4][256] __attribute__((aligned(64)));
    for (int nb = j->p0; nb < j->p1; nb += nbp) {
        const int ne = j->p1 - nb < nbp ? j->p1 : nb + nbp;
        for (int rb = 0; rb < j->rows; rb += mb) {
            const int re = j->rows - rb < mb ? j->rows : rb + mb;
            for (int p = nb; p < ne; p += 2) {
                const int two = p + 1 < ne;
                const int8_t *b0 = w->packed + (size_t)p * ps, *b1 = b0 + ps;
                for (int r0 = rb; r0 < re; r0 += 32) {
                    const uint8_t *a0 = j->a + (size_t)r0 * j->lda, *a1 = a0 + (size_t)16 * j->lda;
                    _tile_zero(0);
                    _tile_zero(1);
                    _tile_zero(2);
                    _tile_zero(3);
                    for (int k4 = 0; k4 < K4; k4 += 16) {
                        _tile_loadd(4, a0 + 4 * k4, j->lda);
                        _tile_loadd(5, a1 + 4 * k4, j->lda);
                        _tile_loadd(6, b0 + (size_t)k4 * 64, 64);
                        _tile_dpbusd(0, 4, 6);
                        _tile_dpbusd(2, 5, 6);
                        if (two) {
                            _tile_loadd(7, b1 + (size_t)k4 * 64, 64);
                            _tile_dpbusd(1, 4, 7);
                            _tile_dpbusd(3, 5, 7);
                        }
                    }
                    _tile_stored(0, c[0], 64);
                    _tile_stored(2, c[2], 64);
                    if (two && !j->acc) {
                        _tile_stored(1, c[1], 64);
                        _tile_stored(3, c[3], 64);
                        amx_store_pair(j, r0, p * 16, c[0], c[1]);
                        if (r0 + 16 < j->rows) amx_store_pair(j, r0 + 16, p * 16, c[2], c[3]);
                        continue;
                    }
                    amx_store(j, r0, p * 16, c[0]);
                    if (r0 + 16 < j->rows) amx_store(j, r0 + 16, p * 16, c[2]);
                    if (two) {
                        _tile_stored(1, c[1], 64);
                        _tile_stored(3, c[3], 64);
                        amx_store(j, r0, p * 16 + 16, c[1]);
                        if (r0 + 16 < j->rows) amx_store(j, r0 + 16, p * 16 + 16, c[3]);
                    }
                }
            }
        }
    }
    _tile_release();
}

/* amx_store for int8x2: c holds the sums with W's codes, cl those with its
** residual's; the output is the first product's value plus the second's,
** in the operations and order of two separate passes (y = fma(d, sa s, b)
** [+ y], then y += fma(d_lo, sa s_lo, 0)), so the bits are those of the
** other levels, which run the residual's product as a second pass. */
Q8_TARGET_AMX static void amx_store_x2(const struct q8_job *j, int r0, int o, const int32_t *c, const int32_t *cl)
{
    const struct ram_q8_weight *w = j->w, *lo = w->lo;
    const int cnt = w->n - o < 16 ? w->n - o : 16;
    const __mmask16 mk = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
    const __m512i cs = _mm512_load_si512(w->colsum + o), csl = _mm512_load_si512(lo->colsum + o);
    const __m512 sc = _mm512_maskz_loadu_ps(mk, w->scale + o), scl = _mm512_maskz_loadu_ps(mk, lo->scale + o);
    const __m512 bb = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o) : _mm512_setzero_ps();
    for (int r = 0; r < 16 && r0 + r < j->rows; r++) {
        float *yr = j->y + (size_t)(r0 + r) * w->n + o;
        const __m512i za = _mm512_set1_epi32(j->za[r0 + r]);
        const __m512 sa = _mm512_set1_ps(j->sa[r0 + r]);
        const __m512i d = _mm512_sub_epi32(_mm512_load_si512(c + 16 * r), _mm512_mullo_epi32(za, cs));
        const __m512i dl = _mm512_sub_epi32(_mm512_load_si512(cl + 16 * r), _mm512_mullo_epi32(za, csl));
        __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(sa, sc), bb);
        if (j->add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yr), v);
        v = _mm512_add_ps(v, _mm512_fmadd_ps(_mm512_cvtepi32_ps(dl), _mm512_mul_ps(sa, scl), _mm512_setzero_ps()));
        _mm512_mask_storeu_ps(yr, mk, v);
    }
}

/* int8x2 on tiles: each block of 32 rows is multiplied with a panel of W's
** codes and the same panel of its residual in one pass over the A tiles (C
** tiles 0 / 2: rows 0-15 / 16-31 with the codes, 1 / 3 with the residual;
** B tiles 6 and 7), and the output is written once. A second pass over the
** quantized rows and over y (the other levels' way) cost as much as the
** first one on Swin's many-row, narrow products. */
Q8_TARGET_AMX static void gemm_amx_x2(const struct q8_job *j)
{
    const struct ram_q8_weight *w = j->w;
    const int K4 = (w->k + 3) / 4;
    const size_t ps = (size_t)K4 * 64;
    amx_tiles_16x64();
    const int nbp = (int)(B_BLOCK / (2 * ps)) > 1 ? (int)(B_BLOCK / (2 * ps)) : 1; /* panels (both forms) per block */
    const int mb = amx_row_block(j, nbp);
    int32_t c[4][256] __attribute__((aligned(64)));
    for (int nb = j->p0; nb < j->p1; nb += nbp) {
        const int ne = j->p1 - nb < nbp ? j->p1 : nb + nbp;
        for (int rb = 0; rb < j->rows; rb += mb) {
            const int re = j->rows - rb < mb ? j->rows : rb + mb;
            for (int p = nb; p < ne; p++) {
                const int8_t *bh = w->packed + (size_t)p * ps, *bl = w->lo->packed + (size_t)p * ps;
                for (int r0 = rb; r0 < re; r0 += 32) {
                    const uint8_t *a0 = j->a + (size_t)r0 * j->lda, *a1 = a0 + (size_t)16 * j->lda;
                    _tile_zero(0);
                    _tile_zero(1);
                    _tile_zero(2);
                    _tile_zero(3);
                    for (int k4 = 0; k4 < K4; k4 += 16) {
                        _tile_loadd(4, a0 + 4 * k4, j->lda);
                        _tile_loadd(5, a1 + 4 * k4, j->lda);
                        _tile_loadd(6, bh + (size_t)k4 * 64, 64);
                        _tile_loadd(7, bl + (size_t)k4 * 64, 64);
                        _tile_dpbusd(0, 4, 6);
                        _tile_dpbusd(1, 4, 7);
                        _tile_dpbusd(2, 5, 6);
                        _tile_dpbusd(3, 5, 7);
                    }
                    _tile_stored(0, c[0], 64);
                    _tile_stored(1, c[1], 64);
                    amx_store_x2(j, r0, p * 16, c[0], c[1]);
                    if (r0 + 16 < j->rows) {
                        _tile_stored(2, c[2], 64);
                        _tile_stored(3, c[3], 64);
                        amx_store_x2(j, r0 + 16, p * 16, c[2], c[3]);
                    }
                }
            }
        }
    }
    _tile_release();
}

Q8_TARGET static void gemm_vnni(const struct q8_job *j)
{
    static void (*const mk[5])(const struct q8_job *, int, int) = {0, micro1, micro2, micro3, micro4};
    for (int p = j->p0; p < j->p1; p += 4) {
        int np = j->p1 - p < 4 ? j->p1 - p : 4;
        for (int r0 = 0; r0 < j->rows; r0 += MR) mk[np](j, r0, p);
    }
}
#endif

#if Q8_X86
/* AVX2: 2 rows x one panel of 16 columns per block. Per group of 4 K, the
** panel's 64 bytes are 4 chunks of 4 columns x 4 K; widened to int16 and
** multiplied with the row's 4 bytes (repeated) by vpmaddwd, each chunk gives
** 8 int32 lanes: column 4g + c's two pair sums in lanes 2c and 2c + 1. */
Q8_TARGET_AVX2 static void gemm_avx2(const struct q8_job *j)
{
    const struct ram_q8_weight *w = j->w;
    const int K4 = (w->k + 3) / 4;
    for (int p = j->p0; p < j->p1; p++) {
        const int8_t *b = w->packed + (size_t)p * K4 * 64;
        for (int r0 = 0; r0 < j->rows; r0 += 2) { /* rows are padded to ROW_PAD: row r0 + 1 exists */
            const uint8_t *a0 = j->a + (size_t)r0 * j->lda, *a1 = a0 + j->lda;
            __m256i acc[2][4];
            for (int g = 0; g < 4; g++) acc[0][g] = acc[1][g] = _mm256_setzero_si256();
            for (int k4 = 0; k4 < K4; k4++) {
                int32_t x0, x1;
                memcpy(&x0, a0 + 4 * k4, 4);
                memcpy(&x1, a1 + 4 * k4, 4);
                const __m256i v0 = _mm256_cvtepu8_epi16(_mm_set1_epi32(x0));
                const __m256i v1 = _mm256_cvtepu8_epi16(_mm_set1_epi32(x1));
                for (int g = 0; g < 4; g++) {
                    const __m256i wv =
                        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + (size_t)k4 * 64 + 16 * g)));
                    acc[0][g] = _mm256_add_epi32(acc[0][g], _mm256_madd_epi16(v0, wv));
                    acc[1][g] = _mm256_add_epi32(acc[1][g], _mm256_madd_epi16(v1, wv));
                }
            }
            for (int r = 0; r < 2 && r0 + r < j->rows; r++) {
                int32_t t[32];
                for (int g = 0; g < 4; g++) _mm256_storeu_si256((__m256i *)(t + 8 * g), acc[r][g]);
                for (int c = 0; c < 16 && p * 16 + c < w->n; c++)
                    store1(j, r0 + r, p * 16 + c, t[2 * c] + t[2 * c + 1]);
            }
        }
    }
}
#endif

#if Q8_X86
/* AVX-VNNI: vpdpbusd on 8 lanes, 6 rows x one panel (two registers of 8
** columns): the 64 bytes of a panel's group of 4 K are the weight operands
** of two vpdpbusd, read as stored. Exact int32 sums, as everywhere. */
Q8_TARGET_AVXVNNI static void gemm_avxvnni(const struct q8_job *j)
{
    const struct ram_q8_weight *w = j->w;
    const int K4 = (w->k + 3) / 4;
    for (int p = j->p0; p < j->p1; p++) {
        const int8_t *b = w->packed + (size_t)p * K4 * 64;
        for (int r0 = 0; r0 < j->rows; r0 += MR) { /* rows are padded to ROW_PAD, a multiple of MR */
            const uint8_t *a = j->a + (size_t)r0 * j->lda;
            __m256i acc[MR][2];
            for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
            for (int k4 = 0; k4 < K4; k4++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(b + (size_t)k4 * 64));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(b + (size_t)k4 * 64 + 32));
                for (int r = 0; r < MR; r++) {
                    int32_t x;
                    memcpy(&x, a + (size_t)r * j->lda + 4 * k4, 4);
                    const __m256i v = _mm256_set1_epi32(x);
                    acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], v, w0);
                    acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], v, w1);
                }
            }
            for (int r = 0; r < MR && r0 + r < j->rows; r++) {
                int32_t t[16];
                _mm256_storeu_si256((__m256i *)t, acc[r][0]);
                _mm256_storeu_si256((__m256i *)(t + 8), acc[r][1]);
                for (int c = 0; c < 16 && p * 16 + c < w->n; c++) store1(j, r0 + r, p * 16 + c, t[c]);
            }
        }
    }
}
#endif

static void run_gemm(const struct q8_job *j)
{
#if Q8_X86
    if (j->amx) {
        if (j->x2)
            gemm_amx_x2(j);
        else
            gemm_amx(j);
        return;
    }
    if (j->vnni) {
        gemm_vnni(j);
        return;
    }
    if (j->avxvnni) {
        gemm_avxvnni(j);
        return;
    }
    if (j->avx2) {
        gemm_avx2(j);
        return;
    }
#endif
    gemm_scalar(j);
}

static void *gemm_thread(void *arg)
{
    run_gemm(arg);
    return NULL;
}

/* The rows [r0, r1), LayerNorm'ed first when ln_w (ram_layernorm's values,
** row by row: the normed row stays in L1 for its quantization instead of
** being written out and read back); with a_lo, each row's quantization
** residual is quantized too, while the row is in L1. */
static void *quant_thread(void *arg)
{
    const struct q8_job *j = arg;
    const int k = j->w->k;
    for (int r = j->r0; r < j->r1; r++) {
        const float *xr = ram_row_layernormed(j->x + (size_t)r * k, k, j->ln_w, j->ln_b, j->ln_eps, j->lnrow);
        uint8_t *ar = (uint8_t *)j->a + (size_t)r * j->lda;
        quant_row(j->vnni, xr, k, ar, j->lda, (float *)j->sa + r, (int32_t *)j->za + r);
        if (j->a_lo) {
            const float s = j->sa[r];
            const int32_t z = j->za[r];
            for (int i = 0; i < k; i++) j->resrow[i] = xr[i] - s * (float)((int32_t)ar[i] - z);
            quant_row(j->vnni, j->resrow, k, j->a_lo + (size_t)r * j->lda, j->lda, j->sa_lo + r, j->za_lo + r);
        }
    }
    return NULL;
}

/* The quantized rows start on a cache line: an AMX tile row (64 bytes) that
** straddles two lines costs a second load; with malloc's 16-byte alignment
** (large blocks sit 16 bytes into a page) the tile products ran ~1.7x
** slower (1,314 vs 784 GMAC/s on 576 x 768 x 2304, weights also unaligned
** in that test; the model file's are 64-byte aligned). */
static uint8_t *align64(void *p) { return (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Threads for rows x n x k multiply-adds: ram_set_threads' count, fewer
** for small products (thread start-up costs ~20 us). */
static int thread_count(int rows, const struct ram_q8_weight *w)
{
    return ram_job_count((double)rows * w->n * w->k, (double)MIN_WORK_PER_THREAD, (w->n + 15) / 16);
}

static void split(struct q8_job *jobs, int T, const struct q8_job *base)
{
    int P = (base->w->n + 15) / 16;
    for (int t = 0; t < T; t++) {
        jobs[t] = *base;
        jobs[t].p0 = (int)((long)P * t / T);
        jobs[t].p1 = (int)((long)P * (t + 1) / T);
        jobs[t].r0 = (int)((long)base->rows * t / T);
        jobs[t].r1 = (int)((long)base->rows * (t + 1) / T);
    }
}

/* int8m, first step: the mean of the dequantized rows sa (a - za) over
** the columns [c0, c1), summed in fp32 over the rows in order (a product
** then a sum, on the portable path and the AVX-512 one alike), so the
** result depends neither on how the columns are split nor on the level. */
static void mean_cols(const struct q8_job *j, float *d, int c0, int c1)
{
    for (int r = 0; r < j->rows; r++) {
        const uint8_t *ar = j->a + (size_t)r * j->lda;
        const float s = j->sa[r];
        const int32_t z = j->za[r];
        for (int c = c0; c < c1; c++) {
            const float prod = s * (float)((int32_t)ar[c] - z);
            d[c] += prod;
        }
    }
}

#if Q8_X86
Q8_TARGET static void mean_cols_avx512(const struct q8_job *j, float *d, int c0, int c1)
{
    for (int r = 0; r < j->rows; r++) {
        const uint8_t *ar = j->a + (size_t)r * j->lda;
        const __m512 s = _mm512_set1_ps(j->sa[r]);
        const __m512i z = _mm512_set1_epi32(j->za[r]);
        for (int c = c0; c + 16 <= c1; c += 16) {
            const __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ar + c))), z);
            _mm512_storeu_ps(d + c, _mm512_add_ps(_mm512_loadu_ps(d + c), _mm512_mul_ps(s, _mm512_cvtepi32_ps(v))));
        }
    }
}
#endif

static void *mean_thread(void *arg)
{
    const struct q8_job *j = arg;
    float *d = j->mean;
    int c = j->c0;
    for (int i = j->c0; i < j->c1; i++) d[i] = 0;
#if Q8_X86
    if (j->vnni) {
        mean_cols_avx512(j, d, c, j->c1);
        c += (j->c1 - c) / 16 * 16;
    }
#endif
    mean_cols(j, d, c, j->c1);
    for (int i = j->c0; i < j->c1; i++) d[i] /= (float)j->rows;
    return NULL;
}

/* Second step: bias2[o] = bias[o] + scale_lo[o] * sum_k q_lo[o][k] mean[k]
** for the panels [p0, p1): 16 outputs at a time, each summed over k in
** order in fp32, a product then a sum (no fused multiply-add), on the
** portable path and the AVX-512 one alike: the same bits. */
static void correct_panel(const int8_t *b, int K4, int k, const float *mean, float acc[16])
{
    for (int k4 = 0; k4 < K4; k4++)
        for (int i = 0; i < 4 && 4 * k4 + i < k; i++) {
            const float m = mean[4 * k4 + i];
            for (int t = 0; t < 16; t++) {
                const float prod = (float)b[(size_t)k4 * 64 + 4 * t + i] * m;
                acc[t] += prod;
            }
        }
}

#if Q8_X86
/* The 64 bytes of a panel's group of 4 k hold 4 codes per output: lane t
** of one zmm has output t's codes in its 4 bytes, code i shifted out by
** (24 - 8 i) left then 24 right (arithmetic). k is a multiple of 4 here. */
Q8_TARGET static void correct_panel_avx512(const int8_t *b, int K4, const float *mean, float acc[16])
{
    __m512 v = _mm512_loadu_ps(acc);
    for (int k4 = 0; k4 < K4; k4++) {
        const __m512i w = _mm512_loadu_si512(b + (size_t)k4 * 64);
        v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(w, 24), 24)),
                                           _mm512_set1_ps(mean[4 * k4])));
        v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(w, 16), 24)),
                                           _mm512_set1_ps(mean[4 * k4 + 1])));
        v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(w, 8), 24)),
                                           _mm512_set1_ps(mean[4 * k4 + 2])));
        v = _mm512_add_ps(
            v, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(w, 24)), _mm512_set1_ps(mean[4 * k4 + 3])));
    }
    _mm512_storeu_ps(acc, v);
}
#endif

static void *correct_thread(void *arg)
{
    const struct q8_job *j = arg;
    const struct ram_q8_weight *lo = j->w->lo;
    const int K4 = (lo->k + 3) / 4;
    for (int p = j->p0; p < j->p1; p++) {
        const int8_t *b = lo->packed + (size_t)p * K4 * 64;
        float acc[16] = {0};
#if Q8_X86
        if (j->vnni && lo->k % 4 == 0)
            correct_panel_avx512(b, K4, j->mean, acc);
        else
#endif
            correct_panel(b, K4, lo->k, j->mean, acc);
        for (int t = 0; t < 16 && 16 * p + t < lo->n; t++) {
            const int o = 16 * p + t;
            j->bias2[o] = (j->bias ? j->bias[o] : 0.0f) + acc[t] * lo->scale[o];
        }
    }
    return NULL;
}

ram_status ram_q8_gemm_s32(const uint8_t *a, int rows, int lda, const struct ram_q8_weight *w, int32_t *acc,
                           struct ram_error *err)
{
    if (!a || !w || w->bf16.packed || !acc || rows < 0 || lda < (w->k + 3) / 4 * 4 || lda % 4)
        return ram_fail(err, RAM_ERR_ARG, "int8 gemm: invalid arguments");
    if (rows == 0) return RAM_OK;
    /* The kernel reads whole MR-row blocks: copy into a padded buffer. */
    size_t padded = (size_t)(rows + ROW_PAD - 1) / ROW_PAD * ROW_PAD;
    void *mem = ram_calloc(padded * lda + 63, 1);
    if (!mem) return ram_fail(err, RAM_ERR_NOMEM, "int8 gemm: out of memory");
    uint8_t *ab = align64(mem);
    memcpy(ab, a, (size_t)rows * lda);
    struct q8_job base = {.a = ab,
                          .rows = rows,
                          .lda = lda,
                          .w = w,
                          .acc = acc,
                          .vnni = ram_q8_have_vnni(),
                          .avx2 = ram_q8_have_avx2(),
                          .avxvnni = ram_q8_have_avxvnni(),
                          .amx = w->k % 64 == 0 && ram_q8_have_amx()},
                  jobs[RAM_MAX_JOBS];
    int T = thread_count(rows, w);
    split(jobs, T, &base);
    ram_run_jobs(gemm_thread, jobs, sizeof jobs[0], T);
    ram_free(mem);
    return RAM_OK;
}

ram_status ram_q8_linear(const float *x, int rows, const struct ram_q8_weight *w, const float *b, float *y,
                         struct ram_error *err)
{
    return ram_q8_linear_ex(x, rows, w, b, y, NULL, NULL, err);
}

ram_status ram_q8_linear_ex(const float *x, int rows, const struct ram_q8_weight *w, const float *b, float *y,
                            const struct ram_q8_fuse *f, struct ram_scratch *scratch, struct ram_error *err)
{
    static const struct ram_q8_fuse none = {0};
    if (!f) f = &none;
    if (!x || !w || !y || rows < 0) return ram_fail(err, RAM_ERR_ARG, "int8 linear: invalid arguments");
    if (w->bf16.packed) {
        if (f->ln_w || f->add) return ram_fail(err, RAM_ERR_ARG, "int8 linear: fused steps need an int8 weight");
        return ram_bf16_linear(x, rows, &w->bf16, b, y, scratch, err);
    }
    if (rows == 0) return RAM_OK;
    const int lda = (w->k + 3) / 4 * 4, xs = w->split_x;
    const size_t padded = (size_t)(rows + ROW_PAD - 1) / ROW_PAD * ROW_PAD;
    const int T = thread_count(rows, w);
    /* One buffer: quantized rows (ROW_PAD-padded, zeroed padding), then
    ** scales and zero points, then (split_x) the same for the residual's
    ** rows, then a LayerNorm row and (split_x) a residual row per thread. */
    const size_t abytes = padded * lda, part = abytes + padded * (sizeof(float) + sizeof(int32_t));
    const size_t rowfloats = (size_t)T * w->k * ((f->ln_w ? 1 : 0) + xs);
    const size_t meanfloats = w->lo && w->lo_mean ? (size_t)w->k + w->n : 0;
    struct ram_scratch mine = {0}, *s = scratch ? scratch : &mine; /* the caller's, else one for this call */
    void *mem = ram_scratch_get(s, part * (1 + xs) + (rowfloats + meanfloats) * sizeof(float));
    if (!mem) return ram_fail(err, RAM_ERR_NOMEM, "int8 linear: out of memory for %d x %d rows", rows, w->k);
    uint8_t *buf = align64(mem); /* already aligned: 64 bytes (scratch.h) */
    float *sa = (float *)(buf + abytes);
    int32_t *za = (int32_t *)(sa + padded);
    float *rowbuf = (float *)(buf + part * (1 + xs));
    memset(buf + (size_t)rows * lda, 0, (padded - rows) * lda);
    struct q8_job base = {.a = buf,
                          .rows = rows,
                          .lda = lda,
                          .sa = sa,
                          .za = za,
                          .w = w,
                          .bias = b,
                          .y = y,
                          .x = x,
                          .add = f->add,
                          .ln_w = f->ln_w,
                          .ln_b = f->ln_b,
                          .ln_eps = f->ln_eps,
                          .vnni = ram_q8_have_vnni(),
                          .avx2 = ram_q8_have_avx2(),
                          .avxvnni = ram_q8_have_avxvnni(),
                          .amx = w->k % 64 == 0 && ram_q8_have_amx()},
                  jobs[RAM_MAX_JOBS];
    if (xs) {
        base.a_lo = buf + part;
        base.sa_lo = (float *)(base.a_lo + abytes);
        base.za_lo = (int32_t *)(base.sa_lo + padded);
        memset(base.a_lo + (size_t)rows * lda, 0, (padded - rows) * lda);
    }
    split(jobs, T, &base);
    for (int t = 0; t < T; t++) {
        float *own = rowbuf + (size_t)t * w->k * ((f->ln_w ? 1 : 0) + xs);
        if (f->ln_w) jobs[t].lnrow = own, own += w->k;
        if (xs) jobs[t].resrow = own;
    }
    ram_run_jobs(quant_thread, jobs, sizeof jobs[0], T);
    if (meanfloats) { /* int8m: the weights' residual on the rows' mean, as a bias */
        float *mean = rowbuf + rowfloats, *bias2 = mean + w->k;
        for (int t = 0; t < T; t++) {
            jobs[t].mean = mean, jobs[t].bias2 = bias2;
            jobs[t].c0 = (int)((long)w->k * t / T), jobs[t].c1 = (int)((long)w->k * (t + 1) / T);
        }
        ram_run_jobs(mean_thread, jobs, sizeof jobs[0], T);
        ram_run_jobs(correct_thread, jobs, sizeof jobs[0], T);
        for (int t = 0; t < T; t++) jobs[t].bias = bias2;
    }
    /* int8x2 on tiles: both products in one pass (gemm_amx_x2, same bits) */
    const int fused = w->lo && !w->lo_mean && base.amx && !g_no_fuse_x2;
    for (int t = 0; t < T; t++) jobs[t].x2 = fused;
    ram_run_jobs(gemm_thread, jobs, sizeof jobs[0], T);
    /* The split forms: more products added into y, one after the other (so
    ** the bits do not depend on the thread count or the kernel level). */
    if (w->lo && !w->lo_mean && !fused) {
        for (int t = 0; t < T; t++) jobs[t].w = w->lo, jobs[t].bias = NULL, jobs[t].add = 1;
        ram_run_jobs(gemm_thread, jobs, sizeof jobs[0], T);
    }
    if (xs) {
        for (int t = 0; t < T; t++) {
            jobs[t].w = w, jobs[t].bias = NULL, jobs[t].add = 1, jobs[t].x2 = 0;
            jobs[t].a = base.a_lo, jobs[t].sa = base.sa_lo, jobs[t].za = base.za_lo;
        }
        ram_run_jobs(gemm_thread, jobs, sizeof jobs[0], T);
    }
    ram_scratch_free(&mine);
    return RAM_OK;
}
