/*
** test_ops.c — every kernel of the op layer against a double-precision
** reference on odd shapes: the sgemm paths (each instruction set this CPU
** runs, the portable one, OpenBLAS), LayerNorm, softmax, GELU, QuickGELU,
** the attention head, RAM++'s reweighting, add, dot, the few-rows and
** weight-only int8 linear layers; results at 1 and 2
** threads bit-identical per path; the run-time dispatch and its override;
** and the job pool: two callers at once never start more workers than the
** CPUs allow, and no thread is created per call.
*/
#include "cpu.h"
#include "gemv_w8.h"
#include "internal.h"
#include "jobs.h"
#include "ops.h"
#include "sgemm.h"

#include "harness.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) / (double)(1 << 23)) - 1.0f;
}
static float *rand_buf(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* ---- sgemm ---- */
struct gcase {
    int tA, tB, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    int bias;
};

/* Worst |C - ref| / bound over the case, where bound is the size of the
** fp32 rounding error allowed: (K + 3) ulps of the sum of |terms|. */
static double gemm_err(enum ram_sgemm_path path, const struct gcase *g)
{
    int Ar = g->tA ? g->K : g->M, Ac = g->tA ? g->M : g->K, Br = g->tB ? g->N : g->K, Bc = g->tB ? g->K : g->N;
    float *A = rand_buf((size_t)Ar * g->lda), *B = rand_buf((size_t)Br * g->ldb);
    float *C = rand_buf((size_t)g->M * g->ldc), *C0 = malloc(sizeof(float) * g->M * g->ldc);
    float *bias = g->bias ? rand_buf((size_t)g->N) : NULL;
    (void)Ac, (void)Bc;
    memcpy(C0, C, sizeof(float) * g->M * g->ldc);
    if (g->beta == 0.0f) /* C must not be read: poison it */
        for (int i = 0; i < g->M; i++)
            for (int j = 0; j < g->N; j++) C[(size_t)i * g->ldc + j] = NAN;
    ram_sgemm_on(path, g->tA, g->tB, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc, bias);
    double worst = 0;
    for (int i = 0; i < g->M; i++) {
        for (int j = 0; j < g->N; j++) {
            double s = 0, abs_s = 0;
            for (int k = 0; k < g->K; k++) {
                double a = g->tA ? A[(size_t)k * g->lda + i] : A[(size_t)i * g->lda + k];
                double b = g->tB ? B[(size_t)j * g->ldb + k] : B[(size_t)k * g->ldb + j];
                s += a * b, abs_s += fabs(a * b);
            }
            double c0 = C0[(size_t)i * g->ldc + j];
            double ref = g->alpha * s + (g->beta != 0.0f ? g->beta * c0 : 0) + (bias ? bias[j] : 0);
            double bound =
                (g->K + 3) * 1.2e-7 * (fabs(g->alpha) * abs_s + fabs(g->beta * c0) + (bias ? fabs(bias[j]) : 0)) +
                1e-30;
            double e = fabs(C[(size_t)i * g->ldc + j] - ref) / bound;
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
        for (int j = g->N; j < g->ldc; j++) /* padding beyond N untouched */
            if (memcmp(&C[(size_t)i * g->ldc + j], &C0[(size_t)i * g->ldc + j], sizeof(float))) worst = INFINITY;
    }
    free(A), free(B), free(C), free(C0), free(bias);
    return worst;
}

static void test_sgemm_path(enum ram_sgemm_path path)
{
    static const int dims[][3] = {{1, 1, 1},    {3, 17, 33},   {17, 3, 65},   {33, 65, 127}, {127, 33, 17},
                                  {65, 127, 3}, {15, 31, 257}, {29, 47, 300}, {1, 800, 40},  {20, 33, 513}};
    int n = 0, bad = 0;
    double worst = 0;
    char what[200] = "";
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int t = 0; t < 4; t++) {
            struct gcase g = {t & 1, t >> 1, dims[d][0], dims[d][1], dims[d][2], 0, 0, 0, 1.0f, 0.0f, 0};
            int pad = (int)(d % 3) * 3; /* leading dimensions wider than the rows */
            g.lda = (g.tA ? g.M : g.K) + pad, g.ldb = (g.tB ? g.K : g.N) + pad, g.ldc = g.N + pad + (int)(d & 1);
            int v = (int)(d * 4 + t) % 4; /* alpha / beta / bias variants */
            if (v == 1) g.beta = 1.0f;
            if (v == 2) g.alpha = 0.5f, g.beta = -0.75f;
            if (v == 3 || d == 8) g.bias = 1;
            double e = gemm_err(path, &g);
            n++;
            if (!(e <= 1.0)) {
                bad++;
                snprintf(what, sizeof what,
                         "tA %d tB %d M %d N %d K %d lda %d ldb %d ldc %d alpha %g beta %g bias %d: %.3g x bound", g.tA,
                         g.tB, g.M, g.N, g.K, g.lda, g.ldb, g.ldc, g.alpha, g.beta, g.bias, e);
            }
            if (e > worst) worst = e;
        }
    char name[80];
    snprintf(name, sizeof name, "sgemm_%s_vs_double", ram_sgemm_path_name(path));
    check(bad == 0, name, "%d of %d cases outside the fp32 bound, e.g. %s", bad, n, what);
}

/* A product big enough to be split over two jobs, at 1 and 2 threads: split
** by columns (the first two), and by rows as the tall narrow products are
** (the last two: at 2 threads fewer than 32 panels and 96 row blocks or more,
** one with a partial last tile, one at beta 1 over two K blocks). At 2 threads
** with equal vCPU speeds and with speeds pinned 1:3 and 3:1 (ranges of a
** quarter and three quarters: every cut is a tile boundary), and the fifth
** shape has 3 panels and 2 row blocks: its ranges are a tile or two. */
static void test_sgemm_threads(enum ram_sgemm_path path)
{
    static const int sh[][5] = {
        {300, 200, 300, 0, 1}, {40, 900, 120, 1, 0}, {2000, 40, 64, 0, 1}, {1237, 100, 300, 0, 1}, {20, 70, 800, 0, 1}};
    static const double skew[][2] = {{1, 1}, {0.5, 1.5}, {1.5, 0.5}};
    int same = 1;
    for (int s = 0; s < 5; s++) {
        int M = sh[s][0], N = sh[s][1], K = sh[s][2], tA = sh[s][3], tB = sh[s][4];
        float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)N * K), *bias = rand_buf((size_t)N);
        float *C[4];
        for (int t = 0; t < 4; t++) {
            C[t] = malloc(sizeof(float) * M * N);
            ram_jobs_set_threads(t ? 2 : 1);
            if (t) ram_jobs_speed_set(0, skew[t - 1][0]), ram_jobs_speed_set(1, skew[t - 1][1]);
            for (int i = 0; i < M * N; i++) C[t][i] = (float)(i % 5) - 2.0f;
            ram_sgemm_on(path, tA, tB, M, N, K, 1.0f, A, tA ? M : K, B, tB ? K : N, s == 3 ? 1.0f : 0.0f, C[t], N,
                         bias);
            if (t) same &= !memcmp(C[0], C[t], sizeof(float) * M * N);
        }
        ram_jobs_speed_set(-1, 0);
        ram_jobs_set_threads(0);
        free(A), free(B), free(bias);
        for (int t = 0; t < 4; t++) free(C[t]);
    }
    char name[80];
    snprintf(name, sizeof name, "sgemm_%s_threads_bit_identical", ram_sgemm_path_name(path));
    check(same, name, "1 and 2 threads (equal or skewed vCPU speeds) differ");
}

