/*
** near_dup.h — the pairs of close vectors among many unit CLS vectors (the
** prefilter's packed layout, cache_score.h): what ram_index_duplicates
** groups into near-duplicates.
**
**     ram_unit_pairs(units, n, dim, 0.91f, on_pair, should_stop, arg, &err);
**
** HOW IT WORKS: the int8 vectors are dequantised a block at a time (256
** rows against 2048 columns) and multiplied with ram_gemm, so the n^2/2
** cosines run at matrix-product speed; only the upper triangle is read.
*/
#ifndef RAM_NEAR_DUP_H
#define RAM_NEAR_DUP_H

#include "ram.h"

#include <stddef.h>

/* Calls on_pair(arg, i, j) for every i < j whose vectors have a cosine of
** at least thr. units holds n vectors of ram_cache_unit_size(dim) bytes one
** after the other (borrowed). should_stop(arg), polled once per block of
** rows, stops the call with RAM_ERR_INTERRUPTED when it returns non-zero;
** on_pair returning non-zero stops it with RAM_ERR_NOMEM (the caller's
** allocation failed). RAM_ERR_NOMEM also when the block buffers cannot be
** allocated. Either callback may be NULL. */
ram_status ram_unit_pairs(const void *units, size_t n, int dim, float thr, int (*on_pair)(void *, size_t, size_t),
                          int (*should_stop)(void *), void *arg, struct ram_error *err);

/* Cosine of two packed unit vectors (the same number ram_unit_pairs
** compares, up to float rounding). */
float ram_unit_cosine(const void *a, const void *b, int dim);

#endif /* RAM_NEAR_DUP_H */
