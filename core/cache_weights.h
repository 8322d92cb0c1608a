/*
** cache_weights.h — the key and value weights of the open-set scorer
** (cache_score.c) in the two spaces the int8 token cache is stored in (plain
** and Hadamard-rotated, cache_score.h), packed for the batched products, and
** the bf16 forms of its dense layers for the approximate scorer. They depend
** on the model alone, not on the query text, so the model owns them: made by
** the first query that needs a set and shared by every query after it, on
** any connection and thread.
**
**     const struct ram_cache_weights *w = ram_cache_weights_get(m, RAM_CACHE_W_ROT, &err);
**     ... w->lw[l].pk[h], w->lw[l].pv[h] ...   // valid until ram_model_free(m)
**
** Const contract: the scorer takes the model as const (its weights and
** meaning never change, any number of threads may share it), yet
** ram_cache_weights_get fills m->cache_score_w, the one field of a loaded
** model written after load. That write is a lazily filled cache: each slot
** goes once from NULL to a complete set by an atomic compare-and-swap, the
** set never changes after, and every reader sees NULL or the whole set. It
** casts the const away, which is defined because no ram_model is defined
** const (ram_model_init_from_file allocates it).
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
** it is stored in. A set fills only its own fields (the others stay zero). */
struct ram_cache_layer_w {
    /* the fp32 sets (RAM_CACHE_W_PLAIN, RAM_CACHE_W_ROT) */
    float *wv;                   /* hid x dim, head-major rows (NULL: the model's v_w as is); owned */
    float *wk;                   /* heads x (dim x dh); owned */
    struct ram_sgemm_packed *pv; /* heads entries over wv (or v_w); owned */
    struct ram_sgemm_packed *pk; /* heads entries over wk; owned */
    /* the bf16 value sets (RAM_CACHE_W_BF16_PLAIN, _ROT), for
    ** ram_cache_query_approx: Wv_h in the set's space, the only bf16 product
    ** that depends on the space */
    struct ram_bf16_weight *bv; /* heads entries (dh x dim); owned, packed in the set's bmem */
    /* the bf16 dense set (RAM_CACHE_W_BF16_DENSE; the same in both spaces):
    ** query, attention output, FFN in and out. The model's own plain bf16
    ** packs (*_q->bf16: version-3 int8 files run the decoder so) where it
    ** has them (borrowed), else packed in the set's bmem. */
    struct ram_bf16_weight bq, bao, bi, bo;
};

/* Every layer's weights of one set. They depend on the model alone (not on
** the query), so the model owns them: m->cache_score_w[set], made by the
** first ram_cache_score that needs that set and published with an atomic
** compare-and-swap, so that two connections scoring at once on two threads
** both get one complete set (the slower one frees its own copy);
** ram_cache_release_weights frees them with the model. */
struct ram_cache_weights {
    int layers, heads;
    void *bmem;                    /* the bf16 packs the set made (each 64-byte aligned inside); owned, NULL: none */
    struct ram_cache_layer_w lw[]; /* layers entries */
};

/* The sets: fp32 in the plain or the rotated space; the bf16 value
** products in either space; the bf16 dense layers (one set for both spaces). */
enum {
    RAM_CACHE_W_PLAIN,
    RAM_CACHE_W_ROT,
    RAM_CACHE_W_BF16_PLAIN,
    RAM_CACHE_W_BF16_ROT,
    RAM_CACHE_W_BF16_DENSE,
    RAM_CACHE_W_SETS
};

/* The weights of set `set` of m, made on the first call (thread-safe:
** concurrent first calls each make a set, one is published, the others
** freed). Owned by m (m->cache_score_w[set]): valid until
** ram_cache_release_weights or ram_model_free. NULL with RAM_ERR_NOMEM's
** message in err when memory ran out (nothing kept; the next call tries
** again). */
const struct ram_cache_weights *ram_cache_weights_get(const struct ram_model *m, int set, struct ram_error *err);

/* Frees m's weights of every set (ram_model_free calls it; tests call it to
** make them again). No query on m may be scoring. */
void ram_cache_release_weights(struct ram_model *m);

#endif /* RAM_CACHE_WEIGHTS_H */
