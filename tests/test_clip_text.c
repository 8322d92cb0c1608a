/*
** test_clip_text.c — the CLIP text encoder (core/clip_text.c) against the
** official encode_text outputs of the tiny golden CLIP: weights from
** tests/data/golden/clip_tiny_text.safetensors (OpenAI names) and
** clip_tiny_text_hf.safetensors (Hugging Face names: q/k/v split,
** text_projection transposed), ids from openset/token_ids.npy, expected
** text_features.npy (9 x 512) and the per-block intermediates. Also: the
** tokenizer reproduces token_ids.npy from openset_tags.json, padding after
** EOT changes nothing, argument errors, and a held-out configuration (other
** width, heads, depth, context, embed size) against a naive double-precision
** forward written here with an explicit -inf causal mask over the full context.
**
** The safetensors parsing below is a minimal test-only reader; the production
** reader and weight binder live elsewhere.
*/
#include "harness.h"

#include "bpe.h"
#include "clip_text.h"
#include "internal.h"

/* ------------------------------------------------------------------ mini JSON */

#include "test_json.h"

/* ------------------------------------------------------------------ safetensors (test-only) */

struct st {
    unsigned char *buf;
    size_t len;
    struct jv hdr;
    size_t data0;
    float **copies; /* every tensor handed out (free each) */
    int n_copies;
};

static int st_open(const char *path, struct st *s)
{
    memset(s, 0, sizeof *s);
    s->buf = read_file(path, &s->len);
    if (!s->buf || s->len < 8) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | s->buf[i];
    if (n > s->len - 8) return 0;
    struct jp j = {(const char *)s->buf + 8, (const char *)s->buf + 8 + n, 0};
    jparse(&j, &s->hdr);
    s->data0 = 8 + (size_t)n;
    return !j.bad && s->hdr.t == J_OBJ;
}

static float *st_keep(struct st *s, float *p)
{
    s->copies = realloc(s->copies, sizeof *s->copies * (size_t)(s->n_copies + 1));
    s->copies[s->n_copies++] = p;
    return p;
}

/* An F32 tensor copied out (aligned), with its shape; NULL if absent. */
static float *st_get(struct st *s, const char *name, int *ndim, long shape[4])
{
    const struct jv *t = jget(&s->hdr, name), *dt = jget(t, "dtype"), *sh = jget(t, "shape"),
                    *off = jget(t, "data_offsets");
    if (!t || !dt || strcmp(dt->str, "F32") || !sh || sh->n > 4 || !off || off->n != 2) return NULL;
    size_t a = (size_t)off->items[0].num, b = (size_t)off->items[1].num, n = 1;
    for (int i = 0; i < sh->n; i++) n *= (size_t)(shape[i] = (long)sh->items[i].num);
    *ndim = sh->n;
    if (b < a || b - a != 4 * n || s->data0 + b > s->len) return NULL;
    float *p = malloc(4 * n + 4);
    memcpy(p, s->buf + s->data0 + a, 4 * n);
    return st_keep(s, p);
}

static void st_close(struct st *s)
{
    for (int i = 0; i < s->n_copies; i++) free(s->copies[i]);
    free(s->copies);
    jfree(&s->hdr);
    free(s->buf);
}

/* Weights of one layout, bound into the engine's structs. */
struct model {
    struct st st;
    struct ram_clip_config cfg;
    struct ram_clip_w w;
    int ok;
};

static float *need(struct model *m, const char *name, int nd, long d0, long d1)
{
    int ndim;
    long sh[4];
    float *p = st_get(&m->st, name, &ndim, sh);
    if (!p || ndim != nd || (nd > 0 && sh[0] != d0) || (nd > 1 && sh[1] != d1)) {
        if (m->ok) check(0, "bind tensor", "%s missing or wrong shape", name);
        m->ok = 0;
        return NULL;
    }
    return p;
}

