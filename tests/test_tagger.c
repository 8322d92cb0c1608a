/*
** test_tagger.c — core/tagger alone: from the golden image_embeds of RAM++
** and RAM (all images) every traced intermediate and the logits against the
** official ones, the selected tag sets and their English/Chinese strings
** against tags.json, the open-set path with the golden CLIP label embeddings,
** chunking (odd chunk sizes, shrunken chunks for many descriptions), the
** precomputed RAM queries, argument errors, the abort callback, and a
** held-out config (sizes no golden has) against a naive double-precision
** decoder written here from ARCHITECTURE.md sections 4-5.
*/
#include "harness.h"
#include "model.h"
#include "ops.h"
#include "tagger.h"
#include "weights.h"

#include <math.h>

#define TOL 1e-4

/* ------------------------------------------------------------------ trace capture */

#define MAX_CAP 16
struct capture {
    int n_rows; /* rows expected (classes) */
    int n;
    char name[MAX_CAP][48];
    float *buf[MAX_CAP];
    int cols[MAX_CAP], filled[MAX_CAP];
};

static void cap_trace(void *arg, const char *name, int row0, const float *x, int rows, int cols)
{
    struct capture *c = arg;
    int i = 0;
    while (i < c->n && strcmp(c->name[i], name)) i++;
    if (i == c->n) {
        if (c->n == MAX_CAP) return;
        snprintf(c->name[i], sizeof c->name[i], "%s", name);
        c->buf[i] = calloc((size_t)c->n_rows * cols, sizeof(float));
        c->cols[i] = cols;
        c->n++;
    }
    if (cols != c->cols[i] || row0 < 0 || row0 + rows > c->n_rows) return;
    memcpy(c->buf[i] + (size_t)row0 * cols, x, sizeof(float) * (size_t)rows * cols);
    c->filled[i] += rows;
}

static const float *cap_get(const struct capture *c, const char *name, int *cols)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->name[i], name) && c->filled[i] == c->n_rows) {
            if (cols) *cols = c->cols[i];
            return c->buf[i];
        }
    return NULL;
}

static void cap_free(struct capture *c)
{
    for (int i = 0; i < c->n; i++) free(c->buf[i]);
    memset(c, 0, sizeof *c);
}

/* Compares a captured intermediate with a golden .npy. */
static void check_cap(const struct capture *c, const char *trace_name, const char *golden_rel, const char *label)
{
    int cols = 0;
    const float *x = cap_get(c, trace_name, &cols);
    if (!x) {
        check(0, label, "no complete trace \"%s\"", trace_name);
        return;
    }
    check_close_npy(label, x, (size_t)c->n_rows * cols, data_path(golden_rel), TOL);
}

/* ------------------------------------------------------------------ tags.json */

/* The k-th value of "key": in a JSON text: a string (decoded into out) or,
** with ints != NULL, an int array (count returned). -1 if absent. */
static int json_nth(const char *js, const char *key, int k, char *out, size_t cap, int *ints, int max)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = js;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, pat);
        if (!p) return -1;
        p += strlen(pat);
    }
    if (ints) {
        int n = 0;
        if (*p != '[') return -1;
        p++;
        while (*p && *p != ']') {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) {
                p++;
                continue;
            }
            if (n < max) ints[n] = (int)v;
            n++;
            p = e;
        }
        return n;
    }
    if (*p != '"') return -1;
    p++;
    size_t o = 0;
    while (*p && *p != '"' && o + 4 < cap) {
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                unsigned v = (unsigned)strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
                p += 5;
                if (v < 0x80)
                    out[o++] = (char)v;
                else if (v < 0x800)
                    out[o++] = (char)(0xc0 | v >> 6), out[o++] = (char)(0x80 | (v & 63));
                else
                    out[o++] = (char)(0xe0 | v >> 12), out[o++] = (char)(0x80 | ((v >> 6) & 63)),
                    out[o++] = (char)(0x80 | (v & 63));
                continue;
            }
            out[o++] = *p == 'n' ? '\n' : *p;
            p++;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = 0;
    return 0;
}

/* Line i of a '\n'-joined vocabulary text, into out. */
static void nth_line(const char *text, int i, char *out, size_t cap)
{
    const char *p = text;
    while (i-- > 0 && p) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    size_t n = 0;
    while (p && p[n] && p[n] != '\n') n++;
    if (n >= cap) n = cap - 1;
    memcpy(out, p ? p : "", n);
    out[n] = 0;
}

