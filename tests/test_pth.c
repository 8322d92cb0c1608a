/*
** test_pth.c — tests of the .pth reader (core/pth_reader.c, zip_reader.c,
** unpickle.c): the golden checkpoints open with the right keys, shapes,
** dtypes, values and tied storages; tensors match the golden safetensors
** byte for byte; and hostile inputs built here (code-running pickles,
** truncations, byte flips, out-of-bounds tensors, deep nesting, huge
** lengths, zip64) fail cleanly with RAM_ERR_FORMAT.
**
** HOW IT WORKS. Hostile archives are made by a tiny stored-zip writer
** (zw_*) and a pickle builder (pb_*) defined below, mimicking what
** torch.save writes, so that each case changes exactly one thing.
*/
#include "harness.h"

#include "pth_reader.h"
#include "unpickle.h"
#include "zip_reader.h"

#include <unistd.h>

/* ------------------------------------------------------------ golden files */

static const struct ram_tensor_view *must_find(const struct ram_pth *p, const char *name)
{
    const struct ram_tensor_view *t = ram_pth_find(p, name);
    check(t != NULL, name, "tensor missing");
    return t;
}

static int shape_is(const struct ram_tensor_view *t, int ndim, int64_t a, int64_t b)
{
    if (!t || t->ndim != ndim) return 0;
    if (ndim > 0 && t->shape[0] != a) return 0;
    if (ndim > 1 && t->shape[1] != b) return 0;
    return 1;
}

static void test_ram_plus(void)
{
    struct ram_error err = {{0}};
    struct ram_pth *p = 0;
    ram_status rc = ram_pth_open(data_path("golden/ram_plus_tiny.pth"), &p, &err);
    check(rc == RAM_OK, "ram_plus_tiny opens", "%s", err.msg);
    if (rc) return;
    check(ram_pth_count(p) == 170, "ram_plus_tiny key count", "got %d, want 170", ram_pth_count(p));
    check(ram_pth_tensor(p, 0) && !strcmp(ram_pth_tensor(p, 0)->name, "label_embed") &&
              !strcmp(ram_pth_tensor(p, 1)->name, "reweight_scale") &&
              !strcmp(ram_pth_tensor(p, 169)->name, "image_proj.bias"),
          "ram_plus_tiny state-dict order", "first/last keys differ");
    check(ram_pth_tensor(p, 170) == NULL && ram_pth_tensor(p, -1) == NULL, "tensor index out of range", "non-NULL");

    const struct ram_tensor_view *t = must_find(p, "label_embed");
    check(shape_is(t, 2, 60, 512) && t->dtype == RAM_DTYPE_F32 && t->nbytes == 60 * 512 * 4, "label_embed (60,512) F32",
          "wrong shape/dtype");
    t = must_find(p, "reweight_scale");
    if (t) {
        float v = 0;
        if (t->nbytes == 4) memcpy(&v, t->data, 4);
        check(t->ndim == 0 && t->dtype == RAM_DTYPE_F32 && v == (float)3.193035125732422, "reweight_scale 0-dim value",
              "ndim %d value %.9g", t->ndim, v);
    }
    t = must_find(p, "visual_encoder.layers.0.blocks.0.attn.relative_position_index");
    if (t) {
        int ok = t->dtype == RAM_DTYPE_I64 && shape_is(t, 2, 16, 16) && t->nbytes == 16 * 16 * 8;
        const int64_t *ix = t->data;
        int64_t mx = -1, mn = 1 << 30;
        for (int i = 0; ok && i < 256; i++) {
            mx = ix[i] > mx ? ix[i] : mx;
            mn = ix[i] < mn ? ix[i] : mn;
        }
        /* window 4: indices cover 0 .. (2*4-1)^2 - 1, centre (0,0) offset on the diagonal */
        check(ok && mn == 0 && mx == 48 && ix[0] == 24, "relative_position_index int64 (16,16) values",
              "dtype %d min %lld max %lld", t->dtype, (long long)mn, (long long)mx);
    }
    t = must_find(p, "visual_encoder.patch_embed.proj.weight");
    check(t && t->ndim == 4 && t->shape[0] == 16 && t->shape[1] == 3 && t->shape[2] == 4 && t->shape[3] == 4,
          "patch_embed.proj.weight (16,3,4,4)", "wrong shape");
    check(ram_pth_find(p, "no.such.key") == NULL && ram_pth_find(p, "") == NULL, "find of an absent key is NULL",
          "non-NULL");

    struct ram_tensor_source src = ram_pth_source(p);
    check(src.find(src.ctx, "label_embed") == ram_pth_find(p, "label_embed"), "ram_pth_source find adapter",
          "different view");

    /* Every view lies in the file, and none was copied (all contiguous, aligned). */
    size_t len = 0;
    char *buf = read_file(data_path("golden/ram_plus_tiny.pth"), &len);
    struct ram_pth *q = 0;
    rc = buf ? ram_pth_open_memory(buf, len, &q, &err) : RAM_ERR_IO;
    check(rc == RAM_OK && ram_pth_count(q) == 170, "open_memory of the same bytes", "%s", err.msg);
    if (rc == RAM_OK) {
        int inside = 1, same = 1;
        for (int i = 0; i < ram_pth_count(q); i++) {
            const struct ram_tensor_view *a = ram_pth_tensor(q, i), *b = ram_pth_tensor(p, i);
            const char *d = a->data;
            if (d < buf || d + a->nbytes > buf + len) inside = 0;
            if (strcmp(a->name, b->name) || a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes)) same = 0;
        }
        check(inside, "contiguous tensors are views into the buffer (no copy)", "a view points elsewhere");
        check(same, "mmap and memory opens agree", "differ");
        ram_pth_close(q);
    }
    free(buf);
    ram_pth_close(p);
}

