/*
** model_file.c — the model's life cycle and our model file format (version
** 1, specified in models/README.md): loading a file (mmap, validate, verify
** the checksum, bind), building a model straight from a .pth, writing a
** model file, the vocabulary, and ram_model_free / get_info / tag /
** threshold.
**
**     struct ram_model *m = 0;
**     if (ram_model_init_from_file("model.ram", NULL, &m, &err)) return fail(err.msg);
**     puts(ram_model_tag(m, 0, RAM_LANG_ZH));
**     ram_model_free(m);
**
** HOW IT WORKS (loading): the file is mapped read-only; safetensors.c
** validates the container strictly (tensors tile the data section); the
** __metadata__ strings give the config, which is checked (weights.c) before
** any per-layer allocation; the data section's XXH3-128 is compared with the
** stored checksum; then every tensor the config needs is bound by its
** canonical name through a tracking source, so that a tensor nobody asked
** for is reported as unknown. f32 weights stay in the mapping (no copy);
** the descriptor stays open with it, so that ram_model_check_file can tell
** (one fstat) a file truncated or rewritten in place before it faults.
*/
#include "ram.h"

#include "bpe.h"
#include "gemm_q8.h"
#include "internal.h"
#include "model.h"
#include "pth_reader.h"
#include "safetensors.h"
#include "swin.h"
#include "weights.h"


#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_NAME "sqlite-ram"
#define FORMAT_VERSION "1"
/* Version 2 = version 1 + int8 Swin matrices (metadata quant = "int8"):
** a version-1 reader rejects these files rather than misreading I8. */
#define FORMAT_VERSION_Q8 "2"
#define MAX_VOCAB_TEXT ((size_t)64 << 20)

/* ------------------------------------------------------------------ public small API */

struct ram_model_params ram_model_default_params(void)
{
    struct ram_model_params p;
    memset(&p, 0, sizeof p);
    p.verify_checksum = 1;
    return p;
}

ram_status ram_model_verify(const struct ram_model *m, struct ram_error *err)
{
    if (!m) return ram_fail(err, RAM_ERR_ARG, "ram_model_verify: model is NULL");
    if (!m->data) return RAM_OK; /* built from a .pth: no stored checksum to compare */
    char got[33];
    /* One sequential pass over what may be gigabytes: tell the kernel to read
    ** ahead, then restore the random-access default the inference wants. */
    madvise((void *)((uintptr_t)m->data & ~(uintptr_t)4095), m->data_len + ((uintptr_t)m->data & 4095),
            MADV_SEQUENTIAL);
    ram_xxh128_hex(m->data, m->data_len, got);
    madvise(m->map, m->map_len, MADV_NORMAL);
    if (strcmp(got, m->digest))
        return ram_fail(err, RAM_ERR_FORMAT, "model file %s is corrupted: checksum %s, expected %s", m->path, got,
                        m->digest);
    return RAM_OK;
}

/* The file's mtime in nanoseconds: rewriting a file in place changes it. */
static int64_t mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

ram_status ram_model_check_file(const struct ram_model *m, struct ram_error *err)
{
    if (!m) return ram_fail(err, RAM_ERR_ARG, "ram_model_check_file: model is NULL");
    if (!m->map) return RAM_OK; /* built from a .pth: nothing mapped from a model file */
    struct stat sb;
    if (fstat(m->fd, &sb)) return ram_fail(err, RAM_ERR_IO, "model file %s: %s", m->path, strerror(errno));
    /* A shorter file faults on the next read past its end (SIGBUS); a new
    ** mtime means the bytes under the mapping may no longer be the weights. */
    if ((uint64_t)sb.st_size < m->map_len || mtime_ns(&sb) != m->file_mtime_ns)
        return ram_fail(err, RAM_ERR_IO,
                        "model file %s changed on disk since it was loaded (truncated/rewritten): load it again; "
                        "replace model files by renaming a new file over them",
                        m->path);
    return RAM_OK;
}

