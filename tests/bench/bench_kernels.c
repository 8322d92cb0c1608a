/*
** bench_kernels.c — the machine's measured peaks and our kernels against them.
**
**     build/bench/bench_kernels [ROUNDS]      # default 3; prints "key value" lines
**
** Peaks: a register-only loop of independent multiply-adds (12 chains, more
** than latency x ports on any current core) at each vector width the CPU
** runs: fp32 FMA at 512 and 256 bits, int8 vpdpbusd (VNNI) and bf16
** vdpbf16ps when present; on 1 thread and on every CPU at once (through
** the job pool). FLOPs count a multiply-add as 2; int8 "ops" likewise.
**
** sgemm: the products of the full-size RAM++ forward (Swin-L at 384 px,
** the tagging decoder's 4,585 queries, the CLIP text tower's 77 tokens) and
** a 2048^3 square, through each path this CPU runs (our kernels per
** instruction set, and OpenBLAS as loaded: its kernel is whatever
** OPENBLAS_CORETYPE or its own detection chose, printed as
** openblas_core). The machine is shared: each round measures the peak and
** then every path on every shape, and the fractions are per-round ratios
** (medians over rounds), so that a busy minute hits both alike.
*/
#include "bench_util.h"
#include "cpu.h"
#include "jobs.h"
#include "sgemm.h"

#include "peak.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char *openblas_get_corename(void);

/* ---- the products of the forward ---- */
struct shape {
    const char *name;
    int M, N, K, tB;
};
static const struct shape shapes[] = {
    {"swin1_qkv", 9216, 576, 192, 1},  {"swin1_proj", 9216, 192, 192, 1},   {"swin1_fc1", 9216, 768, 192, 1},
    {"swin1_fc2", 9216, 192, 768, 1},  {"swin2_qkv", 2304, 1152, 384, 1},   {"swin2_fc1", 2304, 1536, 384, 1},
    {"swin2_fc2", 2304, 384, 1536, 1}, {"merge1", 2304, 384, 768, 1},       {"swin3_qkv", 576, 2304, 768, 1},
    {"swin3_proj", 576, 768, 768, 1},  {"swin3_fc1", 576, 3072, 768, 1},    {"swin3_fc2", 576, 768, 3072, 1},
    {"swin4_qkv", 144, 4608, 1536, 1}, {"swin4_fc1", 144, 6144, 1536, 1},   {"swin4_fc2", 144, 1536, 6144, 1},
    {"dec_q", 4585, 768, 768, 1},      {"dec_ffn1", 4585, 3072, 768, 1},    {"dec_ffn2", 4585, 768, 3072, 1},
    {"dec_scores", 4585, 145, 192, 1}, {"dec_context", 4585, 192, 145, 0},  {"wordvec", 4585, 768, 512, 1},
    {"clip_fc", 77, 2048, 512, 1},     {"square2048", 2048, 2048, 2048, 1},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };
/* How often each product runs per forward (Swin-L depths 2, 2, 18, 2; 2 decoder layers, 4 heads). */
static const int per_forward[NSHAPES] = {2, 2, 2, 2, 2, 2, 2, 1, 18, 18, 18, 18, 2, 2, 2, 2, 2, 2, 8, 8, 1, 0, 0};

