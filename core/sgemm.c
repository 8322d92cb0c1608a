/*
** sgemm.c — the driver of our fp32 products (sgemm.h): blocking, packing,
** threading, the portable kernel, and the OpenBLAS fallback path.
**
** HOW IT WORKS: C is cut into row blocks of mr and column panels of nr (the
** kernel's tile). For each block of NC columns and KC of K, the B block is
** packed into nr-wide panels (kc x nr floats each, contiguous; KC x NC
** floats stay in L2), then for each row block of A (read in place, mr x kc
** floats staying in L1 across the panels) the kernel runs over every panel.
** The first K block writes alpha AB + beta C (+ bias); later ones add to C.
** Threads: the columns (or, when that balances better or the product is
** narrow and tall, the rows) of C are split into one range of whole tiles
** per thread, sized to each vCPU's measured speed (ram_run_split), so every
** element of C sees the same sequence of operations whatever the thread
** count and however the ranges fall.
*/
#include "sgemm.h"

#include "internal.h"
#include "jobs.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

extern void openblas_set_num_threads(int);

#define KC 256
#define NC 768
#define MR_MAX 16
#define MIN_WORK ((double)(1 << 20)) /* multiply-adds per job at least */
#define APAD 16                      /* floats between the rows of a copied A block (below) */

/* ---- the portable kernel: 4 x 16, plain C (the compiler vectorises what its flags allow) ---- */
enum { PMR = 4, PNR = 16 };

static void kernel_portable(int kc, const float *a, long rs, long cs, const float *bp, float *c, long ldc, int m, int n,
                            float alpha, float beta, const float *bias)
{
    float acc[PMR][PNR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *b = bp + (long)k * PNR;
        for (int r = 0; r < PMR; r++) {
            float av = a[r * rs + k * cs];
            for (int j = 0; j < PNR; j++) acc[r][j] += av * b[j];
        }
    }
    for (int r = 0; r < m; r++) {
        float *cr = c + r * ldc;
        for (int j = 0; j < n; j++) {
            float t = alpha * acc[r][j];
            if (beta != 0.0f) t += beta * cr[j];
            if (bias) t += bias[j];
            cr[j] = t;
        }
    }
}

static const struct ram_sgemm_kernel kernel_portable_desc = {PMR, PNR, kernel_portable, ram_sgemm_pack_b_generic, 0, 0};

/* ---- per-thread packing buffer: grown once, freed when the thread exits ---- */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t buf_key;
struct pack_buf {
    size_t cap;
    float f[];
};

static void buf_free(void *p) { free(p); }
static void key_init(void) { pthread_key_create(&buf_key, buf_free); }

static float *pack_buffer(size_t floats)
{
    pthread_once(&key_once, key_init);
    struct pack_buf *b = pthread_getspecific(buf_key);
    if (b && b->cap >= floats) return b->f;
    struct pack_buf *nb = realloc(b, sizeof *b + floats * sizeof(float) + 64);
    if (!nb) return NULL;
    nb->cap = floats;
    pthread_setspecific(buf_key, nb);
    return nb->f;
}

/* ---- one job: rows m0..m1 and columns n0..n1 of C ---- */
struct job {
    const struct ram_sgemm_kernel *kd;
    int tA, tB, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B, *bias;
    float *C;
    int m0, m1, n0, n1;
    const float *panels; /* B packed at load (ram_sgemm_packed): panels of K x nr; NULL: pack here */
};

/* The block through a plain loop when no buffer can be had (same results
** as the kernel only up to rounding; never happens short of exhausted memory). */
static void job_naive(const struct job *j)
{
    for (int i = j->m0; i < j->m1; i++)
        for (int c = j->n0; c < j->n1; c++) {
            float s = 0;
            for (int k = 0; k < j->K; k++) {
                float a = j->tA ? j->A[(long)k * j->lda + i] : j->A[(long)i * j->lda + k];
                float b = j->tB ? j->B[(long)c * j->ldb + k] : j->B[(long)k * j->ldb + c];
                s += a * b;
            }
            float *y = j->C + (long)i * j->ldc + c;
            float t = j->alpha * s;
            if (j->beta != 0.0f) t += j->beta * *y;
            if (j->bias) t += j->bias[c];
            *y = t;
        }
}

