/*
** bert.h — one post-LN BERT layer of recognize-anything's bert.py, general
** enough for every stack the models use: RAM's tagging decoder
** (cross-attention + FFN), Tag2Text's tag encoder (bidirectional
** self-attention with a padding mask, cross-attention to the image, FFN) and
** its caption decoder (causal self-attention with a key/value cache,
** cross-attention to the tag encoder's states, FFN), with any head count.
**
**     struct ram_bert_layer L = {...};            // widths, weights (borrowed)
**     ram_bert_cross_kv(&L, enc, n_enc, K, V);    // once per encoder output
**     struct ram_bert_cache c = {k_rows, v_rows}; // room for every position
**     struct ram_bert_self s = {&c, n_past, NULL};
**     ram_bert_layer_forward_ex(&L, H, 1, rows, &s, K, V, n_enc, NULL, scratch, &err);
**
** Thread safety: the weights are only read; concurrent calls need their own
** H, caches and scratch. Nothing here allocates.
*/
#ifndef RAM_BERT_H
#define RAM_BERT_H

#include "internal.h"

#include <stddef.h>

struct ram_q8_weight;    /* gemm_q8.h */
struct ram_w8;           /* gemv_w8.h */
struct ram_sgemm_packed; /* sgemm.h */

/* The additive value bert.py puts on masked attention scores:
** (1 - mask) * -10000.0 (not -inf). */
#define RAM_BERT_MASKED (-10000.0f)

/* The weights of one attention block (bert.py BertAttention): Q/K/V
** projections, output dense, then LayerNorm(dense + residual). Borrowed. */
struct ram_bert_attn_w {
    const float *q_w, *q_b;   /* self.query (H, H) / (H) */
    const float *k_w, *k_b;   /* self.key (H, kv_width) / (H) */
    const float *v_w, *v_b;   /* self.value (H, kv_width) / (H) */
    const float *o_w, *o_b;   /* output.dense (H, H) / (H) */
    const float *ln_w, *ln_b; /* output.LayerNorm (H) */
    /* The four matrices packed for sgemm by the model (used when not NULL); borrowed. */
    const struct ram_sgemm_packed *q_p, *k_p, *v_p, *o_p;
};

/* One post-LN BERT layer (bert.py BertLayer): optional self-attention
** (bidirectional or causal), optional cross-attention over encoder states,
** then the FFN (intermediate.dense, exact GELU, output.dense,
** LayerNorm(+ residual)). */
struct ram_bert_layer {
    int hidden, heads, intermediate; /* head_dim = hidden / heads */
    float eps;                       /* LayerNorm eps (1e-12 in BERT) */
    int has_self;                    /* self-attention (needs ram_bert_layer_forward_ex) */
    int causal;                      /* row i of a call sees keys 0 .. n_past + i only */
    struct ram_bert_attn_w self;     /* its K/V input width is hidden */
    int has_cross;
    int kv_width; /* width of the encoder states */
    struct ram_bert_attn_w cross;
    const float *i_w, *i_b;   /* intermediate.dense (I, H) / (I) */
    const float *o_w, *o_b;   /* output.dense (H, I) / (H) */
    const float *ln_w, *ln_b; /* output.LayerNorm (H) */
    /* int8 forms of cross.q_w, cross.o_w, i_w, o_w (quantized model files),
    ** used instead of the fp32 ones when not NULL; borrowed. */
    const struct ram_q8_weight *q_q, *ao_q, *i_q, *o_q;
    /* Weight-only int8 forms (gemv_w8.h) of self q/k/v/o, cross q/o and
    ** the FFN (Tag2Text's caption decoder in quantized files), used first
    ** when not NULL; borrowed. */
    const struct ram_w8 *sq_w8, *sk_w8, *sv_w8, *so_w8, *cq_w8, *co_w8, *i_w8, *o_w8;
    /* i_w and o_w packed for sgemm by the model (used when not NULL); borrowed. */
    const struct ram_sgemm_packed *i_p, *o_p;
    /* The products' working memory (scratch.h), owned by the caller's state
    ** and borrowed for the call; NULL: each product allocates its own. */
    struct ram_scratch *products;
};

