/*
** cache_weights.c — the open-set scorer's key and value weights and its bf16
** dense layers (cache_weights.h), made once per model and set and published
** atomically.
*/
#include "cache_weights.h"

#include "gemm_q8.h"
#include "rht.h"

#include <math.h>
#include <string.h>

static void layer_w_free(struct ram_cache_layer_w *lw, int heads)
{
    for (int h = 0; h < heads; h++) {
        if (lw->pv) ram_sgemm_packed_free(&lw->pv[h]);
        if (lw->pk) ram_sgemm_packed_free(&lw->pk[h]);
    }
    ram_free(lw->pv), ram_free(lw->pk), ram_free(lw->wv), ram_free(lw->wk);
    ram_free(lw->bv);
}

static void weights_free(struct ram_cache_weights *mw)
{
    if (!mw) return;
    for (int l = 0; l < mw->layers; l++) layer_w_free(&mw->lw[l], mw->heads);
    ram_free(mw->bmem);
    ram_free(mw);
}

void ram_cache_release_weights(struct ram_model *m)
{
    for (int set = 0; set < RAM_CACHE_W_SETS; set++) {
        weights_free(m->cache_score_w[set]);
        m->cache_score_w[set] = NULL;
    }
}

/* One layer's weights in one space (rot: rotated); row: dim floats of scratch.
** Returns 0 when memory ran out (what was made is freed with the set). */
static int layer_w_make(const struct ram_model *m, const struct ram_tagger_layer_w *w, int rot, float *row,
                        struct ram_cache_layer_w *lw)
{
    int hid = m->tagger.hidden, dim = m->embed_dim, heads = m->tagger.n_heads, dh = hid / heads;
    float alpha = 1.0f / sqrtf((float)dh);
    const float *wv = w->v_w;
    lw->pv = ram_calloc((size_t)heads, sizeof *lw->pv);
    if (!lw->pv) return 0;
    if (rot) {
        lw->wv = ram_malloc(sizeof(float) * (size_t)hid * dim);
        if (!lw->wv) return 0;
        memcpy(lw->wv, w->v_w, sizeof(float) * (size_t)hid * dim);
        ram_rht_rows(lw->wv, hid, dim, 1);
        wv = lw->wv;
    }
    /* without panels (OpenBLAS path, short memory) the products read the matrices as they are */
    for (int h = 0; h < heads; h++) ram_sgemm_pack_weights(wv + (size_t)h * dh * dim, dh, dim, &lw->pv[h]);
    lw->wk = ram_malloc(sizeof(float) * (size_t)hid * dim);
    lw->pk = ram_calloc((size_t)heads, sizeof *lw->pk);
    if (!lw->wk || !lw->pk) return 0;
    for (int h = 0; h < heads; h++) {
        float *wk = lw->wk + (size_t)h * dim * dh; /* dim x dh */
        for (int c = 0; c < dh; c++) {
            memcpy(row, w->k_w + (size_t)(h * dh + c) * dim, sizeof(float) * (size_t)dim);
            if (rot) ram_rht_forward(row, dim);
            for (int d = 0; d < dim; d++) wk[(size_t)d * dh + c] = alpha * row[d];
        }
        ram_sgemm_pack_weights(wk, dim, dh, &lw->pk[h]);
    }
    return 1;
}

/* 64-byte aligned packs, as weights.c's bf16_owned makes the model's: each
** 64-byte row of a panel is one kernel operand (gemm_bf16.h), so a row must
** not straddle two cache lines. Packed sizes are multiples of 64 bytes, so
** packs laid end to end from an aligned start stay aligned. */
static uint16_t *bf16_block(struct ram_cache_weights *mw, size_t bytes)
{
    mw->bmem = ram_malloc(bytes + 64);
    return mw->bmem ? (uint16_t *)(((uintptr_t)mw->bmem + 63) & ~(uintptr_t)63) : NULL;
}

/* One layer's bf16 value weights in space rot: Wv_h per head, rotated like
** the fp32 set's, rounded to bf16 and packed (gemm_bf16.h) at p. */
static int layer_w_make_bf16v(const struct ram_model *m, const struct ram_tagger_layer_w *w, int rot, unsigned char *p,
                              struct ram_cache_layer_w *lw)
{
    int hid = m->tagger.hidden, dim = m->embed_dim, heads = m->tagger.n_heads, dh = hid / heads;
    size_t nv = ram_bf16_packed_bytes(dh, dim);
    lw->bv = ram_calloc((size_t)heads, sizeof *lw->bv);
    float *wv = ram_malloc(sizeof(float) * (size_t)hid * dim);
    if (!lw->bv || !wv) return ram_free(wv), 0;
    memcpy(wv, w->v_w, sizeof(float) * (size_t)hid * dim);
    if (rot) ram_rht_rows(wv, hid, dim, 1);
    for (int h = 0; h < heads; h++, p += nv) {
        ram_bf16_pack(wv + (size_t)h * dh * dim, dh, dim, (uint16_t *)p);
        lw->bv[h] = (struct ram_bf16_weight){dh, dim, (const uint16_t *)p, NULL, 0};
    }
    ram_free(wv);
    return 1;
}

