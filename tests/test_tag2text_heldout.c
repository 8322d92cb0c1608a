/*
** test_tag2text_heldout.c — Tag2Text on a held-out config that shares no
** size with the golden model (build/models/heldout_tag2text.ram, made by
** `ram-convert --random tests/data/tag2text_heldout.json`: image 96, window
** 3, 3 Swin stages, 50 classes, tagging head 24 wide with 3 heads and 1
** layer, tag encoder 2 layers x 4 heads, decoder 20 wide, 3 layers, 5 heads,
** FFN 36) against a double-precision reference written here from
** docs/TAG2TEXT.md: the tagging head and GroupWiseLinear logits, the tag
** encoder (padding mask), and the decoder's next-token logits at the first
** decoding steps, the reference recomputing each beam's whole sequence with
** a causal mask (no cache), so that the engine's key/value caches and their
** reordering between beams are checked too. The Swin output of the engine
** is the reference's input (the Swin has held-out tests of its own).
*/
#include "harness.h"
#include "t2t_verify.h"

#include "bert.h"
#include "internal.h"
#include "model.h"
#include "ops.h"
#include "swin.h"
#include "tag2text.h"
#include "tagger.h"
#include "weights.h"
#include "wordpiece.h"

#define TOL 1e-4
#define REF_STEPS 6

/* ------------------------------------------------------------------ double reference */

static void d_linear(const double *x, int rows, int in, const float *W, const float *b, int out, double *y)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < in; i++) s += x[(size_t)r * in + i] * W[(size_t)o * in + i];
            y[(size_t)r * out + o] = s;
        }
}

static void d_ln(double *x, int rows, int cols, const float *w, const float *b, double eps)
{
    for (int r = 0; r < rows; r++) {
        double *v = x + (size_t)r * cols, m = 0, var = 0;
        for (int i = 0; i < cols; i++) m += v[i];
        m /= cols;
        for (int i = 0; i < cols; i++) var += (v[i] - m) * (v[i] - m);
        var /= cols;
        for (int i = 0; i < cols; i++) v[i] = (v[i] - m) / sqrt(var + eps) * w[i] + b[i];
    }
}

/* LN(Attn(H, E) Wo + bo + H) into H: queries from H (rows), keys/values from
** E (n_kv rows of kvw); key_bias (n_kv, may be NULL) added to the scores;
** causal: row i sees keys j <= i. */
static void d_attn(const struct ram_bert_attn_w *w, double *H, int rows, const double *E, int n_kv, int kvw, int hid,
                   int heads, const double *key_bias, int causal, double eps)
{
    const int dh = hid / heads;
    double *Q = malloc(sizeof(double) * rows * hid), *K = malloc(sizeof(double) * n_kv * hid);
    double *V = malloc(sizeof(double) * n_kv * hid), *C = calloc((size_t)rows * hid, sizeof(double));
    double *s = malloc(sizeof(double) * n_kv), *O = malloc(sizeof(double) * rows * hid);
    d_linear(H, rows, hid, w->q_w, w->q_b, hid, Q);
    d_linear(E, n_kv, kvw, w->k_w, w->k_b, hid, K);
    d_linear(E, n_kv, kvw, w->v_w, w->v_b, hid, V);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < rows; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < n_kv; j++) {
                double d = 0;
                for (int k = 0; k < dh; k++) d += Q[(size_t)i * hid + h * dh + k] * K[(size_t)j * hid + h * dh + k];
                d = d / sqrt((double)dh) + (key_bias ? key_bias[j] : 0) + (causal && j > i ? -10000.0 : 0);
                s[j] = d;
                if (d > mx) mx = d;
            }
            for (int j = 0; j < n_kv; j++) sum += (s[j] = exp(s[j] - mx));
            for (int j = 0; j < n_kv; j++)
                for (int k = 0; k < dh; k++)
                    C[(size_t)i * hid + h * dh + k] += s[j] / sum * V[(size_t)j * hid + h * dh + k];
        }
    d_linear(C, rows, hid, w->o_w, w->o_b, hid, O);
    for (size_t i = 0; i < (size_t)rows * hid; i++) H[i] += O[i];
    d_ln(H, rows, hid, w->ln_w, w->ln_b, eps);
    free(Q), free(K), free(V), free(C), free(s), free(O);
}

