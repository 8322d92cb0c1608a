/*
** zip_reader.c — indexes a ZIP archive held in memory: finds the end of
** central directory record (and its zip64 twin), walks the central
** directory, and resolves each entry's data range through its local header.
** See zip_reader.h for the contract.
**
** HOW IT WORKS. Every number read from the file is treated as hostile: each
** record is bounds-checked before it is read, offsets and sizes are added in
** uint64_t with overflow checks against the buffer length, and the entry
** count is capped by both RAM_ZIP_MAX_ENTRIES and the central directory size
** (46 bytes per entry at least) before the entry table is allocated. Sizes
** come from the central directory (local headers may defer them to a data
** descriptor); the local header only tells where the data starts, because
** PyTorch pads its extra field to align tensor data.
*/
#include "zip_reader.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* 1 if [off, off+n) lies inside a buffer of len bytes (overflow-safe). */
static int in_range(uint64_t off, uint64_t n, size_t len) { return off <= (uint64_t)len && n <= (uint64_t)len - off; }

static int cmp_entry(const void *a, const void *b)
{
    const struct ram_zip_entry *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Reads the zip64 extended-information extra field of a central directory
** record: the values whose 32-bit field was saturated appear in this order. */
static int zip64_extra(const uint8_t *x, size_t xlen, int need_usize, int need_csize, int need_off, uint64_t *usize,
                       uint64_t *csize, uint64_t *off)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = rd16(x + i), sz = rd16(x + i + 2);
        if (sz > xlen - i - 4) return 0;
        if (id == 0x0001) {
            const uint8_t *p = x + i + 4;
            size_t left = sz;
            if (need_usize) {
                if (left < 8) return 0;
                *usize = rd64(p);
                p += 8;
                left -= 8;
            }
            if (need_csize) {
                if (left < 8) return 0;
                *csize = rd64(p);
                p += 8;
                left -= 8;
            }
            if (need_off) {
                if (left < 8) return 0;
                *off = rd64(p);
            }
            return 1;
        }
        i += 4 + (size_t)sz;
    }
    return !(need_usize || need_csize || need_off);
}

void ram_zip_close(struct ram_zip *z)
{
    if (!z) return;
    ram_free(z->entries);
    ram_free(z->names);
    memset(z, 0, sizeof *z);
}

