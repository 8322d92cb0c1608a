/*
** gemv_w8.c — the weight-only int8 linear layer (API in gemv_w8.h).
**
** HOW IT WORKS. Each job takes a contiguous range of output channels; for
** each, the codes of one row are read once (in order, which the hardware
** prefetcher follows) and, 16 at a time, widened to fp32 and multiplied
** into every x row (up to 4 rows held in registers at once): per group the
** products are summed unscaled, then the group sum is scaled and added, so
** a row costs one multiply per group more than fp32 and a quarter of the
** memory traffic. The AVX-512 loop runs when the CPU has it (cpu.h); the
** portable loop computes the same sums in another order (both within fp32
** rounding of the exact dequantized product).
*/
#include "gemv_w8.h"

#include "cpu.h"
#include "jobs.h"

#include <math.h>
#include <string.h>

#define W8_MIN_WORK ((double)(1 << 18)) /* multiply-adds per job at least */
#define W8_ROWS 4                       /* x rows per pass over a weight row */

void ram_w8_sizes(int n, int k, size_t *code_bytes, size_t *scale_floats)
{
    *code_bytes = *scale_floats = 0;
    if (n < 1 || k < 1) return;
    const size_t groups = ((size_t)k + RAM_W8_GROUP - 1) / RAM_W8_GROUP;
    if ((size_t)n > SIZE_MAX / (size_t)k || (size_t)n > SIZE_MAX / sizeof(float) / groups) return;
    *code_bytes = (size_t)n * (size_t)k;
    *scale_floats = (size_t)n * groups;
}

void ram_w8_quantize(const float *W, int n, int k, int8_t *codes, float *scales)
{
    const int groups = (k + RAM_W8_GROUP - 1) / RAM_W8_GROUP;
    for (int o = 0; o < n; o++)
        for (int g = 0; g < groups; g++) {
            const int k0 = g * RAM_W8_GROUP, k1 = k0 + RAM_W8_GROUP < k ? k0 + RAM_W8_GROUP : k;
            const float *w = W + (size_t)o * k;
            float mx = 0;
            for (int i = k0; i < k1; i++) mx = fabsf(w[i]) > mx ? fabsf(w[i]) : mx;
            const float s = mx / 127.0f;
            scales[(size_t)o * groups + g] = s;
            for (int i = k0; i < k1; i++) {
                long c = s > 0 ? lrintf(w[i] / s) : 0;
                codes[(size_t)o * k + i] = (int8_t)(c > 127 ? 127 : c < -127 ? -127 : c);
            }
        }
}

/* out[r] = sum over groups of scale * (x[r] . codes) for one weight row. */
static void row_portable(const float *x, int rows, int k, const int8_t *q, const float *s, float *out)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * k;
        float acc = 0;
        for (int k0 = 0, g = 0; k0 < k; k0 += RAM_W8_GROUP, g++) {
            const int k1 = k0 + RAM_W8_GROUP < k ? k0 + RAM_W8_GROUP : k;
            float ga = 0;
            for (int i = k0; i < k1; i++) ga += xr[i] * (float)q[i];
            acc += ga * s[g];
        }
        out[r] = acc;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define W8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* Four x rows at once, in registers (rows < 4: the missing ones repeat row
** 0 and their sums are dropped; a variable row count would keep the
** accumulators in memory). */
W8_TARGET static void row_avx512(const float *x, int rows, int k, const int8_t *q, const float *s, float *out)
{
    const float *x0 = x, *x1 = rows > 1 ? x + k : x, *x2 = rows > 2 ? x + 2 * (size_t)k : x,
                *x3 = rows > 3 ? x + 3 * (size_t)k : x;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k0 = 0, g = 0; k0 < k; k0 += RAM_W8_GROUP, g++) {
        const int k1 = k0 + RAM_W8_GROUP < k ? k0 + RAM_W8_GROUP : k;
        __m512 g0 = _mm512_setzero_ps(), g1 = g0, g2 = g0, g3 = g0;
        int i = k0;
        for (; i + 16 <= k1; i += 16) {
            const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i))));
            g0 = _mm512_fmadd_ps(_mm512_loadu_ps(x0 + i), w, g0);
            g1 = _mm512_fmadd_ps(_mm512_loadu_ps(x1 + i), w, g1);
            g2 = _mm512_fmadd_ps(_mm512_loadu_ps(x2 + i), w, g2);
            g3 = _mm512_fmadd_ps(_mm512_loadu_ps(x3 + i), w, g3);
        }
        if (i < k1) {
            const __mmask16 m = (__mmask16)((1u << (k1 - i)) - 1);
            const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + i)));
            g0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x0 + i), w, g0);
            g1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x1 + i), w, g1);
            g2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x2 + i), w, g2);
            g3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x3 + i), w, g3);
        }
        const __m512 sc = _mm512_set1_ps(s[g]);
        a0 = _mm512_fmadd_ps(g0, sc, a0), a1 = _mm512_fmadd_ps(g1, sc, a1);
        a2 = _mm512_fmadd_ps(g2, sc, a2), a3 = _mm512_fmadd_ps(g3, sc, a3);
    }
    const float v[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2),
                        _mm512_reduce_add_ps(a3)};
    for (int r = 0; r < rows; r++) out[r] = v[r];
}
#endif

struct w8_job {
    const float *x, *b;
    const struct ram_w8 *w;
    float *y;
    int rows, o0, o1, avx512;
};

static void *w8_job_run(void *arg)
{
    const struct w8_job *j = arg;
    const int k = j->w->k, n = j->w->n, groups = (k + RAM_W8_GROUP - 1) / RAM_W8_GROUP;
    float v[W8_ROWS];
    for (int o = j->o0; o < j->o1; o++) {
        const int8_t *q = j->w->codes + (size_t)o * k;
        const float *s = j->w->scales + (size_t)o * groups;
        for (int r0 = 0; r0 < j->rows; r0 += W8_ROWS) {
            const int nr = j->rows - r0 < W8_ROWS ? j->rows - r0 : W8_ROWS;
            const float *x = j->x + (size_t)r0 * k;
#if defined(__x86_64__) || defined(__i386__)
            if (j->avx512)
                row_avx512(x, nr, k, q, s, v);
            else
#endif
                row_portable(x, nr, k, q, s, v);
            for (int r = 0; r < nr; r++) j->y[(size_t)(r0 + r) * n + o] = v[r] + (j->b ? j->b[o] : 0.0f);
        }
    }
    return NULL;
}

void ram_w8_linear(const float *x, int rows, const struct ram_w8 *w, const float *b, float *y)
{
    if (rows <= 0 || w->n <= 0 || w->k <= 0) return;
    struct w8_job base = {x, b, w, y, rows, 0, w->n, ram_cpu_isa() == RAM_ISA_AVX512}, jobs[RAM_MAX_JOBS];
    const int T = ram_job_count((double)rows * w->n * w->k, W8_MIN_WORK, (w->n + 15) / 16);
    if (T <= 1) {
        w8_job_run(&base);
        return;
    }
    for (int t = 0; t < T; t++) {
        jobs[t] = base;
        jobs[t].o0 = (int)((long)w->n * t / T);
        jobs[t].o1 = (int)((long)w->n * (t + 1) / T);
    }
    ram_run_jobs(w8_job_run, jobs, sizeof jobs[0], T);
}
