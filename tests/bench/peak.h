/*
** peak.h — the measured peaks of this CPU, shared by the benchmarks:
** register-only loops of 12 independent multiply-add chains (more than
** latency x ports on any current core) at each width the CPU runs: fp32 FMA
** at 512 and 256 bits, int8 vpdpbusd (VNNI), bf16 vdpbf16ps, and, where the
** kernel grants this process the AMX tiles, tdpbf16ps and tdpbusd on six
** accumulator tiles (register-only too: no tile load in the loop; six
** chains cover the instruction's latency over its issue interval). peak(kind, T)
** runs T copies at once through the job pool and returns G(FL)OP/s, a
** multiply-add counted as 2.
*/
#ifndef RAM_BENCH_PEAK_H
#define RAM_BENCH_PEAK_H

#include "cpu.h"
#include "gemm_bf16.h"
#include "jobs.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* One thread: its CPU time (the loop never blocks, so this is what an idle
** core gives, however busy the machine is); several: wall time. */
static double peak_now(int threads)
{
    struct timespec t;
    clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- peak loops: 12 independent chains, n iterations; returns a value so nothing is dropped ---- */
enum { PEAK_FMA512, PEAK_FMA256, PEAK_VNNI, PEAK_BF16, PEAK_AMX_BF16, PEAK_AMX_INT8, PEAKS };
static const char *const peak_name[PEAKS] = {"fma512", "fma256", "vnni", "bf16", "amx_bf16", "amx_int8"};
/* ops per iteration: AMX, 6 tile products of 16 x 16 outputs over 32 bf16 or 64 int8 pairs */
static const double peak_ops[PEAKS] = {12 * 32, 12 * 16, 12 * 128, 12 * 64, 6 * 16 * 16 * 32 * 2, 6 * 16 * 16 * 64 * 2};
/* "gops" (integer) or "gflops" in the printed key */
static inline const char *peak_unit(int p) { return p == PEAK_VNNI || p == PEAK_AMX_INT8 ? "gops" : "gflops"; }

__attribute__((target("avx512f"))) static float loop_fma512(long n)
{
    /* distinct starting values: equal chains would be merged by the compiler */
    __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f), a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1),
           a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
           a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8), a9 = _mm512_set1_ps(9),
           a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    for (long i = 0; i < n; i++) {
        a0 = _mm512_fmadd_ps(a0, x, y), a1 = _mm512_fmadd_ps(a1, x, y), a2 = _mm512_fmadd_ps(a2, x, y);
        a3 = _mm512_fmadd_ps(a3, x, y), a4 = _mm512_fmadd_ps(a4, x, y), a5 = _mm512_fmadd_ps(a5, x, y);
        a6 = _mm512_fmadd_ps(a6, x, y), a7 = _mm512_fmadd_ps(a7, x, y), a8 = _mm512_fmadd_ps(a8, x, y);
        a9 = _mm512_fmadd_ps(a9, x, y), a10 = _mm512_fmadd_ps(a10, x, y), a11 = _mm512_fmadd_ps(a11, x, y);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float loop_fma256(long n)
{
    __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f), a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1),
           a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
           a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9),
           a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    for (long i = 0; i < n; i++) {
        a0 = _mm256_fmadd_ps(a0, x, y), a1 = _mm256_fmadd_ps(a1, x, y), a2 = _mm256_fmadd_ps(a2, x, y);
        a3 = _mm256_fmadd_ps(a3, x, y), a4 = _mm256_fmadd_ps(a4, x, y), a5 = _mm256_fmadd_ps(a5, x, y);
        a6 = _mm256_fmadd_ps(a6, x, y), a7 = _mm256_fmadd_ps(a7, x, y), a8 = _mm256_fmadd_ps(a8, x, y);
        a9 = _mm256_fmadd_ps(a9, x, y), a10 = _mm256_fmadd_ps(a10, x, y), a11 = _mm256_fmadd_ps(a11, x, y);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[7];
}

