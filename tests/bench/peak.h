/*
** peak.h — the measured peaks of this CPU, shared by the benchmarks:
** register-only loops of 12 independent multiply-add chains (more than
** latency x ports on any current core) at each width the CPU runs: fp32 FMA
** at 512 and 256 bits, int8 vpdpbusd (VNNI), bf16 vdpbf16ps. peak(kind, T)
** runs T copies at once through the job pool and returns G(FL)OP/s, a
** multiply-add counted as 2.
*/
#ifndef RAM_BENCH_PEAK_H
#define RAM_BENCH_PEAK_H

#include "cpu.h"
#include "jobs.h"

#include <immintrin.h>
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
enum { PEAK_FMA512, PEAK_FMA256, PEAK_VNNI, PEAK_BF16, PEAKS };
static const char *const peak_name[PEAKS] = {"fma512", "fma256", "vnni", "bf16"};
static const double peak_ops[PEAKS] = {12 * 32, 12 * 16, 12 * 128, 12 * 64}; /* ops per iteration */

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

static int peak_supported(int p)
{
    switch (p) {
    case PEAK_FMA512: return ram_cpu_supports(RAM_ISA_AVX512);
    case PEAK_FMA256: return ram_cpu_supports(RAM_ISA_AVX2);
    case PEAK_VNNI: return ram_cpu_supports(RAM_ISA_AVX512) && __builtin_cpu_supports("avx512vnni");
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
    default: j->out = loop_bf16(j->n); break;
    }
    return NULL;
}

static volatile float peak_sink;

/* G(FL)OP/s of peak loop kind on T threads (one job per thread; best of 3 ~20 ms runs). */
static double peak(int kind, int T)
{
    struct peak_job jobs[RAM_MAX_JOBS];
    long n = 2000000; /* ~10 ms at full speed */
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
