/*
** safetensors.h — reading and writing the safetensors container: an 8-byte
** little-endian header length, a JSON header {name: {dtype, shape,
** data_offsets}, "__metadata__": {str: str}}, then the tensor bytes.
** Our model files (models/README.md) are safetensors files; the converter
** also reads Hugging Face / OpenAI CLIP text towers stored this way.
**
**     struct ram_st_map *mf = 0;
**     if (ram_st_open("clip.safetensors", 0, &mf, &err)) return fail(err.msg);
**     struct ram_tensor_source src = ram_st_source(&mf->st);
**     const struct ram_tensor_view *t = src.find(src.ctx, "ln_final.weight");
**     ram_st_close(mf);
**
** Validation (everything is untrusted): header length against the file size
** and RAM_ST_MAX_HEADER, JSON depth, dtype names, ndim <= RAM_ST_MAX_DIMS,
** element size x shape == byte length (overflow-checked), offsets inside the
** data section and non-overlapping, no duplicate names. RAM_ST_STRICT (our
** own files) further demands that the tensors tile the data section exactly
** (contiguous from 0 to its end), that every dtype is known, and that
** __metadata__ holds only strings.
**
** Writing streams: tensors come from memory, from fp32 memory converted on
** the fly, or from a generator callback, through one fixed buffer; the data
** section's XXH3-128 is computed on the way and patched into the header, and
** the file appears atomically (temp file + rename).
*/
#ifndef RAM_SAFETENSORS_H
#define RAM_SAFETENSORS_H

#include "internal.h"

#define RAM_ST_MAX_HEADER ((size_t)100 << 20) /* 100 MB, as the reference library */
#define RAM_ST_MAX_DIMS 4
#define RAM_ST_ALIGN 64 /* data section alignment when writing */
#define RAM_ST_STRICT 1

struct ram_st_file {
    const uint8_t *base; /* the whole file (borrowed) */
    size_t len;
    size_t header_len;   /* JSON bytes, padding included */
    const uint8_t *data; /* data section = base + 8 + header_len */
    size_t data_len;
    struct ram_tensor_view *tensors; /* owned; sorted by name; names owned (ram_free) */
    int n_tensors;
    char **meta_keys, **meta_vals; /* owned; __metadata__ entries (strings only) */
    int n_meta;
};

/* Parses and validates a safetensors image of len bytes at buf (which must
** outlive *out). flags: 0 or RAM_ST_STRICT. Free with ram_st_free. */
ram_status ram_st_parse(const void *buf, size_t len, int flags, struct ram_st_file *out, struct ram_error *err);
void ram_st_free(struct ram_st_file *f);

const struct ram_tensor_view *ram_st_find(const struct ram_st_file *f, const char *name);
/* __metadata__ value of key, or NULL. Borrowed from f. */
const char *ram_st_meta(const struct ram_st_file *f, const char *key);
/* A name -> tensor source over f (borrowed; valid while f lives). */
struct ram_tensor_source ram_st_source(struct ram_st_file *f);

/* A parsed file mapped read-only from disk. */
struct ram_st_map {
    void *map; /* mmap'd file (munmap by ram_st_close) */
    size_t map_len;
    struct ram_st_file st;
};
ram_status ram_st_open(const char *path, int flags, struct ram_st_map **out, struct ram_error *err);
void ram_st_close(struct ram_st_map *m);

/* ------------------------------------------------------------------ writing (safetensors_write.c) */

/* One tensor to write. Exactly one data origin is used, in this order:
** bytes (already in dtype), f32 (fp32 values, converted to dtype F32/F16/BF16),
** fill_raw (the whole tensor's bytes), fill (a generator of fp32 values,
** converted likewise). */
struct ram_st_out {
    const char *name; /* borrowed */
    enum ram_dtype dtype;
    int ndim;
    int64_t shape[RAM_ST_MAX_DIMS];
    const void *bytes; /* borrowed */
    const float *f32;  /* borrowed */
    /* Writes the fp32 values of elements [first, first + count) to dst.
    ** count is always a multiple of the last dimension (whole rows). */
    ram_status (*fill)(void *ctx, const struct ram_st_out *t, size_t first, size_t count, float *dst,
                       struct ram_error *err);
    void *ctx;
    /* Writes the whole tensor's nbytes bytes (in dtype) to dst; used when
    ** bytes and f32 are NULL (quantized weights, made from fp32 at write time). */
    ram_status (*fill_raw)(void *ctx, const struct ram_st_out *t, void *dst, size_t nbytes, struct ram_error *err);
};

/* Writes a safetensors file at path (atomically: path.tmp-XXXXXX + rename).
** Tensors are laid out I8 first, then F32, then 2-byte types, then the rest, each
** group in the given order, contiguous; the header is space-padded so the
** data starts RAM_ST_ALIGN-aligned. meta is n_meta key/value pairs (borrowed).
** If checksum_key is not NULL, the metadata also gets checksum_key = the
** XXH3-128 (32 lowercase hex digits, canonical big-endian) of the data
** section, which is copied to digest_out (33 bytes) when not NULL. */
ram_status ram_st_write(const char *path, const struct ram_st_out *t, int n, const char *const *meta_keys,
                        const char *const *meta_vals, int n_meta, const char *checksum_key, char *digest_out,
                        struct ram_error *err);

/* XXH3-128 of n bytes as 32 lowercase hex digits + NUL (canonical form). */
void ram_xxh128_hex(const void *data, size_t n, char out[33]);
/* A canonical (big-endian) 128-bit digest as 32 lowercase hex digits + NUL. */
void ram_hex128(const unsigned char digest[16], char out[33]);

#endif /* RAM_SAFETENSORS_H */