static int count_layers(struct st *s, const char *fmt)
{
    char name[256];
    int l = 0;
    for (;; l++) {
        snprintf(name, sizeof name, fmt, l);
        if (!jget(&s->hdr, name)) return l;
    }
}

static void load_openai(struct model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    m->ok = st_open(path, &m->st);
    if (!m->ok) {
        check(0, "open openai safetensors", "%s", path);
        return;
    }
    int nd;
    long te[4], pe[4], tp[4];
    float *tok = st_get(&m->st, "token_embedding.weight", &nd, te);
    float *pos = st_get(&m->st, "positional_embedding", &nd, pe);
    float *proj = st_get(&m->st, "text_projection", &nd, tp);
    const struct jv *heads = jget(jget(&m->st.hdr, "__metadata__"), "heads");
    if (!tok || !pos || !proj || !heads) {
        check(0, "openai layout", "missing embeddings, projection or heads metadata");
        m->ok = 0;
        return;
    }
    m->cfg = (struct ram_clip_config){(int)te[0], (int)pe[0], (int)te[1], atoi(heads->str), 0, (int)tp[1], 1e-5f};
    m->cfg.layers = count_layers(&m->st, "transformer.resblocks.%d.ln_1.weight");
    int W = m->cfg.width;
    m->w.tok_emb = tok;
    m->w.pos_emb = pos;
    m->w.text_proj = proj;
    m->w.lnf_w = need(m, "ln_final.weight", 1, W, 0);
    m->w.lnf_b = need(m, "ln_final.bias", 1, W, 0);
    m->w.layers = calloc((size_t)m->cfg.layers + 1, sizeof *m->w.layers);
    for (int l = 0; l < m->cfg.layers; l++) {
        struct ram_clip_layer_w *L = &m->w.layers[l];
        char n[256];
#define T(field, suffix, nd_, a, b)                                  \
    snprintf(n, sizeof n, "transformer.resblocks.%d.%s", l, suffix); \
    L->field = need(m, n, nd_, a, b)
        T(ln1_w, "ln_1.weight", 1, W, 0);
        T(ln1_b, "ln_1.bias", 1, W, 0);
        T(in_w, "attn.in_proj_weight", 2, 3 * W, W);
        T(in_b, "attn.in_proj_bias", 1, 3 * W, 0);
        T(out_w, "attn.out_proj.weight", 2, W, W);
        T(out_b, "attn.out_proj.bias", 1, W, 0);
        T(ln2_w, "ln_2.weight", 1, W, 0);
        T(ln2_b, "ln_2.bias", 1, W, 0);
        T(fc_w, "mlp.c_fc.weight", 2, 4 * W, W);
        T(fc_b, "mlp.c_fc.bias", 1, 4 * W, 0);
        T(proj_w, "mlp.c_proj.weight", 2, W, 4 * W);
        T(proj_b, "mlp.c_proj.bias", 1, W, 0);
#undef T
    }
}