static void test_ram(void)
{
    struct ram_error err = {{0}};
    struct ram_pth *p = 0;
    ram_status rc = ram_pth_open(data_path("golden/ram_tiny.pth"), &p, &err);
    check(rc == RAM_OK, "ram_tiny opens", "%s", err.msg);
    if (rc) return;
    check(ram_pth_count(p) == 342, "ram_tiny key count", "got %d, want 342", ram_pth_count(p));
    const struct ram_tensor_view *t = must_find(p, "label_embed");
    check(shape_is(t, 2, 12, 512), "ram label_embed (12,512)", "wrong shape");
    check(ram_pth_find(p, "reweight_scale") == NULL, "ram has no reweight_scale", "present");
    const struct ram_tensor_view *a = must_find(p, "text_decoder.cls.predictions.decoder.weight");
    const struct ram_tensor_view *b = must_find(p, "text_decoder.bert.embeddings.word_embeddings.weight");
    check(a && b && a->data == b->data && a->nbytes == b->nbytes && shape_is(a, 2, 1000, 32),
          "tied decoder/word embeddings share one data pointer", "not shared");
    a = must_find(p, "tag_encoder.encoder.layer.1.output.dense.weight");
    b = must_find(p, "tagging_head.encoder.layer.1.output.dense.weight");
    check(a && b && a->data == b->data, "tied tag_encoder/tagging_head share one data pointer", "not shared");
    t = must_find(p, "tag_encoder.embeddings.position_ids");
    if (t) {
        int ok = t->dtype == RAM_DTYPE_I64 && shape_is(t, 2, 1, 64);
        for (int i = 0; ok && i < 64; i++) ok = ((const int64_t *)t->data)[i] == i;
        check(ok, "position_ids int64 (1,64) = 0..63", "wrong");
    }
    ram_pth_close(p);
}

/* Finds "name": in a safetensors JSON header and reads its fields. */
static int st_lookup(const char *hdr, const char *name, char *dtype, int64_t *shape, int *ndim, uint64_t *off)
{
    char pat[600];
    snprintf(pat, sizeof pat, "\"%s\":{", name);
    const char *s = strstr(hdr, pat);
    if (!s) return 0;
    const char *d = strstr(s, "\"dtype\":\""), *sh = strstr(s, "\"shape\":["), *o = strstr(s, "\"data_offsets\":[");
    if (!d || !sh || !o) return 0;
    sscanf(d + 9, "%7[^\"]", dtype);
    sh += 9;
    *ndim = 0;
    while (*sh != ']' && *ndim < 8) {
        shape[(*ndim)++] = strtoll(sh, (char **)&sh, 10);
        if (*sh == ',') sh++;
    }
    unsigned long long a, b;
    if (sscanf(o + 16, "%llu,%llu", &a, &b) != 2) return 0;
    off[0] = a;
    off[1] = b;
    return 1;
}

static void test_clip_roundtrip(void)
{
    struct ram_error err = {{0}};
    struct ram_pth *p = 0;
    ram_status rc = ram_pth_open(data_path("golden/clip_tiny.pth"), &p, &err);
    check(rc == RAM_OK, "clip_tiny (bare state dict) opens", "%s", err.msg);
    if (rc) return;
    check(ram_pth_count(p) == 50, "clip_tiny key count", "got %d, want 50", ram_pth_count(p));
    size_t len = 0;
    unsigned char *st = read_file(data_path("golden/clip_tiny_text.safetensors"), &len);
    uint64_t hl = 0;
    if (st && len >= 8) memcpy(&hl, st, 8);
    if (!st || hl > len - 8) {
        check(0, "safetensors readable", "cannot read");
        free(st);
        ram_pth_close(p);
        return;
    }
    char *hdr = malloc(hl + 1);
    memcpy(hdr, st + 8, hl);
    hdr[hl] = 0;
    int both = 0, bad = 0;
    for (int i = 0; i < ram_pth_count(p); i++) {
        const struct ram_tensor_view *t = ram_pth_tensor(p, i);
        char dt[8] = "";
        int64_t shape[8];
        int nd;
        uint64_t off[2];
        if (!st_lookup(hdr, t->name, dt, shape, &nd, off)) continue;
        both++;
        int ok = !strcmp(dt, ram_dtype_name(t->dtype)) && nd == t->ndim && off[1] >= off[0] &&
                 off[1] - off[0] == t->nbytes && 8 + hl + off[1] <= len;
        for (int d = 0; ok && d < nd; d++) ok = shape[d] == t->shape[d];
        if (ok) ok = !memcmp(st + 8 + hl + off[0], t->data, t->nbytes);
        if (!ok) {
            bad++;
            printf("  mismatch: %s\n", t->name);
        }
    }
    check(both == 29 && bad == 0, "clip_tiny tensors equal the safetensors bit for bit", "%d shared, %d differ", both,
          bad);
    free(hdr);
    free(st);
    ram_pth_close(p);
}

/* ------------------------------------------------------------ builders */

struct bb {
    unsigned char *p;
    size_t n, cap;
};

static void bb_put(struct bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void bb_u8(struct bb *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    bb_put(b, &c, 1);
}
static void bb_le(struct bb *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) bb_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}

