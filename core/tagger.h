/*
** tagger.h — the tagging side of RAM++ and RAM: the per-image reweighting of
** each class's description embeddings (RAM++), wordvec_proj + ReLU, the
** tagging decoder (BERT layers with cross-attention over the image tokens)
** and the shared fc classifier, from image_embeds to one logit per class.
** Also the general BERT layer that the decoder is made of, so that the
** Tag2Text caption decoder can reuse it later.
**
**     struct ram_tagger_scratch s = {buf, RAM_TAGGER_CHUNK, m->des_per_class};
**     // buf: ram_tagger_scratch_floats(m, s.chunk, s.max_des) floats
**     struct ram_tagger_args a = {image_embeds, m->label_embed, m->num_class,
**                                 m->des_per_class, NULL, NULL};
**     if (ram_tagger_forward(m, &a, &s, logits, NULL, &err)) return fail(err.msg);
**     for (c...) probs[c] = ram_sigmoid(logits[c]);
**
** Thread safety: the model is only read; concurrent forwards need their own
** scratch buffers. Nothing here allocates.
*/
#ifndef RAM_TAGGER_H
#define RAM_TAGGER_H

#include "model.h"

#include <stddef.h>

/* Default number of class queries processed together. Queries are
** independent per class (the decoder has no self-attention), so chunking is
** exact; it bounds the scratch for 4585 classes. */
#define RAM_TAGGER_CHUNK 256

/* ------------------------------------------------------------------ BERT layer */

/* The weights of one attention block (bert.py BertAttention): Q/K/V
** projections, output dense, then LayerNorm(dense + residual). Borrowed. */
struct ram_bert_attn_w {
    const float *q_w, *q_b;   /* self.query (H, H) / (H) */
    const float *k_w, *k_b;   /* self.key (H, kv_width) / (H) */
    const float *v_w, *v_b;   /* self.value (H, kv_width) / (H) */
    const float *o_w, *o_b;   /* output.dense (H, H) / (H) */
    const float *ln_w, *ln_b; /* output.LayerNorm (H) */
};

/* One post-LN BERT layer (bert.py BertLayer): optional self-attention,
** optional cross-attention over encoder states, then the FFN
** (intermediate.dense, exact GELU, output.dense, LayerNorm(+ residual)).
** Self-attention (with an optional causal mask) is PLANNED for the Tag2Text
** caption decoder and NOT IMPLEMENTED yet: has_self must be 0
** (ram_bert_layer_forward returns RAM_ERR_UNSUPPORTED otherwise). */
struct ram_bert_layer {
    int hidden, heads, intermediate; /* head_dim = hidden / heads */
    float eps;                       /* LayerNorm eps (1e-12 in BERT) */
    int has_self, causal;            /* planned, see above */
    struct ram_bert_attn_w self;
    int has_cross;                   /* RAM's tagging decoder: 1 */
    int kv_width;                    /* width of the encoder states (512) */
    struct ram_bert_attn_w cross;
    const float *i_w, *i_b;          /* intermediate.dense (I, H) / (I) */
    const float *o_w, *o_b;          /* output.dense (H, I) / (H) */
    const float *ln_w, *ln_b;        /* output.LayerNorm (H) */
    /* int8 forms of cross.q_w, cross.o_w, i_w, o_w (quantized model files),
    ** used instead of the fp32 ones when not NULL; borrowed. */
    const struct ram_q8_weight *q_q, *ao_q, *i_q, *o_q;
};

/* The layer view of the tagging decoder's layer l of m (cross-attention +
** FFN). Pointers borrow from m. */
void ram_bert_layer_from_tagger(const struct ram_model *m, int l, struct ram_bert_layer *out);

/* Cross-attention keys and values of n_kv encoder states enc (n_kv x
** kv_width): K and V receive n_kv x hidden floats each (caller's buffers).
** They depend only on the encoder states, so they are computed once per
** image and layer and shared by every chunk of queries. */
void ram_bert_cross_kv(const struct ram_bert_layer *L, const float *enc, int n_kv, float *K, float *V);

