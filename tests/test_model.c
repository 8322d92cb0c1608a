/*
** test_model.c — the model file format, the weight binder, the loader and
** ram-convert: golden .pth -> model file -> load, with every bound tensor
** compared byte for byte with the checkpoint's; f16 round trip; CLIP from
** OpenAI and Hugging Face layouts binding to identical weights; config
** inference (held-out-like sizes, attn_mask image size); corrupted and
** hostile files (truncation, header length, JSON garbage, offsets, shapes,
** checksum, unknown tensors, metadata) giving clean errors; allocation
** failures; the JSON parser's edges.
*/
#include "harness.h"

#include "internal.h"
#include "json.h"
#include "model.h"
#include "pth_reader.h"
#include "safetensors.h"
#include "weights.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* A whole file as a NUL-terminated string (malloc'd), or NULL. */
static char *read_text(const char *path)
{
    size_t n;
    char *p = read_file(path, &n);
    if (!p) return NULL;
    char *s = realloc(p, n + 1);
    if (!s) {
        free(p);
        return NULL;
    }
    s[n] = 0;
    return s;
}

static void rm_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
    closedir(d);
    rmdir(tmpdir);
}

/* ------------------------------------------------------------------ JSON */

static void test_json(void)
{
    struct ram_json j;
    struct ram_error err;
    const char *ok =
        " {\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {\"c\": null, \"d\": true}, \"e\": []} ";
    ram_status rc = ram_json_parse(ok, strlen(ok), 8, &j, &err);
    check(rc == RAM_OK, "json: parse valid document", "%s", err.msg);
    if (rc == RAM_OK) {
        int a = ram_json_find(&j, 0, "a"), b = ram_json_find(&j, 0, "b"), e = ram_json_find(&j, 0, "e");
        check(a > 0 && j.nodes[a].count == 3 && b > 0 && e > 0 && j.nodes[e].count == 0, "json: find keys",
              "a=%d b=%d e=%d", a, b, e);
        int x = ram_json_first(&j, a);
        int64_t v;
        check(ram_json_int64(&j, x, &v) && v == 1, "json: int", " ");
        x = ram_json_next(&j, a, x);
        double d;
        check(!ram_json_int64(&j, x, &v) && ram_json_double(&j, x, &d) && d == -2500.0, "json: double", " ");
        x = ram_json_next(&j, a, x);
        size_t len;
        char *s = NULL;
        ram_json_strdup(&j, x, &s, &len, &err);
        check(s && len == 8 && !memcmp(s, "x\xc3\xa9\xf0\x9f\x98\x80\n", 8), "json: escapes and surrogates", "len %zu",
              len);
        ram_free(s);
        check(ram_json_next(&j, a, x) == -1, "json: end of array", " ");
        check(ram_json_find(&j, b, "d") > 0 && j.nodes[ram_json_find(&j, b, "d")].type == RAM_JSON_TRUE &&
                  ram_json_find(&j, b, "zz") == -1,
              "json: nested object", " ");
        ram_json_free(&j);
    }
    const char *bad[] = {"",         "{",     "{\"a\":}",   "[1,]", "{\"a\" 1}",     "[01]", "[1.]", "\"\\x\"",
                         "\"a\nb\"", "[1] x", "{\"a\":1,}", "nul",  "[\"\\ud800\"]", "-",    "[1e]", "{1:2}"};
    int all = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = ram_json_parse(bad[i], strlen(bad[i]), 8, &j, &err);
        if (rc == RAM_OK) {
            /* A lone surrogate parses but cannot be decoded. */
            int s = ram_json_first(&j, 0);
            char *d = NULL;
            if (s >= 0) ram_json_strdup(&j, s, &d, NULL, &err);
            if (d || i != 12) {
                printf("  accepted: %s\n", bad[i]);
                all = 0;
            }
            ram_free(d);
            ram_json_free(&j);
        }
    }
    check(all, "json: malformed documents rejected", "see above");
    char deep[300];
    memset(deep, '[', 150);
    memset(deep + 150, ']', 150);
    rc = ram_json_parse(deep, 300, 16, &j, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "deeply"), "json: depth cap", "rc %d %s", rc, err.msg);
    rc = ram_json_parse(deep, 300, 200, &j, &err);
    check(rc == RAM_OK, "json: deep nesting within the cap", "%s", err.msg);
    ram_json_free(&j);
}

/* ------------------------------------------------------------------ helpers */

/* A config built by hand (no checkpoint): the held-out-like sizes. */
static struct ram_model *config_model(int kind, int image, int window, const int *depths, const int *heads,
                                      int n_stages, int embed, int num_class, int des, int clip)
{
    struct ram_error err;
    struct ram_model *m = ram_calloc(1, sizeof *m);
    m->kind = kind;
    m->swin.image_size = image;
    m->swin.patch_size = 4;
    m->swin.in_chans = 3;
    m->swin.embed_dim = embed;
    m->swin.n_stages = n_stages;
    for (int s = 0; s < n_stages; s++) {
        m->swin.depths[s] = depths[s];
        m->swin.heads[s] = heads[s];
    }
    m->swin.window = window;
    m->swin.mlp_ratio = 4;
    m->des_per_class = des;
    m->embed_dim = 512;
    m->tagger.hidden = 24;
    m->tagger.n_layers = 2;
    m->tagger.n_heads = 3;
    m->tagger.intermediate = 40;
    m->tagger.encoder_width = 512;
    if (clip) {
        m->has_clip = 1;
        m->clip.vocab = 49408;
        m->clip.context = 77;
        m->clip.width = 16;
        m->clip.heads = 2;
        m->clip.layers = 2;
        m->clip.embed_dim = 512;
    }
    char en[4096] = "", zh[4096] = "";
    size_t oe = 0, oz = 0;
    for (int i = 0; i < num_class; i++) {
        oe += (size_t)snprintf(en + oe, sizeof en - oe, "%sname %d", i ? "\n" : "", i);
        oz += (size_t)snprintf(zh + oz, sizeof zh - oz, "%s\xe5\x90\x8d%d  ", i ? "\n" : "", i);
    }
    if (ram_model_set_vocab(m, 0, en, oe, zh, oz, NULL, 0, NULL, &err) || ram_model_check_config(m, &err)) {
        printf("  config_model: %s\n", err.msg);
        ram_model_free(m);
        return NULL;
    }
    return m;
}

static char *bpe_text;
static size_t bpe_len;

static int write_random(struct ram_model *m, const char *path, int dtype, uint64_t seed)
{
    struct ram_write_opts o;
    struct ram_error err;
    memset(&o, 0, sizeof o);
    o.dtype = dtype;
    o.random = 1;
    o.seed = seed;
    o.bpe_text = bpe_text;
    o.bpe_len = bpe_len;
    ram_status rc = ram_model_write(m, path, &o, NULL, &err);
    if (rc) printf("  write %s: %s\n", path, err.msg);
    return rc == RAM_OK;
}