/* Official output string: selected names in class order joined by " | ". */
static void join_tags(const char *vocab, const int *sel, int n_sel, char *out, size_t cap)
{
    out[0] = 0;
    for (int i = 0; i < n_sel; i++) {
        char name[256];
        nth_line(vocab, sel[i], name, sizeof name);
        if (i) strncat(out, " | ", cap - strlen(out) - 1);
        strncat(out, name, cap - strlen(out) - 1);
    }
}

static float *read_thresholds(int n)
{
    size_t len;
    char *t = read_file(data_path("golden/tag_list_threshold.txt"), &len);
    if (!t) return NULL;
    char *z = realloc(t, len + 1);
    z[len] = 0;
    float *thr = calloc((size_t)n, sizeof(float));
    char *p = z;
    for (int i = 0; i < n; i++) thr[i] = strtof(p, &p);
    free(z);
    return thr;
}

/* ------------------------------------------------------------------ golden, closed set */

static struct ram_model *load_golden(const char *pth)
{
    struct ram_model *m = NULL;
    struct ram_error err = {{0}};
    char p[256];
    snprintf(p, sizeof p, "golden/%s", pth);
    ram_status rc = ram_model_init_from_pth(data_path(p), data_path("golden/tag_list.txt"),
                                            data_path("golden/tag_list_chinese.txt"),
                                            data_path("golden/tag_list_threshold.txt"), NULL, &m, &err);
    check(rc == RAM_OK, pth, "cannot load: %s", err.msg);
    return rc ? NULL : m;
}

static float *alloc_scratch(const struct ram_model *m, int chunk, int max_des, struct ram_tagger_scratch *s)
{
    size_t n = ram_tagger_scratch_floats(m, chunk, max_des);
    s->buf = n ? malloc(n * sizeof(float)) : NULL;
    s->chunk = chunk;
    s->max_des = max_des;
    return s->buf;
}

