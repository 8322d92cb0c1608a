/*
** pth_reader.c — turns a PyTorch .pth (zip) checkpoint into a table of
** tensor views: zip_reader.c locates the entries, unpickle.c runs data.pkl
** as inert data, and this file picks the state dict and checks every tensor
** against the storage entry it points into. See pth_reader.h for the rules.
**
** HOW IT WORKS. The archive's entries all sit under one folder whose name
** varies (the file stem, or "archive"); it is taken from the single entry
** named "<folder>/data.pkl". A tensor is REDUCE(_rebuild_tensor_v2, (storage,
** storage_offset, size, stride, ...)) where storage is the persistent id
** ('storage', torch.<X>Storage, key, location, numel) and its bytes are the
** entry "<folder>/data/<key>". Checks, all overflow-safe in uint64_t: the
** entry is stored (not deflated) and holds exactly numel elements; the
** furthest element offset + sum((size_i - 1) * stride_i) lies inside it.
** Copies made for non-contiguous or unaligned tensors are bounded by their
** storage's size and, together, by the file size plus 64 MiB, so that many
** keys on one storage cannot multiply memory.
*/
#include "pth_reader.h"

#include "unpickle.h"
#include "zip_reader.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PTH_MAX_KEY 4096          /* bytes of one state-dict key */
#define PTH_MAX_TENSORS (1 << 20) /* entries of the state dict */

struct ram_pth {
    void *map; /* owned mapping of the file (munmap), NULL for open_memory */
    size_t map_len;
    const uint8_t *base; /* the file's bytes (the mapping, or borrowed from the caller) */
    size_t len;
    int n;                         /* tensors in the state dict */
    struct ram_tensor_view *views; /* owned array of n; each .name is ram_malloc'd (ram_free) */
    void **copies;                 /* owned array of n; contiguous copies (ram_free) or NULL */
    int *order;                    /* owned array of n: view indices sorted by name */
    size_t copied;                 /* bytes held in copies */
};

void ram_pth_close(struct ram_pth *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        if (p->views) ram_free((void *)p->views[i].name);
        if (p->copies) ram_free(p->copies[i]);
    }
    ram_free(p->views);
    ram_free(p->copies);
    ram_free(p->order);
    if (p->map) munmap(p->map, p->map_len);
    ram_free(p);
}

int ram_pth_count(const struct ram_pth *p) { return p ? p->n : 0; }

const struct ram_tensor_view *ram_pth_tensor(const struct ram_pth *p, int i)
{
    if (!p || i < 0 || i >= p->n) return NULL;
    return &p->views[i];
}

