/*
** tag2text.c — Tag2Text's tagging head, tag encoder and caption decoder
** (API in tag2text.h; facts in docs/TAG2TEXT.md sections 2-5).
**
** HOW IT WORKS
**
** Tagging: the num_class label_embed rows are the queries of the tagging
** head as they are (no projection, no self-attention), so classes run in
** chunks; the cross-attention keys/values over the image tokens are
** computed once per layer for all chunks. fc is a GroupWiseLinear: logit c =
** W[c] . h[c] + b[c].
**
** Caption: the tag string becomes 40 ids ([ENC] first), the tag encoder
** runs once (the official code runs it on 3 identical rows), its 40 output
** states (padded positions included: the decoder attends to all 40) give
** every decoder layer's cross-attention keys/values once per caption. The
** decoder step 0 feeds the 4 prompt tokens of one beam (the beams are
** identical then; their scores -1e9 keep beams 1.. out of the candidates),
** later steps one token per beam, the 3 beams as 3 rows of every product.
** Self-attention keys/values live in per-beam caches, two sets: after each
** step the kept beams' caches are copied from their parents' into the
** other set. The LM head (dense, GELU, LayerNorm, then the tied word
** embeddings and a bias) runs on each beam's last row as one product.
**
** Verified int8 decoding (RAM_T2T_DECODE_VERIFIED, decode_verified): the
** same search, its steps drafted in chunks with the int8 weights and checked
** by one fp32 pass per chunk (dec_verify) that computes every row exactly as
** the fp32 step would (the same sgemm products, whose rows do not depend on
** the rows beside them; attention over the same cached
** keys/values, row-wise ops on the same 3-row groups); the search advances
** on the fp32 log-probs only, so its decisions are fp32's.
**
** Arena (floats, areas rounded to 16): swin scratch; tagging (chunk rows,
** per-layer image K/V, layer scratch); tag encoder (40 rows, its self K/V,
** one layer's image K/V, layer scratch); decoder (cross K/V per layer, two
** cache sets, rows, LM transform, logits, log-probs, layer scratch); with an
** int8 decoder, the check's rows, keys/values of every layer, scores, logits
** and two more cache sets (about 30 MB at full size).
*/
#include "tag2text.h"

#include "bert.h"
#include "gemv_w8.h"
#include "ops.h"
#include "scratch.h"
#include "sgemm.h"
#include "swin.h"
#include "tagger.h"
#include "weights.h"
#include "wordpiece.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const int ram_t2t_high_threshold_classes[3] = {2701, 2828, 1167};
const int ram_t2t_deleted_classes[7] = {127, 2961, 3351, 3265, 3338, 3355, 3359};

#define T2T_CHUNK 256
/* Verified decoding: steps checked by one fp32 pass at most, and its rows. */
#define T2T_CHUNK_MAX 16
#define T2T_VROWS (3 * T2T_CHUNK_MAX)

struct ram_t2t_state {
    const struct ram_model *m; /* borrowed */
    float *arena;              /* owned (ram_free): every float pointer below points into it */
    float *swin;
    /* tagging */
    float *tag_h, *tag_kv, *tag_scr;
    /* tag encoder */
    float *enc_h, *enc_k, *enc_v, *enc_ikv, *enc_scr, *enc_bias;
    /* decoder */
    float *dec_kv;   /* layers x 2 x 40 x Hd: cross-attention keys/values */
    float *cache[4]; /* layers x beams x {k, v} x max_len x Hd: two sets, and two for verified decoding */
    float *dec_h, *lm_t, *logits, *logp, *dec_scr;
    int32_t prompt[8]; /* [DEC] a picture of */
    int n_prompt;
    struct ram_beam_search *bs; /* owned (ram_free) */
    enum ram_t2t_decoder decoder;
    struct ram_t2t_decode_stats stats;
    void (*draft_cb)(void *arg, int step, float *logp, int n_beams, int vocab);
    void *draft_arg;
    /* RAM_T2T_DECODE_VERIFIED (models with an int8 decoder): the draft's
    ** search and decisions in a chunk, then the fp32 pass over the chunk's
    ** tree: row 3 g + j is beam j's token fed at the chunk's step g (g = 0:
    ** the verified beams' tokens, g > 0: the draft's at its step g - 1).
    ** v_kv: layers x {K, V} x T2T_VROWS x Hd; v_logits: the rows' LM head. */
    struct ram_beam_search *draft_bs; /* owned (ram_free) */
    struct {
        int32_t tok[RAM_T2T_BEAMS];
        int beam[RAM_T2T_BEAMS];
    } draft[T2T_CHUNK_MAX];
    float *v_h, *v_q, *v_a, *v_f, *v_kv, *v_s, *v_logits;
    struct ram_scratch products; /* the products' working memory (scratch.h); owned (ram_scratch_free) */
};

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static int add_area(size_t *total, size_t n, size_t *off)
{
    size_t r = round16(n);
    if (!n || r < n || *total + r < *total) return 0;
    *off = *total;
    *total += r;
    return 1;
}

/* The fp32 view of one attention block's tensors (no packed copies). */
static struct ram_bert_attn_w attn_view(const struct ram_bert_attn_tensors *a)
{
    return (struct ram_bert_attn_w){.q_w = a->q_w,
                                    .q_b = a->q_b,
                                    .k_w = a->k_w,
                                    .k_b = a->k_b,
                                    .v_w = a->v_w,
                                    .v_b = a->v_b,
                                    .o_w = a->o_w,
                                    .o_b = a->o_b,
                                    .ln_w = a->ln_w,
                                    .ln_b = a->ln_b};
}

void ram_t2t_layer_view(const struct ram_bert_config *c, const struct ram_bert_stack_w *w, int l, int causal, int w8,
                        struct ram_bert_layer *L)
{
    const struct ram_bert_layer_tensors *t = &w->layers[l];
    memset(L, 0, sizeof *L);
    L->hidden = c->hidden, L->heads = c->heads, L->intermediate = c->intermediate, L->eps = c->eps;
    L->has_self = 1, L->causal = causal, L->has_cross = 1, L->kv_width = c->encoder_width;
    L->self = attn_view(&t->self);
    L->cross = attn_view(&t->cross);
    L->i_w = t->i_w, L->i_b = t->i_b, L->o_w = t->o_w, L->o_b = t->o_b, L->ln_w = t->ln_w, L->ln_b = t->ln_b;
    if (!w8) return;
    L->sq_w8 = t->sq_w8, L->sk_w8 = t->sk_w8, L->sv_w8 = t->sv_w8, L->so_w8 = t->so_w8;
    L->cq_w8 = t->cq_w8, L->co_w8 = t->co_w8, L->i_w8 = t->i_w8, L->o_w8 = t->o_w8;
}

static size_t cache_floats(const struct ram_model *m)
{
    return (size_t)m->t2t.dec.layers * RAM_T2T_BEAMS * 2 * RAM_T2T_MAX_LEN * (size_t)m->t2t.dec.hidden;
}

/* Cache of (set, layer, beam): k at the returned pointer, v max_len rows later. */
static float *cache_at(const struct ram_t2t_state *st, int set, int l, int b)
{
    const size_t per = 2 * (size_t)RAM_T2T_MAX_LEN * st->m->t2t.dec.hidden;
    return st->cache[set] + ((size_t)l * RAM_T2T_BEAMS + b) * per;
}