/* Timed like the peak (peak.h): at 1 thread in the calling thread's CPU time
** (a 1-job product runs entirely in it), at 2 in wall time. */
static double gemm_gflops(int path, const struct shape *s, const float *A, const float *B, float *C, int T)
{
    double flop = 2.0 * s->M * s->N * s->K, best = 1e30, total = 0;
    ram_sgemm_on(path, 0, s->tB, s->M, s->N, s->K, 1.0f, A, s->K, B, s->tB ? s->K : s->N, 0.0f, C, s->N, NULL);
    for (int r = 0; r < 10 && (r < 2 || total < 0.05); r++) {
        double t = peak_now(T);
        ram_sgemm_on(path, 0, s->tB, s->M, s->N, s->K, 1.0f, A, s->K, B, s->tB ? s->K : s->N, 0.0f, C, s->N, NULL);
        t = peak_now(T) - t;
        total += t;
        if (t < best) best = t;
    }
    return flop / best * 1e-9;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    if (rounds < 1 || rounds > 50) rounds = 3;
    int cpus = ram_jobs_cpu_count(), tcounts[2] = {1, cpus >= 2 ? 2 : 1};
    printf("cpu_model %s\ncpus %d\nisa %s\nsgemm_default %s\nopenblas_core %s\n",
           ram_cpu_model()[0] ? ram_cpu_model() : "?", cpus, ram_cpu_isa_name(ram_cpu_isa()),
           ram_sgemm_path_name(ram_sgemm_default()), openblas_get_corename());

    /* peaks */
    for (int p = 0; p < PEAKS; p++) {
        if (!peak_supported(p)) continue;
        for (int ti = 0; ti < 2; ti++) {
            double v[50];
            for (int r = 0; r < rounds; r++) v[r] = peak(p, tcounts[ti]);
            printf("peak_%s_%s_%dt %.1f\n", peak_name[p], peak_unit(p), tcounts[ti], bench_median(v, rounds));
        }
    }
    int fp32_peak = peak_fp32_kind();
    printf("peak_fp32_kind %s\n", peak_name[fp32_peak]);

    /* products */
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int s = 0; s < NSHAPES; s++) {
        size_t a = (size_t)shapes[s].M * shapes[s].K, b = (size_t)shapes[s].N * shapes[s].K,
               c = (size_t)shapes[s].M * shapes[s].N;
        if (a > maxa) maxa = a;
        if (b > maxb) maxb = b;
        if (c > maxc) maxc = c;
    }
    float *A = malloc(maxa * 4), *B = malloc(maxb * 4), *C = malloc(maxc * 4);
    if (!A || !B || !C) return 1;
    for (size_t i = 0; i < maxa; i++) A[i] = (float)((i * 7) % 17) * 0.01f - 0.08f;
    for (size_t i = 0; i < maxb; i++) B[i] = (float)((i * 5) % 13) * 0.02f - 0.12f;
    memset(C, 0, maxc * 4);
    int paths[RAM_SGEMM_PATHS], np = 0;
    for (int p = RAM_SGEMM_AVX2; p < RAM_SGEMM_PATHS; p++)
        if (ram_sgemm_path_available(p)) paths[np++] = p;
    for (int ti = 0; ti < 2; ti++) {
        int T = tcounts[ti];
        ram_jobs_set_threads(T);
        static double g[RAM_SGEMM_PATHS][NSHAPES][50], f[RAM_SGEMM_PATHS][NSHAPES][50], mixf[RAM_SGEMM_PATHS][50];
        for (int r = 0; r < rounds; r++) {
            double pk = peak(fp32_peak, T);
            for (int pi = 0; pi < np; pi++) {
                double flop = 0, sec = 0;
                for (int s = 0; s < NSHAPES; s++) {
                    g[pi][s][r] = gemm_gflops(paths[pi], &shapes[s], A, B, C, T);
                    f[pi][s][r] = g[pi][s][r] / pk;
                    double fl = 2.0 * shapes[s].M * shapes[s].N * shapes[s].K * per_forward[s];
                    flop += fl, sec += fl / (g[pi][s][r] * 1e9);
                }
                mixf[pi][r] = flop / sec * 1e-9 / pk;
            }
        }
        for (int pi = 0; pi < np; pi++) {
            const char *pn = ram_sgemm_path_name(paths[pi]);
            for (int s = 0; s < NSHAPES; s++) {
                printf("sgemm_%s_%s_gflops_%dt %.1f\n", shapes[s].name, pn, T, bench_median(g[pi][s], rounds));
                printf("sgemm_%s_%s_fraction_%dt %.3f\n", shapes[s].name, pn, T, bench_median(f[pi][s], rounds));
            }
            /* the forward's products weighted by their FLOPs: the figure that matters */
            printf("sgemm_forward_mix_%s_fraction_%dt %.3f\n", pn, T, bench_median(mixf[pi], rounds));
        }
    }
    free(A), free(B), free(C);
    return 0;
}
