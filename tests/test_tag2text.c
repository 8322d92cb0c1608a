/*
** test_tag2text.c — Tag2Text (core/tag2text.c, bert.c, beam_search.c)
** against the official code's outputs on the tiny golden model
** (tests/data/golden/tag2text): image embeddings, tagging-head layers,
** logits and probabilities (1e-4), the tag strings (identical), for the
** predicted and the user tags every tag-encoder tensor and the decoder's
** step-0 layers (1e-4), every beam-search step (candidate and kept tokens
** and beams identical, scores, top-10 logits/log-probs and logsumexp within
** 1e-4), the step count, the sequences and captions (identical). The model
** is the converter's file (build/models/golden_tag2text.ram, made by
** ram-convert from the golden .pth); the .pth route is compared with it.
*/
#include "harness.h"
#include "t2t_verify.h"
#include "test_json.h"

#include "internal.h"
#include <unistd.h>
#include "model.h"
#include "ops.h"
#include "pth_reader.h"
#include "swin.h"
#include "tag2text.h"
#include "weights.h"
#include "wordpiece.h"

#define TOL 1e-4

/* Running beam scores are fp32 sums of up to 46 log-probs (|score| up to
** ~115 in the goldens): checked at 1e-4 like everything else. (The engine's
** log_softmax accumulates like PyTorch's kernel for that; see tag2text.c.) */
static double score_tol(int step)
{
    (void)step;
    return TOL;
}

static double worst_err[8]; /* per kind, reported at the end */
enum { E_EMBED, E_TAGGING, E_LOGITS, E_ENCODER, E_DECODER, E_SCORES, E_LM, E_N };
static const char *err_names[E_N] = {"image_embeds",   "tagging layers", "tag logits/probs",   "tag encoder",
                                     "decoder step 0", "beam scores",    "LM logits/log-probs"};

