/*
** safetensors.c — parses, validates, maps and writes safetensors files (see
** safetensors.h for the rules). Our model file format is built on it.
**
** HOW IT WORKS (reading): the JSON header is parsed with json.c (depth 4),
** each tensor entry becomes a struct ram_tensor_view pointing into the data
** section, and the views are sorted twice: by offsets to check that the
** byte ranges do not overlap (and, strict, tile the section), then by name
** for binary-search lookup and duplicate detection.
** HOW IT WORKS (writing): offsets are assigned in layout order, the header
** is written with a zero checksum placeholder of the final width, the data
** is streamed through one buffer while XXH3-128 runs over it, then the
** header is rewritten in place with the real checksum (same length) and the
** temp file is renamed over the destination.
*/
#include "safetensors.h"

#include "json.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIM ((int64_t)1 << 40)

static uint64_t rd_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int cmp_view_name(const void *a, const void *b)
{
    return strcmp(((const struct ram_tensor_view *)a)->name, ((const struct ram_tensor_view *)b)->name);
}

struct span {
    size_t begin, end;
    int idx;
};
static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

void ram_st_free(struct ram_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) ram_free((void *)f->tensors[i].name);
    ram_free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        ram_free(f->meta_keys[i]);
        ram_free(f->meta_vals[i]);
    }
    ram_free(f->meta_keys);
    ram_free(f->meta_vals);
    memset(f, 0, sizeof *f);
}

/* Parses one tensor entry (value node v, already decoded name) into *t.
** Returns RAM_OK, an error, or RAM_OK with *skip = 1 for an entry that a
** lenient read ignores (unknown dtype, ndim over RAM_ST_MAX_DIMS). */
static ram_status parse_entry(const struct ram_json *j, int v, const char *name, int strict,
                              const uint8_t *data, size_t data_len, struct ram_tensor_view *t,
                              struct span *sp, int *skip, struct ram_error *err)
{
    *skip = 0;
    if (j->nodes[v].type != RAM_JSON_OBJECT)
        return ram_fail(err, RAM_ERR_FORMAT, "safetensors: entry %s is not an object", name);
    int dt = ram_json_find(j, v, "dtype");
    int sh = ram_json_find(j, v, "shape");
    int of = ram_json_find(j, v, "data_offsets");
    if (dt < 0 || sh < 0 || of < 0 || j->nodes[dt].type != RAM_JSON_STRING ||
        j->nodes[sh].type != RAM_JSON_ARRAY || j->nodes[of].type != RAM_JSON_ARRAY)
        return ram_fail(err, RAM_ERR_FORMAT,
                        "safetensors: entry %s needs dtype, shape and data_offsets", name);

    int64_t off[2];
    int k = 0;
    for (int e = ram_json_first(j, of); e >= 0; e = ram_json_next(j, of, e), k++)
        if (k >= 2 || !ram_json_int64(j, e, &off[k]) || off[k] < 0) k = 3;
    if (k != 2 || off[0] > off[1] || (uint64_t)off[1] > data_len)
        return ram_fail(err, RAM_ERR_FORMAT,
                        "safetensors: data_offsets of %s are invalid or outside the data section (%zu bytes)",
                        name, data_len);
    sp->begin = (size_t)off[0];
    sp->end = (size_t)off[1];

    int ndim = j->nodes[sh].count;
    if (ndim > RAM_MAX_DIMS || (strict && ndim > RAM_ST_MAX_DIMS)) {
        if (strict)
            return ram_fail(err, RAM_ERR_FORMAT, "safetensors: %s has %d dimensions (max %d)", name,
                            ndim, RAM_ST_MAX_DIMS);
        *skip = 1;
        return RAM_OK;
    }
    size_t numel = 1;
    int d = 0;
    for (int e = ram_json_first(j, sh); e >= 0; e = ram_json_next(j, sh, e), d++) {
        int64_t v64;
        if (!ram_json_int64(j, e, &v64) || v64 < 0 || v64 > MAX_DIM)
            return ram_fail(err, RAM_ERR_FORMAT, "safetensors: bad shape for %s", name);
        t->shape[d] = v64;
        if (!ram_mul_ok(numel, (size_t)v64, &numel))
            return ram_fail(err, RAM_ERR_FORMAT, "safetensors: shape of %s overflows", name);
    }
    t->ndim = ndim;