/* Hugging Face names; the head count is not in this file: taken from the
** OpenAI file of the same model. */
static void load_hf(struct model *m, const char *path, int heads)
{
    memset(m, 0, sizeof *m);
    m->ok = st_open(path, &m->st);
    if (!m->ok) {
        check(0, "open hf safetensors", "%s", path);
        return;
    }
    int nd;
    long te[4], pe[4], tp[4];
    float *tok = st_get(&m->st, "text_model.embeddings.token_embedding.weight", &nd, te);
    float *pos = st_get(&m->st, "text_model.embeddings.position_embedding.weight", &nd, pe);
    float *projT = st_get(&m->st, "text_projection.weight", &nd, tp);
    if (!tok || !pos || !projT) {
        check(0, "hf layout", "missing embeddings or projection");
        m->ok = 0;
        return;
    }
    int W = (int)te[1], E = (int)tp[0];
    m->cfg = (struct ram_clip_config){(int)te[0], (int)pe[0], W, heads, 0, E, 1e-5f};
    m->cfg.layers = count_layers(&m->st, "text_model.encoder.layers.%d.layer_norm1.weight");
    float *proj = st_keep(&m->st, malloc(sizeof(float) * (size_t)W * E));
    for (int e = 0; e < E; e++) /* (E, W) -> (W, E) */
        for (int c = 0; c < W; c++) proj[(size_t)c * E + e] = projT[(size_t)e * W + c];
    m->w.tok_emb = tok;
    m->w.pos_emb = pos;
    m->w.text_proj = proj;
    m->w.lnf_w = need(m, "text_model.final_layer_norm.weight", 1, W, 0);
    m->w.lnf_b = need(m, "text_model.final_layer_norm.bias", 1, W, 0);
    m->w.layers = calloc((size_t)m->cfg.layers + 1, sizeof *m->w.layers);
    for (int l = 0; l < m->cfg.layers && m->ok; l++) {
        struct ram_clip_layer_w *L = &m->w.layers[l];
        char n[256];
#define T(field, suffix, nd_, a, b)                                      \
    snprintf(n, sizeof n, "text_model.encoder.layers.%d.%s", l, suffix); \
    L->field = need(m, n, nd_, a, b)
        const float *qkv_w[3], *qkv_b[3];
        T(ln1_w, "layer_norm1.weight", 1, W, 0);
        T(ln1_b, "layer_norm1.bias", 1, W, 0);
        T(out_w, "self_attn.out_proj.weight", 2, W, W);
        T(out_b, "self_attn.out_proj.bias", 1, W, 0);
        T(ln2_w, "layer_norm2.weight", 1, W, 0);
        T(ln2_b, "layer_norm2.bias", 1, W, 0);
        T(fc_w, "mlp.fc1.weight", 2, 4 * W, W);
        T(fc_b, "mlp.fc1.bias", 1, 4 * W, 0);
        T(proj_w, "mlp.fc2.weight", 2, W, 4 * W);
        T(proj_b, "mlp.fc2.bias", 1, W, 0);
#undef T
        static const char *const qkv[3] = {"q", "k", "v"};
        for (int t = 0; t < 3; t++) {
            snprintf(n, sizeof n, "text_model.encoder.layers.%d.self_attn.%s_proj.weight", l, qkv[t]);
            qkv_w[t] = need(m, n, 2, W, W);
            snprintf(n, sizeof n, "text_model.encoder.layers.%d.self_attn.%s_proj.bias", l, qkv[t]);
            qkv_b[t] = need(m, n, 1, W, 0);
        }
        if (!m->ok) break;
        float *in_w = st_keep(&m->st, malloc(sizeof(float) * 3 * (size_t)W * W));
        float *in_b = st_keep(&m->st, malloc(sizeof(float) * 3 * (size_t)W));
        for (int t = 0; t < 3; t++) { /* in_proj rows = [Wq; Wk; Wv] */
            memcpy(in_w + (size_t)t * W * W, qkv_w[t], sizeof(float) * (size_t)W * W);
            memcpy(in_b + (size_t)t * W, qkv_b[t], sizeof(float) * (size_t)W);
        }
        L->in_w = in_w;
        L->in_b = in_b;
    }
}

static void free_model(struct model *m)
{
    free(m->w.layers);
    st_close(&m->st);
}

/* ------------------------------------------------------------------ golden checks */

