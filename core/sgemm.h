/*
** sgemm.h — fp32 matrix products on our own packed, register-blocked
** micro-kernels (one file per instruction set: sgemm_avx512.c,
** sgemm_avx2.c, the portable one in sgemm.c), chosen at run time by cpu.h,
** threaded by the job pool (jobs.h); OpenBLAS as the fallback path.
**
** Results do not depend on the thread count: work is split over columns
** (or rows) of C, never over K, and the K blocking is fixed.
*/
#ifndef RAM_SGEMM_H
#define RAM_SGEMM_H

#include "cpu.h"

/* The implementations; the first RAM_ISA_COUNT values are enum ram_isa's. */
enum ram_sgemm_path {
    RAM_SGEMM_PORTABLE = RAM_ISA_PORTABLE,
    RAM_SGEMM_AVX2 = RAM_ISA_AVX2,
    RAM_SGEMM_AVX512 = RAM_ISA_AVX512,
    RAM_SGEMM_OPENBLAS = RAM_ISA_COUNT,
    RAM_SGEMM_PATHS
};

/* C (M x N) = alpha op(A) op(B) + beta C [+ bias[j] on every row], all
** row-major; op(X) = X^T when its t flag is set (A is then K x M, B N x K).
** beta == 0: C is not read (it may hold anything). bias may be NULL. Uses
** the calling thread's thread count (jobs.h). */
void ram_sgemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, const float *bias);

/* The same through one given path (tests, benchmarks); a path this CPU
** cannot run falls back to the portable one. */
void ram_sgemm_on(enum ram_sgemm_path path, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc, const float *bias);

/* A linear layer's weights W (N x K, PyTorch's (out, in) layout: the B^T
** of C = A W^T) packed once in the panels the kernel of the default path
** reads: per block of sgemm.c's K blocking, ceil(N / nr) panels of kc x nr
** floats (the last one zero-padded), the blocks one after another.
** The products then skip packing (each weight was packed from memory on
** every forward: about 6 % of the forward's time) and give the same bits as
** ram_sgemm(0, 1, ...) on W, which they fall back to when the panels are
** missing or were made for another kernel (OpenBLAS path, a forced ISA).
** w is borrowed and must outlive the struct; panels are owned
** (ram_sgemm_packed_free). */
struct ram_sgemm_packed {
    const float *w;
    int n, k;
    const void *kernel; /* the struct ram_sgemm_kernel the panels are laid out for */
    float *panels;      /* NULL: not packed */
    void *block;        /* the allocation panels sit in (2 MB aligned inside it) */
};

/* Fills out for W and packs it (over the pool); returns 0, leaving
** out->panels NULL, when the default path has no panels (OpenBLAS) or
** memory is short: products through out still work, on W. */
int ram_sgemm_pack_weights(const float *W, int N, int K, struct ram_sgemm_packed *out);
void ram_sgemm_packed_free(struct ram_sgemm_packed *p); /* frees the panels; out stays usable (on W) */

/* C (M x W->n) = A W^T + beta C [+ bias] (A: M x W->k, row-major at lda),
** bit-identical to ram_sgemm(0, 1, M, n, k, 1, A, lda, W->w, k, beta, C,
** ldc, bias) on every path. */
void ram_sgemm_packed(int M, const float *A, int lda, const struct ram_sgemm_packed *W, float beta, float *C, int ldc,
                      const float *bias);

/* The path ram_sgemm takes: our kernel of ram_cpu_isa() when it has vectors,
** else OpenBLAS (whose own run-time dispatch covers older CPUs), unless the
** environment says RAM_SGEMM=openblas, or RAM_ISA=portable asks for ours. */
enum ram_sgemm_path ram_sgemm_default(void);
const char *ram_sgemm_path_name(enum ram_sgemm_path path); /* static string */

/* Benchmarks and tests: ram_sgemm takes path from now on (process-wide; call
** it while no product runs); RAM_SGEMM_PATHS restores the default. 0 if this
** CPU cannot run path. */
int ram_sgemm_force(enum ram_sgemm_path path);
int ram_sgemm_path_available(enum ram_sgemm_path path);

/* One instruction set's kernel (sgemm_avx512.c, sgemm_avx2.c, sgemm.c).
** kernel: C[r][j] (r < m <= mr, j < n <= nr) = alpha acc + beta C [+ bias[j]]
** with acc = sum over k < kc of a[r*rs + k*cs] * bp[k*nr + j]; the a rows
** r < mr must all be readable (the caller pads the last row block).
** pack_b: bp = B(k0 .. k0+kc, j0 .. j0+nc) in panels of nr columns (kc x nr
** floats each, the last one zero-padded). */
struct ram_sgemm_kernel {
    int mr, nr;
    void (*kernel)(int kc, const float *a, long rs, long cs, const float *bp, float *c, long ldc, int m, int n,
                   float alpha, float beta, const float *bias);
    void (*pack_b)(int tB, const float *B, long ldb, int k0, int kc, int j0, int nc, int nr, float *bp);
    /* Optional (few_mr 0: none): the same contract for tiles of m <= few_mr
    ** rows (reads few_mr rows of a), each element computed by the same
    ** operations in the same order as by kernel, so the same bits. */
    int few_mr;
    void (*few)(int kc, const float *a, long rs, long cs, const float *bp, float *c, long ldc, int m, int n,
                float alpha, float beta, const float *bias);
};
extern const struct ram_sgemm_kernel ram_sgemm_kernel_avx512, ram_sgemm_kernel_avx2;

/* The generic packer (any nr), used by kernels without their own. */
void ram_sgemm_pack_b_generic(int tB, const float *B, long ldb, int k0, int kc, int j0, int nc, int nr, float *bp);

#endif /* RAM_SGEMM_H */
