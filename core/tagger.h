/*
** tagger.h — the tagging side of RAM++ and RAM: the per-image reweighting of
** each class's description embeddings (RAM++), wordvec_proj + ReLU, the
** tagging decoder (BERT layers with cross-attention over the image tokens)
** and the shared fc classifier, from image_embeds to one logit per class.
** The BERT layer it is made of is core/bert.h's, shared with Tag2Text.
**
**     struct ram_tagger_scratch s = {buf, RAM_TAGGER_CHUNK, m->des_per_class, NULL};
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

#include "bert.h"
#include "model.h"

#include <stddef.h>

/* Default number of class queries processed together. Queries are
** independent per class (the decoder has no self-attention), so chunking is
** exact (the same bits whatever the chunk); it bounds the scratch for 4585
** classes. Each chunk re-packs every decoder weight (47 MB at full size) for
** its products, so few large chunks pay that less often: tagging CPU time
** per image at 1 thread, full-size RAM++, interleaved runs (2026-12-07):
** 256: 0.73-0.76 s (8 MB scratch), 512: 0.67-0.75 s, 768: 0.65 s (20.5 MB),
** 1024: 0.66 s (27 MB), 2304: 0.63-0.65 s (58 MB). 768 takes the gain for
** the least memory. */
#define RAM_TAGGER_CHUNK 768

/* ------------------------------------------------------------------ BERT layer */

/* The layer view of the tagging decoder's layer l of m (cross-attention +
** FFN). Pointers borrow from m. */
void ram_bert_layer_from_tagger(const struct ram_model *m, int l, struct ram_bert_layer *out);

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
** rows still fit (RAM_ERR_TOO_BIG when des > chunk*max_des). products:
** the caller's state's working memory for the products (or NULL). */
struct ram_tagger_scratch {
    float *buf;
    int chunk, max_des;
    struct ram_scratch *products; /* the products' working memory (scratch.h), borrowed; NULL: per product */
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
                              const struct ram_tagger_scratch *s, float *logits, const struct ram_tagger_hooks *hooks,
                              struct ram_error *err);

/* The image-independent part for one-row-per-class label embeddings (RAM, or
** any des == 1 set): h0 = ReLU(wordvec_proj(label_embed)) (identity when m
** has no wordvec_proj) and q0 = h0 Wq^T + bq of decoder layer 0; n_tags x
** hidden floats each (caller's buffers). Errors as ram_tagger_forward. */
ram_status ram_tagger_precompute(const struct ram_model *m, const float *label_embed, int n_tags, float *h0, float *q0,
                                 struct ram_error *err);

/* Packs, once, the decoder's fp32 matrices that every chunk of every
** forward multiplies by (per layer the query, attention output,
** intermediate and output matrices, and wordvec_proj) into sgemm's panels
** (sgemm.h), so that the products on them read the panels instead of
** packing each again (six times per image at full size). Best effort and
** result-neutral: what cannot be packed packs on the fly; RAM_PREPACK=0
** packs nothing. Quantized matrices (their int8/bf16 forms) are left alone.
** m->tagger_packed owns the panels; ram_tagger_release_packed (called by
** ram_model_free) frees them. The fp32 matrices stay mapped (cache_score.c
** reads them too): the panels add their size (57 MB at full size) to the
** model. ram_tagger_packed gives layer l's packed matrix `which` (l is
** ignored for RAM_TAGGER_WORDVEC), or NULL when it is not packed; owned by
** m, valid until it is freed. ram_bert_layer_from_tagger passes them on. */
enum ram_tagger_matrix { RAM_TAGGER_Q, RAM_TAGGER_AO, RAM_TAGGER_I, RAM_TAGGER_O, RAM_TAGGER_WORDVEC };
#define RAM_TAGGER_PACKED_PER_LAYER RAM_TAGGER_WORDVEC
void ram_tagger_prepack(struct ram_model *m);
void ram_tagger_release_packed(struct ram_model *m);
const struct ram_sgemm_packed *ram_tagger_packed(const struct ram_model *m, int l, enum ram_tagger_matrix which);

#endif /* RAM_TAGGER_H */