void ram_t2t_state_free(struct ram_t2t_state *st)
{
    if (!st) return;
    ram_free(st->arena);
    ram_free(st->bs);
    ram_free(st->draft_bs);
    ram_scratch_free(&st->products);
    ram_free(st);
}

float *ram_t2t_swin_scratch(struct ram_t2t_state *st) { return st ? st->swin : NULL; }

struct ram_scratch *ram_t2t_products(struct ram_t2t_state *st) { return st ? &st->products : NULL; }

ram_status ram_t2t_set_decoder(struct ram_t2t_state *st, enum ram_t2t_decoder decoder, struct ram_error *err)
{
    if (!st || (decoder != RAM_T2T_DECODE_FP32 && decoder != RAM_T2T_DECODE_INT8 && decoder != RAM_T2T_DECODE_VERIFIED))
        return ram_fail(err, RAM_ERR_ARG, "tag2text: no decoder %d", (int)decoder);
    if (decoder != RAM_T2T_DECODE_FP32 && !st->draft_bs)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "tag2text: the model has no int8 decoder");
    st->decoder = decoder;
    return RAM_OK;
}

enum ram_t2t_decoder ram_t2t_get_decoder(const struct ram_t2t_state *st)
{
    return st ? st->decoder : RAM_T2T_DECODE_FP32;
}

void ram_t2t_set_draft_hook(struct ram_t2t_state *st,
                            void (*cb)(void *arg, int step, float *logp, int n_beams, int vocab), void *arg)
{
    if (st) st->draft_cb = cb, st->draft_arg = arg;
}

void ram_t2t_last_decode(const struct ram_t2t_state *st, struct ram_t2t_decode_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (st) *out = st->stats;
}

ram_status ram_t2t_state_init(const struct ram_model *m, struct ram_t2t_state **out, struct ram_error *err)
{
    struct ram_t2t_state *st = NULL;
    ram_status rc;
    if (!out) return ram_fail(err, RAM_ERR_ARG, "tag2text: out is NULL");
    *out = NULL;
    if (!m || m->kind != RAM_KIND_TAG2TEXT || !m->t2t.wp || !m->t2t.enc_w.layers || !m->t2t.dec_w.layers ||
        !m->tagger_layers)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "not a Tag2Text model (or one without its BERT vocabulary)");
    const struct ram_t2t *t = &m->t2t;
    if (ram_wordpiece_size(t->wp) != t->enc.vocab || ram_wordpiece_size(t->wp) != t->dec.vocab)
        return ram_fail(err, RAM_ERR_FORMAT, "tag2text: the tokenizer has %d ids, the embeddings %d and %d",
                        ram_wordpiece_size(t->wp), t->enc.vocab, t->dec.vocab);
    const size_t nt = (size_t)m->n_image_tokens, H = (size_t)m->tagger.hidden, He = (size_t)t->enc.hidden,
                 Hd = (size_t)t->dec.hidden, V = (size_t)t->dec.vocab, B = RAM_T2T_BEAMS;
    struct ram_bert_layer Lt, Le, Ld;
    ram_bert_layer_from_tagger(m, 0, &Lt);
    ram_t2t_layer_view(&t->enc, &t->enc_w, 0, 0, 0, &Le);
    ram_t2t_layer_view(&t->dec, &t->dec_w, 0, 1, 0, &Ld);
    size_t rows_dec = B > 8 ? B : 8; /* the prompt (4) or one row per beam */
    size_t o[28], total = 0;
    const int has_w8 = t->dec_w.layers[0].sq_w8 != NULL, Id = t->dec.intermediate;
    int ok =
        add_area(&total, ram_swin_scratch_floats(m), &o[0]) && add_area(&total, T2T_CHUNK * H, &o[1]) &&
        add_area(&total, (size_t)m->tagger.n_layers * 2 * nt * H, &o[2]) &&
        add_area(&total, ram_bert_layer_scratch_floats(&Lt, T2T_CHUNK, (int)nt), &o[3]) &&
        add_area(&total, RAM_T2T_TAG_LEN * He, &o[4]) && add_area(&total, RAM_T2T_TAG_LEN * He, &o[5]) &&
        add_area(&total, RAM_T2T_TAG_LEN * He, &o[6]) && add_area(&total, 2 * nt * He, &o[7]) &&
        add_area(&total, ram_bert_layer_scratch_floats_ex(&Le, RAM_T2T_TAG_LEN, (int)nt, RAM_T2T_TAG_LEN), &o[8]) &&
        add_area(&total, RAM_T2T_TAG_LEN, &o[9]) &&
        add_area(&total, (size_t)t->dec.layers * 2 * RAM_T2T_TAG_LEN * Hd, &o[10]) &&
        add_area(&total, cache_floats(m), &o[11]) && add_area(&total, cache_floats(m), &o[12]) &&
        add_area(&total, rows_dec * Hd, &o[13]) && add_area(&total, B * Hd, &o[14]) &&
        add_area(&total, B * V, &o[15]) && add_area(&total, B * V, &o[16]) &&
        add_area(&total, ram_bert_layer_scratch_floats_ex(&Ld, (int)rows_dec, RAM_T2T_TAG_LEN, RAM_T2T_MAX_LEN),
                 &o[17]);
    /* Verified decoding: the fp32 pass (its scores: one node's 1 x max_len
    ** or a step's 3 x 40) and two more cache sets (the draft's, then the
    ** pass's walk along the tree). */
    if (ok && has_w8)
        ok = add_area(&total, T2T_VROWS * Hd, &o[18]) && add_area(&total, T2T_VROWS * Hd, &o[19]) &&
             add_area(&total, T2T_VROWS * Hd, &o[20]) && add_area(&total, T2T_VROWS * (size_t)Id, &o[21]) &&
             add_area(&total, (size_t)t->dec.layers * 2 * T2T_VROWS * Hd, &o[22]) &&
             add_area(&total, 8 * (RAM_T2T_MAX_LEN + RAM_T2T_TAG_LEN), &o[23]) &&
             add_area(&total, (size_t)T2T_VROWS * V, &o[24]) && add_area(&total, cache_floats(m), &o[25]) &&
             add_area(&total, cache_floats(m), &o[26]);
    if (!ok || total > SIZE_MAX / sizeof(float))
        return ram_fail(err, RAM_ERR_TOO_BIG, "tag2text: the model's scratch size overflows");
    st = ram_calloc(1, sizeof *st);
    if (!st) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    st->m = m;
    st->arena = ram_malloc(total * sizeof(float));
    st->bs = ram_malloc(sizeof *st->bs);
    if (has_w8) st->draft_bs = ram_malloc(sizeof *st->draft_bs);
    if (!st->arena || !st->bs || (has_w8 && !st->draft_bs)) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "tag2text: out of memory (%zu MB of scratch)", total * sizeof(float) >> 20);
        goto fail;
    }
    float *a = st->arena;
    st->swin = a + o[0], st->tag_h = a + o[1], st->tag_kv = a + o[2], st->tag_scr = a + o[3];
    st->enc_h = a + o[4], st->enc_k = a + o[5], st->enc_v = a + o[6], st->enc_ikv = a + o[7];
    st->enc_scr = a + o[8], st->enc_bias = a + o[9], st->dec_kv = a + o[10];
    st->cache[0] = a + o[11], st->cache[1] = a + o[12], st->dec_h = a + o[13], st->lm_t = a + o[14];
    st->logits = a + o[15], st->logp = a + o[16], st->dec_scr = a + o[17];
    if (has_w8) {
        st->v_h = a + o[18], st->v_q = a + o[19], st->v_a = a + o[20], st->v_f = a + o[21];
        st->v_kv = a + o[22], st->v_s = a + o[23], st->v_logits = a + o[24];
        st->cache[2] = a + o[25], st->cache[3] = a + o[26];
    }
    /* An int8 file decodes verified: fp32's captions bit for bit, measured
    ** faster than fp32 on make bench's image once the check runs through
    ** the packed sgemm (README, "Verified int8 decoding"); the int8 decoder
    ** alone (2x faster, captions may differ) stays selectable. */
    st->decoder = has_w8 ? RAM_T2T_DECODE_VERIFIED : RAM_T2T_DECODE_FP32;

    /* The prompt: tokenizer("a picture of ").input_ids with [CLS] -> [DEC], [SEP] dropped. */
    int n = 0;
    st->prompt[0] = ram_wordpiece_special(t->wp, RAM_WP_DEC);
    rc = ram_wordpiece_tokenize(t->wp, RAM_T2T_PROMPT, strlen(RAM_T2T_PROMPT), st->prompt + 1, 7, &n, err);
    if (rc) goto fail;
    if (n < 1 || n > 7) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "tag2text: the prompt tokenizes to %d ids", n);
        goto fail;
    }
    st->n_prompt = 1 + n;
    *out = st;
    return RAM_OK;
