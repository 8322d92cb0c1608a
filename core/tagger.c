/*
** tagger.c — RAM++/RAM tagging: description reweighting, wordvec_proj +
** ReLU, the cross-attention BERT decoder and fc, from image_embeds to one
** logit per class (ARCHITECTURE.md sections 4 and 5). See tagger.h for the
** API.
**
** HOW IT WORKS. The decoder has no self-attention, so every class query runs
** through the layers on its own: the classes are processed in chunks of
** s->chunk rows, which is exact and keeps the scratch bounded (full size:
** 4585 classes, hidden 768, FFN 3072). The cross-attention keys and values
** depend only on the image, so they are computed once per layer before the
** first chunk, for every chunk to share. For RAM++ each chunk first
** reweights its classes' description rows by the image CLS:
**
**     r = (exp(reweight_scale) * cls / ||cls||) . row     (one product over chunk*D rows)
**     w = softmax over the D rows of each class
**     L[c] = sum_d w[c,d] row[c*D + d]                   (one 1 x D by D x E product per class)
**
** then H0 = ReLU(L Wv^T + b) (wordvec_proj; identity when the decoder is as
** wide as the embeddings), the layers, and fc. Within a layer the query
** buffer is reused for the attention context: head h's scores are taken from
** its query columns before its context overwrites them.
**
** Scratch layout (floats, each area rounded up to 16 floats):
**     kv     n_layers x 2 x n_tokens x hidden   keys/values of every layer
**     cls    embed_dim                          scaled, normalised CLS
**     rw     chunk x max_des                    reweighting logits/weights
**     lab    chunk x embed_dim                  reweighted label embeddings
**     h      chunk x hidden                     the hidden state of the chunk
**     layer  ram_bert_layer_scratch_floats      one layer's temporaries
*/
#include "tagger.h"

#include "ops.h"
#include "sgemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound on widths and counts, so that every int product below fits. */
#define TAGGER_MAX_DIM (1 << 16)

/* ------------------------------------------------------------------ packed weights */

struct tagger_packed {
    int layers;
    struct ram_sgemm_packed wordvec;
    struct ram_sgemm_packed m[][RAM_TAGGER_PACKED_PER_LAYER]; /* layers rows, by enum ram_tagger_matrix */
};

/* Packs W into *p, or leaves p without panels (NULL w: skipped). Quantized
** matrices run their int8/bf16 forms: nothing to pack. */
static void pack_one(struct ram_sgemm_packed *p, const float *W, const void *quantized, int N, int K)
{
    *p = (struct ram_sgemm_packed){0};
    if (W && !quantized) ram_sgemm_pack_weights(W, N, K, p);
}

void ram_tagger_prepack(struct ram_model *m)
{
    ram_tagger_release_packed(m);
    const char *e = getenv("RAM_PREPACK");
    if ((e && !strcmp(e, "0")) || !m->tagger_layers || m->tagger.n_layers < 1) return;
    int L = m->tagger.n_layers, H = m->tagger.hidden, I = m->tagger.intermediate;
    struct tagger_packed *t = ram_malloc(sizeof *t + sizeof t->m[0] * (size_t)L);
    if (!t) return;
    t->layers = L;
    for (int l = 0; l < L; l++) {
        const struct ram_tagger_layer_w *w = &m->tagger_layers[l];
        struct ram_sgemm_packed *p = t->m[l];
        pack_one(&p[RAM_TAGGER_Q], w->q_w, w->q_q, H, H);
        pack_one(&p[RAM_TAGGER_AO], w->ao_w, w->ao_q, H, H);
        pack_one(&p[RAM_TAGGER_I], w->i_w, w->i_q, I, H);
        pack_one(&p[RAM_TAGGER_O], w->o_w, w->o_q, H, I);
    }
    pack_one(&t->wordvec, m->wordvec_w, m->wordvec_q, H, m->embed_dim);
    m->tagger_packed = t;
}