static void test_closed_set(const char *kind, const char *pth)
{
    struct ram_model *m = load_golden(pth);
    if (!m) return;
    const int K = m->num_class, D = m->des_per_class;
    struct ram_error err = {{0}};
    char name[128], rel[128];
    size_t jl;
    snprintf(rel, sizeof rel, "golden/%s/tags.json", kind);
    char *js = read_file(data_path(rel), &jl);
    char *jsz = js ? realloc(js, jl + 1) : NULL;
    if (jsz) jsz[jl] = 0;
    float *thr = read_thresholds(K);
    int thr_same = thr != NULL;
    for (int c = 0; thr && c < K; c++) thr_same &= thr[c] == ram_model_threshold(m, c);
    snprintf(name, sizeof name, "tagger.%s.thresholds_match_file", kind);
    check(thr_same, name, "model thresholds differ from tag_list_threshold.txt");

    struct ram_tagger_scratch s5, sbig, sshrink;
    alloc_scratch(m, 5, D, &s5);      /* 12 classes: chunks of 5, 5, 2 */
    alloc_scratch(m, 256, D, &sbig);  /* one chunk */
    alloc_scratch(m, 5, 2, &sshrink); /* RAM++ D=5 > 2: two classes per chunk */
    const size_t nq = (size_t)K * m->tagger.hidden;
    float *h0 = malloc(sizeof(float) * nq), *q0 = malloc(sizeof(float) * nq);

    for (int img = 0; img < 4; img++) {
        struct npy emb;
        snprintf(rel, sizeof rel, "golden/%s/img%d_image_embeds.npy", kind, img);
        if (!npy_load(data_path(rel), &emb) || (int)emb.shape[1] != m->n_image_tokens) {
            check(0, kind, "cannot read %s", rel);
            continue;
        }
        struct capture cap = {.n_rows = K};
        struct ram_tagger_hooks hk = {NULL, NULL, cap_trace, &cap};
        struct ram_tagger_args a = {emb.data, m->label_embed, K, D, NULL, NULL};
        float *logits = malloc(sizeof(float) * K), *l2 = malloc(sizeof(float) * K);
        ram_status rc = ram_tagger_forward(m, &a, &s5, logits, &hk, &err);
        snprintf(name, sizeof name, "tagger.%s.img%d.forward", kind, img);
        check(rc == RAM_OK, name, "%s", err.msg);

        static const char *steps[] = {
            "reweight_logits",    "reweight_weights",   "label_embed_reweighted", "tagging_queries",
            "tagging_layer0_out", "tagging_layer1_out", "tagging_embed",          "logits"};
        for (int i = 0; i < 8; i++) {
            if (i < 3 && D == 1) {
                snprintf(name, sizeof name, "tagger.%s.img%d.no_%s", kind, img, steps[i]);
                check(!cap_get(&cap, steps[i], NULL), name, "traced without reweighting");
                continue;
            }
            snprintf(name, sizeof name, "tagger.%s.img%d.%s", kind, img, steps[i]);
            snprintf(rel, sizeof rel, "golden/%s/img%d_%s.npy", kind, img, steps[i]);
            check_cap(&cap, steps[i], rel, name);
        }
        snprintf(name, sizeof name, "tagger.%s.img%d.logits_returned", kind, img);
        snprintf(rel, sizeof rel, "golden/%s/img%d_logits.npy", kind, img);
        check_close_npy(name, logits, (size_t)K, data_path(rel), TOL);
        float *probs = malloc(sizeof(float) * K);
        for (int c = 0; c < K; c++) probs[c] = ram_sigmoid(logits[c]);
        snprintf(name, sizeof name, "tagger.%s.img%d.probs", kind, img);
        snprintf(rel, sizeof rel, "golden/%s/img%d_probs.npy", kind, img);
        check_close_npy(name, probs, (size_t)K, data_path(rel), TOL);

        /* The selected set and the official strings. */
        int sel[256], n_sel = 0, want[256];
        for (int c = 0; c < K && thr; c++)
            if (probs[c] > thr[c] && n_sel < 256) sel[n_sel++] = c;
        int n_want = jsz ? json_nth(jsz, "selected_indices", img, NULL, 0, want, 256) : -1;
        snprintf(name, sizeof name, "tagger.%s.img%d.selected", kind, img);
        check(n_want == n_sel && !memcmp(sel, want, sizeof(int) * (n_sel > 0 ? n_sel : 0)), name,
              "%d selected, official %d", n_sel, n_want);
        char got_s[4096], want_s[4096];
        join_tags(m->tag_text_en, sel, n_sel, got_s, sizeof got_s);
        json_nth(jsz ? jsz : "", "tags", img, want_s, sizeof want_s, NULL, 0);
        snprintf(name, sizeof name, "tagger.%s.img%d.tags_en", kind, img);
        check(!strcmp(got_s, want_s), name, "\"%s\" vs official \"%s\"", got_s, want_s);
        join_tags(m->tag_text_zh, sel, n_sel, got_s, sizeof got_s);
        json_nth(jsz ? jsz : "", "tags_chinese", img, want_s, sizeof want_s, NULL, 0);
        snprintf(name, sizeof name, "tagger.%s.img%d.tags_zh", kind, img);
        check(!strcmp(got_s, want_s), name, "\"%s\" vs official \"%s\"", got_s, want_s);

        /* Chunking is exact: one chunk, and shrunken chunks, give the same logits
        ** up to float reassociation (BLAS blocks by the row count). */
        rc = ram_tagger_forward(m, &a, &sbig, l2, NULL, &err);
        snprintf(name, sizeof name, "tagger.%s.img%d.one_chunk", kind, img);
        check(rc == RAM_OK && max_abs_diff(l2, logits, (size_t)K) <= 1e-5, name, "rc %d, diff %.3g", rc,
              max_abs_diff(l2, logits, (size_t)K));
        if (D > 1) {
            rc = ram_tagger_forward(m, &a, &sshrink, l2, NULL, &err);
            snprintf(name, sizeof name, "tagger.%s.img%d.shrunken_chunks", kind, img);
            check(rc == RAM_OK && max_abs_diff(l2, logits, (size_t)K) <= 1e-5, name, "rc %d, diff %.3g", rc,
                  max_abs_diff(l2, logits, (size_t)K));
        } else { /* the precomputed image-independent queries */
            rc = ram_tagger_precompute(m, m->label_embed, K, h0, q0, &err);
            struct ram_tagger_args af = {emb.data, NULL, K, 1, h0, q0};
            struct capture cf = {.n_rows = K};
            struct ram_tagger_hooks hf = {NULL, NULL, cap_trace, &cf};
            if (!rc) rc = ram_tagger_forward(m, &af, &s5, l2, &hf, &err);
            snprintf(name, sizeof name, "tagger.%s.img%d.precomputed_queries", kind, img);
            check(rc == RAM_OK && max_abs_diff(l2, logits, (size_t)K) <= 1e-5, name, "rc %d %s, diff %.3g", rc, err.msg,
                  max_abs_diff(l2, logits, (size_t)K));
            snprintf(name, sizeof name, "tagger.%s.img%d.precomputed.tagging_layer0_out", kind, img);
            snprintf(rel, sizeof rel, "golden/%s/img%d_tagging_layer0_out.npy", kind, img);
            check_cap(&cf, "tagging_layer0_out", rel, name);
            cap_free(&cf);
        }
        free(probs), free(logits), free(l2);
        cap_free(&cap);
        npy_free(&emb);
    }

    /* RAM has no reweighting: several descriptions per tag are refused. */
    if (m->kind == RAM_KIND_RAM) {
        struct npy emb;
        snprintf(rel, sizeof rel, "golden/%s/img0_image_embeds.npy", kind);
        npy_load(data_path(rel), &emb);
        struct ram_tagger_args a = {emb.data, m->label_embed, K / 2, 2, NULL, NULL};
        float lg[64];
        ram_status rc = ram_tagger_forward(m, &a, &s5, lg, NULL, &err);
        check(rc == RAM_ERR_UNSUPPORTED && strstr(err.msg, "RAM++"), "tagger.ram.descriptions_refused", "rc %d: %s", rc,
              err.msg);
        npy_free(&emb);
    }
    free(s5.buf), free(sbig.buf), free(sshrink.buf), free(h0), free(q0);
    free(thr), free(jsz);
    ram_model_free(m);
}