fail:
    ram_t2t_state_free(st);
    return rc;
}

static void trace(const struct ram_t2t_hooks *hk, const char *name, int row0, const float *x, int rows, int cols)
{
    if (hk && hk->trace) hk->trace(hk->trace_arg, name, row0, x, rows, cols);
}

static int aborted(const struct ram_t2t_hooks *hk) { return hk && hk->abort_cb && hk->abort_cb(hk->abort_arg); }

/* ------------------------------------------------------------------ model */

ram_status ram_t2t_attach(struct ram_model *m, const char *vocab_text, size_t vocab_len, const unsigned char *deleted,
                          int official_thresholds, struct ram_error *err)
{
    if (!m || m->kind != RAM_KIND_TAG2TEXT || !m->thresholds || (!vocab_text && vocab_len))
        return ram_fail(err, RAM_ERR_ARG, "ram_t2t_attach: not a Tag2Text model with a vocabulary");
    struct ram_wordpiece *wp = NULL;
    ram_status rc = ram_wordpiece_init(vocab_text, vocab_len, &wp, err);
    if (rc) return rc;
    if ((rc = ram_model_own(m, wp, err))) return rc; /* one allocation: ram_free frees it */
    if (ram_wordpiece_size(wp) != m->t2t.enc.vocab || ram_wordpiece_size(wp) != m->t2t.dec.vocab)
        return ram_fail(err, RAM_ERR_FORMAT,
                        "the BERT vocabulary has %d ids (with [DEC], [ENC]), the model's "
                        "embeddings %d",
                        ram_wordpiece_size(wp), m->t2t.enc.vocab);
    char *text = ram_malloc(vocab_len + 1);
    if (!text) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    if ((rc = ram_model_own(m, text, err))) return rc;
    memcpy(text, vocab_text, vocab_len);
    text[vocab_len] = 0;
    unsigned char *del = ram_calloc((size_t)m->num_class, 1);
    if (!del) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    if ((rc = ram_model_own(m, del, err))) return rc;
    if (deleted) {
        for (int c = 0; c < m->num_class; c++) del[c] = deleted[c] != 0;
    } else {
        for (int i = 0; i < 7; i++)
            if (ram_t2t_deleted_classes[i] < m->num_class) del[ram_t2t_deleted_classes[i]] = 1;
    }
    if (official_thresholds)
        for (int i = 0; i < 3; i++)
            if (ram_t2t_high_threshold_classes[i] < m->num_class)
                m->thresholds[ram_t2t_high_threshold_classes[i]] = 0.7f;
    m->t2t.wp = wp;
    m->t2t.deleted = del;
    m->t2t.vocab_text = text;
    m->t2t.vocab_len = vocab_len;
    return RAM_OK;
}

/* The weight-only int8 form of W (n x k): codes, scales and the struct in
** one buffer owned by m. */
static ram_status w8_owned(struct ram_model *m, const float *W, int n, int k, const struct ram_w8 **out,
                           struct ram_error *err)
{
    size_t nc, ns;
    ram_w8_sizes(n, k, &nc, &ns);
    if (!W || !nc) return ram_fail(err, RAM_ERR_FORMAT, "tag2text: cannot quantize a %d x %d matrix", n, k);
    const size_t head = (sizeof(struct ram_w8) + 63) & ~(size_t)63, sbytes = ns * sizeof(float);
    if (nc > SIZE_MAX - head - sbytes) return ram_fail(err, RAM_ERR_TOO_BIG, "tag2text: %d x %d matrix", n, k);
    char *buf = ram_malloc(head + sbytes + nc);
    if (!buf) return ram_fail(err, RAM_ERR_NOMEM, "out of memory quantizing a %d x %d matrix", n, k);
    ram_status rc = ram_model_own(m, buf, err);
    if (rc) return rc;
    struct ram_w8 *w = (struct ram_w8 *)buf;
    float *scales = (float *)(buf + head);
    int8_t *codes = (int8_t *)(buf + head + sbytes);
    ram_w8_quantize(W, n, k, codes, scales);
    *w = (struct ram_w8){n, k, codes, scales};
    *out = w;
    return RAM_OK;
}

ram_status ram_t2t_quantize_decoder(struct ram_model *m, struct ram_error *err)
{
    if (!m || m->kind != RAM_KIND_TAG2TEXT || !m->t2t.dec_w.layers)
        return ram_fail(err, RAM_ERR_ARG, "ram_t2t_quantize_decoder: not a Tag2Text model");
    struct ram_t2t *t = &m->t2t;
    const int H = t->dec.hidden, I = t->dec.intermediate;
    ram_status rc = RAM_OK;
    for (int l = 0; l < t->dec.layers && !rc; l++) {
        struct ram_bert_layer_tensors *w = &t->dec_w.layers[l];
        if (w->sq_w8) continue; /* done already */
        if ((rc = w8_owned(m, w->self.q_w, H, H, &w->sq_w8, err)) ||
            (rc = w8_owned(m, w->self.k_w, H, H, &w->sk_w8, err)) ||
            (rc = w8_owned(m, w->self.v_w, H, H, &w->sv_w8, err)) ||
            (rc = w8_owned(m, w->self.o_w, H, H, &w->so_w8, err)) ||
            (rc = w8_owned(m, w->cross.q_w, H, H, &w->cq_w8, err)) ||
            (rc = w8_owned(m, w->cross.o_w, H, H, &w->co_w8, err)) || (rc = w8_owned(m, w->i_w, I, H, &w->i_w8, err)))
            break;
        rc = w8_owned(m, w->o_w, H, I, &w->o_w8, err);
    }
    if (!rc && !t->lm_dense_w8) rc = w8_owned(m, t->lm_dense_w, H, H, &t->lm_dense_w8, err);
    if (!rc && !t->lm_word_w8) rc = w8_owned(m, t->dec_w.word, t->dec.vocab, H, &t->lm_word_w8, err);
    return rc;
}

