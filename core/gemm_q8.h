/*
** gemm_q8.h — the int8 linear layer: y = x @ W^T + b with W quantized to
** int8 per output channel (symmetric) at convert time and x quantized to u8
** per row (asymmetric, dynamic) at run time; products accumulate exactly in
** int32 (AMX-INT8 tiles or AVX512-VNNI vpdpbusd when the CPU has them, an
** AVX2 kernel or a portable scalar loop otherwise, all bit-identical) and
** are dequantized to fp32.
**
**     size_t nb = ram_q8_packed_bytes(N, K);       // W (N x K) -> packed int8
**     ram_q8_quantize_pack(W, N, K, packed, scale, &err);
**     struct ram_q8_weight *q;
**     ram_q8_weight_new(N, K, packed, scale, &q, &err);   // owns colsums, borrows packed/scale
**     ram_q8_linear(x, rows, q, b, y, &err);
**     ram_q8_weight_free(q);
**
** Packed layout (what the model file stores, models/README.md): panels of 16
** output channels; inside a panel, K in groups of 4: byte
** ((p * K4 + k4) * 16 + j) * 4 + i holds W[16p + j][4 k4 + i] (zero past N or
** K), i.e. a C-order tensor of shape [N16, K4, 16, 4] with N16 = ceil(N/16),
** K4 = ceil(K/4). One 64-byte row of it is exactly the second operand of one
** vpdpbusd for 16 output channels, so the kernel reads B as stored (no
** packing at load, the mapping is used in place).
*/
#ifndef RAM_GEMM_Q8_H
#define RAM_GEMM_Q8_H

#include "gemm_bf16.h"
#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Largest K: keeps every int32 accumulator exact (255 * 128 * K < 2^31). */
#define RAM_Q8_MAX_K 65536

/* The packed weight of a linear layer that does not run in fp32: int8
** (this file) or bf16 (gemm_bf16.h, when bf16.packed is set: the int8
** fields are then unused). One type for both so that the model layers and
** ram_linear_q take a layer's packed form whatever its precision. */
struct ram_q8_weight {
    int n, k;                    /* output and input channels (W is n x k) */
    const int8_t *packed;        /* ram_q8_packed_bytes(n, k), layout above; borrowed */
    const float *scale;          /* n per-channel scales: W[o][i] ~ scale[o] * q; borrowed */
    int32_t *colsum;             /* N16 * 16 sums over k of q (0 past n); owned by this struct */
    struct ram_bf16_weight bf16; /* packed borrowed; NULL for an int8 layer */
    /* Split forms ("int8x2" / "int8xa" / "int8x3", the int8 analogues of
    ** gemm_bf16.h's): lo, when set, is W's rounding residual W - scale * q
    ** quantized the same way (borrowed): every product is then x W_hi +
    ** x W_lo, and the weights carry ~15 bits. split_x 1: each activation row
    ** is taken as its u8 rounding plus the u8 rounding of its residual (one
    ** more product with W_hi). Both: x_hi W_hi + x_lo W_hi + x_hi W_lo. */
    const struct ram_q8_weight *lo;
    int split_x;
    /* lo_mean 1 ("int8m"): lo is applied to the mean of the quantized rows
    ** only, as a bias correction (lo^T mean_r x_hi[r], one matrix-vector
    ** product per call instead of a second product): the part of the
    ** weights' rounding error that every row shares. */
    int lo_mean;
};

/* Bytes of the packed form of an N x K matrix; 0 if N or K is out of range. */
size_t ram_q8_packed_bytes(int n, int k);

/* Quantizes W (n x k, row-major fp32) per row to int8 in [-127, 127]
** (scale = max|row| / 127, 0 for an all-zero row; each row's code sum kept
** equal to the rounded sum of its values, see gemm_q8.c) into packed
** (ram_q8_packed_bytes) and scale (n). Fails only for a bad shape or
** RAM_ERR_NOMEM (a row of temporaries). */
ram_status ram_q8_quantize_pack(const float *W, int n, int k, int8_t *packed, float *scale, struct ram_error *err);

/* int8x2: the residual of W (n x k) after the codes in packed / scale
** (ram_q8_quantize_pack's output), W - scale[o] * q[o][i], quantized the
** same way into lo_packed and lo_scale. Same failures. */
ram_status ram_q8_quantize_pack_lo(const float *W, int n, int k, const int8_t *packed, const float *scale,
                                   int8_t *lo_packed, float *lo_scale, struct ram_error *err);

