/*
** model_write.c — writing a model in our file format (models/README.md):
** every tensor of the config's weight spec under its canonical name, the
** vocabulary, the BPE text, the config as metadata, and the data checksum
** (ram-convert and the tests only; never linked into ram.so). --random
** weights, --quant int8 and --dtype bf16 matrices are generated while the
** file is streamed, never held whole in memory.
*/
#include "ram.h"

#include "gemm_q8.h"
#include "internal.h"
#include "model.h"
#include "model_file.h"
#include "safetensors.h"
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --random: a counter-based generator, so any chunk of any tensor can be
** produced independently: value i of tensor t is a hash of (seed, t, i). */
struct rand_ctx {
    uint64_t key;
    int init;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static ram_status rand_fill(void *ctx, const struct ram_st_out *t, size_t first, size_t count, float *dst,
                            struct ram_error *err)
{
    const struct rand_ctx *c = ctx;
    switch (c->init) {
    case RAM_WINIT_ZERO:
        for (size_t i = 0; i < count; i++) dst[i] = 0.0f;
        return RAM_OK;
    case RAM_WINIT_ONE:
        for (size_t i = 0; i < count; i++) dst[i] = 1.0f;
        return RAM_OK;
    case RAM_WINIT_LOGIT_SCALE:
        for (size_t i = 0; i < count; i++) dst[i] = logf(1.0f / 0.07f);
        return RAM_OK;
    default: break;
    }
    /* Sum of four 16-bit uniforms: mean 131070, sd 65536 / sqrt(3). */
    const float scale = 0.02f / 37837.23f;
    for (size_t i = 0; i < count; i++) {
        uint64_t r = mix64(c->key + (first + i) * 0x9e3779b97f4a7c15ULL);
        int64_t s =
            (int64_t)(r & 0xffff) + (int64_t)((r >> 16) & 0xffff) + (int64_t)((r >> 32) & 0xffff) + (int64_t)(r >> 48);
        dst[i] = (float)(s - 131070) * scale;
    }
    if (c->init == RAM_WINIT_UNIT_ROWS) {
        size_t row = t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
        for (size_t r0 = 0; r0 + row <= count; r0 += row) {
            double ss = 0;
            for (size_t k = 0; k < row; k++) ss += (double)dst[r0 + k] * dst[r0 + k];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (size_t k = 0; k < row; k++) dst[r0 + k] *= inv;
        }
    }
    return RAM_OK;
}

/* --quant int8: a Swin matrix written as its packed I8 form and its scales,
** both made from the fp32 weights (the model's, or --random's generator);
** with lo (version 3, int8m / int8x2), its rounding residual quantized the same way. */
#define Q8_NAME (RAM_WSPEC_NAME + 16) /* "<name>.qlo.qscale" */

struct q8_ctx {
    const float *f32; /* the matrix, or NULL: generate with rnd */
    struct rand_ctx *rnd;
    struct ram_st_out src; /* shape of the fp32 matrix, for rand_fill */
    int n, k;
    int lo; /* 1: this output is the residual's (codes or scales) */
};

/* Quantizes the matrix into packed (may be NULL) and scale, or with c->lo
** its residual after those codes into them instead. */
static ram_status q8_make(const struct q8_ctx *c, int8_t *packed, float *scale, struct ram_error *err)
{
    size_t pb = ram_q8_packed_bytes(c->n, c->k), nk = (size_t)c->n * c->k;
    float *tmp = c->f32 ? NULL : ram_malloc(nk * sizeof(float));
    int8_t *pk = packed && !c->lo ? packed : ram_malloc(pb);
    float *hs = c->lo ? ram_malloc(sizeof(float) * (size_t)c->n) : scale;
    int8_t *lp = c->lo && !packed ? ram_malloc(pb) : packed;
    ram_status rc = RAM_OK;
    if ((!c->f32 && !tmp) || !pk || !hs || (c->lo && !lp)) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory quantizing a %d x %d matrix", c->n, c->k);
    } else if (!c->f32) {
        rc = rand_fill(c->rnd, &c->src, 0, nk, tmp, err);
    }
    const float *W = c->f32 ? c->f32 : tmp;
    if (!rc) rc = ram_q8_quantize_pack(W, c->n, c->k, pk, hs, err);
    if (!rc && c->lo) rc = ram_q8_quantize_pack_lo(W, c->n, c->k, pk, hs, lp, scale, err);
    ram_free(tmp);
    if (pk != packed) ram_free(pk);
    if (hs != scale) ram_free(hs);
    if (lp != packed) ram_free(lp);
    return rc;
}

static ram_status q8_fill_packed(void *ctx, const struct ram_st_out *t, void *dst, size_t nbytes, struct ram_error *err)
{
    const struct q8_ctx *c = ctx;
    float *scale = ram_malloc(sizeof(float) * (size_t)c->n);
    if (!scale) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    ram_status rc = q8_make(c, dst, scale, err);
    ram_free(scale);
    return rc;
}