void ram_model_free(struct ram_model *m)
{
    if (!m) return;
    if (m->swin_cache) ram_swin_release(m);
    ram_bpe_free(m->bpe);
    for (int i = 0; i < m->n_owned; i++) ram_free(m->owned[i]);
    ram_free(m->owned);
    for (int s = 0; s < RAM_MAX_STAGES; s++) ram_free(m->swin_w.stages[s].blocks);
    ram_free(m->tagger_layers);
    ram_free(m->clip_w.layers);
    ram_free(m->tags_en);
    ram_free(m->tags_zh);
    ram_free(m->tag_text_en);
    ram_free(m->tag_text_zh);
    ram_free(m->thresholds);
    if (m->map) {
        munmap(m->map, m->map_len);
        close(m->fd);
    }
    if (m->reader && m->reader_close) m->reader_close(m->reader);
    ram_free(m->path);
    ram_free(m);
}

void ram_model_get_info(const struct ram_model *m, struct ram_model_info *out)
{
    memset(out, 0, sizeof *out);
    if (!m) return;
    out->kind = m->kind;
    out->num_class = m->num_class;
    out->des_per_class = m->des_per_class;
    out->image_size = m->swin.image_size;
    out->embed_dim = m->embed_dim;
    out->n_image_tokens = m->n_image_tokens;
    out->has_text_encoder = m->has_clip && m->bpe != NULL;
    out->dtype = m->quant ? "int8"
                 : m->stored_dtype == RAM_DTYPE_F16 ? "f16" : m->stored_dtype == RAM_DTYPE_BF16 ? "bf16" : "f32";
    out->path = m->path;
    out->digest = m->digest;
    out->file_size = m->file_size;
    out->file_dev = m->file_dev;
    out->file_ino = m->file_ino;
    out->file_mtime_ns = m->file_mtime_ns;
}

const char *ram_model_tag(const struct ram_model *m, int cls, int lang)
{
    if (!m || cls < 0 || cls >= m->num_class || !m->tags_en) return NULL;
    return lang == RAM_LANG_ZH && m->tags_zh ? m->tags_zh[cls] : m->tags_en[cls];
}

/* Out of range: 1.0, which no probability exceeds. */
float ram_model_threshold(const struct ram_model *m, int cls)
{
    if (!m || cls < 0 || cls >= m->num_class || !m->thresholds) return 1.0f;
    return m->thresholds[cls];
}

/* ------------------------------------------------------------------ vocabulary */

/* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise
** block forever, uninterruptibly, before the caller can see it is not a
** regular file. */
static int open_nonblock(const char *path) { return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); }

/* Back to blocking reads once fstat said regular file (O_NONBLOCK changes
** nothing for regular files; cleared so read() means what it says). */
static int blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0;
}

ram_status ram_read_file(const char *path, size_t max_len, char **out, size_t *len, struct ram_error *err)
{
    *out = NULL;
    *len = 0;
    int fd = open_nonblock(path);
    if (fd < 0) return ram_fail(err, RAM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    ram_status rc = RAM_OK;
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || blocking(fd)) {
        rc = ram_fail(err, RAM_ERR_IO, "%s is not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max_len) {
        rc = ram_fail(err, RAM_ERR_TOO_BIG, "%s: %lld bytes is over the limit of %zu", path,
                      (long long)st.st_size, max_len);
        goto cleanup;
    }
    size_t n = (size_t)st.st_size, got = 0;
    buf = ram_malloc(n + 1);
    if (!buf) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = ram_fail(err, RAM_ERR_IO, "cannot read %s", path);
            goto cleanup;
        }
        got += (size_t)r;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
cleanup:
    ram_free(buf);
    close(fd);
    return rc;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* Splits text into names. file_mode: lines of a text file (a final newline
** ends the last line; one trailing '\r' per line is dropped); else exactly
** the '\n'-separated names. *joined receives the names joined with '\n'
** (NUL-terminated), *names one allocation: the pointer array followed by
** the names (trimmed of surrounding whitespace when trim). */
static ram_status split_names(const char *text, size_t len, int file_mode, int trim, const char *what,
                              char **joined, char ***names, int *count, struct ram_error *err)
{
    *joined = NULL;
    *names = NULL;
    *count = 0;
    if (len > MAX_VOCAB_TEXT) return ram_fail(err, RAM_ERR_TOO_BIG, "%s is too big", what);
    if (len && memchr(text, 0, len)) return ram_fail(err, RAM_ERR_FORMAT, "%s contains a NUL byte", what);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (!file_mode)
        n += 1;
    else if (len && text[len - 1] != '\n')
        n += 1;
    if (n > (1u << 24)) return ram_fail(err, RAM_ERR_TOO_BIG, "%s has too many lines", what);

    char *j = ram_malloc(len + 1);
    char **nm = ram_malloc(n * sizeof(char *) + len + 1);
    if (!j || !nm) {
        ram_free(j);
        ram_free(nm);
        return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    }
    char *store = (char *)(nm + n);
    size_t jo = 0, pos = 0;
    for (size_t k = 0; k < n; k++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - text) : len, l = e - pos;
        if (file_mode && l && text[pos + l - 1] == '\r') l--;
        if (k) j[jo++] = '\n';
        memcpy(j + jo, text + pos, l);
        jo += l;
        char *dst = store;
        memcpy(dst, text + pos, l);
        dst[l] = 0;
        store += l + 1;
        if (trim) {
            while (l && is_space(dst[l - 1])) dst[--l] = 0;
            while (*dst && is_space(*dst)) dst++;
        }
        nm[k] = dst;
        pos = e + 1;
    }
    j[jo] = 0;
    *joined = j;
    *names = nm;
    *count = (int)n;
    return RAM_OK;
}