/* A whose rows are a multiple of 2 KB apart (lda 512 and 1024 floats) is
** copied block by block before the kernel reads it (L1 set conflicts,
** sgemm.c): the same bits as the same A at an odd lda, on full and partial
** row tiles, two K blocks, beta 0 and 1. */
static void test_sgemm_copied_rows(enum ram_sgemm_path path)
{
    enum { M = 37, N = 70, K = 300 };
    static const int wide[] = {512, 1024};
    float *B = rand_buf((size_t)N * K), *bias = rand_buf(N), *A0 = rand_buf((size_t)M * (K + 1));
    float *C0 = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N);
    int same = 1;
    for (int w = 0; w < 2; w++) {
        float *A1 = malloc(sizeof(float) * M * wide[w]);
        for (int i = 0; i < M; i++) memcpy(A1 + (size_t)i * wide[w], A0 + (size_t)i * (K + 1), sizeof(float) * K);
        for (int beta = 0; beta < 2; beta++) {
            for (int i = 0; i < M * N; i++) C0[i] = C1[i] = (float)(i % 7) - 3.0f;
            ram_sgemm_on(path, 0, 1, M, N, K, 1.0f, A0, K + 1, B, K, (float)beta, C0, N, bias);
            ram_sgemm_on(path, 0, 1, M, N, K, 1.0f, A1, wide[w], B, K, (float)beta, C1, N, bias);
            same &= !memcmp(C0, C1, sizeof(float) * M * N);
        }
        free(A1);
    }
    char name[80];
    snprintf(name, sizeof name, "sgemm_%s_copied_rows_same_bits", ram_sgemm_path_name(path));
    check(same, name, "A at lda 512 / 1024 gives other bits than at lda %d", K + 1);
    free(B), free(bias), free(A0), free(C0), free(C1);
}

/* A row's result does not depend on the rows computed with it: rows i0 ..
** i0+m-1 of a 50-row product (inside whole tiles) against the same rows
** alone, m = 1 .. 14 (the 4-row tile, the 12-row tile's padded end),
** unpacked and packed, with bias, beta 0 and 1. Tag2Text's verified decoding
** relies on it (its check of many steps gives each 3-row step's bits). */
static void test_sgemm_row_invariant(enum ram_sgemm_path path)
{
    enum { M = 50, N = 70, K = 300 };
    float *A = rand_buf((size_t)M * K), *W = rand_buf((size_t)N * K), *bias = rand_buf(N),
          *C0 = rand_buf((size_t)M * N);
    float *big = malloc(sizeof(float) * M * N), *part = malloc(sizeof(float) * M * N);
    struct ram_sgemm_packed P;
    ram_sgemm_pack_weights(W, N, K, &P);
    int bad = 0;
    for (int packed = 0; packed < 2; packed++)
        for (int beta = 0; beta < 2; beta++) {
            memcpy(big, C0, sizeof(float) * M * N);
            if (packed)
                ram_sgemm_packed(M, A, K, &P, (float)beta, big, N, bias);
            else
                ram_sgemm_on(path, 0, 1, M, N, K, 1.0f, A, K, W, K, (float)beta, big, N, bias);
            for (int m = 1; m <= 14; m++) {
                int i0 = 5 + m; /* not at a tile boundary */
                memcpy(part, C0, sizeof(float) * M * N);
                if (packed)
                    ram_sgemm_packed(m, A + (size_t)i0 * K, K, &P, (float)beta, part + (size_t)i0 * N, N, bias);
                else
                    ram_sgemm_on(path, 0, 1, m, N, K, 1.0f, A + (size_t)i0 * K, K, W, K, (float)beta,
                                 part + (size_t)i0 * N, N, bias);
                bad += memcmp(part + (size_t)i0 * N, big + (size_t)i0 * N, sizeof(float) * m * N) != 0;
            }
        }
    ram_sgemm_packed_free(&P);
    char name[80];
    snprintf(name, sizeof name, "sgemm_%s_rows_same_bits_alone", ram_sgemm_path_name(path));
    check(bad == 0, name, "%d of 56 row ranges differ from the same rows in a 50-row product", bad);
    free(A), free(W), free(bias), free(C0), free(big), free(part);
}

