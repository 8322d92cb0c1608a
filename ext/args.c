/*
** args.c — how every SQL function reads an image argument: type and size
** checks with uniform messages, ram_embed() blobs recognised by their magic,
** and the one place that runs the engine on an image (through the cache of
** cache.c, so one blob is decoded once however many functions read it).
**
**     struct ram_image img; int bNull;
**     rc = ram__image_arg(p, "ram_tags", 1, argv[0], 1, &bNull, &img, &zErr);
**     // img.aEmbed: n_image_tokens x embed_dim, img.aProb: num_class
**
** Accepted: a BLOB of encoded image bytes (JPEG, PNG, WebP, GIF, TIFF,
** HEIF/AVIF: what core/image.c accepts), or a BLOB made by ram_embed() with
** the current model. NULL gives NULL. Messages:
**   <f>(): argument N must be a BLOB of image bytes (use readfile('photo.jpg'))
**   <f>(): argument N is too big (B bytes, over SQLITE_LIMIT_LENGTH L)   SQLITE_TOOBIG
**   <f>(): image: ... (the engine's reason: libvips' message, pixel limit
**          -> SQLITE_TOOBIG)
**   <f>(): argument N is a ram_embed() BLOB of another model (...)
**   <f>(): argument N: the ram_embed blob holds non-finite values (...)
**   <f>(): interrupted                                                  SQLITE_INTERRUPT
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <math.h>
#include <string.h>

static int host_is_le(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void ram__f32_to_le(unsigned char *pOut, const float *a, size_t n)
{
    if (host_is_le()) {
        memcpy(pOut, a, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &a[i], 4);
        pOut[4 * i] = (unsigned char)u;
        pOut[4 * i + 1] = (unsigned char)(u >> 8);
        pOut[4 * i + 2] = (unsigned char)(u >> 16);
        pOut[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

void ram__f32_from_le(float *a, const unsigned char *p, size_t n)
{
    if (host_is_le()) {
        memcpy(a, p, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&a[i], &u, 4);
    }
}

static uint32_t get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Checks a ram_embed() blob against the current model and copies its data
** into p->aEmbed. */
static int read_embed_blob(struct ram_conn *p, const char *zFunc, int iArg, const unsigned char *z,
                           sqlite3_int64 n, char **pzErr)
{
    const struct ram_model_info *pI = &p->pEntry->info;
    if (n < RAM_EMBED_HEADER || get_u32le(z + 8) != RAM_EMBED_HEADER) {
        *pzErr = ram__mprintf("%s(): argument %d is not a valid ram_embed() BLOB (bad header)", zFunc,
                              iArg);
        return SQLITE_ERROR;
    }
    uint32_t version = get_u32le(z + 4);
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
            *pzErr = ram__mprintf("%s(): argument %d is not a valid ram_embed() BLOB (bad model digest)",
                                  zFunc, iArg);
            return SQLITE_ERROR;
        }
    }
    if (strcmp(zDigest, pI->digest)) {
        *pzErr = ram__mprintf("%s(): argument %d is a ram_embed() BLOB of another model (digest "
                              "%.12s..., the current model is %.12s...)",
                              zFunc, iArg, zDigest, pI->digest);
        return SQLITE_ERROR;
    }
    uint32_t nTok = get_u32le(z + 16), nDim = get_u32le(z + 20);
    sqlite3_int64 nWant =
        RAM_EMBED_HEADER + (sqlite3_int64)pI->n_image_tokens * pI->embed_dim * (sqlite3_int64)sizeof(float);
    if (nTok != (uint32_t)pI->n_image_tokens || nDim != (uint32_t)pI->embed_dim || n != nWant) {
        *pzErr = ram__mprintf("%s(): argument %d is not a valid ram_embed() BLOB (%u x %u floats in "
                              "%lld bytes; the model needs %d x %d in %lld bytes)",
                              zFunc, iArg, nTok, nDim, n, pI->n_image_tokens, pI->embed_dim, nWant);
        return SQLITE_ERROR;
    }
    size_t nFloat = (size_t)pI->n_image_tokens * pI->embed_dim;
    ram__f32_from_le(p->aEmbed, z + RAM_EMBED_HEADER, nFloat);
    /* ram_embed() never writes NaN or infinity; a crafted blob that does
    ** would make every score NaN, which SQLite returns as NULL, silently. */
    for (size_t i = 0; i < nFloat; i++) {
        if (!isfinite(p->aEmbed[i])) {
            *pzErr = ram__mprintf("%s(): argument %d: the ram_embed blob holds non-finite values "
                                  "(NaN or infinity at float %lld)",
                                  zFunc, iArg, (long long)i);
            return SQLITE_ERROR;
        }
    }
    return SQLITE_OK;
}