static void d_ffn(const struct ram_bert_layer *L, double *H, int rows)
{
    double *F = malloc(sizeof(double) * rows * L->intermediate), *O = malloc(sizeof(double) * rows * L->hidden);
    d_linear(H, rows, L->hidden, L->i_w, L->i_b, L->intermediate, F);
    for (size_t i = 0; i < (size_t)rows * L->intermediate; i++) F[i] = 0.5 * F[i] * (1 + erf(F[i] / sqrt(2.0)));
    d_linear(F, rows, L->intermediate, L->o_w, L->o_b, L->hidden, O);
    for (size_t i = 0; i < (size_t)rows * L->hidden; i++) H[i] += O[i];
    d_ln(H, rows, L->hidden, L->ln_w, L->ln_b, L->eps);
    free(F), free(O);
}

/* One BERT layer: self-attention over H itself (if any), cross-attention to E, FFN. */
static void d_layer(const struct ram_bert_layer *L, double *H, int rows, const double *E, int n_kv,
                    const double *self_bias)
{
    if (L->has_self) {
        double *copy = malloc(sizeof(double) * rows * L->hidden);
        memcpy(copy, H, sizeof(double) * rows * L->hidden);
        d_attn(&L->self, H, rows, copy, rows, L->hidden, L->hidden, L->heads, self_bias, L->causal, L->eps);
        free(copy);
    }
    if (L->has_cross) d_attn(&L->cross, H, rows, E, n_kv, L->kv_width, L->hidden, L->heads, NULL, 0, L->eps);
    d_ffn(L, H, rows);
}

/* LN(word[ids] + pos[0..n)) of a stack. */
static void d_embed(const struct ram_bert_config *c, const struct ram_bert_stack_w *w, const int32_t *ids, int n,
                    double *H)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c->hidden; k++)
            H[(size_t)i * c->hidden + k] =
                (double)w->word[(size_t)ids[i] * c->hidden + k] + w->pos[(size_t)i * c->hidden + k];
    d_ln(H, n, c->hidden, w->ln_w, w->ln_b, c->eps);
}

/* Next-token logits after tokens[0..n), recomputing the whole sequence. */
static void d_decoder_logits(const struct ram_model *m, const double *enc, const int32_t *tok, int n, double *logits)
{
    const struct ram_t2t *t = &m->t2t;
    const int Hd = t->dec.hidden;
    double *H = malloc(sizeof(double) * n * Hd), x[256], y[256];
    d_embed(&t->dec, &t->dec_w, tok, n, H);
    for (int l = 0; l < t->dec.layers; l++) {
        struct ram_bert_layer L;
        ram_t2t_layer_view(&t->dec, &t->dec_w, l, 1, 0, &L);
        d_layer(&L, H, n, enc, RAM_T2T_TAG_LEN, NULL);
    }
    memcpy(x, H + (size_t)(n - 1) * Hd, sizeof(double) * Hd);
    d_linear(x, 1, Hd, t->lm_dense_w, t->lm_dense_b, Hd, y);
    for (int k = 0; k < Hd; k++) y[k] = 0.5 * y[k] * (1 + erf(y[k] / sqrt(2.0)));
    d_ln(y, 1, Hd, t->lm_ln_w, t->lm_ln_b, t->dec.eps);
    d_linear(y, 1, Hd, t->dec_w.word, t->lm_bias, t->dec.vocab, logits);
    free(H);
}

/* ------------------------------------------------------------------ engine vs reference */

struct ctx {
    const struct ram_model *m;
    double *enc;    /* reference tag encoder output (40 x He) */
    double enc_err; /* engine's last tag-encoder layer vs the reference */
    int32_t beams[RAM_T2T_BEAMS][RAM_T2T_MAX_LEN];
    int len;
    double logit_err;
    int steps_checked;
};