/* ------------------------------------------------------------------ packed decoder */

/* Every fp32 product of a decoding step goes through ram_linear_invariant (sgemm),
** whose result for a row does not depend on how many rows are computed with
** it: a 3-row step and verified decoding's check over a chunk's ~48 rows
** give the same bits. Packed once here (the layer views and the LM head
** pass the panels down), the check reads each weight once for all its rows
** at the kernel's full rate, and a step skips packing on the fly. */
enum { DP_SQ, DP_SK, DP_SV, DP_SO, DP_CQ, DP_CO, DP_I, DP_O, DP_PER_LAYER };
struct dec_packed {
    int layers;
    struct ram_sgemm_packed lm_dense, word;    /* the LM head's two */
    struct ram_sgemm_packed l[][DP_PER_LAYER]; /* layers rows */
};

/* p when it has panels, else NULL (the product then runs on W as is). */
static const struct ram_sgemm_packed *has_panels(const struct ram_sgemm_packed *p) { return p->panels ? p : NULL; }

/* The decoder's layer l view with its packed matrices (w8: the int8 forms instead). */
static void dec_layer(const struct ram_model *m, int l, int w8, struct ram_bert_layer *L)
{
    const struct ram_t2t *t = &m->t2t;
    const struct dec_packed *d = t->dec_packed;
    ram_t2t_layer_view(&t->dec, &t->dec_w, l, 1, w8, L);
    if (!d || l >= d->layers) return;
    const struct ram_sgemm_packed *p = d->l[l];
    L->self.q_p = has_panels(&p[DP_SQ]), L->self.k_p = has_panels(&p[DP_SK]);
    L->self.v_p = has_panels(&p[DP_SV]), L->self.o_p = has_panels(&p[DP_SO]);
    L->cross.q_p = has_panels(&p[DP_CQ]), L->cross.o_p = has_panels(&p[DP_CO]);
    L->i_p = has_panels(&p[DP_I]), L->o_p = has_panels(&p[DP_O]);
}

/* The tag encoder's layer l view: its first layers' cross-attention and FFN
** are the tagging head's (ram_t2t_link), packed by the tagger. */
static void enc_layer(const struct ram_model *m, int l, struct ram_bert_layer *L)
{
    ram_t2t_layer_view(&m->t2t.enc, &m->t2t.enc_w, l, 0, 0, L);
    if (l >= m->tagger.n_layers) return;
    L->cross.q_p = ram_tagger_packed(m, l, RAM_TAGGER_Q), L->cross.o_p = ram_tagger_packed(m, l, RAM_TAGGER_AO);
    L->i_p = ram_tagger_packed(m, l, RAM_TAGGER_I), L->o_p = ram_tagger_packed(m, l, RAM_TAGGER_O);
}

/* The LM head's transform (word 0) or word matrix (word 1) packed, or NULL. */
static const struct ram_sgemm_packed *lm_packed(const struct ram_model *m, int word)
{
    const struct dec_packed *d = m->t2t.dec_packed;
    return d ? has_panels(word ? &d->word : &d->lm_dense) : NULL;
}