/* Weights packed once (ram_sgemm_packed): on each level the CPU runs, odd
** shapes, 1 and 2 threads, beta 0 and not, the same bits as ram_sgemm on the
** unpacked weights; panels made for one level and used under another fall
** back to the unpacked path (still the same bits as that level's). */
static void test_sgemm_packed(void)
{
    /* the last: more columns than one NC block, over three K blocks (the panels are stored by K block) */
    static const int sh[][3] = {{1, 1, 1}, {13, 33, 257}, {25, 70, 300}, {150, 97, 513}, {36, 64, 256}, {14, 800, 600}};
    enum ram_isa before = ram_cpu_isa();
    int bad = 0, packed = 0, cases = 0;
    for (int s = 0; s < 6; s++) {
        int M = sh[s][0], N = sh[s][1], K = sh[s][2], lda = K + 3, ldc = N + 1;
        float *A = rand_buf((size_t)M * lda), *W = rand_buf((size_t)N * K), *bias = rand_buf((size_t)N);
        float *C0 = rand_buf((size_t)M * ldc), *C1 = malloc(sizeof(float) * M * ldc),
              *C2 = malloc(sizeof(float) * M * ldc);
        for (int pi = 0; pi < RAM_ISA_COUNT; pi++) {
            if (!ram_cpu_force((enum ram_isa)pi)) continue;
            struct ram_sgemm_packed P;
            int got = ram_sgemm_pack_weights(W, N, K, &P);
            packed += got;
            bad += got != (ram_sgemm_default() != RAM_SGEMM_OPENBLAS);
            for (int ui = 0; ui < RAM_ISA_COUNT; ui++) { /* used under every level */
                if (!ram_cpu_force((enum ram_isa)ui)) continue;
                for (int t = 1; t <= 2; t++)
                    for (int b = 0; b < 2; b++) {
                        float beta = b ? 0.5f : 0.0f;
                        ram_jobs_set_threads(t);
                        memcpy(C1, C0, sizeof(float) * M * ldc), memcpy(C2, C0, sizeof(float) * M * ldc);
                        ram_sgemm_packed(M, A, lda, &P, beta, C1, ldc, b ? NULL : bias);
                        ram_sgemm(0, 1, M, N, K, 1.0f, A, lda, W, K, beta, C2, ldc, b ? NULL : bias);
                        bad += memcmp(C1, C2, sizeof(float) * M * ldc) != 0;
                        cases++;
                    }
                ram_jobs_set_threads(0);
            }
            ram_cpu_force((enum ram_isa)pi);
            ram_sgemm_packed_free(&P);
        }
        free(A), free(W), free(bias), free(C0), free(C1), free(C2);
    }
    ram_cpu_force(before);
    { /* no memory for the panels: nothing packed, the products still run (on W) */
        float W[6] = {1, 2, 3, 4, 5, 6}, A[3] = {1, -1, 2}, C[2];
        struct ram_sgemm_packed P;
        ram_alloc_fail_after(0);
        int got = ram_sgemm_pack_weights(W, 2, 3, &P);
        ram_alloc_fail_after(-1);
        ram_sgemm_packed(1, A, 3, &P, 0.0f, C, 2, NULL);
        bad += got || P.panels || C[0] != 5 || C[1] != 11;
        ram_sgemm_packed_free(&P);
    }
    int want = ram_sgemm_default() != RAM_SGEMM_OPENBLAS; /* RAM_SGEMM=openblas: nothing is packed */
    check(bad == 0 && (packed > 0) == want, "sgemm_packed_matches_unpacked_each_level",
          "%d of %d products differ (or a packing failed); %d packings", bad, cases, packed);
}

/* ram_linear_packed / ram_linear_invariant_packed: through W's packed
** handle, W's bits; a handle made for another matrix (W2's panels offered
** with W1) is not used, nor is NULL. */
static void test_linear_packed(void)
{
    enum { M = 25, N = 70, K = 300 };
    float *A = rand_buf((size_t)M * K), *W1 = rand_buf((size_t)N * K), *W2 = rand_buf((size_t)N * K), *b = rand_buf(N);
    float *c1 = malloc(sizeof(float) * M * N), *i1 = malloc(sizeof(float) * M * N), *c = malloc(sizeof(float) * M * N);
    ram_linear(A, M, K, W1, b, N, c1);
    ram_linear_invariant(A, M, K, W1, b, N, i1);
    struct ram_sgemm_packed P1, P2;
    int want = ram_sgemm_default() != RAM_SGEMM_OPENBLAS, ok = 1;
    int packed = ram_sgemm_pack_weights(W1, N, K, &P1) + ram_sgemm_pack_weights(W2, N, K, &P2);
    ok &= packed == 2 * want;
    const struct ram_sgemm_packed *handles[] = {&P1, &P2, NULL};
    for (int h = 0; h < 3; h++) {
        ram_linear_packed(A, M, K, W1, handles[h], b, N, c);
        ok &= !memcmp(c, c1, sizeof(float) * M * N);
        ram_linear_invariant_packed(A, M, K, W1, handles[h], b, N, c);
        ok &= !memcmp(c, i1, sizeof(float) * M * N);
    }
    ram_sgemm_packed_free(&P1), ram_sgemm_packed_free(&P2);
    check(ok, "linear_packed_uses_only_its_own_matrix", "packed %d (want %d)", packed, 2 * want);
    free(A), free(W1), free(W2), free(b), free(c1), free(i1), free(c);
}

/* The AVX-512 packer's register transposes against the generic one. */
static void test_pack(void)
{
    if (!ram_cpu_supports(RAM_ISA_AVX512)) {
        check(1, "sgemm_pack_avx512_matches_generic", "(no AVX-512 here)");
        return;
    }
    int ldb = 301, bad = 0;
    float *B = rand_buf((size_t)ldb * 90), *p1 = malloc(sizeof(float) * 300 * 96),
          *p2 = malloc(sizeof(float) * 300 * 96);
    for (int tB = 0; tB < 2; tB++)
        for (int kc = 1; kc <= 65; kc += 16)
            for (int nc = 1; nc <= 70; nc += 23) {
                ram_sgemm_kernel_avx512.pack_b(tB, B, ldb, 3, kc, 5, nc, 32, p1);
                ram_sgemm_pack_b_generic(tB, B, ldb, 3, kc, 5, nc, 32, p2);
                bad += memcmp(p1, p2, sizeof(float) * kc * ((nc + 31) / 32 * 32)) != 0;
            }
    check(bad == 0, "sgemm_pack_avx512_matches_generic", "%d packings differ", bad);
    free(B), free(p1), free(p2);
}