static void on_trace(void *arg, const char *name, int row0, const float *x, int rows, int cols)
{
    struct ctx *c = arg;
    char last[40];
    snprintf(last, sizeof last, "tag_encoder_layer%d_out", c->m->t2t.enc.layers - 1);
    if (strcmp(name, last)) return;
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        double e = fabs(x[i] - c->enc[i]);
        if (e > c->enc_err || isnan(e)) c->enc_err = isnan(e) ? INFINITY : e;
    }
}

static void on_step(void *arg, int step, const float *logits, const float *logp, int B, int V,
                    const struct ram_beam_step *r)
{
    struct ctx *c = arg;
    if (step < REF_STEPS) {
        double *ref = malloc(sizeof(double) * V);
        for (int b = 0; b < B; b++) {
            d_decoder_logits(c->m, c->enc, c->beams[b], c->len, ref);
            for (int v = 0; v < V; v++) {
                double e = fabs(logits[(size_t)b * V + v] - ref[v]);
                if (e > c->logit_err || isnan(e)) c->logit_err = isnan(e) ? INFINITY : e;
            }
        }
        free(ref);
        c->steps_checked++;
    }
    int32_t nb[RAM_T2T_BEAMS][RAM_T2T_MAX_LEN];
    for (int j = 0; j < B; j++) {
        memcpy(nb[j], c->beams[r->next_beam[j]], sizeof(int32_t) * c->len);
        nb[j][c->len] = r->next_token[j];
    }
    memcpy(c->beams, nb, sizeof nb);
    c->len++;
}

/* Random weights (N(0, 0.02)-like) make every attention nearly uniform, so
** that a missing mask or a wrong cache row would hardly move the outputs.
** The queries' and keys' projections are scaled up (copies the test owns;
** engine and reference read the same pointers) to make attention sharp.
** Checked by mutation: without the causal mask, or with a beam continuing
** another beam's cache, or without the tag encoder's padding mask, the
** errors below grow past the tolerance by 10x or more. */
#define SHARPEN 25.0f
static float *owned_copies[256];
static const float *src_of[256];
static int n_copies;

static void sharpen(const float **w, size_t n)
{
    for (int i = 0; i < n_copies; i++)
        if (src_of[i] == *w) {
            *w = owned_copies[i];
            return;
        }
    float *c = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) c[i] = (*w)[i] * SHARPEN;
    src_of[n_copies] = *w;
    owned_copies[n_copies++] = c;
    *w = c;
}

static void sharpen_model(struct ram_model *m)
{
    for (int l = 0; l < m->tagger.n_layers; l++) {
        struct ram_tagger_layer_w *g = &m->tagger_layers[l];
        sharpen(&g->q_w, (size_t)m->tagger.hidden * m->tagger.hidden);
        sharpen(&g->k_w, (size_t)m->tagger.hidden * m->tagger.encoder_width);
    }
    struct ram_bert_config *cf[2] = {&m->t2t.enc, &m->t2t.dec};
    struct ram_bert_stack_w *sw[2] = {&m->t2t.enc_w, &m->t2t.dec_w};
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < cf[k]->layers; l++) {
            struct ram_bert_layer_tensors *t = &sw[k]->layers[l];
            size_t hh = (size_t)cf[k]->hidden * cf[k]->hidden, hk = (size_t)cf[k]->hidden * cf[k]->encoder_width;
            sharpen(&t->self.q_w, hh), sharpen(&t->self.k_w, hh);
            sharpen(&t->cross.q_w, hh), sharpen(&t->cross.k_w, hk);
        }
    /* The LM head reads the decoder's word embeddings: larger logits, so that a
    ** change of the hidden state shows. */
    sharpen(&m->t2t.dec_w.word, (size_t)m->t2t.dec.vocab * m->t2t.dec.hidden);
    ram_t2t_link(m); /* layers 0.. of the tag encoder share the tagging head's (sharpened) tensors */
}