static struct ram_model *load(const char *path, int verify, struct ram_error *err)
{
    struct ram_model_params p = ram_model_default_params();
    p.verify_checksum = verify;
    struct ram_model *m = (struct ram_model *)0x1;
    ram_status rc = ram_model_init_from_file(path, &p, &m, err);
    if (rc != RAM_OK) {
        if (m != NULL) printf("  %s: *out not NULL after an error\n", path);
        return NULL;
    }
    return m;
}

/* Calls fn(spec, value pointer, numel) for every tensor of m. */
static size_t spec_numel(const struct ram_wspec *w)
{
    size_t n = 1;
    for (int d = 0; d < w->ndim; d++) n *= (size_t)w->shape[d];
    return n;
}

static const float *spec_data(const struct ram_wspec *w) { return w->scalar ? w->scalar : *w->dst; }

/* ------------------------------------------------------------------ held-out configs */

static void test_heldout(void)
{
    struct ram_error err;
    static const int d1[4] = {1, 3, 1, 1}, h1[4] = {2, 2, 4, 4};
    struct {
        int kind, image, window, classes, des;
    } cases[] = {{RAM_KIND_RAM_PLUS, 96, 6, 7, 3}, {RAM_KIND_RAM_PLUS, 96, 3, 7, 3}, {RAM_KIND_RAM, 96, 6, 7, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "heldout%zu.ram", c);
        struct ram_model *m = config_model(cases[c].kind, cases[c].image, cases[c].window, d1, h1, 4, 8,
                                           cases[c].classes, cases[c].des, 0);
        check(m != NULL, "heldout: config valid", "case %zu", c);
        if (!m) continue;
        int ok = write_random(m, tmp_path(name), RAM_DTYPE_F32, 42 + c);
        check(ok, "heldout: random model written", "case %zu", c);
        struct ram_model *l = ok ? load(tmp_path(name), 1, &err) : NULL;
        check(l != NULL, "heldout: loads", "case %zu: %s", c, l ? "" : err.msg);
        if (l) {
            struct ram_model_info info;
            ram_model_get_info(l, &info);
            check(info.kind == cases[c].kind && info.num_class == 7 && info.des_per_class == cases[c].des &&
                      info.image_size == 96 && info.embed_dim == 512 && info.n_image_tokens == 1 + 3 * 3 &&
                      !info.has_text_encoder && !strcmp(info.dtype, "f32"),
                  "heldout: info", "kind %d classes %d des %d image %d tokens %d", info.kind, info.num_class,
                  info.des_per_class, info.image_size, info.n_image_tokens);
            check(l->swin.window == cases[c].window && l->stage[1].res == 12 && l->stage[1].dim == 16 &&
                      l->stage[3].window == 3 && l->swin.depths[1] == 3 && l->tagger.n_heads == 3 &&
                      l->tagger.hidden == 24 && l->tagger.intermediate == 40,
                  "heldout: config read back", "window %d", l->swin.window);
            check(!strcmp(ram_model_tag(l, 3, RAM_LANG_EN), "name 3") &&
                      !strcmp(ram_model_tag(l, 6, RAM_LANG_ZH), "\xe5\x90\x8d"
                                                                "6") &&
                      ram_model_tag(l, 7, RAM_LANG_EN) == NULL && ram_model_tag(l, -1, RAM_LANG_EN) == NULL &&
                      ram_model_threshold(l, 0) == 0.68f,
                  "heldout: vocabulary (zh trimmed)", "%s", ram_model_tag(l, 6, RAM_LANG_ZH));
            /* label_embed rows are unit-norm, LayerNorm weights 1. */
            double n2 = 0;
            for (int k = 0; k < 512; k++) n2 += (double)l->label_embed[512 + k] * l->label_embed[512 + k];
            check(fabs(n2 - 1) < 1e-5 && l->swin_w.norm_w[0] == 1.0f && l->swin_w.norm_b[0] == 0.0f,
                  "heldout: random init kinds", "row norm^2 %g", n2);
            if (cases[c].kind == RAM_KIND_RAM)
                check(l->wordvec_w && l->reweight_scale == 0, "heldout: RAM has no reweight_scale", " ");
            else
                check(fabsf(l->reweight_scale - logf(1 / 0.07f)) < 1e-6f, "heldout: reweight_scale", "%g",
                      l->reweight_scale);
        }

        /* Config inference from the written file's shapes (no attn_mask: image size given). */
        if (l && c < 2) {
            struct ram_st_map *mf = NULL;
            if (ram_st_open(tmp_path(name), 0, &mf, &err) == RAM_OK) {
                struct ram_tensor_source src = ram_st_source(&mf->st);
                struct ram_model *inf = ram_calloc(1, sizeof *inf);
                struct ram_convert_opts o = {0, 0, 3, 0, 0};
                ram_status rc = ram_model_infer_config(inf, &src, 7, &o, &err);
                check(rc == RAM_ERR_ARG && strstr(err.msg, "image size"),
                      "infer: image size required without attn_mask", "rc %d %s", rc, err.msg);
                o.image_size = 96;
                rc = ram_model_infer_config(inf, &src, 7, &o, &err);
                check(rc == RAM_OK && inf->swin.window == cases[c].window && inf->swin.n_stages == 4 &&
                          inf->swin.depths[0] == 1 && inf->swin.depths[1] == 3 && inf->swin.heads[2] == 4 &&
                          inf->swin.embed_dim == 8 && inf->swin.mlp_ratio == 4 && inf->des_per_class == 3 &&
                          inf->kind == RAM_KIND_RAM_PLUS && inf->tagger.hidden == 24 &&
                          inf->tagger.intermediate == 40 && inf->tagger.n_layers == 2 && inf->tagger.n_heads == 3,
                      "infer: held-out config from shapes", "rc %d %s window %d", rc, rc ? err.msg : "",
                      inf->swin.window);
                if (rc == RAM_OK) {
                    rc = ram_model_bind(inf, &src, &err);
                    check(rc == RAM_OK && inf->label_embed != NULL, "infer: binds", "%s", err.msg);
                }
                rc = ram_model_infer_config(inf, &src, 4, &o, &err);
                check(rc == RAM_ERR_FORMAT && strstr(err.msg, "not a multiple"),
                      "infer: label_embed rows not divisible by num_class", "rc %d %s", rc, err.msg);
                ram_model_free(inf);
                ram_st_close(mf);
            } else {
                check(0, "infer: open written file", "%s", err.msg);
            }
        }
        ram_model_free(l);
        ram_model_free(m);
    }
}

/* Image size from an attn_mask buffer: the random held-out file plus a
** synthetic stage-1 mask (4 windows of 6x6 at 12x12 -> image 96). */
static ram_status zero_fill(void *ctx, const struct ram_st_out *t, size_t first, size_t count, float *dst,
                            struct ram_error *err)
{
    memset(dst, 0, count * sizeof(float));
    return RAM_OK;
}

