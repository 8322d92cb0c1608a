/*
** gemm_libs.c — the measurement behind docs/KERNELS.md: our sgemm against
** the libraries Debian ships for the job, on the forward's shapes, in one run.
** Not part of the build's dependencies: `make bench-libs` compiles it
** against libdnnl-dev (oneDNN: dnnl_sgemm and the matmul primitive),
** libblis (loaded with dlopen: it exports BLAS symbols that would clash with
** OpenBLAS's) and libxsmm-dev (static), and OpenBLAS with its own threads.
**
**     build/bench/gemm_libs [ROUNDS]
**
** 1 thread: CPU time of the process (the machine is shared; CPU time is what
** the product costs); 2 threads: wall time. Each round measures the FMA peak
** the same way, then every implementation on every shape; the printed
** fractions are medians of per-round ratios.
*/
#include "cpu.h"
#include "jobs.h"
#include "sgemm.h"

#include <cblas.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <libxsmm.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char *openblas_get_corename(void);
extern void openblas_set_num_threads(int);

static int g_threads = 1;
static double now(void)
{
    struct timespec t;
    clock_gettime(g_threads == 1 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

__attribute__((target("avx512f"))) static float loop_fma512(long n)
{
    __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f), a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long i = 0; i < n; i++) {
        a[0] = _mm512_fmadd_ps(a[0], x, y), a[1] = _mm512_fmadd_ps(a[1], x, y), a[2] = _mm512_fmadd_ps(a[2], x, y);
        a[3] = _mm512_fmadd_ps(a[3], x, y), a[4] = _mm512_fmadd_ps(a[4], x, y), a[5] = _mm512_fmadd_ps(a[5], x, y);
        a[6] = _mm512_fmadd_ps(a[6], x, y), a[7] = _mm512_fmadd_ps(a[7], x, y), a[8] = _mm512_fmadd_ps(a[8], x, y);
        a[9] = _mm512_fmadd_ps(a[9], x, y), a[10] = _mm512_fmadd_ps(a[10], x, y), a[11] = _mm512_fmadd_ps(a[11], x, y);
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
struct pj {
    long n;
    float out;
};
static void *pj_run(void *p)
{
    ((struct pj *)p)->out = loop_fma512(((struct pj *)p)->n);
    return NULL;
}
static volatile float sink;
static double peak(int T)
{
    double best = 0;
    for (int r = 0; r < 3; r++) {
        struct pj j[2] = {{2000000, 0}, {2000000, 0}};
        double t = now();
        ram_run_jobs(pj_run, j, sizeof j[0], T);
        t = now() - t;
        sink += j[0].out + j[1].out;
        double g = 12.0 * 32 * 2000000 * T / t * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

/* ---- the implementations: C (M x N) = A (M x K) @ W^T (W: N x K), row-major ---- */
typedef void (*bli_sgemm_fn)(int, int, int64_t, int64_t, int64_t, const float *, const float *, int64_t, int64_t,
                             const float *, int64_t, int64_t, const float *, float *, int64_t, int64_t);
static bli_sgemm_fn bli_sgemm_p;
static void (*bli_threads_p)(int64_t);
static void (*omp_threads_p)(int);

struct dnnl_mm {
    dnnl_primitive_t prim;
    dnnl_memory_t a, w, c;
};
static dnnl_engine_t eng;
static dnnl_stream_t strm;

static int dnnl_mm_make(struct dnnl_mm *d, int M, int N, int K, float *A, float *W, float *C)
{
    dnnl_memory_desc_t a_md, w_md, c_md;
    dnnl_dims_t ad = {M, K}, as = {K, 1}, wd = {K, N}, ws = {1, K}, cd = {M, N}, cs = {N, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    if (dnnl_memory_desc_init_by_strides(&a_md, 2, ad, dnnl_f32, as) ||
        dnnl_memory_desc_init_by_strides(&w_md, 2, wd, dnnl_f32, ws) ||
        dnnl_memory_desc_init_by_strides(&c_md, 2, cd, dnnl_f32, cs) ||
        dnnl_matmul_desc_init(&md, &a_md, &w_md, NULL, &c_md) ||
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) || dnnl_primitive_create(&d->prim, pd))
        return 0;
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_create(&d->a, &a_md, eng, A);
    dnnl_memory_create(&d->w, &w_md, eng, W);
    dnnl_memory_create(&d->c, &c_md, eng, C);
    return 1;
}
static void dnnl_mm_free(struct dnnl_mm *d)
{
    dnnl_primitive_destroy(d->prim);
    dnnl_memory_destroy(d->a), dnnl_memory_destroy(d->w), dnnl_memory_destroy(d->c);
}

enum { OURS, OPENBLAS, DNNL_SGEMM, DNNL_MATMUL, BLIS, XSMM, IMPLS };
static const char *const impl_name[IMPLS] = {"ours", "openblas", "onednn_sgemm", "onednn_matmul", "blis", "libxsmm"};

static void run(int impl, int M, int N, int K, float *A, float *W, float *C, struct dnnl_mm *mm)
{
    float one = 1, zero = 0;
    switch (impl) {
    case OURS: ram_sgemm(0, 1, M, N, K, 1, A, K, W, K, 0, C, N, NULL); break;
    case OPENBLAS: cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, K, W, K, 0, C, N); break;
    case DNNL_SGEMM: dnnl_sgemm('N', 'T', M, N, K, 1, A, K, W, K, 0, C, N); break;
    case DNNL_MATMUL: {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mm->a}, {DNNL_ARG_WEIGHTS, mm->w}, {DNNL_ARG_DST, mm->c}};
        dnnl_primitive_execute(mm->prim, strm, 3, args);
        dnnl_stream_wait(strm);
        break;
    }
    case BLIS: /* B(k, j) = W[j K + k]: row stride 1, column stride K */
        bli_sgemm_p(0, 0, M, N, K, &one, A, K, 1, W, 1, K, &zero, C, N, 1);
        break;
    default: { /* column-major: C^T (N x M) = W (N x K) @ A^T */
        libxsmm_blasint m = N, n = M, k = K, lda = K, ldb = K, ldc = N;
        libxsmm_sgemm("T", "N", &m, &n, &k, &one, W, &lda, A, &ldb, &zero, C, &ldc);
    }
    }
}

struct shape {
    const char *name;
    int M, N, K;
};
static const struct shape shapes[] = {
    {"swin1_qkv", 9216, 576, 192},  {"swin1_fc2", 9216, 192, 768},    {"swin2_fc1", 2304, 1536, 384},
    {"swin3_qkv", 576, 2304, 768},  {"swin3_fc1", 576, 3072, 768},    {"swin3_fc2", 576, 768, 3072},
    {"swin4_fc1", 144, 6144, 1536}, {"dec_ffn1", 4585, 3072, 768},    {"dec_scores", 4585, 145, 192},
    {"window_qk", 144, 144, 32},    {"square2048", 2048, 2048, 2048},
};
enum { NS = sizeof shapes / sizeof shapes[0] };

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    if (rounds < 1 || rounds > 20) rounds = 3;
    void *blis = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (blis) {
        bli_sgemm_p = (bli_sgemm_fn)dlsym(blis, "bli_sgemm");
        bli_threads_p = (void (*)(int64_t))dlsym(blis, "bli_thread_set_num_threads");
    }
    omp_threads_p = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    libxsmm_init();
    dnnl_engine_create(&eng, dnnl_cpu, 0);
    dnnl_stream_create(&strm, eng, dnnl_stream_default_flags);
    printf("cpu %s\nopenblas_core %s\nblis %s\nomp %s\n", ram_cpu_model(), openblas_get_corename(),
           bli_sgemm_p ? "yes" : "no", omp_threads_p ? "yes" : "no");
    size_t maxa = 0, maxw = 0, maxc = 0;
    for (int s = 0; s < NS; s++) {
        if ((size_t)shapes[s].M * shapes[s].K > maxa) maxa = (size_t)shapes[s].M * shapes[s].K;
        if ((size_t)shapes[s].N * shapes[s].K > maxw) maxw = (size_t)shapes[s].N * shapes[s].K;
        if ((size_t)shapes[s].M * shapes[s].N > maxc) maxc = (size_t)shapes[s].M * shapes[s].N;
    }
    float *A = malloc(maxa * 4), *W = malloc(maxw * 4), *C = malloc(maxc * 4), *R = malloc(maxc * 4);
    for (size_t i = 0; i < maxa; i++) A[i] = (float)((i * 7) % 17) * 0.01f - 0.08f;
    for (size_t i = 0; i < maxw; i++) W[i] = (float)((i * 5) % 13) * 0.02f - 0.12f;
    for (int T = 1; T <= 2; T++) {
        g_threads = T;
        ram_jobs_set_threads(T);
        openblas_set_num_threads(T);
        if (bli_threads_p) bli_threads_p(T);
        if (omp_threads_p) omp_threads_p(T);
        static double g[IMPLS][NS][20], f[IMPLS][NS][20];
        static double err[IMPLS][NS];
        for (int r = 0; r < rounds; r++) {
            double pk = peak(T);
            for (int s = 0; s < NS; s++) {
                const struct shape *sh = &shapes[s];
                struct dnnl_mm mm;
                int have_mm = dnnl_mm_make(&mm, sh->M, sh->N, sh->K, A, W, C);
                ram_sgemm_on(RAM_SGEMM_PORTABLE, 0, 1, sh->M, sh->N, sh->K, 1, A, sh->K, W, sh->K, 0, R, sh->N, NULL);
                for (int im = 0; im < IMPLS; im++) {
                    if ((im == BLIS && !bli_sgemm_p) || (im == DNNL_MATMUL && !have_mm)) {
                        g[im][s][r] = f[im][s][r] = 0;
                        continue;
                    }
                    if (im == OPENBLAS) openblas_set_num_threads(T);
                    memset(C, 0, (size_t)sh->M * sh->N * 4);
                    run(im, sh->M, sh->N, sh->K, A, W, C, &mm);
                    double e = 0; /* the same product? (against our portable kernel) */
                    for (size_t i = 0; i < (size_t)sh->M * sh->N; i++) {
                        double d = C[i] - R[i];
                        if (d < 0) d = -d;
                        if (d > e) e = d;
                    }
                    err[im][s] = e;
                    double best = 1e30, total = 0;
                    for (int rep = 0; rep < 10 && (rep < 2 || total < 0.05); rep++) {
                        double t = now();
                        run(im, sh->M, sh->N, sh->K, A, W, C, &mm);
                        t = now() - t;
                        total += t;
                        if (t < best) best = t;
                    }
                    g[im][s][r] = 2.0 * sh->M * sh->N * sh->K / best * 1e-9;
                    f[im][s][r] = g[im][s][r] / pk;
                }
                if (have_mm) dnnl_mm_free(&mm);
            }
        }
        for (int s = 0; s < NS; s++)
            for (int im = 0; im < IMPLS; im++)
                printf("%s %dt %s %.1f GFLOP/s %.3f of peak (max |diff| %.2g)\n", shapes[s].name, T, impl_name[im],
                       median(g[im][s], rounds), median(f[im][s], rounds), err[im][s]);
    }
    return 0;
}