/* Lines (16 floats) of a rows x cols block at stride ld, fetched a few at a
** time between kernel calls: the data of the next step arrives while this
** one computes (memory and the FMA units work at once). */
struct ahead {
    const float *row; /* the row being fetched */
    long ld;
    int rows_left, lines_per_row, line, locality;
};

static void ahead_start(struct ahead *h, const float *base, long ld, int rows, int cols, int locality)
{
    h->row = base, h->ld = ld, h->rows_left = base ? rows : 0, h->lines_per_row = (cols + 15) / 16;
    h->line = 0, h->locality = locality;
}

static long ahead_total(const struct ahead *h) { return (long)h->rows_left * h->lines_per_row; }

static inline void ahead_step(struct ahead *h, int n)
{
    for (; n > 0 && h->rows_left > 0; n--) {
        const float *p = h->row + h->line * 16;
        if (h->locality == 3)
            __builtin_prefetch(p, 0, 3);
        else
            __builtin_prefetch(p, 0, 2);
        if (++h->line == h->lines_per_row) h->line = 0, h->row += h->ld, h->rows_left--;
    }
}

static void *job_run(void *arg)
{
    const struct job *j = arg;
    const struct ram_sgemm_kernel *kd = j->kd;
    const int mr = kd->mr, nr = kd->nr;
    const long a_rs = j->tA ? 1 : j->lda, a_cs = j->tA ? j->lda : 1;
    const float *pre = j->panels;
    /* Prepacked B is stored by K block: block pc (kc x all N, the first element of block pc at
    ** pc * pre_cols) holds its panels kc x nr floats each, one after another, as the packing
    ** here makes them. A panel of all of K (the layout before) put the 24 panels of one block
    ** K * nr floats apart: at K = 1536, 3072 or 6144 a multiple of 64 KB, so they shared one
    ** half of L2's sets and evicted each other (beyond its 16 ways). */
    const long pre_cols = (long)(j->N + nr - 1) / nr * nr;
    /* A's rows lda floats apart: when that is a multiple of 2 KB, the mr rows of a tile fall in
    ** one or two of L1's 64 sets (4 KB apart per way), with the next block's rows the prefetches
    ** bring: more lines than the ways, evicted before their next use (K = 3072 and 6144, the
    ** FFN's second products, ran 20 % below the other shapes). Such blocks are copied to rows
    ** kc + APAD floats apart, 17 lines: every row in its own set. The kernel reads the same
    ** values in the same order: same bits. */
    const int copy_a = !j->tA && (long)j->lda * sizeof(float) % 2048 == 0;
    float *bp = pack_buffer(pre ? (size_t)MR_MAX * (KC + APAD) : (size_t)KC * NC + (size_t)MR_MAX * (KC + APAD));
    if (!bp) {
        job_naive(j);
        return NULL;
    }
    float *apad = pre ? bp : bp + (size_t)KC * NC;
    for (int jc = j->n0; jc < j->n1; jc += NC) { /* n0 and NC are whole panels */
        int nc = j->n1 - jc < NC ? j->n1 - jc : NC;
        for (int pc = 0; pc < j->K; pc += KC) {
            int kc = j->K - pc < KC ? j->K - pc : KC;
            /* this block's panels, nr x kc floats each, panel_stride apart */
            const float *blk;
            long panel_stride;
            if (pre)
                panel_stride = (long)kc * nr, blk = pre + (long)pc * pre_cols + (long)(jc / nr) * panel_stride;
            else
                kd->pack_b(j->tB, j->B, j->ldb, pc, kc, jc, nc, nr, bp), blk = bp, panel_stride = (long)kc * nr;
            /* the next B block (weights are read once per forward: from memory) into L2 */
            int pn = pc + KC < j->K ? pc + KC : 0, jn = pc + KC < j->K ? jc : jc + NC;
            int kn = j->K - pn < KC ? j->K - pn : KC, nn = j->n1 - jn < NC ? j->n1 - jn : NC;
            struct ahead hb;
            if (jn >= j->n1)
                ahead_start(&hb, NULL, 0, 0, 0, 2);
            else if (pre)
                ahead_start(&hb, pre + (long)pn * pre_cols + (long)(jn / nr) * kn * nr, (long)kn * nr,
                            (nn + nr - 1) / nr, kn * nr, 2);
            else if (j->tB)
                ahead_start(&hb, j->B + (long)jn * j->ldb + pn, j->ldb, nn, kn, 2);
            else
                ahead_start(&hb, j->B + (long)pn * j->ldb + jn, j->ldb, kn, nn, 2);
            long calls = (long)((j->m1 - j->m0 + mr - 1) / mr) * ((nc + nr - 1) / nr);
            int b_per_call = (int)((ahead_total(&hb) + calls - 1) / calls);
            float beta = pc == 0 ? j->beta : 1.0f;
            const float *bias = pc == 0 && j->bias ? j->bias + jc : NULL;
            for (int ir = j->m0; ir < j->m1; ir += mr) {
                int m = j->m1 - ir < mr ? j->m1 - ir : mr;
                const float *a = j->A + ir * a_rs + pc * a_cs;
                long rs = a_rs, cs = a_cs;
                /* at most few_mr rows left: the small tile's kernel (the same bits per row) */
                int few = m <= kd->few_mr, tile = few ? kd->few_mr : mr;
                if (m < tile) { /* the last rows, zero-padded to a whole tile */
                    for (int r = 0; r < tile; r++)
                        for (int k = 0; k < kc; k++) apad[(long)r * kc + k] = r < m ? a[r * a_rs + k * a_cs] : 0.0f;
                    a = apad, rs = kc, cs = 1;
                } else if (copy_a && !few) {
                    for (int r = 0; r < mr; r++) memcpy(apad + (long)r * (kc + APAD), a + r * a_rs, sizeof(float) * kc);
                    a = apad, rs = kc + APAD, cs = 1;
                }
                /* the next row block of A (from L3 or memory) into L1, a slice per kernel call */
                struct ahead ha;
                int mn = j->m1 - (ir + mr) < mr ? j->m1 - (ir + mr) : mr;
                if (mn <= 0)
                    ahead_start(&ha, NULL, 0, 0, 0, 3);
                else if (j->tA)
                    ahead_start(&ha, j->A + (long)pc * j->lda + ir + mr, j->lda, kc, mn, 3);
                else
                    ahead_start(&ha, j->A + (long)(ir + mr) * j->lda + pc, j->lda, mn, kc, 3);
                int calls_here = (nc + nr - 1) / nr,
                    a_per_call = (int)((ahead_total(&ha) + calls_here - 1) / calls_here);
                float *c = j->C + (long)ir * j->ldc + jc;
                for (int jr = 0; jr < nc; jr += nr) {
                    ahead_step(&ha, a_per_call);
                    ahead_step(&hb, b_per_call);
                    (few ? kd->few : kd->kernel)(kc, a, rs, cs, blk + (long)(jr / nr) * panel_stride, c + jr, j->ldc, m,
                                                 nc - jr < nr ? nc - jr : nr, j->alpha, beta, bias ? bias + jr : NULL);
                }
            }
        }
    }
    return NULL;
}

