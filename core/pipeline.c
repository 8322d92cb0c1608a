/*
** pipeline.c — the inference entry points of ram.h: struct ram_state (the
** scratch of one inference at a time, sized once), image encoding (Swin +
** image_proj), closed-set and open-set tagging, and the CLIP text path
** (tokenize, encode_text).
**
**     struct ram_state *st = 0;
**     if (ram_state_init(model, &st, &err)) return fail(err.msg);
**     ram_tag_image(st, jpeg, n, NULL, NULL, probs, &err);   // num_class probs
**     ram_openset_probs(st, embeds, label_embed, 3, 51, p3, &err);
**     ram_state_free(st);
**
** HOW IT WORKS. ram_state_init computes every buffer's size from the model
** and makes one allocation (the arena), carved into: the preprocessed image,
** Swin's scratch, the visual tokens, the image embeddings, the tagger's
** scratch (chunks of RAM_TAGGER_CHUNK classes), the CLIP text scratch (models
** with a text tower) and, when the model's label embeddings have one row per
** class (RAM), room for the image-independent queries and their layer-0
** projection, computed on the first closed-set call and reused after that.
** No inference call allocates, except what ram_image_preprocess needs for
** decoding. The abort callback is passed to Swin (polled between blocks) and
** to the tagger (between chunks and layers). Every entry point first checks
** that the mapped model file was not truncated or rewritten since the load
** (ram_model_check_file): an error instead of a SIGBUS in the weights.
** A Tag2Text model's state keeps the image buffers here and the rest in its
** Tag2Text scratch (core/tag2text.c): tagging goes through its tagging head,
** and ram_caption_image adds the tag encoder and the decoder.
*/
#include "ram.h"

#include "bpe.h"
#include "clip_text.h"
#include "model.h"
#include "ops.h"
#include "scratch.h"
#include "swin.h"
#include "tag2text.h"
#include "tagger.h"

#include <string.h>

/* The tagger's reweighting area holds at least this many descriptions per
** chunk row, so that open-set calls with more descriptions per tag than the
** model's own keep big chunks. */
#define PIPE_MIN_DES 16

struct ram_state {
    const struct ram_model *m;     /* borrowed: the model must outlive the state */
    float *arena;                  /* owned (ram_free): every float buffer below points into it */
    float *chw;                    /* in_chans x S x S preprocessed image */
    float *swin_scratch;           /* ram_swin_scratch_floats(m) */
    float *vision;                 /* n_image_tokens x vision_width: Swin output */
    float *embeds;                 /* n_image_tokens x embed_dim: ram_tag_image without a caller buffer */
    struct ram_tagger_scratch tag; /* buf in the arena */
    float *clip_scratch;           /* ram_clip_scratch_floats(&m->clip); NULL without a text tower */
    float *fixed_h0, *fixed_q0;    /* num_class x hidden each, or NULL (des_per_class > 1) */
    int fixed_ready;               /* fixed_* hold the model's queries */
    int (*abort_cb)(void *);
    void *abort_arg;
    /* Tag2Text models: their scratch (tagging head, tag encoder, decoder);
    ** owned (ram_t2t_state_free). The arena then holds chw and embeds only. */
    struct ram_t2t_state *t2t;
    /* The products' working memory (scratch.h): the rows a bf16 product
    ** rounds, grown by the first forward and reused; owned
    ** (ram_scratch_free). A Tag2Text state uses the t2t state's instead. */
    struct ram_scratch products;
};

/* ------------------------------------------------------------------ state */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Adds n floats (rounded) to *total; 0 on overflow. */
static int add_area(size_t *total, size_t n, size_t *off)
{
    size_t r = round16(n);
    if (r < n || *total + r < *total) return 0;
    *off = *total;
    *total += r;
    return 1;
}

/* A Tag2Text state: the preprocessed image and the image embeddings in the
** arena, everything else in the Tag2Text scratch. */
static ram_status t2t_state_init(const struct ram_model *m, struct ram_state **out, struct ram_error *err)
{
    size_t S = (size_t)(m->swin.image_size > 0 ? m->swin.image_size : 0), n_chw, n_emb, total = 0, o_chw, o_emb;
    if (!S || !ram_mul_ok(S * S, 3, &n_chw) ||
        !ram_mul_ok((size_t)m->n_image_tokens, (size_t)m->vision_width, &n_emb) || !add_area(&total, n_chw, &o_chw) ||
        !add_area(&total, n_emb, &o_emb) || total > SIZE_MAX / sizeof(float))
        return ram_fail(err, RAM_ERR_ARG, "ram_state_init: the model's configuration is invalid");
    struct ram_state *st = ram_calloc(1, sizeof *st);
    if (!st) return ram_fail(err, RAM_ERR_NOMEM, "ram_state_init: out of memory");
    st->m = m;
    ram_status rc = ram_t2t_state_init(m, &st->t2t, err);
    if (rc) {
        ram_state_free(st);
        return rc;
    }
    st->arena = ram_malloc(total * sizeof(float));
    if (!st->arena) {
        ram_state_free(st);
        return ram_fail(err, RAM_ERR_NOMEM, "ram_state_init: out of memory");
    }
    st->chw = st->arena + o_chw;
    st->embeds = st->arena + o_emb;
    *out = st;
    return RAM_OK;
}