static const char *gpath(const char *fmt, ...)
{
    static char buf[8][512];
    static int k;
    char rel[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *p = buf[k++ & 7];
    snprintf(p, 512, "%s", data_path(rel));
    return p;
}

/* max |got - golden| of an npy (n floats), recorded under kind; -1 if unreadable or the size differs. */
static double npy_err(const char *path, const float *got, size_t n, int kind)
{
    struct npy g;
    if (!npy_load(path, &g)) return -1;
    double e = g.n == n ? max_abs_diff(got, g.data, n) : -1;
    npy_free(&g);
    if (e > worst_err[kind]) worst_err[kind] = e;
    return e;
}

static void check_npy(const char *name, const char *path, const float *got, size_t n, int kind)
{
    double e = npy_err(path, got, n, kind);
    check(e >= 0 && e <= TOL, name, "max abs error %.3g (%s)", e, path);
}

/* The converter's file (make builds it from the golden .pth). */
static struct ram_model *load_model(void)
{
    struct ram_error err = {{0}};
    struct ram_model *m = NULL;
    char path[512];
    const char *b = getenv("RAM_BUILD");
    snprintf(path, sizeof path, "%s/models/golden_tag2text.ram", b ? b : "build");
    ram_status rc = ram_model_init_from_file(path, NULL, &m, &err);
    check(rc == RAM_OK, "t2t.load_converted_model", "%s", err.msg);
    return rc ? NULL : m;
}

/* The same model built in memory from the .pth (ram_model_init_from_pth +
** ram_t2t_attach) gives the same tags and tag-encoder input. */
static void test_from_pth(const struct ram_model *mf)
{
    struct ram_error err = {{0}};
    struct ram_model *m = NULL;
    struct ram_convert_opts o = {0};
    o.bert_heads = 2;
    ram_status rc = ram_model_init_from_pth(gpath("golden/tag2text/tag2text_tiny.pth"),
                                            gpath("golden/tag2text/tag_list.txt"), NULL, NULL, &o, &m, &err);
    size_t vl = 0;
    char *vocab = rc ? NULL : read_file("models/bert_vocab.txt", &vl);
    if (!rc) rc = vocab ? ram_t2t_attach(m, vocab, vl, NULL, 1, &err) : RAM_ERR_IO;
    free(vocab);
    int same = !rc && m->num_class == mf->num_class && m->t2t.dec.layers == mf->t2t.dec.layers;
    for (int c = 0; same && c < m->num_class; c++)
        same = m->thresholds[c] == mf->thresholds[c] && m->t2t.deleted[c] == mf->t2t.deleted[c];
    for (size_t i = 0; same && i < (size_t)m->num_class * m->tagger.hidden; i++)
        same = m->t2t.fc_w[i] == mf->t2t.fc_w[i] && m->label_embed[i] == mf->label_embed[i];
    check(same, "t2t.pth_model_equals_converted", "%s", rc ? err.msg : "different config, thresholds or weights");
    check(!rc && m->thresholds[2701] == 0.7f && m->thresholds[0] == 0.68f && m->t2t.deleted[127] &&
              m->t2t.deleted[3359] && !m->t2t.deleted[0],
          "t2t.official_thresholds_and_deleted", "thresholds or deleted classes differ from the official ones");
    ram_model_free(m);
}

/* ------------------------------------------------------------------ traces */

struct trace_ctx {
    int img;
    const char *cap; /* "predicted" / "user", NULL while tagging */
    int bad_traces, n_traces;
    char first_bad[160];
    /* beam steps */
    int n_steps, bad_steps;
    char step_msg[200];
    struct npy cs, ct, cb, ns, nt, ni, lv, li, lse, pv, pi, bin;
};

static void note_bad(struct trace_ctx *t, const char *what, double e)
{
    t->bad_traces++;
    if (!t->first_bad[0]) snprintf(t->first_bad, sizeof t->first_bad, "%s: %.3g", what, e);
}

static void on_trace(void *arg, const char *name, int row0, const float *x, int rows, int cols)
{
    struct trace_ctx *t = arg;
    if (!strncmp(name, "tagging_layer", 13)) {
        if (t->img != 0) return; /* layer outputs kept for image 0 only */
        struct npy g;
        if (!npy_load(gpath("golden/tag2text/tag2text/img0_%s.npy", name), &g)) return note_bad(t, name, -1);
        double e = max_abs_diff(x, g.data + (size_t)row0 * cols, (size_t)rows * cols);
        npy_free(&g);
        if (e > worst_err[E_TAGGING]) worst_err[E_TAGGING] = e;
        t->n_traces++;
        if (e > TOL) note_bad(t, name, e);
        return;
    }
    if (!t->cap) return;
    int kind = !strncmp(name, "tag_encoder", 11) ? E_ENCODER : E_DECODER;
    double e =
        npy_err(gpath("golden/tag2text/tag2text/img%d_%s_%s.npy", t->img, t->cap, name), x, (size_t)rows * cols, kind);
    t->n_traces++;
    if (e < 0 || e > TOL) note_bad(t, name, e);
}

static void step_bad(struct trace_ctx *t, int step, const char *what)
{
    if (!t->bad_steps++) snprintf(t->step_msg, sizeof t->step_msg, "step %d: %s", step, what);
}

/* The k largest of row (descending, lower index first among equals). */
static void topk(const float *row, int n, int k, float *v, int *id)
{
    for (int j = 0; j < k; j++) v[j] = -INFINITY, id[j] = -1;
    for (int i = 0; i < n; i++) {
        if (!(row[i] > v[k - 1])) continue;
        int j = k - 1;
        while (j > 0 && row[i] > v[j - 1]) v[j] = v[j - 1], id[j] = id[j - 1], j--;
        v[j] = row[i], id[j] = i;
    }
}

static void on_step(void *arg, int step, const float *logits, const float *logp, int B, int V,
                    const struct ram_beam_step *r)
{
    struct trace_ctx *t = arg;
    t->n_steps++;
    if ((long)step >= t->cs.shape[0]) return step_bad(t, step, "more steps than the golden");
    for (int b = 0; b < B; b++) {
        if (fabs(r->scores_in[b] - t->bin.data[step * B + b]) > score_tol(step)) step_bad(t, step, "beam scores in");
        /* top-10 raw logits, their logsumexp, top-10 processed log-probs */
        float v[10];
        int id[10];
        topk(logits + (size_t)b * V, V, 10, v, id);
        double mx = v[0], s = 0;
        for (int i = 0; i < V; i++) s += exp((double)logits[(size_t)b * V + i] - mx);
        double lse = mx + log(s), e = fabs(lse - t->lse.data[step * B + b]);
        for (int j = 0; j < 10; j++) {
            size_t g = ((size_t)step * B + b) * 10 + j;
            /* ids compared where the golden values are apart (ties of random logits are possible) */
            if (id[j] != t->li.i32[g] && fabs(t->lv.data[g] - v[j]) > TOL) step_bad(t, step, "top-10 logit ids");
            if (fabs(v[j] - t->lv.data[g]) > e) e = fabs(v[j] - t->lv.data[g]);
        }
        topk(logp + (size_t)b * V, V, 10, v, id);
        for (int j = 0; j < 10; j++) {
            size_t g = ((size_t)step * B + b) * 10 + j;
            if (isinf(t->pv.data[g]) && isinf(v[j])) continue;
            if (id[j] != t->pi.i32[g] && fabs(t->pv.data[g] - v[j]) > TOL) step_bad(t, step, "top-10 log-prob ids");
            if (fabs(v[j] - t->pv.data[g]) > e) e = fabs(v[j] - t->pv.data[g]);
        }
        if (e > worst_err[E_LM]) worst_err[E_LM] = e;
        if (e > TOL) step_bad(t, step, "logits/log-probs");
    }
    for (int k = 0; k < r->n_cand; k++) {
        size_t g = (size_t)step * r->n_cand + k;
        double e = fabs(r->cand_score[k] - t->cs.data[g]);
        if (e > worst_err[E_SCORES]) worst_err[E_SCORES] = e;
        if (e > score_tol(step)) step_bad(t, step, "candidate scores");
        if (r->cand_token[k] != t->ct.i32[g] || r->cand_beam[k] != t->cb.i32[g]) step_bad(t, step, "candidates");
    }
    for (int j = 0; j < B; j++) {
        size_t g = (size_t)step * B + j;
        double e = fabs(r->next_score[j] - t->ns.data[g]);
        if (e > worst_err[E_SCORES]) worst_err[E_SCORES] = e;
        if (e > score_tol(step) || r->next_token[j] != t->nt.i32[g] || r->next_beam[j] != t->ni.i32[g])
            step_bad(t, step, "kept beams");
    }
}

static int load_steps(struct trace_ctx *t, int img, const char *cap)
{
    struct npy *a[12] = {&t->cs, &t->ct, &t->cb,  &t->ns, &t->nt, &t->ni,
                         &t->lv, &t->li, &t->lse, &t->pv, &t->pi, &t->bin};
    const char *n[12] = {"candidate_scores", "candidate_tokens",     "candidate_beams",    "next_beam_scores",
                         "next_beam_tokens", "next_beam_indices",    "logits_topk_values", "logits_topk_ids",
                         "logsumexp",        "logprobs_topk_values", "logprobs_topk_ids",  "beam_scores_in"};
    int ok = 1;
    for (int i = 0; i < 12; i++)
        ok &= npy_load(gpath("golden/tag2text/tag2text/img%d_%s_steps_%s.npy", img, cap, n[i]), a[i]);
    return ok;
}

static void free_steps(struct trace_ctx *t)
{
    struct npy *a[12] = {&t->cs, &t->ct, &t->cb,  &t->ns, &t->nt, &t->ni,
                         &t->lv, &t->li, &t->lse, &t->pv, &t->pi, &t->bin};
    for (int i = 0; i < 12; i++) npy_free(a[i]);
}

/* ------------------------------------------------------------------ per image */

static void run_caption(struct ram_t2t_state *st, const struct ram_model *m, const float *emb, int img, const char *cap,
                        const char *tags, const struct jv *golden)
{
    char name[96];
    struct trace_ctx t;
    memset(&t, 0, sizeof t);
    t.img = img;
    t.cap = cap;
    snprintf(name, sizeof name, "t2t.img%d.%s.tag_input", img, cap);
    check(!strcmp(tags, jget(golden, "tag_input")->str), name, "'%s' vs '%s'", tags, jget(golden, "tag_input")->str);

    /* Tag-encoder ids and mask as the tokenizer gives them. */
    int32_t ids[40], mask[40];
    struct ram_error err;
    ram_wordpiece_encode_fixed(m->t2t.wp, tags, strlen(tags), ram_wordpiece_special(m->t2t.wp, RAM_WP_ENC), 40, ids,
                               mask, NULL, &err);
    struct npy gi = {0}, gm = {0};
    int ok = npy_load(gpath("golden/tag2text/tag2text/img%d_%s_tag_encoder_input_ids.npy", img, cap), &gi) &&
             npy_load(gpath("golden/tag2text/tag2text/img%d_%s_tag_encoder_attention_mask.npy", img, cap), &gm) &&
             gi.n == 40 && gm.n == 40;
    for (int i = 0; ok && i < 40; i++) ok = ids[i] == gi.i32[i] && mask[i] == gm.i32[i];
    npy_free(&gi), npy_free(&gm);
    snprintf(name, sizeof name, "t2t.img%d.%s.tag_encoder_ids", img, cap);
    check(ok, name, "ids or mask differ");

    if (!load_steps(&t, img, cap)) {
        snprintf(name, sizeof name, "t2t.img%d.%s.golden_steps", img, cap);
        check(0, name, "cannot read the step arrays");
        free_steps(&t);
        return;
    }
    struct ram_t2t_hooks hk = {NULL, NULL, on_trace, &t, on_step, &t};
    int32_t seq[RAM_T2T_MAX_LEN + 1];
    int n = 0;
    char *caption = NULL;
    ram_status rc = ram_t2t_caption(st, emb, tags, strlen(tags), &hk, seq, &n, &caption, &err);
    snprintf(name, sizeof name, "t2t.img%d.%s.caption_runs", img, cap);
    check(rc == RAM_OK, name, "%s", err.msg);
    snprintf(name, sizeof name, "t2t.img%d.%s.encoder_decoder_layers", img, cap);
    check(t.bad_traces == 0 && t.n_traces >= 8, name, "%d of %d off: %s", t.bad_traces, t.n_traces, t.first_bad);
    snprintf(name, sizeof name, "t2t.img%d.%s.beam_steps", img, cap);
    check(t.bad_steps == 0 && t.n_steps == (int)jget(golden, "n_steps")->num, name, "%d steps (golden %d), %s",
          t.n_steps, (int)jget(golden, "n_steps")->num, t.step_msg);
    struct npy gs;
    ok = npy_load(gpath("golden/tag2text/tag2text/img%d_%s_sequence.npy", img, cap), &gs) && (int)gs.n == n;
    for (int i = 0; ok && i < n; i++) ok = seq[i] == gs.i32[i];
    snprintf(name, sizeof name, "t2t.img%d.%s.sequence", img, cap);
    check(ok, name, "%d ids (golden %zu)", n, gs.n);
    npy_free(&gs);
    snprintf(name, sizeof name, "t2t.img%d.%s.caption", img, cap);
    check(caption && !strcmp(caption, jget(golden, "caption")->str), name, "'%s'", caption ? caption : "");
    ram_free(caption);
    free_steps(&t);
}

static void run_image(struct ram_t2t_state *st, const struct ram_model *m, int img)
{
    char name[96];
    struct ram_error err;
    struct npy in;
    struct jv res;
    size_t jl;
    char *js = read_file(gpath("golden/tag2text/tag2text/img%d_result.json", img), &jl);
    struct jp jp = {js, js + (js ? jl : 0), 0};
    if (!js || !npy_load(gpath("golden/tag2text/preprocess/img%d_input.npy", img), &in)) {
        check(0, "t2t.golden_inputs", "image %d", img);
        free(js);
        return;
    }
    jparse(&jp, &res);
    free(js);
    const size_t nt = (size_t)m->n_image_tokens, vw = (size_t)m->vision_width;
    float *emb = malloc(sizeof(float) * nt * vw), *logits = malloc(sizeof(float) * (size_t)m->num_class);
    ram_status rc = ram_swin_forward(m, in.data, ram_t2t_swin_scratch(st), emb, NULL, &err);
    snprintf(name, sizeof name, "t2t.img%d.image_embeds", img);
    if (rc)
        check(0, name, "%s", err.msg);
    else
        check_npy(name, gpath("golden/tag2text/tag2text/img%d_image_embeds.npy", img), emb, nt * vw, E_EMBED);

    struct trace_ctx t;
    memset(&t, 0, sizeof t);
    t.img = img;
    struct ram_t2t_hooks hk = {NULL, NULL, on_trace, &t, NULL, NULL};
    rc = ram_t2t_tag_logits(st, emb, logits, &hk, &err);
    snprintf(name, sizeof name, "t2t.img%d.tag_logits", img);
    if (rc)
        check(0, name, "%s", err.msg);
    else
        check_npy(name, gpath("golden/tag2text/tag2text/img%d_tagging_logits.npy", img), logits, (size_t)m->num_class,
                  E_LOGITS);
    if (img == 0)
        check(t.bad_traces == 0 && t.n_traces == 2 * ((m->num_class + 255) / 256), "t2t.img0.tagging_layers",
              "%d of %d off: %s", t.bad_traces, t.n_traces, t.first_bad);
    for (int c = 0; c < m->num_class; c++) logits[c] = ram_sigmoid(logits[c]);
    snprintf(name, sizeof name, "t2t.img%d.tag_probs", img);
    check_npy(name, gpath("golden/tag2text/tag2text/img%d_tagging_probs.npy", img), logits, (size_t)m->num_class,
              E_LOGITS);
    char *tags = NULL;
    rc = ram_t2t_tag_string(m, logits, &tags, &err);
    snprintf(name, sizeof name, "t2t.img%d.tag_string", img);
    check(!rc && !strcmp(tags, jget(&res, "tag_string")->str), name, "'%s'", tags ? tags : err.msg);

    const struct jv *caps = jget(&res, "captions");
    for (int k = 0; caps && k < caps->n; k++) {
        const struct jv *c = &caps->items[k];
        const char *kind = jget(c, "kind")->str;
        char *use = NULL;
        if (!strcmp(kind, "user")) {
            const struct jv *u = jget(&res, "user_tags_argument");
            ram_t2t_user_tags(u->str, u->len, &use, &err);
        }
        run_caption(st, m, emb, img, kind, use ? use : tags, c);
        ram_free(use);
    }
    ram_free(tags);
    free(emb);
    free(logits);
    npy_free(&in);
    jfree(&res);
}

/* The int8 decoder (ram_t2t_quantize_decoder, what int8 model files get at
** load: weight-only int8, gemv_w8.h) on a second copy of the model, against
** the fp32 one, for every golden image and both tag sources (the image
** embeddings and tag strings are the fp32 ones: the int8 path leaves the
** Swin, the tagging head and the tag encoder alone). Checked: every decoder
** matrix has its int8 form and the encoder's do not; a new state decodes
** verified (RAM_T2T_DECODE_VERIFIED), fp32 and int8 can be chosen, int8 and
** verified on an fp32 model cannot.
**   INT8 alone: the step-0 logits (all 30,524) within INT8_LOGIT_TOL of the
** largest fp32 logit (measured 2.5 %: the tiny model's width of 32 is
** int8's worst case; a wrong code, scale or bias is off by whole units), a
** well-formed caption. Identical captions are counted, not required: the
** goldens' beam decisions are 2e-4 apart, far below what 8-bit weights move
** a logit (3 of 8 identical).
**   VERIFIED: every step's logits, log-probs and decisions, the ids and the
** caption bit for bit those of the fp32 model, whether the draft held or
** not (drafted and confirmed steps are counted); FP32 on the quantized
** model too.
**   Forced divergence: a draft hook makes the draft take an absurd token at
** step k (1, the middle and the last step before the draft's own first
** divergence): the result is still fp32's, and when a chunk drafted step k
** (always for k = 1) the first divergence is at exactly k. */
/* The decoder's packed fp32 matrices (ram_t2t_prepack at load) change no
** bit: a copy loaded with RAM_PREPACK=0 (products pack on the fly) gives
** the same step logits, log-probs, beams and ids on golden image 0. */
static void test_packed_decoder(struct ram_t2t_state *st32, const struct ram_model *m32)
{
    setenv("RAM_PREPACK", "0", 1);
    struct ram_model *u = load_model();
    unsetenv("RAM_PREPACK");
    struct ram_t2t_state *st = NULL;
    struct ram_error err;
    struct npy in;
    if (!u) return;
    ram_status rc = ram_t2t_state_init(u, &st, &err);
    check(!rc && m32->t2t.dec_packed && !u->t2t.dec_packed, "t2t.packed.made_at_load", "%s",
          rc ? err.msg : "packed panels where none were expected, or none");
    float *emb = malloc(sizeof(float) * (size_t)u->n_image_tokens * u->vision_width);
    int loaded = !rc && npy_load(gpath("golden/tag2text/preprocess/img%d_input.npy", 0), &in);
    if (!rc && !loaded) rc = RAM_ERR_IO, snprintf(err.msg, sizeof err.msg, "no golden input");
    if (!rc) rc = ram_swin_forward(m32, in.data, ram_t2t_swin_scratch(st32), emb, NULL, &err);
    if (loaded) npy_free(&in);
    struct t2t_run a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    if (!rc) rc = t2t_run(st32, emb, "dog | grass", &a, &err);
    if (!rc) rc = t2t_run(st, emb, "dog | grass", &b, &err);
    check(!rc && t2t_run_same(&a, &b), "t2t.packed.same_bits_unpacked", "%s", rc ? err.msg : "results differ");
    t2t_run_free(&a), t2t_run_free(&b);
    free(emb);
    ram_t2t_state_free(st);
    ram_model_free(u);
}

#define INT8_LOGIT_TOL 0.06
static void test_int8_decoder(struct ram_t2t_state *st32, const struct ram_model *m32)
{
    struct ram_model *q = load_model();
    struct ram_t2t_state *st = NULL;
    struct ram_error err;
    if (!q) return;
    ram_status rc = ram_t2t_quantize_decoder(q, &err);
    if (!rc) rc = ram_t2t_quantize_decoder(q, &err); /* again: a no-op */
    if (!rc) rc = ram_t2t_state_init(q, &st, &err);
    const struct ram_bert_layer_tensors *l0 = q->t2t.dec_w.layers;
    check(!rc && l0 && l0[0].sq_w8 && l0[0].co_w8 && l0[0].o_w8 && q->t2t.dec_w.layers[q->t2t.dec.layers - 1].i_w8 &&
              q->t2t.lm_word_w8 && q->t2t.lm_dense_w8 && !q->t2t.enc_w.layers[0].sq_w8 && !m32->t2t.lm_word_w8,
          "t2t.int8.decoder_quantized", "%s", rc ? err.msg : "a decoder matrix has no int8 form");
    if (rc) {
        ram_model_free(q);
        return;
    }
    struct ram_error e2;
    check(ram_t2t_get_decoder(st) == RAM_T2T_DECODE_VERIFIED && ram_t2t_get_decoder(st32) == RAM_T2T_DECODE_FP32 &&
              ram_t2t_set_decoder(st32, RAM_T2T_DECODE_INT8, &e2) == RAM_ERR_UNSUPPORTED &&
              ram_t2t_set_decoder(st32, RAM_T2T_DECODE_VERIFIED, &e2) == RAM_ERR_UNSUPPORTED &&
              ram_t2t_set_decoder(st, (enum ram_t2t_decoder)7, &e2) == RAM_ERR_ARG &&
              ram_t2t_get_decoder(st32) == RAM_T2T_DECODE_FP32,
          "t2t.int8.decoder_choice", "state %d, fp32 state %d", (int)ram_t2t_get_decoder(st),
          (int)ram_t2t_get_decoder(st32));
    const int V = q->t2t.dec.vocab, eos = ram_wordpiece_special(q->t2t.wp, RAM_WP_SEP);
    int same = 0, total = 0, vsame = 0, held = 0, forced = 0;
    double worst = 0;
    for (int img = 0; !rc && img < 4; img++) {
        struct npy in;
        float *emb = malloc(sizeof(float) * (size_t)q->n_image_tokens * q->vision_width);
        float *p = malloc(sizeof(float) * (size_t)q->num_class);
        char *tags = NULL;
        if (!npy_load(gpath("golden/tag2text/preprocess/img%d_input.npy", img), &in)) {
            check(0, "t2t.int8.inputs", "image %d", img);
            free(emb), free(p);
            break;
        }
        rc = ram_swin_forward(m32, in.data, ram_t2t_swin_scratch(st32), emb, NULL, &err);
        if (!rc) rc = ram_t2t_tag_logits(st32, emb, p, NULL, &err);
        for (int c = 0; !rc && c < q->num_class; c++) p[c] = ram_sigmoid(p[c]);
        if (!rc) rc = ram_t2t_tag_string(m32, p, &tags, &err);
        for (int k = 0; !rc && k < 2; k++) {
            const char *t = k ? "dog, grass, sunny beach" : tags, *src = k ? "user" : "predicted";
            char *use = NULL, name[80];
            ram_t2t_user_tags(t, strlen(t), &use, &err);
            struct t2t_run r32, r8, rv, rf;
            rc = t2t_run(st32, emb, use, &r32, &err);
            if (!rc) rc = ram_t2t_set_decoder(st, RAM_T2T_DECODE_INT8, &err);
            if (!rc) rc = t2t_run(st, emb, use, &r8, &err);
            double e = 0, top = 0;
            for (int i = 0; !rc && i < V; i++)
                e = fmax(e, fabs((double)r32.logits[i] - r8.logits[i])), top = fmax(top, fabs(r32.logits[i]));
            e /= top;
            worst = fmax(worst, e);
            snprintf(name, sizeof name, "t2t.int8.img%d.%s.step0_logits", img, src);
            check(!rc && e <= INT8_LOGIT_TOL, name, "max |int8 - fp32| / max |fp32| %.4g (%s)", e, rc ? err.msg : "");
            snprintf(name, sizeof name, "t2t.int8.img%d.%s.caption", img, src);
            check(!rc && r8.caption && r8.n_ids >= 10 && r8.n_ids <= RAM_T2T_MAX_LEN && r8.ids[0] == r32.ids[0] &&
                      r8.steps >= 6 && r8.stats.decoder == RAM_T2T_DECODE_INT8,
                  name, "%d ids '%s'", r8.n_ids, r8.caption ? r8.caption : err.msg);
            same += !rc && r32.n_ids == r8.n_ids && !memcmp(r32.ids, r8.ids, sizeof(int32_t) * (size_t)r32.n_ids);
            total++;

            /* Verified: fp32's bits, whatever the draft did. */
            if (!rc) rc = ram_t2t_set_decoder(st, RAM_T2T_DECODE_VERIFIED, &err);
            if (!rc) rc = t2t_run(st, emb, use, &rv, &err);
            snprintf(name, sizeof name, "t2t.verified.img%d.%s.same_as_fp32", img, src);
            check(!rc && t2t_run_same(&r32, &rv) && rv.stats.decoder == RAM_T2T_DECODE_VERIFIED &&
                      rv.stats.draft_steps >= 1 && rv.stats.draft_held <= rv.stats.draft_steps &&
                      rv.stats.steps == r32.steps,
                  name, "%d / %d steps, first divergence at step %d: '%s' vs fp32 '%s' (%s)", rv.steps, r32.steps,
                  rv.stats.first_divergence, rv.caption ? rv.caption : "", r32.caption ? r32.caption : "",
                  rc ? err.msg : "");
            vsame += !rc && t2t_run_same(&r32, &rv);
            held += !rc && rv.stats.first_divergence < 0;
            printf("# verified img%d %s: %d steps, %d drafted, %d of them confirmed, first divergence at step %d\n",
                   img, src, rv.stats.steps, rv.stats.draft_steps, rv.stats.draft_held, rv.stats.first_divergence);
            /* FP32 chosen on the quantized model. */
            if (!rc && img == 0) {
                rc = ram_t2t_set_decoder(st, RAM_T2T_DECODE_FP32, &err);
                if (!rc) rc = t2t_run(st, emb, use, &rf, &err);
                snprintf(name, sizeof name, "t2t.verified.img0.%s.fp32_chosen", src);
                check(!rc && t2t_run_same(&r32, &rf) && rf.stats.decoder == RAM_T2T_DECODE_FP32, name, "%s",
                      rc ? err.msg : "differs from the fp32 model's");
                t2t_run_free(&rf);
                if (!rc) rc = ram_t2t_set_decoder(st, RAM_T2T_DECODE_VERIFIED, &err);
            }
            /* Forced divergence before the draft's own (its decisions up to
            ** step n - 1 hold): at step 1 (always drafted: step 0 is fp32's)
            ** and at later steps if a chunk drafts them. */
            const int n = rv.stats.first_divergence < 0 ? rv.stats.steps : rv.stats.first_divergence;
            const int at[3] = {1, n / 2, n - 1};
            for (int f = 0; !rc && f < 3 && n >= 2; f++) {
                if (f && at[f] <= at[f - 1]) continue;
                struct t2t_force force = {at[f], eos, 0};
                ram_t2t_set_draft_hook(st, t2t_force_step, &force);
                rc = t2t_run(st, emb, use, &rf, &err);
                ram_t2t_set_draft_hook(st, NULL, NULL);
                snprintf(name, sizeof name, "t2t.verified.img%d.%s.forced_at_%d", img, src, at[f]);
                const int want = force.hit ? at[f] : rv.stats.first_divergence;
                check(!rc && force.hit <= 1 && (force.hit || f) && rf.stats.first_divergence == want &&
                          t2t_run_same(&r32, &rf),
                      name, "first divergence at step %d (want %d), hook hit %d, '%s' vs fp32 '%s' (%s)",
                      rf.stats.first_divergence, want, force.hit, rf.caption ? rf.caption : "",
                      r32.caption ? r32.caption : "", rc ? err.msg : "");
                forced += force.hit;
                t2t_run_free(&rf);
            }
            t2t_run_free(&r32), t2t_run_free(&r8), t2t_run_free(&rv);
            ram_free(use);
        }
        check(rc == RAM_OK, "t2t.int8.runs", "image %d: %s", img, err.msg);
        ram_free(tags);
        free(emb), free(p);
        npy_free(&in);
    }
    printf("# int8 decoder: step-0 logits within %.3g of the largest fp32 logit; %d of %d captions identical to fp32\n",
           worst, same, total);
    printf("# verified int8 decoder: %d of %d captions fp32's bit for bit, the draft held to the end in %d; "
           "%d forced divergences\n",
           vsame, total, held, forced);
    ram_t2t_state_free(st);
    ram_model_free(q);
}

/* Full logits of image 0's predicted caption at steps 0 and 1 (every
** vocabulary entry, not only the top 10). */
struct full_ctx {
    double e0, e1;
};

static void on_step_full(void *arg, int step, const float *logits, const float *logp, int B, int V,
                         const struct ram_beam_step *r)
{
    struct full_ctx *f = arg;
    if (step == 0) {
        struct npy g;
        if (npy_load(gpath("golden/tag2text/tag2text/img0_predicted_decoder_step0_logits.npy"), &g) &&
            g.n == 4 * (size_t)V)
            f->e0 = max_abs_diff(logits, g.data + 3 * (size_t)V, (size_t)V);
        npy_free(&g);
    } else if (step == 1) {
        f->e1 = npy_err(gpath("golden/tag2text/tag2text/img0_predicted_step1_logits.npy"), logits, (size_t)B * V, E_LM);
    }
}

static void test_full_logits(struct ram_t2t_state *st, const struct ram_model *m)
{
    struct npy in;
    struct ram_error err;
    if (!npy_load(gpath("golden/tag2text/preprocess/img0_input.npy"), &in)) return;
    float *emb = malloc(sizeof(float) * (size_t)m->n_image_tokens * m->vision_width);
    float *p = malloc(sizeof(float) * (size_t)m->num_class);
    char *tags = NULL;
    struct full_ctx f = {-1, -1};
    struct ram_t2t_hooks hk = {NULL, NULL, NULL, NULL, on_step_full, &f};
    int ok = !ram_swin_forward(m, in.data, ram_t2t_swin_scratch(st), emb, NULL, &err) &&
             !ram_t2t_tag_logits(st, emb, p, NULL, &err);
    for (int c = 0; ok && c < m->num_class; c++) p[c] = ram_sigmoid(p[c]);
    ok = ok && !ram_t2t_tag_string(m, p, &tags, &err) &&
         !ram_t2t_caption(st, emb, tags, strlen(tags), &hk, NULL, NULL, NULL, &err);
    if (f.e0 > worst_err[E_LM]) worst_err[E_LM] = f.e0;
    check(ok && f.e0 >= 0 && f.e0 <= TOL && f.e1 >= 0 && f.e1 <= TOL, "t2t.img0.full_logits_steps_0_1",
          "step 0 %.3g, step 1 %.3g", f.e0, f.e1);
    ram_free(tags);
    free(emb), free(p);
    npy_free(&in);
}

/* The public API: ram_state / ram_caption_image from the image files (the
** engine's preprocessing reproduces PIL's), predicted and user tags. */
static void test_public_api(const struct ram_model *m)
{
    struct ram_error err;
    struct ram_state *st = NULL;
    ram_status rc = ram_state_init(m, &st, &err);
    check(rc == RAM_OK, "t2t.api.state_init", "%s", err.msg);
    if (rc) return;
    const char *files[4] = {"golden/images/img0.jpg", "golden/images/img1.png", "golden/images/img2.jpg",
                            "golden/images/img3.png"};
    int good = 0, total = 0;
    char msg[300] = "";
    for (int img = 0; img < 4; img++) {
        size_t n, jl;
        void *data = read_file(data_path(files[img]), &n);
        char *js = read_file(gpath("golden/tag2text/tag2text/img%d_result.json", img), &jl);
        struct jp jp = {js, js + (js ? jl : 0), 0};
        struct jv res;
        jparse(&jp, &res);
        const struct jv *caps = jget(&res, "captions");
        for (int k = 0; caps && k < caps->n; k++) {
            const struct jv *c = &caps->items[k];
            int user = !strcmp(jget(c, "kind")->str, "user");
            const struct jv *u = jget(&res, "user_tags_argument");
            char *cap = NULL, *used = NULL;
            rc = ram_caption_image(st, data, n, NULL, user ? u->str : NULL, user ? u->len : 0, &cap, &used, &err);
            int ok = !rc && !strcmp(cap, jget(c, "caption")->str) && !strcmp(used, jget(c, "tag_input")->str);
            good += ok, total++;
            if (!ok && strlen(msg) < 200)
                snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " img%d %s: %s", img, user ? "user" : "predicted",
                         rc ? err.msg : cap);
            ram_string_free(cap);
            ram_string_free(used);
        }
        if (img == 0) {
            /* Tags through ram_tag_image with the thresholds the SQL side uses. */
            float *p = malloc(sizeof(float) * (size_t)m->num_class);
            rc = ram_tag_image(st, data, n, NULL, NULL, p, &err);
            int sel = 0, ok = rc == RAM_OK;
            for (int c = 0; ok && c < m->num_class; c++) sel += p[c] > ram_model_threshold(m, c);
            check(ok && sel == (int)jget(&res, "selected")->n && ram_model_threshold(m, 127) == 1.0f &&
                      ram_model_threshold(m, 2701) == 0.7f,
                  "t2t.api.tag_image_selection", "%d selected (golden %d)", sel, jget(&res, "selected")->n);
            free(p);
            char *cap = NULL;
            rc = ram_caption_image(st, data, n, NULL, "None", 4, &cap, NULL, &err);
            check(!rc && cap && !strcmp(cap, jget(&caps->items[0], "caption")->str), "t2t.api.none_means_predicted",
                  "%s", rc ? err.msg : cap);
            ram_string_free(cap);
            rc = ram_caption_image(st, "not an image", 12, NULL, NULL, 0, &cap, NULL, &err);
            check(rc == RAM_ERR_IMAGE && !cap, "t2t.api.bad_image", "rc %d", rc);
        }
        jfree(&res);
        free(js);
        free(data);
    }
    check(good == total && total == 7, "t2t.api.captions_from_image_files", "%d of %d:%s", good, total, msg);
    ram_state_free(st);

    /* A RAM model has no captions. */
    char path[512];
    const char *b = getenv("RAM_BUILD");
    snprintf(path, sizeof path, "%s/models/golden_ram.ram", b ? b : "build");
    struct ram_model *rm = NULL;
    struct ram_state *rs = NULL;
    char *cap = NULL;
    if (!ram_model_init_from_file(path, NULL, &rm, &err) && !ram_state_init(rm, &rs, &err)) {
        rc = ram_caption_image(rs, "x", 1, NULL, NULL, 0, &cap, NULL, &err);
        check(rc == RAM_ERR_UNSUPPORTED && !cap, "t2t.api.ram_model_has_no_captions", "rc %d", rc);
    } else {
        check(0, "t2t.api.ram_model_has_no_captions", "%s", err.msg);
    }
    ram_state_free(rs);
    ram_model_free(rm);
}