/* Floats of scratch one ram_bert_layer_forward over `rows` queries attending
** to n_kv states needs (0 on overflow). */
size_t ram_bert_layer_scratch_floats(const struct ram_bert_layer *L, int rows, int n_kv);

/* Runs the layer in place on H (rows x hidden), with the cross-attention
** keys/values from ram_bert_cross_kv. Q0, if not NULL, is the query
** projection of H already computed (rows x hidden; lets image-independent
** queries skip it). scratch: ram_bert_layer_scratch_floats(L, rows, n_kv)
** floats, caller's. Never allocates. Attention scores are the product
** divided by sqrt(head_dim) afterwards, softmax over the n_kv states (the
** all-ones image mask adds nothing). */
ram_status ram_bert_layer_forward(const struct ram_bert_layer *L, float *H, int rows, const float *K,
                                  const float *V, int n_kv, const float *Q0, float *scratch,
                                  struct ram_error *err);

/* ------------------------------------------------------------------ tagger */

/* Optional callbacks of a tagger forward. Every field may be NULL. */
struct ram_tagger_hooks {
    /* Polled before each chunk and layer; non-zero makes the forward return
    ** RAM_ERR_INTERRUPTED. */
    int (*abort_cb)(void *arg);
    void *abort_arg;
    /* Called with each intermediate of each chunk of classes: rows x cols,
    ** row-major, the rows of classes row0 .. row0+rows-1 (unlike Swin's hook
    ** it carries row0, because the tagger works chunk by chunk). Names:
    ** "reweight_logits", "reweight_weights" (rows x des, RAM++ with des > 1
    ** only), "label_embed_reweighted" (rows x embed_dim, same condition),
    ** "tagging_queries", "tagging_layer{l}_out", "tagging_embed" (rows x
    ** hidden), "logits" (rows x 1). x is borrowed for the call. */
    void (*trace)(void *arg, const char *name, int row0, const float *x, int rows, int cols);
    void *trace_arg;
};

/* Scratch of a forward: buf holds ram_tagger_scratch_floats(m, chunk,
** max_des) floats (borrowed, caller's). chunk: classes per chunk (> 0);
** max_des: the descriptions per class the reweighting area holds per chunk
** row. A forward with des > max_des shrinks its chunk so that chunk*des
** rows still fit (RAM_ERR_TOO_BIG when des > chunk*max_des). */
struct ram_tagger_scratch {
    float *buf;
    int chunk, max_des;
};

size_t ram_tagger_scratch_floats(const struct ram_model *m, int chunk, int max_des);

struct ram_tagger_args {
    const float *image_embeds; /* n_image_tokens x embed_dim, row 0 the CLS (borrowed) */
    const float *label_embed;  /* n_tags * des rows of embed_dim, tag-major (borrowed) */
    int n_tags, des;           /* des > 1 needs RAM++ (reweighting); 1: rows used as they are */
    /* Optional precomputed, image-independent queries (des == 1 only; both or
    ** neither): n_tags x hidden each, from ram_tagger_precompute. Borrowed. */
    const float *fixed_h0, *fixed_q0;
};

/* logits receives n_tags floats (caller's): fc(decoder(queries)), before
** the sigmoid. Checks the arguments and m's tagger config (RAM_ERR_ARG),
** des > 1 on a RAM model (RAM_ERR_UNSUPPORTED: RAM has no reweight_scale).
** hooks may be NULL. */
ram_status ram_tagger_forward(const struct ram_model *m, const struct ram_tagger_args *a,
                              const struct ram_tagger_scratch *s, float *logits,
                              const struct ram_tagger_hooks *hooks, struct ram_error *err);

/* The image-independent part for one-row-per-class label embeddings (RAM, or
** any des == 1 set): h0 = ReLU(wordvec_proj(label_embed)) (identity when m
** has no wordvec_proj) and q0 = h0 Wq^T + bq of decoder layer 0; n_tags x
** hidden floats each (caller's buffers). Errors as ram_tagger_forward. */
ram_status ram_tagger_precompute(const struct ram_model *m, const float *label_embed, int n_tags,
                                 float *h0, float *q0, struct ram_error *err);

#endif /* RAM_TAGGER_H */