static void test_dispatch(void)
{
    enum ram_isa best = ram_cpu_best(), before = ram_cpu_isa();
    int ok = ram_cpu_supports(RAM_ISA_PORTABLE) && ram_cpu_supports(best);
    for (int i = 0; i < RAM_ISA_COUNT; i++) {
        int f = ram_cpu_force((enum ram_isa)i);
        ok &= f == ram_cpu_supports((enum ram_isa)i);
        if (f) ok &= ram_cpu_isa() == (enum ram_isa)i;
    }
    ram_cpu_force(before);
    const char *e = getenv("RAM_ISA");
    if (!e) ok &= before == best; /* no override: the widest the CPU runs */
    check(ok, "cpu_dispatch_and_override", "best %s, chosen %s", ram_cpu_isa_name(best), ram_cpu_isa_name(before));
    printf("note: this CPU runs %s (%s); default sgemm path %s\n", ram_cpu_isa_name(best), ram_cpu_model(),
           ram_sgemm_path_name(ram_sgemm_default()));
}

/* ram_gemm (the op the models call) through each forced level. */
static void test_gemm_forced(void)
{
    enum ram_isa before = ram_cpu_isa();
    int ok = 1;
    if (ram_sgemm_default() != RAM_SGEMM_OPENBLAS)
        for (int i = 0; i < RAM_ISA_COUNT; i++) {
            if (!ram_cpu_force((enum ram_isa)i)) continue;
            ok &= ram_sgemm_default() == (enum ram_sgemm_path)i;
            float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, -1, 2, 0.5f, 1}, C[4];
            ram_gemm(0, 1, 2, 2, 3, 1.0f, A, 3, B, 3, 0.0f, C, 2); /* [[1,2,3],[4,5,6]] @ [[1,0,-1],[2,.5,1]]^T */
            ok &= C[0] == -2 && C[1] == 6 && C[2] == -2 && C[3] == 16.5f;
        }
    ram_cpu_force(before);
    check(ok, "ram_gemm_each_forced_level", "wrong product or path");
}

/* ---- element-wise kernels (run once per instruction set: ram_cpu_force) ---- */
static const char *level = "";
static const char *nm(const char *base)
{
    static char buf[8][96];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 96, "%s_%s", base, level);
    return b;
}

/* The element-wise ops split over threads past 2^16 elements per thread:
** 1 and 2 threads must give the same bits at each level. */
static void test_ew_threads(void)
{
    const int rows = 1501, cols = 347;
    size_t n = (size_t)rows * cols;
    float *x = rand_buf(n), *r[2][5], *w = rand_buf(cols), *b = rand_buf(cols);
    for (int t = 0; t < 2; t++) {
        ram_jobs_set_threads(t + 1);
        for (int k = 0; k < 5; k++) r[t][k] = malloc(sizeof(float) * n), memcpy(r[t][k], x, sizeof(float) * n);
        ram_gelu(r[t][0], n);
        ram_quick_gelu(r[t][1], n);
        ram_add(r[t][2], x, n);
        ram_layernorm(x, r[t][3], rows, cols, w, b, 1e-5f);
        ram_softmax_rows(r[t][4], rows, cols);
    }
    ram_jobs_set_threads(0);
    int same = 1;
    for (int k = 0; k < 5; k++) same &= !memcmp(r[0][k], r[1][k], sizeof(float) * n);
    check(same, nm("elementwise_threads_bit_identical"), "1 and 2 threads differ");
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 5; k++) free(r[t][k]);
    free(x), free(w), free(b);
}
static void test_layernorm(void)
{
    static const int cols_list[] = {1, 3, 17, 33, 127, 768};
    double worst = 0;
    for (size_t c = 0; c < sizeof cols_list / sizeof cols_list[0]; c++) {
        int rows = 3, cols = cols_list[c];
        float *x = rand_buf((size_t)rows * cols), *y = malloc(sizeof(float) * rows * cols);
        float *w = rand_buf(cols), *b = rand_buf(cols);
        for (int i = 0; i < cols; i++) x[i] = 100.0f + x[i]; /* a row far from 0: the variance must not cancel */
        ram_layernorm(x, y, rows, cols, w, b, 1e-5f);
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * cols;
            double m = 0, v = 0;
            for (int i = 0; i < cols; i++) m += xr[i];
            m /= cols;
            for (int i = 0; i < cols; i++) v += (xr[i] - m) * (xr[i] - m);
            double inv = 1 / sqrt(v / cols + 1e-5);
            for (int i = 0; i < cols; i++) {
                double ref = (xr[i] - m) * inv * w[i] + b[i];
                /* the row's mean is rounded to float before the subtraction (as the official code's
                ** float32 LayerNorm does): allow its rounding on top of 1e-5 relative */
                double bound =
                    1e-5 * (fabs((xr[i] - m) * inv * w[i]) + fabs(b[i])) + 1.2e-7 * fabs(m) * inv * fabs(w[i]) + 1e-6;
                double e = fabs(y[(size_t)r * cols + i] - ref) / bound;
                if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
            }
        }
        free(x), free(y), free(w), free(b);
    }
    check(worst <= 1.0, nm("layernorm_vs_double"), "error %.3g x bound", worst);
}