static void test_infer_mask(void)
{
    struct ram_error err;
    struct ram_st_map *mf = NULL;
    if (ram_st_open(tmp_path("heldout0.ram"), 0, &mf, &err)) {
        check(0, "infer mask: open", "%s", err.msg);
        return;
    }
    int n = mf->st.n_tensors;
    struct ram_st_out *o = calloc((size_t)n + 1, sizeof *o);
    for (int i = 0; i < n; i++) {
        const struct ram_tensor_view *v = &mf->st.tensors[i];
        o[i].name = v->name;
        o[i].dtype = v->dtype;
        o[i].ndim = v->ndim;
        memcpy(o[i].shape, v->shape, sizeof o[i].shape);
        o[i].bytes = v->data;
    }
    o[n] = (struct ram_st_out){.name = "visual_encoder.layers.1.blocks.1.attn_mask",
                               .dtype = RAM_DTYPE_F32,
                               .ndim = 3,
                               .shape = {4, 36, 36},
                               .fill = zero_fill};
    ram_status rc = ram_st_write(tmp_path("mask.safetensors"), o, n + 1, NULL, NULL, 0, NULL, NULL, &err);
    check(rc == RAM_OK, "infer mask: write", "%s", err.msg);
    struct ram_st_map *mm = NULL;
    if (rc == RAM_OK && ram_st_open(tmp_path("mask.safetensors"), RAM_ST_STRICT, &mm, &err) == RAM_OK) {
        struct ram_tensor_source src = ram_st_source(&mm->st);
        struct ram_model *inf = ram_calloc(1, sizeof *inf);
        struct ram_convert_opts opts = {0, 0, 3, 0, 0};
        rc = ram_model_infer_config(inf, &src, 7, &opts, &err);
        check(rc == RAM_OK && inf->swin.image_size == 96 && inf->swin.window == 6, "infer: image size from attn_mask",
              "rc %d %s image %d", rc, rc ? err.msg : "", inf->swin.image_size);
        ram_model_free(inf);
        ram_st_close(mm);
    } else {
        check(0, "infer mask: reopen", "%s", err.msg);
    }
    free(o);
    ram_st_close(mf);
}

/* ------------------------------------------------------------------ f16 */

static void test_f16(void)
{
    struct ram_error err;
    static const int d[4] = {2, 2, 2, 2}, h[4] = {2, 2, 4, 8};
    struct ram_model *m = config_model(RAM_KIND_RAM_PLUS, 128, 4, d, h, 4, 16, 12, 5, 1);
    if (!m) {
        check(0, "f16: config", " ");
        return;
    }
    int ok = write_random(m, tmp_path("r32.ram"), RAM_DTYPE_F32, 7) &&
             write_random(m, tmp_path("r16.ram"), RAM_DTYPE_F16, 7);
    check(ok, "f16: written", " ");
    struct ram_model *a = ok ? load(tmp_path("r32.ram"), 1, &err) : NULL;
    struct ram_model *b = ok ? load(tmp_path("r16.ram"), 1, &err) : NULL;
    check(a && b, "f16: both load", "%s", err.msg);
    if (a && b) {
        struct ram_model_info ia, ib;
        ram_model_get_info(a, &ia);
        ram_model_get_info(b, &ib);
        check(!strcmp(ia.dtype, "f32") && !strcmp(ib.dtype, "f16") && ib.file_size < ia.file_size * 7 / 10 &&
                  ia.has_text_encoder && ib.has_text_encoder,
              "f16: info (dtype, smaller file, text encoder)", "%s %s %llu %llu", ia.dtype, ib.dtype,
              (unsigned long long)ia.file_size, (unsigned long long)ib.file_size);
        struct ram_wspec *sa, *sb;
        int na, nb;
        ram_model_specs(a, &sa, &na, &err);
        ram_model_specs(b, &sb, &nb, &err);
        int bad = 0, n_big = 0, exact_small = 1;
        for (int i = 0; i < na && i < nb; i++) {
            const float *x = spec_data(&sa[i]), *y = spec_data(&sb[i]);
            size_t n = spec_numel(&sa[i]);
            n_big += sa[i].big;
            for (size_t k = 0; k < n; k++) {
                float tol = sa[i].big ? fabsf(x[k]) * (1.0f / 2048) + 3e-8f : 0.0f;
                if (fabsf(x[k] - y[k]) > tol) bad++;
                if (sa[i].big) {
                    uint16_t hbits = ram_f32_to_f16(x[k]);
                    float back;
                    ram_f16_to_f32(&hbits, &back, 1);
                    if (memcmp(&back, &y[k], 4)) bad++;
                }
            }
            if (!sa[i].big && memcmp(x, y, n * 4)) exact_small = 0;
        }
        check(na == nb && bad == 0 && n_big > 20 && exact_small, "f16: values within f16 rounding, small tensors exact",
              "%d bad values, %d big", bad, n_big);
        ram_free(sa);
        ram_free(sb);
    }
    ram_model_free(a);
    ram_model_free(b);
    ram_model_free(m);
}

/* ------------------------------------------------------------------ CLIP layouts */

/* Binds the golden CLIP text tower from a safetensors file, with the main
** weights from a random model file (canonical names). */
static struct ram_model *bind_clip_from(const char *main_path, const char *clip_path, struct ram_st_map **keep_main,
                                        struct ram_st_map **keep_clip, struct ram_error *err)
{
    struct ram_model *m = NULL;
    *keep_main = *keep_clip = NULL;
    if (ram_st_open(main_path, 0, keep_main, err) || ram_st_open(clip_path, 0, keep_clip, err)) return NULL;
    static struct ram_clip_join j[2];
    static int k;
    struct ram_clip_join *jj = &j[k++ & 1];
    jj->main = ram_st_source(&(*keep_main)->st);
    jj->clip = ram_st_source(&(*keep_clip)->st);
    struct ram_tensor_source src = ram_join_clip(jj);
    m = ram_calloc(1, sizeof *m);
    struct ram_convert_opts o = {96, 0, 3, 2, 0};
    char en[256];
    size_t oe = 0;
    for (int i = 0; i < 7; i++) oe += (size_t)snprintf(en + oe, sizeof en - oe, "t%d\n", i);
    if (ram_model_set_vocab(m, 1, en, oe, NULL, 0, NULL, 0, NULL, err) ||
        ram_model_infer_config(m, &src, m->num_class, &o, err) || ram_model_bind(m, &src, err)) {
        ram_model_free(m);
        return NULL;
    }
    return m;
}