/* ------------------------------------------------------------------ golden, open set */

static void test_openset(void)
{
    struct ram_model *m = load_golden("ram_plus_tiny.pth");
    if (!m) return;
    struct ram_error err = {{0}};
    struct npy lab;
    if (!npy_load(data_path("golden/openset/label_embed.npy"), &lab)) {
        check(0, "tagger.openset.label_embed", "cannot read label_embed.npy");
        ram_model_free(m);
        return;
    }
    const int T = 3, D = (int)lab.shape[0] / T;
    size_t jl;
    char *js = read_file(data_path("golden/openset/tags.json"), &jl), *jsz = js ? realloc(js, jl + 1) : NULL;
    if (jsz) jsz[jl] = 0;
    struct ram_tagger_scratch s;
    alloc_scratch(m, 2, 2, &s); /* D = 3 > 2: one tag per chunk */
    char name[128], rel[128];
    for (int img = 0; img < 4; img++) {
        struct npy emb;
        snprintf(rel, sizeof rel, "golden/ram_plus/img%d_image_embeds.npy", img);
        npy_load(data_path(rel), &emb);
        struct capture cap = {.n_rows = T};
        struct ram_tagger_hooks hk = {NULL, NULL, cap_trace, &cap};
        struct ram_tagger_args a = {emb.data, lab.data, T, D, NULL, NULL};
        float logits[3], probs[3];
        ram_status rc = ram_tagger_forward(m, &a, &s, logits, &hk, &err);
        snprintf(name, sizeof name, "tagger.openset.img%d.forward", img);
        check(rc == RAM_OK, name, "%s", err.msg);
        static const char *steps[] = {"label_embed_reweighted", "tagging_queries", "tagging_embed", "logits"};
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof name, "tagger.openset.img%d.%s", img, steps[i]);
            snprintf(rel, sizeof rel, "golden/openset/img%d_%s.npy", img, steps[i]);
            check_cap(&cap, steps[i], rel, name);
        }
        for (int t = 0; t < T; t++) probs[t] = ram_sigmoid(logits[t]);
        snprintf(name, sizeof name, "tagger.openset.img%d.probs", img);
        snprintf(rel, sizeof rel, "golden/openset/img%d_probs.npy", img);
        check_close_npy(name, probs, 3, data_path(rel), TOL);
        int sel[3], n_sel = 0, want[8];
        for (int t = 0; t < T; t++)
            if (probs[t] > 0.5f) sel[n_sel++] = t;
        int n_want = jsz ? json_nth(jsz, "selected_indices", img, NULL, 0, want, 8) : -1;
        snprintf(name, sizeof name, "tagger.openset.img%d.selected", img);
        check(n_want == n_sel && !memcmp(sel, want, sizeof(int) * n_sel), name, "%d selected, official %d", n_sel,
              n_want);
        cap_free(&cap);
        npy_free(&emb);
    }
    free(s.buf), free(jsz);
    npy_free(&lab);
    ram_model_free(m);
}

/* ------------------------------------------------------------------ held-out config */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *rvec(size_t n, float scale, float bias)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = bias + scale * frand();
    return p;
}

