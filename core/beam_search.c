/*
** beam_search.c — Tag2Text's beam search (API in beam_search.h), the rules
** of transformers 4.25.1 as docs/TAG2TEXT.md section 5 states them:
**
**   - per step: processed = log_softmax, with eos at -inf while cur_len <
**     min_len; total = processed + beam score (fp32); the 2*B best totals
**     over (beam, token), sorted descending;
**   - walk them in rank order: an eos candidate of rank < B becomes a
**     finished hypothesis scored total / cur_len ** penalty (cur_len: the
**     beam's tokens without the eos), an eos of rank >= B is ignored, any
**     other candidate becomes the next beam, until B beams are taken;
**   - the finished list keeps the B best: on overflow the worst (the earliest
**     added among equal scores) is dropped and worst_score becomes the worst
**     remaining; else worst_score = min(score, worst_score), starting at 1e9;
**   - done when B hypotheses exist and worst_score >= best total of the step
**     (rank 0, eos included) / cur_len ** penalty; the search also stops at
**     max_len tokens, and then the open beams are offered with their running
**     score / max_len ** penalty;
**   - the result is the best hypothesis (the later added on a tie: the
**     reference pops the last of a stable sort), + eos if shorter than max_len.
*/
#include "beam_search.h"

#include <math.h>
#include <string.h>

ram_status ram_beam_start(struct ram_beam_search *bs, const struct ram_beam_params *p, int vocab, const int32_t *prompt,
                          int n_prompt, struct ram_error *err)
{
    if (!bs || !p || (!prompt && n_prompt)) return ram_fail(err, RAM_ERR_ARG, "beam search: NULL argument");
    if (p->n_beams < 1 || p->n_beams > RAM_BEAM_MAX || n_prompt < 1 || p->max_len <= n_prompt ||
        p->max_len > RAM_BEAM_MAX_LEN || vocab < 2 * p->n_beams || p->eos < 0 || p->eos >= vocab ||
        !(p->length_penalty == p->length_penalty))
        return ram_fail(err, RAM_ERR_ARG, "beam search: %d beams, prompt %d, max_length %d, vocabulary %d", p->n_beams,
                        n_prompt, p->max_len, vocab);
    memset(bs, 0, sizeof *bs);
    bs->p = *p;
    bs->vocab = vocab;
    bs->cur_len = n_prompt;
    for (int b = 0; b < p->n_beams; b++) {
        memcpy(bs->tok[0][b], prompt, sizeof(int32_t) * (size_t)n_prompt);
        bs->score[b] = b ? -1e9f : 0.0f;
    }
    bs->worst = 1e9;
    return RAM_OK;
}

static double hyp_norm(const struct ram_beam_search *bs, double sum, int len)
{
    return sum / pow((double)len, (double)bs->p.length_penalty);
}

/* BeamHypotheses.add. */
static void add_hyp(struct ram_beam_search *bs, const int32_t *tok, int len, float sum)
{
    const int B = bs->p.n_beams;
    double score = hyp_norm(bs, (double)sum, len);
    if (!(bs->n_hyps < B || score > bs->worst)) return;
    int k = bs->n_hyps++;
    bs->hyp_score[k] = score;
    bs->hyp_len[k] = len;
    memcpy(bs->hyp_tok[k], tok, sizeof(int32_t) * (size_t)len);
    if (bs->n_hyps > B) {
        /* Drop the smallest (score, position): the earliest among equals. */
        int w = 0;
        for (int i = 1; i < bs->n_hyps; i++)
            if (bs->hyp_score[i] < bs->hyp_score[w]) w = i;
        for (int i = w; i + 1 < bs->n_hyps; i++) {
            bs->hyp_score[i] = bs->hyp_score[i + 1];
            bs->hyp_len[i] = bs->hyp_len[i + 1];
            memcpy(bs->hyp_tok[i], bs->hyp_tok[i + 1], sizeof(int32_t) * (size_t)bs->hyp_len[i]);
        }
        bs->n_hyps--;
        bs->worst = bs->hyp_score[0];
        for (int i = 1; i < bs->n_hyps; i++)
            if (bs->hyp_score[i] < bs->worst) bs->worst = bs->hyp_score[i];
    } else if (score < bs->worst) {
        bs->worst = score;
    }
}