/* OpenBLAS on one block (single-threaded: the pool does the threading). */
static void *job_openblas(void *arg)
{
    const struct job *j = arg;
    int m = j->m1 - j->m0, n = j->n1 - j->n0;
    if (m <= 0 || n <= 0) return NULL;
    const float *A = j->A + (j->tA ? j->m0 : (long)j->m0 * j->lda);
    const float *B = j->B + (j->tB ? (long)j->n0 * j->ldb : j->n0);
    float *C = j->C + (long)j->m0 * j->ldc + j->n0;
    float beta = j->beta;
    if (j->bias) {
        for (int i = 0; i < m; i++) {
            float *y = C + (long)i * j->ldc;
            for (int c = 0; c < n; c++) y[c] = (beta != 0.0f ? beta * y[c] : 0.0f) + j->bias[j->n0 + c];
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, j->tA ? CblasTrans : CblasNoTrans, j->tB ? CblasTrans : CblasNoTrans, m, n, j->K,
                j->alpha, A, j->lda, B, j->ldb, beta, C, j->ldc);
    return NULL;
}

/* ---- dispatch ---- */
static pthread_once_t path_once = PTHREAD_ONCE_INIT;
static enum ram_sgemm_path default_path;
static _Atomic int forced_path = RAM_SGEMM_PATHS; /* ram_sgemm_force; PATHS: none */

static void path_init(void)
{
    openblas_set_num_threads(1); /* our pool threads every path, OpenBLAS's included */
    const char *e = getenv("RAM_SGEMM"), *isa = getenv("RAM_ISA");
    enum ram_isa i = ram_cpu_isa();
    if (e && !strcmp(e, "openblas"))
        default_path = RAM_SGEMM_OPENBLAS;
    else if (i != RAM_ISA_PORTABLE || (isa && !strcmp(isa, "portable")))
        default_path = (enum ram_sgemm_path)i;
    else
        default_path = RAM_SGEMM_OPENBLAS;
}

enum ram_sgemm_path ram_sgemm_default(void)
{
    pthread_once(&path_once, path_init);
    int f = forced_path;
    if (f != RAM_SGEMM_PATHS) return (enum ram_sgemm_path)f;
    /* ram_cpu_force (tests) moves our kernel's level; OpenBLAS stays OpenBLAS */
    if (default_path == RAM_SGEMM_OPENBLAS) return default_path;
    return (enum ram_sgemm_path)ram_cpu_isa();
}

const char *ram_sgemm_path_name(enum ram_sgemm_path path)
{
    return path == RAM_SGEMM_OPENBLAS ? "openblas" : ram_cpu_isa_name((enum ram_isa)path);
}

int ram_sgemm_path_available(enum ram_sgemm_path path)
{
    return path == RAM_SGEMM_OPENBLAS || ram_cpu_supports((enum ram_isa)path);
}

int ram_sgemm_force(enum ram_sgemm_path path)
{
    if (path != RAM_SGEMM_PATHS && !ram_sgemm_path_available(path)) return 0;
    forced_path = (int)path;
    return 1;
}

static const struct ram_sgemm_kernel *kernel_for(enum ram_sgemm_path path)
{
    if (path == RAM_SGEMM_AVX512 && ram_cpu_supports(RAM_ISA_AVX512)) return &ram_sgemm_kernel_avx512;
    if (path == RAM_SGEMM_AVX2 && ram_cpu_supports(RAM_ISA_AVX2)) return &ram_sgemm_kernel_avx2;
    return &kernel_portable_desc;
}

/* One range of a split product: row blocks or column panels u0 .. u1 of base. */
struct split_ctx {
    const struct job *base;
    void *(*fn)(void *);
    int by_rows, unit;
};

static void split_range(void *arg, int slot, long u0, long u1)
{
    const struct split_ctx *x = arg;
    struct job j = *x->base;
    int lim = x->by_rows ? j.M : j.N, lo = (int)u0 * x->unit, hi = (int)u1 * x->unit < lim ? (int)u1 * x->unit : lim;
    (void)slot;
    if (x->by_rows)
        j.m0 = lo, j.m1 = hi;
    else
        j.n0 = lo, j.n1 = hi;
    x->fn(&j);
}

/* p units over T jobs: the fraction of the T * ceil(p / T) slots used. */
static double balance(long p, int T) { return (double)p / ((double)T * ((p + T - 1) / T)); }

/* The product on path; panels (our paths only): B^T prepacked for kd. */
static void sgemm_run(enum ram_sgemm_path path, int tA, int tB, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc, const float *bias,
                      const float *panels)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C + bias */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *y = C + (long)i * ldc + j;
                *y = (beta != 0.0f ? beta * *y : 0.0f) + (bias ? bias[j] : 0.0f);
            }
        return;
    }
    pthread_once(&path_once, path_init);
    const struct ram_sgemm_kernel *kd = kernel_for(path);
    int mr = kd->mr, nr = path == RAM_SGEMM_OPENBLAS ? 64 : kd->nr;
    long pm = (M + mr - 1) / mr, pn = (N + nr - 1) / nr;
    /* The kernel computes whole mr-row tiles: a 3-row decoding step costs (and reads) as much
    ** as mr rows, and is worth splitting long before M * N * K says so. */
    int T = ram_job_count((double)pm * mr * N * K, MIN_WORK, pm > pn ? pm : pn);
    struct job base = {kd, tA, tB, M, N, K, lda, ldb, ldc, alpha, beta, A, B, bias, C, 0, M, 0, N, panels};
    void *(*fn)(void *) = path == RAM_SGEMM_OPENBLAS ? job_openblas : job_run;
    if (T <= 1) {
        fn(&base);
        return;
    }
    /* Columns unless rows balance clearly better (a column split packs no B twice), or the
    ** product has many rows and few columns: cut by columns, each job would keep a row block of A
    ** in L1 for fewer than 16 panels and read all of A, where by rows it reads half of A and its
    ** row blocks serve every panel (one thread's half of Swin stage 0's proj and fc2, N = 192, ran
    ** 1.15x faster by rows, stage 1's 1.1x; with M = 576 or 768, Swin stage 2 and the tagger's
    ** chunks, neither won, and with M = 144 rows lost 10 %: hence 48 row blocks per job at least). */
    int narrow = pn < 16L * T && pm >= 48L * T;
    int by_rows = balance(pm, T) > balance(pn, T) + 0.1 || (narrow && balance(pm, T) >= balance(pn, T) - 0.02);
    struct split_ctx ctx = {&base, fn, by_rows, by_rows ? mr : nr};
    ram_run_split(split_range, &ctx, by_rows ? pm : pn, T);
}