static void test_softmax_gelu(void)
{
    static const int cols_list[] = {1, 3, 17, 33, 145};
    double worst = 0, worst_div = 0;
    for (size_t c = 0; c < sizeof cols_list / sizeof cols_list[0]; c++) {
        int rows = 6, cols = cols_list[c]; /* a block of four rows (ops_vec.h's softmax4) and two alone */
        float *x = rand_buf((size_t)rows * cols), *y = malloc(sizeof(float) * rows * cols),
              *y1 = malloc(sizeof(float) * rows * cols);
        for (int i = 0; i < rows * cols; i++) x[i] *= 30.0f; /* large logits: the max must be subtracted */
        memcpy(y, x, sizeof(float) * rows * cols);
        memcpy(y1, x, sizeof(float) * rows * cols);
        ram_softmax_rows(y, rows, cols);
        for (int r = 0; r < rows; r++) ram_softmax_rows(y1 + (size_t)r * cols, 1, cols);
        if (memcmp(y, y1, sizeof(float) * rows * cols))
            worst = INFINITY; /* a row's bits must not depend on its block */
        /* x / div fused in: the bits of dividing first, then softmax; and the double softmax of x / div */
        const float div = 5.656854f;
        memcpy(y1, x, sizeof(float) * rows * cols);
        for (int i = 0; i < rows * cols; i++) y1[i] = y1[i] / div;
        ram_softmax_rows(y1, rows, cols);
        float *yd = malloc(sizeof(float) * rows * cols);
        memcpy(yd, x, sizeof(float) * rows * cols);
        ram_softmax_rows_div(yd, rows, cols, div);
        if (memcmp(yd, y1, sizeof(float) * rows * cols)) worst_div = INFINITY;
        for (int r = 0; r < rows; r++) {
            double mx = -INFINITY, s = 0;
            for (int i = 0; i < cols; i++) mx = fmax(mx, x[r * cols + i] / (double)div);
            for (int i = 0; i < cols; i++) s += exp(x[r * cols + i] / (double)div - mx);
            for (int i = 0; i < cols; i++) {
                double e = fabs(yd[r * cols + i] - exp(x[r * cols + i] / (double)div - mx) / s) / 2e-6;
                if (!(e <= worst_div)) worst_div = isnan(e) ? INFINITY : e;
            }
        }
        free(y1), free(yd);
        for (int r = 0; r < rows; r++) {
            double mx = -INFINITY, s = 0;
            for (int i = 0; i < cols; i++) mx = fmax(mx, x[r * cols + i]);
            for (int i = 0; i < cols; i++) s += exp(x[r * cols + i] - mx);
            for (int i = 0; i < cols; i++) {
                double e = fabs(y[r * cols + i] - exp(x[r * cols + i] - mx) / s) / 2e-6;
                if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
            }
        }
        free(x), free(y);
    }
    check(worst <= 1.0, nm("softmax_vs_double"), "error %.3g x 2e-6", worst);
    check(worst_div <= 1.0, nm("softmax_div_vs_double"), "error %.3g x 2e-6", worst_div);

    const size_t n = 1037; /* vector blocks and a scalar tail */
    float *x = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n), *q = malloc(sizeof(float) * n),
          *r = malloc(sizeof(float) * n), *a = rand_buf(n);
    for (size_t i = 0; i < n; i++) x[i] = -9.0f + 18.0f * (float)i / (float)(n - 1);
    memcpy(g, x, sizeof(float) * n), memcpy(q, x, sizeof(float) * n), memcpy(r, x, sizeof(float) * n);
    ram_gelu(g, n);
    ram_quick_gelu(q, n);
    ram_relu(r, n);
    double eg = 0, eq = 0;
    int relu_ok = 1;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        double e1 = fabs(g[i] - 0.5 * v * (1 + erf(v / sqrt(2.0)))) / (4e-7 * fmax(1, fabs(v)));
        double e2 = fabs(q[i] - v / (1 + exp(-1.702 * v))) / (4e-7 * fmax(1, fabs(v)));
        if (!(e1 <= eg)) eg = isnan(e1) ? INFINITY : e1;
        if (!(e2 <= eq)) eq = isnan(e2) ? INFINITY : e2;
        relu_ok &= r[i] == (x[i] > 0 ? x[i] : 0);
    }
    check(eg <= 1.0, nm("gelu_vs_double"), "error %.3g x 4e-7 max(1,|x|)", eg);
    check(eq <= 1.0, nm("quick_gelu_vs_double"), "error %.3g x 4e-7 max(1,|x|)", eq);
    check(relu_ok, nm("relu_exact"), "wrong value");
    memcpy(r, x, sizeof(float) * n);
    ram_add(r, a, n);
    int add_ok = 1;
    double dref = 0, dabs = 0;
    for (size_t i = 0; i < n; i++)
        add_ok &= r[i] == x[i] + a[i], dref += (double)x[i] * a[i], dabs += fabs((double)x[i] * a[i]);
    check(add_ok, nm("add_exact"), "y += x differs from the float sum");
    float d = ram_dot(x, a, (int)n);
    check(fabs(d - dref) <= 1.2e-7 * n * dabs, nm("dot_vs_double"), "%g vs %g", d, dref);
    free(x), free(g), free(q), free(r), free(a);
}

/* One head: s = bias + (q * scale) k^T, softmax rows, o = s v; rows of q, k, v at a
** stride wider than d. The bias is read in place (s0 = s) or from its own
** buffer, s then holding garbage on entry. */
static void test_attention_head(void)
{
    double worst = 0;
    for (int N = 1; N <= 45; N += 11) /* 8-, 4- and 1-row blocks (ops_vec.h's small_gemm), 16- and 8-key gathers */
        for (int d = 3; d <= 17; d += 14) {
            int ld = 3 * d + 1, ldo = d + 2;
            float *q = rand_buf((size_t)N * ld), *k = rand_buf((size_t)N * ld), *v = rand_buf((size_t)N * ld);
            float *s = rand_buf((size_t)N * N), *bias = malloc(sizeof(float) * N * N),
                  *kt = malloc(sizeof(float) * 2 * d * N);
            float *o = rand_buf((size_t)N * ldo);
            memcpy(bias, s, sizeof(float) * N * N);
            const float scale = d == 3 ? 1.0f : 0.2425356f; /* q * d^-0.5 for d = 17 */
            if (d == 3)                                     /* in place */
                ram_attention_head(q, k, v, ld, N, d, scale, s, s, kt, o, ldo);
            else {
                for (int i = 0; i < N * N; i++) s[i] = NAN;
                ram_attention_head(q, k, v, ld, N, d, scale, bias, s, kt, o, ldo);
            }
            for (int i = 0; i < N; i++) {
                double sc[48], mx = -INFINITY, sum = 0;
                for (int j = 0; j < N; j++) {
                    double t = bias[i * N + j];
                    for (int c = 0; c < d; c++) t += (double)q[i * ld + c] * scale * k[j * ld + c];
                    sc[j] = t, mx = fmax(mx, t);
                }
                for (int j = 0; j < N; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int c = 0; c < d; c++) {
                    double ref = 0;
                    for (int j = 0; j < N; j++) ref += sc[j] / sum * v[j * ld + c];
                    double e = fabs(o[i * ldo + c] - ref) / 2e-6;
                    if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                }
            }
            free(q), free(k), free(v), free(s), free(bias), free(kt), free(o);
        }
    check(worst <= 1.0, nm("attention_head_vs_double"), "error %.3g x 2e-6", worst);
}