/* Pickle builder: protocol 2 forms as torch.save writes them, plus the
** protocol 4 forms when pb_v4 is set. */
static int pb_v4;
static void pb_str(struct bb *b, const char *s)
{
    size_t n = strlen(s);
    if (pb_v4 && n < 256) {
        bb_u8(b, 0x8c);
        bb_u8(b, (unsigned)n);
    } else {
        bb_u8(b, 'X');
        bb_le(b, n, 4);
    }
    bb_put(b, s, n);
    if (pb_v4) bb_u8(b, 0x94); /* MEMOIZE */
}
static void pb_int(struct bb *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        bb_u8(b, 'K');
        bb_u8(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        bb_u8(b, 'J');
        bb_le(b, (uint64_t)v, 4);
    } else {
        bb_u8(b, 0x8a);
        bb_u8(b, 8);
        bb_le(b, (uint64_t)v, 8);
    }
}
static void pb_global(struct bb *b, const char *mod, const char *name)
{
    if (pb_v4) {
        pb_str(b, mod);
        pb_str(b, name);
        bb_u8(b, 0x93);
        bb_u8(b, 0x94);
    } else {
        bb_u8(b, 'c');
        bb_put(b, mod, strlen(mod));
        bb_u8(b, '\n');
        bb_put(b, name, strlen(name));
        bb_u8(b, '\n');
    }
}
/* _rebuild_tensor_v2(('storage', torch.<stype>, skey, 'cpu', snumel), off, size, stride, False, OrderedDict()) */
static void pb_tensor_st(struct bb *b, const char *stype, const char *skey, int64_t snumel, int64_t off, int ndim,
                         const int64_t *size, const int64_t *stride)
{
    pb_global(b, "torch._utils", "_rebuild_tensor_v2");
    bb_u8(b, '(');
    bb_u8(b, '(');
    pb_str(b, "storage");
    pb_global(b, "torch", stype);
    pb_str(b, skey);
    pb_str(b, "cpu");
    pb_int(b, snumel);
    bb_u8(b, 't');
    bb_u8(b, 'Q');
    pb_int(b, off);
    bb_u8(b, '(');
    for (int i = 0; i < ndim; i++) pb_int(b, size[i]);
    bb_u8(b, 't');
    bb_u8(b, '(');
    for (int i = 0; i < ndim; i++) pb_int(b, stride[i]);
    bb_u8(b, 't');
    bb_u8(b, 0x89);
    pb_global(b, "collections", "OrderedDict");
    bb_u8(b, ')');
    bb_u8(b, 'R');
    bb_u8(b, 't');
    bb_u8(b, 'R');
}
static void pb_tensor(struct bb *b, const char *skey, int64_t snumel, int64_t off, int ndim, const int64_t *size,
                      const int64_t *stride)
{
    pb_tensor_st(b, "FloatStorage", skey, snumel, off, ndim, size, stride);
}
/* An object some global builds: REDUCE(mod.name, (arg,)) */
static void pb_call(struct bb *b, const char *mod, const char *name, const char *arg)
{
    pb_global(b, mod, name);
    pb_str(b, arg);
    bb_u8(b, 0x85);
    bb_u8(b, 'R');
}
/* OrderedDict() then MARK: the caller adds key/value pairs, then pb_sd_end. */
static void pb_sd_begin(struct bb *b)
{
    pb_global(b, "collections", "OrderedDict");
    bb_u8(b, ')');
    bb_u8(b, 'R');
    bb_u8(b, '(');
}
/* SETITEMS, then BUILD with {'_metadata': {'': {'version': 1}}} as torch does. */
static void pb_sd_end(struct bb *b)
{
    bb_u8(b, 'u');
    bb_u8(b, '}');
    pb_str(b, "_metadata");
    pb_global(b, "collections", "OrderedDict");
    bb_u8(b, ')');
    bb_u8(b, 'R');
    pb_str(b, "");
    bb_u8(b, '}');
    pb_str(b, "version");
    pb_int(b, 1);
    bb_u8(b, 's');
    bb_u8(b, 's');
    bb_u8(b, 's');
    bb_u8(b, 'b');
}

/* Stored-zip writer. Entries are written in order; data of each entry is
** aligned to 64 bytes when align is set (as torch does), else preceded by an
** odd-sized extra field so that it is misaligned. zip64 forces zip64 records. */
struct zent {
    const char *name;
    const void *data;
    size_t n;
    int method;
};
static void zw_write(struct bb *out, const struct zent *e, int ne, int align, int zip64)
{
    uint64_t *lho = calloc((size_t)ne, sizeof *lho);
    for (int i = 0; i < ne; i++) {
        size_t nl = strlen(e[i].name);
        lho[i] = out->n;
        size_t x = 0;
        size_t base = out->n + 30 + nl + 4;
        if (align)
            x = (64 - base % 64) % 64;
        else
            x = 1 + ((base + 1) % 2 == 0); /* data lands on an odd address */
        bb_le(out, 0x04034b50, 4);
        bb_le(out, zip64 ? 45 : 20, 2);
        bb_le(out, 0, 2);
        bb_le(out, (uint64_t)e[i].method, 2);
        bb_le(out, 0, 4);
        bb_le(out, 0, 4); /* crc: not checked by the reader */
        bb_le(out, e[i].n, 4);
        bb_le(out, e[i].n, 4);
        bb_le(out, nl, 2);
        bb_le(out, 4 + x, 2);
        bb_put(out, e[i].name, nl);
        bb_le(out, 0x4246, 2);
        bb_le(out, x, 2);
        for (size_t k = 0; k < x; k++) bb_u8(out, 'Z');
        bb_put(out, e[i].data, e[i].n);
    }
    uint64_t cd = out->n;
    for (int i = 0; i < ne; i++) {
        size_t nl = strlen(e[i].name);
        bb_le(out, 0x02014b50, 4);
        bb_le(out, zip64 ? 45 : 20, 2);
        bb_le(out, zip64 ? 45 : 20, 2);
        bb_le(out, 0, 2);
        bb_le(out, (uint64_t)e[i].method, 2);
        bb_le(out, 0, 4);
        bb_le(out, 0, 4);
        bb_le(out, zip64 ? 0xffffffffu : e[i].n, 4);
        bb_le(out, zip64 ? 0xffffffffu : e[i].n, 4);
        bb_le(out, nl, 2);
        bb_le(out, zip64 ? 28 : 0, 2);
        bb_le(out, 0, 2);
        bb_le(out, 0, 2);
        bb_le(out, 0, 2);
        bb_le(out, 0, 4);
        bb_le(out, zip64 ? 0xffffffffu : lho[i], 4);
        bb_put(out, e[i].name, nl);
        if (zip64) {
            bb_le(out, 1, 2);
            bb_le(out, 24, 2);
            bb_le(out, e[i].n, 8);
            bb_le(out, e[i].n, 8);
            bb_le(out, lho[i], 8);
        }
    }
    uint64_t cds = out->n - cd;
    if (zip64) {
        uint64_t e64 = out->n;
        bb_le(out, 0x06064b50, 4);
        bb_le(out, 44, 8);
        bb_le(out, 45, 2);
        bb_le(out, 45, 2);
        bb_le(out, 0, 4);
        bb_le(out, 0, 4);
        bb_le(out, (uint64_t)ne, 8);
        bb_le(out, (uint64_t)ne, 8);
        bb_le(out, cds, 8);
        bb_le(out, cd, 8);
        bb_le(out, 0x07064b50, 4);
        bb_le(out, 0, 4);
        bb_le(out, e64, 8);
        bb_le(out, 1, 4);
    }
    bb_le(out, 0x06054b50, 4);
    bb_le(out, 0, 2);
    bb_le(out, 0, 2);
    bb_le(out, zip64 ? 0xffff : (uint64_t)ne, 2);
    bb_le(out, zip64 ? 0xffff : (uint64_t)ne, 2);
    bb_le(out, zip64 ? 0xffffffffu : cds, 4);
    bb_le(out, zip64 ? 0xffffffffu : cd, 4);
    bb_le(out, 0, 2);
    free(lho);
}

