/*
** model_load.c — loading our model file (version 1 and 2, specified in
** models/README.md) into a struct ram_model.
**
** HOW IT WORKS: the file is mapped read-only; safetensors.c validates the
** container strictly (tensors tile the data section); the __metadata__
** strings give the config, which is checked (weights.c) before any per-layer
** allocation; the data section's XXH3-128 is compared with the stored
** checksum; then every tensor the config needs is bound by its canonical
** name through a tracking source, so that a tensor nobody asked for is
** reported as unknown. f32 weights stay in the mapping (no copy); the
** descriptor stays open with it, so that ram_model_check_file can tell (one
** fstat) a file truncated or rewritten in place before it faults.
*/
#include "ram.h"

#include "bpe.h"
#include "internal.h"
#include "model.h"
#include "model_file.h"
#include "safetensors.h"
#include "swin.h"
#include "tagger.h"
#include "tag2text.h"
#include "weights.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A metadata integer: plain decimal digits within [lo, hi]. */
static ram_status meta_int(const struct ram_st_file *f, const char *key, int lo, int hi, int *out,
                           struct ram_error *err)
{
    const char *v = ram_st_meta(f, key);
    if (!v) return ram_fail(err, RAM_ERR_FORMAT, "model file: metadata %s is missing", key);
    long long x = 0;
    int n = 0;
    for (; v[n]; n++) {
        if (v[n] < '0' || v[n] > '9' || n >= 10) {
            n = -1;
            break;
        }
        x = x * 10 + (v[n] - '0');
    }
    if (n <= 0 || x < lo || x > hi)
        return ram_fail(err, RAM_ERR_FORMAT, "model file: metadata %s = \"%.32s\" is invalid", key, v);
    *out = (int)x;
    return RAM_OK;
}

/* A comma-separated list of integers ("2,2,18,2"). */
static ram_status meta_list(const struct ram_st_file *f, const char *key, int *out, int *n_out, struct ram_error *err)
{
    const char *v = ram_st_meta(f, key);
    if (!v) return ram_fail(err, RAM_ERR_FORMAT, "model file: metadata %s is missing", key);
    int n = 0;
    const char *p = v;
    for (;;) {
        long long x = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 10) x = x * 10 + (*p++ - '0'), digits++;
        if (!digits || x < 1 || x > 1000000 || n == RAM_MAX_STAGES) goto bad;
        out[n++] = (int)x;
        if (!*p) break;
        if (*p++ != ',') goto bad;
    }
    *n_out = n;
    return RAM_OK;
bad:
    return ram_fail(err, RAM_ERR_FORMAT, "model file: metadata %s = \"%.32s\" is invalid", key, v);
}