/* Hands back the file mapping's pages of a matrix now read from its packed
** copy (clean; read again only by a fallback), as swin.c does. */
static void drop_mapped(const struct ram_model *m, const float *W, size_t n)
{
    const char *lo = (const char *)W, *hi = lo + n * sizeof(float), *base = m->map;
    long page = sysconf(_SC_PAGESIZE);
    if (!base || lo < base || hi > base + m->map_len || page <= 0) return;
    uintptr_t a = ((uintptr_t)lo + page - 1) / page * page, e = (uintptr_t)hi / page * page;
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static void dec_pack_one(const struct ram_model *m, struct ram_sgemm_packed *p, const float *W, int N, int K, int keep)
{
    *p = (struct ram_sgemm_packed){0};
    if (W && ram_sgemm_pack_weights(W, N, K, p) && !keep) drop_mapped(m, W, (size_t)N * K);
}

void ram_t2t_prepack(struct ram_model *m)
{
    ram_t2t_release_packed(m);
    const char *e = getenv("RAM_PREPACK");
    if ((e && !strcmp(e, "0")) || !m || m->kind != RAM_KIND_TAG2TEXT || !m->t2t.dec_w.layers) return;
    struct ram_t2t *t = &m->t2t;
    const int L = t->dec.layers, H = t->dec.hidden, I = t->dec.intermediate;
    struct dec_packed *d = ram_malloc(sizeof *d + sizeof d->l[0] * (size_t)L);
    if (!d) return;
    d->layers = L;
    for (int l = 0; l < L; l++) {
        const struct ram_bert_layer_tensors *w = &t->dec_w.layers[l];
        struct ram_sgemm_packed *p = d->l[l];
        dec_pack_one(m, &p[DP_SQ], w->self.q_w, H, H, 0);
        dec_pack_one(m, &p[DP_SK], w->self.k_w, H, H, 0);
        dec_pack_one(m, &p[DP_SV], w->self.v_w, H, H, 0);
        dec_pack_one(m, &p[DP_SO], w->self.o_w, H, H, 0);
        dec_pack_one(m, &p[DP_CQ], w->cross.q_w, H, H, 0);
        dec_pack_one(m, &p[DP_CO], w->cross.o_w, H, H, 0);
        dec_pack_one(m, &p[DP_I], w->i_w, I, H, 0);
        dec_pack_one(m, &p[DP_O], w->o_w, H, I, 0);
    }
    dec_pack_one(m, &d->lm_dense, t->lm_dense_w, H, H, 0);
    dec_pack_one(m, &d->word, t->dec_w.word, t->dec.vocab, H, 1); /* also the embeddings: stays read */
    t->dec_packed = d;
}

void ram_t2t_release_packed(struct ram_model *m)
{
    struct dec_packed *d = m ? m->t2t.dec_packed : NULL;
    if (!d) return;
    for (int l = 0; l < d->layers; l++)
        for (int i = 0; i < DP_PER_LAYER; i++) ram_sgemm_packed_free(&d->l[l][i]);
    ram_sgemm_packed_free(&d->lm_dense);
    ram_sgemm_packed_free(&d->word);
    ram_free(d);
    m->t2t.dec_packed = NULL;
}

/* ------------------------------------------------------------------ tagging */

ram_status ram_t2t_tag_logits(struct ram_t2t_state *st, const float *image_embeds, float *logits,
                              const struct ram_t2t_hooks *hk, struct ram_error *err)
{
    if (!st || !image_embeds || !logits) return ram_fail(err, RAM_ERR_ARG, "tag2text: NULL argument");
    const struct ram_model *m = st->m;
    const int H = m->tagger.hidden, nt = m->n_image_tokens, nl = m->tagger.n_layers;
    const size_t kvn = (size_t)nt * H;
    ram_status rc;
    for (int l = 0; l < nl; l++) {
        struct ram_bert_layer L;
        ram_bert_layer_from_tagger(m, l, &L);
        ram_bert_cross_kv(&L, image_embeds, nt, st->tag_kv + 2 * l * kvn, st->tag_kv + (2 * l + 1) * kvn);
    }
    char name[40];
    for (int c0 = 0; c0 < m->num_class; c0 += T2T_CHUNK) {
        const int n = m->num_class - c0 < T2T_CHUNK ? m->num_class - c0 : T2T_CHUNK;
        if (aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tag2text: interrupted");
        memcpy(st->tag_h, m->label_embed + (size_t)c0 * H, sizeof(float) * (size_t)n * H);
        for (int l = 0; l < nl; l++) {
            struct ram_bert_layer L;
            ram_bert_layer_from_tagger(m, l, &L);
            L.products = &st->products;
            rc = ram_bert_layer_forward(&L, st->tag_h, n, st->tag_kv + 2 * l * kvn, st->tag_kv + (2 * l + 1) * kvn, nt,
                                        NULL, st->tag_scr, err);
            if (rc) return rc;
            snprintf(name, sizeof name, "tagging_layer%d_out", l);
            trace(hk, name, c0, st->tag_h, n, H);
        }
        /* GroupWiseLinear: one weight vector and bias per class. */
        for (int i = 0; i < n; i++)
            logits[c0 + i] =
                ram_dot(m->t2t.fc_w + (size_t)(c0 + i) * H, st->tag_h + (size_t)i * H, H) + m->t2t.fc_b[c0 + i];
    }
    return RAM_OK;
}

ram_status ram_t2t_tag_string(const struct ram_model *m, const float *probs, char **out, struct ram_error *err)
{
    if (!m || !probs || !out) return ram_fail(err, RAM_ERR_ARG, "tag2text: NULL argument");
    *out = NULL;
    size_t len = 1;
    for (int pass = 0; pass < 2; pass++) {
        char *p = pass ? *out : NULL;
        size_t o = 0;
        for (int c = 0; c < m->num_class; c++) {
            if (!(probs[c] > m->thresholds[c]) || (m->t2t.deleted && m->t2t.deleted[c])) continue;
            const char *name = m->tags_en[c];
            size_t nl = strlen(name);
            if (pass) {
                if (o) memcpy(p + o, " | ", 3);
                memcpy(p + o + (o ? 3 : 0), name, nl);
            }
            o += (o ? 3 : 0) + nl;
        }
        if (!pass) {
            len = o + 1;
            *out = ram_malloc(len);
            if (!*out) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        } else {
            p[o] = 0;
        }
    }
    return RAM_OK;
}

ram_status ram_t2t_user_tags(const char *tags, size_t len, char **out, struct ram_error *err)
{
    if (!out || (!tags && len)) return ram_fail(err, RAM_ERR_ARG, "tag2text: NULL argument");
    size_t commas = 0;
    for (size_t i = 0; i < len; i++) commas += tags[i] == ',';
    if (len > RAM_WP_MAX_TEXT) return ram_fail(err, RAM_ERR_TOO_BIG, "tags of %zu bytes are too long", len);
    char *s = ram_malloc(len + 2 * commas + 1);
    if (!s) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (tags[i] == ',') {
            memcpy(s + o, " | ", 3);
            o += 3;
        } else {
            s[o++] = tags[i];
        }
    }
    s[o] = 0;
    *out = s;
    return RAM_OK;
}

/* ------------------------------------------------------------------ tag encoder */

/* LayerNorm(word[ids] + pos[p0 + i]) of n ids into h. */
static void embed(const struct ram_bert_config *c, const struct ram_bert_stack_w *w, const int32_t *ids, int n, int p0,
                  float *h)
{
    const size_t H = (size_t)c->hidden;
    for (int i = 0; i < n; i++) {
        const float *we = w->word + (size_t)ids[i] * H, *pe = w->pos + (size_t)(p0 + i) * H;
        for (size_t k = 0; k < H; k++) h[i * H + k] = we[k] + pe[k];
    }
    ram_layernorm(h, h, n, (int)H, w->ln_w, w->ln_b, c->eps);
}

static ram_status tag_encoder(struct ram_t2t_state *st, const float *image_embeds, const char *tags, size_t len,
                              const struct ram_t2t_hooks *hk, struct ram_error *err)
{
    const struct ram_model *m = st->m;
    const struct ram_t2t *t = &m->t2t;
    const int nt = m->n_image_tokens, He = t->enc.hidden;
    int32_t ids[RAM_T2T_TAG_LEN], mask[RAM_T2T_TAG_LEN];
    ram_status rc = ram_wordpiece_encode_fixed(t->wp, tags, len, ram_wordpiece_special(t->wp, RAM_WP_ENC),
                                               RAM_T2T_TAG_LEN, ids, mask, NULL, err);
    if (rc) return rc;
    for (int i = 0; i < RAM_T2T_TAG_LEN; i++) st->enc_bias[i] = mask[i] ? 0.0f : RAM_BERT_MASKED;
    embed(&t->enc, &t->enc_w, ids, RAM_T2T_TAG_LEN, 0, st->enc_h);
    trace(hk, "tag_encoder_embeddings_out", 0, st->enc_h, RAM_T2T_TAG_LEN, He);
    char name[40];
    for (int l = 0; l < t->enc.layers; l++) {
        if (aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tag2text: interrupted");
        struct ram_bert_layer L;
        enc_layer(m, l, &L);
        float *K = st->enc_ikv, *V = st->enc_ikv + (size_t)nt * He;
        ram_bert_cross_kv(&L, image_embeds, nt, K, V);
        struct ram_bert_cache c = {st->enc_k, st->enc_v};
        struct ram_bert_self s = {&c, 0, st->enc_bias};
        L.products = &st->products;
        rc = ram_bert_layer_forward_ex(&L, st->enc_h, 1, RAM_T2T_TAG_LEN, &s, K, V, nt, NULL, st->enc_scr, err);
        if (rc) return rc;
        snprintf(name, sizeof name, "tag_encoder_layer%d_out", l);
        trace(hk, name, 0, st->enc_h, RAM_T2T_TAG_LEN, He);
    }
    return RAM_OK;
}

/* ------------------------------------------------------------------ decoder */

/* log_softmax by rows into y, in float as PyTorch's CPU kernel computes it
** (x - max - log(sum exp(x - max)), the sum accumulated in 8 float lanes,
** the tail added to the first lanes, then the lanes folded 4, 2, 1): over
** 30,524 terms the accumulation order moves the result by ~1e-6, and a beam
** score adds up to 46 of them; with a double-precision sum the scores drift
** from the official ones by ~2.5e-6 per step (1.2e-4 after 45 steps on the
** goldens), with this one they stay within 1e-4. */
#define LSM_LANES 8
static void log_softmax_rows(const float *x, float *y, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *a = x + (size_t)r * cols;
        float *b = y + (size_t)r * cols;
        float mx = -INFINITY;
        for (int i = 0; i < cols; i++)
            if (a[i] > mx) mx = a[i];
        float acc[LSM_LANES] = {0};
        int i = 0;
        for (; i + LSM_LANES <= cols; i += LSM_LANES)
            for (int k = 0; k < LSM_LANES; k++) acc[k] += expf(a[i + k] - mx);
        for (int k = 0; i < cols; i++, k++) acc[k] += expf(a[i] - mx);
        for (int w = LSM_LANES / 2; w >= 1; w /= 2)
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];
        const float lse = logf(acc[0]);
        for (int k = 0; k < cols; k++) b[k] = (a[k] - mx) - lse;
    }
}