/* Storage "0": 6 floats 0..5; storage "1": 3 floats 10, 11, 12. */
static float g_st0[6] = {0, 1, 2, 3, 4, 5};
static float g_st1[3] = {10, 11, 12};

struct pth_opts {
    int align, zip64, method, no_byteorder;
    const char *byteorder;
};

/* Wraps pickle pk into an archive "arch/..." with storages 0 and 1. */
static void make_pth(struct bb *out, const struct bb *pk, const struct pth_opts *o)
{
    struct pth_opts def = {1, 0, 0, 0, 0};
    if (!o) o = &def;
    const char *bo = o->byteorder ? o->byteorder : "little";
    struct zent e[] = {
        {"arch/data.pkl", pk->p, pk->n, o->method},
        {"arch/byteorder", bo, strlen(bo), 0},
        {"arch/data/0", g_st0, sizeof g_st0, 0},
        {"arch/data/1", g_st1, sizeof g_st1, 0},
        {"arch/version", "3\n", 2, 0},
    };
    if (o->no_byteorder) e[1].name = "arch/.data/serialization_id";
    out->n = 0;
    zw_write(out, e, 5, o->align, o->zip64);
}

/* Opens the archive made of pickle pk; returns the status, *out if OK. */
static ram_status open_pk(const struct bb *pk, const struct pth_opts *o, struct ram_pth **out, struct ram_error *err)
{
    struct bb z = {0};
    make_pth(&z, pk, o);
    /* The reader borrows the buffer: keep a copy alive with the handle. */
    static unsigned char *keep[64];
    static int nkeep;
    free(keep[nkeep & 63]);
    keep[nkeep++ & 63] = z.p;
    struct ram_pth *p = 0;
    err->msg[0] = 0;
    ram_status rc = ram_pth_open_memory(z.p, z.n, &p, err);
    if (out)
        *out = p;
    else
        ram_pth_close(p);
    return rc;
}

static const int64_t SZ23[2] = {2, 3}, ST23[2] = {3, 1};

/* {'model': OrderedDict(w=tensor(2,3) of storage 0, b=tensor(3) of storage 1)} plus extra text */
static void pk_checkpoint(struct bb *b, void (*extra)(struct bb *), void (*sd_extra)(struct bb *))
{
    int64_t s3 = 3, t1 = 1;
    b->n = 0;
    bb_u8(b, 0x80);
    bb_u8(b, pb_v4 ? 4 : 2);
    if (pb_v4) {
        bb_u8(b, 0x95);
        bb_le(b, 0, 8); /* a FRAME header (length is advisory here) */
    }
    bb_u8(b, '}');
    bb_u8(b, '(');
    if (extra) extra(b);
    pb_str(b, "model");
    pb_sd_begin(b);
    pb_str(b, "w");
    pb_tensor(b, "0", 6, 0, 2, SZ23, ST23);
    pb_str(b, "b");
    pb_tensor(b, "1", 3, 0, 1, &s3, &t1);
    if (sd_extra) sd_extra(b);
    pb_sd_end(b);
    bb_u8(b, 'u');
    bb_u8(b, '.');
}

