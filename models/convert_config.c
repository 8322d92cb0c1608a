/*
** convert_config.c — the model configs `ram-convert --random` can generate:
** built-in presets (full-size RAM++/RAM, golden-sized tiny ones) and
** CONFIG.json files that start from a preset and override any number.
**
**     {"preset": "ram_plus_tiny", "image_size": 96, "window": 6,
**      "depths": [1, 3, 1, 1], "heads": [2, 2, 4, 4], "num_class": 7, "des_per_class": 3}
**
** Keys (all optional): preset, kind ("ram_plus" | "ram"), image_size,
** patch_size, in_chans, embed_dim, depths, heads (arrays or "2,2,18,2"),
** window, mlp_ratio, num_class, des_per_class, tagger_hidden, tagger_layers,
** tagger_heads, tagger_intermediate, tagger_encoder_width, clip_vocab,
** clip_context, clip_width, clip_heads, clip_layers, clip_embed_dim, tags,
** tags_zh, thresholds (file paths, relative to the current directory);
** for Tag2Text (presets tag2text_*): text_layers, text_heads,
** text_max_position (the tag encoder; its width and FFN are the tagging
** head's), decoder_layers, decoder_heads, decoder_hidden,
** decoder_intermediate, decoder_max_position.
** An unknown key is an error (it is most likely a typo).
*/
#include "convert_config.h"

#include "json.h"
#include "weights.h"

#include <stdio.h>
#include <string.h>

struct preset {
    const char *name, *help;
    int kind, image, patch, embed, n_stages, depths[4], heads[4], window;
    int num_class, des, hidden, layers, theads, inter, width;
    int official_vocab, clip;
    int t2t_layers, t2t_heads, t2t_max_pos; /* Tag2Text's tag encoder and decoder (kind RAM_KIND_TAG2TEXT) */
};

/* One preset per line reads as a table: clang-format leaves it alone. */
// clang-format off
static const struct preset presets[] = {
    {"ram_plus_swin_l_384", "full-size RAM++ (Swin-L 384, 4585 classes x 51, official tag files)",
     RAM_KIND_RAM_PLUS, 384, 4, 192, 4, {2, 2, 18, 2}, {6, 12, 24, 48}, 12,
     0, 51, 768, 2, 4, 3072, 512, 1, 0, 0, 0, 0},
    {"ram_swin_l_384", "full-size RAM (Swin-L 384, 4585 classes, official tag files)",
     RAM_KIND_RAM, 384, 4, 192, 4, {2, 2, 18, 2}, {6, 12, 24, 48}, 12,
     0, 1, 768, 2, 4, 3072, 512, 1, 0, 0, 0, 0},
    {"ram_plus_tiny", "golden-sized RAM++ (image 128, embed 16, window 4, 12 classes x 5)",
     RAM_KIND_RAM_PLUS, 128, 4, 16, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, 4,
     12, 5, 32, 2, 4, 64, 512, 0, 0, 0, 0, 0},
    {"ram_tiny", "golden-sized RAM (image 128, embed 16, window 4, 12 classes)",
     RAM_KIND_RAM, 128, 4, 16, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, 4,
     12, 1, 32, 2, 4, 64, 512, 0, 0, 0, 0, 0},
    {"ram_plus_tiny_clip", "ram_plus_tiny with a tiny CLIP text tower (width 16, 2 heads, 2 layers; needs --bpe)",
     RAM_KIND_RAM_PLUS, 128, 4, 16, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, 4,
     12, 5, 32, 2, 4, 64, 512, 0, 1, 0, 0, 0},
    {"tag2text_swin_b_384", "full-size Tag2Text (Swin-B 384, 3429 classes, BERT-base tag encoder and decoder)",
     RAM_KIND_TAG2TEXT, 384, 4, 128, 4, {2, 2, 18, 2}, {4, 8, 16, 32}, 12,
     0, 1, 768, 2, 4, 3072, 0, 1, 0, 12, 12, 512},
    {"tag2text_tiny", "golden-sized Tag2Text (image 128, embed 16, window 4, 3429 classes, BERT 32 wide, 3 layers, 2 heads)",
     RAM_KIND_TAG2TEXT, 128, 4, 16, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, 4,
     0, 1, 32, 2, 4, 64, 0, 1, 0, 3, 2, 64},
};
// clang-format on
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