ram_status ram_model_set_vocab(struct ram_model *m, int file_mode, const char *en, size_t en_len,
                               const char *zh, size_t zh_len, const char *thr, size_t thr_len,
                               const float *thr_f32, struct ram_error *err)
{
    char *ej = NULL, *zj = NULL, *tj = NULL;
    char **en_names = NULL, **zh_names = NULL, **thr_lines = NULL;
    float *th = NULL;
    int ne = 0, nz = 0, nt = 0;
    ram_status rc;

    rc = split_names(en, en_len, file_mode, 0, "the English tag list", &ej, &en_names, &ne, err);
    if (rc) goto cleanup;
    if (file_mode && ne == 0) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "the English tag list is empty");
        goto cleanup;
    }
    if (m->num_class && ne != m->num_class) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "the English tag list has %d names for %d classes", ne, m->num_class);
        goto cleanup;
    }
    if (!zh) {
        zh = ej;
        zh_len = strlen(ej);
        file_mode = 0;
    }
    rc = split_names(zh, zh_len, file_mode, 1, "the Chinese tag list", &zj, &zh_names, &nz, err);
    if (rc) goto cleanup;
    if (nz != ne) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "the Chinese tag list has %d names, the English one %d", nz, ne);
        goto cleanup;
    }
    th = ram_malloc(sizeof(float) * (size_t)ne);
    if (!th) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (thr_f32) {
        memcpy(th, thr_f32, sizeof(float) * (size_t)ne);
    } else if (!thr) {
        for (int i = 0; i < ne; i++) th[i] = 0.68f; /* the official constructor's fill value */
    } else {
        rc = split_names(thr, thr_len, 1, 1, "the thresholds file", &tj, &thr_lines, &nt, err);
        if (rc) goto cleanup;
        if (nt != ne) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "the thresholds file has %d lines for %d classes", nt, ne);
            goto cleanup;
        }
        for (int i = 0; i < nt; i++) {
            char *end;
            double v = strtod(thr_lines[i], &end);
            if (end == thr_lines[i] || *end || !isfinite(v)) {
                rc = ram_fail(err, RAM_ERR_FORMAT, "thresholds line %d: \"%.40s\" is not a number", i + 1,
                              thr_lines[i]);
                goto cleanup;
            }
            th[i] = (float)v;
        }
    }
    for (int i = 0; i < ne; i++)
        if (!isfinite(th[i])) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "threshold of class %d is not finite", i);
            goto cleanup;
        }
    ram_free(m->tags_en);
    ram_free(m->tags_zh);
    ram_free(m->tag_text_en);
    ram_free(m->tag_text_zh);
    ram_free(m->thresholds);
    m->tags_en = en_names;
    m->tags_zh = zh_names;
    m->tag_text_en = ej;
    m->tag_text_zh = zj;
    m->thresholds = th;
    m->num_class = ne;
    en_names = zh_names = NULL;
    ej = zj = NULL;
    th = NULL;
cleanup:
    ram_free(ej);
    ram_free(zj);
    ram_free(tj);
    ram_free(en_names);
    ram_free(zh_names);
    ram_free(thr_lines);
    ram_free(th);
    return rc;
}