ram_status ram_state_init(const struct ram_model *m, struct ram_state **out, struct ram_error *err)
{
    struct ram_state *st = 0;
    size_t total = 0, o_chw, o_swin, o_vis, o_emb, o_tag, o_clip = 0, o_h0 = 0, o_q0 = 0, n_chw, n_vis, n_emb, n_tag,
           n_clip = 0, n_fixed = 0;
    int fixed = 0;

    if (!out) return ram_fail(err, RAM_ERR_ARG, "ram_state_init: out is NULL");
    *out = 0;
    if (!m) return ram_fail(err, RAM_ERR_ARG, "ram_state_init: model is NULL");
    if (m->kind == RAM_KIND_TAG2TEXT) return t2t_state_init(m, out, err);

    const size_t S = (size_t)(m->swin.image_size > 0 ? m->swin.image_size : 0);
    size_t n_swin = ram_swin_scratch_floats(m);
    int max_des = m->des_per_class > PIPE_MIN_DES ? m->des_per_class : PIPE_MIN_DES;
    n_tag = ram_tagger_scratch_floats(m, RAM_TAGGER_CHUNK, max_des);
    if (!S || !n_swin || !n_tag || m->num_class < 1 || m->des_per_class < 1 || !m->label_embed ||
        !ram_mul_ok(S * S, (size_t)(m->swin.in_chans > 0 ? m->swin.in_chans : 0), &n_chw) || !n_chw ||
        !ram_mul_ok((size_t)m->n_image_tokens, (size_t)(m->vision_width > 0 ? m->vision_width : 0), &n_vis) || !n_vis ||
        !ram_mul_ok((size_t)m->n_image_tokens, (size_t)m->embed_dim, &n_emb))
        return ram_fail(err, RAM_ERR_ARG, "ram_state_init: the model's configuration is invalid");
    if (m->has_clip) {
        n_clip = ram_clip_scratch_floats(&m->clip);
        if (!n_clip) return ram_fail(err, RAM_ERR_ARG, "ram_state_init: invalid text encoder config");
    }
    if (m->des_per_class == 1) {
        fixed = 1;
        if (!ram_mul_ok((size_t)m->num_class, (size_t)m->tagger.hidden, &n_fixed))
            return ram_fail(err, RAM_ERR_TOO_BIG, "ram_state_init: too many classes");
    }
    if (!add_area(&total, n_chw, &o_chw) || !add_area(&total, n_swin, &o_swin) || !add_area(&total, n_vis, &o_vis) ||
        !add_area(&total, n_emb, &o_emb) || !add_area(&total, n_tag, &o_tag) ||
        (n_clip && !add_area(&total, n_clip, &o_clip)) ||
        (fixed && (!add_area(&total, n_fixed, &o_h0) || !add_area(&total, n_fixed, &o_q0))) ||
        total > SIZE_MAX / sizeof(float))
        return ram_fail(err, RAM_ERR_TOO_BIG, "ram_state_init: scratch size overflows");

    st = ram_calloc(1, sizeof *st);
    if (!st) goto nomem;
    st->m = m;
    st->arena = ram_malloc(total * sizeof(float));
    if (!st->arena) goto nomem;
    st->chw = st->arena + o_chw;
    st->swin_scratch = st->arena + o_swin;
    st->vision = st->arena + o_vis;
    st->embeds = st->arena + o_emb;
    st->tag.buf = st->arena + o_tag;
    st->tag.chunk = RAM_TAGGER_CHUNK;
    st->tag.max_des = max_des;
    st->tag.products = &st->products;
    if (n_clip) st->clip_scratch = st->arena + o_clip;
    if (fixed) {
        st->fixed_h0 = st->arena + o_h0;
        st->fixed_q0 = st->arena + o_q0;
    }
    *out = st;
    return RAM_OK;

nomem:
    ram_state_free(st);
    return ram_fail(err, RAM_ERR_NOMEM, "ram_state_init: out of memory (%zu MB of scratch)",
                    total * sizeof(float) >> 20);
}

void ram_state_free(struct ram_state *st)
{
    if (!st) return;
    ram_t2t_state_free(st->t2t);
    ram_free(st->arena);
    ram_scratch_free(&st->products);
    ram_free(st);
}

void ram_state_set_abort(struct ram_state *st, int (*cb)(void *), void *arg)
{
    if (!st) return;
    st->abort_cb = cb;
    st->abort_arg = arg;
}