static void extra_pwn_config(struct bb *b)
{
    pb_str(b, "config");
    pb_call(b, "os", "system", "touch /tmp/ram_pwned");
}
static void extra_training(struct bb *b)
{
    int64_t s3 = 3, t1 = 1;
    /* 'optimizer': {'state': {0: {'step': 10.0, 'exp_avg': tensor}}, 'param_groups': [{'lr': 0.001, 'params': [0, 1]}]} */
    pb_str(b, "optimizer");
    bb_u8(b, '}');
    pb_str(b, "state");
    bb_u8(b, '}');
    pb_int(b, 0);
    bb_u8(b, '}');
    pb_str(b, "step");
    bb_u8(b, 'G');
    bb_put(b, "\x40\x24\0\0\0\0\0\0", 8);
    bb_u8(b, 's');
    pb_str(b, "exp_avg");
    pb_tensor(b, "1", 3, 0, 1, &s3, &t1);
    bb_u8(b, 's');
    pb_str(b, "bad_view"); /* outside its storage: skipped, since not in the state dict */
    pb_tensor(b, "1", 3, 5, 1, &s3, &t1);
    bb_u8(b, 's');
    bb_u8(b, 's'); /* state[0] = {...} */
    bb_u8(b, 's'); /* optimizer['state'] = state */
    pb_str(b, "param_groups");
    bb_u8(b, ']');
    bb_u8(b, '}');
    pb_str(b, "lr");
    bb_u8(b, 'G');
    bb_put(b, "\x3f\x50\x62\x4d\xd2\xf1\xa9\xfc", 8);
    bb_u8(b, 's');
    pb_str(b, "params");
    bb_u8(b, ']');
    bb_u8(b, '(');
    pb_int(b, 0);
    pb_int(b, 1);
    bb_u8(b, 'e');
    bb_u8(b, 's');
    bb_u8(b, 'a');
    bb_u8(b, 's'); /* optimizer['param_groups'] = [...] */
    /* 'config': Namespace(...) via NEWOBJ + BUILD, with a set, bytes, None, a big int, eval(...) inside */
    pb_str(b, "config");
    pb_global(b, "argparse", "Namespace");
    bb_u8(b, ')');
    bb_u8(b, 0x81);
    bb_u8(b, '}');
    pb_str(b, "tags");
    bb_u8(b, 0x8f);
    bb_u8(b, '(');
    pb_str(b, "a");
    pb_str(b, "b");
    bb_u8(b, 0x90);
    bb_u8(b, 's');
    pb_str(b, "blob");
    bb_u8(b, 'C');
    bb_u8(b, 3);
    bb_put(b, "xyz", 3);
    bb_u8(b, 's');
    pb_str(b, "none");
    bb_u8(b, 'N');
    bb_u8(b, 's');
    pb_str(b, "big");
    bb_u8(b, 0x8a);
    bb_u8(b, 12);
    bb_put(b, "\1\2\3\4\5\6\7\x08\x09\x0a\x0b\x0c", 12);
    bb_u8(b, 's');
    pb_str(b, "code");
    pb_call(b, "builtins", "eval", "__import__('os').system('touch /tmp/ram_pwned')");
    bb_u8(b, 's');
    pb_str(b, "long");
    bb_u8(b, 0x8d);
    bb_le(b, 4, 8);
    bb_put(b, "long", 4);
    bb_u8(b, 's');
    bb_u8(b, 'b');
    pb_str(b, "epoch");
    pb_int(b, 5);
}
static void sd_pwn(struct bb *b)
{
    pb_str(b, "evil");
    pb_call(b, "os", "system", "touch /tmp/ram_pwned");
}
static void sd_int(struct bb *b)
{
    pb_str(b, "num_batches_tracked_as_int");
    pb_int(b, 7);
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int vals_are(const struct ram_tensor_view *t, const float *want, int n)
{
    if (!t || t->dtype != RAM_DTYPE_F32 || t->nbytes != (size_t)n * 4) return 0;
    return !memcmp(t->data, want, (size_t)n * 4);
}

static void test_crafted(void)
{
    struct ram_error err;
    struct ram_pth *p = 0;
    struct bb pk = {0};
    ram_status rc;
    const float st1[3] = {10, 11, 12};

    for (pb_v4 = 0; pb_v4 <= 1; pb_v4++) {
        char name[128];
        pk_checkpoint(&pk, extra_training, 0);
        rc = open_pk(&pk, 0, &p, &err);
        snprintf(name, sizeof name, "protocol %d checkpoint with optimizer/config/epoch loads", pb_v4 ? 4 : 2);
        check(rc == RAM_OK && ram_pth_count(p) == 2, name, "rc %d: %s", rc, err.msg);
        if (rc == RAM_OK) {
            snprintf(name, sizeof name, "protocol %d tensor values", pb_v4 ? 4 : 2);
            check(vals_are(ram_pth_find(p, "w"), g_st0, 6) && vals_are(ram_pth_find(p, "b"), st1, 3), name, "differ");
        }
        ram_pth_close(p);
    }
    pb_v4 = 0;

    /* Code execution attempts. */
    unlink("/tmp/ram_pwned");
    pk_checkpoint(&pk, 0, sd_pwn);
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "'evil'") && strstr(err.msg, "os.system"),
          "os.system object in the state dict is an error naming key and global", "rc %d: %s", rc, err.msg);
    pk_checkpoint(&pk, extra_pwn_config, 0);
    rc = open_pk(&pk, 0, &p, &err);
    check(rc == RAM_OK && ram_pth_count(p) == 2, "os.system object under 'config' is skipped", "rc %d: %s", rc,
          err.msg);
    ram_pth_close(p);
    check(!file_exists("/tmp/ram_pwned"), "no pickle side effect (/tmp/ram_pwned absent)", "file was created!");
    pk_checkpoint(&pk, 0, sd_int);
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "num_batches_tracked_as_int") && strstr(err.msg, "int"),
          "non-tensor state-dict value is an error", "rc %d: %s", rc, err.msg);

    /* Container variants. */
    struct pth_opts o = {1, 1, 0, 0, 0};
    pk_checkpoint(&pk, 0, 0);
    rc = open_pk(&pk, &o, &p, &err);
    check(rc == RAM_OK && vals_are(ram_pth_find(p, "w"), g_st0, 6), "zip64 archive loads", "rc %d: %s", rc, err.msg);
    ram_pth_close(p);
    o = (struct pth_opts){0, 0, 0, 1, 0};
    rc = open_pk(&pk, &o, &p, &err);
    const struct ram_tensor_view *t = p ? ram_pth_find(p, "w") : 0;
    check(rc == RAM_OK && vals_are(t, g_st0, 6) && ((uintptr_t)t->data % 4) == 0,
          "misaligned entry data is copied to an aligned buffer", "rc %d: %s", rc, err.msg);
    ram_pth_close(p);
    o = (struct pth_opts){1, 0, 8, 0, 0};
    rc = open_pk(&pk, &o, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "compressed"), "deflated entry is a clear error", "rc %d: %s", rc,
          err.msg);
    o = (struct pth_opts){1, 0, 0, 0, "big"};
    rc = open_pk(&pk, &o, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "byte order"), "big-endian byteorder is refused", "rc %d: %s", rc,
          err.msg);
    struct ram_pth *q = 0;
    rc = ram_pth_open_memory("\x80\x02}q\x00.", 6, &q, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "legacy"), "legacy (non-zip) format is a clear error", "%s", err.msg);
    rc = ram_pth_open("/nonexistent/x.pth", &q, &err);
    check(rc == RAM_ERR_IO && q == NULL, "missing file is RAM_ERR_IO", "rc %d", rc);
    free(pk.p);
}

/* A pickle made of text: the given opcodes then ".". */
static ram_status run_pickle(const void *bytes, size_t n, struct ram_error *err)
{
    struct ram_pickle *pk = 0;
    ram_status rc = ram_unpickle(bytes, n, &pk, err);
    ram_pickle_free(pk);
    return rc;
}