/* ------------------------------------------------------------------ loading our file */

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
static ram_status meta_list(const struct ram_st_file *f, const char *key, int *out, int *n_out,
                            struct ram_error *err)
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
    if (!v || strcmp(v, FORMAT_NAME))
        return ram_fail(err, RAM_ERR_FORMAT, "not a sqlite-ram model file (metadata format is %s)",
                        v ? "different" : "missing");
    v = ram_st_meta(f, "format_version");
    if (!v || (strcmp(v, FORMAT_VERSION) && strcmp(v, FORMAT_VERSION_Q8)))
        return ram_fail(err, RAM_ERR_FORMAT,
                        "unsupported model file version \"%.16s\" (this build reads %s and %s)", v ? v : "",
                        FORMAT_VERSION, FORMAT_VERSION_Q8);
    const char *q = ram_st_meta(f, "quant");
    m->quant = !strcmp(v, FORMAT_VERSION_Q8);
    if (m->quant != (q != NULL) || (q && strcmp(q, "int8")))
        return ram_fail(err, RAM_ERR_FORMAT,
                        "model file version %s with quant \"%.16s\" (version 2 means quant = int8, version 1 none)",
                        v, q ? q : "");
    v = ram_st_meta(f, "kind");
    if (v && !strcmp(v, "ram_plus"))
        m->kind = RAM_KIND_RAM_PLUS;
    else if (v && !strcmp(v, "ram"))
        m->kind = RAM_KIND_RAM;
    else
        return ram_fail(err, RAM_ERR_FORMAT, "model file: unknown kind \"%.32s\"", v ? v : "");
    v = ram_st_meta(f, "dtype");
    if (v && !strcmp(v, "f32"))
        m->stored_dtype = RAM_DTYPE_F32;
    else if (v && !strcmp(v, "f16"))
        m->stored_dtype = RAM_DTYPE_F16;
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
#undef I
    return ram_model_check_config(m, err);
}

/* A 1-D U8 tensor (vocabulary text), by canonical name. */
static ram_status get_text(const struct ram_tensor_source *src, const char *name, const char **p,
                           size_t *n, struct ram_error *err)
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

ram_status ram_model_init_from_file(const char *path, const struct ram_model_params *params,
                                    struct ram_model **out, struct ram_error *err)
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

    fd = open_nonblock(path); /* only mapped, never read(): O_NONBLOCK can stay */
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
    m->file_mtime_ns = mtime_ns(&sb);

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

/* ------------------------------------------------------------------ from a .pth */

static void close_pth(void *p) { ram_pth_close(p); }

/* XXH3-128 of a whole file, read in chunks (identifies a .pth-built model). */
static ram_status file_digest(const char *path, char out[33], uint64_t *size, struct ram_error *err)
{
    int fd = open_nonblock(path);
    if (fd < 0) return ram_fail(err, RAM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    XXH3_state_t *xs = XXH3_createState();
    char *buf = ram_malloc(1 << 20);
    ram_status rc = RAM_OK;
    struct stat sb;
    *size = 0;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || blocking(fd)) {
        rc = ram_fail(err, RAM_ERR_IO, "%s is not a regular file", path);
        goto cleanup;
    }
    if (!xs || !buf) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    XXH3_128bits_reset(xs);
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = ram_fail(err, RAM_ERR_IO, "cannot read %s", path);
            goto cleanup;
        }
        if (r == 0) break;
        XXH3_128bits_update(xs, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(xs));
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", c.digest[i]);
cleanup:
    if (xs) XXH3_freeState(xs);
    ram_free(buf);
    close(fd);
    return rc;
}

ram_status ram_model_init_from_pth(const char *pth, const char *tags_en, const char *tags_zh,
                                   const char *thresholds, const struct ram_convert_opts *opts,
                                   struct ram_model **out, struct ram_error *err)
{
    struct ram_model *m = NULL;
    char *en = NULL, *zh = NULL, *th = NULL;
    size_t en_n = 0, zh_n = 0, th_n = 0;
    ram_status rc;

