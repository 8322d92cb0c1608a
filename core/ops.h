/*
** ops.h — the op layer under the models: dense products (through sgemm.h,
** the only path to BLAS) and the element-wise kernels (LayerNorm, GELU, softmax). Swin, the
** tagging decoder and the CLIP text tower call these; none of them touches
** BLAS directly. All matrices are row-major fp32.
*/
#ifndef RAM_OPS_H
#define RAM_OPS_H

#include "internal.h"
#include "jobs.h"

#include <stddef.h>

struct ram_q8_weight; /* gemm_q8.h */
struct ram_q8_fuse;   /* gemm_q8.h */

/* y (rows x out) = x (rows x in) @ W^T + b, with W in PyTorch's (out, in)
** layout; b may be NULL. y must not alias x. */
void ram_linear(const float *x, int rows, int in, const float *W, const float *b, int out, float *y);

/* ram_linear for a decoder step's few rows: up to RAM_LINEAR_FEW_ROWS rows
** take a path that reads each weight row once (one dot per output), more go
** to ram_linear.
** Its rounding differs from ram_linear's, so a caller whose results must
** not depend on how many rows it batches (open-set scoring, whose scores
** are compared across calls and databases) uses ram_linear. */
void ram_linear_rows(const float *x, int rows, int in, const float *W, const float *b, int out, float *y);
#define RAM_LINEAR_FEW_ROWS 4

/* The few-rows path of ram_linear_rows for any number of rows: each output
** is one ram_dot of its x row and weight row, + bias, so every row comes out
** bit for bit as ram_linear_rows computes it in a call of at most
** RAM_LINEAR_FEW_ROWS rows, whatever the other rows and the thread count.
** ram_linear_invariant's path when the sgemm is OpenBLAS's. */
void ram_linear_dots(const float *x, int rows, int in, const float *W, const float *b, int out, float *y);

/* ram_linear whose result for a row never depends on the other rows of the
** call nor on the thread count: our sgemm (it is so on every level; half
** the rows' time of ram_linear_dots over many rows), or ram_linear_dots on
** the OpenBLAS path (RAM_SGEMM=openblas, CPUs below AVX2), whose rounding
** depends on the row count. Tag2Text's decoder uses it for every fp32
** product, so that verified decoding's check of many steps at once gives
** each 3-row step's bits. */
void ram_linear_invariant(const float *x, int rows, int in, const float *W, const float *b, int out, float *y);

/* ram_linear and ram_linear_invariant through P, W's panels packed once by
** its owner (ram_sgemm_pack_weights; a model packs at load and frees them
** with itself): the same bits, without packing W again. P may be NULL, or
** made for another W (then W as is). */
struct ram_sgemm_packed;
void ram_linear_packed(const float *x, int rows, int in, const float *W, const struct ram_sgemm_packed *P,
                       const float *b, int out, float *y);
void ram_linear_invariant_packed(const float *x, int rows, int in, const float *W, const struct ram_sgemm_packed *P,
                                 const float *b, int out, float *y);

/* ram_linear through the int8 kernel when q is not NULL (quantized model
** files, gemm_q8.h; or q's bf16 form when it has one), else the fp32 W.
** scratch: the caller's context's working memory for the products
** (scratch.h; NULL: each product allocates its own). Only the int8 and
** bf16 paths can fail (RAM_ERR_NOMEM for their buffers). */
struct ram_scratch;
ram_status ram_linear_q(const float *x, int rows, int in, const float *W, const struct ram_q8_weight *q, const float *b,
                        int out, float *y, struct ram_scratch *scratch, struct ram_error *err);

/* ram_linear_q with a LayerNorm of x's rows before it and/or a residual
** add (y += product) after it, as struct ram_q8_fuse (gemm_q8.h)
** says: fused into the int8 kernel for an int8 q (no pass of their own over
** memory; likewise for q's bf16 form, ram_bf16_linear_ex), else run as
** the separate ops, with the same values either way.
** The separate ops need room: ln_out (rows x in; may be x) receives the
** LayerNorm'ed rows, tmp (rows x out) the product before it is added to y. */
ram_status ram_linear_q_fused(const float *x, int rows, int in, const float *W, const struct ram_q8_weight *q,
                              const float *b, int out, float *y, const struct ram_q8_fuse *f, float *ln_out, float *tmp,
                              struct ram_scratch *scratch, struct ram_error *err);

/* General product C = alpha * op(A) @ op(B) + beta * C (row-major; op =
** transpose when t* != 0): our kernels at the CPU's vector width (sgemm.h),
** on the calling thread's thread count; results do not depend on it. */
void ram_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

/* Row-wise LayerNorm over cols (biased variance, eps inside the sqrt); y may equal x. */
void ram_layernorm(const float *x, float *y, int rows, int cols, const float *w, const float *b, float eps);

void ram_gelu(float *x, size_t n);       /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
void ram_quick_gelu(float *x, size_t n); /* x * sigmoid(1.702 x) (CLIP) */
void ram_relu(float *x, size_t n);
void ram_softmax_rows(float *x, int rows, int cols); /* in place, max-subtracted */
/* ram_softmax_rows of x / div, each quotient rounded as x[i] / div alone
** would be (torch's scores / sqrt(head_dim), then softmax), without a pass
** of its own over x. */
void ram_softmax_rows_div(float *x, int rows, int cols, float div);
void ram_add(float *y, const float *x, size_t n); /* y += x */
float ram_sigmoid(float x);

float ram_dot(const float *a, const float *b, int n); /* four vector sums in flight */

/* One head of attention over N tokens of width d, without BLAS (small
** products, called from several threads at once): s (N x N) = s0 (the
** additive bias and mask, N x N; may be s itself) + (q * scale) k^T, each
** q element rounded to float after the multiplication, as torch scales q
** first; softmax by rows; o = s v. q, k, v are rows at stride ld (only
** read); o rows at stride ldo; s (N x N) and kt (2 x d x N) are scratch.
** s0 is only read, so a cached bias needs no copy. Results do not depend
** on which thread runs it. */
void ram_attention_head(const float *q, const float *k, const float *v, int ld, int N, int d, float scale,
                        const float *s0, float *s, float *kt, float *o, int ldo);

/* RAM++'s description reweighting of n classes in one pass over their
** rows (n x des x E): w[i] = softmax over d of q . rows[i][d] (des floats
** per class), out[i] = sum over d of w[i][d] rows[i][d] (E floats). */
void ram_reweight_rows(const float *q, const float *rows, int n, int des, int E, float *w, float *out);

/* The calling thread's thread count for the kernels (jobs.h; ram_set_threads
** of ram.h is the same). */
void ram_ops_set_threads(int n);
int ram_ops_get_threads(void);

#endif /* RAM_OPS_H */
