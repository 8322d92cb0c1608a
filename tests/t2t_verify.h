/*
** t2t_verify.h — checks of Tag2Text's verified int8 decoding
** (RAM_T2T_DECODE_VERIFIED) shared by test_tag2text.c (goldens) and
** test_tag2text_heldout.c (held-out config): a caption's every beam step
** (raw logits, processed log-probs, candidates, kept beams, finished
** hypotheses) recorded through the step hook, and two recordings compared
** bit for bit. The verified path must give the fp32 search's bits, not
** something close: its check recomputes each row as the fp32 steps do.
*/
#ifndef T2T_VERIFY_H
#define T2T_VERIFY_H

#include "tag2text.h"

#include <stdlib.h>
#include <string.h>

struct t2t_run {
    int steps, vocab, cap; /* cap: steps the buffers hold */
    float *logits, *logp;  /* steps x beams x vocab */
    struct ram_beam_step rec[RAM_T2T_MAX_LEN];
    int32_t ids[RAM_T2T_MAX_LEN + 1];
    int n_ids;
    char *caption;
    struct ram_t2t_decode_stats stats;
};

static void t2t_run_step(void *arg, int step, const float *logits, const float *logp, int B, int V,
                         const struct ram_beam_step *rec)
{
    struct t2t_run *r = arg;
    const size_t n = (size_t)B * V;
    if (step != r->steps || step >= RAM_T2T_MAX_LEN) return; /* out of order: leaves steps short */
    r->vocab = V;
    if (step >= r->cap) { /* doubling: a caption's 46 steps of 3 x 30,524 floats take 4 reallocations */
        r->cap = r->cap ? 2 * r->cap : 8;
        float *a = realloc(r->logits, sizeof(float) * n * r->cap),
              *b = a ? realloc(r->logp, sizeof(float) * n * r->cap) : NULL;
        if (a) r->logits = a;
        if (b) r->logp = b;
        if (!a || !b) {
            r->cap = 0; /* steps stays short: the comparison fails */
            return;
        }
    }
    memcpy(r->logits + n * step, logits, sizeof(float) * n);
    memcpy(r->logp + n * step, logp, sizeof(float) * n);
    r->rec[step] = *rec;
    r->steps = step + 1;
}

static void t2t_run_free(struct t2t_run *r)
{
    free(r->logits), free(r->logp);
    ram_free(r->caption);
    memset(r, 0, sizeof *r);
}

/* Captions tags (with the state's current decoder) into r. */
static ram_status t2t_run(struct ram_t2t_state *st, const float *emb, const char *tags, struct t2t_run *r,
                          struct ram_error *err)
{
    memset(r, 0, sizeof *r);
    struct ram_t2t_hooks hk;
    memset(&hk, 0, sizeof hk);
    hk.step = t2t_run_step, hk.step_arg = r;
    ram_status rc = ram_t2t_caption(st, emb, tags, strlen(tags), &hk, r->ids, &r->n_ids, &r->caption, err);
    ram_t2t_last_decode(st, &r->stats);
    return rc;
}

/* 1 when b has a's bits: same steps, every logit, log-prob and decision,
** same ids and caption. */
static int t2t_run_same(const struct t2t_run *a, const struct t2t_run *b)
{
    const size_t n = (size_t)RAM_T2T_BEAMS * a->vocab * a->steps;
    return a->steps > 0 && a->steps == b->steps && a->vocab == b->vocab &&
           !memcmp(a->logits, b->logits, sizeof(float) * n) && !memcmp(a->logp, b->logp, sizeof(float) * n) &&
           !memcmp(a->rec, b->rec, sizeof(a->rec[0]) * (size_t)a->steps) && a->n_ids == b->n_ids &&
           !memcmp(a->ids, b->ids, sizeof(int32_t) * (size_t)a->n_ids) && a->caption && b->caption &&
           !strcmp(a->caption, b->caption);
}

/* A draft hook that makes the int8 draft take, at step `at`, beam 0's least
** likely token (not eos) as its best candidate: fp32 would never keep it. */
struct t2t_force {
    int at, eos, hit;
};

static void t2t_force_step(void *arg, int step, float *logp, int B, int V)
{
    struct t2t_force *f = arg;
    (void)B;
    if (step != f->at) return;
    int worst = f->eos ? 0 : 1;
    for (int t = 0; t < V; t++)
        if (t != f->eos && logp[t] < logp[worst]) worst = t;
    logp[worst] = 0.0f;
    f->hit++;
}

#endif /* T2T_VERIFY_H */