const struct ram_tensor_view *ram_pth_find(const struct ram_pth *p, const char *name)
{
    if (!p || !name) return NULL;
    int lo = 0, hi = p->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(p->views[p->order[mid]].name, name);
        if (c == 0) return &p->views[p->order[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const struct ram_tensor_view *source_find(void *ctx, const char *name) { return ram_pth_find(ctx, name); }

struct ram_tensor_source ram_pth_source(struct ram_pth *p)
{
    struct ram_tensor_source s = {source_find, p};
    return s;
}

/* ---------------------------------------------------------------- parsing */

/* The value of the last item of dict d whose key is the string key, or NULL. */
static const struct ram_pk *dict_get(const struct ram_pk *d, const char *key)
{
    for (size_t i = d->u.seq.n / 2; i-- > 0;)
        if (ram_pk_str_eq(d->u.seq.items[2 * i], key)) return d->u.seq.items[2 * i + 1];
    return NULL;
}

static int get_int(const struct ram_pk *v, int64_t *out)
{
    if (!v || v->type != RAM_PK_INT) return 0;
    *out = v->u.i;
    return 1;
}

/* Copies the n-dim strided tensor at src (element offset off) into dst. Bounds
** were checked by the caller. */
static void strided_copy(uint8_t *dst, const uint8_t *src, size_t es, int ndim, const int64_t *size,
                         const int64_t *stride, uint64_t off, uint64_t numel)
{
    int64_t idx[RAM_MAX_DIMS] = {0};
    for (uint64_t k = 0; k < numel; k++) {
        memcpy(dst + k * es, src + off * es, es);
        for (int d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < size[d]) {
                off += (uint64_t)stride[d];
                break;
            }
            off -= (uint64_t)stride[d] * (uint64_t)(size[d] - 1);
            idx[d] = 0;
        }
    }
}

/* Fills view i of p from the tensor value t stored under key. */
static ram_status build_tensor(struct ram_pth *p, const struct ram_zip *z, const char *folder, int i, const char *key,
                               const struct ram_pk *t, struct ram_error *err)
{
    struct ram_tensor_view *v = &p->views[i];
    const struct ram_pk *args = t->u.args, *st, *pid, *g, *sz, *sd;
    char *ename = 0; /* owned: "<folder>/data/<storage key>" */
    ram_status rc = RAM_OK;
    int64_t offset, numel_pid;

    if (!args || args->type != RAM_PK_TUPLE || args->u.seq.n < 4) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': bad _rebuild_tensor_v2 arguments", key);
        goto cleanup;
    }
    st = args->u.seq.items[0];
    pid = st->type == RAM_PK_STORAGE ? st->u.pid : NULL;
    if (!pid || pid->type != RAM_PK_TUPLE || pid->u.seq.n != 5 || !ram_pk_str_eq(pid->u.seq.items[0], "storage") ||
        pid->u.seq.items[2]->type != RAM_PK_STR || !get_int(pid->u.seq.items[4], &numel_pid) || numel_pid < 0) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': bad storage persistent id", key);
        goto cleanup;
    }
    g = pid->u.seq.items[1];
    if (g->type != RAM_PK_GLOBAL || g->u.g.kind != RAM_PKG_STORAGE || g->u.g.storage_dtype < 0) {
        const struct ram_pk *o = ram_pk_origin(g);
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': unsupported storage type %.*s.%.*s", key,
                      o ? (int)(o->u.g.nmod > 80 ? 80 : o->u.g.nmod) : 1, o ? o->u.g.mod : "?",
                      o ? (int)(o->u.g.nname > 80 ? 80 : o->u.g.nname) : 1, o ? o->u.g.name : "?");
        goto cleanup;
    }
    v->dtype = (enum ram_dtype)g->u.g.storage_dtype;
    size_t es = ram_dtype_size(v->dtype);

    const struct ram_pk *skey = pid->u.seq.items[2];
    if (skey->u.s.n > PTH_MAX_KEY || memchr(skey->u.s.p, 0, skey->u.s.n)) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': bad storage key", key);
        goto cleanup;
    }
    size_t flen = strlen(folder);
    ename = ram_malloc(flen + 6 + skey->u.s.n + 1);
    if (!ename) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory");
        goto cleanup;
    }
    memcpy(ename, folder, flen);
    memcpy(ename + flen, "/data/", 6);
    memcpy(ename + flen + 6, skey->u.s.p, skey->u.s.n);
    ename[flen + 6 + skey->u.s.n] = 0;
    const struct ram_zip_entry *ent = ram_zip_find(z, ename);
    if (!ent) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': storage entry '%.80s' missing", key, ename);
        goto cleanup;
    }
    if (ent->method != 0) {
        rc = ram_fail(err, RAM_ERR_FORMAT,
                      "pth: entry '%.80s' is compressed (method %d); only stored entries are supported", ename,
                      ent->method);
        goto cleanup;
    }
    uint64_t snumel = (uint64_t)numel_pid;
    if (snumel > UINT64_MAX / es || snumel * es != ent->size) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': storage of %llu elements but entry of %llu bytes", key,
                      (unsigned long long)snumel, (unsigned long long)ent->size);
        goto cleanup;
    }

    sz = args->u.seq.items[2];
    sd = args->u.seq.items[3];
    if (!get_int(args->u.seq.items[1], &offset) || offset < 0 || sz->type != RAM_PK_TUPLE || sd->type != RAM_PK_TUPLE ||
        sz->u.seq.n != sd->u.seq.n) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': bad offset, size or stride", key);
        goto cleanup;
    }
    if (sz->u.seq.n > RAM_MAX_DIMS) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': %zu dimensions (max %d)", key, sz->u.seq.n,
                      RAM_MAX_DIMS);
        goto cleanup;
    }
    int ndim = (int)sz->u.seq.n;
    int64_t stride[RAM_MAX_DIMS];
    uint64_t numel = 1, last = (uint64_t)offset;
    int overflow = 0;
    for (int d = 0; d < ndim; d++) {
        if (!get_int(sz->u.seq.items[d], &v->shape[d]) || !get_int(sd->u.seq.items[d], &stride[d]) || v->shape[d] < 0 ||
            stride[d] < 0) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': bad size or stride", key);
            goto cleanup;
        }
        uint64_t s = (uint64_t)v->shape[d];
        if (s && numel > UINT64_MAX / s)
            overflow = 1;
        else
            numel *= s;
    }
    v->ndim = ndim;
    if (!overflow && numel > 0) {
        for (int d = 0; d < ndim; d++) {
            uint64_t span = (uint64_t)(v->shape[d] - 1), sdv = (uint64_t)stride[d];
            if (sdv && span > (UINT64_MAX - last) / sdv)
                overflow = 1;
            else
                last += span * sdv;
        }
    }
    if (overflow || (numel > 0 ? last >= snumel : (uint64_t)offset > snumel) || numel > SIZE_MAX / es) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': extends outside its storage '%.80s'", key, ename);
        goto cleanup;
    }
    v->nbytes = (size_t)(numel * es);

    int contiguous = 1;
    uint64_t expect = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && (uint64_t)stride[d] != expect) contiguous = 0;
        expect *= (uint64_t)v->shape[d];
    }
    const uint8_t *src = p->base + ent->offset;
    if (numel == 0) {
        v->data = src;
    } else if (contiguous && ((uintptr_t)(src + (uint64_t)offset * es) % es) == 0) {
        v->data = src + (uint64_t)offset * es;
    } else {
        if (v->nbytes > ent->size) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': expanded view larger than its storage", key);
            goto cleanup;
        }
        if (v->nbytes > p->len + ((size_t)64 << 20) - p->copied) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "pth: tensor '%.80s': too many non-contiguous copies", key);
            goto cleanup;
        }
        uint8_t *copy = ram_malloc(v->nbytes);
        if (!copy) {
            rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory copying tensor '%.80s'", key);
            goto cleanup;
        }
        strided_copy(copy, src, es, ndim, v->shape, stride, (uint64_t)offset, numel);
        p->copies[i] = copy;
        p->copied += v->nbytes;
        v->data = copy;
    }