static ram_status config_from_meta(struct ram_model *m, const struct ram_st_file *f, struct ram_error *err)
{
    ram_status rc;
    const char *v = ram_st_meta(f, "format");
    if (!v || strcmp(v, RAM_FORMAT_NAME))
        return ram_fail(err, RAM_ERR_FORMAT, "not a sqlite-ram model file (metadata format is %s)",
                        v ? "different" : "missing");
    v = ram_st_meta(f, "format_version");
    if (!v ||
        (strcmp(v, RAM_FORMAT_VERSION) && strcmp(v, RAM_FORMAT_VERSION_Q8) && strcmp(v, RAM_FORMAT_VERSION_Q8ACC)))
        return ram_fail(err, RAM_ERR_FORMAT,
                        "unsupported model file version \"%.16s\" (this build reads %s, %s and %s)", v ? v : "",
                        RAM_FORMAT_VERSION, RAM_FORMAT_VERSION_Q8, RAM_FORMAT_VERSION_Q8ACC);
    const char *q = ram_st_meta(f, "quant");
    m->quant = !strcmp(v, RAM_FORMAT_VERSION_Q8)      ? RAM_QUANT_INT8
               : !strcmp(v, RAM_FORMAT_VERSION_Q8ACC) ? RAM_QUANT_INT8ACC
                                                      : RAM_QUANT_NONE;
    if ((m->quant != RAM_QUANT_NONE) != (q != NULL) || (q && strcmp(q, "int8")))
        return ram_fail(err, RAM_ERR_FORMAT,
                        "model file version %s with quant \"%.16s\" (versions 2 and 3 mean quant = int8, version 1 "
                        "none)",
                        v, q ? q : "");
    v = ram_st_meta(f, "kind");
    if (v && !strcmp(v, "ram_plus"))
        m->kind = RAM_KIND_RAM_PLUS;
    else if (v && !strcmp(v, "ram"))
        m->kind = RAM_KIND_RAM;
    else if (v && !strcmp(v, "tag2text"))
        m->kind = RAM_KIND_TAG2TEXT;
    else
        return ram_fail(err, RAM_ERR_FORMAT, "model file: unknown kind \"%.32s\"", v ? v : "");
    v = ram_st_meta(f, "dtype");
    if (v && !strcmp(v, "f32"))
        m->stored_dtype = RAM_DTYPE_F32;
    else if (v && !strcmp(v, "f16"))
        m->stored_dtype = RAM_DTYPE_F16;
    else if (v && !strcmp(v, "bf16") && !m->quant)
        m->stored_dtype = RAM_DTYPE_BF16;
    else
        return ram_fail(err, RAM_ERR_FORMAT, "model file: unknown dtype \"%.16s\"", v ? v : "");

    struct ram_swin_config *c = &m->swin;
    int nh = 0;
    const int big = 1 << 30;
#define I(key, lo, hi, dst) \
    if ((rc = meta_int(f, key, lo, hi, dst, err))) return rc
    I("image_size", 1, big, &c->image_size);
    I("patch_size", 1, big, &c->patch_size);
    I("in_chans", 1, big, &c->in_chans);
    I("embed_dim", 1, big, &c->embed_dim);
    I("window", 1, big, &c->window);
    I("mlp_ratio", 1, big, &c->mlp_ratio);
    I("num_class", 1, big, &m->num_class);
    I("des_per_class", 1, big, &m->des_per_class);
    I("tagger_hidden", 1, big, &m->tagger.hidden);
    I("tagger_layers", 1, big, &m->tagger.n_layers);
    I("tagger_heads", 1, big, &m->tagger.n_heads);
    I("tagger_intermediate", 1, big, &m->tagger.intermediate);
    I("tagger_encoder_width", 1, big, &m->tagger.encoder_width);
    m->embed_dim = m->tagger.encoder_width;
    if ((rc = meta_list(f, "depths", c->depths, &c->n_stages, err))) return rc;
    if ((rc = meta_list(f, "heads", c->heads, &nh, err))) return rc;
    if (nh != c->n_stages)
        return ram_fail(err, RAM_ERR_FORMAT, "model file: %d depths but %d head counts", c->n_stages, nh);
    m->has_clip = ram_st_meta(f, "clip_width") != NULL;
    if (m->has_clip) {
        I("clip_vocab", 1, big, &m->clip.vocab);
        I("clip_context", 1, big, &m->clip.context);
        I("clip_width", 1, big, &m->clip.width);
        I("clip_heads", 1, big, &m->clip.heads);
        I("clip_layers", 1, big, &m->clip.layers);
        I("clip_embed_dim", 1, big, &m->clip.embed_dim);
    }
    if (m->kind == RAM_KIND_TAG2TEXT) {
        struct ram_bert_config *b[2] = {&m->t2t.enc, &m->t2t.dec};
        static const char *const names[2][7] = {{"t2t_enc_vocab", "t2t_enc_max_pos", "t2t_enc_hidden", "t2t_enc_layers",
                                                 "t2t_enc_heads", "t2t_enc_intermediate", "t2t_enc_encoder_width"},
                                                {"t2t_dec_vocab", "t2t_dec_max_pos", "t2t_dec_hidden", "t2t_dec_layers",
                                                 "t2t_dec_heads", "t2t_dec_intermediate", "t2t_dec_encoder_width"}};
        for (int i = 0; i < 2; i++) {
            int *dst[7] = {&b[i]->vocab, &b[i]->max_pos,      &b[i]->hidden,       &b[i]->layers,
                           &b[i]->heads, &b[i]->intermediate, &b[i]->encoder_width};
            for (int k = 0; k < 7; k++) I(names[i][k], 1, big, dst[k]);
        }
    }
#undef I
    return ram_model_check_config(m, err);
}