static void test_golden(struct model *m, const char *label, const struct npy *ids)
{
    char name[128];
    int B = (int)ids->shape[0], T = (int)ids->shape[1], E = m->cfg.embed_dim, W = m->cfg.width;
    size_t nf = ram_clip_scratch_floats(&m->cfg);
    float *scratch = malloc(sizeof(float) * nf), *feat = malloc(sizeof(float) * (size_t)B * E);
    float *rows = malloc(sizeof(float) * (size_t)T * W);
    struct ram_error err;
    int ok = 1;
    for (int b = 0; b < B && ok; b++) {
        ram_status rc =
            ram_clip_encode(&m->cfg, &m->w, ids->i32 + (size_t)b * T, T, scratch, feat + (size_t)b * E, &err);
        if (rc) {
            check(0, "clip encode", "%s row %d: %s", label, b, err.msg);
            ok = 0;
        }
    }
    snprintf(name, sizeof name, "%s: text_features (%d x %d)", label, B, E);
    if (ok) check_close_npy(name, feat, (size_t)B * E, data_path("golden/openset/text_features.npy"), 1e-4);

    /* Intermediates up to EOT (later positions are never computed). */
    static const struct {
        const char *file;
        int layers, final_ln;
    } dbg[] = {{"golden/openset/clip_resblock0_out.npy", 1, 0},
               {"golden/openset/clip_resblock1_out.npy", 2, 0},
               {"golden/openset/clip_ln_final_out.npy", -1, 1}};
    for (size_t d = 0; d < sizeof dbg / sizeof dbg[0]; d++) {
        struct npy g;
        int layers = dbg[d].layers < 0 ? m->cfg.layers : dbg[d].layers;
        if (layers > m->cfg.layers) continue;
        if (!npy_load(data_path(dbg[d].file), &g) || g.ndim != 3 || g.shape[0] != B || g.shape[2] != W) {
            check(0, dbg[d].file, "cannot read or wrong shape");
            continue;
        }
        double worst = 0;
        int n_rows = 0;
        for (int b = 0; b < B; b++) {
            ram_status rc = ram_clip_debug_rows(&m->cfg, &m->w, ids->i32 + (size_t)b * T, T, layers, dbg[d].final_ln,
                                                scratch, rows, &n_rows, &err);
            if (rc) {
                worst = INFINITY;
                break;
            }
            double e = max_abs_diff(rows, g.data + (size_t)b * T * W, (size_t)n_rows * W);
            worst = e > worst ? e : worst;
        }
        snprintf(name, sizeof name, "%s: %s (rows up to EOT)", label, strrchr(dbg[d].file, '/') + 1);
        check(worst <= 1e-4, name, "max abs error %.3g", worst);
        npy_free(&g);
    }

    /* Padding after EOT, or none at all, gives the identical vector. */
    const int32_t *r0 = ids->i32;
    int eot = 0;
    for (int t = 0; t < T; t++)
        if (r0[t] > r0[eot]) eot = t;
    float *a = malloc(sizeof(float) * (size_t)E);
    ram_status rc = ram_clip_encode(&m->cfg, &m->w, r0, eot + 1, scratch, a, &err);
    snprintf(name, sizeof name, "%s: no padding gives the same vector", label);
    check(rc == RAM_OK && !memcmp(a, feat, sizeof(float) * (size_t)E), name, "rc %d", rc);
    free(a);
    free(rows);
    free(feat);
    free(scratch);
}

static void test_tokenizer_to_ids(const struct npy *ids)
{
    const char *build = getenv("RAM_BUILD");
    char path[1024];
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt", build ? build : "build");
    size_t len;
    char *vocab = read_file(path, &len), *tags = NULL;
    struct ram_bpe *bpe = NULL;
    struct ram_error err;
    struct jv d = {0};
    if (!vocab || ram_bpe_init(vocab, len, &bpe, &err)) {
        check(0, "tokenizer for openset descriptions", "cannot load %s", path);
        goto done;
    }
    size_t tl;
    tags = read_file(data_path("golden/openset/openset_tags.json"), &tl);
    struct jp j = {tags, tags + (tags ? tl : 0), 0};
    if (tags) jparse(&j, &d);
    if (!tags || j.bad || d.t != J_ARR) {
        check(0, "openset_tags.json", "cannot read");
        goto done;
    }
    int row = 0, bad = -1;
    for (int t = 0; t < d.n; t++) { /* [{tag: [descriptions]}], category-major */
        const struct jv *descs = d.items[t].n == 1 ? &d.items[t].items[0] : NULL;
        for (int k = 0; descs && k < descs->n; k++, row++) {
            int32_t got[RAM_CLIP_CONTEXT];
            int n = 0;
            if (row >= ids->shape[0] ||
                ram_bpe_tokenize(bpe, descs->items[k].str, descs->items[k].len, got, RAM_CLIP_CONTEXT, &n, &err)) {
                bad = row;
                break;
            }
            for (int i = 0; i < RAM_CLIP_CONTEXT; i++)
                if ((i < n ? got[i] : 0) != ids->i32[(size_t)row * RAM_CLIP_CONTEXT + i]) bad = row;
        }
    }
    check(bad < 0 && row == ids->shape[0], "tokenizer reproduces openset/token_ids.npy", "row %d of %d", bad, row);
done:
    jfree(&d);
    free(tags);
    ram_bpe_free(bpe);
    free(vocab);
}