    char dname[16];
    size_t dl = j->nodes[dt].len;
    enum ram_dtype dtype;
    if (dl >= sizeof dname) dl = sizeof dname - 1;
    memcpy(dname, j->text + j->nodes[dt].start, dl);
    dname[dl] = 0;
    if (!ram_dtype_from_name(dname, &dtype)) {
        if (strict)
            return ram_fail(err, RAM_ERR_FORMAT, "safetensors: unsupported dtype %s for %s", dname, name);
        *skip = 1;
        return RAM_OK;
    }
    size_t nbytes;
    if (!ram_mul_ok(numel, ram_dtype_size(dtype), &nbytes) || nbytes != sp->end - sp->begin)
        return ram_fail(err, RAM_ERR_FORMAT,
                        "safetensors: %s: %zu bytes for %zu elements of %s", name,
                        sp->end - sp->begin, numel, dname);
    t->dtype = dtype;
    t->data = data + sp->begin;
    t->nbytes = nbytes;
    return RAM_OK;
}

ram_status ram_st_parse(const void *buf, size_t len, int flags, struct ram_st_file *out,
                        struct ram_error *err)
{
    const uint8_t *b = buf;
    struct ram_json j = {0};
    struct span *spans = NULL;
    ram_status rc = RAM_OK;
    int strict = (flags & RAM_ST_STRICT) != 0;
    char *name = NULL;

    memset(out, 0, sizeof *out);
    if (len < 8) return ram_fail(err, RAM_ERR_FORMAT, "safetensors: file of %zu bytes is too short", len);
    uint64_t hl = rd_le64(b);
    if (hl > RAM_ST_MAX_HEADER)
        return ram_fail(err, RAM_ERR_FORMAT, "safetensors: header length %llu is over the limit",
                        (unsigned long long)hl);
    if (hl > len - 8)
        return ram_fail(err, RAM_ERR_FORMAT,
                        "safetensors: header length %llu exceeds the file size (%zu bytes)",
                        (unsigned long long)hl, len);
    out->base = b;
    out->len = len;
    out->header_len = (size_t)hl;
    out->data = b + 8 + hl;
    out->data_len = len - 8 - (size_t)hl;