const struct ram_sgemm_packed *ram_tagger_packed(const struct ram_model *m, int l, enum ram_tagger_matrix which)
{
    const struct tagger_packed *t = m->tagger_packed;
    const struct ram_sgemm_packed *p = NULL;
    if (!t) return NULL;
    if (which == RAM_TAGGER_WORDVEC)
        p = &t->wordvec;
    else if (l >= 0 && l < t->layers && which >= 0 && which < RAM_TAGGER_PACKED_PER_LAYER)
        p = &t->m[l][which];
    return p && p->panels ? p : NULL;
}

void ram_tagger_release_packed(struct ram_model *m)
{
    struct tagger_packed *t = m->tagger_packed;
    if (!t) return;
    for (int l = 0; l < t->layers; l++)
        for (int i = 0; i < RAM_TAGGER_PACKED_PER_LAYER; i++) ram_sgemm_packed_free(&t->m[l][i]);
    ram_sgemm_packed_free(&t->wordvec);
    ram_free(t);
    m->tagger_packed = NULL;
}

/* ------------------------------------------------------------------ BERT layer */

static void attn_from_tagger(const struct ram_tagger_layer_w *w, struct ram_bert_attn_w *a)
{
    a->q_w = w->q_w, a->q_b = w->q_b;
    a->k_w = w->k_w, a->k_b = w->k_b;
    a->v_w = w->v_w, a->v_b = w->v_b;
    a->o_w = w->ao_w, a->o_b = w->ao_b;
    a->ln_w = w->aln_w, a->ln_b = w->aln_b;
}

