/*
** embed_blob.c — the ram_embed() BLOB format, in one place: recognising,
** reading (checked against a model) and writing it.
**
** ram_embed layout (version 1; all integers little-endian u32):
**     0   'RAME'          magic
**     4   1               layout version
**     8   64              header size
**     12  flags           bit 0: EXIF orientation was applied
**     16  n_tokens        rows (1 + (image_size/32)^2: CLS first)
**     20  embed_dim       columns
**     24  0, 0            reserved
**     32  digest          32 ASCII hex digits of the model's digest
**     64  data            n_tokens * embed_dim IEEE float32, little-endian,
**                         row-major: exactly what ram_encode_image gives
**
** A blob is tied to its model by the digest: reading it with another model
** is an error, never a silent mix of two models' features.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <math.h>
#include <string.h>

int ram__embed_blob_is(const unsigned char *z, sqlite3_int64 n)
{
    return z && n >= 4 && !memcmp(z, RAM_EMBED_MAGIC, 4);
}

uint32_t ram__embed_blob_flags(const unsigned char *z) { return ram__get_u32le(z + 12) & RAM_EMBED_FLAG_EXIF; }

int ram__embed_blob_read(const struct ram_model_info *pI, const char *zFunc, int iArg, const unsigned char *z,
                         sqlite3_int64 n, float *aEmbed, char **pzErr)
{
    if (n < RAM_EMBED_HEADER || ram__get_u32le(z + 8) != RAM_EMBED_HEADER) {
        *pzErr = ram__mprintf("%s(): argument %d is not a valid ram_embed() BLOB (bad header)", zFunc, iArg);
        return SQLITE_ERROR;
    }
    uint32_t version = ram__get_u32le(z + 4);
    if (version != RAM_EMBED_VERSION) {
        *pzErr = ram__mprintf("%s(): argument %d is a ram_embed() BLOB of layout version %u; this "
                              "build reads version %d",
                              zFunc, iArg, version, RAM_EMBED_VERSION);
        return SQLITE_ERROR;
    }
    char zDigest[33];
    memcpy(zDigest, z + 32, 32);
    zDigest[32] = 0;
    for (int i = 0; i < 32; i++) {
        char c = zDigest[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            *pzErr = ram__mprintf("%s(): argument %d is not a valid ram_embed() BLOB (bad model digest)", zFunc, iArg);
            return SQLITE_ERROR;
        }
    }
    if (strcmp(zDigest, pI->digest)) {
        *pzErr = ram__mprintf("%s(): argument %d is a ram_embed() BLOB of another model (digest "
                              "%.12s..., the current model is %.12s...)",
                              zFunc, iArg, zDigest, pI->digest);
        return SQLITE_ERROR;
    }
    uint32_t nTok = ram__get_u32le(z + 16), nDim = ram__get_u32le(z + 20);
    sqlite3_int64 nWant =
        RAM_EMBED_HEADER + (sqlite3_int64)pI->n_image_tokens * pI->embed_dim * (sqlite3_int64)sizeof(float);
    if (nTok != (uint32_t)pI->n_image_tokens || nDim != (uint32_t)pI->embed_dim || n != nWant) {
        *pzErr = ram__mprintf("%s(): argument %d is not a valid ram_embed() BLOB (%u x %u floats in "
                              "%lld bytes; the model needs %d x %d in %lld bytes)",
                              zFunc, iArg, nTok, nDim, n, pI->n_image_tokens, pI->embed_dim, nWant);
        return SQLITE_ERROR;
    }
    size_t nFloat = (size_t)pI->n_image_tokens * pI->embed_dim;
    ram__f32_from_le(aEmbed, z + RAM_EMBED_HEADER, nFloat);
    /* ram_embed() never writes NaN or infinity; a crafted blob that does
    ** would make every score NaN, which SQLite returns as NULL, silently. */
    for (size_t i = 0; i < nFloat; i++) {
        if (!isfinite(aEmbed[i])) {
            *pzErr = ram__mprintf("%s(): argument %d: the ram_embed blob holds non-finite values "
                                  "(NaN or infinity at float %lld)",
                                  zFunc, iArg, (long long)i);
            return SQLITE_ERROR;
        }
    }
    return SQLITE_OK;
}

unsigned char *ram__embed_blob_write(const struct ram_model_info *pI, const float *aEmbed, uint32_t flags,
                                     sqlite3_uint64 *pnByte)
{
    size_t nFloat = (size_t)pI->n_image_tokens * (size_t)pI->embed_dim;
    sqlite3_uint64 nByte = RAM_EMBED_HEADER + nFloat * sizeof(float);
    unsigned char *a = sqlite3_malloc64(nByte);
    if (!a) return 0;
    memset(a, 0, RAM_EMBED_HEADER);
    memcpy(a, RAM_EMBED_MAGIC, 4);
    ram__put_u32le(a + 4, RAM_EMBED_VERSION);
    ram__put_u32le(a + 8, RAM_EMBED_HEADER);
    ram__put_u32le(a + 12, flags);
    ram__put_u32le(a + 16, (uint32_t)pI->n_image_tokens);
    ram__put_u32le(a + 20, (uint32_t)pI->embed_dim);
    memcpy(a + 32, pI->digest, 32);
    ram__f32_to_le(a + RAM_EMBED_HEADER, aEmbed, nFloat);
    *pnByte = nByte;
    return a;
}