cleanup:
    ram_free(ename);
    return rc;
}

/* Names the offending value of a state dict that is not a tensor. */
static ram_status not_tensor(const char *key, const struct ram_pk *val, struct ram_error *err)
{
    const struct ram_pk *o = ram_pk_origin(val);
    if (o)
        return ram_fail(err, RAM_ERR_FORMAT, "pth: state-dict entry '%.80s' is not a tensor but an object of %.*s.%.*s",
                        key, (int)(o->u.g.nmod > 60 ? 60 : o->u.g.nmod), o->u.g.mod,
                        (int)(o->u.g.nname > 60 ? 60 : o->u.g.nname), o->u.g.name);
    return ram_fail(err, RAM_ERR_FORMAT, "pth: state-dict entry '%.80s' is not a tensor but a %s", key,
                    ram_pk_type_name(val));
}

/* Sorts p->order by name (a bottom-up merge sort: O(n log n) whatever the
** input, with no global context as qsort would need). 0 on out of memory. */
static int sort_order(struct ram_pth *p)
{
    int n = p->n;
    int *tmp = ram_malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!tmp) return 0;
    for (int i = 0; i < n; i++) p->order[i] = i;
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] =
                    strcmp(p->views[p->order[a]].name, p->views[p->order[b]].name) <= 0 ? p->order[a++] : p->order[b++];
            while (a < mid) tmp[k++] = p->order[a++];
            while (b < hi) tmp[k++] = p->order[b++];
        }
        memcpy(p->order, tmp, sizeof(int) * (size_t)n);
    }
    ram_free(tmp);
    return 1;
}