/* A decoder-only model (what the tagger reads); freed by free_synth. */
static struct ram_model *synth(int kind, int E, int hid, int heads, int inter, int layers, int nt, int wordvec)
{
    struct ram_model *m = calloc(1, sizeof *m);
    m->kind = kind;
    m->embed_dim = E;
    m->n_image_tokens = nt;
    m->tagger = (struct ram_tagger_config){hid, layers, heads, inter, E, 1e-12f};
    m->reweight_scale = 2.3f;
    if (wordvec) {
        m->wordvec_w = rvec((size_t)hid * E, 2.0f / sqrtf((float)E), 0);
        m->wordvec_b = rvec((size_t)hid, 0.1f, 0);
    }
    m->tagger_layers = calloc((size_t)layers, sizeof *m->tagger_layers);
    for (int l = 0; l < layers; l++) {
        struct ram_tagger_layer_w *w = &m->tagger_layers[l];
        float sh = 1.7f / sqrtf((float)hid), se = 1.7f / sqrtf((float)E), si = 1.7f / sqrtf((float)inter);
        w->q_w = rvec((size_t)hid * hid, sh * 2, 0), w->q_b = rvec(hid, 0.1f, 0);
        w->k_w = rvec((size_t)hid * E, se * 2, 0), w->k_b = rvec(hid, 0.1f, 0);
        w->v_w = rvec((size_t)hid * E, se, 0), w->v_b = rvec(hid, 0.1f, 0);
        w->ao_w = rvec((size_t)hid * hid, sh, 0), w->ao_b = rvec(hid, 0.1f, 0);
        w->aln_w = rvec(hid, 0.2f, 1), w->aln_b = rvec(hid, 0.1f, 0);
        w->i_w = rvec((size_t)inter * hid, sh, 0), w->i_b = rvec(inter, 0.1f, 0);
        w->o_w = rvec((size_t)hid * inter, si, 0), w->o_b = rvec(hid, 0.1f, 0);
        w->oln_w = rvec(hid, 0.2f, 1), w->oln_b = rvec(hid, 0.1f, 0);
    }
    m->fc_w = rvec(hid, 2.0f / sqrtf((float)hid), 0);
    m->fc_b = rvec(1, 0.2f, 0);
    return m;
}

static void free_synth(struct ram_model *m)
{
    for (int l = 0; l < m->tagger.n_layers; l++) {
        struct ram_tagger_layer_w *w = &m->tagger_layers[l];
        const float *p[] = {w->q_w,   w->q_b,   w->k_w, w->k_b, w->v_w, w->v_b, w->ao_w,  w->ao_b,
                            w->aln_w, w->aln_b, w->i_w, w->i_b, w->o_w, w->o_b, w->oln_w, w->oln_b};
        for (size_t i = 0; i < sizeof p / sizeof *p; i++) free((void *)p[i]);
    }
    free(m->tagger_layers);
    free((void *)m->wordvec_w), free((void *)m->wordvec_b), free((void *)m->fc_w), free((void *)m->fc_b);
    free(m);
}

static double dotf(const float *w, const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)w[i] * x[i];
    return s;
}

/* y = W x + b (W out x in, float), in double. */
static void dlinear(const float *W, const float *b, const double *x, int in, int out, double *y)
{
    for (int o = 0; o < out; o++) y[o] = dotf(W + (size_t)o * in, x, in) + (b ? b[o] : 0);
}

static void dlayernorm(double *x, int n, const float *w, const float *b, double eps)
{
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    for (int i = 0; i < n; i++) x[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i];
}

static void dsoftmax(double *x, int n)
{
    double mx = x[0], s = 0;
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) s += (x[i] = exp(x[i] - mx));
    for (int i = 0; i < n; i++) x[i] /= s;
}

