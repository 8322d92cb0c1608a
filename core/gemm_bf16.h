/*
** gemm_bf16.h — the bf16 linear layer: y = x @ W^T + b with W stored in
** bfloat16 (made from fp32 by round-to-nearest-even at load or convert
** time) and x rounded to bf16 per row on the fly; products accumulate in
** fp32. Five paths, chosen per call from cpuid (not from the build flags):
** AMX-BF16 tiles, AVX512-BF16 (vdpbf16ps), AVX-512F or AVX2+FMA widening
** bf16 to fp32, and a portable scalar loop. The last four give
** bit-identical results, AMX results within fp32 rounding of them (see
** gemm_bf16.c).
**
**     size_t nb = ram_bf16_packed_bytes(N, K);
**     ram_bf16_pack(W, N, K, packed);                    // W (N x K) fp32
**     struct ram_bf16_weight w = {N, K, packed};         // packed borrowed
**     ram_bf16_linear(x, rows, &w, b, y, &scratch, &err); // scratch.h; or NULL
**
** Packed layout (what a model file stores): panels of 16 output channels;
** inside a panel, K in pairs: element ((p * K2 + k2) * 16 + j) * 2 + i
** (uint16) holds W[16p + j][2 k2 + i] (zero past N or K), i.e. a C-order
** tensor [N16, K2, 16, 2] with N16 = ceil(N/16), K2 = ceil(K/2). One
** 64-byte row of it is the second operand of one vdpbf16ps for 16 output
** channels, so the kernel reads the weights as stored.
*/
#ifndef RAM_GEMM_BF16_H
#define RAM_GEMM_BF16_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

struct ram_bf16_weight {
    int n, k;               /* output and input channels (W is n x k) */
    const uint16_t *packed; /* ram_bf16_packed_bytes(n, k) bytes, layout above; borrowed */
    const uint16_t *lo;     /* NULL, or "bf16x2": W - packed rounded to bf16, same layout; borrowed */
    int split_x;            /* 1: each activation as its bf16 rounding plus the rounded residual (two products) */
};

/* Bytes of the packed form of an N x K matrix; 0 if N or K is out of range. */
size_t ram_bf16_packed_bytes(int n, int k);

/* Rounds W (n x k, row-major fp32) to bf16 into packed (ram_bf16_packed_bytes). */
void ram_bf16_pack(const float *W, int n, int k, uint16_t *packed);

/* bf16x2: the rounding residual W - bf16(W), itself rounded to bf16, into
** lo (same layout and size as ram_bf16_pack's). hi + lo carries ~16
** significant bits of each weight where hi alone carries 8: with lo set,
** every product is x * hi + x * lo (twice the multiply-adds), which leaves
** the activations' rounding as the only error of the layer. */
void ram_bf16_pack_lo(const float *W, int n, int k, uint16_t *lo);

/* y (rows x n) = x (rows x k) @ W^T + b (b may be NULL), x rounded to
** bf16 first (and W taken as packed + lo when w->lo is set). Uses the
** ram_set_threads count; results do not depend on it. The rounded rows go
** to scratch, the caller's context's working memory (scratch.h; grown when
** too small, borrowed for the call), or with scratch NULL to a buffer
** allocated for this call only. RAM_ERR_NOMEM if that memory cannot be
** had. y must not alias x. */
struct ram_scratch;
ram_status ram_bf16_linear(const float *x, int rows, const struct ram_bf16_weight *w, const float *b, float *y,
                           struct ram_scratch *scratch, struct ram_error *err);

/* ram_bf16_linear with the steps of f (struct ram_q8_fuse, gemm_q8.h; NULL:
** none) done on each row or output while it is in cache, instead of passes
** of their own over memory: x's rows LayerNorm'ed first (ram_layernorm's
** values; x is not written) and/or y += the result (ram_add's values: a
** residual). Same results as those ops around ram_bf16_linear. */
struct ram_q8_fuse;
ram_status ram_bf16_linear_ex(const float *x, int rows, const struct ram_bf16_weight *w, const float *b, float *y,
                              const struct ram_q8_fuse *f, struct ram_scratch *scratch, struct ram_error *err);

/* 1 when the environment asks for the plain bf16 path (RAM_BF16=plain),
** 0 for the default accurate mix (core/weights.h ram_bf16_path). */
int ram_bf16_plain(void);

/* fp32 -> bf16, round to nearest even, subnormals flushed to (signed) zero
** as vcvtne2ps2bf16 does; NaN stays NaN. */
uint16_t ram_f32_to_bf16(float f);

/* 1 when the AMX tiles can run feature (RAM_AMX_BF16 or RAM_AMX_INT8, the
** cpuid leaf 7 EDX bit): the CPU has it and the kernel granted this process
** the tile state (asked once, then cached: the only state these kernels keep). */
enum { RAM_AMX_BF16 = 22, RAM_AMX_INT8 = 25 };
int ram_amx_usable(int feature);

/* ---- for tests and benchmarks ---- */

/* The path calls take: 4 AMX-BF16 tiles (when the kernel grants them; for K
** a multiple of 32, else level 3), 3 AVX512-BF16, 2 AVX-512F (widening), 1
** AVX2+FMA (widening, 8 lanes), 0 scalar. Levels 0-3 are bit-identical; AMX
** sums the same exact products in another order (within fp32 rounding of
** the others). ram_bf16_force_level(L) caps it at L (tests compare the
** paths); -1 restores the CPU's best. */
enum { RAM_BF16_SCALAR = 0, RAM_BF16_AVX2 = 1, RAM_BF16_AVX512 = 2, RAM_BF16_AVX512BF16 = 3, RAM_BF16_AMX = 4 };
int ram_bf16_level(void);
void ram_bf16_force_level(int level);

#endif /* RAM_GEMM_BF16_H */