/* Checkpoint key aliases, as the official loader accepts them: the tagging
** head under its older name vision_multi.*, or only as the tag encoder's
** layers 0-1 (the same tensors). Keys the model does not use (position_ids,
** the buffers) are ignored, as load_state_dict(strict=False) does. */
static const struct ram_tensor_view *t2t_as_vm(void *ctx, const char *name)
{
    char alt[200];
    if (!strncmp(name, "tagging_head.", 13)) return NULL;
    if (!strncmp(name, "vision_multi.", 13)) {
        snprintf(alt, sizeof alt, "tagging_head.%s", name + 13);
        return ram_pth_find(ctx, alt);
    }
    return ram_pth_find(ctx, name);
}
static const struct ram_tensor_view *t2t_hide_th(void *ctx, const char *name)
{
    return strncmp(name, "tagging_head.", 13) ? ram_pth_find(ctx, name) : NULL;
}

static void test_aliases(void)
{
    struct {
        const char *what;
        const struct ram_tensor_view *(*find)(void *, const char *);
    } cases[] = {{"t2t.alias.vision_multi", t2t_as_vm}, {"t2t.alias.tag_encoder_layers", t2t_hide_th}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct ram_error err = {{0}};
        struct ram_pth *p = NULL;
        struct ram_model *m = ram_calloc(1, sizeof *m);
        size_t tl = 0;
        char *tags = read_file(gpath("golden/tag2text/tag_list.txt"), &tl);
        ram_status rc = ram_pth_open(gpath("golden/tag2text/tag2text_tiny.pth"), &p, &err);
        struct ram_tensor_source src = {cases[c].find, p};
        struct ram_convert_opts o = {0, 0, 0, 0, 2};
        if (!rc) rc = ram_model_set_vocab(m, 1, tags, tl, NULL, 0, NULL, 0, NULL, &err);
        if (!rc) rc = ram_model_infer_config(m, &src, m->num_class, &o, &err);
        if (!rc) rc = ram_model_bind(m, &src, &err);
        int same = rc == RAM_OK && m->kind == RAM_KIND_TAG2TEXT && m->tagger.n_layers == 2;
        for (int l = 0; same && l < 2; l++) {
            char key[128];
            snprintf(key, sizeof key, "tagging_head.encoder.layer.%d.output.dense.weight", l);
            const struct ram_tensor_view *v = ram_pth_find(p, key);
            same = v && !memcmp(v->data, m->tagger_layers[l].o_w, v->nbytes) &&
                   m->t2t.enc_w.layers[l].o_w == m->tagger_layers[l].o_w;
        }
        check(same, cases[c].what, "rc %d %s", rc, rc ? err.msg : "");
        free(tags);
        ram_model_free(m);
        ram_pth_close(p);
    }
}