    if (!out || !pth || !tags_en) return ram_fail(err, RAM_ERR_ARG, "ram_model_init_from_pth: NULL argument");
    *out = NULL;
    m = ram_calloc(1, sizeof *m);
    if (!m) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    m->stored_dtype = RAM_DTYPE_F32;
    if (!(m->path = ram_strdup(pth))) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ram_read_file(tags_en, MAX_VOCAB_TEXT, &en, &en_n, err))) goto fail;
    if (tags_zh && (rc = ram_read_file(tags_zh, MAX_VOCAB_TEXT, &zh, &zh_n, err))) goto fail;
    if (thresholds && (rc = ram_read_file(thresholds, MAX_VOCAB_TEXT, &th, &th_n, err))) goto fail;
    rc = ram_model_set_vocab(m, 1, en, en_n, zh, zh_n, th, th_n, NULL, err);
    if (rc) goto fail;

    struct ram_pth *p = NULL;
    if ((rc = ram_pth_open(pth, &p, err))) goto fail;
    m->reader = p;
    m->reader_close = close_pth;
    struct ram_tensor_source src = ram_pth_source(p);
    if ((rc = ram_model_infer_config(m, &src, m->num_class, opts, err))) goto fail;
    if ((rc = ram_model_bind(m, &src, err))) goto fail;
    if ((rc = file_digest(pth, m->digest, &m->file_size, err))) goto fail;
    if ((rc = ram_swin_prepare(m, err))) goto fail;
    *out = m;
    m = NULL;
fail:
    ram_free(en);
    ram_free(zh);
    ram_free(th);
    ram_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ writing */

/* --random: a counter-based generator, so any chunk of any tensor can be
** produced independently: value i of tensor t is a hash of (seed, t, i). */
struct rand_ctx {
    uint64_t key;
    int init;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static ram_status rand_fill(void *ctx, const struct ram_st_out *t, size_t first, size_t count, float *dst,
                            struct ram_error *err)
{
    const struct rand_ctx *c = ctx;
    switch (c->init) {
    case RAM_WINIT_ZERO:
        for (size_t i = 0; i < count; i++) dst[i] = 0.0f;
        return RAM_OK;
    case RAM_WINIT_ONE:
        for (size_t i = 0; i < count; i++) dst[i] = 1.0f;
        return RAM_OK;
    case RAM_WINIT_LOGIT_SCALE:
        for (size_t i = 0; i < count; i++) dst[i] = logf(1.0f / 0.07f);
        return RAM_OK;
    default:
        break;
    }
    /* Sum of four 16-bit uniforms: mean 131070, sd 65536 / sqrt(3). */
    const float scale = 0.02f / 37837.23f;
    for (size_t i = 0; i < count; i++) {
        uint64_t r = mix64(c->key + (first + i) * 0x9e3779b97f4a7c15ULL);
        int64_t s = (int64_t)(r & 0xffff) + (int64_t)((r >> 16) & 0xffff) + (int64_t)((r >> 32) & 0xffff) +
                    (int64_t)(r >> 48);
        dst[i] = (float)(s - 131070) * scale;
    }
    if (c->init == RAM_WINIT_UNIT_ROWS) {
        size_t row = t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
        for (size_t r0 = 0; r0 + row <= count; r0 += row) {
            double ss = 0;
            for (size_t k = 0; k < row; k++) ss += (double)dst[r0 + k] * dst[r0 + k];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (size_t k = 0; k < row; k++) dst[r0 + k] *= inv;
        }
    }
    return RAM_OK;
}

/* --quant int8: a Swin matrix written as its packed I8 form and its scales,
** both made from the fp32 weights (the model's, or --random's generator). */
struct q8_ctx {
    const float *f32;      /* the matrix, or NULL: generate with rnd */
    struct rand_ctx *rnd;
    struct ram_st_out src; /* shape of the fp32 matrix, for rand_fill */
    int n, k;
};

/* Quantizes the matrix into packed (may be NULL) and scale. */
static ram_status q8_make(const struct q8_ctx *c, int8_t *packed, float *scale, struct ram_error *err)
{
    size_t pb = ram_q8_packed_bytes(c->n, c->k), nk = (size_t)c->n * c->k;
    float *tmp = c->f32 ? NULL : ram_malloc(nk * sizeof(float));
    int8_t *pk = packed ? packed : ram_malloc(pb);
    ram_status rc = RAM_OK;
    if ((!c->f32 && !tmp) || !pk) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory quantizing a %d x %d matrix", c->n, c->k);
    } else if (!c->f32) {
        rc = rand_fill(c->rnd, &c->src, 0, nk, tmp, err);
    }
    if (!rc) rc = ram_q8_quantize_pack(c->f32 ? c->f32 : tmp, c->n, c->k, pk, scale, err);
    ram_free(tmp);
    if (pk != packed) ram_free(pk);
    return rc;
}