/* One decoder forward: n_seq sequences of `rows` tokens at positions
** n_past.., caches of set `set`, the int8 weights if w8; st->logits
** receives the n_seq next-token logits (the last row of each sequence). */
static ram_status dec_forward(struct ram_t2t_state *st, const int32_t *tok, int n_seq, int rows, int n_past, int set,
                              int w8, const struct ram_t2t_hooks *hk, struct ram_error *err)
{
    const struct ram_model *m = st->m;
    const struct ram_t2t *t = &m->t2t;
    const int Hd = t->dec.hidden, V = t->dec.vocab;
    const size_t kvn = (size_t)RAM_T2T_TAG_LEN * Hd;
    ram_status rc;
    for (int s = 0; s < n_seq; s++)
        embed(&t->dec, &t->dec_w, tok + s * rows, rows, n_past, st->dec_h + (size_t)s * rows * Hd);
    if (n_past == 0) trace(hk, "decoder_step0_embeddings_out", 0, st->dec_h, rows, Hd);
    char name[40];
    for (int l = 0; l < t->dec.layers; l++) {
        struct ram_bert_layer L;
        dec_layer(m, l, w8, &L);
        struct ram_bert_cache c[RAM_T2T_BEAMS];
        for (int s = 0; s < n_seq; s++) {
            c[s].k = cache_at(st, set, l, s);
            c[s].v = c[s].k + (size_t)RAM_T2T_MAX_LEN * Hd;
        }
        struct ram_bert_self sa = {c, n_past, NULL};
        L.products = &st->products;
        rc = ram_bert_layer_forward_ex(&L, st->dec_h, n_seq, rows, &sa, st->dec_kv + 2 * l * kvn,
                                       st->dec_kv + (2 * l + 1) * kvn, RAM_T2T_TAG_LEN, NULL, st->dec_scr, err);
        if (rc) return rc;
        if (n_past == 0) {
            snprintf(name, sizeof name, "decoder_step0_layer%d_out", l);
            trace(hk, name, 0, st->dec_h, rows, Hd);
        }
    }
    /* LM head on each sequence's last row: dense, GELU, LayerNorm, then the
    ** tied word embeddings (+ bias) as one product. */
    for (int s = 0; s < n_seq; s++)
        memcpy(st->lm_t + (size_t)s * Hd, st->dec_h + ((size_t)s * rows + rows - 1) * Hd, sizeof(float) * Hd);
    if (w8 && t->lm_dense_w8)
        ram_w8_linear(st->lm_t, n_seq, t->lm_dense_w8, t->lm_dense_b, st->dec_h);
    else
        ram_linear_invariant_packed(st->lm_t, n_seq, Hd, t->lm_dense_w, lm_packed(m, 0), t->lm_dense_b, Hd, st->dec_h);
    ram_gelu(st->dec_h, (size_t)n_seq * Hd);
    ram_layernorm(st->dec_h, st->dec_h, n_seq, Hd, t->lm_ln_w, t->lm_ln_b, t->dec.eps);
    if (w8 && t->lm_word_w8)
        ram_w8_linear(st->dec_h, n_seq, t->lm_word_w8, t->lm_bias, st->logits);
    else
        ram_linear_invariant_packed(st->dec_h, n_seq, Hd, t->dec_w.word, lm_packed(m, 1), t->lm_bias, V, st->logits);
    return RAM_OK;
}