/* The decoder of ARCHITECTURE.md 4-5 written as plainly as possible: one
** class at a time, double precision. */
static void naive_logits(const struct ram_model *m, const float *emb, const float *label, int K, int D, double *out)
{
    const int E = m->embed_dim, H = m->tagger.hidden, nt = m->n_image_tokens, I = m->tagger.intermediate;
    const int heads = m->tagger.n_heads, dh = H / heads;
    double *cls = malloc(sizeof(double) * E), *L = malloc(sizeof(double) * E), *r = malloc(sizeof(double) * D);
    double *h = malloc(sizeof(double) * (E > H ? E : H)), *q = malloc(sizeof(double) * H),
           *ctx = malloc(sizeof(double) * H), *a = malloc(sizeof(double) * H), *f = malloc(sizeof(double) * I),
           *o = malloc(sizeof(double) * H), *sc = malloc(sizeof(double) * nt);
    double *Kx = malloc(sizeof(double) * nt * H), *Vx = malloc(sizeof(double) * nt * H),
           *e = malloc(sizeof(double) * E);
    double nrm = 0;
    for (int i = 0; i < E; i++) nrm += (double)emb[i] * emb[i];
    for (int i = 0; i < E; i++) cls[i] = emb[i] / sqrt(nrm);
    for (int c = 0; c < K; c++) {
        for (int d = 0; d < D; d++)
            r[d] = exp((double)m->reweight_scale) * dotf(label + ((size_t)c * D + d) * E, cls, E);
        dsoftmax(r, D);
        for (int i = 0; i < E; i++) {
            L[i] = 0;
            for (int d = 0; d < D; d++) L[i] += r[d] * label[((size_t)c * D + d) * E + i];
        }
        if (m->wordvec_w) {
            dlinear(m->wordvec_w, m->wordvec_b, L, E, H, h);
            for (int i = 0; i < H; i++) h[i] = h[i] > 0 ? h[i] : 0;
        } else {
            memcpy(h, L, sizeof(double) * H);
        }
        for (int l = 0; l < m->tagger.n_layers; l++) {
            const struct ram_tagger_layer_w *w = &m->tagger_layers[l];
            for (int t = 0; t < nt; t++) {
                for (int i = 0; i < E; i++) e[i] = emb[(size_t)t * E + i];
                dlinear(w->k_w, w->k_b, e, E, H, Kx + (size_t)t * H);
                dlinear(w->v_w, w->v_b, e, E, H, Vx + (size_t)t * H);
            }
            dlinear(w->q_w, w->q_b, h, H, H, q);
            for (int hh = 0; hh < heads; hh++) {
                for (int t = 0; t < nt; t++) {
                    double s = 0;
                    for (int i = 0; i < dh; i++) s += q[hh * dh + i] * Kx[(size_t)t * H + hh * dh + i];
                    sc[t] = s / sqrt((double)dh);
                }
                dsoftmax(sc, nt);
                for (int i = 0; i < dh; i++) {
                    double s = 0;
                    for (int t = 0; t < nt; t++) s += sc[t] * Vx[(size_t)t * H + hh * dh + i];
                    ctx[hh * dh + i] = s;
                }
            }
            dlinear(w->ao_w, w->ao_b, ctx, H, H, a);
            for (int i = 0; i < H; i++) a[i] += h[i];
            dlayernorm(a, H, w->aln_w, w->aln_b, m->tagger.eps);
            dlinear(w->i_w, w->i_b, a, H, I, f);
            for (int i = 0; i < I; i++) f[i] = 0.5 * f[i] * (1 + erf(f[i] / sqrt(2.0)));
            dlinear(w->o_w, w->o_b, f, I, H, o);
            for (int i = 0; i < H; i++) h[i] = o[i] + a[i];
            dlayernorm(h, H, w->oln_w, w->oln_b, m->tagger.eps);
        }
        out[c] = dotf(m->fc_w, h, H) + m->fc_b[0];
    }
    free(cls), free(L), free(r), free(h), free(q), free(ctx), free(a), free(f), free(o), free(sc);
    free(Kx), free(Vx), free(e);
}

static void unit_rows(float *x, int rows, int dim)
{
    for (int r = 0; r < rows; r++) ram_l2_normalize(x + (size_t)r * dim, dim);
}

/* One held-out config: our forward (several chunkings) vs the naive decoder. */
static void heldout_case(const char *label, int kind, int E, int hid, int heads, int inter, int layers, int nt, int K,
                         int D, int wordvec)
{
    struct ram_model *m = synth(kind, E, hid, heads, inter, layers, nt, wordvec);
    float *emb = rvec((size_t)nt * E, 1.0f, 0), *lab = rvec((size_t)K * D * E, 1.0f, 0);
    unit_rows(lab, K * D, E);
    double *ref = malloc(sizeof(double) * K);
    naive_logits(m, emb, lab, K, D, ref);
    float *got = malloc(sizeof(float) * K);
    struct ram_error err = {{0}};
    static const int plans[][2] = {{3, 4}, {1, 1}, {256, 2}, {2, 1}};
    char name[128];
    for (int p = 0; p < 4; p++) {
        struct ram_tagger_scratch s;
        alloc_scratch(m, plans[p][0], plans[p][1], &s);
        struct ram_tagger_args a = {emb, lab, K, D, NULL, NULL};
        ram_status rc = s.buf ? ram_tagger_forward(m, &a, &s, got, NULL, &err) : RAM_ERR_NOMEM;
        double e = 0, mag = 0;
        for (int c = 0; c < K; c++) e = fmax(e, fabs(got[c] - ref[c])), mag = fmax(mag, fabs(ref[c]));
        snprintf(name, sizeof name, "tagger.heldout.%s.chunk%d_des%d", label, plans[p][0], plans[p][1]);
        if (D > plans[p][0] * plans[p][1])
            check(rc == RAM_ERR_TOO_BIG, name, "rc %d, expected TOO_BIG", rc);
        else
            check(rc == RAM_OK && e <= TOL && mag > 0.05, name, "rc %d %s, max abs error %.3g (|logit| %.3g)", rc,
                  err.msg, e, mag);
        free(s.buf);
    }
    if (D == 1) { /* the precomputed queries reach the same logits */
        float *h0 = malloc(sizeof(float) * K * hid), *q0 = malloc(sizeof(float) * K * hid);
        struct ram_tagger_scratch s;
        alloc_scratch(m, 3, 1, &s);
        ram_status rc = ram_tagger_precompute(m, lab, K, h0, q0, &err);
        struct ram_tagger_args a = {emb, NULL, K, 1, h0, q0};
        if (!rc) rc = ram_tagger_forward(m, &a, &s, got, NULL, &err);
        double e = 0;
        for (int c = 0; c < K; c++) e = fmax(e, fabs(got[c] - ref[c]));
        snprintf(name, sizeof name, "tagger.heldout.%s.precomputed", label);
        check(rc == RAM_OK && e <= TOL, name, "rc %d %s, max abs error %.3g", rc, err.msg, e);
        free(h0), free(q0), free(s.buf);
    }
    free(emb), free(lab), free(ref), free(got);
    free_synth(m);
}

