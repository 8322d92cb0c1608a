/*
** rht.c — the randomized Hadamard rotation of the token cache's layout 2
** (cache_score.h): T = H D / sqrt(n) on power-of-two widths. Shared by the
** packer, the scorer and the scorer's rotated weights (cache_weights.c).
*/
#include "rht.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The fixed signs of the randomized Hadamard transform: part of layout 2,
** never to change. */
float ram_rht_sign(int d) { return ((((uint32_t)d * 2654435761u) >> 16) & 1) ? -1.0f : 1.0f; }

/* The unnormalised Walsh-Hadamard transform in place, stage by stage: in
** stage len, every pair (x[j], x[j + len]) becomes (a + b, a - b). The AVX2
** path does the same butterflies with the same operands in the same stage
** order (IEEE addition is commutative), so it gives the same bits; it runs
** the three short stages inside each group of eight and the others eight
** pairs at a time. The packer rotates every token of every picture it stores. */
static void fwht_plain(float *x, int n)
{
    for (int len = 1; len < n; len <<= 1)
        for (int i = 0; i < n; i += 2 * len)
            for (int j = i; j < i + len; j++) {
                float a = x[j], b = x[j + len];
                x[j] = a + b;
                x[j + len] = a - b;
            }
}

#if defined(__AVX2__)
#include <immintrin.h>
static void fwht(float *x, int n)
{
    if (n < 8) {
        fwht_plain(x, n);
        return;
    }
    /* stages 1, 2, 4: y is x with each lane's partner; lower lanes take x + y, upper y - x */
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), y;
        y = _mm256_permute_ps(v, 0xB1); /* partners at distance 1: lanes 1,0,3,2 */
        v = _mm256_blend_ps(_mm256_add_ps(v, y), _mm256_sub_ps(y, v), 0xAA);
        y = _mm256_permute_ps(v, 0x4E); /* distance 2: lanes 2,3,0,1 */
        v = _mm256_blend_ps(_mm256_add_ps(v, y), _mm256_sub_ps(y, v), 0xCC);
        y = _mm256_permute2f128_ps(v, v, 0x01); /* distance 4: the other half */
        v = _mm256_blend_ps(_mm256_add_ps(v, y), _mm256_sub_ps(y, v), 0xF0);
        _mm256_storeu_ps(x + i, v);
    }
    for (int len = 8; len < n; len <<= 1)
        for (int i = 0; i < n; i += 2 * len)
            for (int j = i; j < i + len; j += 8) {
                __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + len);
                _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
                _mm256_storeu_ps(x + j + len, _mm256_sub_ps(a, b));
            }
}
#else
static void fwht(float *x, int n) { fwht_plain(x, n); }
#endif

/* x <- T x with T = H D / sqrt(n) (orthonormal): spreads a few large channels
** over all of them, so that one scale per token fits every element. */
void ram_rht_forward(float *x, int n)
{
    for (int d = 0; d < n; d++) x[d] *= ram_rht_sign(d);
    fwht(x, n);
    float s = 1.0f / sqrtf((float)n);
    for (int d = 0; d < n; d++) x[d] *= s;
}

/* x <- T^T x (the inverse). */
void ram_rht_inverse(float *x, int n)
{
    fwht(x, n);
    float s = 1.0f / sqrtf((float)n);
    for (int d = 0; d < n; d++) x[d] *= s * ram_rht_sign(d);
}

/* rows x n vectors in place: T x each (forward), or T^T x. */
void ram_rht_rows(float *x, int rows, int n, int forward)
{
    for (int r = 0; r < rows; r++) (forward ? ram_rht_forward : ram_rht_inverse)(x + (size_t)r * n, n);
}
