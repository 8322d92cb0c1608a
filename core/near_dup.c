/*
** near_dup.c — the pairs of close unit vectors (near_dup.h): blocked
** dequantisation and ram_gemm over the upper triangle.
*/
#include "near_dup.h"

#include "cache_score.h"
#include "internal.h"
#include "ops.h"

#include <string.h>

#define NEAR_BLOCK_ROWS 256
#define NEAR_BLOCK_COLS 2048

static float unit_scale(const unsigned char *p)
{
    uint32_t u = p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Rows [r0, r0 + nr) of the packed vectors as floats (scale * q). */
static void dequant_rows(const unsigned char *units, size_t stride, size_t r0, size_t nr, int dim, float *out)
{
    for (size_t r = 0; r < nr; r++) {
        const unsigned char *p = units + (r0 + r) * stride;
        float s = unit_scale(p);
        const int8_t *q = (const int8_t *)(p + 4);
        for (int d = 0; d < dim; d++) out[r * (size_t)dim + d] = s * (float)q[d];
    }
}

float ram_unit_cosine(const void *a, const void *b, int dim)
{
    const unsigned char *pa = a, *pb = b;
    const int8_t *qa = (const int8_t *)(pa + 4), *qb = (const int8_t *)(pb + 4);
    int32_t acc = 0;
    for (int d = 0; d < dim; d++) acc += (int32_t)qa[d] * qb[d];
    return unit_scale(pa) * unit_scale(pb) * (float)acc;
}

ram_status ram_unit_pairs(const void *units, size_t n, int dim, float thr, int (*on_pair)(void *, size_t, size_t),
                          int (*should_stop)(void *), void *arg, struct ram_error *err)
{
    size_t stride = ram_cache_unit_size(dim);
    if (!stride) return ram_fail(err, RAM_ERR_ARG, "near-duplicates: bad vector width %d", dim);
    if (n < 2) return RAM_OK;
    ram_status rc = RAM_OK;
    float *A = ram_malloc(sizeof(float) * NEAR_BLOCK_ROWS * (size_t)dim);
    float *B = ram_malloc(sizeof(float) * NEAR_BLOCK_COLS * (size_t)dim);
    float *C = ram_malloc(sizeof(float) * NEAR_BLOCK_ROWS * NEAR_BLOCK_COLS);
    if (!A || !B || !C) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "near-duplicates: out of memory");
        goto done;
    }
    for (size_t i0 = 0; i0 < n; i0 += NEAR_BLOCK_ROWS) {
        if (should_stop && should_stop(arg)) {
            rc = ram_fail(err, RAM_ERR_INTERRUPTED, "interrupted");
            goto done;
        }
        size_t ni = n - i0 < NEAR_BLOCK_ROWS ? n - i0 : NEAR_BLOCK_ROWS;
        dequant_rows(units, stride, i0, ni, dim, A);
        for (size_t j0 = i0; j0 < n; j0 += NEAR_BLOCK_COLS) {
            size_t nj = n - j0 < NEAR_BLOCK_COLS ? n - j0 : NEAR_BLOCK_COLS;
            dequant_rows(units, stride, j0, nj, dim, B);
            ram_gemm(0, 1, (int)ni, (int)nj, dim, 1.0f, A, dim, B, dim, 0.0f, C, (int)nj);
            for (size_t a = 0; a < ni; a++) {
                const float *c = C + a * nj;
                /* the upper triangle only: j > i */
                size_t b0 = i0 + a + 1 > j0 ? i0 + a + 1 - j0 : 0;
                for (size_t b = b0; b < nj; b++)
                    if (c[b] >= thr && on_pair && on_pair(arg, i0 + a, j0 + b)) {
                        rc = ram_fail(err, RAM_ERR_NOMEM, "near-duplicates: out of memory");
                        goto done;
                    }
            }
        }
    }
done:
    ram_free(A);
    ram_free(B);
    ram_free(C);
    return rc;
}