    rc = ram_json_parse((const char *)b + 8, (size_t)hl, 4, &j, err);
    if (rc) {
        char tmp[RAM_ERROR_MAX];
        snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
        rc = ram_fail(err, rc, "safetensors: bad header: %s", tmp);
        goto fail;
    }
    if (j.nodes[0].type != RAM_JSON_OBJECT) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: header is not a JSON object");
        goto fail;
    }
    int count = j.nodes[0].count;
    out->tensors = ram_calloc((size_t)count + 1, sizeof *out->tensors);
    spans = ram_calloc((size_t)count + 1, sizeof *spans);
    if (!out->tensors || !spans) goto nomem;

    for (int k = ram_json_first(&j, 0); k >= 0; k = ram_json_next(&j, 0, k)) {
        int v = k + 1;
        size_t nl;
        if ((rc = ram_json_strdup(&j, k, &name, &nl, err))) goto fail;
        if (nl != strlen(name)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: tensor name with a NUL byte");
            goto fail;
        }
        if (!strcmp(name, "__metadata__")) {
            ram_free(name);
            name = NULL;
            if (out->meta_keys) {
                rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: duplicate __metadata__");
                goto fail;
            }
            if (j.nodes[v].type != RAM_JSON_OBJECT) {
                rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: __metadata__ is not an object");
                goto fail;
            }
            int nm = j.nodes[v].count;
            out->meta_keys = ram_calloc((size_t)nm + 1, sizeof(char *));
            out->meta_vals = ram_calloc((size_t)nm + 1, sizeof(char *));
            if (!out->meta_keys || !out->meta_vals) goto nomem;
            for (int mk = ram_json_first(&j, v); mk >= 0; mk = ram_json_next(&j, v, mk)) {
                if (j.nodes[mk + 1].type != RAM_JSON_STRING) {
                    if (!strict) continue;
                    rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: __metadata__ value is not a string");
                    goto fail;
                }
                char *mkey = NULL, *mval = NULL;
                if ((rc = ram_json_strdup(&j, mk, &mkey, NULL, err)) ||
                    (rc = ram_json_strdup(&j, mk + 1, &mval, NULL, err))) {
                    ram_free(mkey);
                    goto fail;
                }
                out->meta_keys[out->n_meta] = mkey;
                out->meta_vals[out->n_meta++] = mval;
            }
            continue;
        }
        struct ram_tensor_view *t = &out->tensors[out->n_tensors];
        struct span *sp = &spans[out->n_tensors];
        int skip;
        memset(t, 0, sizeof *t);
        rc = parse_entry(&j, v, name, strict, out->data, out->data_len, t, sp, &skip, err);
        if (rc) goto fail;
        sp->idx = out->n_tensors;
        if (skip) {
            /* Lenient reads keep the range for the overlap check only. */
            t->name = name;
            t->dtype = RAM_DTYPE_U8;
            t->ndim = -1;
        } else {
            t->name = name;
        }
        name = NULL;
        out->n_tensors++;
    }

    /* Byte ranges: no overlap; strict files tile the data section exactly. */
    qsort(spans, (size_t)out->n_tensors, sizeof *spans, cmp_span);
    size_t pos = 0;
    for (int i = 0; i < out->n_tensors; i++) {
        if (spans[i].begin < pos) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: tensor %s overlaps another",
                          out->tensors[spans[i].idx].name);
            goto fail;
        }
        if (strict && spans[i].begin != pos) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: gap before tensor %s",
                          out->tensors[spans[i].idx].name);
            goto fail;
        }
        pos = spans[i].end;
    }
    if (strict && pos != out->data_len) {
        rc = ram_fail(err, RAM_ERR_FORMAT,
                      "safetensors: tensors cover %zu of the %zu data bytes", pos, out->data_len);
        goto fail;
    }

    /* Drop skipped entries, then sort by name for lookup. */
    int w = 0;
    for (int i = 0; i < out->n_tensors; i++) {
        if (out->tensors[i].ndim < 0) {
            ram_free((void *)out->tensors[i].name);
            continue;
        }
        out->tensors[w++] = out->tensors[i];
    }
    out->n_tensors = w;
    qsort(out->tensors, (size_t)w, sizeof *out->tensors, cmp_view_name);
    for (int i = 1; i < w; i++)
        if (!strcmp(out->tensors[i].name, out->tensors[i - 1].name)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: duplicate tensor %s", out->tensors[i].name);
            goto fail;
        }
    goto cleanup;

nomem:
    rc = ram_fail(err, RAM_ERR_NOMEM, "safetensors: out of memory");
fail:
    ram_free(name);
    ram_st_free(out);
cleanup:
    ram_free(spans);
    ram_json_free(&j);
    return rc;
}

