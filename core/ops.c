/*
** ops.c — element-wise kernels and the entry to the matrix products (sgemm.c).
** Reductions that decide accuracy (LayerNorm statistics) accumulate in double
** so that our results stay within the golden tolerance whatever the row width.
**
** The kernels themselves are in ops_vec.h, compiled per instruction set;
** ops_vec_pick.c picks the set (cpu.h); this file splits the work over threads.
*/
#include "ops.h"

#include "gemm_bf16.h"
#include "gemm_q8.h"
#include "jobs.h"
#include "ram.h"
#include "sgemm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cpu.h"
#include "ops_vec_table.h"

/* The kernels of the instruction set chosen at run time (cpu.h). */
#define K ram_ops_vec_pick

void ram_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc)
{
    ram_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

/* The bias goes into the product's last step (no separate pass over y). */
/* ---- the linear layer of a few rows ----
** A caption decoder step multiplies 3 rows (one token per beam) by every
** weight matrix: the product is bound by reading the weights, each used 3
** times. A blocked sgemm packs the whole matrix into panels for so few rows
** (on Tag2Text's 30,524 x 768 LM head that took 35 ms against 13 ms for
** reading each weight row once) and its work estimate keeps the product on
** one thread. So each job takes a contiguous range of output channels
** (whole rows of W, read in order, which the hardware prefetcher follows)
** and dots each weight row with every x row while it is in L1. Each output
** is one dot, so the result does not depend on the thread count. */
#define FEW_ROWS RAM_LINEAR_FEW_ROWS
#define FEW_ROWS_MIN_WORK ((double)(1 << 18)) /* multiply-adds per job at least */

struct rows_job {
    const float *x, *W, *b;
    float *y;
    int rows, in, out, o0, o1;
};

static void *rows_job_run(void *arg)
{
    const struct rows_job *j = arg;
    const struct ram_ops_vec *k = K();
    for (int o = j->o0; o < j->o1; o++) {
        const float *w = j->W + (size_t)o * j->in;
        const float bias = j->b ? j->b[o] : 0.0f;
        for (int r = 0; r < j->rows; r++)
            j->y[(size_t)r * j->out + o] = k->dot(j->x + (size_t)r * j->in, w, j->in) + bias;
    }
    return NULL;
}

/* Many rows: the same dots in blocks (the table's dots kernel), over tiles
** of DOT_TILE_ROWS rows x about DOT_TILE_BYTES of weights so that both stay
** in L2 while the block walks them. */
#define DOT_TILE_ROWS 32
#define DOT_TILE_BYTES (192 << 10)

static void *dots_job_run(void *arg)
{
    const struct rows_job *j = arg;
    const struct ram_ops_vec *k = K();
    int chunk = (int)(DOT_TILE_BYTES / (sizeof(float) * (size_t)j->in));
    chunk = chunk < 3 ? 3 : chunk - chunk % 3;
    for (int o = j->o0; o < j->o1; o += chunk) {
        const int no = j->o1 - o < chunk ? j->o1 - o : chunk;
        for (int r = 0; r < j->rows; r += DOT_TILE_ROWS) {
            const int nr = j->rows - r < DOT_TILE_ROWS ? j->rows - r : DOT_TILE_ROWS;
            k->dots(j->x + (size_t)r * j->in, nr, j->W + (size_t)o * j->in, no, j->in, j->b ? j->b + o : NULL,
                    j->y + (size_t)r * j->out + o, j->out);
        }
    }
    return NULL;
}

void ram_linear_dots(const float *x, int rows, int in, const float *W, const float *b, int out, float *y)
{
    if (rows < 1 || in < 1 || out < 1) return;
    struct rows_job base = {x, W, b, y, rows, in, out, 0, out}, jobs[RAM_MAX_JOBS];
    void *(*run)(void *) = rows > FEW_ROWS ? dots_job_run : rows_job_run;
    const int T = ram_job_count((double)rows * out * in, FEW_ROWS_MIN_WORK, (out + 15) / 16);
    if (T <= 1) {
        run(&base);
        return;
    }
    for (int t = 0; t < T; t++) {
        jobs[t] = base;
        jobs[t].o0 = (int)((long)out * t / T);
        jobs[t].o1 = (int)((long)out * (t + 1) / T);
    }
    ram_run_jobs(run, jobs, sizeof jobs[0], T);
}

void ram_linear(const float *x, int rows, int in, const float *W, const float *b, int out, float *y)
{
    ram_sgemm(0, 1, rows, out, in, 1.0f, x, in, W, in, 0.0f, y, out, b);
}

void ram_linear_invariant(const float *x, int rows, int in, const float *W, const float *b, int out, float *y)
{
    if (ram_sgemm_default() == RAM_SGEMM_OPENBLAS)
        ram_linear_dots(x, rows, in, W, b, out, y);
    else
        ram_linear(x, rows, in, W, b, out, y);
}

/* P when it is W's packed form (the same product), else NULL. */
static const struct ram_sgemm_packed *packed_of(const float *W, const struct ram_sgemm_packed *P, int in, int out)
{
    return P && P->w == W && P->k == in && P->n == out ? P : NULL;
}

void ram_linear_packed(const float *x, int rows, int in, const float *W, const struct ram_sgemm_packed *P,
                       const float *b, int out, float *y)
{
    if ((P = packed_of(W, P, in, out)))
        ram_sgemm_packed(rows, x, in, P, 0.0f, y, out, b);
    else
        ram_linear(x, rows, in, W, b, out, y);
}

void ram_linear_invariant_packed(const float *x, int rows, int in, const float *W, const struct ram_sgemm_packed *P,
                                 const float *b, int out, float *y)
{
    if (ram_sgemm_default() == RAM_SGEMM_OPENBLAS)
        ram_linear_dots(x, rows, in, W, b, out, y);
    else
        ram_linear_packed(x, rows, in, W, P, b, out, y);
}

void ram_linear_rows(const float *x, int rows, int in, const float *W, const float *b, int out, float *y)
{
    if (rows > 0 && rows <= FEW_ROWS && in > 0 && out > 0) {
        ram_linear_dots(x, rows, in, W, b, out, y);
        return;
    }
    ram_linear(x, rows, in, W, b, out, y);
}

ram_status ram_linear_q(const float *x, int rows, int in, const float *W, const struct ram_q8_weight *q, const float *b,
                        int out, float *y, struct ram_scratch *scratch, struct ram_error *err)
{
    if (q && q->bf16.packed) return ram_bf16_linear(x, rows, &q->bf16, b, y, scratch, err);
    if (q) return ram_q8_linear_ex(x, rows, q, b, y, NULL, scratch, err);
    ram_linear(x, rows, in, W, b, out, y);
    return RAM_OK;
}

ram_status ram_linear_q_fused(const float *x, int rows, int in, const float *W, const struct ram_q8_weight *q,
                              const float *b, int out, float *y, const struct ram_q8_fuse *f, float *ln_out, float *tmp,
                              struct ram_scratch *scratch, struct ram_error *err)
{
    if (q && !q->bf16.packed) return ram_q8_linear_ex(x, rows, q, b, y, f, scratch, err);
    if (q) return ram_bf16_linear_ex(x, rows, &q->bf16, b, y, f, scratch, err); /* bf16: fused too */
    if (f->ln_w) {
        ram_layernorm(x, ln_out, rows, in, f->ln_w, f->ln_b, f->ln_eps);
        x = ln_out;
    }
    ram_status rc = ram_linear_q(x, rows, in, W, q, b, out, f->add ? tmp : y, scratch, err);
    if (rc) return rc;
    if (f->add) ram_add(y, tmp, (size_t)rows * out);
    return RAM_OK;
}

void ram_relu(float *x, size_t n) { K()->relu(x, n); }

void ram_attention_head(const float *q, const float *k, const float *v, int ld, int N, int d, float scale,
                        const float *s0, float *s, float *kt, float *o, int ldo)
{
    K()->attention_head(q, k, v, ld, N, d, scale, s0, s, kt, o, ldo);
}

float ram_dot(const float *a, const float *b, int n) { return K()->dot(a, b, n); }

void ram_reweight_rows(const float *q, const float *rows, int n, int des, int E, float *w, float *out)
{
    K()->reweight_rows(q, rows, n, des, E, w, out);
}

/* ---- the element-wise kernels over threads ----
** Swin-L's largest passes (LayerNorm of 9,216 x 192, GELU of 9,216 x 768)
** take milliseconds on one core while the products around them use every
** core, so past EW_MIN elements per thread they are split: LayerNorm and
** softmax by rows, GELU and add at multiples of 64 elements, so that each
** element takes the same vector or scalar path whatever the thread count
** (results do not depend on it). 2^16 elements (a quarter of a MB, tens of
** microseconds) is enough to hand a job to a pool worker, which spins
** between the back-to-back calls of a forward: at 2^18, Swin-L's stage 3
** and 4 LayerNorms (576 x 768, 144 x 1,536) ran on one core, 1 % of the
** 2-thread forward's samples on the caller alone (perf). */
#define EW_MIN ((size_t)1 << 16)

enum { EW_GELU, EW_QUICK_GELU, EW_ADD, EW_LAYERNORM, EW_SOFTMAX };

struct ew_job {
    int op, cols;
    float *x;
    const float *in, *w, *b;
    float eps;
    size_t i0, i1; /* elements, or rows for LayerNorm and softmax */
};

static void *ew_run(void *arg)
{
    const struct ew_job *j = arg;
    size_t n = j->i1 - j->i0, c = (size_t)j->cols;
    switch (j->op) {
    case EW_GELU: K()->gelu(j->x + j->i0, n); break;
    case EW_QUICK_GELU: K()->quick_gelu(j->x + j->i0, n); break;
    case EW_ADD: K()->add(j->x + j->i0, j->in + j->i0, n); break;
    case EW_LAYERNORM:
        K()->layernorm_rows(j->in + j->i0 * c, j->x + j->i0 * c, (int)n, j->cols, j->w, j->b, j->eps);
        break;
    default: K()->softmax_rows(j->x + j->i0 * c, (int)n, j->cols, j->eps); break; /* eps: the divisor */
    }
    return NULL;
}

/* Splits units (elements, or rows of cols) into jobs of base and runs them. */
static void ew_split(struct ew_job base, size_t units, size_t per_unit, size_t align)
{
    int T = ram_job_count((double)units * per_unit, (double)EW_MIN, (long)(units / align));
    if (T <= 1) {
        base.i0 = 0, base.i1 = units;
        ew_run(&base);
        return;
    }
    struct ew_job jobs[RAM_MAX_JOBS];
    for (int t = 0; t < T; t++) {
        jobs[t] = base;
        jobs[t].i0 = t ? jobs[t - 1].i1 : 0;
        jobs[t].i1 = t == T - 1 ? units : units / T * (t + 1) / align * align;
        if (jobs[t].i1 < jobs[t].i0) jobs[t].i1 = jobs[t].i0;
    }
    ram_run_jobs(ew_run, jobs, sizeof jobs[0], T);
}

void ram_layernorm(const float *x, float *y, int rows, int cols, const float *w, const float *b, float eps)
{
    if (rows < 1 || cols < 1) return;
    ew_split((struct ew_job){EW_LAYERNORM, cols, y, x, w, b, eps, 0, 0}, (size_t)rows, (size_t)cols, 1);
}

void ram_softmax_rows(float *x, int rows, int cols) { ram_softmax_rows_div(x, rows, cols, 1.0f); }

void ram_softmax_rows_div(float *x, int rows, int cols, float div)
{
    if (rows < 1 || cols < 1) return;
    ew_split((struct ew_job){EW_SOFTMAX, cols, x, NULL, NULL, NULL, div, 0, 0}, (size_t)rows, (size_t)cols, 1);
}

void ram_gelu(float *x, size_t n) { ew_split((struct ew_job){EW_GELU, 1, x, NULL, NULL, NULL, 0, 0, 0}, n, 1, 64); }

void ram_quick_gelu(float *x, size_t n)
{
    ew_split((struct ew_job){EW_QUICK_GELU, 1, x, NULL, NULL, NULL, 0, 0, 0}, n, 1, 64);
}

void ram_add(float *y, const float *x, size_t n)
{
    ew_split((struct ew_job){EW_ADD, 1, y, x, NULL, NULL, 0, 0, 0}, n, 1, 64);
}

float ram_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

const char *ram_kernels(void)
{
    static const char *const bf16[] = {"scalar", "avx2", "avx512", "avx512bf16", "amx"};
    static _Thread_local char buf[96];
    int b = ram_bf16_level();
    snprintf(buf, sizeof buf, "%s (bf16 %s %s, int8 %s)", ram_sgemm_path_name(ram_sgemm_default()),
             b >= 0 && b <= 4 ? bf16[b] : "?", ram_bf16_plain() ? "plain" : "accurate",
             ram_q8_have_amx()       ? "amx"
             : ram_q8_have_vnni()    ? "vnni"
             : ram_q8_have_avxvnni() ? "avxvnni"
             : ram_q8_have_avx2()    ? "avx2"
                                     : "scalar");
    return buf;
}

void ram_ops_set_threads(int n) { ram_jobs_set_threads(n); }
int ram_ops_get_threads(void) { return ram_jobs_threads(); }

void ram_set_threads(int n) { ram_jobs_set_threads(n); }
int ram_get_threads(void) { return ram_jobs_threads(); }

void ram_l2_normalize(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) v[i] *= inv;
}