void ram_bert_layer_from_tagger(const struct ram_model *m, int l, struct ram_bert_layer *out)
{
    const struct ram_tagger_layer_w *w = &m->tagger_layers[l];
    memset(out, 0, sizeof *out);
    out->hidden = m->tagger.hidden;
    out->heads = m->tagger.n_heads;
    out->intermediate = m->tagger.intermediate;
    out->eps = m->tagger.eps;
    out->has_cross = 1;
    out->kv_width = m->tagger.encoder_width;
    attn_from_tagger(w, &out->cross);
    out->i_w = w->i_w, out->i_b = w->i_b;
    out->o_w = w->o_w, out->o_b = w->o_b;
    out->ln_w = w->oln_w, out->ln_b = w->oln_b;
    out->q_q = w->q_q, out->ao_q = w->ao_q, out->i_q = w->i_q, out->o_q = w->o_q;
    out->cross.q_p = ram_tagger_packed(m, l, RAM_TAGGER_Q), out->cross.o_p = ram_tagger_packed(m, l, RAM_TAGGER_AO);
    out->i_p = ram_tagger_packed(m, l, RAM_TAGGER_I), out->o_p = ram_tagger_packed(m, l, RAM_TAGGER_O);
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* ------------------------------------------------------------------ tagger */

struct tg_layout {
    size_t kv, cls, rw, lab, h, layer, total;
};

/* Checks m's tagging config; every size below then fits an int. */
static ram_status check_model(const struct ram_model *m, struct ram_error *err)
{
    const struct ram_tagger_config *c = &m->tagger;
    if (c->hidden < 1 || c->hidden > TAGGER_MAX_DIM || c->n_heads < 1 || c->hidden % c->n_heads ||
        c->intermediate < 1 || c->intermediate > TAGGER_MAX_DIM || c->n_layers < 0 || c->n_layers > 1024 ||
        m->embed_dim < 1 || m->embed_dim > TAGGER_MAX_DIM || c->encoder_width != m->embed_dim ||
        m->n_image_tokens < 1 || m->n_image_tokens > TAGGER_MAX_DIM || !(c->eps >= 0))
        return ram_fail(err, RAM_ERR_ARG,
                        "tagger: invalid config (hidden %d, heads %d, intermediate %d, layers %d, "
                        "embed %d, encoder width %d, %d image tokens)",
                        c->hidden, c->n_heads, c->intermediate, c->n_layers, m->embed_dim, c->encoder_width,
                        m->n_image_tokens);
    if ((c->n_layers && !m->tagger_layers) || !m->fc_w || !m->fc_b)
        return ram_fail(err, RAM_ERR_ARG, "tagger: the model has no tagging decoder weights");
    if (!m->wordvec_w && c->hidden != m->embed_dim)
        return ram_fail(err, RAM_ERR_ARG, "tagger: no wordvec_proj but hidden %d != embed %d", c->hidden, m->embed_dim);
    return RAM_OK;
}

/* Fills *o for chunk x max_des; 0 on overflow. */
static int layout(const struct ram_model *m, int chunk, int max_des, struct tg_layout *o)
{
    const size_t H = (size_t)m->tagger.hidden, E = (size_t)m->embed_dim, nt = (size_t)m->n_image_tokens;
    size_t a, parts[6];
    if (chunk < 1 || max_des < 1 || chunk > (1 << 20)) return 0;
    if (!ram_mul_ok((size_t)chunk, (size_t)max_des, &a) || a > (size_t)(1 << 30)) return 0;
    parts[1] = E;
    parts[2] = a;
    if (!ram_mul_ok((size_t)m->tagger.n_layers * 2, nt * H, &parts[0]) || !ram_mul_ok((size_t)chunk, E, &parts[3]) ||
        !ram_mul_ok((size_t)chunk, H, &parts[4]))
        return 0;
    struct ram_bert_layer L = {0};
    L.hidden = m->tagger.hidden, L.intermediate = m->tagger.intermediate;
    parts[5] = ram_bert_layer_scratch_floats(&L, chunk, m->n_image_tokens);
    if (!parts[5]) return 0;
    size_t off = 0, *dst[6] = {&o->kv, &o->cls, &o->rw, &o->lab, &o->h, &o->layer};
    for (int i = 0; i < 6; i++) {
        size_t n = round16(parts[i]);
        if (n < parts[i] || off + n < off) return 0;
        *dst[i] = off;
        off += n;
    }
    o->total = off;
    return 1;
}

size_t ram_tagger_scratch_floats(const struct ram_model *m, int chunk, int max_des)
{
    struct tg_layout o;
    if (!m || check_model(m, NULL) || !layout(m, chunk, max_des, &o)) return 0;
    return o.total;
}

static void trace(const struct ram_tagger_hooks *hk, const char *name, int row0, const float *x, int rows, int cols)
{
    if (hk && hk->trace) hk->trace(hk->trace_arg, name, row0, x, rows, cols);
}

static int aborted(const struct ram_tagger_hooks *hk) { return hk && hk->abort_cb && hk->abort_cb(hk->abort_arg); }

struct rw_job {
    const float *q, *rows;
    float *w, *lab;
    int n, des, E;
};

static void *reweight_job(void *arg)
{
    const struct rw_job *j = arg;
    ram_reweight_rows(j->q, j->rows, j->n, j->des, j->E, j->w, j->lab);
    return NULL;
}

/* The reweighted label embeddings of classes c0 .. c0+n-1 into lab. The
** rows are 100 KB per class at full size (half a gigabyte for 4,585
** classes): one pass reads each class's rows once for its logits and again
** from cache for the weighted sum, the classes split over the threads. With
** a trace hook the logits are wanted before the softmax, so that path keeps
** the two products. */
static void reweight(const struct ram_model *m, const float *rows, int n, int des, const float *cls_s, float *rw,
                     float *lab, int c0, const struct ram_tagger_hooks *hk)
{
    const int E = m->embed_dim;
    if (!(hk && hk->trace)) {
        /* A thread per 4 MB of rows or more (starting one costs ~20 us). */
        int T = ram_job_count((double)n * des * E * sizeof(float), 4e6, n);
        struct rw_job jobs[RAM_MAX_JOBS];
        for (int t = 0; t < T; t++) {
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            jobs[t] = (struct rw_job){
                cls_s, rows + (size_t)i0 * des * E, rw + (size_t)i0 * des, lab + (size_t)i0 * E, i1 - i0, des, E};
        }
        ram_run_jobs(reweight_job, jobs, sizeof jobs[0], T);
        return;
    }
    /* As a 1 x E by E x (n*des) product: OpenBLAS handles M = 1 better than N = 1. */
    ram_gemm(0, 1, 1, n * des, E, 1.0f, cls_s, E, rows, E, 0.0f, rw, n * des);
    trace(hk, "reweight_logits", c0, rw, n, des);
    ram_softmax_rows(rw, n, des);
    trace(hk, "reweight_weights", c0, rw, n, des);
    for (int i = 0; i < n; i++)
        ram_gemm(0, 0, 1, E, des, 1.0f, rw + (size_t)i * des, des, rows + (size_t)i * des * E, E, 0.0f,
                 lab + (size_t)i * E, E);
    trace(hk, "label_embed_reweighted", c0, lab, n, E);
}

/* H0 = ReLU(wordvec_proj(lab)) of n rows, or the rows themselves. */
static ram_status queries(const struct ram_model *m, const float *lab, int n, float *h, struct ram_scratch *ps,
                          struct ram_error *err)
{
    if (m->wordvec_w) {
        const int E = m->embed_dim, H = m->tagger.hidden;
        if (m->wordvec_q) {
            ram_status rc = ram_linear_q(lab, n, E, m->wordvec_w, m->wordvec_q, m->wordvec_b, H, h, ps, err);
            if (rc) return rc;
        } else {
            ram_linear_packed(lab, n, E, m->wordvec_w, ram_tagger_packed(m, 0, RAM_TAGGER_WORDVEC), m->wordvec_b, H, h);
        }
        ram_relu(h, (size_t)n * m->tagger.hidden);
    } else {
        memcpy(h, lab, sizeof(float) * (size_t)n * m->tagger.hidden);
    }
    return RAM_OK;
}

ram_status ram_tagger_forward(const struct ram_model *m, const struct ram_tagger_args *a,
                              const struct ram_tagger_scratch *s, float *logits, const struct ram_tagger_hooks *hk,
                              struct ram_error *err)
{
    ram_status rc;
    struct tg_layout o;
    size_t nrows;
    if (!m || !a || !s || !s->buf || !logits || !a->image_embeds)
        return ram_fail(err, RAM_ERR_ARG, "tagger: NULL argument");
    if ((rc = check_model(m, err))) return rc;
    const int H = m->tagger.hidden, E = m->embed_dim, nt = m->n_image_tokens, des = a->des;
    const int fixed = a->fixed_h0 != NULL;
    if (a->n_tags < 1 || des < 1)
        return ram_fail(err, RAM_ERR_ARG, "tagger: %d tags x %d descriptions", a->n_tags, des);
    if (fixed != (a->fixed_q0 != NULL) || (fixed && des != 1) || (!fixed && !a->label_embed))
        return ram_fail(err, RAM_ERR_ARG, "tagger: label embeddings or precomputed queries are missing");
    if (des > 1 && m->kind != RAM_KIND_RAM_PLUS)
        return ram_fail(err, RAM_ERR_UNSUPPORTED,
                        "tagger: %d descriptions per tag need a RAM++ model (RAM has no reweighting)", des);
    if (!ram_mul_ok((size_t)a->n_tags, (size_t)des, &nrows) || !ram_mul_ok(nrows, (size_t)E, &nrows))
        return ram_fail(err, RAM_ERR_TOO_BIG, "tagger: %d tags x %d descriptions is too many", a->n_tags, des);
    if (!layout(m, s->chunk, s->max_des, &o))
        return ram_fail(err, RAM_ERR_ARG, "tagger: invalid scratch plan (chunk %d, %d descriptions)", s->chunk,
                        s->max_des);
    /* Classes per chunk: as many as the reweighting area holds. */
    int cc = s->chunk;
    if (des > s->max_des) {
        cc = (int)(((size_t)s->chunk * s->max_des) / (size_t)des);
        if (cc < 1)
            return ram_fail(err, RAM_ERR_TOO_BIG, "tagger: %d descriptions per tag, at most %d", des,
                            s->chunk * s->max_des);
    }
    float *kv = s->buf + o.kv, *cls_s = s->buf + o.cls, *rw = s->buf + o.rw, *lab = s->buf + o.lab, *h = s->buf + o.h,
          *lscr = s->buf + o.layer;
    const size_t kvn = (size_t)nt * H;

    if (aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tagger: interrupted");
    for (int l = 0; l < m->tagger.n_layers; l++) {
        struct ram_bert_layer L;
        ram_bert_layer_from_tagger(m, l, &L);
        ram_bert_cross_kv(&L, a->image_embeds, nt, kv + 2 * l * kvn, kv + (2 * l + 1) * kvn);
    }
    if (des > 1) { /* exp(scale) * normalize(cls), in the official order */
        const float scale = expf(m->reweight_scale);
        memcpy(cls_s, a->image_embeds, sizeof(float) * (size_t)E);
        ram_l2_normalize(cls_s, E);
        for (int i = 0; i < E; i++) cls_s[i] = scale * cls_s[i];
    }

    char name[40];
    for (int c0 = 0; c0 < a->n_tags; c0 += cc) {
        const int n = a->n_tags - c0 < cc ? a->n_tags - c0 : cc;
        const float *q0 = NULL;
        if (aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tagger: interrupted");
        if (fixed) {
            memcpy(h, a->fixed_h0 + (size_t)c0 * H, sizeof(float) * (size_t)n * H);
            q0 = a->fixed_q0 + (size_t)c0 * H;
        } else if (des > 1) {
            reweight(m, a->label_embed + (size_t)c0 * des * E, n, des, cls_s, rw, lab, c0, hk);
            if ((rc = queries(m, lab, n, h, s->products, err))) return rc;
        } else if ((rc = queries(m, a->label_embed + (size_t)c0 * E, n, h, s->products, err))) {
            return rc;
        }
        trace(hk, "tagging_queries", c0, h, n, H);
        for (int l = 0; l < m->tagger.n_layers; l++) {
            struct ram_bert_layer L;
            if (l && aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tagger: interrupted");
            ram_bert_layer_from_tagger(m, l, &L);
            L.products = s->products;
            rc = ram_bert_layer_forward(&L, h, n, kv + 2 * l * kvn, kv + (2 * l + 1) * kvn, nt, l == 0 ? q0 : NULL,
                                        lscr, err);
            if (rc) return rc;
            snprintf(name, sizeof name, "tagging_layer%d_out", l);
            trace(hk, name, c0, h, n, H);
        }
        trace(hk, "tagging_embed", c0, h, n, H);
        ram_linear(h, n, H, m->fc_w, m->fc_b, 1, logits + c0);
        trace(hk, "logits", c0, logits + c0, n, 1);
    }
    return RAM_OK;
}

ram_status ram_tagger_precompute(const struct ram_model *m, const float *label_embed, int n_tags, float *h0, float *q0,
                                 struct ram_error *err)
{
    ram_status rc;
    if (!m || !label_embed || !h0 || !q0) return ram_fail(err, RAM_ERR_ARG, "tagger: NULL argument");
    if ((rc = check_model(m, err))) return rc;
    if (n_tags < 1) return ram_fail(err, RAM_ERR_ARG, "tagger: %d tags", n_tags);
    /* Once per state (its image-independent queries): these two products
    ** take a buffer of their own, not a state's scratch. */
    if ((rc = queries(m, label_embed, n_tags, h0, NULL, err))) return rc;
    if (m->tagger.n_layers > 0) {
        const struct ram_tagger_layer_w *w = &m->tagger_layers[0];
        const int H = m->tagger.hidden;
        if (w->q_q)
            rc = ram_linear_q(h0, n_tags, H, w->q_w, w->q_q, w->q_b, H, q0, NULL, err);
        else
            ram_linear_packed(h0, n_tags, H, w->q_w, ram_tagger_packed(m, 0, RAM_TAGGER_Q), w->q_b, H, q0);
    }
    return rc;
}