const struct ram_tensor_view *ram_st_find(const struct ram_st_file *f, const char *name)
{
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (!c) return &f->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *ram_st_meta(const struct ram_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

static const struct ram_tensor_view *st_find_cb(void *ctx, const char *name)
{
    return ram_st_find(ctx, name);
}

struct ram_tensor_source ram_st_source(struct ram_st_file *f)
{
    struct ram_tensor_source s = {st_find_cb, f};
    return s;
}

ram_status ram_st_open(const char *path, int flags, struct ram_st_map **out, struct ram_error *err)
{
    struct ram_st_map *m = NULL;
    int fd = -1;
    ram_status rc = RAM_OK;
    struct stat stt;

    *out = NULL;
    /* O_NONBLOCK: a FIFO would block open() forever; the fd is only mapped. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return ram_fail(err, RAM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &stt) || !S_ISREG(stt.st_mode)) {
        rc = ram_fail(err, RAM_ERR_IO, "%s is not a regular file", path);
        goto cleanup;
    }
    if (stt.st_size < 8) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "%s: file of %lld bytes is too short", path,
                      (long long)stt.st_size);
        goto cleanup;
    }
    m = ram_calloc(1, sizeof *m);
    if (!m) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    m->map_len = (size_t)stt.st_size;
    m->map = mmap(NULL, m->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        rc = ram_fail(err, RAM_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = ram_st_parse(m->map, m->map_len, flags, &m->st, err);
    if (rc) goto cleanup;
    *out = m;
    m = NULL;
cleanup:
    if (fd >= 0) close(fd);
    ram_st_close(m);
    return rc;
}

void ram_st_close(struct ram_st_map *m)
{
    if (!m) return;
    ram_st_free(&m->st);
    if (m->map) munmap(m->map, m->map_len);
    ram_free(m);
}

/* ------------------------------------------------------------------ writing */

static void hex128(XXH128_hash_t h, char out[33])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[c.digest[i] >> 4];
        out[2 * i + 1] = hx[c.digest[i] & 15];
    }
    out[32] = 0;
}

void ram_xxh128_hex(const void *data, size_t n, char out[33])
{
    hex128(XXH3_128bits(data, n), out);
}

struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sbuf *s, const char *d, size_t n)
{
    if (s->oom) return;
    if (s->n + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 4096;
        while (nc < s->n + n + 1) nc *= 2;
        char *np = ram_realloc(s->p, nc);
        if (!np) {
            s->oom = 1;
            return;
        }
        s->p = np;
        s->cap = nc;
    }
    memcpy(s->p + s->n, d, n);
    s->n += n;
    s->p[s->n] = 0;
}
static void sb_str(struct sbuf *s, const char *z) { sb_put(s, z, strlen(z)); }
static void sb_fmt(struct sbuf *s, const char *fmt, unsigned long long v)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(s, tmp, (size_t)k);
}
static void sb_json_string(struct sbuf *s, const char *z)
{
    sb_put(s, "\"", 1);
    for (; *z; z++) {
        unsigned char c = (unsigned char)*z;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(s, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(s, e, 6);
        } else {
            sb_put(s, (const char *)&c, 1);
        }
    }
    sb_put(s, "\"", 1);
}

/* Builds the padded header (8-byte length + JSON) for the given layout. */
static void build_header(struct sbuf *s, const struct ram_st_out *t, const int *order,
                         const size_t *begin, const size_t *nbytes, int n,
                         const char *const *mk, const char *const *mv, int n_meta,
                         const char *checksum_key, const char *checksum)
{
    s->n = 0;
    sb_put(s, "\0\0\0\0\0\0\0\0", 8);
    sb_str(s, "{\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        if (i) sb_str(s, ",");
        sb_json_string(s, mk[i]);
        sb_str(s, ":");
        sb_json_string(s, mv[i]);
    }
    if (checksum_key) {
        if (n_meta) sb_str(s, ",");
        sb_json_string(s, checksum_key);
        sb_str(s, ":");
        sb_json_string(s, checksum);
    }
    sb_str(s, "}");
    for (int k = 0; k < n; k++) {
        int i = order[k];
        sb_str(s, ",");
        sb_json_string(s, t[i].name);
        sb_str(s, ":{\"dtype\":\"");
        sb_str(s, ram_dtype_name(t[i].dtype));
        sb_str(s, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) sb_fmt(s, d ? ",%llu" : "%llu", (unsigned long long)t[i].shape[d]);
        sb_fmt(s, "],\"data_offsets\":[%llu", (unsigned long long)begin[i]);
        sb_fmt(s, ",%llu]}", (unsigned long long)(begin[i] + nbytes[i]));
    }
    sb_str(s, "}");
    while (!s->oom && s->n % RAM_ST_ALIGN) sb_put(s, " ", 1);
    if (s->oom) return;
    uint64_t hl = s->n - 8;
    for (int i = 0; i < 8; i++) s->p[i] = (char)(hl >> (8 * i));
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        c += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Elements per chunk when converting or generating. */
#define CHUNK_ELEMS ((size_t)1 << 20)

static void convert_out(enum ram_dtype dt, const float *src, void *dst, size_t n)
{
    if (dt == RAM_DTYPE_F32) {
        memcpy(dst, src, n * 4);
    } else if (dt == RAM_DTYPE_F16) {
        uint16_t *o = dst;
        for (size_t i = 0; i < n; i++) o[i] = ram_f32_to_f16(src[i]);
    } else { /* BF16, round to nearest even */
        uint16_t *o = dst;
        for (size_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, &src[i], 4);
            if ((x & 0x7fffffffu) > 0x7f800000u)
                o[i] = (uint16_t)((x >> 16) | 0x40);
            else
                o[i] = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
        }
    }
}