const char *convert_preset(int i, const char **help)
{
    if (i < 0 || i >= N_PRESETS) return NULL;
    if (help) *help = presets[i].help;
    return presets[i].name;
}

static void tag2text_derive(struct ram_model *m);

static ram_status apply_preset(const char *name, struct convert_random_cfg *out, struct ram_error *err)
{
    const struct preset *p = NULL;
    for (int i = 0; i < N_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) p = &presets[i];
    if (!p) return ram_fail(err, RAM_ERR_ARG, "unknown preset %s (see --help)", name);
    memset(&out->cfg, 0, sizeof out->cfg);
    struct ram_model *m = &out->cfg;
    m->kind = p->kind;
    m->swin.image_size = p->image;
    m->swin.patch_size = p->patch;
    m->swin.in_chans = 3;
    m->swin.embed_dim = p->embed;
    m->swin.n_stages = p->n_stages;
    for (int s = 0; s < p->n_stages; s++) {
        m->swin.depths[s] = p->depths[s];
        m->swin.heads[s] = p->heads[s];
    }
    m->swin.window = p->window;
    m->swin.mlp_ratio = 4;
    m->num_class = p->num_class;
    m->des_per_class = p->des;
    m->embed_dim = p->width;
    m->tagger.hidden = p->hidden;
    m->tagger.n_layers = p->layers;
    m->tagger.n_heads = p->theads;
    m->tagger.intermediate = p->inter;
    m->tagger.encoder_width = p->width;
    m->has_clip = p->clip;
    if (p->clip) {
        m->clip.vocab = 49408;
        m->clip.context = 77;
        m->clip.width = 16;
        m->clip.heads = 2;
        m->clip.layers = 2;
        m->clip.embed_dim = p->width;
    }
    if (p->kind == RAM_KIND_TAG2TEXT) {
        struct ram_bert_config b = {30524, p->t2t_max_pos, p->hidden, p->t2t_layers, p->t2t_heads, p->inter, 0, 0};
        m->t2t.enc = m->t2t.dec = b;
    }
    out->official_vocab = p->official_vocab;
    if (p->kind == RAM_KIND_TAG2TEXT) tag2text_derive(m);
    return RAM_OK;
}

/* Tag2Text's widths that follow from others: no image_proj (the tagging
** head and the tag encoder attend to the raw Swin tokens), the tag encoder
** shares the tagging head's layers, the decoder attends to the tag encoder. */
static void tag2text_derive(struct ram_model *m)
{
    int vw =
        m->swin.n_stages > 0 && m->swin.n_stages <= RAM_MAX_STAGES ? m->swin.embed_dim << (m->swin.n_stages - 1) : 0;
    m->des_per_class = 1;
    m->embed_dim = m->tagger.encoder_width = m->t2t.enc.encoder_width = vw;
    m->t2t.enc.hidden = m->tagger.hidden;
    m->t2t.enc.intermediate = m->tagger.intermediate;
    m->t2t.dec.encoder_width = m->t2t.enc.hidden;
}