static void test_reweight(void)
{
    int n = 3, des = 5, E = 37;
    float *q = rand_buf(E), *rows = rand_buf((size_t)n * des * E), *w = malloc(sizeof(float) * n * des),
          *out = malloc(sizeof(float) * n * E);
    ram_reweight_rows(q, rows, n, des, E, w, out);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double l[5], mx = -INFINITY, s = 0;
        for (int d = 0; d < des; d++) {
            l[d] = 0;
            for (int e = 0; e < E; e++) l[d] += (double)q[e] * rows[((size_t)i * des + d) * E + e];
            mx = fmax(mx, l[d]);
        }
        for (int d = 0; d < des; d++) s += l[d] = exp(l[d] - mx);
        for (int d = 0; d < des; d++) worst = fmax(worst, fabs(w[i * des + d] - l[d] / s) / 2e-6);
        for (int e = 0; e < E; e++) {
            double ref = 0;
            for (int d = 0; d < des; d++) ref += l[d] / s * rows[((size_t)i * des + d) * E + e];
            worst = fmax(worst, fabs(out[i * E + e] - ref) / 2e-6);
        }
    }
    check(worst <= 1.0, nm("reweight_rows_vs_double"), "error %.3g x 2e-6", worst);
    free(q), free(rows), free(w), free(out);
}

/* ---- the job pool ---- */
static int task_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct spin_job {
    double seconds;
    pthread_t who;
};

static void *spin(void *arg)
{
    struct spin_job *j = arg;
    j->who = pthread_self();
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0); /* CPU time: a descheduled thread does not end early */
    do clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 < j->seconds);
    return NULL;
}

static atomic_int max_tasks;

static void *caller(void *arg)
{
    int calls = *(int *)arg;
    ram_jobs_set_threads(2);
    for (int c = 0; c < calls; c++) {
        struct spin_job jobs[2] = {{0.001, 0}, {0.001, 0}};
        ram_run_jobs(spin, jobs, sizeof jobs[0], 2);
        int n = task_threads();
        for (int m = atomic_load(&max_tasks); n > m && !atomic_compare_exchange_weak(&max_tasks, &m, n);) {}
    }
    return NULL;
}

static void test_pool(void)
{
    int cpus = ram_jobs_cpu_count();
    /* one caller: a call of two jobs runs them both, and uses the pool's worker when there is one */
    int helped = 0;
    for (int c = 0; c < 50 && !helped; c++) {
        struct spin_job jobs[2] = {{0.002, 0}, {0.002, 0}};
        ram_jobs_set_threads(2);
        ram_run_jobs(spin, jobs, sizeof jobs[0], 2);
        helped = !pthread_equal(jobs[0].who, jobs[1].who);
    }
    ram_jobs_set_threads(0);
    check(cpus < 2 || helped, "jobs_pool_worker_runs_jobs", "50 calls of 2 jobs ran in one thread");

    /* two callers at once (two connections on two threads) */
    int before = task_threads(), w0;
    ram_jobs_probe(NULL, &w0);
    ram_jobs_probe_reset();
    pthread_t th[2];
    int calls = 60;
    atomic_store(&max_tasks, 0);
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, caller, &calls);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    int peak, workers;
    ram_jobs_probe(&peak, &workers);
    /* busy = callers inside a call + busy workers: the callers themselves are
    ** always running; the pool adds workers only while fewer threads than
    ** CPUs are busy, so a caller arriving late can overlap a worker: at most
    ** cpus + 1 with two callers, and never more than their 2 x 2 jobs. On 2
    ** CPUs that is 3, where per-call threads (the old design) reached 4. */
    check(workers <= (cpus > 1 ? cpus - 1 : 0), "jobs_workers_bounded_by_cpus", "%d workers for %d CPUs", workers,
          cpus);
    check(peak <= (cpus + 1 < 4 ? cpus + 1 : 4), "jobs_two_callers_no_oversubscription",
          "%d threads busy at once on %d CPUs", peak, cpus);
    /* the process holds its threads, the two callers, and at most the workers not yet started before */
    check(atomic_load(&max_tasks) <= before + 2 + (cpus - 1 - w0), "jobs_no_thread_per_call",
          "threads in the process went from %d to %d (workers %d -> %d)", before, atomic_load(&max_tasks), w0, workers);
    check(ram_jobs_threads() >= 1 && (ram_jobs_set_threads(3), ram_jobs_threads() == 3), "jobs_threads_per_thread",
          "set/get");
    ram_jobs_set_threads(0);
}