ram_status ram_zip_open(const void *buf, size_t len, struct ram_zip *z, struct ram_error *err)
{
    const uint8_t *b = buf;
    struct ram_zip_entry *ents = 0; /* owned until moved into z */
    char *names = 0;                /* owned until moved into z */
    ram_status rc = RAM_OK;
    memset(z, 0, sizeof *z);

    if (!b || len < 22) return ram_fail(err, RAM_ERR_FORMAT, "zip: file too small (%zu bytes)", len);

    /* The end record sits in the last 22 + 65535 (max comment) bytes. */
    size_t eocd = (size_t)-1;
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lo;) {
        if (rd32(b + i) == SIG_EOCD && (size_t)rd16(b + i + 20) <= len - 22 - i) {
            eocd = i;
            break;
        }
    }
    if (eocd == (size_t)-1)
        return ram_fail(err, RAM_ERR_FORMAT, "zip: no end of central directory record (not a zip or truncated)");

    const uint8_t *e = b + eocd;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint64_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);

    if (n_disk == 0xffff || n_total == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        if (eocd < 20 || rd32(b + eocd - 20) != SIG_LOC64)
            return ram_fail(err, RAM_ERR_FORMAT, "zip: zip64 end record locator missing");
        uint64_t off64 = rd64(b + eocd - 20 + 8);
        if (!in_range(off64, 56, len) || off64 + 56 > eocd - 20 || rd32(b + off64) != SIG_EOCD64)
            return ram_fail(err, RAM_ERR_FORMAT, "zip: bad zip64 end of central directory record");
        const uint8_t *e64 = b + off64;
        disk = rd32(e64 + 16);
        cd_disk = rd32(e64 + 20);
        n_disk = rd64(e64 + 24);
        n_total = rd64(e64 + 32);
        cd_size = rd64(e64 + 40);
        cd_off = rd64(e64 + 48);
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return ram_fail(err, RAM_ERR_FORMAT, "zip: multi-disk archives are not supported");
    if (!in_range(cd_off, cd_size, len))
        return ram_fail(err, RAM_ERR_FORMAT, "zip: central directory outside the file");
    if (n_total > RAM_ZIP_MAX_ENTRIES || n_total > cd_size / 46)
        return ram_fail(err, RAM_ERR_FORMAT, "zip: implausible entry count %llu", (unsigned long long)n_total);
    if (n_total == 0) return ram_fail(err, RAM_ERR_FORMAT, "zip: empty archive");

    /* Names are at most cd_size bytes in total, plus one NUL each. */
    size_t n = (size_t)n_total;
    ents = ram_calloc(n, sizeof *ents);
    names = ram_malloc((size_t)cd_size + n);
    if (!ents || !names) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "zip: out of memory for %zu entries", n);
        goto cleanup;
    }

    const uint8_t *cd = b + cd_off;
    size_t pos = 0, npos = 0;
    for (size_t k = 0; k < n; k++) {
        if (cd_size - pos < 46 || rd32(cd + pos) != SIG_CENTRAL) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: bad central directory record %zu", k);
            goto cleanup;
        }
        const uint8_t *c = cd + pos;
        uint16_t flags = rd16(c + 8), method = rd16(c + 10);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24);
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        uint64_t lho = rd32(c + 42);
        if (46 + nlen + xlen + clen > cd_size - pos) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: central directory record %zu overruns", k);
            goto cleanup;
        }
        if (!zip64_extra(c + 46 + nlen, xlen, usize == 0xffffffffu, csize == 0xffffffffu, lho == 0xffffffffu, &usize,
                         &csize, &lho)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: bad zip64 extra field in record %zu", k);
            goto cleanup;
        }
        if (memchr(c + 46, 0, nlen)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: entry name with a NUL byte");
            goto cleanup;
        }
        memcpy(names + npos, c + 46, nlen);
        names[npos + nlen] = 0;
        struct ram_zip_entry *ent = &ents[k];
        ent->name = names + npos;
        ent->name_len = nlen;
        npos += nlen + 1;
        pos += 46 + nlen + xlen + clen;

        if (flags & 1) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: entry '%s' is encrypted", ent->name);
            goto cleanup;
        }
        if (method == 0 && csize != usize) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: stored entry '%s' has inconsistent sizes", ent->name);
            goto cleanup;
        }
        /* Data follows the local header, its name and its extra field. */
        if (!in_range(lho, 30, len) || rd32(b + lho) != SIG_LOCAL) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: bad local header for '%s'", ent->name);
            goto cleanup;
        }
        uint64_t data = lho + 30 + rd16(b + lho + 26) + rd16(b + lho + 28);
        if (!in_range(data, csize, len)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: data of '%s' lies outside the file", ent->name);
            goto cleanup;
        }
        ent->method = method;
        ent->offset = data;
        ent->size = csize;
    }

    qsort(ents, n, sizeof *ents, cmp_entry);
    for (size_t k = 1; k < n; k++) {
        if (!strcmp(ents[k - 1].name, ents[k].name)) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "zip: duplicate entry '%s'", ents[k].name);
            goto cleanup;
        }
    }

    z->base = b;
    z->len = len;
    z->entries = ents;
    ents = 0;
    z->names = names;
    names = 0;
    z->n = n;

cleanup:
    ram_free(ents);
    ram_free(names);
    return rc;
}

const struct ram_zip_entry *ram_zip_find(const struct ram_zip *z, const char *name)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->entries[mid].name, name);
        if (c == 0) return &z->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
