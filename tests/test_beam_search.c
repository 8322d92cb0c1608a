/*
** test_beam_search.c — the beam search's rules (core/beam_search.c) on
** scripted log-probabilities small enough to follow by hand: the
** min-length mask, eos candidates of rank < B becoming hypotheses and of
** rank >= B ignored, the finished list's overflow (the worst dropped,
** worst_score updated), the done rule at equality, the result's eos; and the
** max-length end (open beams offered with score / max_len, no eos appended).
** The official code's behaviour on real models is checked by test_tag2text.
*/
#include "harness.h"

#include "beam_search.h"

#define V 6
#define EOS 5

/* A step's log-probs: every entry -9 except the (beam, token, value) triples. */
static void script(float *lp, int B, const float (*set)[3], int n)
{
    for (int i = 0; i < B * V; i++) lp[i] = -9.0f;
    for (int k = 0; k < n; k++) lp[(int)set[k][0] * V + (int)set[k][1]] = set[k][2];
}

static void test_rules(void)
{
    struct ram_beam_search *bs = malloc(sizeof *bs);
    struct ram_beam_params p = {2, 4, 2, EOS, 1.0f};
    struct ram_error err;
    int32_t prompt[1] = {0};
    float lp[2 * V];
    struct ram_beam_step r;
    int fin = 0;
    check(ram_beam_start(bs, &p, V, prompt, 1, &err) == RAM_OK, "beam.start", "%s", err.msg);

    /* Step 0, cur_len 1 < min 2: eos masked although it is the best. */
    const float s0[][3] = {{0, 0, -3}, {0, 1, -1}, {0, 2, -2}, {0, 3, -4}, {0, EOS, 0.0f}, {1, EOS, 0.0f}};
    script(lp, 2, s0, 6);
    ram_beam_advance(bs, lp, &r, &fin);
    check(isinf(lp[EOS]) && lp[EOS] < 0 && r.cand_token[0] == 1 && r.next_token[0] == 1 && r.next_token[1] == 2 &&
              r.next_beam[0] == 0 && r.next_beam[1] == 0 && r.next_score[1] == -2.0f && r.n_hyps == 0 && !fin,
          "beam.min_length_masks_eos", "tokens %d %d", r.next_token[0], r.next_token[1]);
    check(r.scores_in[1] == -1e9f, "beam.initial_scores", "%g", r.scores_in[1]);

    /* Step 1: two eos of rank 0 and 1 become hypotheses ([0 1] -1.1/2,
    ** [0 2] -2.05/2); the next ranks are the beams. */
    const float s1[][3] = {{0, EOS, -0.1f}, {1, 0, -0.5f}, {1, 4, -0.2f}, {1, EOS, -0.05f}};
    script(lp, 2, s1, 4);
    ram_beam_advance(bs, lp, &r, &fin);
    check(r.n_hyps == 2 && r.next_token[0] == 4 && r.next_beam[0] == 1 && r.next_token[1] == 0 && r.next_beam[1] == 1 &&
              !r.done && !fin && fabs(bs->worst - (-2.05f / 2.0)) < 1e-7,
          "beam.eos_top_ranks_finish", "hyps %d, worst %g", r.n_hyps, bs->worst);

    /* Step 2 (cur_len 3): eos rank 0 -> hypothesis -2.2/3, which overflows
    ** the list (B = 2): the worst (-1.025) goes; eos rank 2 is ignored; done
    ** at equality: worst -2.2/3 >= best total -2.2 / 3. */
    const float s2[][3] = {{0, EOS, 0.0f}, {0, 0, -0.3f}, {1, EOS, -0.05f}, {1, 3, -0.1f}};
    script(lp, 2, s2, 4);
    ram_beam_advance(bs, lp, &r, &fin);
    check(r.cand_token[0] == EOS && r.cand_token[2] == EOS && r.n_hyps == 2 && r.next_token[0] == 0 &&
              r.next_token[1] == 3 && r.done && fin && bs->hyp_score[0] == -1.1f / 2.0,
          "beam.overflow_rank_and_done", "hyps %d done %d next %d %d", r.n_hyps, r.done, r.next_token[0],
          r.next_token[1]);
    int32_t out[8];
    int n = ram_beam_result(bs, out, 8);
    check(n == 3 && out[0] == 0 && out[1] == 1 && out[2] == EOS, "beam.result_best_plus_eos", "n %d", n);

    /* Max length: no eos finishes, the open beams are offered with score / 3. */
    struct ram_beam_params q = {2, 3, 0, EOS, 1.0f};
    ram_beam_start(bs, &q, V, prompt, 1, &err);
    const float m0[][3] = {{0, 1, -0.1f}, {0, 2, -0.2f}};
    script(lp, 2, m0, 2);
    ram_beam_advance(bs, lp, &r, &fin);
    const float m1[][3] = {{0, 3, -0.1f}, {1, 4, -0.3f}};
    script(lp, 2, m1, 2);
    ram_beam_advance(bs, lp, &r, &fin);
    n = ram_beam_result(bs, out, 8);
    check(fin && !r.done && n == 3 && out[0] == 0 && out[1] == 1 && out[2] == 3 && bs->n_hyps == 2,
          "beam.max_length_no_eos", "fin %d n %d", fin, n);

    /* Bad parameters. */
    struct ram_beam_params bad = {9, 50, 10, EOS, 1.0f};
    check(ram_beam_start(bs, &bad, V, prompt, 1, &err) == RAM_ERR_ARG, "beam.bad_params", "%s", err.msg);
    free(bs);
}

int main(void)
{
    (void)check_close_npy;
    (void)data_path;
    test_rules();
    return harness_exit();
}