int main(void)
{
    (void)check_close_npy;
    (void)data_path;
    struct ram_error err = {{0}};
    struct ram_model *m = NULL;
    char path[512];
    const char *bd = getenv("RAM_BUILD");
    snprintf(path, sizeof path, "%s/models/heldout_tag2text.ram", bd ? bd : "build");
    ram_status rc = ram_model_init_from_file(path, NULL, &m, &err);
    check(rc == RAM_OK, "t2t_heldout.load", "%s", err.msg);
    if (rc) return harness_exit();
    check(m->swin.image_size == 96 && m->swin.n_stages == 3 && m->num_class == 50 && m->tagger.hidden == 24 &&
              m->tagger.n_layers == 1 && m->t2t.enc.heads == 4 && m->t2t.dec.hidden == 20 && m->t2t.dec.heads == 5 &&
              m->t2t.dec.layers == 3,
          "t2t_heldout.config", "unexpected held-out config");
    sharpen_model(m);
    struct ram_t2t_state *st = NULL;
    rc = ram_t2t_state_init(m, &st, &err);
    check(rc == RAM_OK, "t2t_heldout.state", "%s", err.msg);
    if (rc) {
        ram_model_free(m);
        return harness_exit();
    }
    /* A deterministic input image (the engine's preprocessing has its own tests). */
    const int S = m->swin.image_size, nt = m->n_image_tokens, vw = m->vision_width;
    float *chw = malloc(sizeof(float) * 3 * S * S), *emb = malloc(sizeof(float) * nt * vw);
    for (int i = 0; i < 3 * S * S; i++) chw[i] = (float)sin(0.37 * i) * 1.5f;
    rc = ram_swin_forward(m, chw, ram_t2t_swin_scratch(st), emb, NULL, &err);
    check(rc == RAM_OK, "t2t_heldout.swin", "%s", err.msg);
    double *E = malloc(sizeof(double) * nt * vw);
    for (int i = 0; i < nt * vw; i++) E[i] = emb[i];

    /* Tagging head + GroupWiseLinear. */
    const int H = m->tagger.hidden, C = m->num_class;
    float *logits = malloc(sizeof(float) * C);
    double *Q = malloc(sizeof(double) * C * H), worst = 0;
    rc = ram_t2t_tag_logits(st, emb, logits, NULL, &err);
    for (int i = 0; i < C * H; i++) Q[i] = m->label_embed[i];
    for (int l = 0; l < m->tagger.n_layers; l++) {
        struct ram_bert_layer L;
        ram_bert_layer_from_tagger(m, l, &L);
        d_layer(&L, Q, C, E, nt, NULL);
    }
    for (int c = 0; c < C; c++) {
        double s = m->t2t.fc_b[c];
        for (int k = 0; k < H; k++) s += (double)m->t2t.fc_w[(size_t)c * H + k] * Q[(size_t)c * H + k];
        if (fabs(s - logits[c]) > worst) worst = fabs(s - logits[c]);
    }
    check(rc == RAM_OK && worst <= TOL, "t2t_heldout.tag_logits_vs_f64", "max abs error %.3g", worst);
    printf("# tag logits vs float64: max abs error %.3g\n", worst);

    /* Tag encoder over user tags, then the first decoding steps. */
    char *tags = NULL;
    ram_t2t_user_tags("tag3, tag7,tag11 | tag49", 24, &tags, &err);
    const struct ram_t2t *t = &m->t2t;
    int32_t ids[RAM_T2T_TAG_LEN], mask[RAM_T2T_TAG_LEN];
    ram_wordpiece_encode_fixed(t->wp, tags, strlen(tags), ram_wordpiece_special(t->wp, RAM_WP_ENC), RAM_T2T_TAG_LEN,
                               ids, mask, NULL, &err);
    double bias[RAM_T2T_TAG_LEN], *enc = malloc(sizeof(double) * RAM_T2T_TAG_LEN * t->enc.hidden);
    for (int i = 0; i < RAM_T2T_TAG_LEN; i++) bias[i] = mask[i] ? 0 : -10000.0;
    d_embed(&t->enc, &t->enc_w, ids, RAM_T2T_TAG_LEN, enc);
    for (int l = 0; l < t->enc.layers; l++) {
        struct ram_bert_layer L;
        ram_t2t_layer_view(&t->enc, &t->enc_w, l, 0, 0, &L);
        d_layer(&L, enc, RAM_T2T_TAG_LEN, E, nt, bias);
    }
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.enc = enc;
    c.beams[0][0] = ram_wordpiece_special(t->wp, RAM_WP_DEC);
    int n = 0;
    ram_wordpiece_tokenize(t->wp, RAM_T2T_PROMPT, strlen(RAM_T2T_PROMPT), c.beams[0] + 1, 8, &n, &err);
    c.len = 1 + n;
    for (int b = 1; b < RAM_T2T_BEAMS; b++) memcpy(c.beams[b], c.beams[0], sizeof c.beams[0]);
    struct ram_t2t_hooks hk = {NULL, NULL, on_trace, &c, on_step, &c};
    int32_t seq[RAM_T2T_MAX_LEN + 1];
    int ns = 0;
    char *caption = NULL;
    rc = ram_t2t_caption(st, emb, tags, strlen(tags), &hk, seq, &ns, &caption, &err);
    check(rc == RAM_OK && ns >= RAM_T2T_MIN_LEN && caption, "t2t_heldout.caption_runs", "%s", err.msg);
    check(c.enc_err <= TOL, "t2t_heldout.tag_encoder_vs_f64", "max abs error %.3g", c.enc_err);
    check(c.steps_checked == REF_STEPS && c.logit_err <= TOL, "t2t_heldout.decoder_steps_vs_f64",
          "%d steps, max abs logit error %.3g", c.steps_checked, c.logit_err);
    printf("# tag encoder vs float64: %.3g; decoder logits (steps 0-%d, 3 beams, cached vs recomputed): %.3g\n",
           c.enc_err, REF_STEPS - 1, c.logit_err);

    /* Verified int8 decoding on this config (5 heads of 4, widths not a
    ** multiple of the int8 group): fp32's bits on two tag strings, and with
    ** the draft forced to diverge at step 1. */
    struct ram_t2t_state *s8 = NULL;
    rc = ram_t2t_quantize_decoder(m, &err);
    if (!rc) rc = ram_t2t_state_init(m, &s8, &err);
    if (!rc) rc = ram_t2t_set_decoder(s8, RAM_T2T_DECODE_VERIFIED, &err);
    const char *tv[2] = {tags, "tag2 | tag30"};
    for (int k = 0; !rc && k < 3; k++) {
        struct t2t_run r32, rv;
        struct t2t_force force = {1, ram_wordpiece_special(t->wp, RAM_WP_SEP), 0};
        ram_t2t_set_draft_hook(s8, k == 2 ? t2t_force_step : NULL, &force);
        rc = t2t_run(st, emb, tv[k & 1], &r32, &err);
        if (!rc) rc = t2t_run(s8, emb, tv[k & 1], &rv, &err);
        char name[64];
        snprintf(name, sizeof name, "t2t_heldout.verified_%s", k == 2 ? "forced_at_1" : k ? "tags2" : "tags1");
        check(!rc && t2t_run_same(&r32, &rv) && rv.stats.decoder == RAM_T2T_DECODE_VERIFIED &&
                  (k < 2 || (force.hit == 1 && rv.stats.first_divergence == 1)),
              name, "first divergence at step %d, '%s' vs fp32 '%s' (%s)", rv.stats.first_divergence,
              rv.caption ? rv.caption : "", r32.caption ? r32.caption : "", rc ? err.msg : "");
        printf("# verified (%s): %d steps, %d drafted, %d confirmed, first divergence at step %d\n", name,
               rv.stats.steps, rv.stats.draft_steps, rv.stats.draft_held, rv.stats.first_divergence);
        t2t_run_free(&r32), t2t_run_free(&rv);
    }
    check(rc == RAM_OK, "t2t_heldout.verified_runs", "%s", err.msg);
    ram_t2t_state_free(s8);
    ram_free(caption);
    ram_free(tags);
    free(enc), free(Q), free(logits), free(E), free(chw), free(emb);
    ram_t2t_state_free(st);
    ram_model_free(m);
    for (int i = 0; i < n_copies; i++) free(owned_copies[i]);
    return harness_exit();
}