static void test_tensor_bounds(void)
{
    struct ram_error err;
    struct bb pk = {0};
    ram_status rc;
    struct ram_pth *p = 0;
    static const struct {
        const char *what;
        const char *stype;
        int64_t snumel, off;
        int ndim;
        int64_t size[3], stride[3];
        int ok;
    } cases[] = {
        {"offset pushes the tensor past its storage", "FloatStorage", 6, 1, 2, {2, 3}, {3, 1}, 0},
        {"stride reaches past the storage", "FloatStorage", 6, 0, 2, {2, 3}, {4, 1}, 0},
        {"persistent-id numel differs from the entry size", "FloatStorage", 5, 0, 2, {2, 2}, {2, 1}, 0},
        {"negative size", "FloatStorage", 6, 0, 2, {-2, 3}, {3, 1}, 0},
        {"negative stride", "FloatStorage", 6, 5, 1, {6}, {-1}, 0},
        {"negative offset", "FloatStorage", 6, -1, 1, {2}, {1}, 0},
        {"overflowing sizes", "FloatStorage", 6, 0, 3, {1LL << 40, 1LL << 40, 1LL << 40}, {1, 1, 1}, 0},
        {"overflowing strides", "FloatStorage", 6, 0, 2, {2, 2}, {INT64_MAX, 1}, 0},
        {"expanded view larger than its storage", "FloatStorage", 6, 0, 2, {4, 6}, {0, 1}, 0},
        {"double storage is unsupported", "DoubleStorage", 3, 0, 1, {3}, {1}, 0},
        {"unknown storage global", "EvilStorage", 6, 0, 1, {6}, {1}, 0},
        {"half storage reinterprets the bytes", "HalfStorage", 12, 0, 1, {12}, {1}, 1},
        {"empty tensor at the end of its storage", "FloatStorage", 6, 6, 2, {0, 3}, {3, 1}, 1},
        {"0-dim tensor", "FloatStorage", 6, 5, 0, {0}, {0}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pk.n = 0;
        bb_put(&pk, "\x80\x02", 2);
        pb_sd_begin(&pk);
        pb_str(&pk, "t");
        pb_tensor_st(&pk, cases[i].stype, "0", cases[i].snumel, cases[i].off, cases[i].ndim, cases[i].size,
                     cases[i].stride);
        pb_sd_end(&pk);
        bb_u8(&pk, '.');
        rc = open_pk(&pk, 0, &p, &err);
        if (cases[i].ok)
            check(rc == RAM_OK, cases[i].what, "rc %d: %s", rc, err.msg);
        else
            check(rc == RAM_ERR_FORMAT && err.msg[0], cases[i].what, "rc %d: %s", rc, err.msg);
        if (rc == RAM_OK && i == sizeof cases / sizeof cases[0] - 1) {
            const struct ram_tensor_view *t = ram_pth_find(p, "t");
            check(t && t->ndim == 0 && t->nbytes == 4 && *(const float *)t->data == 5.0f, "0-dim tensor value",
                  "wrong");
        }
        ram_pth_close(p);
        p = 0;
    }

    /* A transposed view (stride not row-major) is materialised. */
    int64_t size[2] = {3, 2}, stride[2] = {1, 3};
    pk.n = 0;
    bb_put(&pk, "\x80\x02", 2);
    pb_sd_begin(&pk);
    pb_str(&pk, "wt");
    pb_tensor(&pk, "0", 6, 0, 2, size, stride);
    pb_str(&pk, "w");
    pb_tensor(&pk, "0", 6, 0, 2, SZ23, ST23);
    pb_sd_end(&pk);
    bb_u8(&pk, '.');
    rc = open_pk(&pk, 0, &p, &err);
    const float tr[6] = {0, 3, 1, 4, 2, 5};
    const struct ram_tensor_view *wt = p ? ram_pth_find(p, "wt") : 0;
    check(rc == RAM_OK && vals_are(wt, tr, 6) && wt->shape[0] == 3 && wt->shape[1] == 2,
          "transposed view is copied contiguous", "rc %d: %s", rc, err.msg);
    check(p && ram_pth_count(p) == 2 && !strcmp(ram_pth_tensor(p, 0)->name, "wt"), "state-dict order kept",
          "wrong order");
    ram_pth_close(p);

    /* _rebuild_parameter(tensor, requires_grad, hooks) is the tensor. */
    pk.n = 0;
    bb_put(&pk, "\x80\x02", 2);
    pb_sd_begin(&pk);
    pb_str(&pk, "p");
    pb_global(&pk, "torch._utils", "_rebuild_parameter");
    bb_u8(&pk, '(');
    pb_tensor(&pk, "0", 6, 0, 2, SZ23, ST23);
    bb_u8(&pk, 0x88);
    pb_global(&pk, "collections", "OrderedDict");
    bb_u8(&pk, ')');
    bb_u8(&pk, 'R');
    bb_u8(&pk, 't');
    bb_u8(&pk, 'R');
    pb_sd_end(&pk);
    bb_u8(&pk, '.');
    rc = open_pk(&pk, 0, &p, &err);
    check(rc == RAM_OK && vals_are(ram_pth_find(p, "p"), g_st0, 6), "Parameter wrapper gives its tensor", "rc %d: %s",
          rc, err.msg);
    ram_pth_close(p);

    /* Selection rule. */
    pk.n = 0;
    bb_put(&pk, "\x80\x02}(", 4);
    pb_str(&pk, "epoch");
    pb_int(&pk, 3);
    pb_str(&pk, "state_dict");
    pb_sd_begin(&pk);
    pb_str(&pk, "w");
    pb_tensor(&pk, "0", 6, 0, 2, SZ23, ST23);
    pb_sd_end(&pk);
    bb_put(&pk, "u.", 2);
    rc = open_pk(&pk, 0, &p, &err);
    check(rc == RAM_OK && ram_pth_count(p) == 1, "'state_dict' key is used when 'model' is absent", "rc %d: %s", rc,
          err.msg);
    ram_pth_close(p);
    pk.n = 0;
    bb_put(&pk, "\x80\x02}(", 4);
    pb_str(&pk, "model");
    pb_global(&pk, "ram.models", "RAM");
    bb_put(&pk, ")\x81u.", 4);
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "'model'") && strstr(err.msg, "ram.models.RAM"),
          "a pickled module object is an error naming it", "rc %d: %s", rc, err.msg);
    pk.n = 0;
    bb_put(&pk, "\x80\x02].", 4);
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT, "top-level list is an error", "rc %d", rc);
    pk.n = 0;
    bb_put(&pk, "\x80\x02}.", 4);
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "empty"), "empty dict is an error", "rc %d: %s", rc, err.msg);
    pk.n = 0;
    bb_put(&pk, "\x80\x02", 2);
    pb_sd_begin(&pk);
    pb_str(&pk, "w");
    pb_tensor(&pk, "0", 6, 0, 2, SZ23, ST23);
    pb_str(&pk, "w");
    pb_tensor(&pk, "0", 6, 0, 2, SZ23, ST23);
    pb_sd_end(&pk);
    bb_u8(&pk, '.');
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "duplicate"), "duplicate key is an error", "rc %d: %s", rc, err.msg);

    /* One long key repeated through the memo: refused before its copies add up. */
    pk.n = 0;
    bb_put(&pk, "\x80\x02", 2);
    pb_sd_begin(&pk);
    {
        char longkey[4001];
        memset(longkey, 'k', 4000);
        longkey[4000] = 0;
        pb_str(&pk, longkey);
        bb_put(&pk, "q\x01", 2);
        pb_tensor(&pk, "0", 6, 0, 2, SZ23, ST23);
        bb_put(&pk, "q\x02", 2);
        for (int i = 0; i < 100000; i++) bb_put(&pk, "h\x01h\x02", 4);
    }
    pb_sd_end(&pk);
    bb_u8(&pk, '.');
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "repeat"), "memo-repeated key is refused early", "rc %d: %s", rc,
          err.msg);
    pk.n = 0;
    bb_put(&pk, "\x80\x02", 2);
    pb_sd_begin(&pk);
    pb_str(&pk, "w");
    pb_tensor(&pk, "7", 6, 0, 2, SZ23, ST23);
    pb_sd_end(&pk);
    bb_u8(&pk, '.');
    rc = open_pk(&pk, 0, 0, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "missing"), "missing storage entry is an error", "rc %d: %s", rc,
          err.msg);
    free(pk.p);
}

