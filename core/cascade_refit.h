/*
** cascade_refit.h — the learned proxy of ram_index's refit cascade (issue
** 16): the principal axes of the stored unit CLS vectors, a weighted ridge
** regression from a picture's coordinates on them to its exact MATCH logit,
** and the ranking of every picture by that fit. No SQLite here: the rounds
** (anchors scored exactly, fit, rank, score the best, refit) run in
** ram_refit_cascade, which asks the caller (ext/index_match.c) for the
** exact scores.
**
**     ram_refit_axes(units, m, dim, p, mean, axes, scale, &err); // once per table copy
**     ram_refit_project_q8(block, m, dim, mean, axes, scale, p, q, &err); // every picture, by blocks
**     ram_refit_query_coef(unit, dim, axes, scale, p, cos_coef);    // per query
**     ram_refit_ridge(f, y, wt, m, p, 1e-2, coef, &err);         // per round
**     ram_refit_predict_q8(q, n, p, scale_coef, c0, pred);       // per round, every picture
**     ram_refit_cascade(&table, cos, budget, score_cb, arg, pos, probs, &n, &err);  // all of it
**
** Everything is deterministic: fixed start vectors, fixed loop orders, and
** the products go through ram_sgemm, whose results do not depend on the
** thread count.
*/
#ifndef RAM_CASCADE_REFIT_H
#define RAM_CASCADE_REFIT_H

#include "ram.h"

#include <stdint.h>

#define RAM_REFIT_MAX_AXES 512 /* ram_refit_predict_q8's fixed point holds p <= 512 in int32 */

/* The p leading principal axes of m rows of dim floats (x, row-major): mean
** (dim floats) receives the rows' mean, axes (p x dim floats) p orthonormal
** rows spanning (approximately: subspace iteration from a fixed start) the
** top-p eigenspace of their covariance, scale (p floats) each axis' int8
** step for ram_refit_project_q8: the rows' largest |coordinate| x 1.25 / 127
** (1 when all are 0; a coordinate beyond is clamped). 1 <= p <= dim, m >= 1.
** RAM_ERR_ARG on bad sizes, RAM_ERR_NOMEM. */
ram_status ram_refit_axes(const float *x, int m, int dim, int p, float *mean, float *axes, float *scale,
                          struct ram_error *err);

/* The coordinates of m rows of dim floats (x; the caller's, overwritten by
** x - mean) on the p axes, in steps of scale, rounded and clamped to
** [-127, 127]: q receives m x p int8. One product (ram_sgemm; the same
** bits at any thread count). RAM_ERR_ARG on bad sizes, RAM_ERR_NOMEM. */
ram_status ram_refit_project_q8(float *x, int m, int dim, const float *mean, const float *axes, const float *scale,
                                int p, int8_t *q, struct ram_error *err);

/* The coefficients (p floats, into c) whose dot product with a picture's
** int8 coordinates is the dot product of t (dim floats, e.g. a query's unit
** vector in the stored vectors' space) with the picture's centred vector
** projected on the axes: c[j] = (axes[j] . t) * scale[j]. */
void ram_refit_query_coef(const float *t, int dim, const float *axes, const float *scale, int p, float *c);

/* Weighted ridge regression of y (m values) on f (m x p floats), the study's
** fit (tests/bench/cascade_proxies.py ridge()): features standardised by the
** rows' mean and standard deviation (+1e-6), an intercept that is not
** penalised, penalty lam * sum(wt) on the other coefficients; wt NULL means
** 1 for every row. coef (p + 1 doubles) receives the fit in raw feature
** space: pred = coef[0] + sum_j coef[1 + j] f_j. Never NaN for finite
** inputs (singular systems drop the dependent directions).
** RAM_ERR_ARG on bad sizes or non-finite inputs, RAM_ERR_NOMEM. */
ram_status ram_refit_ridge(const float *f, const float *y, const float *wt, int m, int p, double lam, double *coef,
                           struct ram_error *err);

/* Solves a x = b for a symmetric positive semi-definite n x n matrix
** (row-major doubles; a is overwritten by its Cholesky factor, b by x).
** A pivot at or under 1e-12 times the largest diagonal element drops its
** direction (x's element 0), so a singular or rank-deficient system gives
** finite numbers. Returns the rank kept; -1 (b zeroed) when a or b holds a
** non-finite value. */
int ram_refit_solve(double *a, double *b, int n);

/* pred[i] = c0 + sum_j c[j] * q[i * p + j] for the n int8 rows of q.
** RAM_ERR_ARG (pred untouched) unless 1 <= p <= RAM_REFIT_MAX_AXES and n >= 0. */
ram_status ram_refit_predict_q8(const int8_t *q, int64_t n, int p, const float *c, float c0, float *pred);

/* ------------------------------------------------------------------ the rounds */

#define RAM_REFIT_ROUNDS 6   /* fits after the anchors (tests/bench/cascade_proxies.py --axes) */
#define RAM_REFIT_ANCHORS 15 /* percent of the budget scored first */
#define RAM_REFIT_MIN_ANCHORS 50
#define RAM_REFIT_LAMBDA 1e-2 /* ridge penalty per unit of weight */

/* The pictures' coordinates on the axes: n rows of p int8, coordinate j =
** q[i * p + j] * scale[j] (borrowed). */
struct ram_refit_table {
    const int8_t *q;
    const float *scale;
    int64_t n;
    int p;
};

/* The refit cascade's rounds: chooses min(budget, n) pictures to score
** exactly. First RAM_REFIT_ANCHORS % of the budget (at least
** RAM_REFIT_MIN_ANCHORS): half evenly spaced, half the best by cos_coef's
** dot product with the coordinates (p coefficients; NULL: all evenly
** spaced); then RAM_REFIT_ROUNDS times a ridge fit of the exact logits on
** the scored pictures' coordinates (weighted 0.2 + 5 (rank/m)^4 to the top
** after the first) ranks every picture and the best unscored get scored
** (the last round takes what is left of the budget). score(arg, pos, n,
** probs) writes the exact probabilities of the n pictures at positions pos
** (increasing) and returns 0, or non-zero to stop: RAM_ERR_INTERRUPTED then.
** pos and probs (budget each, the caller's) receive the positions scored
** and their probabilities, *n_scored how many. A budget of the whole table
** scores every position, in order, in one call (no anchors, no fits: the
** answer is exhaustive anyway). Deterministic: ties go to the lower
** position. RAM_ERR_NOMEM, RAM_ERR_ARG. */
ram_status ram_refit_cascade(const struct ram_refit_table *t, const float *cos_coef, int budget,
                             int (*score)(void *arg, const int *pos, int n, float *probs), void *arg, int *pos,
                             float *probs, int *n_scored, struct ram_error *err);

#endif /* RAM_CASCADE_REFIT_H */