/* A tensor whose bytes a callback makes whole (quantized weights): one
** buffer of its size, hashed and written. */
static ram_status write_raw_fill(int fd, XXH3_state_t *xs, const struct ram_st_out *o, size_t nbytes,
                                 struct ram_error *err)
{
    void *buf = ram_malloc(nbytes);
    if (!buf) return ram_fail(err, RAM_ERR_NOMEM, "safetensors: out of memory for %s", o->name);
    ram_status rc = o->fill_raw(o->ctx, o, buf, nbytes, err);
    if (!rc) {
        XXH3_128bits_update(xs, buf, nbytes);
        if (!write_all(fd, buf, nbytes)) rc = ram_fail(err, RAM_ERR_IO, "cannot write %s: %s", o->name, strerror(errno));
    }
    ram_free(buf);
    return rc;
}

ram_status ram_st_write(const char *path, const struct ram_st_out *t, int n,
                        const char *const *meta_keys, const char *const *meta_vals, int n_meta,
                        const char *checksum_key, char *digest_out, struct ram_error *err)
{
    ram_status rc = RAM_OK;
    int *order = NULL;
    size_t *begin = NULL, *nbytes = NULL;
    struct sbuf hdr = {0};
    char *tmp = NULL;
    float *fbuf = NULL;
    void *obuf = NULL;
    XXH3_state_t *xs = NULL;
    int fd = -1;
    char digest[33];

    order = ram_malloc(sizeof *order * (size_t)(n + 1));
    begin = ram_malloc(sizeof *begin * (size_t)(n + 1));
    nbytes = ram_malloc(sizeof *nbytes * (size_t)(n + 1));
    xs = XXH3_createState();
    if (!order || !begin || !nbytes || !xs) goto nomem;

    /* Layout: I8 first (quantized weights: packed sizes are multiples of 64,
    ** so each starts 64-byte aligned and every later tensor keeps the
    ** alignment it had without them), then larger element sizes first (F32
    ** before F16 before U8). */
    int k = 0;
    for (int i = 0; i < n; i++)
        if (t[i].dtype == RAM_DTYPE_I8) order[k++] = i;
    for (size_t es = 8; es >= 1; es /= 2)
        for (int i = 0; i < n; i++)
            if (ram_dtype_size(t[i].dtype) == es && t[i].dtype != RAM_DTYPE_I8) order[k++] = i;
    if (k != n) {
        rc = ram_fail(err, RAM_ERR_ARG, "safetensors: bad dtype in write list");
        goto cleanup;
    }
    size_t pos = 0, max_row = 1;
    for (k = 0; k < n; k++) {
        int i = order[k];
        size_t numel = 1;
        if (t[i].ndim < 0 || t[i].ndim > RAM_ST_MAX_DIMS) {
            rc = ram_fail(err, RAM_ERR_ARG, "safetensors: %s has %d dimensions", t[i].name, t[i].ndim);
            goto cleanup;
        }
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || !ram_mul_ok(numel, (size_t)t[i].shape[d], &numel)) {
                rc = ram_fail(err, RAM_ERR_TOO_BIG, "safetensors: bad shape for %s", t[i].name);
                goto cleanup;
            }
        if (!ram_mul_ok(numel, ram_dtype_size(t[i].dtype), &nbytes[i]) || pos + nbytes[i] < pos) {
            rc = ram_fail(err, RAM_ERR_TOO_BIG, "safetensors: %s is too big", t[i].name);
            goto cleanup;
        }
        size_t row = t[i].ndim ? (size_t)t[i].shape[t[i].ndim - 1] : 1;
        if (row > max_row) max_row = row;
        begin[i] = pos;
        pos += nbytes[i];
    }
    size_t chunk = CHUNK_ELEMS > max_row ? CHUNK_ELEMS : max_row;
    fbuf = ram_malloc(chunk * sizeof(float));
    obuf = ram_malloc(chunk * sizeof(float));
    if (!fbuf || !obuf) goto nomem;

    /* Header with a placeholder checksum of the final width. */
    memset(digest, '0', 32);
    digest[32] = 0;
    build_header(&hdr, t, order, begin, nbytes, n, meta_keys, meta_vals, n_meta, checksum_key, digest);
    if (hdr.oom) goto nomem;
    if (hdr.n - 8 > RAM_ST_MAX_HEADER) {
        rc = ram_fail(err, RAM_ERR_TOO_BIG, "safetensors: header too big");
        goto cleanup;
    }

    size_t pl = strlen(path);
    tmp = ram_malloc(pl + 16);
    if (!tmp) goto nomem;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp-XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ram_fail(err, RAM_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        ram_free(tmp);
        tmp = NULL;
        goto cleanup;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a model file is not secret */
    if (!write_all(fd, hdr.p, hdr.n)) goto ioerr;

    XXH3_128bits_reset(xs);
    for (k = 0; k < n; k++) {
        const struct ram_st_out *o = &t[order[k]];
        size_t es = ram_dtype_size(o->dtype), numel = nbytes[order[k]] / (es ? es : 1);
        const uint8_t *raw = o->bytes;
        if (!raw && o->f32 && o->dtype == RAM_DTYPE_F32) raw = (const uint8_t *)o->f32;
        if (!raw && o->fill_raw) {
            rc = write_raw_fill(fd, xs, o, nbytes[order[k]], err);
            if (rc) goto cleanup;
            continue;
        }
        if (raw) {
            size_t left = nbytes[order[k]];
            while (left) {
                size_t m = left < chunk * 4 ? left : chunk * 4;
                XXH3_128bits_update(xs, raw, m);
                if (!write_all(fd, raw, m)) goto ioerr;
                raw += m;
                left -= m;
            }
            continue;
        }
        if (!o->f32 && !o->fill) {
            rc = ram_fail(err, RAM_ERR_ARG, "safetensors: no data for %s", o->name);
            goto cleanup;
        }
        if (o->dtype != RAM_DTYPE_F32 && o->dtype != RAM_DTYPE_F16 && o->dtype != RAM_DTYPE_BF16) {
            rc = ram_fail(err, RAM_ERR_ARG, "safetensors: cannot convert floats to %s for %s",
                          ram_dtype_name(o->dtype), o->name);
            goto cleanup;
        }
        size_t row = o->ndim ? (size_t)o->shape[o->ndim - 1] : 1;
        if (row == 0) row = 1;
        size_t step = chunk / row * row;
        for (size_t first = 0; first < numel; first += step) {
            size_t m = numel - first < step ? numel - first : step;
            const float *src;
            if (o->f32) {
                src = o->f32 + first;
            } else {
                rc = o->fill(o->ctx, o, first, m, fbuf, err);
                if (rc) goto cleanup;
                src = fbuf;
            }
            convert_out(o->dtype, src, obuf, m);
            XXH3_128bits_update(xs, obuf, m * es);
            if (!write_all(fd, obuf, m * es)) goto ioerr;
        }
    }
    hex128(XXH3_128bits_digest(xs), digest);
    if (checksum_key) {
        size_t old = hdr.n;
        build_header(&hdr, t, order, begin, nbytes, n, meta_keys, meta_vals, n_meta, checksum_key, digest);
        if (hdr.oom) goto nomem;
        if (hdr.n != old) { /* cannot happen: the checksum has a fixed width */
            rc = ram_fail(err, RAM_ERR_ARG, "safetensors: header changed size");
            goto cleanup;
        }
        if (pwrite(fd, hdr.p, hdr.n, 0) != (ssize_t)hdr.n) goto ioerr;
    }
    if (close(fd)) {
        fd = -1;
        goto ioerr;
    }
    fd = -1;
    if (rename(tmp, path)) goto ioerr;
    ram_free(tmp);
    tmp = NULL;
    if (digest_out) memcpy(digest_out, digest, 33);
    goto cleanup;

ioerr:
    rc = ram_fail(err, RAM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    goto cleanup;
nomem:
    rc = ram_fail(err, RAM_ERR_NOMEM, "safetensors: out of memory");
cleanup:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        ram_free(tmp);
    }
    if (xs) XXH3_freeState(xs);
    ram_free(fbuf);
    ram_free(obuf);
    ram_free(hdr.p);
    ram_free(order);
    ram_free(begin);
    ram_free(nbytes);
    return rc;
}
