/*
** beam_search.h — the beam search of Tag2Text's caption generation, with
** the semantics of Hugging Face transformers 4.25.1's generate(num_beams,
** min_length, length_penalty, early_stopping=False) for one input, written
** from docs/TAG2TEXT.md section 5. Only the search: the model step that turns
** the beams' tokens into log-probabilities is the caller's.
**
**     struct ram_beam_search *bs = ...;   // caller's memory (sizeof, no allocation)
**     ram_beam_start(bs, &params, vocab, prompt, 4);
**     for (int fin = 0; !fin;) {
**         // logp: n_beams x vocab log_softmax of the model's next-token logits
**         ram_beam_advance(bs, logp, &rec, &fin);
**         // reorder the model's caches by rec.next_beam, feed rec.next_token
**     }
**     int n = ram_beam_result(bs, ids, RAM_BEAM_MAX_LEN);
**
** Scores are fp32 like the reference's tensors; finished-hypothesis scores
** are doubles (the reference divides Python floats).
*/
#ifndef RAM_BEAM_SEARCH_H
#define RAM_BEAM_SEARCH_H

#include "internal.h"

#include <stdint.h>

#define RAM_BEAM_MAX 8       /* beams at most */
#define RAM_BEAM_MAX_LEN 512 /* max_length at most */

struct ram_beam_params {
    int n_beams;          /* 3 */
    int max_len;          /* 50: tokens in all, prompt included */
    int min_len;          /* 10: below it the eos log-prob is -inf */
    int32_t eos;          /* [SEP] 102 */
    float length_penalty; /* 1.0: a hypothesis scores sum / len ** penalty */
};

/* What one step decided (for traces and the caller's cache reordering). */
struct ram_beam_step {
    int cur_len;                        /* tokens per beam before this step */
    float scores_in[RAM_BEAM_MAX];      /* running beam scores entering the step */
    int n_cand;                         /* 2 * n_beams */
    float cand_score[2 * RAM_BEAM_MAX]; /* top totals (log-prob + beam score), descending */
    int32_t cand_token[2 * RAM_BEAM_MAX];
    int cand_beam[2 * RAM_BEAM_MAX];
    float next_score[RAM_BEAM_MAX]; /* the beams kept */
    int32_t next_token[RAM_BEAM_MAX];
    int next_beam[RAM_BEAM_MAX]; /* source beam of each kept beam */
    int n_hyps;                  /* finished hypotheses after the step */
    int done;                    /* the done rule held */
};

struct ram_beam_search {
    struct ram_beam_params p;
    int vocab;
    int cur_len;
    float score[RAM_BEAM_MAX];
    int32_t tok[2][RAM_BEAM_MAX][RAM_BEAM_MAX_LEN]; /* double buffer of the beams' tokens */
    int cur;                                        /* which half holds the beams */
    /* Finished hypotheses in the order they were added (the reference's list). */
    int n_hyps;
    double hyp_score[RAM_BEAM_MAX + 1];
    int hyp_len[RAM_BEAM_MAX + 1];
    int32_t hyp_tok[RAM_BEAM_MAX + 1][RAM_BEAM_MAX_LEN];
    double worst;
    int done;
};

/* Checks p (1..RAM_BEAM_MAX beams, prompt < max_len <= RAM_BEAM_MAX_LEN,
** vocab >= 2 * n_beams, eos in the vocabulary) and starts: every beam holds
** the prompt, scores [0, -1e9, ...]. */
ram_status ram_beam_start(struct ram_beam_search *bs, const struct ram_beam_params *p, int vocab, const int32_t *prompt,
                          int n_prompt, struct ram_error *err);

/* One step. logp: n_beams x vocab log-probabilities of the next token per
** beam; the min-length rule is applied to it in place (eos -inf while
** cur_len < min_len), so afterwards it holds the reference's processed
** scores. rec (may be NULL) receives the decisions; *finished is 1 when the
** search is over (done rule, or max_len tokens). */
void ram_beam_advance(struct ram_beam_search *bs, float *logp, struct ram_beam_step *rec, int *finished);

/* The reference's finalize: open beams offered as hypotheses unless done,
** then the best hypothesis (the later one on a tie), followed by eos when
** shorter than max_len. Writes at most max_out ids; returns the count. */
int ram_beam_result(struct ram_beam_search *bs, int32_t *out, int max_out);

#endif /* RAM_BEAM_SEARCH_H */
