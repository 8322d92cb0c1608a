/*
** safetensors.c — parses, validates and maps safetensors files (see
** safetensors.h for the rules); writing is safetensors_write.c (converter
** only). Our model file format is built on it.
**
** HOW IT WORKS: the JSON header is parsed with json.c (depth 4),
** each tensor entry becomes a struct ram_tensor_view pointing into the data
** section, and the views are sorted twice: by offsets to check that the
** byte ranges do not overlap (and, strict, tile the section), then by name
** for binary-search lookup and duplicate detection.
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
static ram_status parse_entry(const struct ram_json *j, int v, const char *name, int strict, const uint8_t *data,
                              size_t data_len, struct ram_tensor_view *t, struct span *sp, int *skip,
                              struct ram_error *err)
{
    *skip = 0;
    if (j->nodes[v].type != RAM_JSON_OBJECT)
        return ram_fail(err, RAM_ERR_FORMAT, "safetensors: entry %s is not an object", name);
    int dt = ram_json_find(j, v, "dtype");
    int sh = ram_json_find(j, v, "shape");
    int of = ram_json_find(j, v, "data_offsets");
    if (dt < 0 || sh < 0 || of < 0 || j->nodes[dt].type != RAM_JSON_STRING || j->nodes[sh].type != RAM_JSON_ARRAY ||
        j->nodes[of].type != RAM_JSON_ARRAY)
        return ram_fail(err, RAM_ERR_FORMAT, "safetensors: entry %s needs dtype, shape and data_offsets", name);

    int64_t off[2];
    int k = 0;
    for (int e = ram_json_first(j, of); e >= 0; e = ram_json_next(j, of, e), k++)
        if (k >= 2 || !ram_json_int64(j, e, &off[k]) || off[k] < 0) k = 3;
    if (k != 2 || off[0] > off[1] || (uint64_t)off[1] > data_len)
        return ram_fail(err, RAM_ERR_FORMAT,
                        "safetensors: data_offsets of %s are invalid or outside the data section (%zu bytes)", name,
                        data_len);
    sp->begin = (size_t)off[0];
    sp->end = (size_t)off[1];

    int ndim = j->nodes[sh].count;
    if (ndim > RAM_MAX_DIMS || (strict && ndim > RAM_ST_MAX_DIMS)) {
        if (strict)
            return ram_fail(err, RAM_ERR_FORMAT, "safetensors: %s has %d dimensions (max %d)", name, ndim,
                            RAM_ST_MAX_DIMS);
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
        if (strict) return ram_fail(err, RAM_ERR_FORMAT, "safetensors: unsupported dtype %s for %s", dname, name);
        *skip = 1;
        return RAM_OK;
    }
    size_t nbytes;
    if (!ram_mul_ok(numel, ram_dtype_size(dtype), &nbytes) || nbytes != sp->end - sp->begin)
        return ram_fail(err, RAM_ERR_FORMAT, "safetensors: %s: %zu bytes for %zu elements of %s", name,
                        sp->end - sp->begin, numel, dname);
    t->dtype = dtype;
    t->data = data + sp->begin;
    t->nbytes = nbytes;
    return RAM_OK;
}

ram_status ram_st_parse(const void *buf, size_t len, int flags, struct ram_st_file *out, struct ram_error *err)
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
        return ram_fail(err, RAM_ERR_FORMAT, "safetensors: header length %llu exceeds the file size (%zu bytes)",
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
            rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: gap before tensor %s", out->tensors[spans[i].idx].name);
            goto fail;
        }
        pos = spans[i].end;
    }
    if (strict && pos != out->data_len) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "safetensors: tensors cover %zu of the %zu data bytes", pos, out->data_len);
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

static const struct ram_tensor_view *st_find_cb(void *ctx, const char *name) { return ram_st_find(ctx, name); }

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
        rc = ram_fail(err, RAM_ERR_FORMAT, "%s: file of %lld bytes is too short", path, (long long)stt.st_size);
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

/* ------------------------------------------------------------------ checksums */

void ram_hex128(const unsigned char digest[16], char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[digest[i] >> 4];
        out[2 * i + 1] = hx[digest[i] & 15];
    }
    out[32] = 0;
}

void ram_xxh128_hex(const void *data, size_t n, char out[33])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    ram_hex128(c.digest, out);
}
