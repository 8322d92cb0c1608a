/*
** zip_reader.h — read-only index of a ZIP archive held in memory (the
** container of PyTorch .pth checkpoints): the central directory is parsed,
** every entry's data range is located and bounds-checked, nothing is copied
** and nothing is decompressed.
**
** Usage:
**
**     struct ram_zip z;
**     if (ram_zip_open(buf, len, &z, &err)) return ...;
**     const struct ram_zip_entry *e = ram_zip_find(&z, "stem/data.pkl");
**     if (e && e->method == 0) use(buf + e->offset, e->size);
**     ram_zip_close(&z);
**
** Supports zip64 (archives and entries above 4 GB). Multi-disk archives,
** encrypted entries and archives whose offsets do not match the start of the
** buffer are refused. Compressed entries are listed (method != 0) so that the
** caller can name them in its error; their bytes are never inflated.
*/
#ifndef RAM_ZIP_READER_H
#define RAM_ZIP_READER_H

#include "internal.h"

/* Upper bound on the number of entries in one archive. */
#define RAM_ZIP_MAX_ENTRIES (1 << 22)

struct ram_zip_entry {
    const char *name; /* NUL-terminated copy (owned by the ram_zip, freed by ram_zip_close) */
    size_t name_len;
    int method;      /* 0 = stored; anything else is compressed and unreadable here */
    uint64_t offset; /* byte offset of the entry's data in the buffer */
    uint64_t size;   /* bytes of data (compressed size; equals the real size when stored) */
};

struct ram_zip {
    const uint8_t *base; /* borrowed: the caller's buffer */
    size_t len;
    struct ram_zip_entry *entries; /* owned, sorted by name (ram_free'd by ram_zip_close) */
    size_t n;
    char *names; /* owned block holding every entry name */
};

/* Indexes the archive in buf[0..len). buf is borrowed and must outlive z.
** On failure z is left empty (ram_zip_close is still safe). Duplicate entry
** names are a format error. */
ram_status ram_zip_open(const void *buf, size_t len, struct ram_zip *z, struct ram_error *err);

/* Frees what ram_zip_open allocated; safe on a zeroed or failed struct. */
void ram_zip_close(struct ram_zip *z);

/* The entry named exactly name, or NULL. Borrowed; valid until ram_zip_close. */
const struct ram_zip_entry *ram_zip_find(const struct ram_zip *z, const char *name);

#endif /* RAM_ZIP_READER_H */
