/*
** gemv_w8.h — weight-only int8 linear layer for a few rows: y = x @ W^T + b
** with W stored as int8 in groups of RAM_W8_GROUP weights along K, each
** group with its own fp32 scale (symmetric), and x kept in fp32. Made for
** the caption decoder, whose steps multiply 3 rows by every matrix: such a
** product is bound by reading the weights, so a byte per weight is the gain,
** and leaving the activations in fp32 removes the other half of int8's
** rounding (gemm_q8.h also quantizes each activation row to 8 bits, which
** pays off only where products are compute-bound).
**
**     size_t nq, ns;  ram_w8_sizes(N, K, &nq, &ns);   // bytes of codes, floats of scales
**     ram_w8_quantize(W, N, K, codes, scales);
**     struct ram_w8 w = {N, K, codes, scales};       // borrowed
**     ram_w8_linear(x, rows, &w, bias, y);
**
** Thread safety: the weight is only read; the output channels of one call
** are split over the job pool (ram_set_threads).
*/
#ifndef RAM_GEMV_W8_H
#define RAM_GEMV_W8_H

#include <stddef.h>
#include <stdint.h>

/* Weights per scale along K: small enough that one large weight does not
** coarsen a whole row (BERT rows of 768 or 3,072), a multiple of the 16
** lanes the AVX-512 loop converts at once. */
#define RAM_W8_GROUP 64

struct ram_w8 {
    int n, k;            /* W is n x k */
    const int8_t *codes; /* n x k, row-major; borrowed */
    const float *scales; /* n x ceil(k / RAM_W8_GROUP); W[o][i] ~ scales[o][i / GROUP] * codes[o][i]; borrowed */
};

/* Bytes of codes and floats of scales for an n x k matrix; 0 for both if
** n or k < 1 or the sizes overflow. */
void ram_w8_sizes(int n, int k, size_t *code_bytes, size_t *scale_floats);

/* Quantizes W (n x k fp32, row-major): per group, scale = max|w| / 127
** (0 for an all-zero group), code = round(w / scale). */
void ram_w8_quantize(const float *W, int n, int k, int8_t *codes, float *scales);

/* y (rows x n, caller's, must not alias x) = x (rows x k) @ W^T + b (n
** floats or NULL). Each output is computed by one thread in a fixed order,
** so the result does not depend on the thread count. */
void ram_w8_linear(const float *x, int rows, const struct ram_w8 *w, const float *b, float *y);

#endif /* RAM_GEMV_W8_H */