void ram_beam_advance(struct ram_beam_search *bs, float *logp, struct ram_beam_step *rec, int *finished)
{
    const int B = bs->p.n_beams, V = bs->vocab, K = 2 * B;
    float cs[2 * RAM_BEAM_MAX];
    long ci[2 * RAM_BEAM_MAX];
    int n = 0;

    if (bs->cur_len < bs->p.min_len)
        for (int b = 0; b < B; b++) logp[(size_t)b * V + bs->p.eos] = -INFINITY;
    /* Top K totals, descending; among equal totals the lower flat index
    ** first. NaN totals are never taken. */
    for (int b = 0; b < B; b++) {
        const float *row = logp + (size_t)b * V;
        const float sb = bs->score[b];
        for (int t = 0; t < V; t++) {
            float x = row[t] + sb;
            if (!(x == x) || (n == K && !(x > cs[K - 1]))) continue;
            int j = n < K ? n++ : K - 1;
            while (j > 0 && x > cs[j - 1]) {
                cs[j] = cs[j - 1];
                ci[j] = ci[j - 1];
                j--;
            }
            cs[j] = x;
            ci[j] = (long)b * V + t;
        }
    }
    struct ram_beam_step r;
    memset(&r, 0, sizeof r);
    r.cur_len = bs->cur_len;
    memcpy(r.scores_in, bs->score, sizeof(float) * (size_t)B);
    r.n_cand = n;
    for (int k = 0; k < n; k++) {
        r.cand_score[k] = cs[k];
        r.cand_token[k] = (int32_t)(ci[k] % V);
        r.cand_beam[k] = (int)(ci[k] / V);
    }

    /* BeamSearchScorer.process. */
    const int32_t(*cur)[RAM_BEAM_MAX_LEN] = bs->tok[bs->cur];
    int taken = 0;
    for (int k = 0; k < n && taken < B; k++) {
        if (r.cand_token[k] == bs->p.eos) {
            if (k >= B) continue;
            add_hyp(bs, cur[r.cand_beam[k]], bs->cur_len, r.cand_score[k]);
        } else {
            r.next_score[taken] = r.cand_score[k];
            r.next_token[taken] = r.cand_token[k];
            r.next_beam[taken] = r.cand_beam[k];
            taken++;
        }
    }
    /* Fewer than B candidates (NaN scores everywhere): keep the beams as
    ** they are, scored -inf, so the caller's buffers stay consistent. */
    for (; taken < B; taken++) {
        r.next_score[taken] = -INFINITY;
        r.next_token[taken] = bs->p.eos;
        r.next_beam[taken] = taken;
    }
    if (!bs->done && bs->n_hyps >= B && n > 0)
        bs->done = bs->worst >= hyp_norm(bs, (double)r.cand_score[0], bs->cur_len);

    /* input_ids = cat(input_ids[beam_idx], next tokens). */
    int32_t(*nxt)[RAM_BEAM_MAX_LEN] = bs->tok[!bs->cur];
    for (int j = 0; j < B; j++) {
        memcpy(nxt[j], cur[r.next_beam[j]], sizeof(int32_t) * (size_t)bs->cur_len);
        nxt[j][bs->cur_len] = r.next_token[j];
        bs->score[j] = r.next_score[j];
    }
    bs->cur = !bs->cur;
    bs->cur_len++;
    r.n_hyps = bs->n_hyps;
    r.done = bs->done;
    if (rec) *rec = r;
    *finished = bs->done || bs->cur_len >= bs->p.max_len;
}

int ram_beam_result(struct ram_beam_search *bs, int32_t *out, int max_out)
{
    const int B = bs->p.n_beams;
    if (!bs->done) {
        for (int b = 0; b < B; b++) add_hyp(bs, bs->tok[bs->cur][b], bs->cur_len, bs->score[b]);
        bs->done = 1;
    }
    if (bs->n_hyps == 0) return 0;
    int best = 0;
    for (int i = 1; i < bs->n_hyps; i++)
        if (bs->hyp_score[i] >= bs->hyp_score[best]) best = i;
    int n = 0;
    for (int i = 0; i < bs->hyp_len[best] && n < max_out; i++) out[n++] = bs->hyp_tok[best][i];
    if (bs->hyp_len[best] < bs->p.max_len && n < max_out) out[n++] = bs->p.eos;
    return n;
}