static void test_clip_layouts(void)
{
    struct ram_error err;
    struct ram_st_map *m1, *c1, *m2, *c2;
    struct ram_model *a =
        bind_clip_from(tmp_path("heldout0.ram"), data_path("golden/clip_tiny_text.safetensors"), &m1, &c1, &err);
    check(a != NULL, "clip: bind OpenAI layout", "%s", err.msg);
    struct ram_model *b =
        bind_clip_from(tmp_path("heldout0.ram"), data_path("golden/clip_tiny_text_hf.safetensors"), &m2, &c2, &err);
    check(b != NULL, "clip: bind Hugging Face layout", "%s", err.msg);
    if (a && b) {
        check(a->has_clip && b->has_clip && a->clip.width == 16 && a->clip.layers == 2 && a->clip.heads == 2 &&
                  a->clip.vocab == 49408 && a->clip.context == 77 && a->clip.embed_dim == 512 &&
                  !memcmp(&a->clip, &b->clip, sizeof a->clip),
              "clip: inferred config (both layouts)", "width %d layers %d", b->clip.width, b->clip.layers);
        struct ram_wspec *sa, *sb;
        int na, nb, same = 1, n_clip = 0;
        ram_model_specs(a, &sa, &na, &err);
        ram_model_specs(b, &sb, &nb, &err);
        for (int i = 0; i < na && i < nb; i++) {
            if (sa[i].part != RAM_PART_CLIP) continue;
            n_clip++;
            if (memcmp(spec_data(&sa[i]), spec_data(&sb[i]), spec_numel(&sa[i]) * 4)) {
                printf("  differs: %s\n", sa[i].name);
                same = 0;
            }
        }
        check(na == nb && same && n_clip == 2 + 2 * 12 + 3, "clip: HF and OpenAI layouts bind identical weights",
              "%d clip tensors", n_clip);
        /* The OpenAI layout binds in place; HF q/k/v and the projection are owned copies. */
        const struct ram_tensor_view *tp = ram_st_find(&c1->st, "text_projection");
        check(tp && a->clip_w.text_proj == tp->data && b->clip_w.text_proj != NULL,
              "clip: OpenAI tensors borrowed from the mapping", " ");
        ram_free(sa);
        ram_free(sb);
    }
    ram_model_free(a);
    ram_model_free(b);
    ram_st_close(m1);
    ram_st_close(c1);
    ram_st_close(m2);
    ram_st_close(c2);
}

/* ------------------------------------------------------------------ corrupted files */

static unsigned char *orig;
static size_t orig_len;

/* Expects path to fail to load (with a message containing want, if not
** NULL) with and without checksum verification as given. */
static void expect_fail(const char *name, const char *path, int verify, const char *want)
{
    struct ram_error err;
    memset(&err, 0, sizeof err);
    struct ram_model *m = load(path, verify, &err);
    check(m == NULL && err.msg[0] && (!want || strstr(err.msg, want)), name, "%s", m ? "loaded" : err.msg);
    ram_model_free(m);
}

/* orig with the first occurrence of `from` in the JSON header replaced by
** `to`; the header is re-padded so the data stays 64-byte aligned. */
static int variant(const char *path, const char *from, const char *to)
{
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | orig[i];
    char *h = malloc(hl + 1);
    memcpy(h, orig + 8, hl);
    h[hl] = 0;
    char *at = strstr(h, from);
    if (!at) {
        free(h);
        printf("  variant: %s not in header\n", from);
        return 0;
    }
    size_t fl = strlen(from), tl = strlen(to), nl = hl - fl + tl;
    char *nh = malloc(nl + 128);
    memcpy(nh, h, (size_t)(at - h));
    memcpy(nh + (at - h), to, tl);
    memcpy(nh + (at - h) + tl, at + fl, hl - (size_t)(at - h) - fl);
    while (nl && nh[nl - 1] == ' ') nl--;
    while ((8 + nl) % 64) nh[nl++] = ' ';
    size_t data = orig_len - 8 - hl;
    unsigned char *f = malloc(8 + nl + data);
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)((uint64_t)nl >> (8 * i));
    memcpy(f + 8, nh, nl);
    memcpy(f + 8 + nl, orig + 8 + hl, data);
    int ok = write_bytes(path, f, 8 + nl + data);
    free(f);
    free(nh);
    free(h);
    return ok;
}

/* The header's text for tensor `name` up to and including its closing brace. */
static int entry_of(const char *name, char *out, size_t cap)
{
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | orig[i];
    char key[160];
    snprintf(key, sizeof key, "\"%s\":{", name);
    char *h = malloc(hl + 1);
    memcpy(h, orig + 8, hl);
    h[hl] = 0;
    char *a = strstr(h, key), *b = a ? strchr(a, '}') : NULL;
    int ok = a && b && (size_t)(b - a + 1) < cap;
    if (ok) {
        memcpy(out, a, (size_t)(b - a + 1));
        out[b - a + 1] = 0;
    }
    free(h);
    return ok;
}