static void test_errors(struct model *m)
{
    struct ram_error err;
    size_t nf = ram_clip_scratch_floats(&m->cfg);
    float *scratch = malloc(sizeof(float) * nf), out[512];
    int32_t ids[4] = {49406, 320, 49407, 0};
    ram_status rc;
    ids[1] = -1;
    rc = ram_clip_encode(&m->cfg, &m->w, ids, 3, scratch, out, &err);
    check(rc == RAM_ERR_ARG && strstr(err.msg, "outside"), "negative token id", "rc %d: %s", rc, err.msg);
    ids[1] = m->cfg.vocab;
    rc = ram_clip_encode(&m->cfg, &m->w, ids, 3, scratch, out, &err);
    check(rc == RAM_ERR_ARG && strstr(err.msg, "outside"), "token id = vocab", "rc %d: %s", rc, err.msg);
    ids[1] = 320;
    rc = ram_clip_encode(&m->cfg, &m->w, ids, 0, scratch, out, &err);
    check(rc == RAM_ERR_ARG, "zero tokens", "rc %d", rc);
    int32_t *many = calloc((size_t)m->cfg.context + 1, sizeof *many);
    rc = ram_clip_encode(&m->cfg, &m->w, many, m->cfg.context + 1, scratch, out, &err);
    check(rc == RAM_ERR_ARG && strstr(err.msg, "tokens"), "more tokens than the context", "rc %d: %s", rc, err.msg);
    free(many);
    struct ram_clip_config bad = m->cfg;
    bad.heads = 3; /* 16 % 3 != 0 */
    rc = ram_clip_encode(&bad, &m->w, ids, 3, scratch, out, &err);
    check(rc == RAM_ERR_ARG && ram_clip_scratch_floats(&bad) == 0, "heads not dividing width", "rc %d", rc);
    bad = m->cfg;
    bad.context = 1 << 30;
    check(ram_clip_scratch_floats(&bad) == 0, "huge context refused", "%zu", ram_clip_scratch_floats(&bad));
    free(scratch);
}

/* ------------------------------------------------------------------ held-out config */

static unsigned rng_state = 2024;
static float rnd(float scale)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return scale * ((float)(rng_state >> 8) / 16777216.0f - 0.5f) * 2.0f;
}

static float *rnd_array(size_t n, float scale, float offset)
{
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = offset + rnd(scale);
    return p;
}

static void naive_ln(const double *x, double *y, int W, const float *g, const float *b)
{
    double mu = 0, var = 0;
    for (int c = 0; c < W; c++) mu += x[c];
    mu /= W;
    for (int c = 0; c < W; c++) var += (x[c] - mu) * (x[c] - mu);
    var /= W;
    for (int c = 0; c < W; c++) y[c] = (x[c] - mu) / sqrt(var + 1e-5) * g[c] + b[c];
}