/* Self-attention keys and values of one sequence: rows of hidden floats,
** position p at row p (caller's buffers, room for every position). */
struct ram_bert_cache {
    float *k, *v;
};

/* The self-attention side of a forward over n_seq sequences of `rows` new
** positions each, all with n_past positions already in their caches (beams
** advance in lockstep). The layer writes the new positions' keys/values at
** rows n_past .. n_past + rows - 1 of each cache. key_bias, if not NULL,
** holds n_past + rows additive values per key, shared by the sequences (a
** padding mask: 0 or RAM_BERT_MASKED). */
struct ram_bert_self {
    struct ram_bert_cache *cache; /* n_seq entries (borrowed) */
    int n_past;
    const float *key_bias;
};

/* Cross-attention keys and values of n_kv encoder states enc (n_kv x
** kv_width): K and V receive n_kv x hidden floats each (caller's buffers).
** They depend only on the encoder states, so they are computed once per
** image (tagging) or per caption (decoder) and layer, and shared by every
** query chunk or decoding step. */
void ram_bert_cross_kv(const struct ram_bert_layer *L, const float *enc, int n_kv, float *K, float *V);

/* Floats of scratch one forward over `rows` rows in all, attending to n_kv
** encoder states and (self-attention) to at most n_ctx positions of a
** cache, needs (0 on overflow). */
size_t ram_bert_layer_scratch_floats_ex(const struct ram_bert_layer *L, int rows, int n_kv, int n_ctx);
size_t ram_bert_layer_scratch_floats(const struct ram_bert_layer *L, int rows, int n_kv); /* n_ctx 0 */

/* The attention of one sequence's r new rows q (r x hidden, the query
** projections) over its cache c, which already holds n_past + r positions
** (the new ones last): per head, scores / sqrt(head_dim) + key_bias (n_past +
** r values or NULL) + the causal mask, softmax, @ V. The context replaces
** q. S: r x (n_past + r) floats of scratch. What
** ram_bert_layer_forward_ex does per sequence; Tag2Text's verified decoding
** calls it per node of a draft's beam tree to get the same bits. */
void ram_bert_self_attend(const struct ram_bert_layer *L, float *q, int r, const struct ram_bert_cache *c, int n_past,
                          const float *key_bias, float *S);

/* The cross-attention of `rows` query rows q (rows x hidden) over n_kv
** encoder keys/values (ram_bert_cross_kv): per head, scores /
** sqrt(head_dim), softmax, @ V; the context replaces q. S: rows x n_kv
** floats of scratch. What ram_bert_layer_forward_ex does over all its rows. */
void ram_bert_cross_attend(const struct ram_bert_layer *L, float *q, int rows, const float *K, const float *V, int n_kv,
                           float *S);

/* Runs the layer in place on H (n_seq * rows x hidden, sequence-major).
** self: required when L->has_self (else ignored). K, V: the
** cross-attention keys/values from ram_bert_cross_kv (n_kv rows; ignored
** without cross-attention). Q0, if not NULL, is the cross-attention query
** projection of H already computed (layers without self-attention only: it
** lets image-independent queries skip it). scratch:
** ram_bert_layer_scratch_floats_ex(L, n_seq * rows, n_kv, n_past + rows)
** floats, caller's. Attention scores are the product divided by
** sqrt(head_dim) afterwards, plus the mask, softmax (the all-ones encoder
** mask of bert.py adds nothing). */
ram_status ram_bert_layer_forward_ex(const struct ram_bert_layer *L, float *H, int n_seq, int rows,
                                     const struct ram_bert_self *self, const float *K, const float *V, int n_kv,
                                     const float *Q0, float *scratch, struct ram_error *err);

/* The same for layers without self-attention (RAM_ERR_UNSUPPORTED when
** L->has_self: a self-attention layer needs the cache argument of _ex). */
ram_status ram_bert_layer_forward(const struct ram_bert_layer *L, float *H, int rows, const float *K, const float *V,
                                  int n_kv, const float *Q0, float *scratch, struct ram_error *err);

#endif /* RAM_BERT_H */