/* An int list: a JSON array of integers or a "2,2,18,2" string. */
static int get_list(const struct ram_json *j, int v, int *dst, int *n)
{
    int k = 0;
    if (j->nodes[v].type == RAM_JSON_ARRAY) {
        for (int e = ram_json_first(j, v); e >= 0; e = ram_json_next(j, v, e)) {
            int64_t x;
            if (k == RAM_MAX_STAGES || !ram_json_int64(j, e, &x) || x < 1 || x > 1 << 20) return 0;
            dst[k++] = (int)x;
        }
    } else if (j->nodes[v].type == RAM_JSON_STRING) {
        const char *s = j->text + j->nodes[v].start, *end = s + j->nodes[v].len;
        while (s < end) {
            long x = 0;
            int digits = 0;
            while (s < end && *s >= '0' && *s <= '9' && digits < 8) x = x * 10 + (*s++ - '0'), digits++;
            if (!digits || x < 1 || k == RAM_MAX_STAGES) return 0;
            dst[k++] = (int)x;
            if (s < end && *s++ != ',') return 0;
        }
    } else {
        return 0;
    }
    *n = k;
    return k > 0;
}

ram_status convert_random_config(const char *what, struct convert_random_cfg *out, struct ram_error *err)
{
    memset(out, 0, sizeof *out);
    size_t wl = strlen(what);
    int is_file = strchr(what, '/') || (wl > 5 && !strcmp(what + wl - 5, ".json"));
    if (!is_file) return apply_preset(what, out, err);

    char *text = NULL;
    size_t len;
    struct ram_json j = {0};
    ram_status rc = ram_read_file(what, 1 << 20, &text, &len, err);
    if (rc) return rc;
    rc = ram_json_parse(text, len, 8, &j, err);
    if (rc) goto cleanup;
    if (j.nodes[0].type != RAM_JSON_OBJECT) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "%s: not a JSON object", what);
        goto cleanup;
    }
    int pv = ram_json_find(&j, 0, "preset");
    char *pname = NULL;
    if (pv >= 0 && ram_json_strdup(&j, pv, &pname, NULL, err)) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "%s: preset must be a string", what);
        goto cleanup;
    }
    rc = apply_preset(pname ? pname : "ram_plus_tiny", out, err);
    ram_free(pname);
    if (rc) goto cleanup;

    struct ram_model *m = &out->cfg;
    int clip_set = 0;
    struct {
        const char *key;
        int *dst;
        int clip;
    } ints[] = {
        {"image_size", &m->swin.image_size, 0},
        {"patch_size", &m->swin.patch_size, 0},
        {"in_chans", &m->swin.in_chans, 0},
        {"embed_dim", &m->swin.embed_dim, 0},
        {"window", &m->swin.window, 0},
        {"mlp_ratio", &m->swin.mlp_ratio, 0},
        {"num_class", &m->num_class, 0},
        {"des_per_class", &m->des_per_class, 0},
        {"tagger_hidden", &m->tagger.hidden, 0},
        {"tagger_layers", &m->tagger.n_layers, 0},
        {"tagger_heads", &m->tagger.n_heads, 0},
        {"tagger_intermediate", &m->tagger.intermediate, 0},
        {"tagger_encoder_width", &m->tagger.encoder_width, 0},
        {"clip_vocab", &m->clip.vocab, 1},
        {"clip_context", &m->clip.context, 1},
        {"clip_width", &m->clip.width, 1},
        {"clip_heads", &m->clip.heads, 1},
        {"clip_layers", &m->clip.layers, 1},
        {"clip_embed_dim", &m->clip.embed_dim, 1},
        {"text_layers", &m->t2t.enc.layers, 0},
        {"text_heads", &m->t2t.enc.heads, 0},
        {"text_max_position", &m->t2t.enc.max_pos, 0},
        {"decoder_layers", &m->t2t.dec.layers, 0},
        {"decoder_heads", &m->t2t.dec.heads, 0},
        {"decoder_hidden", &m->t2t.dec.hidden, 0},
        {"decoder_intermediate", &m->t2t.dec.intermediate, 0},
        {"decoder_max_position", &m->t2t.dec.max_pos, 0},
    };
    for (int k = ram_json_first(&j, 0); k >= 0; k = ram_json_next(&j, 0, k)) {
        int v = k + 1, done = 0;
        for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !done; i++) {
            if (!ram_json_streq(&j, k, ints[i].key)) continue;
            int64_t x;
            if (!ram_json_int64(&j, v, &x) || x < 1 || x > 1 << 30) {
                rc = ram_fail(err, RAM_ERR_FORMAT, "%s: %s must be a positive integer", what, ints[i].key);
                goto cleanup;
            }
            *ints[i].dst = (int)x;
            clip_set |= ints[i].clip;
            done = 1;
        }
        if (done || ram_json_streq(&j, k, "preset")) continue;
        if (ram_json_streq(&j, k, "kind")) {
            if (ram_json_streq(&j, v, "ram_plus"))
                m->kind = RAM_KIND_RAM_PLUS;
            else if (ram_json_streq(&j, v, "ram"))
                m->kind = RAM_KIND_RAM;
            else if (ram_json_streq(&j, v, "tag2text") && m->kind == RAM_KIND_TAG2TEXT)
                m->kind = RAM_KIND_TAG2TEXT;
            else {
                rc = ram_fail(err, RAM_ERR_FORMAT,
                              "%s: kind must be \"ram_plus\" or \"ram\" (\"tag2text\": start from a tag2text preset)",
                              what);
                goto cleanup;
            }
        } else if (ram_json_streq(&j, k, "depths") || ram_json_streq(&j, k, "heads")) {
            int is_d = ram_json_streq(&j, k, "depths"), n;
            if (!get_list(&j, v, is_d ? m->swin.depths : m->swin.heads, &n)) {
                rc = ram_fail(err, RAM_ERR_FORMAT, "%s: %s must list 1 to %d positive integers", what,
                              is_d ? "depths" : "heads", RAM_MAX_STAGES);
                goto cleanup;
            }
            if (is_d) m->swin.n_stages = n;
        } else if (ram_json_streq(&j, k, "tags") || ram_json_streq(&j, k, "tags_zh") ||
                   ram_json_streq(&j, k, "thresholds")) {
            int t = ram_json_streq(&j, k, "tags") ? 0 : ram_json_streq(&j, k, "tags_zh") ? 1 : 2;
            size_t sl = 0;
            char *s = NULL;
            if (ram_json_strdup(&j, v, &s, &sl, NULL) || sl >= sizeof out->tags[t]) {
                ram_free(s);
                rc = ram_fail(err, RAM_ERR_FORMAT, "%s: tag file paths must be strings", what);
                goto cleanup;
            }
            memcpy(out->tags[t], s, sl + 1);
            ram_free(s);
        } else {
            char *key = NULL;
            ram_json_strdup(&j, k, &key, NULL, NULL);
            rc = ram_fail(err, RAM_ERR_FORMAT, "%s: unknown key \"%.60s\"", what, key ? key : "?");
            ram_free(key);
            goto cleanup;
        }
    }
    if (clip_set && !m->has_clip) {
        /* CLIP keys on a preset without a text tower: start from CLIP ViT-B/16's sizes. */
        struct {
            int *dst, def;
        } d[] = {{&m->clip.vocab, 49408}, {&m->clip.context, 77}, {&m->clip.width, 512},
                 {&m->clip.heads, 8},     {&m->clip.layers, 12},  {&m->clip.embed_dim, 512}};
        for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
            if (!*d[i].dst) *d[i].dst = d[i].def;
        m->has_clip = 1;
    }
    if (m->kind == RAM_KIND_RAM && ram_json_find(&j, 0, "des_per_class") < 0) m->des_per_class = 1;
    if (m->kind == RAM_KIND_TAG2TEXT) tag2text_derive(m);
    /* A config file that names its own class count does not use the official files. */
    if (ram_json_find(&j, 0, "num_class") >= 0) out->official_vocab = 0;
cleanup:
    ram_json_free(&j);
    ram_free(text);
    return rc;
}
