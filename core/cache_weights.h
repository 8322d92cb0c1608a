/*
** cache_weights.h — the key and value weights of the open-set scorer
** (cache_score.c) in the two spaces the int8 token cache is stored in (plain
** and Hadamard-rotated, cache_score.h), packed for the batched products.
** They depend on the model alone, not on the query text, so the model owns
** them: made by the first query that needs a space and shared by every query
** after it, on any connection and thread.
**
**     const struct ram_cache_weights *w = ram_cache_weights_get(m, rot, &err);
**     ... w->lw[l].pk[h], w->lw[l].pv[h] ...   // valid until ram_model_free(m)
*/
#ifndef RAM_CACHE_WEIGHTS_H
#define RAM_CACHE_WEIGHTS_H

#include "gemm_bf16.h"
#include "model.h"
#include "sgemm.h"

/* A layer's key and value weights as the batched products read them, in one
** of the two spaces the int8 tokens are stored in (cache_score.h): Wv_h's
** rows (rotated: ctx = Wv_h x = (T Wv_h^T)^T (T x)), and Wk_h^T scaled by
** 1 / sqrt(dh) (rotated: T u = (T Wk_h^T) q_h / sqrt(dh)), packed. They take
** every rotation out of the per-image loop: an image is scored in the space
** it is stored in. */
struct ram_cache_layer_w {
    /* the fp32 sets (RAM_CACHE_W_PLAIN, RAM_CACHE_W_ROT) */
    float *wv;                   /* hid x dim, head-major rows (NULL: the model's v_w as is); owned */
    float *wk;                   /* heads x (dim x dh); owned */
    struct ram_sgemm_packed *pv; /* heads entries over wv (or v_w); owned */
    struct ram_sgemm_packed *pk; /* heads entries over wk; owned */
    /* the bf16 sets (RAM_CACHE_W_BF16_*), for ram_cache_query_approx: Wv_h
    ** in the set's space, and the dense layers (the same in both spaces) */
    struct ram_bf16_weight *bv;             /* heads entries (dh x dim); owned, packed in bmem */
    struct ram_bf16_weight bq, bao, bi, bo; /* query, attention output, FFN in and out; packed in bmem */
    uint16_t *bmem;                         /* owned */
};

/* Every layer's key and value weights in one space. They depend on the
** model alone (not on the query), so the model owns them: m->cache_score_w[set],
** made by the first ram_cache_score that needs that space and published with
** an atomic compare-and-swap, so that two connections scoring at once on two
** threads both get one complete set (the slower one frees its own copy);
** ram_cache_release_weights frees them with the model. */
struct ram_cache_weights {
    int layers, heads;
    struct ram_cache_layer_w lw[]; /* layers entries */
};

/* The sets: fp32 and bf16, each in the plain or the rotated space. */
enum { RAM_CACHE_W_PLAIN, RAM_CACHE_W_ROT, RAM_CACHE_W_BF16_PLAIN, RAM_CACHE_W_BF16_ROT, RAM_CACHE_W_SETS };

/* The weights of set `set` (space: set & 1, 1 rotated) of m, made on the first call
** (thread-safe: concurrent first calls each make a set, one is published,
** the others freed). Owned by m (m->cache_score_w[set]): valid until
** ram_cache_release_weights or ram_model_free. NULL with RAM_ERR_NOMEM's
** message in err when memory ran out (nothing kept; the next call tries
** again). */
const struct ram_cache_weights *ram_cache_weights_get(const struct ram_model *m, int set, struct ram_error *err);

/* Frees m's weights of every set (ram_model_free calls it; tests call it to
** make them again). No query on m may be scoring. */
void ram_cache_release_weights(struct ram_model *m);

#endif /* RAM_CACHE_WEIGHTS_H */