__attribute__((target("avx512f,avx512vnni"))) static float loop_vnni(long n)
{
    __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(2), a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1),
            a2 = _mm512_set1_epi32(2), a3 = _mm512_set1_epi32(3), a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5),
            a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7), a8 = _mm512_set1_epi32(8), a9 = _mm512_set1_epi32(9),
            a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
    for (long i = 0; i < n; i++) {
        a0 = _mm512_dpbusd_epi32(a0, x, y), a1 = _mm512_dpbusd_epi32(a1, x, y), a2 = _mm512_dpbusd_epi32(a2, x, y);
        a3 = _mm512_dpbusd_epi32(a3, x, y), a4 = _mm512_dpbusd_epi32(a4, x, y), a5 = _mm512_dpbusd_epi32(a5, x, y);
        a6 = _mm512_dpbusd_epi32(a6, x, y), a7 = _mm512_dpbusd_epi32(a7, x, y), a8 = _mm512_dpbusd_epi32(a8, x, y);
        a9 = _mm512_dpbusd_epi32(a9, x, y), a10 = _mm512_dpbusd_epi32(a10, x, y);
        a11 = _mm512_dpbusd_epi32(a11, x, y);
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                 _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
    return (float)_mm512_reduce_add_epi32(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float loop_bf16(long n)
{
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3),
           a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5), a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7),
           a8 = _mm512_set1_ps(8), a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80); /* bf16 1.0 */
    for (long i = 0; i < n; i++) {
        a0 = _mm512_dpbf16_ps(a0, b, b), a1 = _mm512_dpbf16_ps(a1, b, b), a2 = _mm512_dpbf16_ps(a2, b, b);
        a3 = _mm512_dpbf16_ps(a3, b, b), a4 = _mm512_dpbf16_ps(a4, b, b), a5 = _mm512_dpbf16_ps(a5, b, b);
        a6 = _mm512_dpbf16_ps(a6, b, b), a7 = _mm512_dpbf16_ps(a7, b, b), a8 = _mm512_dpbf16_ps(a8, b, b);
        a9 = _mm512_dpbf16_ps(a9, b, b), a10 = _mm512_dpbf16_ps(a10, b, b), a11 = _mm512_dpbf16_ps(a11, b, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

/* AMX: tiles 0-5 accumulate, 6 and 7 are the (zero) operands; the tile
** configuration is this thread's and released at the end. */
struct peak_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

static void peak_tiles(struct peak_tilecfg *c)
{
    memset(c, 0, sizeof *c);
    c->palette = 1;
    for (int t = 0; t < 8; t++) c->colsb[t] = 64, c->rows[t] = 16;
}

__attribute__((target("amx-tile,amx-bf16"))) static float loop_amx_bf16(long n)
{
    struct peak_tilecfg c;
    float out[256];
    peak_tiles(&c);
    _tile_loadconfig(&c);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (long i = 0; i < n; i++) {
        _tile_dpbf16ps(0, 6, 7);
        _tile_dpbf16ps(1, 6, 7);
        _tile_dpbf16ps(2, 6, 7);
        _tile_dpbf16ps(3, 6, 7);
        _tile_dpbf16ps(4, 6, 7);
        _tile_dpbf16ps(5, 6, 7);
    }
    _tile_stored(5, out, 64);
    _tile_release();
    return out[0];
}

__attribute__((target("amx-tile,amx-int8"))) static float loop_amx_int8(long n)
{
    struct peak_tilecfg c;
    int32_t out[256];
    peak_tiles(&c);
    _tile_loadconfig(&c);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (long i = 0; i < n; i++) {
        _tile_dpbusd(0, 6, 7);
        _tile_dpbusd(1, 6, 7);
        _tile_dpbusd(2, 6, 7);
        _tile_dpbusd(3, 6, 7);
        _tile_dpbusd(4, 6, 7);
        _tile_dpbusd(5, 6, 7);
    }
    _tile_stored(5, out, 64);
    _tile_release();
    return (float)out[0];
}

static int peak_supported(int p)
{
    switch (p) {
    case PEAK_FMA512: return ram_cpu_supports(RAM_ISA_AVX512);
    case PEAK_FMA256: return ram_cpu_supports(RAM_ISA_AVX2);
    case PEAK_VNNI: return ram_cpu_supports(RAM_ISA_AVX512) && __builtin_cpu_supports("avx512vnni");
    case PEAK_AMX_BF16: return ram_amx_usable(RAM_AMX_BF16);
    case PEAK_AMX_INT8: return ram_amx_usable(RAM_AMX_INT8);
    default: return ram_cpu_supports(RAM_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
    }
}

struct peak_job {
    int kind;
    long n;
    float out;
};

static void *peak_run(void *arg)
{
    struct peak_job *j = arg;
    switch (j->kind) {
    case PEAK_FMA512: j->out = loop_fma512(j->n); break;
    case PEAK_FMA256: j->out = loop_fma256(j->n); break;
    case PEAK_VNNI: j->out = loop_vnni(j->n); break;
    case PEAK_AMX_BF16: j->out = loop_amx_bf16(j->n); break;
    case PEAK_AMX_INT8: j->out = loop_amx_int8(j->n); break;
    default: j->out = loop_bf16(j->n); break;
    }
    return NULL;
}

static volatile float peak_sink;

/* G(FL)OP/s of peak loop kind on T threads (one job per thread; best of 3 ~20 ms runs). */
static double peak(int kind, int T)
{
    struct peak_job jobs[RAM_MAX_JOBS];
    long n = kind >= PEAK_AMX_BF16 ? 300000 : 2000000; /* ~10 ms at full speed */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        for (int t = 0; t < T; t++) jobs[t] = (struct peak_job){kind, n, 0};
        double t0 = peak_now(T);
        ram_run_jobs(peak_run, jobs, sizeof jobs[0], T);
        double dt = peak_now(T) - t0;
        for (int t = 0; t < T; t++) peak_sink += jobs[t].out;
        double g = peak_ops[kind] * n * T / dt * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

/* The widest fp32 FMA loop this CPU runs: the fp32 peak. */
static int peak_fp32_kind(void) { return peak_supported(PEAK_FMA512) ? PEAK_FMA512 : PEAK_FMA256; }

#endif /* RAM_BENCH_PEAK_H */