/* ram_run_split: every unit in exactly one range, one slot per range, for
** every unit count up to 40 and 1..RAM_MAX_JOBS ranges, with equal and with
** skewed vCPU speeds; and a range is sized by its vCPU's speed: on a caller
** pinned to cpu 0 at 1 thread (it runs every range), with cpu 0 three times
** as fast as cpu 1, the first range takes three quarters of the units. */
struct split_seen {
    atomic_int hits[64];
    atomic_int slots[RAM_MAX_JOBS];
    long first; /* units of slot 0 */
};
static void split_mark(void *ctx, int slot, long u0, long u1)
{
    struct split_seen *s = ctx;
    if (slot >= 0 && slot < RAM_MAX_JOBS) atomic_fetch_add(&s->slots[slot], 1);
    if (slot == 0) s->first = u1 - u0;
    for (long u = u0; u < u1; u++)
        if (u >= 0 && u < 64) atomic_fetch_add(&s->hits[u], 1);
}
static void test_run_split(void)
{
    int ok = 1;
    char what[96] = "";
    ram_jobs_set_threads(2);
    for (int sk = 0; sk < 2; sk++) {
        if (sk) ram_jobs_speed_set(0, 0.3), ram_jobs_speed_set(1, 3.5);
        for (int n = 1; n <= RAM_MAX_JOBS; n++)
            for (long units = 0; units <= 40; units++) {
                struct split_seen s = {0};
                ram_run_split(split_mark, &s, units, n);
                for (long u = 0; u < 64; u++)
                    if (atomic_load(&s.hits[u]) != (u < units)) ok = 0;
                for (int i = 0; i < RAM_MAX_JOBS; i++)
                    if (atomic_load(&s.slots[i]) > 1 || (i >= n && atomic_load(&s.slots[i]))) ok = 0;
                if (!ok && !what[0]) snprintf(what, sizeof what, "%ld units in %d ranges (skew %d)", units, n, sk);
            }
    }
    ram_jobs_speed_set(-1, 0);
    check(ok, "jobs_split_covers_each_unit_once", "%s", what);

    int sized = 1;
    cpu_set_t was, one;
    if (ram_jobs_cpu_count() >= 2 && !pthread_getaffinity_np(pthread_self(), sizeof was, &was) && CPU_ISSET(0, &was)) {
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        if (!pthread_setaffinity_np(pthread_self(), sizeof one, &one)) {
            ram_jobs_set_threads(1);
            ram_jobs_speed_set(0, 3), ram_jobs_speed_set(1, 1);
            struct split_seen s = {0};
            ram_run_split(split_mark, &s, 400, 2);
            sized = s.first == 300;
            ram_jobs_speed_set(0, 1);
            struct split_seen e = {0};
            ram_run_split(split_mark, &e, 400, 2);
            sized &= e.first == 200;
            ram_jobs_speed_set(-1, 0);
            snprintf(what, sizeof what, "first range %ld of 400 at 3:1 (want 300), %ld at 1:1", s.first, e.first);
            pthread_setaffinity_np(pthread_self(), sizeof was, &was);
        }
    }
    ram_jobs_set_threads(0);
    check(sized, "jobs_split_sized_by_vcpu_speed", "%s", what);
}

/* A worker's thread count is 1, so nested calls run in place; the caller's stays its own. */
struct nest_job {
    int inner_threads;
};
static void *nest(void *arg)
{
    ((struct nest_job *)arg)->inner_threads = ram_jobs_threads();
    return NULL;
}
static void test_pool_nested(void)
{
    ram_jobs_set_threads(2);
    struct nest_job j[2] = {{0}, {0}};
    ram_run_jobs(nest, j, sizeof j[0], 2);
    int ok =
        (j[0].inner_threads == 1 || j[0].inner_threads == 2) && (j[1].inner_threads == 1 || j[1].inner_threads == 2);
    ram_jobs_set_threads(0);
    check(ok, "jobs_nested_thread_count", "%d %d", j[0].inner_threads, j[1].inner_threads);
}

/* ram_linear_rows on 1..4 rows (a decoder step's beams) takes its own path, one
** dot per output (ops.c): against double precision within the sgemm bound,
** with and without bias, on widths that leave vector tails, and identical
** at 1 and 2 threads on a product large enough to be split. */
static void test_linear_few_rows(void)
{
    static const int shape[][2] = {{37, 5}, {300, 67}, {768, 3100}};
    char name[64];
    for (size_t c = 0; c < sizeof shape / sizeof shape[0]; c++)
        for (int rows = 1; rows <= 4; rows++) {
            const int K = shape[c][0], N = shape[c][1];
            float *x = rand_buf((size_t)rows * K), *W = rand_buf((size_t)N * K), *b = rand_buf((size_t)N);
            float *y = malloc(sizeof(float) * rows * N), *y2 = malloc(sizeof(float) * rows * N);
            double worst = 0;
            for (int bias = 0; bias < 2; bias++) {
                ram_set_threads(1);
                ram_linear_rows(x, rows, K, W, bias ? b : NULL, N, y);
                ram_set_threads(2);
                ram_linear_rows(x, rows, K, W, bias ? b : NULL, N, y2);
                ram_set_threads(0);
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < N; o++) {
                        double s = bias ? b[o] : 0, a = bias ? fabs(b[o]) : 0;
                        for (int k = 0; k < K; k++) {
                            double t = (double)x[(size_t)r * K + k] * W[(size_t)o * K + k];
                            s += t, a += fabs(t);
                        }
                        double e = fabs(y[(size_t)r * N + o] - s) / ((K + 3) * 1.2e-7 * a + 1e-30);
                        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                    }
                if (memcmp(y, y2, sizeof(float) * rows * N)) worst = INFINITY;
            }
            snprintf(name, sizeof name, "linear_few_rows_%dx%dx%d", rows, K, N);
            check(worst <= 1.0, name, "error %.3g of the fp32 bound (inf: 1 and 2 threads differ)", worst);
            free(x), free(W), free(b), free(y), free(y2);
        }
}