/* A model file whose BERT vocabulary does not fit its embeddings is refused
** at load with a message that says so; the file written from the loaded
** model loads back to the same captions' inputs. */
static void test_file_checks(struct ram_model *m)
{
    struct ram_error err;
    char path[] = "/tmp/t2t_vocab_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    close(fd);
    size_t keep = m->t2t.vocab_len, cut = 0;
    for (int lines = 0; cut < keep && lines < 1000; cut++) lines += m->t2t.vocab_text[cut] == '\n';
    m->t2t.vocab_len = cut;
    ram_status rc = ram_model_write(m, path, NULL, NULL, &err);
    m->t2t.vocab_len = keep;
    struct ram_model *bad = NULL;
    if (!rc) rc = ram_model_init_from_file(path, NULL, &bad, &err);
    check(rc == RAM_ERR_FORMAT && !bad && strstr(err.msg, "BERT vocabulary"), "t2t.file.vocab_mismatch_refused",
          "rc %d: %s", rc, err.msg);
    ram_model_free(bad);
    rc = ram_model_write(m, path, NULL, NULL, &err);
    struct ram_model *again = NULL;
    if (!rc) rc = ram_model_init_from_file(path, NULL, &again, &err);
    int same =
        !rc && again->t2t.vocab_len == m->t2t.vocab_len && again->num_class == m->num_class &&
        !memcmp(again->t2t.deleted, m->t2t.deleted, (size_t)m->num_class) &&
        !memcmp(again->thresholds, m->thresholds, sizeof(float) * (size_t)m->num_class) &&
        !memcmp(again->t2t.dec_w.word, m->t2t.dec_w.word, sizeof(float) * (size_t)m->t2t.dec.vocab * m->t2t.dec.hidden);
    check(same, "t2t.file.rewrite_round_trip", "%s", rc ? err.msg : "the rewritten file differs");
    ram_model_free(again);
    unlink(path);
}