static ram_status parse(struct ram_pth *p, struct ram_error *err)
{
    struct ram_zip z;
    struct ram_pickle *pk = 0; /* owned */
    char *folder = 0;          /* owned */
    ram_status rc;
    memset(&z, 0, sizeof z);

    if (p->len >= 2 && p->base[0] == 0x80 && p->base[1] <= 5)
        return ram_fail(
            err, RAM_ERR_FORMAT,
            "pth: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a newer torch");
    if ((rc = ram_zip_open(p->base, p->len, &z, err))) goto cleanup;

    const struct ram_zip_entry *pkl = 0;
    for (size_t k = 0; k < z.n; k++) {
        const struct ram_zip_entry *e = &z.entries[k];
        const char *slash = strchr(e->name, '/');
        if (e->name_len > 9 && slash && slash > e->name && !strcmp(slash, "/data.pkl")) {
            if (pkl) {
                rc = ram_fail(err, RAM_ERR_FORMAT, "pth: several data.pkl entries in the archive");
                goto cleanup;
            }
            pkl = e;
        }
    }
    if (!pkl) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: no <folder>/data.pkl entry (not a torch.save zip file)");
        goto cleanup;
    }
    size_t flen = pkl->name_len - 9;
    folder = ram_malloc(flen + 16);
    if (!folder) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory");
        goto cleanup;
    }
    memcpy(folder, pkl->name, flen);
    memcpy(folder + flen, "/byteorder", 11);
    const struct ram_zip_entry *bo = ram_zip_find(&z, folder);
    folder[flen] = 0;
    if (bo && !(bo->method == 0 && bo->size == 6 && !memcmp(p->base + bo->offset, "little", 6))) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: byte order is not little endian");
        goto cleanup;
    }
    if (pkl->method != 0) {
        rc = ram_fail(err, RAM_ERR_FORMAT,
                      "pth: entry '%.80s' is compressed (method %d); only stored entries are supported", pkl->name,
                      pkl->method);
        goto cleanup;
    }
    if ((rc = ram_unpickle(p->base + pkl->offset, (size_t)pkl->size, &pk, err))) goto cleanup;

    /* Choose the state dict. */
    const struct ram_pk *root = ram_pickle_root(pk), *sd = root;
    if (root->type != RAM_PK_DICT) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: the checkpoint holds a %s, not a dict of tensors",
                      ram_pk_type_name(root));
        goto cleanup;
    }
    const struct ram_pk *m = dict_get(root, "model");
    if (!(m && m->type == RAM_PK_DICT)) m = dict_get(root, "state_dict");
    if (m && m->type == RAM_PK_DICT) sd = m;

    size_t n = sd->u.seq.n / 2;
    if (n == 0) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: the state dict is empty");
        goto cleanup;
    }
    if (n > PTH_MAX_TENSORS) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: too many tensors (%zu)", n);
        goto cleanup;
    }
    p->views = ram_calloc(n, sizeof *p->views);
    p->copies = ram_calloc(n, sizeof *p->copies);
    p->order = ram_calloc(n, sizeof *p->order);
    if (!p->views || !p->copies || !p->order) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory for %zu tensors", n);
        goto cleanup;
    }
    /* Keys are unique, so each is spelled out once in the pickle: their total
    ** length cannot exceed it (memo references could otherwise repeat one
    ** long key a million times before the duplicate check). */
    size_t key_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ram_pk *k = sd->u.seq.items[2 * i], *val = sd->u.seq.items[2 * i + 1];
        if (k->type != RAM_PK_STR || k->u.s.n > PTH_MAX_KEY || memchr(k->u.s.p, 0, k->u.s.n)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "pth: state-dict key %zu is not a valid string", i);
            goto cleanup;
        }
        key_bytes += k->u.s.n;
        if (key_bytes > pkl->size) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "pth: state-dict keys repeat (duplicate key '%.*s')",
                          (int)(k->u.s.n > 80 ? 80 : k->u.s.n), k->u.s.p);
            goto cleanup;
        }
        char *name = ram_malloc(k->u.s.n + 1);
        if (!name) {
            rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory");
            goto cleanup;
        }
        memcpy(name, k->u.s.p, k->u.s.n);
        name[k->u.s.n] = 0;
        p->views[i].name = name;
        p->n = (int)i + 1; /* from here on ram_pth_close frees this name */
        if (val->type != RAM_PK_TENSOR) {
            rc = not_tensor(name, val, err);
            goto cleanup;
        }
        if ((rc = build_tensor(p, &z, folder, (int)i, name, val, err))) goto cleanup;
    }
    if (!sort_order(p)) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory");
        goto cleanup;
    }
    for (int i = 1; i < p->n; i++) {
        if (!strcmp(p->views[p->order[i - 1]].name, p->views[p->order[i]].name)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "pth: duplicate state-dict key '%.80s'", p->views[p->order[i]].name);
            goto cleanup;
        }
    }