/* The textbook forward over the whole context (padding included), double. */
static void naive_encode(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids, double *out)
{
    int T = cfg->context, W = cfg->width, H = cfg->heads, hd = W / H, F = 4 * W;
    double *x = calloc((size_t)T * W, sizeof *x), *h = calloc((size_t)T * W, sizeof *h);
    double *qkv = calloc((size_t)T * 3 * W, sizeof *qkv), *att = calloc((size_t)T * W, sizeof *att);
    double *mid = calloc((size_t)F, sizeof *mid), *p = calloc((size_t)T, sizeof *p);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < W; c++) x[t * W + c] = (double)w->tok_emb[(size_t)ids[t] * W + c] + w->pos_emb[t * W + c];
    for (int l = 0; l < cfg->layers; l++) {
        const struct ram_clip_layer_w *L = &w->layers[l];
        for (int t = 0; t < T; t++) naive_ln(x + t * W, h + t * W, W, L->ln1_w, L->ln1_b);
        for (int t = 0; t < T; t++)
            for (int o = 0; o < 3 * W; o++) {
                double s = L->in_b[o];
                for (int c = 0; c < W; c++) s += h[t * W + c] * L->in_w[o * W + c];
                qkv[t * 3 * W + o] = s;
            }
        for (int hh = 0; hh < H; hh++)
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += qkv[i * 3 * W + hh * hd + d] * qkv[j * 3 * W + W + hh * hd + d];
                    p[j] = j > i ? -INFINITY : s / sqrt((double)hd);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j < T; j++) sum += (p[j] = exp(p[j] - mx));
                for (int d = 0; d < hd; d++) {
                    double s = 0;
                    for (int j = 0; j < T; j++) s += p[j] / sum * qkv[j * 3 * W + 2 * W + hh * hd + d];
                    att[i * W + hh * hd + d] = s;
                }
            }
        for (int t = 0; t < T; t++)
            for (int o = 0; o < W; o++) {
                double s = L->out_b[o];
                for (int c = 0; c < W; c++) s += att[t * W + c] * L->out_w[o * W + c];
                x[t * W + o] += s;
            }
        for (int t = 0; t < T; t++) {
            naive_ln(x + t * W, h + t * W, W, L->ln2_w, L->ln2_b);
            for (int f = 0; f < F; f++) {
                double s = L->fc_b[f];
                for (int c = 0; c < W; c++) s += h[t * W + c] * L->fc_w[f * W + c];
                mid[f] = s / (1 + exp(-1.702 * s));
            }
            for (int o = 0; o < W; o++) {
                double s = L->proj_b[o];
                for (int f = 0; f < F; f++) s += mid[f] * L->proj_w[o * F + f];
                x[t * W + o] += s;
            }
        }
    }
    int eot = 0;
    for (int t = 0; t < T; t++)
        if (ids[t] > ids[eot]) eot = t;
    naive_ln(x + eot * W, h, W, w->lnf_w, w->lnf_b);
    for (int e = 0; e < cfg->embed_dim; e++) {
        double s = 0;
        for (int c = 0; c < W; c++) s += h[c] * w->text_proj[(size_t)c * cfg->embed_dim + e];
        out[e] = s;
    }
    free(x), free(h), free(qkv), free(att), free(mid), free(p);
}