static int stop_now(void *arg)
{
    int *n = arg;
    return ++*n > 3;
}

static void test_errors(struct ram_t2t_state *st, const struct ram_model *m)
{
    struct ram_error err;
    float *emb = calloc((size_t)m->n_image_tokens * m->vision_width, sizeof(float));
    int calls = 0;
    struct ram_t2t_hooks hk = {stop_now, &calls, NULL, NULL, NULL, NULL};
    ram_status rc = ram_t2t_caption(st, emb, "dog", 3, &hk, NULL, NULL, NULL, &err);
    check(rc == RAM_ERR_INTERRUPTED, "t2t.interrupted_between_steps", "rc %d", rc);
    /* After an interruption the state works again. */
    int n = 0;
    rc = ram_t2t_caption(st, emb, "", 0, NULL, NULL, &n, NULL, &err);
    check(rc == RAM_OK && n >= RAM_T2T_MIN_LEN, "t2t.empty_tags_caption", "rc %d n %d", rc, n);
    char *u = NULL;
    rc = ram_t2t_user_tags("a, b,c", 6, &u, &err);
    check(rc == RAM_OK && !strcmp(u, "a |  b | c"), "t2t.user_tags_commas", "'%s'", u ? u : "");
    ram_free(u);
    struct ram_t2t_state *s2 = NULL;
    struct ram_model fake;
    memset(&fake, 0, sizeof fake);
    fake.kind = RAM_KIND_RAM;
    check(ram_t2t_state_init(&fake, &s2, &err) == RAM_ERR_UNSUPPORTED && !s2, "t2t.state_needs_tag2text", "%s",
          err.msg);
    free(emb);
}

int main(void)
{
    (void)check_close_npy;
    struct ram_model *m = load_model();
    if (!m) return harness_exit();
    struct ram_error err;
    struct ram_t2t_state *st = NULL;
    ram_status rc = ram_t2t_state_init(m, &st, &err);
    check(rc == RAM_OK, "t2t.state_init", "%s", err.msg);
    if (!rc) {
        check(m->num_class == 3429 && m->t2t.enc.layers == 3 && m->t2t.dec.heads == 2 && m->tagger.n_heads == 4,
              "t2t.config", "classes %d layers %d", m->num_class, m->t2t.enc.layers);
        for (int img = 0; img < 4; img++) run_image(st, m, img);
        test_full_logits(st, m);
        test_from_pth(m);
        test_public_api(m);
        test_file_checks(m);
        test_aliases();
        test_errors(st, m);
        test_int8_decoder(st, m);
        test_packed_decoder(st, m);
        for (int k = 0; k < E_N; k++) printf("# max abs error, %s: %.3g\n", err_names[k], worst_err[k]);
    }
    ram_t2t_state_free(st);
    ram_model_free(m);
    return harness_exit();
}