#define PK(lit) lit, sizeof(lit) - 1

static void test_pickle_limits(void)
{
    struct ram_error err;
    ram_status rc;
    struct bb b = {0};

    /* Deep MARK nesting. */
    bb_put(&b, "\x80\x02", 2);
    for (int i = 0; i < 5000; i++) bb_u8(&b, '(');
    rc = run_pickle(b.p, b.n, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "MARK"), "5000 nested MARKs are refused", "rc %d: %s", rc, err.msg);

    /* Deeply nested lists are fine (nothing recurses) ... */
    b.n = 0;
    bb_put(&b, "\x80\x02]", 3);
    for (int i = 0; i < 200000; i++) bb_put(&b, "]a", 2); /* each new list pushed, appended into... itself below */
    for (int i = 0; i < 200000; i++) bb_u8(&b, 'a');
    bb_u8(&b, '.');
    rc = run_pickle(b.p, b.n, &err);
    check(rc == RAM_ERR_FORMAT || rc == RAM_OK, "long APPEND chains run", "rc %d", rc);
    b.n = 0;
    bb_put(&b, "\x80\x02", 2);
    for (int i = 0; i < 100000; i++) bb_u8(&b, ']');
    for (int i = 0; i < 99999; i++) bb_u8(&b, 'a');
    bb_u8(&b, '.');
    rc = run_pickle(b.p, b.n, &err);
    check(rc == RAM_OK, "100000-deep nested list parses without recursion", "rc %d: %s", rc, err.msg);

    /* ... and a self-containing list too. */
    rc = run_pickle(PK("\x80\x02]q\x00h\x00"
                       "a."),
                    &err);
    check(rc == RAM_OK, "self-referencing list is harmless", "rc %d: %s", rc, err.msg);

    /* Stack depth cap: 2M DUPs. */
    b.n = 0;
    bb_put(&b, "\x80\x02N", 3);
    for (int i = 0; i < (1 << 21); i++) bb_u8(&b, '2');
    bb_u8(&b, '.');
    rc = run_pickle(b.p, b.n, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "stack"), "stack depth is capped", "rc %d: %s", rc, err.msg);

    static const struct {
        const char *what;
        const char *bytes;
        size_t n;
    } bad[] = {
        {"BINUNICODE length 0xffffffff", PK("\x80\x02X\xff\xff\xff\xff"
                                            "abc.")},
        {"BINUNICODE8 length 2^62", PK("\x80\x04\x8d\0\0\0\0\0\0\0\x40"
                                       "abc.")},
        {"BINBYTES8 length 2^64-1", PK("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.")},
        {"LONG4 length 0x7fffffff", PK("\x80\x02\x8b\xff\xff\xff\x7f\x01.")},
        {"BINSTRING negative length", PK("\x80\x02T\xff\xff\xff\xff.")},
        {"LONG_BINPUT 0xffffffff", PK("\x80\x02Nr\xff\xff\xff\xff.")},
        {"BINGET of an unset memo", PK("\x80\x02h\x05.")},
        {"FRAME longer than the pickle", PK("\x80\x04\x95\xff\0\0\0\0\0\0\0N.")},
        {"STOP on an empty stack", PK("\x80\x02.")},
        {"no STOP", PK("\x80\x02N")},
        {"POP on an empty stack", PK("\x80\x02"
                                     "0N.")},
        {"TUPLE without MARK", PK("\x80\x02Nt.")},
        {"REDUCE on a short stack", PK("\x80\x02NR.")},
        {"SETITEM on a list", PK("\x80\x02]NNs.")},
        {"APPEND to an int", PK("\x80\x02K\x01Na.")},
        {"odd SETITEMS", PK("\x80\x02}(Nu.")},
        {"STACK_GLOBAL of ints", PK("\x80\x04K\x01K\x02\x93.")},
        {"GLOBAL without newline", PK("\x80\x02"
                                      "cos")},
        {"protocol 6", PK("\x80\x06N.")},
        {"text INT opcode", PK("I1\n.")},
        {"EXT1 opcode", PK("\x80\x02\x82\x01.")},
        {"out-of-band buffer", PK("\x80\x05\x97.")},
        {"text persistent id", PK("\x80\x02P1\n.")},
        {"items added below the mark", PK("\x80\x02(]e.")},
        {"empty input", PK("")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        rc = run_pickle(bad[i].bytes, bad[i].n, &err);
        check(rc == RAM_ERR_FORMAT && !strncmp(err.msg, "pickle:", 7), bad[i].what, "rc %d: %s", rc, err.msg);
    }
    free(b.p);
}

