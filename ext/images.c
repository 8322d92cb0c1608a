/*
** images.c — how an image argument becomes embeddings and probabilities of
** a context (context.c): type and size checks with uniform messages,
** ram_embed() blobs recognised by their magic (embed_blob.c), and the one
** place that runs the engine on an image argument (through the cache of
** cache.c, so one blob is decoded once however many functions read it).
**
**     struct ram_image img; int bNull;
**     rc = ram__ctx_image(pCtx, &prep, "ram_tags", 1, argv[0], 1, &bNull, &img, &zErr);
**     // img.aEmbed: n_image_tokens x embed_dim, img.aProb: num_class
**
** Accepted: a BLOB of encoded image bytes (JPEG, PNG, WebP, GIF, TIFF,
** HEIF/AVIF: what core/image.c accepts), or a BLOB made by ram_embed() with
** the context's model. NULL gives NULL. Messages:
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

#include <string.h>

int ram__image_check(sqlite3 *db, const char *zFunc, int iArg, sqlite3_value *pVal, int *pbNull, char **pzErr)
{
    *pbNull = 0;
    *pzErr = 0;
    switch (sqlite3_value_type(pVal)) {
    case SQLITE_NULL: *pbNull = 1; return SQLITE_OK;
    case SQLITE_BLOB: break;
    default:
        *pzErr = ram__mprintf("%s(): argument %d must be a BLOB of image bytes (use "
                              "readfile('photo.jpg'))",
                              zFunc, iArg);
        return SQLITE_ERROR;
    }
    sqlite3_int64 n = sqlite3_value_bytes(pVal);
    int mxLen = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
    if (n > mxLen) {
        *pzErr = ram__mprintf("%s(): argument %d is too big (%lld bytes, over SQLITE_LIMIT_LENGTH %d)", zFunc, iArg, n,
                              mxLen);
        return SQLITE_TOOBIG;
    }
    return SQLITE_OK;
}

int ram__ctx_image(struct ram_ctx *c, const struct ram_prep *pPrep, const char *zFunc, int iArg, sqlite3_value *pVal,
                   int bProbs, int *pbNull, struct ram_image *pOut, char **pzErr)
{
    static const unsigned char aEmpty[1] = {0};
    struct ram_error err;
    ram_status s;
    int rc;

    memset(pOut, 0, sizeof *pOut);
    if ((rc = ram__image_check(c->db, zFunc, iArg, pVal, pbNull, pzErr)) != SQLITE_OK || *pbNull) return rc;
    const unsigned char *z = sqlite3_value_blob(pVal);
    sqlite3_int64 n = sqlite3_value_bytes(pVal);
    if (!z) { /* a zero-length blob */
        z = aEmpty;
        n = 0;
    }

    const struct ram_model_info *pI = &c->pEntry->info;
    size_t nEmbed = (size_t)pI->n_image_tokens * (size_t)pI->embed_dim;
    size_t nProb = (size_t)pI->num_class;
    int bEmbedBlob = ram__embed_blob_is(z, n);

    struct ram_img_key key;
    memset(&key, 0, sizeof key);
    XXH128_canonical_t h;
    XXH128_canonicalFromHash(&h, XXH3_128bits(z, (size_t)n));
    memcpy(key.hash, h.digest, 16);
    memcpy(key.digest, pI->digest, sizeof key.digest);
    key.digest[32] = 0;
    key.exif = bEmbedBlob ? -1 : pPrep->bExif;
    key.mxPixels = bEmbedBlob ? 0 : pPrep->mxPixels;

    int bHasProb = 0;
    int bHit = ram__imgcache_get(&key, c->aEmbed, nEmbed, bProbs ? c->aProb : 0, nProb, &bHasProb);
    if (!bHit) {
        if (bEmbedBlob) {
            if ((rc = ram__embed_blob_read(pI, zFunc, iArg, z, n, c->aEmbed, pzErr)) != SQLITE_OK) return rc;
        } else {
            if (ram__interrupted(c->db)) {
                *pzErr = ram__mprintf("%s(): interrupted", zFunc);
                return SQLITE_INTERRUPT;
            }
            struct ram_image_params ip = ram_image_default_params();
            ip.exif_rotate = pPrep->bExif;
            ip.max_pixels = (uint64_t)pPrep->mxPixels;
            s = ram_image_preprocess(z, (size_t)n, pI->image_size, &ip, c->aChw, &err);
            if (s) return ram__core_error(zFunc, s, &err, pzErr);
            s = ram_encode_image(c->pState, c->aChw, c->aEmbed, &err);
            if (s) return ram__core_error(zFunc, s, &err, pzErr);
        }
    }
    if (bProbs && !bHasProb) {
        s = ram_tag_probs(c->pState, c->aEmbed, c->aProb, &err);
        if (s) return ram__core_error(zFunc, s, &err, pzErr);
    }
    if (!bHit || (bProbs && !bHasProb)) {
        ram__imgcache_put(&key, c->aEmbed, nEmbed, bProbs ? c->aProb : 0, nProb);
    }
    pOut->aEmbed = c->aEmbed;
    pOut->aProb = bProbs ? c->aProb : 0;
    return SQLITE_OK;
}