/* A 1-D U8 tensor (vocabulary text), by canonical name. */
static ram_status get_text(const struct ram_tensor_source *src, const char *name, const char **p, size_t *n,
                           struct ram_error *err)
{
    const struct ram_tensor_view *v = src->find(src->ctx, name);
    if (!v) return ram_fail(err, RAM_ERR_FORMAT, "missing tensor %s", name);
    if (v->dtype != RAM_DTYPE_U8 || v->ndim != 1)
        return ram_fail(err, RAM_ERR_FORMAT, "tensor %s must be 1-D U8", name);
    *p = v->data;
    *n = v->nbytes;
    return RAM_OK;
}

static int parse_hex128(const char *s, char out[33])
{
    if (!s || strlen(s) != 32) return 0;
    for (int i = 0; i < 32; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
        out[i] = c;
    }
    out[32] = 0;
    return 1;
}

ram_status ram_model_init_from_file(const char *path, const struct ram_model_params *params, struct ram_model **out,
                                    struct ram_error *err)
{
    struct ram_model_params prm = params ? *params : ram_model_default_params();
    struct ram_model *m = NULL;
    struct ram_st_file st = {0};
    struct ram_tracker tr = {0};
    ram_status rc = RAM_OK;
    int fd = -1;

    if (!out) return ram_fail(err, RAM_ERR_ARG, "ram_model_init_from_file: out is NULL");
    *out = NULL;
    if (!path) return ram_fail(err, RAM_ERR_ARG, "ram_model_init_from_file: path is NULL");
    m = ram_calloc(1, sizeof *m);
    if (!m) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    m->path = ram_strdup(path);
    if (!m->path) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto fail;
    }

    fd = ram_open_nonblock(path); /* only mapped, never read(): O_NONBLOCK can stay */
    if (fd < 0) {
        rc = ram_fail(err, RAM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        rc = ram_fail(err, RAM_ERR_IO, "%s is not a regular file", path);
        goto fail;
    }
    /* The magic of a model file (a safetensors container): an 8-byte header
    ** length that fits the file, then the header's '{'. Anything else is
    ** refused before it is mapped, with a message that tells neither its
    ** bytes nor its size: a database may name any file as its model. */
    unsigned char head[9] = {0};
    uint64_t hl = 0;
    if (sb.st_size >= 10 && pread(fd, head, 9, 0) == 9)
        for (int i = 7; i >= 0; i--) hl = hl << 8 | head[i];
    if (hl < 2 || hl > RAM_ST_MAX_HEADER || hl > (uint64_t)sb.st_size - 8 || head[8] != '{') {
        rc = ram_fail(err, RAM_ERR_FORMAT, "%s: not a model file (bad magic)", path);
        goto fail;
    }
    m->file_size = (uint64_t)sb.st_size;
    m->map_len = (size_t)sb.st_size;
    m->map = mmap(NULL, m->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        rc = ram_fail(err, RAM_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        goto fail;
    }
    /* Kept open (closed with the mapping) for ram_model_check_file. */
    m->fd = fd;
    fd = -1;
    m->file_dev = (uint64_t)sb.st_dev;
    m->file_ino = (uint64_t)sb.st_ino;
    m->file_mtime_ns = ram_mtime_ns(&sb);

    rc = ram_st_parse(m->map, m->map_len, RAM_ST_STRICT, &st, err);
    if (rc) goto fail;
    rc = config_from_meta(m, &st, err);
    if (rc) goto fail;

    /* Checksum of the data section. */
    if (!parse_hex128(ram_st_meta(&st, "checksum"), m->digest)) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "model file: metadata checksum is missing or malformed");
        goto fail;
    }
    m->data = st.data;
    m->data_len = st.data_len;
    if (prm.verify_checksum && (rc = ram_model_verify(m, err))) goto fail;

    /* Vocabulary, weights, BPE: every tensor by its canonical name. */
    rc = ram_tracker_init(&tr, ram_st_source(&st), (size_t)st.n_tensors, err);
    if (rc) goto fail;
    struct ram_tensor_source src = ram_tracker_source(&tr);
    const char *en, *zh;
    size_t en_n, zh_n;
    if ((rc = get_text(&src, "vocab.tags_en", &en, &en_n, err))) goto fail;
    if ((rc = get_text(&src, "vocab.tags_zh", &zh, &zh_n, err))) goto fail;
    const struct ram_tensor_view *tv = src.find(src.ctx, "vocab.thresholds");
    if (!tv) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "missing tensor vocab.thresholds");
        goto fail;
    }
    if (tv->dtype != RAM_DTYPE_F32 || tv->ndim != 1 || tv->shape[0] != m->num_class) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "vocab.thresholds must be F32 [%d]", m->num_class);
        goto fail;
    }
    float *thr = ram_malloc(sizeof(float) * (size_t)m->num_class);
    if (!thr) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(thr, tv->data, sizeof(float) * (size_t)m->num_class);
    rc = ram_model_set_vocab(m, 0, en, en_n, zh, zh_n, NULL, 0, thr, err);
    ram_free(thr);
    if (rc) goto fail;

    rc = ram_model_bind_ex(m, &src, RAM_BIND_CANONICAL, err);
    if (rc) goto fail;
    if (m->quant && (rc = ram_model_quantize_tagger(m, err))) goto fail;
    if (m->kind == RAM_KIND_TAG2TEXT) {
        const char *bt, *del;
        size_t bn, dn;
        if ((rc = get_text(&src, "bert.vocab", &bt, &bn, err))) goto fail;
        if ((rc = get_text(&src, "tag2text.deleted", &del, &dn, err))) goto fail;
        if (dn != (size_t)m->num_class) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "tag2text.deleted must be U8 [%d]", m->num_class);
            goto fail;
        }
        if ((rc = ram_t2t_attach(m, bt, bn, (const unsigned char *)del, 0, err))) goto fail;
        /* int8 files: the caption decoder too (made at load like the tagging head's). */
        if (m->quant && (rc = ram_t2t_quantize_decoder(m, err))) goto fail;
    }
    /* bf16 files store the Swin matrices packed; the decoder's are made at load (as int8 files do). */
    if (m->stored_dtype == RAM_DTYPE_BF16 && (rc = ram_model_use_bf16(m, err))) goto fail;
    if (m->has_clip) {
        const char *bt;
        size_t bn;
        if ((rc = get_text(&src, "clip.bpe_vocab", &bt, &bn, err))) goto fail;
        rc = ram_bpe_init(bt, bn, &m->bpe, err);
        if (rc) goto fail;
    }
    for (int i = 0; i < st.n_tensors; i++)
        if (!ram_tracker_seen(&tr, &st.tensors[i])) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "model file: unknown tensor %s", st.tensors[i].name);
            goto fail;
        }
    rc = ram_swin_prepare(m, err);
    if (rc) goto fail;
    ram_tagger_prepack(m);
    ram_t2t_prepack(m);
    ram_tracker_free(&tr);
    ram_st_free(&st);
    *out = m;
    return RAM_OK;

fail:
    if (fd >= 0) close(fd);
    ram_tracker_free(&tr);
    ram_st_free(&st);
    ram_model_free(m);
    return rc;
}