static void test_corrupt(void)
{
    struct ram_error err;
    const char *good = tmp_path("r32.ram"), *bad = tmp_path("bad.ram");
    orig = read_file(good, &orig_len);
    if (!orig || orig_len < 4096) {
        check(0, "corrupt: read the good file", " ");
        return;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | orig[i];

    /* Truncation at many points: header, header end, data, last byte. */
    size_t cuts[64];
    int nc = 0;
    size_t fixed[] = {0, 1, 7, 8, 9, 100, hl / 2, 8 + hl - 1, 8 + hl, 8 + hl + 1, orig_len - 1, orig_len - 4096};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) cuts[nc++] = fixed[i];
    for (int i = 1; i <= 30; i++) cuts[nc++] = (size_t)((double)orig_len * i / 31.0);
    int all = 1;
    for (int i = 0; i < nc; i++) {
        write_bytes(bad, orig, cuts[i]);
        for (int verify = 0; verify < 2; verify++) {
            struct ram_model *m = load(bad, verify, &err);
            if (m || !err.msg[0]) {
                printf("  truncated at %zu (verify %d) loaded\n", cuts[i], verify);
                all = 0;
            }
            ram_model_free(m);
        }
    }
    check(all, "corrupt: truncated at 42 points -> errors", "see above");

    /* Header length: huge, beyond the file, zero. */
    unsigned char *f = malloc(orig_len);
    memcpy(f, orig, orig_len);
    memset(f, 0xff, 8);
    write_bytes(bad, f, orig_len);
    expect_fail("corrupt: header length 2^64-1", bad, 1, "not a model file (bad magic)");
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)((uint64_t)(orig_len - 7) >> (8 * i));
    write_bytes(bad, f, orig_len);
    expect_fail("corrupt: header length past the end", bad, 1, "not a model file (bad magic)");
    memset(f, 0, 8);
    write_bytes(bad, f, orig_len);
    expect_fail("corrupt: header length 0", bad, 1, "not a model file (bad magic)");

    /* JSON garbage at a few places of the header. */
    all = 1;
    for (int k = 1; k < 12; k++) {
        memcpy(f, orig, orig_len);
        size_t at = 8 + (size_t)((double)(hl - 80) * k / 12.0);
        f[at] = '\x01';
        write_bytes(bad, f, orig_len);
        struct ram_model *m = load(bad, 1, &err);
        if (m) all = 0;
        ram_model_free(m);
    }
    check(all, "corrupt: control bytes in the JSON header", " ");
    memcpy(f, orig, orig_len);
    memcpy(f + 8, "[1,2,3]", 7);
    write_bytes(bad, f, orig_len);
    expect_fail("corrupt: header not an object", bad, 1, NULL);

    /* Random header mutations (deterministic): any outcome but a crash. */
    /* Each outcome must be one of two: a model whose info is the original's
    ** sizes (a mutation of padding or of a value to an equal one), or a
    ** RAM_ERR_FORMAT / RAM_ERR_TOO_BIG error with a message and *out NULL.
    ** Any other status, an empty message or a model of other sizes fails. */
    struct ram_model *om = load(good, 0, &err);
    struct ram_model_info oi;
    ram_model_get_info(om, &oi);
    uint64_t lcg = 12345;
    int loaded = 0, bad_outcomes = 0;
    char first_bad[256] = "";
    for (int k = 0; k < 300; k++) {
        memcpy(f, orig, orig_len);
        for (int r = 0; r < 1 + k % 4; r++) {
            lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = 8 + (size_t)((lcg >> 33) % hl);
            static const char pool[] = "{}[],:\"0123456789-eE. ax";
            f[at] = (unsigned char)pool[(lcg >> 20) % (sizeof pool - 1)];
        }
        write_bytes(bad, f, orig_len);
        struct ram_model_params p = ram_model_default_params();
        p.verify_checksum = 0;
        struct ram_model *mm = (struct ram_model *)0x1;
        memset(&err, 0, sizeof err);
        ram_status rc = ram_model_init_from_file(bad, &p, &mm, &err);
        int ok;
        if (rc == RAM_OK) {
            struct ram_model_info mi;
            ram_model_get_info(mm, &mi);
            ok = mm && mi.num_class == oi.num_class && mi.embed_dim == oi.embed_dim &&
                 mi.n_image_tokens == oi.n_image_tokens && mi.image_size == oi.image_size;
            loaded++;
            ram_model_free(mm);
        } else {
            ok = mm == NULL && (rc == RAM_ERR_FORMAT || rc == RAM_ERR_TOO_BIG) && err.msg[0];
        }
        if (!ok && !bad_outcomes++)
            snprintf(first_bad, sizeof first_bad, "mutation %d: status %d, message \"%.150s\"", k, (int)rc, err.msg);
    }
    ram_model_free(om);
    check(om && bad_outcomes == 0, "corrupt: 300 random header mutations give the model or a format error",
          "%d bad outcomes; first: %s", bad_outcomes, first_bad);
    printf("  (%d of the mutated files still loaded)\n", loaded);

    /* Flipped data byte: checksum error; without verification it loads. */
    memcpy(f, orig, orig_len);
    f[8 + hl + 1000] ^= 0x40;
    write_bytes(bad, f, orig_len);
    expect_fail("corrupt: flipped data byte -> checksum error", bad, 1, "checksum");
    struct ram_model *m = load(bad, 0, &err);
    check(m != NULL, "corrupt: flipped data byte loads without verification", "%s", err.msg);
    ram_model_free(m);
    free(f);

    /* Offsets and shapes rewritten in the header. */
    char e[512], to[512];
    if (entry_of("visual_encoder.norm.weight", e, sizeof e)) {
        char *off = strstr(e, "data_offsets\":[");
        long long b0, b1;
        sscanf(off + 15, "%lld,%lld", &b0, &b1);
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]}", b0,
                 (long long)(orig_len * 2));
        variant(bad, e, to);
        expect_fail("corrupt: offset beyond the data section", bad, 0, "outside the data section");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]}",
                 b0 - 256, b1 - 256);
        variant(bad, e, to);
        expect_fail("corrupt: overlapping tensors", bad, 0, "overlaps");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[%lld,%lld]}", b0,
                 b1);
        variant(bad, e, to);
        expect_fail("corrupt: byte length does not match the shape", bad, 0, "bytes for");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2,64],\"data_offsets\":[%lld,%lld]}", b0,
                 b1);
        variant(bad, e, to);
        expect_fail("corrupt: wrong shape -> message names the key", bad, 0,
                    "wrong shape for visual_encoder.norm.weight: got [2, 64], expected [128]");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"I32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]}", b0,
                 b1);
        variant(bad, e, to);
        expect_fail("corrupt: wrong dtype", bad, 0, "wrong dtype for visual_encoder.norm.weight");
        snprintf(
            to, sizeof to,
            "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,128],\"data_offsets\":[%lld,%lld]}",
            b0, b1);
        variant(bad, e, to);
        expect_fail("corrupt: ndim over 4", bad, 0, "dimensions");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                 "\"data_offsets\":[%lld,%lld]}",
                 b0, b1);
        variant(bad, e, to);
        expect_fail("corrupt: shape product overflow", bad, 0, NULL);
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]},"
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
                 b0, b1);
        variant(bad, e, to);
        expect_fail("corrupt: duplicate tensor name", bad, 0, "duplicate");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weigh\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]}", b0,
                 b1);
        variant(bad, e, to);
        expect_fail("corrupt: renamed tensor -> missing tensor", bad, 0, "missing tensor visual_encoder.norm.weight");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]},"
                 "\"zzz\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
                 b0, b1);
        variant(bad, e, to);
        expect_fail("corrupt: unknown tensor", bad, 1, "unknown tensor zzz");
        snprintf(to, sizeof to,
                 "\"visual_encoder.norm.weight\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[%lld,%lld]},"
                 "\"x\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]}",
                 b0, b1);
        variant(bad, e, to);
        expect_fail("corrupt: unsupported dtype", bad, 1, "unsupported dtype F64");
    } else {
        check(0, "corrupt: find header entry", " ");
    }
    /* Bytes after the last tensor: the tensors must tile the data section. */
    {
        unsigned char *g = malloc(orig_len + 4);
        memcpy(g, orig, orig_len);
        memset(g + orig_len, 0, 4);
        write_bytes(bad, g, orig_len + 4);
        expect_fail("corrupt: trailing bytes after the tensors", bad, 0, "cover");
        free(g);
    }

    /* Metadata. */
    variant(bad, "\"format_version\":\"1\"", "\"format_version\":\"2\"");
    expect_fail("corrupt: future format version", bad, 1, "version");
    variant(bad, "\"format\":\"sqlite-ram\"", "\"format\":\"pt\"");
    expect_fail("corrupt: not our format", bad, 1, "not a sqlite-ram model file");
    variant(bad, "\"num_class\":\"12\"", "\"num_class\":\"13\"");
    expect_fail("corrupt: num_class metadata does not match", bad, 1, NULL);
    variant(bad, "\"num_class\":\"12\"", "\"num_class\":\"-12\"");
    expect_fail("corrupt: negative number in metadata", bad, 1, "num_class");
    variant(bad, "\"depths\":\"2,2,2,2\"", "\"depths\":\"2,2,2\"");
    expect_fail("corrupt: depths and heads disagree", bad, 1, "head counts");
    variant(bad, "\"window\":\"4\"", "\"window\":\"5\"");
    expect_fail("corrupt: window inconsistent with the image", bad, 1, NULL);
    variant(bad, "\"tagger_heads\":\"3\"", "\"tagger_heads\":\"5\"");
    expect_fail("corrupt: tagger heads do not divide the width", bad, 1, "heads");
    variant(bad, "\"checksum\":\"", "\"checksum\":\"0");
    expect_fail("corrupt: malformed checksum", bad, 1, "checksum");
    variant(bad, "\"format_version\":\"1\"", "\"format_version\":1");
    expect_fail("corrupt: metadata value not a string", bad, 1, "__metadata__");
    free(orig);
    orig = NULL;
}