/* ram_linear_dots over many rows (the blocked dots kernel) gives each row
** bit for bit what ram_linear_rows gives it in a call of 1 to 3 rows (the
** decoder step Tag2Text's verified decoding must reproduce), with and
** without bias, at 1 and 2 threads; shapes with row, output, vector and
** scalar tails; at each instruction set this CPU runs. */
static void test_linear_dots(void)
{
    static const int shape[][3] = {{37, 5, 7}, {200, 67, 11}, {768, 101, 35}, {64, 3, 2}};
    char name[64];
    for (size_t c = 0; c < sizeof shape / sizeof shape[0]; c++) {
        const int K = shape[c][0], N = shape[c][1], R = shape[c][2];
        float *x = rand_buf((size_t)R * K), *W = rand_buf((size_t)N * K), *b = rand_buf((size_t)N);
        float *y = malloc(sizeof(float) * R * N), *y2 = malloc(sizeof(float) * R * N),
              *ys = malloc(sizeof(float) * 3 * N);
        int ok = 1;
        for (int bias = 0; bias < 2; bias++)
            for (int th = 1; th <= 2; th++) {
                ram_set_threads(th);
                ram_linear_dots(x, R, K, W, bias ? b : NULL, N, y);
                for (int r = 0; r < R; r += 3) {
                    const int n = R - r < 3 ? R - r : 3;
                    ram_linear_rows(x + (size_t)r * K, n, K, W, bias ? b : NULL, N, ys);
                    ok &= !memcmp(ys, y + (size_t)r * N, sizeof(float) * n * N);
                }
                if (th == 1) memcpy(y2, y, sizeof(float) * R * N);
                ok &= !memcmp(y, y2, sizeof(float) * R * N);
            }
        ram_set_threads(0);
        snprintf(name, sizeof name, "linear_dots_%dx%dx%d_%s", R, K, N, level);
        check(ok, name, "a row differs from ram_linear_rows' (or between thread counts)");
        free(x), free(W), free(b), free(y), free(y2), free(ys);
    }
}

/* The weight-only int8 linear layer (gemv_w8.c): the codes and scales
** reproduce W within half a step of each group's scale; the product equals
** the dequantized weights' product in double within the fp32 bound, on 1-5
** rows (past the 4 rows kept in registers), widths with tails and several
** groups, with and without bias, identical at 1 and 2 threads; at each
** instruction set this CPU runs (the caller forces them). */
static void test_w8(void)
{
    static const int shape[][2] = {{37, 5}, {200, 67}, {768, 700}};
    char name[96];
    for (size_t c = 0; c < sizeof shape / sizeof shape[0]; c++) {
        const int K = shape[c][0], N = shape[c][1], G = (K + RAM_W8_GROUP - 1) / RAM_W8_GROUP;
        size_t nc, ns;
        ram_w8_sizes(N, K, &nc, &ns);
        float *W = rand_buf((size_t)N * K), *sc = malloc(sizeof(float) * ns), *b = rand_buf((size_t)N);
        int8_t *q = malloc(nc);
        ram_w8_quantize(W, N, K, q, sc);
        double qerr = 0;
        for (int o = 0; o < N; o++)
            for (int k = 0; k < K; k++) {
                double s = sc[(size_t)o * G + k / RAM_W8_GROUP];
                qerr = fmax(qerr, fabs(W[(size_t)o * K + k] - s * q[(size_t)o * K + k]) / (0.5 * s + 1e-30));
            }
        snprintf(name, sizeof name, "w8_quantize_%dx%d_%s", N, K, level);
        check(nc == (size_t)N * K && ns == (size_t)N * G && qerr <= 1.0 + 1e-5, name, "%.3g half-steps", qerr);
        const struct ram_w8 w = {N, K, q, sc};
        for (int rows = 1; rows <= 5; rows++) {
            float *x = rand_buf((size_t)rows * K), *y = malloc(sizeof(float) * rows * N),
                  *y2 = malloc(sizeof(float) * rows * N);
            double worst = 0;
            for (int bias = 0; bias < 2; bias++) {
                ram_set_threads(1);
                ram_w8_linear(x, rows, &w, bias ? b : NULL, y);
                ram_set_threads(2);
                ram_w8_linear(x, rows, &w, bias ? b : NULL, y2);
                ram_set_threads(0);
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < N; o++) {
                        double s = bias ? b[o] : 0, a = fabs(s);
                        for (int k = 0; k < K; k++) {
                            double t = (double)x[(size_t)r * K + k] * q[(size_t)o * K + k] *
                                       sc[(size_t)o * G + k / RAM_W8_GROUP];
                            s += t, a += fabs(t);
                        }
                        double e = fabs(y[(size_t)r * N + o] - s) / ((K + 3 + G) * 1.2e-7 * a + 1e-30);
                        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                    }
                if (memcmp(y, y2, sizeof(float) * rows * N)) worst = INFINITY;
            }
            snprintf(name, sizeof name, "w8_linear_%dx%dx%d_%s", rows, K, N, level);
            check(worst <= 1.0, name, "error %.3g of the fp32 bound (inf: 1 and 2 threads differ)", worst);
            free(x), free(y), free(y2);
        }
        free(W), free(sc), free(b), free(q);
    }
}

int main(void)
{
    (void)data_path, (void)check_close_npy; /* harness helpers this test does not need */
    test_dispatch();
    for (int p = 0; p < RAM_SGEMM_PATHS; p++) {
        if (!ram_sgemm_path_available((enum ram_sgemm_path)p)) {
            printf("note: sgemm path %s not run by this CPU\n", ram_sgemm_path_name((enum ram_sgemm_path)p));
            continue;
        }
        test_sgemm_path((enum ram_sgemm_path)p);
        test_sgemm_threads((enum ram_sgemm_path)p);
        if (p != RAM_SGEMM_OPENBLAS) test_sgemm_copied_rows((enum ram_sgemm_path)p);
        if (p != RAM_SGEMM_OPENBLAS && ram_sgemm_force((enum ram_sgemm_path)p)) {
            test_sgemm_row_invariant((enum ram_sgemm_path)p);
            ram_sgemm_force(RAM_SGEMM_PATHS);
        }
    }
    test_pack();
    test_sgemm_packed();
    test_linear_packed();
    test_gemm_forced();
    test_linear_few_rows();
    enum ram_isa chosen = ram_cpu_isa();
    for (int i = 0; i < RAM_ISA_COUNT; i++) {
        if (!ram_cpu_force((enum ram_isa)i)) continue;
        level = ram_cpu_isa_name((enum ram_isa)i);
        test_layernorm();
        test_softmax_gelu();
        test_attention_head();
        test_reweight();
        test_ew_threads();
        test_w8();
        test_linear_dots();
    }
    ram_cpu_force(chosen);
    test_pool();
    test_pool_nested();
    test_run_split();
    return harness_exit();
}