static ram_status q8_fill_packed(void *ctx, const struct ram_st_out *t, void *dst, size_t nbytes,
                                 struct ram_error *err)
{
    const struct q8_ctx *c = ctx;
    float *scale = ram_malloc(sizeof(float) * (size_t)c->n);
    if (!scale) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    ram_status rc = q8_make(c, dst, scale, err);
    ram_free(scale);
    return rc;
}

static ram_status q8_fill_scale(void *ctx, const struct ram_st_out *t, void *dst, size_t nbytes,
                                struct ram_error *err)
{
    return q8_make(ctx, NULL, dst, err);
}

/* The two outputs of spec w (whose fp32 data or generator is already in
** *t) under --quant int8; qname receives "<name>.qscale". */
static ram_status q8_outs(const struct ram_wspec *w, struct ram_st_out *t, struct q8_ctx *c, char *qname,
                          struct ram_error *err)
{
    c->n = (int)w->shape[0], c->k = (int)w->shape[1];
    if (!ram_q8_packed_bytes(c->n, c->k))
        return ram_fail(err, RAM_ERR_TOO_BIG, "%s: %d x %d cannot be stored as int8", w->name, c->n, c->k);
    c->f32 = t->f32;
    c->rnd = t->fill ? t->ctx : NULL;
    c->src = *t;
    *t = (struct ram_st_out){.name = w->name, .dtype = RAM_DTYPE_I8, .ndim = 4,
                             .shape = {(c->n + 15) / 16, (c->k + 3) / 4, 16, 4}, .fill_raw = q8_fill_packed, .ctx = c};
    snprintf(qname, RAM_WSPEC_NAME + 8, "%s.qscale", w->name);
    t[1] = (struct ram_st_out){.name = qname, .dtype = RAM_DTYPE_F32, .ndim = 1, .shape = {c->n},
                               .fill_raw = q8_fill_scale, .ctx = c};
    return RAM_OK;
}

static void join_ints(char *buf, size_t cap, const int *v, int n)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, i ? ",%d" : "%d", v[i]);
}

ram_status ram_model_write(struct ram_model *m, const char *path, const struct ram_write_opts *o,
                           char *digest_out, struct ram_error *err)
{
    return ram_model_write_q(m, path, o, 0, digest_out, err);
}

ram_status ram_model_write_q(struct ram_model *m, const char *path, const struct ram_write_opts *o, int quant,
                             char *digest_out, struct ram_error *err)
{
    struct ram_write_opts opt;
    struct ram_wspec *specs = NULL;
    struct ram_st_out *outs = NULL;
    struct rand_ctx *rc_ctx = NULL;
    struct q8_ctx *q8 = NULL;
    char (*qnames)[RAM_WSPEC_NAME + 8] = NULL;
    int n = 0, k = 0;
    ram_status rc;

    memset(&opt, 0, sizeof opt);
    if (o) opt = *o;
    if (opt.dtype != RAM_DTYPE_F32 && opt.dtype != RAM_DTYPE_F16)
        return ram_fail(err, RAM_ERR_ARG, "model file dtype must be f32 or f16");
    if (!m->tag_text_en || !m->tag_text_zh || !m->thresholds)
        return ram_fail(err, RAM_ERR_ARG, "the model has no vocabulary");
    if (m->has_clip && !opt.bpe_text)
        return ram_fail(err, RAM_ERR_ARG, "a text tower needs its BPE vocabulary");
    rc = ram_model_specs(m, &specs, &n, err);
    if (rc) return rc;
    outs = ram_calloc(2 * (size_t)n + 4, sizeof *outs);
    rc_ctx = ram_calloc((size_t)n + 1, sizeof *rc_ctx);
    q8 = ram_calloc((size_t)n + 1, sizeof *q8);
    qnames = ram_calloc((size_t)n + 1, sizeof *qnames);
    if (!outs || !rc_ctx || !q8 || !qnames) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        const struct ram_wspec *w = &specs[i];
        struct ram_st_out *t = &outs[k++];
        t->name = w->name;
        t->ndim = w->ndim;
        memcpy(t->shape, w->shape, sizeof t->shape);
        t->dtype = opt.dtype == RAM_DTYPE_F16 && w->big ? RAM_DTYPE_F16 : RAM_DTYPE_F32;
        if (opt.random) {
            rc_ctx[i].key = mix64(opt.seed ^ mix64((uint64_t)i + 1));
            rc_ctx[i].init = w->init;
            t->fill = rand_fill;
            t->ctx = &rc_ctx[i];
        } else if (w->scalar) {
            t->f32 = w->scalar;
        } else if (w->dst && *w->dst) {
            t->f32 = *w->dst;
        } else {
            rc = ram_fail(err, RAM_ERR_ARG, "tensor %s is not bound", w->name);
            goto cleanup;
        }
        if (quant && w->q8) {
            if ((rc = q8_outs(w, t, &q8[i], qnames[i], err))) goto cleanup;
            k++;
        }
    }
    outs[k++] = (struct ram_st_out){.name = "vocab.tags_en", .dtype = RAM_DTYPE_U8, .ndim = 1,
                                    .shape = {(int64_t)strlen(m->tag_text_en)}, .bytes = m->tag_text_en};
    outs[k++] = (struct ram_st_out){.name = "vocab.tags_zh", .dtype = RAM_DTYPE_U8, .ndim = 1,
                                    .shape = {(int64_t)strlen(m->tag_text_zh)}, .bytes = m->tag_text_zh};
    outs[k++] = (struct ram_st_out){.name = "vocab.thresholds", .dtype = RAM_DTYPE_F32, .ndim = 1,
                                    .shape = {m->num_class}, .bytes = m->thresholds};
    if (m->has_clip)
        outs[k++] = (struct ram_st_out){.name = "clip.bpe_vocab", .dtype = RAM_DTYPE_U8, .ndim = 1,
                                        .shape = {(int64_t)opt.bpe_len}, .bytes = opt.bpe_text};

    /* Metadata: every config number, as decimal strings. */
    char vals[32][40];
    const char *keys[32], *mv[32];
    int nm = 0;