/* Every allocation of a load failing in turn: clean NOMEM, no leak (ASan). */
static void test_oom(void)
{
#ifdef RAM_TEST
    struct ram_error err;
    int n_fail = 0, ok = 0, bad = 0;
    for (long k = 0; k < 400 && !ok; k++) {
        ram_alloc_fail_after(k);
        struct ram_model *m = load(tmp_path("heldout0.ram"), 1, &err);
        ram_alloc_fail_after(-1);
        if (m) {
            ok = 1;
        } else {
            n_fail++;
            if (!strstr(err.msg, "memory")) {
                printf("  fail-after %ld: %s\n", k, err.msg);
                bad++;
            }
        }
        ram_model_free(m);
    }
    check(ok && bad == 0 && n_fail > 10, "oom: every allocation failure of a load is a clean error",
          "ok %d, %d failures, %d not NOMEM", ok, n_fail, bad);
#endif
}

/* ------------------------------------------------------------------ vocabulary */

static void test_vocab(void)
{
    struct ram_error err;
    struct ram_model *m = ram_calloc(1, sizeof *m);
    ram_status rc = ram_model_set_vocab(m, 1, "a\r\nb\nc", 6, " x \ny\nz   \n", 10, "0.5\n0.25\n1\n", 11, NULL, &err);
    check(rc == RAM_OK && m->num_class == 3 && !strcmp(m->tags_en[0], "a") && !strcmp(m->tags_en[2], "c") &&
              !strcmp(m->tags_zh[0], "x") && !strcmp(m->tags_zh[2], "z") && !strcmp(m->tag_text_zh, " x \ny\nz   ") &&
              !strcmp(m->tag_text_en, "a\nb\nc") && m->thresholds[1] == 0.25f,
          "vocab: lines, CRLF, zh trimmed but kept verbatim for the file", "%s", err.msg);
    rc = ram_model_set_vocab(m, 1, "a\nb\nc\n", 6, NULL, 0, "0.5\n0.5\n", 8, NULL, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "2 lines for 3 classes"), "vocab: fewer thresholds -> error", "%s",
          err.msg);
    rc = ram_model_set_vocab(m, 1, "a\nb\nc\n", 6, NULL, 0, "0.5\n0.5\n0.5\n0.5\n", 16, NULL, &err);
    check(rc == RAM_ERR_FORMAT, "vocab: more thresholds -> error", "%s", err.msg);
    rc = ram_model_set_vocab(m, 1, "a\nb\nc\n", 6, NULL, 0, "0.5\nabc\n0.5\n", 12, NULL, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "line 2"), "vocab: bad threshold -> error", "%s", err.msg);
    rc = ram_model_set_vocab(m, 1, "a\nb\nc\n", 6, "x\ny\n", 4, NULL, 0, NULL, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "Chinese"), "vocab: zh count mismatch -> error", "%s", err.msg);
    rc = ram_model_set_vocab(m, 1, "a\0b\n", 4, NULL, 0, NULL, 0, NULL, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "NUL"), "vocab: NUL byte -> error", "%s", err.msg);
    check(m->num_class == 3 && !strcmp(m->tags_en[1], "b"), "vocab: failed updates leave the model intact", " ");
    ram_model_free(m);
}

/* ------------------------------------------------------------------ golden .pth */

static const struct ram_tensor_view *pth_lookup(struct ram_pth *p, const struct ram_wspec *w, int kind)
{
    const struct ram_tensor_view *v = ram_pth_find(p, w->name);
    if (!v && kind == RAM_KIND_RAM && !strncmp(w->name, "tagging_head.", 13)) {
        char alt[160];
        snprintf(alt, sizeof alt, "tag_encoder.%s", w->name + 13);
        v = ram_pth_find(p, alt);
    }
    return v;
}

/* Every tensor of model m equals (bytes) the checkpoint's. */
static void compare_with_pth(const char *what, struct ram_model *m, const char *pth, const char *clip_pth)
{
    struct ram_error err;
    struct ram_pth *p = NULL, *c = NULL;
    if (ram_pth_open(pth, &p, &err) || (clip_pth && ram_pth_open(clip_pth, &c, &err))) {
        check(0, what, "open: %s", err.msg);
        ram_pth_close(p);
        return;
    }
    struct ram_wspec *s;
    int n, diff = 0, cmp = 0, borrowed = 1;
    ram_model_specs(m, &s, &n, &err);
    for (int i = 0; i < n; i++) {
        const struct ram_tensor_view *v =
            s[i].part == RAM_PART_CLIP ? ram_pth_find(c, s[i].name + 5) : pth_lookup(p, &s[i], m->kind);
        size_t bytes = spec_numel(&s[i]) * 4;
        if (!v || v->nbytes != bytes || memcmp(v->data, spec_data(&s[i]), bytes)) {
            printf("  %s differs\n", s[i].name);
            diff++;
        }
        if (!s[i].scalar && m->map &&
            ((const char *)*s[i].dst < (const char *)m->map ||
             (const char *)*s[i].dst >= (const char *)m->map + m->map_len))
            borrowed = 0;
        cmp++;
    }
    char name[160];
    snprintf(name, sizeof name, "%s: %d tensors byte-identical to the .pth", what, cmp);
    check(diff == 0 && cmp > 100, name, "%d differ", diff);
    if (m->map) {
        snprintf(name, sizeof name, "%s: f32 weights point into the mapping (no copy)", what);
        check(borrowed && m->n_owned == 0, name, "owned %d", m->n_owned);
    }
    ram_free(s);
    ram_pth_close(p);
    ram_pth_close(c);
}

static void check_golden_vocab(const char *what, const struct ram_model *m)
{
    static const char *en[12] = {"tag0",
                                 "hot dog",
                                 "tag2",
                                 "cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                                 "e",
                                 "tag4",
                                 "t-shirt",
                                 "tag6",
                                 "tag7",
                                 "tag8",
                                 "tag9",
                                 "tag10",
                                 "tag11"};
    static const float thr[12] = {0.708f, 0.804f, 0.644f, 0.516f, 0.841f, 0.803f,
                                  0.511f, 0.365f, 0.401f, 0.386f, 0.806f, 0.532f};
    int ok = m->num_class == 12;
    for (int i = 0; ok && i < 12; i++) {
        char zh[32];
        snprintf(zh, sizeof zh, "\xe6\xa0\x87\xe7\xad\xbe%d", i);
        ok = !strcmp(ram_model_tag(m, i, RAM_LANG_EN), en[i]) && !strcmp(ram_model_tag(m, i, RAM_LANG_ZH), zh) &&
             ram_model_threshold(m, i) == thr[i];
    }
    char name[128];
    snprintf(name, sizeof name, "%s: tag names (en, zh) and thresholds", what);
    check(ok, name, " ");
}

/* Sources that hide tagging_head.* (RAM falls back to tag_encoder.*) or
** serve it only as vision_multi.* (the older name). */
static const struct ram_tensor_view *hide_th(void *ctx, const char *name)
{
    if (!strncmp(name, "tagging_head.", 13)) return NULL;
    return ram_pth_find(ctx, name);
}
static const struct ram_tensor_view *as_vm(void *ctx, const char *name)
{
    char alt[160];
    if (!strncmp(name, "tagging_head.", 13)) return NULL;
    if (!strncmp(name, "vision_multi.", 13)) {
        snprintf(alt, sizeof alt, "tagging_head.%s", name + 13);
        return ram_pth_find(ctx, alt);
    }
    return ram_pth_find(ctx, name);
}