/* The model's own bf16 form of a dense layer (n x k) when it runs it as
** plain bf16 (version-3 int8 files pack the decoder so at load): the same
** bits as ram_bf16_pack of its fp32 matrix (the same rounding of the same
** values), so reusing it changes no score. NULL when it has none, or one
** with a residual or split activations (bf16x2 / bf16x3: other products). */
static const struct ram_bf16_weight *model_bf16(const struct ram_q8_weight *q, int n, int k)
{
    if (!q || !q->bf16.packed || q->bf16.lo || q->bf16.split_x || q->bf16.n != n || q->bf16.k != k) return NULL;
    return &q->bf16;
}

/* The dense layers' bf16 set (the same in both spaces): the model's packs
** where model_bf16 finds them, the others rounded and packed into one
** aligned block. */
static int dense_make_bf16(const struct ram_model *m, struct ram_cache_weights *mw)
{
    int hid = m->tagger.hidden, inter = m->tagger.intermediate;
    const int N[4] = {hid, hid, inter, hid}, K[4] = {hid, hid, hid, inter};
    size_t bytes = 0;
    for (int pass = 0; pass < 2; pass++) { /* 0: the bytes to make, 1: make them */
        unsigned char *p = NULL;
        if (pass && bytes && !(p = (unsigned char *)bf16_block(mw, bytes))) return 0;
        for (int l = 0; l < mw->layers; l++) {
            const struct ram_tagger_layer_w *w = &m->tagger_layers[l];
            struct ram_cache_layer_w *lw = &mw->lw[l];
            const float *src[4] = {w->q_w, w->ao_w, w->i_w, w->o_w};
            const struct ram_q8_weight *own[4] = {w->q_q, w->ao_q, w->i_q, w->o_q};
            struct ram_bf16_weight *dst[4] = {&lw->bq, &lw->bao, &lw->bi, &lw->bo};
            for (int i = 0; i < 4; i++) {
                const struct ram_bf16_weight *mine = model_bf16(own[i], N[i], K[i]);
                size_t nb = ram_bf16_packed_bytes(N[i], K[i]);
                if (!nb) return 0;
                if (!pass && !mine) bytes += nb;
                if (!pass) continue;
                if (mine) {
                    *dst[i] = (struct ram_bf16_weight){N[i], K[i], mine->packed, NULL, 0};
                } else {
                    ram_bf16_pack(src[i], N[i], K[i], (uint16_t *)p);
                    *dst[i] = (struct ram_bf16_weight){N[i], K[i], (const uint16_t *)p, NULL, 0};
                    p += nb;
                }
            }
        }
    }
    return 1;
}

/* The model's weights of set `set`, made the first time a batch holds a
** picture stored in that space (and, for the bf16 sets, asks for
** approximate scores): prefilter-only queries (search by example) never pay
** for them, a table of one layout makes one fp32 set (and one bf16 value
** set beside the dense one). Then shared by every query on the model. NULL
** when memory ran out (err set; nothing is kept, the next call tries
** again). */
const struct ram_cache_weights *ram_cache_weights_get(const struct ram_model *m, int set, struct ram_error *err)
{
    _Static_assert(sizeof m->cache_score_w / sizeof m->cache_score_w[0] == RAM_CACHE_W_SETS,
                   "model.h's cache_score_w holds one slot per set");
    int rot = set & 1, L = m->tagger.n_layers, ok = 1;
    /* the const contract (cache_weights.h): this slot is the one field of a
    ** shared model written after load, once, atomically */
    void **slot = (void **)&m->cache_score_w[set];
    struct ram_cache_weights *mw = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (mw) return mw;
    float *row = ram_malloc(sizeof(float) * (size_t)m->embed_dim);
    mw = ram_calloc(1, sizeof *mw + sizeof mw->lw[0] * (size_t)L);
    ok = row && mw;
    if (mw) mw->layers = L, mw->heads = m->tagger.n_heads;
    if (ok && set == RAM_CACHE_W_BF16_DENSE) {
        ok = dense_make_bf16(m, mw);
    } else if (ok && set >= RAM_CACHE_W_BF16_PLAIN) {
        int hid = m->tagger.hidden, dim = m->embed_dim;
        size_t nv = ram_bf16_packed_bytes(hid / mw->heads, dim) * (size_t)mw->heads;
        unsigned char *p = nv ? (unsigned char *)bf16_block(mw, nv * (size_t)L) : NULL;
        ok = p != NULL;
        for (int l = 0; ok && l < L; l++)
            ok = layer_w_make_bf16v(m, &m->tagger_layers[l], rot, p + nv * (size_t)l, &mw->lw[l]);
    } else {
        for (int l = 0; ok && l < L; l++) ok = layer_w_make(m, &m->tagger_layers[l], rot, row, &mw->lw[l]);
    }
    ram_free(row);
    if (!ok) {
        weights_free(mw);
        ram_fail(err, RAM_ERR_NOMEM, "open-set scoring: out of memory");
        return NULL;
    }
    void *expected = NULL;
    if (!__atomic_compare_exchange_n(slot, &expected, mw, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        weights_free(mw); /* another thread published its set first */
        mw = expected;
    }
    return mw;
}