cleanup:
    ram_free(folder);
    ram_pickle_free(pk);
    ram_zip_close(&z);
    return rc;
}

ram_status ram_pth_open_memory(const void *buf, size_t len, struct ram_pth **out, struct ram_error *err)
{
    ram_status rc;
    struct ram_pth *p = 0;
    *out = 0;
    if (!buf) return ram_fail(err, RAM_ERR_ARG, "pth: NULL buffer");
    p = ram_calloc(1, sizeof *p);
    if (!p) return ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory");
    p->base = buf;
    p->len = len;
    if ((rc = parse(p, err))) {
        ram_pth_close(p);
        return rc;
    }
    *out = p;
    return RAM_OK;
}

ram_status ram_pth_open(const char *path, struct ram_pth **out, struct ram_error *err)
{
    ram_status rc = RAM_OK;
    struct ram_pth *p = 0; /* owned until handed to *out */
    int fd = -1;
    struct stat sb;
    *out = 0;
    if (!path) return ram_fail(err, RAM_ERR_ARG, "pth: NULL path");

    /* O_NONBLOCK: a FIFO would block open() forever; the fd is only mapped. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = ram_fail(err, RAM_ERR_IO, "pth: cannot open '%.200s'", path);
        goto cleanup;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = ram_fail(err, RAM_ERR_IO, "pth: '%.200s' is not a regular file", path);
        goto cleanup;
    }
    if (sb.st_size <= 0 || (uint64_t)sb.st_size > SIZE_MAX) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "pth: '%.200s' is empty", path);
        goto cleanup;
    }
    p = ram_calloc(1, sizeof *p);
    if (!p) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "pth: out of memory");
        goto cleanup;
    }
    p->map_len = (size_t)sb.st_size;
    void *map = mmap(NULL, p->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = ram_fail(err, RAM_ERR_IO, "pth: cannot map '%.200s'", path);
        goto cleanup;
    }
    p->map = map;
    p->base = map;
    p->len = p->map_len;
    if ((rc = parse(p, err))) goto cleanup;
    *out = p;
    p = 0;

cleanup:
    if (fd >= 0) close(fd);
    ram_pth_close(p);
    return rc;
}