static void test_aliases(void)
{
    struct ram_error err;
    struct {
        const char *what, *pth;
        const struct ram_tensor_view *(*find)(void *, const char *);
    } cases[] = {{"alias: RAM falls back to tag_encoder.*", "golden/ram_tiny.pth", hide_th},
                 {"alias: vision_multi.* (RAM++)", "golden/ram_plus_tiny.pth", as_vm},
                 {"alias: vision_multi.* (RAM)", "golden/ram_tiny.pth", as_vm}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct ram_pth *p = NULL;
        struct ram_model *m = ram_calloc(1, sizeof *m);
        ram_status rc = ram_pth_open(data_path(cases[c].pth), &p, &err);
        struct ram_tensor_source src = {cases[c].find, p};
        const char *en = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
        if (!rc) rc = ram_model_set_vocab(m, 1, en, strlen(en), NULL, 0, NULL, 0, NULL, &err);
        if (!rc) rc = ram_model_infer_config(m, &src, 12, NULL, &err);
        if (!rc) rc = ram_model_bind(m, &src, &err);
        int same = rc == RAM_OK && m->tagger.n_layers == 2;
        for (int l = 0; same && l < 2; l++) {
            char key[128];
            snprintf(key, sizeof key, "tagging_head.encoder.layer.%d.output.dense.weight", l);
            const struct ram_tensor_view *v = ram_pth_find(p, key);
            same = v && !memcmp(v->data, m->tagger_layers[l].o_w, v->nbytes);
        }
        check(same, cases[c].what, "rc %d %s", rc, rc ? err.msg : "");
        ram_model_free(m);
        ram_pth_close(p);
    }
}