static void test_held_out_config(void)
{
    struct ram_clip_config cfg = {/*vocab*/ 57, /*context*/ 11, /*width*/ 24, /*heads*/ 3,
                                  /*layers*/ 3, /*embed*/ 7,    1e-5f};
    int V = cfg.vocab, T = cfg.context, W = cfg.width, F = 4 * W, E = cfg.embed_dim;
    struct ram_clip_w w = {0};
    w.tok_emb = rnd_array((size_t)V * W, 1.0f, 0);
    w.pos_emb = rnd_array((size_t)T * W, 0.5f, 0);
    w.lnf_w = rnd_array((size_t)W, 0.2f, 1.0f);
    w.lnf_b = rnd_array((size_t)W, 0.1f, 0);
    w.text_proj = rnd_array((size_t)W * E, 0.3f, 0);
    struct ram_clip_layer_w *layers = calloc((size_t)cfg.layers, sizeof *layers);
    w.layers = layers;
    float s = 1.0f / sqrtf((float)W);
    for (int l = 0; l < cfg.layers; l++) {
        struct ram_clip_layer_w *L = &layers[l];
        L->ln1_w = rnd_array((size_t)W, 0.2f, 1), L->ln1_b = rnd_array((size_t)W, 0.1f, 0);
        L->in_w = rnd_array((size_t)3 * W * W, 2 * s, 0), L->in_b = rnd_array((size_t)3 * W, 0.1f, 0);
        L->out_w = rnd_array((size_t)W * W, s, 0), L->out_b = rnd_array((size_t)W, 0.1f, 0);
        L->ln2_w = rnd_array((size_t)W, 0.2f, 1), L->ln2_b = rnd_array((size_t)W, 0.1f, 0);
        L->fc_w = rnd_array((size_t)F * W, s, 0), L->fc_b = rnd_array((size_t)F, 0.1f, 0);
        L->proj_w = rnd_array((size_t)W * F, s / 2, 0), L->proj_b = rnd_array((size_t)W, 0.1f, 0);
    }
    /* Texts of several lengths; EOT = the largest id, zero padding after. */
    int32_t ids[3][11] = {
        {55, 3, 9, 56, 0, 0, 0, 0, 0, 0, 0}, {55, 56, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {55, 1, 2, 3, 4, 5, 6, 7, 8, 9, 56}};
    size_t nf = ram_clip_scratch_floats(&cfg);
    float *scratch = malloc(sizeof(float) * nf), out[7];
    double ref[7], worst = 0;
    struct ram_error err;
    for (int k = 0; k < 3; k++) {
        ram_status rc = ram_clip_encode(&cfg, &w, ids[k], T, scratch, out, &err);
        naive_encode(&cfg, &w, ids[k], ref);
        for (int e = 0; e < E; e++) {
            double d = rc ? INFINITY : fabs(out[e] - ref[e]);
            if (isnan(d)) d = INFINITY;
            worst = d > worst ? d : worst;
        }
    }
    check(worst <= 1e-4, "held-out config (W 24, 3 heads of 8, 3 layers, ctx 11, E 7) vs naive", "max abs error %.3g",
          worst);
    free(scratch);
    for (int l = 0; l < cfg.layers; l++) {
        struct ram_clip_layer_w *L = &layers[l];
        const float *ps[] = {L->ln1_w, L->ln1_b, L->in_w, L->in_b, L->out_w,  L->out_b,
                             L->ln2_w, L->ln2_b, L->fc_w, L->fc_b, L->proj_w, L->proj_b};
        for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free((void *)ps[i]);
    }
    free(layers);
    free((void *)w.tok_emb), free((void *)w.pos_emb), free((void *)w.lnf_w), free((void *)w.lnf_b);
    free((void *)w.text_proj);
}

int main(void)
{
    struct npy ids;
    if (!npy_load(data_path("golden/openset/token_ids.npy"), &ids) || !ids.i32 || ids.ndim != 2) {
        check(0, "read token_ids.npy", "cannot read");
        return harness_exit();
    }
    struct model oa, hf;
    load_openai(&oa, data_path("golden/clip_tiny_text.safetensors"));
    if (oa.ok) {
        check(oa.cfg.layers >= 1 && oa.cfg.width > 0 && oa.cfg.context == ids.shape[1], "openai layout config",
              "layers %d width %d context %d", oa.cfg.layers, oa.cfg.width, oa.cfg.context);
        test_golden(&oa, "openai layout", &ids);
        test_errors(&oa);
    }
    load_hf(&hf, data_path("golden/clip_tiny_text_hf.safetensors"), oa.ok ? oa.cfg.heads : 1);
    if (hf.ok) test_golden(&hf, "hf layout", &ids);
    free_model(&hf);
    free_model(&oa);
    test_tokenizer_to_ids(&ids);
    test_held_out_config();
    npy_free(&ids);
    return harness_exit();
}