static ram_status q8_fill_scale(void *ctx, const struct ram_st_out *t, void *dst, size_t nbytes, struct ram_error *err)
{
    return q8_make(ctx, NULL, dst, err);
}

/* The two outputs of spec w (whose fp32 data or generator is already in
** *t) under --quant int8 (qname receives "<name>.qscale"), or with lo the
** two of its residual after them (qnames "<name>.qlo", "<name>.qlo.qscale"):
** c is then the codes' context, copied into c[1]. */
static ram_status q8_outs(const struct ram_wspec *w, struct ram_st_out *t, struct q8_ctx *c, char (*qname)[Q8_NAME],
                          int lo, struct ram_error *err)
{
    c->n = (int)w->shape[0], c->k = (int)w->shape[1];
    if (!ram_q8_packed_bytes(c->n, c->k))
        return ram_fail(err, RAM_ERR_TOO_BIG, "%s: %d x %d cannot be stored as int8", w->name, c->n, c->k);
    if (lo) {
        c[1] = c[0];
        c[1].lo = 1;
        c++;
        snprintf(qname[1], Q8_NAME, "%s.qlo", w->name);
        snprintf(qname[2], Q8_NAME, "%s.qlo.qscale", w->name);
    } else {
        c->f32 = t->f32;
        c->rnd = t->fill ? t->ctx : NULL;
        c->src = *t;
        snprintf(qname[0], Q8_NAME, "%s.qscale", w->name);
    }
    *t = (struct ram_st_out){.name = lo ? qname[1] : w->name,
                             .dtype = RAM_DTYPE_I8,
                             .ndim = 4,
                             .shape = {(c->n + 15) / 16, (c->k + 3) / 4, 16, 4},
                             .fill_raw = q8_fill_packed,
                             .ctx = c};
    t[1] = (struct ram_st_out){.name = lo ? qname[2] : qname[0],
                               .dtype = RAM_DTYPE_F32,
                               .ndim = 1,
                               .shape = {c->n},
                               .fill_raw = q8_fill_scale,
                               .ctx = c};
    return RAM_OK;
}

/* --dtype bf16: a Swin matrix written in the packed bf16 layout of
** gemm_bf16.h, rounded from the fp32 weights (or --random's generator). */
static ram_status bf16_fill_packed(void *ctx, const struct ram_st_out *t, void *dst, size_t nbytes,
                                   struct ram_error *err)
{
    const struct q8_ctx *c = ctx;
    const size_t nk = (size_t)c->n * c->k;
    float *tmp = c->f32 ? NULL : ram_malloc(nk * sizeof(float));
    if (!c->f32 && !tmp) return ram_fail(err, RAM_ERR_NOMEM, "out of memory for a %d x %d matrix", c->n, c->k);
    ram_status rc = c->f32 ? RAM_OK : rand_fill(c->rnd, &c->src, 0, nk, tmp, err);
    if (!rc) ram_bf16_pack(c->f32 ? c->f32 : tmp, c->n, c->k, dst);
    ram_free(tmp);
    return rc;
}

static ram_status bf16_out(const struct ram_wspec *w, struct ram_st_out *t, struct q8_ctx *c, struct ram_error *err)
{
    c->n = (int)w->shape[0], c->k = (int)w->shape[1];
    if (!ram_bf16_packed_bytes(c->n, c->k))
        return ram_fail(err, RAM_ERR_TOO_BIG, "%s: %d x %d cannot be stored as bf16", w->name, c->n, c->k);
    c->f32 = t->f32;
    c->rnd = t->fill ? t->ctx : NULL;
    c->src = *t;
    *t = (struct ram_st_out){.name = w->name,
                             .dtype = RAM_DTYPE_BF16,
                             .ndim = 4,
                             .shape = {(c->n + 15) / 16, (c->k + 1) / 2, 16, 2},
                             .fill_raw = bf16_fill_packed,
                             .ctx = c};
    return RAM_OK;
}

static void join_ints(char *buf, size_t cap, const int *v, int n)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, i ? ",%d" : "%d", v[i]);
}

ram_status ram_model_write(struct ram_model *m, const char *path, const struct ram_write_opts *o, char *digest_out,
                           struct ram_error *err)
{
    return ram_model_write_q(m, path, o, 0, digest_out, err);
}