static void test_heldout(void)
{
    /* The brief's config: hidden 48, 3 heads, 3 layers, 7 classes x 4 descriptions. */
    heldout_case("h48_3heads_3layers_7x4", RAM_KIND_RAM_PLUS, 40, 48, 3, 80, 3, 11, 7, 4, 1);
    /* No wordvec_proj (decoder as wide as the embeddings), one description (RAM). */
    heldout_case("h24_no_wordvec_ram", RAM_KIND_RAM, 24, 24, 4, 40, 2, 5, 9, 1, 0);
    /* One head, one layer, one image token, many descriptions. */
    heldout_case("h16_1head_1layer_9des", RAM_KIND_RAM_PLUS, 20, 16, 1, 24, 1, 1, 3, 9, 1);
}

/* The description reweighting splits a chunk's classes over threads once
** its rows pass 4 MB: 300 classes x 40 descriptions x 256 (12 MB) in one
** chunk, at 1 and 2 threads, against the naive decoder and each other. */
static void test_reweight_threads(void)
{
    const int K = 300, D = 40, E = 256, hid = 16, nt = 3;
    struct ram_model *m = synth(RAM_KIND_RAM_PLUS, E, hid, 2, 24, 1, nt, 1);
    float *emb = rvec((size_t)nt * E, 1.0f, 0), *lab = rvec((size_t)K * D * E, 1.0f, 0);
    unit_rows(lab, K * D, E);
    double *ref = malloc(sizeof(double) * K);
    naive_logits(m, emb, lab, K, D, ref);
    float *got[2] = {malloc(sizeof(float) * K), malloc(sizeof(float) * K)};
    struct ram_error err = {{0}};
    int t0 = ram_ops_get_threads();
    for (int t = 0; t < 2; t++) {
        struct ram_tagger_scratch s;
        alloc_scratch(m, K, D, &s);
        ram_set_threads(t + 1);
        struct ram_tagger_args a = {emb, lab, K, D, NULL, NULL};
        ram_status rc = s.buf ? ram_tagger_forward(m, &a, &s, got[t], NULL, &err) : RAM_ERR_NOMEM;
        double e = 0;
        for (int c = 0; c < K; c++) e = fmax(e, fabs(got[t][c] - ref[c]));
        char name[64];
        snprintf(name, sizeof name, "tagger.reweight.%d_threads", t + 1);
        check(rc == RAM_OK && e <= TOL, name, "rc %d %s, max abs error %.3g", rc, err.msg, e);
        free(s.buf);
    }
    ram_set_threads(t0);
    /* Not bitwise: the decoder's BLAS products block differently at 2 threads. */
    double d = 0;
    for (int c = 0; c < K; c++) d = fmax(d, fabs(got[0][c] - got[1][c]));
    check(d <= 1e-5, "tagger.reweight.threads_agree", "max difference %.3g", d);
    free(got[0]), free(got[1]), free(emb), free(lab), free(ref);
    free_synth(m);
}

/* ------------------------------------------------------------------ errors, abort */

static int abort_after(void *arg)
{
    int *n = arg;
    return (*n)-- <= 0;
}