static void test_golden(void)
{
    struct ram_error err;
    const char *tags = data_path("golden/tag_list.txt"), *zh = data_path("golden/tag_list_chinese.txt"),
               *thr = data_path("golden/tag_list_threshold.txt");
    struct {
        const char *name, *pth, *file;
        int kind, des, clip;
    } cases[] = {
        {"golden ram_plus", "golden/ram_plus_tiny.pth", "g_ram_plus.ram", RAM_KIND_RAM_PLUS, 5, 0},
        {"golden ram", "golden/ram_tiny.pth", "g_ram.ram", RAM_KIND_RAM, 1, 0},
        {"golden ram_plus+clip", "golden/ram_plus_tiny.pth", "g_ram_plus_clip.ram", RAM_KIND_RAM_PLUS, 5, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[160];
        struct ram_model *m = NULL;
        const char *pth = data_path(cases[c].pth);
        ram_status rc;
        if (!cases[c].clip) {
            rc = ram_model_init_from_pth(pth, tags, zh, thr, NULL, &m, &err);
        } else {
            /* What ram-convert --clip does: join the two checkpoints. */
            struct ram_pth *p = NULL, *cp = NULL;
            m = ram_calloc(1, sizeof *m);
            char *en_t, *zh_t, *th_t;
            size_t a, b, d;
            ram_read_file(tags, 1 << 20, &en_t, &a, &err);
            ram_read_file(zh, 1 << 20, &zh_t, &b, &err);
            ram_read_file(thr, 1 << 20, &th_t, &d, &err);
            rc = ram_model_set_vocab(m, 1, en_t, a, zh_t, b, th_t, d, NULL, &err);
            ram_free(en_t);
            ram_free(zh_t);
            ram_free(th_t);
            if (!rc) rc = ram_pth_open(pth, &p, &err);
            if (!rc) rc = ram_pth_open(data_path("golden/clip_tiny.pth"), &cp, &err);
            struct ram_clip_join j;
            memset(&j, 0, sizeof j);
            if (!rc) {
                j.main = ram_pth_source(p);
                j.clip = ram_pth_source(cp);
            }
            struct ram_convert_opts o = {0, 0, 0, 2, 0};
            struct ram_tensor_source src = ram_join_clip(&j);
            if (!rc) rc = ram_model_infer_config(m, &src, m->num_class, &o, &err);
            if (!rc) rc = ram_model_bind(m, &src, &err);
            if (!rc) {
                struct ram_write_opts wo = {RAM_DTYPE_F32, 0, 0, bpe_text, bpe_len};
                rc = ram_model_write(m, tmp_path(cases[c].file), &wo, NULL, &err);
            }
            ram_model_free(m);
            m = NULL;
            ram_pth_close(p);
            ram_pth_close(cp);
            snprintf(name, sizeof name, "%s: converted", cases[c].name);
            check(rc == RAM_OK, name, "%s", err.msg);
        }
        if (!cases[c].clip) {
            snprintf(name, sizeof name, "%s: init_from_pth", cases[c].name);
            check(rc == RAM_OK, name, "%s", err.msg);
            if (rc) continue;
            struct ram_model_info info;
            ram_model_get_info(m, &info);
            snprintf(name, sizeof name, "%s: inferred config", cases[c].name);
            check(info.kind == cases[c].kind && info.num_class == 12 && info.des_per_class == cases[c].des &&
                      info.image_size == 128 && m->swin.window == 4 && m->swin.embed_dim == 16 &&
                      m->swin.depths[3] == 2 && m->swin.heads[3] == 8 && m->tagger.hidden == 32 &&
                      m->tagger.intermediate == 64 && m->tagger.n_heads == 4 && info.n_image_tokens == 17 &&
                      m->wordvec_w != NULL,
                  name, "kind %d des %d image %d", info.kind, info.des_per_class, info.image_size);
            check_golden_vocab(cases[c].name, m);
            compare_with_pth(cases[c].name, m, pth, NULL);
            struct ram_write_opts wo = {RAM_DTYPE_F32, 0, 0, NULL, 0};
            rc = ram_model_write(m, tmp_path(cases[c].file), &wo, NULL, &err);
            snprintf(name, sizeof name, "%s: written", cases[c].name);
            check(rc == RAM_OK, name, "%s", err.msg);
            ram_model_free(m);
        }
        m = load(tmp_path(cases[c].file), 1, &err);
        snprintf(name, sizeof name, "%s: model file loads", cases[c].name);
        check(m != NULL, name, "%s", err.msg);
        if (!m) continue;
        struct ram_model_info info;
        ram_model_get_info(m, &info);
        struct stat st;
        stat(tmp_path(cases[c].file), &st);
        snprintf(name, sizeof name, "%s: info", cases[c].name);
        check(info.kind == cases[c].kind && info.num_class == 12 && info.des_per_class == cases[c].des &&
                  info.image_size == 128 && info.embed_dim == 512 && info.n_image_tokens == 17 &&
                  info.has_text_encoder == cases[c].clip && !strcmp(info.dtype, "f32") &&
                  !strcmp(info.path, tmp_path(cases[c].file)) && strlen(info.digest) == 32 &&
                  info.file_size == (uint64_t)st.st_size,
              name, "kind %d has_text %d", info.kind, info.has_text_encoder);
        check_golden_vocab(cases[c].name, m);
        compare_with_pth(cases[c].name, m, pth, cases[c].clip ? data_path("golden/clip_tiny.pth") : NULL);
        if (cases[c].clip) {
            snprintf(name, sizeof name, "%s: CLIP config and tokenizer", cases[c].name);
            check(m->bpe != NULL && m->clip.heads == 2 && m->clip.width == 16 && m->clip.layers == 2, name, " ");
        }
        ram_model_free(m);
    }

    /* The Makefile's models (when built in this build folder). */
    const char *b = getenv("RAM_BUILD");
    if (b) {
        const char *files[3] = {"golden_ram_plus.ram", "golden_ram.ram", "golden_ram_plus_clip.ram"};
        const char *mine[3] = {"g_ram_plus.ram", "g_ram.ram", "g_ram_plus_clip.ram"};
        for (int i = 0; i < 3; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/models/%s", b, files[i]);
            if (access(path, R_OK)) continue;
            size_t la, lb;
            void *x = read_file(path, &la), *y = read_file(tmp_path(mine[i]), &lb);
            char name[160];
            snprintf(name, sizeof name, "ram-convert: %s identical to the in-process conversion", files[i]);
            check(x && y && la == lb && !memcmp(x, y, la), name, "%zu vs %zu bytes", la, lb);
            free(x);
            free(y);
        }
    }
}

/* ------------------------------------------------------------------ ram-convert */

static void test_cli(void)
{
    const char *b = getenv("RAM_BUILD");
    char exe[512], cmd[2048];
    snprintf(exe, sizeof exe, "%s/ram-convert", b ? b : "build");
    if (access(exe, X_OK)) {
        if (b)
            check(0, "cli: ram-convert", "%s is missing (make builds it)", exe);
        else
            printf("SKIP: cli: ram-convert not built in build (RAM_BUILD unset)\n");
        return;
    }
    const char *cfg = tmp_path("heldout.json");
    const char *json = "{\"preset\": \"ram_plus_tiny\", \"image_size\": 96, \"window\": 3,\n"
                       " \"depths\": [1, 3, 1, 1], \"heads\": \"2,2,4,4\", \"embed_dim\": 8,\n"
                       " \"num_class\": 7, \"des_per_class\": 3, \"tagger_hidden\": 24, \"tagger_heads\": 3,\n"
                       " \"tagger_intermediate\": 40}\n";
    write_bytes(cfg, json, strlen(json));
    snprintf(cmd, sizeof cmd, "%s --random %s -o %s --seed 3 --dtype f16 >/dev/null", exe, cfg, tmp_path("cli.ram"));
    int rc = system(cmd);
    struct ram_error err;
    struct ram_model *m = rc == 0 ? load(tmp_path("cli.ram"), 1, &err) : NULL;
    check(m != NULL, "ram-convert --random CONFIG.json (held-out sizes) loads", "rc %d %s", rc, m ? "" : err.msg);
    if (m) {
        struct ram_model_info info;
        ram_model_get_info(m, &info);
        check(info.image_size == 96 && info.num_class == 7 && info.des_per_class == 3 && m->swin.window == 3 &&
                  m->swin.depths[1] == 3 && m->stage[3].res == 3 && !strcmp(info.dtype, "f16") &&
                  !strcmp(ram_model_tag(m, 2, RAM_LANG_EN), "tag2"),
              "ram-convert --random: config honoured", "image %d", info.image_size);
        ram_model_free(m);
    }
    write_bytes(cfg, "{\"windw\": 3}", 12);
    snprintf(cmd, sizeof cmd, "%s --random %s -o %s 2>%s", exe, cfg, tmp_path("cli2.ram"), tmp_path("cli.err"));
    rc = system(cmd);
    char *msg = read_text(tmp_path("cli.err"));
    check(rc != 0 && msg && strstr(msg, "unknown key \"windw\"") && access(tmp_path("cli2.ram"), F_OK),
          "ram-convert: unknown config key is an error, no output", "%s", msg ? msg : "");
    free(msg);
    snprintf(cmd, sizeof cmd, "%s --random ram_swin_l_384 -o %s --thresholds %s 2>%s", exe, tmp_path("cli3.ram"),
             data_path("golden/tag_list_threshold.txt"), tmp_path("cli.err"));
    rc = system(cmd);
    msg = read_text(tmp_path("cli.err"));
    check(rc != 0 && msg && strstr(msg, "thresholds file has 12 lines for 4585 classes"),
          "ram-convert: thresholds count mismatch is an error", "%s", msg ? msg : "");
    free(msg);
    /* --clip from Hugging Face safetensors gives the same file as from the OpenAI .pth. */
    char ref[512];
    snprintf(ref, sizeof ref, "%s/models/golden_ram_plus_clip.ram", b ? b : "build");
    if (!access(ref, R_OK) && bpe_text) {
        snprintf(cmd, sizeof cmd,
                 "%s %s -o %s --tags %s --tags-zh %s --thresholds %s --clip %s --clip-heads 2 "
                 "--bpe %s/bpe_simple_vocab_16e6.txt >/dev/null && cmp -s %s %s",
                 exe, data_path("golden/ram_plus_tiny.pth"), tmp_path("cli_hf.ram"), data_path("golden/tag_list.txt"),
                 data_path("golden/tag_list_chinese.txt"), data_path("golden/tag_list_threshold.txt"),
                 data_path("golden/clip_tiny_text_hf.safetensors"), b ? b : "build", tmp_path("cli_hf.ram"), ref);
        check(system(cmd) == 0, "ram-convert --clip HF safetensors == OpenAI .pth (byte-identical file)", "%s", cmd);
    }
    snprintf(cmd, sizeof cmd, "%s %s -o %s --tags %s >/dev/null 2>&1", exe, data_path("golden/ram_plus_tiny.pth"),
             tmp_path("cli_tags.ram"), data_path("golden/tag_list.txt"));
    struct ram_model *t = system(cmd) == 0 ? load(tmp_path("cli_tags.ram"), 1, &err) : NULL;
    check(t && !strcmp(ram_model_tag(t, 1, RAM_LANG_ZH), "hot dog") && ram_model_threshold(t, 0) == 0.68f,
          "ram-convert --tags alone: zh = English names, thresholds 0.68", " ");
    ram_model_free(t);
    snprintf(cmd, sizeof cmd, "%s --help | grep -q -- --tagger-heads", exe);
    check(system(cmd) == 0, "ram-convert --help documents the options", " ");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ram_test_model_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        check(0, "mkdtemp", " ");
        return harness_exit();
    }
    const char *b = getenv("RAM_BUILD");
    char bp[512];
    snprintf(bp, sizeof bp, "%s/bpe_simple_vocab_16e6.txt", b ? b : "build");
    bpe_text = read_file(bp, &bpe_len);
    if (!bpe_text) printf("SKIP: clip tokenizer cases: no %s (the CLIP cases use a stand-in vocabulary)\n", bp);

    (void)check_close_npy;
    test_json();
    test_vocab();
    test_heldout();
    test_infer_mask();
    if (bpe_text) test_f16();
    test_clip_layouts();
    if (bpe_text) test_corrupt();
    test_oom();
    if (bpe_text) test_golden();
    test_aliases();
    test_cli();
    free(bpe_text);
    rm_tmpdir();
    return harness_exit();
}