ram_status ram_model_write_q(struct ram_model *m, const char *path, const struct ram_write_opts *o, int quant,
                             char *digest_out, struct ram_error *err)
{
    struct ram_write_opts opt;
    struct ram_wspec *specs = NULL;
    struct ram_st_out *outs = NULL;
    struct rand_ctx *rc_ctx = NULL;
    struct q8_ctx *q8 = NULL;
    char(*qnames)[Q8_NAME] = NULL;
    int n = 0, k = 0;
    ram_status rc;

    memset(&opt, 0, sizeof opt);
    if (o) opt = *o;
    if (opt.dtype != RAM_DTYPE_F32 && opt.dtype != RAM_DTYPE_F16 && opt.dtype != RAM_DTYPE_BF16)
        return ram_fail(err, RAM_ERR_ARG, "model file dtype must be f32, f16 or bf16");
    if (opt.dtype == RAM_DTYPE_BF16 && quant)
        return ram_fail(err, RAM_ERR_ARG, "a model file is either bf16 or int8, not both");
    if (!m->tag_text_en || !m->tag_text_zh || !m->thresholds)
        return ram_fail(err, RAM_ERR_ARG, "the model has no vocabulary");
    if (m->has_clip && !opt.bpe_text) return ram_fail(err, RAM_ERR_ARG, "a text tower needs its BPE vocabulary");
    rc = ram_model_specs(m, &specs, &n, err);
    if (rc) return rc;
    outs = ram_calloc(4 * (size_t)n + 6, sizeof *outs);
    rc_ctx = ram_calloc((size_t)n + 1, sizeof *rc_ctx);
    q8 = ram_calloc(2 * (size_t)n + 1, sizeof *q8);
    qnames = ram_calloc(3 * (size_t)n + 1, sizeof *qnames);
    if (!outs || !rc_ctx || !q8 || !qnames) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        const struct ram_wspec *w = &specs[i];
        struct ram_st_out *t = &outs[k++];
        t->name = w->name;
        t->ndim = w->ndim;
        memcpy(t->shape, w->shape, sizeof t->shape);
        t->dtype = opt.dtype == RAM_DTYPE_F16 && w->big ? RAM_DTYPE_F16 : RAM_DTYPE_F32;
        if (opt.random) {
            rc_ctx[i].key = mix64(opt.seed ^ mix64((uint64_t)i + 1));
            rc_ctx[i].init = w->init;
            t->fill = rand_fill;
            t->ctx = &rc_ctx[i];
        } else if (w->scalar) {
            t->f32 = w->scalar;
        } else if (w->dst && *w->dst) {
            t->f32 = *w->dst;
        } else {
            rc = ram_fail(err, RAM_ERR_ARG, "tensor %s is not bound", w->name);
            goto cleanup;
        }
        /* int8 files: the matrices their path runs in int8 (int8m / int8x2: with the residual, version 3) */
        const int qp = quant ? ram_layer_precision(m, w->name, quant == 2 ? RAM_PREC_INT8ACC : RAM_PREC_INT8) : 0;
        if (w->q8 && (qp == RAM_PREC_INT8 || qp == RAM_PREC_INT8M || qp == RAM_PREC_INT8X2)) {
            if ((rc = q8_outs(w, t, &q8[2 * i], &qnames[3 * i], 0, err))) goto cleanup;
            k++;
            if (qp != RAM_PREC_INT8) {
                if ((rc = q8_outs(w, &outs[k], &q8[2 * i], &qnames[3 * i], 1, err))) goto cleanup;
                k += 2;
            }
        }
        /* bf16 files store packed only what the path runs as plain bf16; bf16x2 / bf16x3 matrices stay F32
        ** (their two packed forms take the same bytes) and are packed at load. */
        if (opt.dtype == RAM_DTYPE_BF16 && w->q8 && ram_layer_precision(m, w->name, ram_bf16_path()) == RAM_PREC_BF16 &&
            (rc = bf16_out(w, t, &q8[2 * i], err)))
            goto cleanup;
    }
    outs[k++] = (struct ram_st_out){.name = "vocab.tags_en",
                                    .dtype = RAM_DTYPE_U8,
                                    .ndim = 1,
                                    .shape = {(int64_t)strlen(m->tag_text_en)},
                                    .bytes = m->tag_text_en};
    outs[k++] = (struct ram_st_out){.name = "vocab.tags_zh",
                                    .dtype = RAM_DTYPE_U8,
                                    .ndim = 1,
                                    .shape = {(int64_t)strlen(m->tag_text_zh)},
                                    .bytes = m->tag_text_zh};
    outs[k++] = (struct ram_st_out){
        .name = "vocab.thresholds", .dtype = RAM_DTYPE_F32, .ndim = 1, .shape = {m->num_class}, .bytes = m->thresholds};
    if (m->kind == RAM_KIND_TAG2TEXT) {
        /* Tag2Text: its BERT vocabulary (vocab.txt) and delete_tag_index as class flags. */
        if (!m->t2t.vocab_text || !m->t2t.deleted) {
            rc = ram_fail(err, RAM_ERR_ARG, "a Tag2Text model needs its BERT vocabulary");
            goto cleanup;
        }
        outs[k++] = (struct ram_st_out){.name = "bert.vocab",
                                        .dtype = RAM_DTYPE_U8,
                                        .ndim = 1,
                                        .shape = {(int64_t)m->t2t.vocab_len},
                                        .bytes = m->t2t.vocab_text};
        outs[k++] = (struct ram_st_out){.name = "tag2text.deleted",
                                        .dtype = RAM_DTYPE_U8,
                                        .ndim = 1,
                                        .shape = {m->num_class},
                                        .bytes = m->t2t.deleted};
    }
    if (m->has_clip)
        outs[k++] = (struct ram_st_out){.name = "clip.bpe_vocab",
                                        .dtype = RAM_DTYPE_U8,
                                        .ndim = 1,
                                        .shape = {(int64_t)opt.bpe_len},
                                        .bytes = opt.bpe_text};

    /* Metadata: every config number, as decimal strings. */
    char vals[48][40];
    const char *keys[48], *mv[48];
    int nm = 0;
