/*
** tag2text.h — Tag2Text (recognize-anything's ram/models/tag2text.py) from
** image embeddings to tags and a caption: the tagging head (the
** 2-layer cross-attention decoder of the label embeddings + the per-class
** GroupWiseLinear fc), the tag encoder (the tag string, 40 ids, over the
** image tokens) and the caption decoder with its beam search. The Swin
** image encoder is core/swin.c's; docs/TAG2TEXT.md has every fact.
**
**     struct ram_t2t_state *st = 0;
**     if (ram_t2t_state_init(m, &st, &err)) return fail(err.msg);
**     ram_swin_forward(m, chw, ram_t2t_swin_scratch(st), embeds, NULL, &err);
**     ram_t2t_tag_logits(st, embeds, logits, NULL, &err);       // num_class logits
**     for (c...) probs[c] = ram_sigmoid(logits[c]);
**     char *tags = 0;  ram_t2t_tag_string(m, probs, &tags, &err); // "dog | grass"
**     int32_t ids[RAM_T2T_MAX_LEN]; int n; char *caption = 0;
**     ram_t2t_caption(st, embeds, tags, strlen(tags), NULL, ids, &n, &caption, &err);
**     ram_free(tags), ram_free(caption);
**     ram_t2t_state_free(st);
**
** Thread safety: the model is only read; a state serves one call at a time.
*/
#ifndef RAM_TAG2TEXT_H
#define RAM_TAG2TEXT_H

#include "beam_search.h"
#include "model.h"

/* The official generate() settings (Tag2Text.generate, inference_tag2text). */
#define RAM_T2T_TAG_LEN 40 /* tag encoder input ids: [ENC] tokens [SEP] [PAD]... */
#define RAM_T2T_BEAMS 3
#define RAM_T2T_MAX_LEN 50
#define RAM_T2T_MIN_LEN 10
#define RAM_T2T_PROMPT "a picture of "
#define RAM_T2T_THRESHOLD 0.68f /* class_threshold fill value; 0.7 for person, man, woman */

/* The official constructor's defaults for the 3,429-tag list: the classes
** with threshold 0.7 and delete_tag_index. Applied to indices below num_class. */
extern const int ram_t2t_high_threshold_classes[3];
extern const int ram_t2t_deleted_classes[7];

struct ram_t2t_state;

/* Completes a Tag2Text model whose config, weights and vocabulary are set:
** builds its BERT tokenizer from vocab_text (vocab.txt, copied: m keeps it
** for writing) and its deleted-class flags (deleted: num_class flags, or
** NULL for the official delete_tag_index, indices >= num_class skipped).
** With official_thresholds, the classes of ram_t2t_high_threshold_classes
** get 0.7 (the constructor's overrides; for models whose thresholds were
** not given). What it makes is owned by m. */
ram_status ram_t2t_attach(struct ram_model *m, const char *vocab_text, size_t vocab_len, const unsigned char *deleted,
                          int official_thresholds, struct ram_error *err);

/* The int8 path of the caption decoder (quantized model files do it at
** load): every matrix a decoding step reads, i.e. each decoder layer's
** self-attention Q/K/V/output, cross-attention query/output and FFN, the
** LM head's transform and its tied 30,524-word matrix, as weight-only int8
** (gemv_w8.h: a scale per 64 weights, fp32 activations). Decoding is
** memory-bound (each step reads them all for 3 rows), so a quarter of the
** bytes is the gain, and fp32 activations keep half of int8's rounding
** away. The cross-attention keys/values (computed once per caption), the
** tag encoder and the embeddings stay fp32. What it makes is owned by m;
** calling it again does nothing. Not thread-safe against concurrent use of
** m: call it before any state uses the model. */
ram_status ram_t2t_quantize_decoder(struct ram_model *m, struct ram_error *err);

/* The caption decoder's fp32 matrices (per layer self Q/K/V/output, cross
** query/output, FFN; the LM head's transform and word matrix) packed for
** sgemm (sgemm.h), as model files get at load; the decoder's layer views
** and LM head pass them to the products. Their pages in the file mapping
** are handed back (all but the word matrix, which the embeddings read).
** Products give the same bits with or without it. RAM_PREPACK=0 turns it
** off. m->t2t.dec_packed owns the panels; ram_t2t_release_packed
** (ram_model_free) frees them. Not thread-safe against concurrent use of m. */
void ram_t2t_prepack(struct ram_model *m);
void ram_t2t_release_packed(struct ram_model *m);

/* Fills *L (caller's) with the view of layer l of a Tag2Text BERT stack
** (the tag encoder's or the decoder's; causal self-attention for the
** decoder): pointers borrowed from the model's tensors, no packed copies;
** w8 also sets the decoder's int8 forms. Tests build their references
** from the same view. */
struct ram_bert_layer; /* bert.h */
void ram_t2t_layer_view(const struct ram_bert_config *c, const struct ram_bert_stack_w *w, int l, int causal, int w8,
                        struct ram_bert_layer *L);

/* Optional callbacks. Every field may be NULL. */
struct ram_t2t_hooks {
    /* Polled between layers and decoding steps; non-zero stops the call
    ** with RAM_ERR_INTERRUPTED. */
    int (*abort_cb)(void *arg);
    void *abort_arg;
    /* Intermediates (rows x cols, borrowed for the call): "tagging_layer{l}_out"
    ** (rows of classes row0..), "tag_encoder_embeddings_out",
    ** "tag_encoder_layer{l}_out", "decoder_step0_embeddings_out",
    ** "decoder_step0_layer{l}_out" (the prompt rows of beam 0). */
    void (*trace)(void *arg, const char *name, int row0, const float *x, int rows, int cols);
    void *trace_arg;
    /* After each decoding step: the raw next-token logits and the processed
    ** log-probs of the beams (n_beams x vocab; at step 0 the beams share the
    ** prompt, computed once), and what the search decided. */
    void (*step)(void *arg, int step, const float *logits, const float *logp, int n_beams, int vocab,
                 const struct ram_beam_step *rec);
    void *step_arg;
};