/* ------------------------------------------------------------------ image */

ram_status ram_encode_image(struct ram_state *st, const float *chw, float *image_embeds, struct ram_error *err)
{
    if (!st || !chw || !image_embeds) return ram_fail(err, RAM_ERR_ARG, "ram_encode_image: NULL argument");
    const struct ram_model *m = st->m;
    ram_status rc = ram_model_check_file(m, err);
    if (rc) return rc;
    struct ram_swin_hooks hk = {st->abort_cb, st->abort_arg, NULL, NULL,
                                st->t2t ? ram_t2t_products(st->t2t) : &st->products};
    if (st->t2t) /* Tag2Text has no image_proj: the Swin tokens are the embeddings */
        return ram_swin_forward(m, chw, ram_t2t_swin_scratch(st->t2t), image_embeds, &hk, err);
    rc = ram_swin_forward(m, chw, st->swin_scratch, st->vision, &hk, err);
    if (rc) return rc;
    if (st->abort_cb && st->abort_cb(st->abort_arg))
        return ram_fail(err, RAM_ERR_INTERRUPTED, "ram_encode_image: interrupted");
    ram_linear(st->vision, m->n_image_tokens, m->vision_width, m->image_proj_w, m->image_proj_b, m->embed_dim,
               image_embeds);
    return RAM_OK;
}

/* ------------------------------------------------------------------ tagging */

/* Runs the tagger into probs (logits first, then the sigmoid in place). */
static ram_status tag(struct ram_state *st, const struct ram_tagger_args *a, float *probs, struct ram_error *err)
{
    struct ram_tagger_hooks hk = {st->abort_cb, st->abort_arg, NULL, NULL};
    ram_status rc = ram_tagger_forward(st->m, a, &st->tag, probs, &hk, err);
    if (rc) return rc;
    for (int c = 0; c < a->n_tags; c++) probs[c] = ram_sigmoid(probs[c]);
    return RAM_OK;
}

ram_status ram_tag_probs(struct ram_state *st, const float *image_embeds, float *probs, struct ram_error *err)
{
    if (!st || !image_embeds || !probs) return ram_fail(err, RAM_ERR_ARG, "ram_tag_probs: NULL argument");
    const struct ram_model *m = st->m;
    ram_status rc = ram_model_check_file(m, err);
    if (rc) return rc;
    if (st->t2t) {
        struct ram_t2t_hooks th = {st->abort_cb, st->abort_arg, NULL, NULL, NULL, NULL};
        if ((rc = ram_t2t_tag_logits(st->t2t, image_embeds, probs, &th, err))) return rc;
        for (int c = 0; c < m->num_class; c++) probs[c] = ram_sigmoid(probs[c]);
        return RAM_OK;
    }
    struct ram_tagger_args a = {image_embeds, m->label_embed, m->num_class, m->des_per_class, NULL, NULL};
    if (st->fixed_h0) {
        if (!st->fixed_ready) {
            rc = ram_tagger_precompute(m, m->label_embed, m->num_class, st->fixed_h0, st->fixed_q0, err);
            if (rc) return rc;
            st->fixed_ready = 1;
        }
        a.fixed_h0 = st->fixed_h0;
        a.fixed_q0 = st->fixed_q0;
    }
    return tag(st, &a, probs, err);
}

ram_status ram_tag_image(struct ram_state *st, const void *data, size_t n, const struct ram_image_params *params,
                         float *image_embeds, float *probs, struct ram_error *err)
{
    if (!st || !probs) return ram_fail(err, RAM_ERR_ARG, "ram_tag_image: NULL argument");
    const struct ram_model *m = st->m;
    if (m->swin.in_chans != 3)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "ram_tag_image: the model takes %d channels, not RGB",
                        m->swin.in_chans);
    float *emb = image_embeds ? image_embeds : st->embeds;
    ram_status rc = ram_image_preprocess(data, n, m->swin.image_size, params, st->chw, err);
    if (!rc) rc = ram_encode_image(st, st->chw, emb, err);
    if (!rc) rc = ram_tag_probs(st, emb, probs, err);
    return rc;
}

ram_status ram_openset_probs(struct ram_state *st, const float *image_embeds, const float *label_embed, int n_tags,
                             int des_per_tag, float *probs, struct ram_error *err)
{
    if (!st || !image_embeds || !label_embed || !probs)
        return ram_fail(err, RAM_ERR_ARG, "ram_openset_probs: NULL argument");
    if (n_tags < 1 || des_per_tag < 1)
        return ram_fail(err, RAM_ERR_ARG, "ram_openset_probs: %d tags x %d descriptions per tag", n_tags, des_per_tag);
    if (st->t2t)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "ram_openset_probs: a Tag2Text model has no open-set scoring");
    ram_status rc = ram_model_check_file(st->m, err);
    if (rc) return rc;
    struct ram_tagger_args a = {image_embeds, label_embed, n_tags, des_per_tag, NULL, NULL};
    return tag(st, &a, probs, err);
}

