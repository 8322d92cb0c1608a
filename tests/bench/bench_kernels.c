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
**
** bf16: the forward's linear layers through ram_bf16_linear (the tagging
** decoder in its 768-row chunks, RAM_TAGGER_CHUNK), once as the plain bf16
** path runs them and once as the accurate mix does (Swin bf16x2, decoder
** bf16x3), against the bf16 peak of the kernel they run on (AMX tiles where
** granted, else vdpbf16ps), measured in the same round. Rates count the
** multiply-adds issued (a bf16x2 layer issues two per weight).
*/
#include "bench_util.h"
#include "cpu.h"
#include "gemm_bf16.h"
#include "jobs.h"
#include "scratch.h"
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

/* The forward's bf16 linear layers: M x N x K, times per forward, and the
** form the accurate mix gives them (1 bf16x2, 3 bf16x3). Decoder layer 0's
** attention output stays fp32 in both bf16 paths, so it counts 6 (layer 1). */
struct bshape {
    const char *name;
    int M, N, K, per_forward, acc;
};
static const struct bshape bshapes[] = {
    {"swin1_qkv", 9216, 576, 192, 2, 1},  {"swin1_proj", 9216, 192, 192, 2, 1},  {"swin1_fc1", 9216, 768, 192, 2, 1},
    {"swin1_fc2", 9216, 192, 768, 2, 1},  {"swin2_qkv", 2304, 1152, 384, 2, 1},  {"swin2_proj", 2304, 384, 384, 2, 1},
    {"swin2_fc1", 2304, 1536, 384, 2, 1}, {"swin2_fc2", 2304, 384, 1536, 2, 1},  {"swin3_qkv", 576, 2304, 768, 18, 1},
    {"swin3_proj", 576, 768, 768, 18, 1}, {"swin3_fc1", 576, 3072, 768, 18, 1},  {"swin3_fc2", 576, 768, 3072, 18, 1},
    {"swin4_qkv", 144, 4608, 1536, 2, 1}, {"swin4_proj", 144, 1536, 1536, 2, 1}, {"swin4_fc1", 144, 6144, 1536, 2, 1},
    {"swin4_fc2", 144, 1536, 6144, 2, 1}, {"dec_q", 768, 768, 768, 12, 3},       {"dec_ao", 768, 768, 768, 6, 3},
    {"dec_ffn1", 768, 3072, 768, 12, 3},  {"dec_ffn2", 768, 768, 3072, 12, 3},
};
enum { NBSHAPES = sizeof bshapes / sizeof bshapes[0] };

/* Multiply-adds issued per second (G) by one layer in form mode (0 plain,
** 1 bf16x2, 3 bf16x3), best of a few calls, timed like the sgemm below. */
static double bf16_gmacs(const struct bshape *s, int mode, const uint16_t *hi, const uint16_t *lo, const float *x,
                         float *y, int T)
{
    struct ram_bf16_weight w = {s->N, s->K, hi, mode & 1 ? lo : NULL, mode >> 1};
    struct ram_error err;
    struct ram_scratch sc = {0}; /* reused across the calls, as a state's is across a forward's products */
    double best = 1e30, total = 0;
    if (ram_bf16_linear(x, s->M, &w, NULL, y, &sc, &err)) return 0;
    for (int r = 0; r < 10 && (r < 2 || total < 0.05); r++) {
        double t = peak_now(T);
        ram_bf16_linear(x, s->M, &w, NULL, y, &sc, &err);
        t = peak_now(T) - t;
        total += t;
        if (t < best) best = t;
    }
    ram_scratch_free(&sc);
    return (double)s->M * s->N * s->K * (mode == 0 ? 1 : mode == 3 ? 3 : 2) / best * 1e-9;
}

/* Each layer plain and in the mix's form, per round against the bf16 peak
** (FLOP/s = 2 x multiply-adds/s); prints per-layer GFLOP/s and the forward's
** mix of each path as a fraction of that peak. */
static int bf16_section(int rounds, const int *tcounts, const float *A, float *C)
{
    const int pk_kind = peak_supported(PEAK_AMX_BF16) ? PEAK_AMX_BF16 : PEAK_BF16;
    if (!peak_supported(pk_kind)) return 0;
    uint16_t *hi[NBSHAPES], *lo[NBSHAPES];
    for (int s = 0; s < NBSHAPES; s++) {
        size_t nb = ram_bf16_packed_bytes(bshapes[s].N, bshapes[s].K), nw = (size_t)bshapes[s].N * bshapes[s].K;
        float *W = malloc(nw * sizeof(float));
        hi[s] = malloc(nb), lo[s] = malloc(nb);
        if (!W || !hi[s] || !lo[s]) return 1;
        for (size_t i = 0; i < nw; i++) W[i] = (float)((i * 5) % 13) * 0.02f - 0.12f;
        ram_bf16_pack(W, bshapes[s].N, bshapes[s].K, hi[s]);
        ram_bf16_pack_lo(W, bshapes[s].N, bshapes[s].K, lo[s]);
        free(W);
    }
    printf("bf16_peak_kind %s\n", peak_name[pk_kind]);
    for (int ti = 0; ti < 2; ti++) {
        const int T = tcounts[ti];
        ram_jobs_set_threads(T);
        static double g[2][NBSHAPES][50], mixf[2][50];
        for (int r = 0; r < rounds; r++) {
            const double pk = peak(pk_kind, T);
            for (int path = 0; path < 2; path++) { /* 0 plain, 1 the accurate mix */
                double flop = 0, sec = 0;
                for (int s = 0; s < NBSHAPES; s++) {
                    const int mode = path ? bshapes[s].acc : 0;
                    g[path][s][r] = 2 * bf16_gmacs(&bshapes[s], mode, hi[s], lo[s], A, C, T);
                    const double fl =
                        2.0 * bshapes[s].M * bshapes[s].N * bshapes[s].K * bshapes[s].per_forward * (mode ? mode : 1);
                    if (g[path][s][r] > 0) flop += fl, sec += fl / (g[path][s][r] * 1e9);
                }
                mixf[path][r] = sec > 0 ? flop / sec * 1e-9 / pk : 0;
            }
        }
        for (int path = 0; path < 2; path++) {
            const char *pn = path ? "acc" : "plain";
            for (int s = 0; s < NBSHAPES; s++)
                printf("bf16_%s_%s_gflops_%dt %.1f\n", bshapes[s].name, pn, T, bench_median(g[path][s], rounds));
            printf("bf16_forward_mix_%s_fraction_%dt %.3f\n", pn, T, bench_median(mixf[path], rounds));
        }
    }
    for (int s = 0; s < NBSHAPES; s++) free(hi[s]), free(lo[s]);
    return 0;
}

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
    for (int s = 0; s < NBSHAPES; s++) { /* the bf16 section's rows and outputs */
        size_t a = (size_t)bshapes[s].M * bshapes[s].K, c = (size_t)bshapes[s].M * bshapes[s].N;
        if (a > maxa) maxa = a;
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
    int rc = bf16_section(rounds, tcounts, A, C);
    free(A), free(B), free(C);
    return rc;
}