/* Beam steps from `step` on until the search bs finishes or max_steps are
** taken: the beams' caches are in set *set (sets pair up as 0/1 and 2/3)
** and, past step 0, feed holds the tokens chosen at step - 1; on return
** they are those of the next step. w8: the int8 weights. draft: the
** decisions go to st->draft[0..] and the hooks see only abort (the draft
** hook sees the log-probs). *steps receives the steps taken in this call,
** *finished whether the search is over. */
static ram_status decode_steps(struct ram_t2t_state *st, struct ram_beam_search *bs, int step, int *set, int32_t *feed,
                               int w8, int draft, int max_steps, const struct ram_t2t_hooks *hk, int *steps,
                               int *finished, struct ram_error *err)
{
    const struct ram_t2t *t = &st->m->t2t;
    const int Hd = t->dec.hidden, V = t->dec.vocab, B = RAM_T2T_BEAMS;
    const struct ram_t2t_hooks *th = draft ? NULL : hk;
    ram_status rc;
    *finished = 0;
    for (*steps = 0; *steps < max_steps && !*finished; step++) {
        if (aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tag2text: interrupted");
        const int n_past = bs->cur_len - (step ? 1 : st->n_prompt);
        if (step == 0) {
            /* The beams are identical: one sequence, its logits shared. */
            if ((rc = dec_forward(st, st->prompt, 1, st->n_prompt, 0, *set, w8, th, err))) return rc;
            for (int b = 1; b < B; b++) memcpy(st->logits + (size_t)b * V, st->logits, sizeof(float) * V);
        } else if ((rc = dec_forward(st, feed, B, 1, n_past, *set, w8, th, err))) {
            return rc;
        }
        log_softmax_rows(st->logits, st->logp, B, V);
        if (draft && st->draft_cb) st->draft_cb(st->draft_arg, step, st->logp, B, V);
        struct ram_beam_step rec;
        const int filled = bs->cur_len; /* positions in the caches */
        ram_beam_advance(bs, st->logp, &rec, finished);
        if (draft) {
            for (int j = 0; j < B; j++)
                st->draft[*steps].tok[j] = rec.next_token[j], st->draft[*steps].beam[j] = rec.next_beam[j];
        } else if (hk && hk->step) {
            hk->step(hk->step_arg, step, st->logits, st->logp, B, V, &rec);
        }
        ++*steps;
        if (*finished) break;
        /* Kept beam j continues its parent's cache (step 0: beam 0's for all). */
        for (int l = 0; l < t->dec.layers; l++)
            for (int j = 0; j < B; j++) {
                float *dst = cache_at(st, *set ^ 1, l, j);
                const float *src = cache_at(st, *set, l, step ? rec.next_beam[j] : 0);
                memcpy(dst, src, sizeof(float) * (size_t)filled * Hd);
                memcpy(dst + (size_t)RAM_T2T_MAX_LEN * Hd, src + (size_t)RAM_T2T_MAX_LEN * Hd,
                       sizeof(float) * (size_t)filled * Hd);
            }
        *set ^= 1;
        for (int j = 0; j < B; j++) feed[j] = rec.next_token[j];
    }
    return RAM_OK;
}

/* ------------------------------------------------------------------ verified int8 decoding */

/* LayerNorm(x + res) per step group of 3 rows, in place on x (groups x 3
** rows of `cols`): LayerNorm's vector and scalar tails could round a row
** differently in a call of other rows, so each gets the call the fp32 step
** gives it. */
static void v_add_ln(float *x, const float *res, int groups, int cols, const float *w, const float *b, float eps)
{
    const size_t n = (size_t)RAM_T2T_BEAMS * cols;
    ram_add(x, res, n * groups);
    for (int g = 0; g < groups; g++) ram_layernorm(x + g * n, x + g * n, RAM_T2T_BEAMS, cols, w, b, eps);
}

static void v_gelu(float *x, int groups, int cols)
{
    for (int g = 0; g < groups; g++) ram_gelu(x + (size_t)g * RAM_T2T_BEAMS * cols, (size_t)RAM_T2T_BEAMS * cols);
}

/* The beam index at the chunk's root (cache set `root`) that chunk node
** (g, b) descends from, walking its ancestors. */
static int v_root_beam(const struct ram_t2t_state *st, int g, int b)
{
    for (; g > 0; g--) b = st->draft[g - 1].beam[b];
    return b;
}

/* The fp32 decoder over a chunk of G steps: the beams at the root (caches
** in set `root`, n_past positions each) feed `feed`, then the draft's
** decisions 0..G-2. Every layer's keys/values of every row go to st->v_kv,
** the rows' next-token logits to st->v_logits. Each row gets the bits the
** fp32 step that feeds it computes: the same products
** (ram_linear_invariant: a row's result does not depend on the rows computed with it,
** and the check reads each packed weight once for all N rows), self-attention over the node's ancestors gathered into
** a cache as the fp32 beams' caches hold them, cross-attention, GELU and
** LayerNorm per step group. */
static ram_status dec_verify(struct ram_t2t_state *st, int root, int n_past, const int32_t *feed, int G,
                             const struct ram_t2t_hooks *hk, struct ram_error *err)
{
    const struct ram_t2t *t = &st->m->t2t;
    const int Hd = t->dec.hidden, Id = t->dec.intermediate, V = t->dec.vocab, B = RAM_T2T_BEAMS, N = B * G;
    const size_t kvn = (size_t)RAM_T2T_TAG_LEN * Hd, vr = (size_t)T2T_VROWS * Hd, ml = (size_t)RAM_T2T_MAX_LEN * Hd;
    for (int g = 0; g < G; g++)
        for (int j = 0; j < B; j++)
            embed(&t->dec, &t->dec_w, g ? &st->draft[g - 1].tok[j] : &feed[j], 1, n_past + g,
                  st->v_h + (size_t)(B * g + j) * Hd);
    for (int l = 0; l < t->dec.layers; l++) {
        if (aborted(hk)) return ram_fail(err, RAM_ERR_INTERRUPTED, "tag2text: interrupted");
        struct ram_bert_layer L;
        dec_layer(st->m, l, 0, &L);
        float *K = st->v_kv + 2 * l * vr, *Vv = K + vr;
        ram_linear_invariant_packed(st->v_h, N, Hd, L.self.q_w, L.self.q_p, L.self.q_b, Hd, st->v_q);
        ram_linear_invariant_packed(st->v_h, N, Hd, L.self.k_w, L.self.k_p, L.self.k_b, Hd, K);
        ram_linear_invariant_packed(st->v_h, N, Hd, L.self.v_w, L.self.v_p, L.self.v_b, Hd, Vv);
        /* Each node over its ancestors: caches of the chunk's beams built
        ** step by step in sets 2/3 as the fp32 steps build theirs. */
        for (int g = 0; g < G; g++)
            for (int j = 0; j < B; j++) {
                const int n = B * g + j, past = n_past + g;
                float *dk = cache_at(st, 2 + (g & 1), l, j), *dv = dk + ml;
                const float *sk =
                    g ? cache_at(st, 2 + ((g - 1) & 1), l, st->draft[g - 1].beam[j]) : cache_at(st, root, l, j);
                memcpy(dk, sk, sizeof(float) * (size_t)past * Hd);
                memcpy(dv, sk + ml, sizeof(float) * (size_t)past * Hd);
                memcpy(dk + (size_t)past * Hd, K + (size_t)n * Hd, sizeof(float) * Hd);
                memcpy(dv + (size_t)past * Hd, Vv + (size_t)n * Hd, sizeof(float) * Hd);
                struct ram_bert_cache c = {dk, dv};
                ram_bert_self_attend(&L, st->v_q + (size_t)n * Hd, 1, &c, past, NULL, st->v_s);
            }
        ram_linear_invariant_packed(st->v_q, N, Hd, L.self.o_w, L.self.o_p, L.self.o_b, Hd, st->v_a);
        v_add_ln(st->v_a, st->v_h, G, Hd, L.self.ln_w, L.self.ln_b, L.eps);
        ram_linear_invariant_packed(st->v_a, N, Hd, L.cross.q_w, L.cross.q_p, L.cross.q_b, Hd, st->v_q);
        for (int g = 0; g < G; g++)
            ram_bert_cross_attend(&L, st->v_q + (size_t)B * g * Hd, B, st->dec_kv + 2 * l * kvn,
                                  st->dec_kv + (2 * l + 1) * kvn, RAM_T2T_TAG_LEN, st->v_s);
        ram_linear_invariant_packed(st->v_q, N, Hd, L.cross.o_w, L.cross.o_p, L.cross.o_b, Hd, st->v_h);
        v_add_ln(st->v_h, st->v_a, G, Hd, L.cross.ln_w, L.cross.ln_b, L.eps);
        ram_linear_invariant_packed(st->v_h, N, Hd, L.i_w, L.i_p, L.i_b, Id, st->v_f);
        v_gelu(st->v_f, G, Id);
        ram_linear_invariant_packed(st->v_f, N, Id, L.o_w, L.o_p, L.o_b, Hd, st->v_a);
        v_add_ln(st->v_a, st->v_h, G, Hd, L.ln_w, L.ln_b, L.eps);
        memcpy(st->v_h, st->v_a, sizeof(float) * (size_t)N * Hd);
    }
    /* LM head: dense, GELU, LayerNorm, the tied word embeddings. */
    ram_linear_invariant_packed(st->v_h, N, Hd, t->lm_dense_w, lm_packed(st->m, 0), t->lm_dense_b, Hd, st->v_a);
    v_gelu(st->v_a, G, Hd);
    for (int g = 0; g < G; g++)
        ram_layernorm(st->v_a + (size_t)B * g * Hd, st->v_a + (size_t)B * g * Hd, B, Hd, t->lm_ln_w, t->lm_ln_b,
                      t->dec.eps);
    ram_linear_invariant_packed(st->v_a, N, Hd, t->dec_w.word, lm_packed(st->m, 1), t->lm_bias, V, st->v_logits);
    return RAM_OK;
}

/* RAM_T2T_DECODE_VERIFIED into st->bs: step 0 (the prompt) in fp32, then
** chunks. A chunk drafts G - 1 steps with int8 weights from the verified
** beams, checks the G steps in one fp32 pass (dec_verify: one read of the
** weights for 3 G rows) and replays the search on the fp32 log-probs; it
** ends at the first step whose fp32 decision differs from the draft's (that
** decision is fp32's, so every chunk advances at least one step), and the
** next chunk's caches are gathered from the pass. G adapts: doubled (to
** T2T_CHUNK_MAX) when the draft held, else the steps it held + 1; once the
** draft fails at its first step, chunks of one step (fp32 itself, no draft)
** follow, and drafting is tried again after 1, 2, 4... of them, so a model
** whose int8 draft never holds costs little more than fp32. */
static ram_status decode_verified(struct ram_t2t_state *st, const struct ram_beam_params *bp,
                                  const struct ram_t2t_hooks *hk, struct ram_error *err)
{
    const struct ram_t2t *t = &st->m->t2t;
    const int Hd = t->dec.hidden, V = t->dec.vocab, B = RAM_T2T_BEAMS;
    const size_t vr = (size_t)T2T_VROWS * Hd, ml = (size_t)RAM_T2T_MAX_LEN * Hd;
    struct ram_beam_search *bs = st->bs;
    int32_t feed[RAM_T2T_BEAMS], dfeed[RAM_T2T_BEAMS];
    int root = 0, n = 0, finished = 0, G = 4, wait = 0, backoff = 1;
    ram_status rc = ram_beam_start(bs, bp, V, st->prompt, st->n_prompt, err);
    if (!rc) rc = decode_steps(st, bs, 0, &root, feed, 0, 0, 1, hk, &n, &finished, err);
    if (rc) return rc;
    st->stats.steps = 1;
    while (!finished) {
        const int step = bs->cur_len - st->n_prompt, n_past = bs->cur_len - 1;
        int g_run = 1;
        if (G > 1 && !wait) {
            /* The draft: the verified beams' caches copied to set 2, int8 steps. */
            for (int l = 0; l < t->dec.layers; l++)
                for (int j = 0; j < B; j++) {
                    memcpy(cache_at(st, 2, l, j), cache_at(st, root, l, j), sizeof(float) * (size_t)n_past * Hd);
                    memcpy(cache_at(st, 2, l, j) + ml, cache_at(st, root, l, j) + ml,
                           sizeof(float) * (size_t)n_past * Hd);
                }
            *st->draft_bs = *bs;
            memcpy(dfeed, feed, sizeof feed);
            int dset = 2, dn = 0, dfin = 0;
            const int room = bp->max_len - bs->cur_len; /* steps left */
            if ((rc = decode_steps(st, st->draft_bs, step, &dset, dfeed, 1, 1, G - 1 < room ? G - 1 : room, hk, &dn,
                                   &dfin, err)))
                return rc;
            g_run = dn + 1;
            st->stats.draft_steps += dn;
        }
        if (wait) wait--;
        if ((rc = dec_verify(st, root, n_past, feed, g_run, hk, err))) return rc;
        int g = 0;
        struct ram_beam_step rec;
        for (;; g++) {
            float *lg = st->v_logits + (size_t)B * g * V;
            log_softmax_rows(lg, st->logp, B, V);
            ram_beam_advance(bs, st->logp, &rec, &finished);
            if (hk && hk->step) hk->step(hk->step_arg, step + g, lg, st->logp, B, V, &rec);
            st->stats.steps++;
            if (g + 1 == g_run) break; /* the pass's last step: no draft decision to compare */
            int same = 1;
            for (int j = 0; same && j < B; j++)
                same = rec.next_token[j] == st->draft[g].tok[j] && rec.next_beam[j] == st->draft[g].beam[j];
            st->stats.draft_held += same;
            if (!same && st->stats.first_divergence < 0) st->stats.first_divergence = step + g;
            if (finished || !same) break;
        }
        if (finished) break;
        /* The next root: beam j's cache is its parent's path (root rows,
        ** then the chunk's rows from the pass), in the other root set. */
        const int next = root ^ 1;
        for (int l = 0; l < t->dec.layers; l++) {
            const float *K = st->v_kv + 2 * l * vr, *Vv = K + vr;
            for (int j = 0; j < B; j++) {
                float *dk = cache_at(st, next, l, j), *dv = dk + ml;
                const float *rk = cache_at(st, root, l, v_root_beam(st, g, rec.next_beam[j]));
                memcpy(dk, rk, sizeof(float) * (size_t)n_past * Hd);
                memcpy(dv, rk + ml, sizeof(float) * (size_t)n_past * Hd);
                for (int gg = g, b = rec.next_beam[j]; gg >= 0; b = gg ? st->draft[gg - 1].beam[b] : b, gg--) {
                    memcpy(dk + (size_t)(n_past + gg) * Hd, K + (size_t)(B * gg + b) * Hd, sizeof(float) * Hd);
                    memcpy(dv + (size_t)(n_past + gg) * Hd, Vv + (size_t)(B * gg + b) * Hd, sizeof(float) * Hd);
                }
            }
        }
        root = next;
        for (int j = 0; j < B; j++) feed[j] = rec.next_token[j];
        /* The next chunk's size. */
        if (g_run == 1) {
            G = 2; /* after fp32 steps: try one draft step, unless still waiting */
        } else if (g + 1 == g_run) {
            G = 2 * g_run > T2T_CHUNK_MAX ? T2T_CHUNK_MAX : 2 * g_run, backoff = 1;
        } else if (g == 0) {
            wait = backoff, backoff = backoff < 32 ? 2 * backoff : 32;
        } else {
            G = g + 1, backoff = 1;
        }
    }
    return RAM_OK;
}

ram_status ram_t2t_caption(struct ram_t2t_state *st, const float *image_embeds, const char *tags, size_t len,
                           const struct ram_t2t_hooks *hk, int32_t *ids, int *n_ids, char **caption,
                           struct ram_error *err)
{
    if (caption) *caption = NULL;
    if (n_ids) *n_ids = 0;
    if (!st || !image_embeds || (!tags && len)) return ram_fail(err, RAM_ERR_ARG, "tag2text: NULL argument");
    const struct ram_model *m = st->m;
    const struct ram_t2t *t = &m->t2t;
    const int V = t->dec.vocab, B = RAM_T2T_BEAMS;
    const size_t kvn = (size_t)RAM_T2T_TAG_LEN * t->dec.hidden;
    memset(&st->stats, 0, sizeof st->stats);
    st->stats.decoder = st->decoder;
    ram_status rc = tag_encoder(st, image_embeds, tags ? tags : "", len, hk, err);
    if (rc) return rc;
    for (int l = 0; l < t->dec.layers; l++) {
        struct ram_bert_layer L;
        dec_layer(m, l, 0, &L);
        ram_bert_cross_kv(&L, st->enc_h, RAM_T2T_TAG_LEN, st->dec_kv + 2 * l * kvn, st->dec_kv + (2 * l + 1) * kvn);
    }

    struct ram_beam_params bp = {B, RAM_T2T_MAX_LEN, RAM_T2T_MIN_LEN, ram_wordpiece_special(t->wp, RAM_WP_SEP), 1.0f};
    struct ram_beam_search *bs = st->bs;
    st->stats.first_divergence = -1;
    if (st->decoder == RAM_T2T_DECODE_VERIFIED) {
        rc = decode_verified(st, &bp, hk, err);
    } else {
        int32_t feed[RAM_T2T_BEAMS];
        int set = 0, finished = 0;
        rc = ram_beam_start(bs, &bp, V, st->prompt, st->n_prompt, err);
        if (!rc)
            rc = decode_steps(st, bs, 0, &set, feed, st->decoder == RAM_T2T_DECODE_INT8, 0, RAM_T2T_MAX_LEN, hk,
                              &st->stats.steps, &finished, err);
    }
    if (rc) return rc;
    int32_t out[RAM_T2T_MAX_LEN + 1];
    int n = ram_beam_result(bs, out, RAM_T2T_MAX_LEN + 1);
    if (ids) memcpy(ids, out, sizeof(int32_t) * (size_t)n);
    if (n_ids) *n_ids = n;
    if (caption) {
        char *dec = NULL;
        if ((rc = ram_wordpiece_decode(t->wp, out, n, 1, 1, &dec, err))) return rc;
        /* decoded[len('a picture of '):] counts characters, not bytes. */
        size_t skip = 0, k = strlen(RAM_T2T_PROMPT);
        for (size_t chars = 0; dec[skip] && chars < k; chars++) {
            skip++;
            while (((unsigned char)dec[skip] & 0xC0) == 0x80) skip++;
        }
        memmove(dec, dec + skip, strlen(dec + skip) + 1);
        *caption = dec;
    }
    return RAM_OK;
}