/* How the caption decoder runs (ram_t2t_set_decoder). */
enum ram_t2t_decoder {
    RAM_T2T_DECODE_FP32 = 0, /* fp32 weights at every step */
    RAM_T2T_DECODE_INT8,     /* weight-only int8 at every step: the fastest; beam decisions may differ from fp32's */
    /* Speculative: the beam search drafts a few steps with int8 weights,
    ** one fp32 pass checks them all at once (each weight read once for all
    ** their rows), the search goes on with the fp32 log-probs up to the
    ** first step where fp32 decides otherwise than the draft, and drafts
    ** again from there. The result is the fp32 search's, bit for bit (the
    ** check computes each row as the fp32 steps do). */
    RAM_T2T_DECODE_VERIFIED,
};

/* What the last ram_t2t_caption of a state did. */
struct ram_t2t_decode_stats {
    int decoder;          /* enum ram_t2t_decoder */
    int steps;            /* beam steps of the caption */
    int draft_steps;      /* VERIFIED: int8 steps drafted */
    int draft_held;       /* VERIFIED: drafted decisions the fp32 check confirmed */
    int first_divergence; /* VERIFIED: the first step whose fp32 decision differed from the draft's, -1 if none */
};

/* A state for model m (kind RAM_KIND_TAG2TEXT with its tokenizer): every
** buffer of a tagging + caption call, sized once (the decoder's key/value
** caches for 3 beams of 50 tokens included). *out is owned by the caller
** (ram_t2t_state_free); m must outlive it. */
ram_status ram_t2t_state_init(const struct ram_model *m, struct ram_t2t_state **out, struct ram_error *err);
void ram_t2t_state_free(struct ram_t2t_state *st);

/* Chooses the caption decoder of st. INT8 and VERIFIED need a model with an
** int8 decoder (ram_t2t_quantize_decoder before ram_t2t_state_init), else
** RAM_ERR_UNSUPPORTED. A new state uses VERIFIED when the model has one
** (FP32's captions; faster than FP32 on make bench's image, slower where
** the drafts seldom hold: t2t_*verified* keys, README "Verified int8
** decoding"), else FP32. */
ram_status ram_t2t_set_decoder(struct ram_t2t_state *st, enum ram_t2t_decoder decoder, struct ram_error *err);
enum ram_t2t_decoder ram_t2t_get_decoder(const struct ram_t2t_state *st);

/* RAM_T2T_DECODE_VERIFIED only: cb (NULL: none) sees the int8 draft's
** log-probs of each step (n_beams x vocab), writable, before the draft's
** beam decision; the tests make the draft diverge with it. The hooks of
** ram_t2t_caption (trace, step) report the fp32 computation, never the draft. */
void ram_t2t_set_draft_hook(struct ram_t2t_state *st,
                            void (*cb)(void *arg, int step, float *logp, int n_beams, int vocab), void *arg);

/* What the state's last caption did (zeros before the first). */
void ram_t2t_last_decode(const struct ram_t2t_state *st, struct ram_t2t_decode_stats *out);

/* Scratch of ram_swin_forward for this model (borrowed from the state). */
float *ram_t2t_swin_scratch(struct ram_t2t_state *st);

/* The products' working memory of the state (scratch.h; for the Swin's
** hooks), borrowed: owned and freed by the state. */
struct ram_scratch *ram_t2t_products(struct ram_t2t_state *st);

/* The tagging head: logits receives num_class floats (caller's) from
** image_embeds (n_image_tokens x vision_width, row 0 the mean token). */
ram_status ram_t2t_tag_logits(struct ram_t2t_state *st, const float *image_embeds, float *logits,
                              const struct ram_t2t_hooks *hk, struct ram_error *err);

/* The official tag string from the probabilities: classes with prob >
** threshold and not deleted, names joined with " | " in class order ("" if
** none). *out is owned by the caller (ram_free). */
ram_status ram_t2t_tag_string(const struct ram_model *m, const float *probs, char **out, struct ram_error *err);

/* Tags as the official inference script passes user tags: every ',' becomes
** " | " (nothing else changes; the tokenizer makes spacing irrelevant).
** *out is owned by the caller (ram_free). */
ram_status ram_t2t_user_tags(const char *tags, size_t len, char **out, struct ram_error *err);

/* Caption generation guided by the tag string tags (len bytes): the tag
** encoder (once), the cross-attention keys/values of its 40 states (once),
** then the beam search. ids (may be NULL) receives the generated sequence
** ([DEC] a picture of ... [SEP] when shorter than 50; room for
** RAM_T2T_MAX_LEN + 1), *n_ids (may be NULL) its length; *caption (may be
** NULL) the decoded text without special tokens, cut after "a picture of "
** (13 characters), owned by the caller (ram_free). */
ram_status ram_t2t_caption(struct ram_t2t_state *st, const float *image_embeds, const char *tags, size_t len,
                           const struct ram_t2t_hooks *hk, int32_t *ids, int *n_ids, char **caption,
                           struct ram_error *err);

#endif /* RAM_TAG2TEXT_H */