/* Truncations and byte flips of a real checkpoint: errors, never crashes. */
static void test_corruption(void)
{
    struct ram_error err;
    size_t len = 0;
    unsigned char *orig = read_file(data_path("golden/ram_plus_tiny.pth"), &len);
    if (!orig) {
        check(0, "corruption tests: golden readable", "cannot read");
        return;
    }
    unsigned char *buf = malloc(len);
    struct ram_pth *p = 0;

    /* Cuts at every 1% and in the first and last 200 bytes. */
    int bad = 0, cuts = 0;
    for (int pass = 0; pass < 3; pass++) {
        int n = pass == 0 ? 100 : 200;
        for (int i = 0; i < n; i++) {
            size_t cut = pass == 0 ? len * (size_t)i / 100 : pass == 1 ? (size_t)i : len - 1 - (size_t)i;
            memcpy(buf, orig, cut);
            ram_status rc = ram_pth_open_memory(buf, cut, &p, &err);
            cuts++;
            if (rc != RAM_ERR_FORMAT) bad++;
            ram_pth_close(p);
            p = 0;
        }
    }
    check(bad == 0, "truncated archives fail with RAM_ERR_FORMAT", "%d of %d cuts did not", bad, cuts);

    /* Cuts of data.pkl itself inside an intact archive. */
    struct ram_zip z;
    ram_status zrc = ram_zip_open(orig, len, &z, &err);
    const struct ram_zip_entry *pe = zrc ? 0 : ram_zip_find(&z, "ram_plus_tiny/data.pkl");
    check(pe != NULL, "zip index finds data.pkl", "%s", err.msg);
    if (pe) {
        struct bb pk = {0};
        bad = cuts = 0;
        for (size_t cut = 0; cut < pe->size; cut += 211) {
            pk.n = 0;
            bb_put(&pk, orig + pe->offset, cut);
            ram_status rc = open_pk(&pk, 0, 0, &err);
            cuts++;
            if (rc != RAM_ERR_FORMAT) bad++;
        }
        check(bad == 0, "truncated data.pkl fails with RAM_ERR_FORMAT", "%d of %d cuts did not", bad, cuts);
        free(pk.p);

        /* Random byte flips inside data.pkl (fixed seed): no crash, only OK or FORMAT. */
        uint64_t seed = 0x9e3779b97f4a7c15ull;
        int other = 0, ok = 0, fmt = 0;
        for (int it = 0; it < 1500; it++) {
            memcpy(buf, orig, len);
            int nflip = 1 + it % 4;
            for (int f = 0; f < nflip; f++) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                size_t at = pe->offset + (size_t)(seed % pe->size);
                buf[at] ^= (unsigned char)(1u << ((seed >> 32) % 8));
            }
            ram_status rc = ram_pth_open_memory(buf, len, &p, &err);
            if (rc == RAM_OK)
                ok++;
            else if (rc == RAM_ERR_FORMAT)
                fmt++;
            else
                other++;
            ram_pth_close(p);
            p = 0;
        }
        printf("  byte flips: %d ok, %d format errors\n", ok, fmt);
        check(other == 0 && fmt > 0, "byte flips in data.pkl give OK or RAM_ERR_FORMAT", "%d ok, %d format, %d other",
              ok, fmt, other);

        /* Flips in the central directory and headers. */
        other = 0;
        size_t cd_lo = len > 20000 ? len - 20000 : 0;
        for (int it = 0; it < 500; it++) {
            memcpy(buf, orig, len);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            size_t at = it % 2 ? cd_lo + (size_t)(seed % (len - cd_lo)) : (size_t)(seed % 4096);
            buf[at] = (unsigned char)(seed >> 40);
            ram_status rc = ram_pth_open_memory(buf, len, &p, &err);
            if (rc != RAM_OK && rc != RAM_ERR_FORMAT) other++;
            ram_pth_close(p);
            p = 0;
        }
        check(other == 0, "byte flips in zip headers give OK or RAM_ERR_FORMAT", "%d other", other);
    }
    ram_zip_close(&z);

    /* Zip structure lies. */
    memcpy(buf, orig, len);
    size_t eocd = len - 22;
    buf[eocd + 8] = buf[eocd + 10] = 0xff;
    buf[eocd + 9] = buf[eocd + 11] = 0xfe; /* entry count far above what the directory holds */
    ram_status rc = ram_pth_open_memory(buf, len, &p, &err);
    check(rc == RAM_ERR_FORMAT && strstr(err.msg, "entry count"), "implausible zip entry count", "rc %d: %s", rc,
          err.msg);
    memcpy(buf, orig, len);
    memcpy(buf + eocd + 16, "\xf0\xff\xff\x7f", 4);
    rc = ram_pth_open_memory(buf, len, &p, &err);
    check(rc == RAM_ERR_FORMAT, "central directory offset past the end", "rc %d: %s", rc, err.msg);
    rc = ram_pth_open_memory("PK\5\6", 4, &p, &err);
    check(rc == RAM_ERR_FORMAT, "4-byte file", "rc %d", rc);

    free(buf);
    free(orig);
}

/* Every allocation failing in turn: NOMEM or OK, never a crash or leak. */
static void test_oom(void)
{
    struct bb pk = {0}, z = {0};
    struct ram_error err;
    pk_checkpoint(&pk, extra_training, 0);
    make_pth(&z, &pk, 0);
    int bad = 0, n;
    for (n = 0; n < 400; n++) {
        struct ram_pth *p = 0;
        ram_alloc_fail_after(n);
        ram_status rc = ram_pth_open_memory(z.p, z.n, &p, &err);
        ram_alloc_fail_after(-1);
        ram_pth_close(p);
        if (rc == RAM_OK) break;
        if (rc != RAM_ERR_NOMEM) {
            if (bad++ < 3) printf("  fail-after %d: rc %d: %s\n", n, rc, err.msg);
        }
    }
    check(bad == 0 && n < 400, "allocation failures give RAM_ERR_NOMEM", "%d bad, %d steps", bad, n);
    free(pk.p);
    free(z.p);
}

int main(void)
{
    (void)check_close_npy; /* harness helper this test does not need */
    test_ram_plus();
    test_ram();
    test_clip_roundtrip();
    test_crafted();
    test_tensor_bounds();
    test_pickle_limits();
    test_corruption();
    test_oom();
    return harness_exit();
}
