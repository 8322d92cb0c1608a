/*
** cache_weights.c — the open-set scorer's key and value weights (cache_weights.h),
** made once per model and space and published atomically.
*/
#include "cache_weights.h"

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
    ram_free(lw->bv), ram_free(lw->bmem);
}

static void weights_free(struct ram_cache_weights *mw)
{
    if (!mw) return;
    for (int l = 0; l < mw->layers; l++) layer_w_free(&mw->lw[l], mw->heads);
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

/* One layer's bf16 set in space rot: Wv_h per head (rotated like the fp32
** set's) and the dense layers, rounded to bf16 and packed (gemm_bf16.h). */
static int layer_w_make_bf16(const struct ram_model *m, const struct ram_tagger_layer_w *w, int rot,
                             struct ram_cache_layer_w *lw)
{
    int hid = m->tagger.hidden, dim = m->embed_dim, heads = m->tagger.n_heads, dh = hid / heads;
    int inter = m->tagger.intermediate;
    size_t nv = ram_bf16_packed_bytes(dh, dim), nq = ram_bf16_packed_bytes(hid, hid);
    size_t ni = ram_bf16_packed_bytes(inter, hid), no = ram_bf16_packed_bytes(hid, inter);
    if (!nv || !nq || !ni || !no) return 0;
    lw->bv = ram_calloc((size_t)heads, sizeof *lw->bv);
    lw->bmem = ram_malloc(nv * (size_t)heads + 2 * nq + ni + no);
    float *wv = ram_malloc(sizeof(float) * (size_t)hid * dim);
    if (!lw->bv || !lw->bmem || !wv) return ram_free(wv), 0;
    memcpy(wv, w->v_w, sizeof(float) * (size_t)hid * dim);
    if (rot) ram_rht_rows(wv, hid, dim, 1);
    unsigned char *p = (unsigned char *)lw->bmem;
    for (int h = 0; h < heads; h++, p += nv) {
        ram_bf16_pack(wv + (size_t)h * dh * dim, dh, dim, (uint16_t *)p);
        lw->bv[h] = (struct ram_bf16_weight){dh, dim, (const uint16_t *)p, NULL, 0};
    }
    ram_free(wv);
    const float *src[4] = {w->q_w, w->ao_w, w->i_w, w->o_w};
    struct ram_bf16_weight *dst[4] = {&lw->bq, &lw->bao, &lw->bi, &lw->bo};
    int N[4] = {hid, hid, inter, hid}, K[4] = {hid, hid, hid, inter};
    for (int i = 0; i < 4; i++) {
        ram_bf16_pack(src[i], N[i], K[i], (uint16_t *)p);
        *dst[i] = (struct ram_bf16_weight){N[i], K[i], (const uint16_t *)p, NULL, 0};
        p += ram_bf16_packed_bytes(N[i], K[i]);
    }
    return 1;
}

/* The model's weights of set `set` (space set & 1; bf16 from
** RAM_CACHE_W_BF16_PLAIN), made the first time a batch holds a picture
** stored in that space (and, for the bf16 sets, asks for approximate
** scores): prefilter-only queries (search by example) never pay for them, a
** table of one layout makes one set. Then shared by every query on the
** model. NULL when memory ran out (err set;
** nothing is kept, the next call tries again). */
const struct ram_cache_weights *ram_cache_weights_get(const struct ram_model *m, int set, struct ram_error *err)
{
    int rot = set & 1, bf16 = set >= RAM_CACHE_W_BF16_PLAIN;
    void *const *slot = &m->cache_score_w[set];
    struct ram_cache_weights *mw = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (mw) return mw;
    int L = m->tagger.n_layers, ok = 1;
    float *row = ram_malloc(sizeof(float) * (size_t)m->embed_dim);
    mw = ram_calloc(1, sizeof *mw + sizeof mw->lw[0] * (size_t)L);
    ok = row && mw;
    if (mw) mw->layers = L, mw->heads = m->tagger.n_heads;
    for (int l = 0; ok && l < L; l++)
        ok = bf16 ? layer_w_make_bf16(m, &m->tagger_layers[l], rot, &mw->lw[l])
                  : layer_w_make(m, &m->tagger_layers[l], rot, row, &mw->lw[l]);
    ram_free(row);
    if (!ok) {
        weights_free(mw);
        ram_fail(err, RAM_ERR_NOMEM, "open-set scoring: out of memory");
        return NULL;
    }
    /* the model is shared (read-only) by every connection: this cache is the
    ** one field the scorer writes, once, atomically */
    void *expected = NULL;
    if (!__atomic_compare_exchange_n((void **)slot, &expected, mw, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        weights_free(mw); /* another thread published its set first */
        mw = expected;
    }
    return mw;
}
