/*
** safetensors_write.c — writes safetensors files (see safetensors.h for the
** layout rules); ram-convert and the tests only, never linked into ram.so.
**
** HOW IT WORKS: offsets are assigned in layout order, the header is written
** with a zero checksum placeholder of the final width, the data is streamed
** through one buffer while XXH3-128 runs over it, then the header is
** rewritten in place with the real checksum (same length) and the temp file
** is renamed over the destination.
*/
#include "safetensors.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
static void build_header(struct sbuf *s, const struct ram_st_out *t, const int *order, const size_t *begin,
                         const size_t *nbytes, int n, const char *const *mk, const char *const *mv, int n_meta,
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
        if (!write_all(fd, buf, nbytes))
            rc = ram_fail(err, RAM_ERR_IO, "cannot write %s: %s", o->name, strerror(errno));
    }
    ram_free(buf);
    return rc;
}

ram_status ram_st_write(const char *path, const struct ram_st_out *t, int n, const char *const *meta_keys,
                        const char *const *meta_vals, int n_meta, const char *checksum_key, char *digest_out,
                        struct ram_error *err)
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
            rc = ram_fail(err, RAM_ERR_ARG, "safetensors: cannot convert floats to %s for %s", ram_dtype_name(o->dtype),
                          o->name);
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
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(xs));
    ram_hex128(canon.digest, digest);
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