#define META_S(k, v) (keys[nm] = (k), snprintf(vals[nm], sizeof vals[nm], "%s", (v)), nm++)
#define META_I(k, v) (keys[nm] = (k), snprintf(vals[nm], sizeof vals[nm], "%d", (v)), nm++)
    META_S("format", FORMAT_NAME);
    META_S("format_version", quant ? FORMAT_VERSION_Q8 : FORMAT_VERSION);
    if (quant) META_S("quant", "int8");
    META_S("kind", m->kind == RAM_KIND_RAM_PLUS ? "ram_plus" : "ram");
    META_S("dtype", opt.dtype == RAM_DTYPE_F16 ? "f16" : "f32");
    META_I("image_size", m->swin.image_size);
    META_I("patch_size", m->swin.patch_size);
    META_I("in_chans", m->swin.in_chans);
    META_I("embed_dim", m->swin.embed_dim);
    keys[nm] = "depths";
    join_ints(vals[nm++], sizeof vals[0], m->swin.depths, m->swin.n_stages);
    keys[nm] = "heads";
    join_ints(vals[nm++], sizeof vals[0], m->swin.heads, m->swin.n_stages);
    META_I("window", m->swin.window);
    META_I("mlp_ratio", m->swin.mlp_ratio);
    META_I("num_class", m->num_class);
    META_I("des_per_class", m->des_per_class);
    META_I("tagger_hidden", m->tagger.hidden);
    META_I("tagger_layers", m->tagger.n_layers);
    META_I("tagger_heads", m->tagger.n_heads);
    META_I("tagger_intermediate", m->tagger.intermediate);
    META_I("tagger_encoder_width", m->tagger.encoder_width);
    if (m->has_clip) {
        META_I("clip_vocab", m->clip.vocab);
        META_I("clip_context", m->clip.context);
        META_I("clip_width", m->clip.width);
        META_I("clip_heads", m->clip.heads);
        META_I("clip_layers", m->clip.layers);
        META_I("clip_embed_dim", m->clip.embed_dim);
    }
#undef META_S
#undef META_I
    for (int i = 0; i < nm; i++) mv[i] = vals[i];
    rc = ram_st_write(path, outs, k, keys, mv, nm, "checksum", digest_out, err);
cleanup:
    ram_free(outs);
    ram_free(rc_ctx);
    ram_free(q8);
    ram_free(qnames);
    ram_free(specs);
    return rc;
}
