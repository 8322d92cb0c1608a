/*
** clip_text.h — the CLIP text encoder (OpenAI CLIP's encode_text): token ids
** from the BPE tokenizer -> one embed_dim vector (not normalised).
**
**     size_t nf = ram_clip_scratch_floats(&m->clip);
**     float *scratch = ram_malloc(nf * sizeof(float)), emb[512];
**     int32_t ids[RAM_CLIP_CONTEXT]; int n;
**     ram_bpe_tokenize(m->bpe, text, len, ids, m->clip.context, &n, &err);
**     if (ram_clip_encode(&m->clip, &m->clip_w, ids, n, scratch, emb, &err)) ...
**
** Thread safety: the weights are only read; concurrent calls need separate
** scratch buffers.
*/
#ifndef RAM_CLIP_TEXT_H
#define RAM_CLIP_TEXT_H

#include "model.h"

/* Floats of scratch ram_clip_encode needs for this config (the worst case,
** a full context). 0 when the config is invalid or the size overflows. */
size_t ram_clip_scratch_floats(const struct ram_clip_config *cfg);

/* encode_text of one tokenized text. ids holds n_ids token ids as
** ram_bpe_tokenize gives them (zero padding may follow EOT or not; the
** result is the same). The text is pooled at the first position holding the
** largest id (EOT), and only positions up to it are computed (exact: the
** attention is causal). scratch: ram_clip_scratch_floats(cfg) floats owned
** by the caller; out: cfg->embed_dim floats (caller's).
** Errors: RAM_ERR_ARG for an invalid config, n_ids outside 1..context, or an
** id outside 0..vocab-1. */
ram_status ram_clip_encode(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids, int n_ids,
                           float *scratch, float *out, struct ram_error *err);

#ifdef RAM_TEST
/* Debug view for the golden intermediates: the (eot+1) x width activations
** after the first n_layers blocks (0..layers), then ln_final when final_ln
** is set, into rows (caller's, context x width floats). *n_rows receives
** eot + 1. */
ram_status ram_clip_debug_rows(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids,
                               int n_ids, int n_layers, int final_ln, float *scratch, float *rows, int *n_rows,
                               struct ram_error *err);
#endif

#endif /* RAM_CLIP_TEXT_H */