/* Wraps a packed matrix and its scales (both borrowed, must outlive *out)
** and computes the column sums the zero-point correction needs.
** Free with ram_q8_weight_free. */
ram_status ram_q8_weight_new(int n, int k, const int8_t *packed, const float *scale, struct ram_q8_weight **out,
                             struct ram_error *err);
void ram_q8_weight_free(struct ram_q8_weight *w);

/* Wraps a bf16 packed matrix (gemm_bf16.h layout; borrowed, must outlive
** *out): ram_q8_linear then runs it through ram_bf16_linear. Free with
** ram_q8_weight_free. */
ram_status ram_q8_weight_new_bf16(int n, int k, const uint16_t *packed, struct ram_q8_weight **out,
                                  struct ram_error *err);

/* y (rows x n) = x (rows x k) @ W^T + b (b may be NULL), through int8
** (or bf16 for a weight made by ram_q8_weight_new_bf16).
** Uses the ram_set_threads count. RAM_ERR_NOMEM if the per-call buffer of
** quantized rows cannot be allocated (ram_q8_linear_ex: or the scratch
** grown). y must not alias x. */
ram_status ram_q8_linear(const float *x, int rows, const struct ram_q8_weight *w, const float *b, float *y,
                         struct ram_error *err);

/* Steps fused into ram_q8_linear_ex (all 0 / NULL: plain ram_q8_linear).
** Each gives the values of the separate op, bit for bit. */
struct ram_q8_fuse {
    const float *ln_w, *ln_b; /* ln_w not NULL: x's rows are LayerNorm'ed first (ram_layernorm, */
    float ln_eps;             /* weight ln_w, bias ln_b, eps): x itself is not written */
    int add;                  /* 1: y += x @ W^T + b (ram_add of the result: a residual) */
};

/* ram_q8_linear with the steps of f (NULL: none) done on each row or
** output while it is in cache, instead of passes of their own over memory.
** Only for an int8 weight (RAM_ERR_ARG for a bf16 one with a step). The
** quantized rows go to scratch, the caller's context's working memory
** (scratch.h; grown when too small, borrowed for the call), or with scratch
** NULL to a buffer allocated and freed in the call. */
struct ram_scratch;
ram_status ram_q8_linear_ex(const float *x, int rows, const struct ram_q8_weight *w, const float *b, float *y,
                            const struct ram_q8_fuse *f, struct ram_scratch *scratch, struct ram_error *err);

/* ---- for tests and benchmarks ---- */

/* 1 when the AVX512-VNNI kernel is used, when AMX-INT8 tiles are (for K a
** multiple of 64; ram_amx_usable), and when the AVX-VNNI and AVX2 kernels
** are available (used, in that order, where AVX512-VNNI is not).
** force_scalar 1 makes every later call take the portable path, 2 the
** AVX512-VNNI kernel instead of AMX, 3 the AVX2 kernel, 4 the AVX-VNNI one
** (tests compare the five, which agree bit for bit), 0 restores. */
/* ram_q8_fuse_x2(0): on AMX, an int8x2 weight's two products run as two
** passes (as on the other levels) instead of one fused pass; 1 restores.
** The bits are the same either way (tests compare them). */
void ram_q8_fuse_x2(int on);

int ram_q8_have_vnni(void);
int ram_q8_have_amx(void);
int ram_q8_have_avx2(void);
int ram_q8_have_avxvnni(void);
void ram_q8_force_scalar(int force_scalar);

/* The integer core alone: acc (rows x n, int32) = sum_k a[r][k] * q[o][k]
** for u8 rows a (rows x lda bytes, lda >= k rounded up to 4, zero-padded),
** with the current path (AMX, VNNI, AVX2 or scalar). */
ram_status ram_q8_gemm_s32(const uint8_t *a, int rows, int lda, const struct ram_q8_weight *w, int32_t *acc,
                           struct ram_error *err);

/* Per-row quantization of x (rows x k) into u8 rows of lda bytes (zero-padded
** past k), with scale sa and zero point za: x ~ sa * (a - za). */
void ram_q8_quantize_rows(const float *x, int rows, int k, uint8_t *a, int lda, float *sa, int32_t *za);

#endif /* RAM_GEMM_Q8_H */