/* ------------------------------------------------------------------ captions */

ram_status ram_caption_embeds(struct ram_state *st, const float *image_embeds, const float *probs, const char *tags,
                              size_t tags_len, char **caption, char **tags_used, struct ram_error *err)
{
    if (caption) *caption = NULL;
    if (tags_used) *tags_used = NULL;
    if (!st || !image_embeds || !caption || (!tags && tags_len))
        return ram_fail(err, RAM_ERR_ARG, "ram_caption: NULL argument");
    if (!st->t2t) return ram_fail(err, RAM_ERR_UNSUPPORTED, "ram_caption: the model is not a caption model (Tag2Text)");
    const struct ram_model *m = st->m;
    ram_status rc = ram_model_check_file(m, err);
    if (rc) return rc;
    char *used = NULL;
    /* inference_tag2text takes '', 'none' and 'None' as no user tags. */
    if (tags && ((tags_len == 0) || (tags_len == 4 && (!memcmp(tags, "none", 4) || !memcmp(tags, "None", 4)))))
        tags = NULL;
    if (tags) {
        /* The official script's user tags: ',' -> ' | '; tagging is not needed. */
        rc = ram_t2t_user_tags(tags, tags_len, &used, err);
    } else if (probs) {
        rc = ram_t2t_tag_string(m, probs, &used, err);
    } else {
        float *p = ram_malloc(sizeof(float) * (size_t)m->num_class);
        if (!p) return ram_fail(err, RAM_ERR_NOMEM, "ram_caption: out of memory");
        rc = ram_tag_probs(st, image_embeds, p, err);
        if (!rc) rc = ram_t2t_tag_string(m, p, &used, err);
        ram_free(p);
    }
    if (rc) return rc;
    struct ram_t2t_hooks hk = {st->abort_cb, st->abort_arg, NULL, NULL, NULL, NULL};
    rc = ram_t2t_caption(st->t2t, image_embeds, used, strlen(used), &hk, NULL, NULL, caption, err);
    if (!rc && tags_used)
        *tags_used = used;
    else
        ram_free(used);
    return rc;
}

ram_status ram_caption_image(struct ram_state *st, const void *data, size_t n, const struct ram_image_params *params,
                             const char *tags, size_t tags_len, char **caption, char **tags_used, struct ram_error *err)
{
    if (caption) *caption = NULL;
    if (tags_used) *tags_used = NULL;
    if (!st || !caption || (!tags && tags_len)) return ram_fail(err, RAM_ERR_ARG, "ram_caption_image: NULL argument");
    if (!st->t2t)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "ram_caption_image: the model is not a caption model (Tag2Text)");
    ram_status rc = ram_image_preprocess(data, n, st->m->swin.image_size, params, st->chw, err);
    if (!rc) rc = ram_encode_image(st, st->chw, st->embeds, err);
    if (!rc) rc = ram_caption_embeds(st, st->embeds, NULL, tags, tags_len, caption, tags_used, err);
    return rc;
}

void ram_string_free(char *s) { ram_free(s); }

/* ------------------------------------------------------------------ text */

ram_status ram_tokenize(const struct ram_model *m, const char *text, size_t len, int32_t ids[RAM_CLIP_CONTEXT],
                        int *n_ids, struct ram_error *err)
{
    if (!m || !ids || !n_ids || (!text && len)) return ram_fail(err, RAM_ERR_ARG, "ram_tokenize: NULL argument");
    if (!m->has_clip || !m->bpe)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "ram_tokenize: the model has no text encoder");
    int ctx = m->clip.context < RAM_CLIP_CONTEXT ? m->clip.context : RAM_CLIP_CONTEXT;
    if (ctx < 2) return ram_fail(err, RAM_ERR_ARG, "ram_tokenize: text context %d is too short", ctx);
    return ram_bpe_tokenize(m->bpe, text, len, ids, ctx, n_ids, err);
}

ram_status ram_encode_text(struct ram_state *st, const int32_t *ids, int n_ids, float *embedding, struct ram_error *err)
{
    if (!st || !ids || !embedding) return ram_fail(err, RAM_ERR_ARG, "ram_encode_text: NULL argument");
    if (!st->m->has_clip || !st->clip_scratch)
        return ram_fail(err, RAM_ERR_UNSUPPORTED, "ram_encode_text: the model has no text encoder");
    ram_status rc = ram_model_check_file(st->m, err);
    if (rc) return rc;
    return ram_clip_encode(&st->m->clip, &st->m->clip_w, ids, n_ids, st->clip_scratch, embedding, err);
}