static void test_errors(void)
{
    struct ram_model *m = synth(RAM_KIND_RAM_PLUS, 16, 16, 2, 32, 2, 3, 1);
    struct ram_error err = {{0}};
    float *emb = rvec(3 * 16, 1.0f, 0), *lab = rvec(10 * 2 * 16, 1.0f, 0), lg[10], ref[10];
    struct ram_tagger_scratch s;
    alloc_scratch(m, 3, 2, &s);
    struct ram_tagger_args a = {emb, lab, 10, 2, NULL, NULL};
    ram_status rc = ram_tagger_forward(m, &a, &s, ref, NULL, &err);
    check(rc == RAM_OK, "tagger.errors.baseline", "%s", err.msg);

    /* The abort callback: polled before K/V, each chunk and each later layer. */
    int polls_ok = 1;
    for (int k = 0; k < 12; k++) {
        int left = k;
        struct ram_tagger_hooks hk = {abort_after, &left, NULL, NULL};
        rc = ram_tagger_forward(m, &a, &s, lg, &hk, &err);
        /* 1 + 4 chunks x 2 layers' polls = 9: k >= 9 completes. */
        int want = k < 9 ? RAM_ERR_INTERRUPTED : RAM_OK;
        if ((int)rc != want || (rc == RAM_ERR_INTERRUPTED && !strstr(err.msg, "interrupted"))) polls_ok = 0;
    }
    check(polls_ok, "tagger.errors.abort_every_poll", "an abort point misbehaved");
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_OK && !memcmp(lg, ref, sizeof lg), "tagger.errors.after_abort_same", "rc %d", rc);

    a.n_tags = 0;
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_ARG, "tagger.errors.no_tags", "rc %d", rc);
    a.n_tags = 4, a.des = 7; /* 7 > 3 x 2 */
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_TOO_BIG && strstr(err.msg, "at most 6"), "tagger.errors.too_many_descriptions", "rc %d %s", rc,
          err.msg);
    a.des = 2, a.fixed_h0 = lab;
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_ARG, "tagger.errors.half_precomputed", "rc %d", rc);
    a.fixed_h0 = NULL, a.label_embed = NULL;
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_ARG, "tagger.errors.no_labels", "rc %d", rc);
    a.label_embed = lab;
    rc = ram_tagger_forward(m, &a, NULL, lg, NULL, &err);
    check(rc == RAM_ERR_ARG, "tagger.errors.no_scratch", "rc %d", rc);
    struct ram_tagger_scratch bad = {s.buf, 0, 2, NULL};
    rc = ram_tagger_forward(m, &a, &bad, lg, NULL, &err);
    check(rc == RAM_ERR_ARG && ram_tagger_scratch_floats(m, 0, 2) == 0, "tagger.errors.bad_plan", "rc %d", rc);

    m->tagger.n_heads = 3; /* 16 % 3 */
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_ARG && strstr(err.msg, "invalid config"), "tagger.errors.bad_heads", "rc %d %s", rc, err.msg);
    m->tagger.n_heads = 2;
    m->tagger.encoder_width = 12;
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_ARG, "tagger.errors.encoder_width", "rc %d", rc);
    m->tagger.encoder_width = 16;
    m->kind = RAM_KIND_RAM;
    rc = ram_tagger_forward(m, &a, &s, lg, NULL, &err);
    check(rc == RAM_ERR_UNSUPPORTED, "tagger.errors.ram_descriptions", "rc %d", rc);
    m->kind = RAM_KIND_RAM_PLUS;

    /* The cache-less entry of the general layer refuses self-attention (it
    ** needs ram_bert_layer_forward_ex's key/value cache; Tag2Text's tests
    ** cover that path). */
    struct ram_bert_layer L;
    ram_bert_layer_from_tagger(m, 0, &L);
    L.has_self = 1;
    float h[16] = {0}, kv[3 * 16] = {0};
    float *scr = malloc(sizeof(float) * ram_bert_layer_scratch_floats(&L, 1, 3));
    rc = ram_bert_layer_forward(&L, h, 1, kv, kv, 3, NULL, scr, &err);
    check(rc == RAM_ERR_UNSUPPORTED && strstr(err.msg, "self-attention"), "tagger.errors.self_attention_needs_cache",
          "rc %d %s", rc, err.msg);
    free(scr);
    free(s.buf), free(emb), free(lab);
    free_synth(m);
}

int main(void)
{
    test_closed_set("ram_plus", "ram_plus_tiny.pth");
    test_closed_set("ram", "ram_tiny.pth");
    test_openset();
    test_heldout();
    test_reweight_threads();
    test_errors();
    return harness_exit();
}