void ram_sgemm_on(enum ram_sgemm_path path, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc, const float *bias)
{
    sgemm_run(path, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, NULL);
}

/* ---- weights packed once ---- */
struct pack_job {
    const struct ram_sgemm_kernel *kd;
    const float *W;
    int N, K, p0, p1; /* panels p0 .. p1 */
    float *panels;
};

static void *pack_job_run(void *arg)
{
    const struct pack_job *j = arg;
    int nr = j->kd->nr, j0 = j->p0 * nr, j1 = j->p1 * nr < j->N ? j->p1 * nr : j->N;
    long cols = (long)(j->N + nr - 1) / nr * nr; /* the layout of job_run's prepacked B */
    for (int pc = 0; pc < j->K && j1 > j0; pc += KC) {
        int kc = j->K - pc < KC ? j->K - pc : KC;
        j->kd->pack_b(1, j->W, j->K, pc, kc, j0, j1 - j0, nr, j->panels + (long)pc * cols + (long)j->p0 * kc * nr);
    }
    return NULL;
}

int ram_sgemm_pack_weights(const float *W, int N, int K, struct ram_sgemm_packed *out)
{
    *out = (struct ram_sgemm_packed){W, N, K, NULL, NULL, NULL};
    enum ram_sgemm_path path = ram_sgemm_default();
    if (path == RAM_SGEMM_OPENBLAS || N <= 0 || K <= 0) return 0;
    const struct ram_sgemm_kernel *kd = kernel_for(path);
    long np = (N + kd->nr - 1) / kd->nr;
    if ((size_t)np * kd->nr > SIZE_MAX / sizeof(float) / (size_t)K) return 0;
    /* In 2 MB pages where the kernel gives them (transparent huge pages on
    ** madvise): the kernel walks these panels at every product, and on 4 KB
    ** pages each 32 KB panel block costs TLB misses that the prefetches
    ** cannot hide (the file mapping they replace is often in huge pages). */
    size_t bytes = sizeof(float) * (size_t)np * kd->nr * (size_t)K, huge = (size_t)2 << 20;
    void *block = bytes > SIZE_MAX - huge ? NULL : ram_malloc(bytes + huge);
    if (!block) return 0;
    float *p = (float *)(((uintptr_t)block + huge - 1) / huge * huge);
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* a hint: without it (or refused), 4 KB pages */
#endif
    struct pack_job jobs[RAM_MAX_JOBS];
    int T = ram_job_count((double)N * K, MIN_WORK / 4, np);
    for (int t = 0; t < T; t++) jobs[t] = (struct pack_job){kd, W, N, K, (int)(np * t / T), (int)(np * (t + 1) / T), p};
    ram_run_jobs(pack_job_run, jobs, sizeof jobs[0], T);
    out->kernel = kd, out->panels = p, out->block = block;
    return 1;
}

void ram_sgemm_packed_free(struct ram_sgemm_packed *p)
{
    ram_free(p->block);
    p->panels = NULL, p->kernel = NULL, p->block = NULL;
}

void ram_sgemm_packed(int M, const float *A, int lda, const struct ram_sgemm_packed *W, float beta, float *C, int ldc,
                      const float *bias)
{
    enum ram_sgemm_path path = ram_sgemm_default();
    int ours = W->panels && path != RAM_SGEMM_OPENBLAS && kernel_for(path) == W->kernel;
    sgemm_run(path, 0, 1, M, W->n, W->k, 1.0f, A, lda, W->w, W->k, beta, C, ldc, bias, ours ? W->panels : NULL);
}

void ram_sgemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, const float *bias)
{
    ram_sgemm_on(ram_sgemm_default(), tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
}