#define META_S(k, v) (keys[nm] = (k), snprintf(vals[nm], sizeof vals[nm], "%s", (v)), nm++)
#define META_I(k, v) (keys[nm] = (k), snprintf(vals[nm], sizeof vals[nm], "%d", (v)), nm++)
    META_S("format", RAM_FORMAT_NAME);
    META_S("format_version", quant == 2 ? RAM_FORMAT_VERSION_Q8ACC
                             : quant    ? RAM_FORMAT_VERSION_Q8
                                        : RAM_FORMAT_VERSION);
    if (quant) META_S("quant", "int8");
    META_S("kind", m->kind == RAM_KIND_RAM_PLUS ? "ram_plus" : m->kind == RAM_KIND_TAG2TEXT ? "tag2text" : "ram");
    META_S("dtype", opt.dtype == RAM_DTYPE_F16 ? "f16" : opt.dtype == RAM_DTYPE_BF16 ? "bf16" : "f32");
    META_I("image_size", m->swin.image_size);
    META_I("patch_size", m->swin.patch_size);
    META_I("in_chans", m->swin.in_chans);
    META_I("embed_dim", m->swin.embed_dim);
    keys[nm] = "depths";
    join_ints(vals[nm++], sizeof vals[0], m->swin.depths, m->swin.n_stages);
    keys[nm] = "heads";
    join_ints(vals[nm++], sizeof vals[0], m->swin.heads, m->swin.n_stages);
    META_I("window", m->swin.window);
    META_I("mlp_ratio", m->swin.mlp_ratio);
    META_I("num_class", m->num_class);
    META_I("des_per_class", m->des_per_class);
    META_I("tagger_hidden", m->tagger.hidden);
    META_I("tagger_layers", m->tagger.n_layers);
    META_I("tagger_heads", m->tagger.n_heads);
    META_I("tagger_intermediate", m->tagger.intermediate);
    META_I("tagger_encoder_width", m->tagger.encoder_width);
    if (m->has_clip) {
        META_I("clip_vocab", m->clip.vocab);
        META_I("clip_context", m->clip.context);
        META_I("clip_width", m->clip.width);
        META_I("clip_heads", m->clip.heads);
        META_I("clip_layers", m->clip.layers);
        META_I("clip_embed_dim", m->clip.embed_dim);
    }
    if (m->kind == RAM_KIND_TAG2TEXT) {
        const struct ram_bert_config *b[2] = {&m->t2t.enc, &m->t2t.dec};
        static const char *const names[2][7] = {{"t2t_enc_vocab", "t2t_enc_max_pos", "t2t_enc_hidden", "t2t_enc_layers",
                                                 "t2t_enc_heads", "t2t_enc_intermediate", "t2t_enc_encoder_width"},
                                                {"t2t_dec_vocab", "t2t_dec_max_pos", "t2t_dec_hidden", "t2t_dec_layers",
                                                 "t2t_dec_heads", "t2t_dec_intermediate", "t2t_dec_encoder_width"}};
        for (int i = 0; i < 2; i++) {
            const int v[7] = {b[i]->vocab, b[i]->max_pos,      b[i]->hidden,       b[i]->layers,
                              b[i]->heads, b[i]->intermediate, b[i]->encoder_width};
            for (int k2 = 0; k2 < 7; k2++) META_I(names[i][k2], v[k2]);
        }
    }
#undef META_S
#undef META_I
    for (int i = 0; i < nm; i++) mv[i] = vals[i];
    rc = ram_st_write(path, outs, k, keys, mv, nm, "checksum", digest_out, err);
cleanup:
    ram_free(outs);
    ram_free(rc_ctx);
    ram_free(q8);
    ram_free(qnames);
    ram_free(specs);
    return rc;
}