static int core_error(const char *zFunc, ram_status s, const struct ram_error *pErr, char **pzErr)
{
    int rc = ram__rc(s);
    if (rc == SQLITE_NOMEM) {
        *pzErr = 0;
    } else if (rc == SQLITE_INTERRUPT) {
        *pzErr = ram__mprintf("%s(): interrupted", zFunc);
    } else {
        *pzErr = ram__mprintf("%s(): %s", zFunc, pErr->msg);
    }
    return rc;
}

int ram__image_arg(struct ram_conn *p, const char *zFunc, int iArg, sqlite3_value *pVal, int bProbs,
                   int *pbNull, struct ram_image *pOut, char **pzErr)
{
    static const unsigned char aEmpty[1] = {0};
    struct ram_error err;
    ram_status s;
    int rc;

    *pbNull = 0;
    *pzErr = 0;
    memset(pOut, 0, sizeof *pOut);
    switch (sqlite3_value_type(pVal)) {
    case SQLITE_NULL:
        *pbNull = 1;
        return SQLITE_OK;
    case SQLITE_BLOB:
        break;
    default:
        *pzErr = ram__mprintf("%s(): argument %d must be a BLOB of image bytes (use "
                              "readfile('photo.jpg'))",
                              zFunc, iArg);
        return SQLITE_ERROR;
    }
    const unsigned char *z = sqlite3_value_blob(pVal);
    sqlite3_int64 n = sqlite3_value_bytes(pVal);
    if (!z) { /* a zero-length blob */
        z = aEmpty;
        n = 0;
    }
    int mxLen = sqlite3_limit(p->db, SQLITE_LIMIT_LENGTH, -1);
    if (n > mxLen) {
        *pzErr = ram__mprintf("%s(): argument %d is too big (%lld bytes, over SQLITE_LIMIT_LENGTH %d)",
                              zFunc, iArg, n, mxLen);
        return SQLITE_TOOBIG;
    }
    if ((rc = ram__conn_model(p, zFunc, pzErr)) != SQLITE_OK) return rc;

    const struct ram_model_info *pI = &p->pEntry->info;
    size_t nEmbed = (size_t)pI->n_image_tokens * (size_t)pI->embed_dim;
    size_t nProb = (size_t)pI->num_class;
    int bEmbedBlob = n >= 4 && !memcmp(z, RAM_EMBED_MAGIC, 4);

    struct ram_img_key key;
    memset(&key, 0, sizeof key);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(z, (size_t)n));
    memcpy(key.hash, c.digest, 16);
    memcpy(key.digest, pI->digest, sizeof key.digest);
    key.digest[32] = 0;
    key.exif = bEmbedBlob ? -1 : p->bExif;
    key.mxPixels = bEmbedBlob ? 0 : p->mxPixels;

    int bHasProb = 0;
    int bHit = ram__imgcache_get(&key, p->aEmbed, nEmbed, bProbs ? p->aProb : 0, nProb, &bHasProb);
    if (!bHit) {
        if (bEmbedBlob) {
            if ((rc = read_embed_blob(p, zFunc, iArg, z, n, pzErr)) != SQLITE_OK) return rc;
        } else {
            if (ram__conn_interrupted(p)) {
                *pzErr = ram__mprintf("%s(): interrupted", zFunc);
                return SQLITE_INTERRUPT;
            }
            struct ram_image_params ip = ram_image_default_params();
            ip.exif_rotate = p->bExif;
            ip.max_pixels = (uint64_t)p->mxPixels;
            s = ram_image_preprocess(z, (size_t)n, pI->image_size, &ip, p->aChw, &err);
            if (s) return core_error(zFunc, s, &err, pzErr);
            s = ram_encode_image(p->pState, p->aChw, p->aEmbed, &err);
            if (s) return core_error(zFunc, s, &err, pzErr);
        }
    }
    if (bProbs && !bHasProb) {
        s = ram_tag_probs(p->pState, p->aEmbed, p->aProb, &err);
        if (s) return core_error(zFunc, s, &err, pzErr);
    }
    if (!bHit || (bProbs && !bHasProb)) {
        ram__imgcache_put(&key, p->aEmbed, nEmbed, bProbs ? p->aProb : 0, nProb);
    }
    pOut->aEmbed = p->aEmbed;
    pOut->aProb = bProbs ? p->aProb : 0;
    return SQLITE_OK;
}
