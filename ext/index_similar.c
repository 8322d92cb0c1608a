/*
** index_similar.c — search by example in ram_index: a MATCH whose right side
** is a BLOB ranks the images by the cosine of their CLS embedding with the
** query's, best first (the score column is that cosine, in [-1, 1]).
**
**     SELECT path, score FROM photos WHERE photos MATCH readfile('q.jpg') AND k = 10;
**     SELECT path, score FROM photos                      -- like a stored row
**       WHERE photos MATCH (SELECT cls FROM photos WHERE path = 'a.jpg') AND k = 10;
**     SELECT path, score FROM photos WHERE photos MATCH ram_text_embed('a red car') AND k = 10;
**
** The query's CLS is read from the BLOB, recognised in this order:
**  - an entry ('RAMX', the entry column): row 0 of its int8 tokens; it must
**    be of the table's generation (model digest and preprocessing);
**  - a ram_embed() BLOB ('RAME'): its row 0, checked against the table's model;
**  - exactly embed_dim little-endian float32 (that do not start like an
**    image file, or do not decode as one): a vector as it is (ram_cls(), the
**    cls column, ram_text_embed());
**  - anything else: encoded image bytes. When the table holds an image with
**    the same bytes (its XXH3-128 key), its stored CLS is used and nothing
**    runs; otherwise the table's model embeds the picture (one inference,
**    counted in ram_index_stats(); the image encoder alone, no tagging).
**
** The query picture itself, when the table holds it (its bytes, or an entry
** of it), is not left out: it ranks first with score 1, with its exact
** copies (rows sharing its image); a near-identical copy could otherwise
** outrank it by the int8 rounding of the cosines (about 1e-3). A vector
** query (cls, ram_embed()) has no identity: its rows rank by cosine only.
** docs/INDEX.md shows how to leave the picture out.
**
** HOW IT WORKS: the score is ram_cache_prefilter() of a query made of the
** unit query CLS as its one "description", over each image's unit int8 CLS
** in photos_cls: the very cosine the text MATCH prefilter ranks by, so that
** MATCH ram_text_embed('x') orders the images as MATCH 'x' AND prefilter = n
** chooses its candidates. One pass over photos_cls (516 bytes per image at
** full size), or over the postings of one tag with AND tag = '...'.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <math.h>
#include <stdlib.h>

/* 1 when z starts like an encoded image of a format libvips reads: a float
** vector of embed_dim floats is told from a tiny image file by this (and a
** vector that starts like one is still read as a vector when it does not
** decode). */
static int looks_like_image(const unsigned char *z, sqlite3_int64 n)
{
    if (n >= 3 && z[0] == 0xff && z[1] == 0xd8 && z[2] == 0xff) return 1; /* JPEG */
    if (n >= 8 && !memcmp(z, "\x89PNG\r\n\x1a\n", 8)) return 1;
    if (n >= 6 && (!memcmp(z, "GIF87a", 6) || !memcmp(z, "GIF89a", 6))) return 1;
    if (n >= 12 && !memcmp(z, "RIFF", 4) && !memcmp(z + 8, "WEBP", 4)) return 1;
    if (n >= 4 && (!memcmp(z, "II*\0", 4) || !memcmp(z, "MM\0*", 4))) return 1; /* TIFF */
    if (n >= 12 && !memcmp(z + 4, "ftyp", 4)) return 1;                         /* HEIF, AVIF */
    return 0;
}

/* Row 0 of a packed token blob (core/cache_score.h) into aCls. */
static int cls_from_tokens(IndexVtab *p, const void *a, int n, float *aCls, const char *zWhat)
{
    struct ram_cache_tokens v;
    struct ram_error err;
    if (ram_cache_view(a, (size_t)n, p->nTok, p->nDim, &v, &err)) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH: %s: %s", zWhat, err.msg);
        return SQLITE_ERROR;
    }
    ram_cache_cls(&v, aCls);
    return SQLITE_OK;
}

/* The image keyed aKey when the table holds it in the current generation:
** *pImg its id (else 0), and with aCls its stored CLS. */
static int stored_cls(IndexVtab *p, const unsigned char *aKey, float *aCls, sqlite3_int64 *pImg)
{
    sqlite3_stmt *s;
    sqlite3_int64 img = 0;
    *pImg = 0;
    int rc = ram__index_stmt(p, STMT_IMAGE_BY_KEY, &s);
    if (rc) return rc;
    sqlite3_bind_blob(s, 1, aKey, 16, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 1) == p->iGen) img = sqlite3_column_int64(s, 0);
    rc = sqlite3_reset(s);
    if (rc || !img) return rc;
    if (!aCls) {
        *pImg = img;
        return SQLITE_OK;
    }
    rc = ram__index_stmt(p, STMT_TOKENS, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    if (sqlite3_step(s) == SQLITE_ROW) {
        rc = cls_from_tokens(p, sqlite3_column_blob(s, 0), sqlite3_column_bytes(s, 0), aCls, "the stored image");
        if (rc == SQLITE_OK) *pImg = img;
    }
    sqlite3_reset(s);
    return rc;
}

/* The query CLS (p->nDim floats, not yet normalised) of a MATCH BLOB;
** *pSelf: the table's image the query is (image bytes or an entry whose
** key the table holds), else 0. */
static int query_cls(IndexVtab *p, sqlite3_value *pVal, float *aCls, sqlite3_int64 *pSelf)
{
    const unsigned char *z = sqlite3_value_blob(pVal);
    sqlite3_int64 n = sqlite3_value_bytes(pVal);
    char *zErr = 0;
    int rc;
    if (!z || n == 0) {
        if (n) return SQLITE_NOMEM;
        ram__vtab_set_error(&p->base, "ram_index: MATCH needs a text, a JSON array of texts, or a non-empty BLOB "
                                      "(an image, an entry, a ram_embed() BLOB or a float32 vector)");
        return SQLITE_ERROR;
    }
    if (ram__entry_blob_is(z, n)) {
        struct ram_entry_blob v;
        if (ram__entry_blob_parse(z, n, &v, &zErr)) {
            ram__vtab_set_error(&p->base, "ram_index: MATCH: entry: %s", zErr ? zErr : "out of memory");
            sqlite3_free(zErr);
            return zErr ? SQLITE_ERROR : SQLITE_NOMEM;
        }
        if (strcmp(v.zDigest, p->zGenDigest) || strcmp(v.zPrep, p->zGenPrep) || v.nTok != p->nTok ||
            v.nDim != p->nDim) {
            ram__vtab_set_error(&p->base,
                                "ram_index: MATCH: the entry was made with another model or preprocessing "
                                "(digest %.12s..., %s) than %s uses (digest %.12s..., %s)",
                                v.zDigest, v.zPrep, p->zName, p->zGenDigest, p->zGenPrep);
            return SQLITE_ERROR;
        }
        rc = cls_from_tokens(p, v.aTokens, v.nTokens, aCls, "entry");
        return rc ? rc : stored_cls(p, v.aKey, 0, pSelf);
    }
    if (ram__embed_blob_is(z, n)) {
        /* p->aEmbeds (nTok x nDim) is the scratch of one embedding */
        rc = ram__embed_blob_read(&p->pCtx->pEntry->info, "ram_index: MATCH", 1, z, n, p->aEmbeds, &zErr);
        if (rc) {
            ram__vtab_set_error(&p->base, "%s", zErr ? zErr : "out of memory");
            sqlite3_free(zErr);
            return rc;
        }
        memcpy(aCls, p->aEmbeds, sizeof(float) * (size_t)p->nDim);
        return SQLITE_OK;
    }
    int bVectorSize = n == 4 * (sqlite3_int64)p->nDim;
    if (bVectorSize && !looks_like_image(z, n)) {
        ram__f32_from_le(aCls, z, (size_t)p->nDim);
        return SQLITE_OK;
    }
    unsigned char aKey[16];
    ram__index_hash(z, (int)n, aKey);
    rc = stored_cls(p, aKey, aCls, pSelf);
    if (rc || *pSelf) return rc;
    struct ram_error err;
    struct ram_image_params ip = ram_image_default_params();
    ip.exif_rotate = p->bExif;
    ip.max_pixels = (uint64_t)p->pConn->prep.mxPixels;
    /* the image encoder only: the query needs no tags */
    int size = p->pCtx->pEntry->info.image_size;
    float *aChw = sqlite3_malloc64(sizeof(float) * 3 * (size_t)size * (size_t)size);
    if (!aChw) return SQLITE_NOMEM;
    ram_status st = ram_image_preprocess(z, (size_t)n, size, &ip, aChw, &err);
    if (st == RAM_OK) st = ram_encode_image(p->pCtx->pState, aChw, p->aEmbeds, &err);
    sqlite3_free(aChw);
    if (st == RAM_ERR_INTERRUPTED) {
        ram__vtab_set_error(&p->base, "interrupted");
        return SQLITE_INTERRUPT;
    }
    if (st == RAM_ERR_IMAGE && bVectorSize) {
        /* a vector whose first bytes happen to look like an image file's */
        ram__f32_from_le(aCls, z, (size_t)p->nDim);
        return SQLITE_OK;
    }
    if (st == RAM_ERR_IMAGE && !looks_like_image(z, n)) {
        /* say what else a MATCH BLOB may be, with the decoder's reason */
        ram__vtab_set_error(&p->base,
                            "ram_index: MATCH: a BLOB of %lld bytes that is neither an image (%s) nor a float32 "
                            "vector of the table's width (%d floats, %d bytes), an entry or a ram_embed() BLOB",
                            n, err.msg, p->nDim, 4 * p->nDim);
        return SQLITE_ERROR;
    }
    if (st) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
        return ram__rc(st);
    }
    STAT_ADD(inferences, 1);
    memcpy(aCls, p->aEmbeds, sizeof(float) * (size_t)p->nDim);
    return SQLITE_OK;
}

/* Higher cosine first; ties by image id, so results are deterministic. */
static int similar_cmp(const void *a, const void *b)
{
    const IndexHit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->img < y->img ? -1 : x->img > y->img;
}

int ram__index_similar(IndexVtab *p, sqlite3_value *pMatch, sqlite3_int64 k, sqlite3_int64 nPre, int iTag, double thr,
                       IndexHit **paHit, int *pnHit)
{
    float *aCls = 0;
    struct ram_cache_query *q = 0;
    struct ram_error err;
    sqlite3_stmt *pScan = 0;
    IndexHit *aHit = 0;
    sqlite3_int64 iSelf = 0;
    int nHit = 0, nAlloc = 0, rc;
    *paHit = 0;
    *pnHit = 0;
    if (nPre > 0) {
        ram__vtab_set_error(&p->base, "ram_index: prefilter applies to a text MATCH; search by example ranks every "
                                      "image by the cosine itself (use k)");
        return SQLITE_ERROR;
    }
    rc = ram__index_model(p, 1);
    if (rc == SQLITE_OK) rc = ram__index_check_stale(p);
    if (rc) return rc;
    aCls = sqlite3_malloc64(sizeof(float) * (size_t)p->nDim);
    if (!aCls) return SQLITE_NOMEM;
    rc = query_cls(p, pMatch, aCls, &iSelf);
    if (rc) goto done;
    double ss = 0;
    for (int d = 0; d < p->nDim; d++) ss += (double)aCls[d] * aCls[d];
    if (!(ss > 0) || !isfinite(ss)) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH: the query vector is %s",
                            isfinite(ss) ? "zero (no direction to compare with)" : "not finite (NaN or infinity)");
        rc = SQLITE_ERROR;
        goto done;
    }
    for (int d = 0; d < p->nDim; d++) aCls[d] = (float)(aCls[d] / sqrt(ss));
    if (ram_cache_query_init(p->pModel, aCls, 1, 1, 1, &q, &err)) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
        rc = SQLITE_ERROR;
        goto done;
    }
    char *zSql = iTag >= 0 ? sqlite3_mprintf("SELECT c.id, c.v FROM \"%w\".\"%w_postings\" t JOIN \"%w\".\"%w_cls\" c "
                                             "ON c.id = t.img WHERE t.tag = ?1 AND t.score >= ?2",
                                             p->zDb, p->zName, p->zDb, p->zName)
                           : sqlite3_mprintf("SELECT id, v FROM \"%w\".\"%w_cls\"", p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pScan, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) goto done;
    if (iTag >= 0) {
        sqlite3_bind_int(pScan, 1, iTag);
        sqlite3_bind_int64(pScan, 2, ram__bound_bits(thr, 0));
    }
    sqlite3_int64 nScan = 0;
    while (rc == SQLITE_OK && sqlite3_step(pScan) == SQLITE_ROW) {
        sqlite3_int64 img = sqlite3_column_int64(pScan, 0);
        size_t nv = (size_t)sqlite3_column_bytes(pScan, 1);
        if (nv != ram_cache_unit_size(p->nDim)) {
            /* a damaged row must not silently drop out of the results */
            ram__vtab_set_error(&p->base,
                                "ram_index: image %lld has a malformed prefilter vector (run integrity-check)", img);
            rc = SQLITE_CORRUPT_VTAB;
            break;
        }
        if (nHit == nAlloc) {
            int nNew = nAlloc ? 2 * nAlloc : 64;
            IndexHit *aNew = sqlite3_realloc64(aHit, sizeof(IndexHit) * (size_t)nNew);
            if (!aNew) {
                rc = SQLITE_NOMEM;
                break;
            }
            aHit = aNew, nAlloc = nNew;
        }
        /* the int8 rounding can take a cosine a little past 1 (by ~1e-3) */
        float c = ram_cache_prefilter(q, sqlite3_column_blob(pScan, 1), nv);
        aHit[nHit].img = img;
        aHit[nHit++].score = img == iSelf ? INFINITY : c > 1 ? 1 : c < -1 ? -1 : c; /* itself: first */
        if (iTag >= 0) STAT_ADD(postings_read, 1);
        if ((++nScan & 4095) == 0 && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
    }
    STAT_ADD(prefilter_scanned, nScan);
    if (rc == SQLITE_OK) {
        rc = sqlite3_finalize(pScan);
        if (rc) ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    }
    pScan = 0;
    if (rc == SQLITE_INTERRUPT) ram__vtab_set_error(&p->base, "interrupted");
    if (rc) goto done;
    if (nHit > 1) qsort(aHit, (size_t)nHit, sizeof(IndexHit), similar_cmp);
    if (nHit && aHit[0].score == INFINITY) aHit[0].score = 1;
    if (k > 0 && nHit > k) nHit = (int)k;
    *paHit = aHit;
    *pnHit = nHit;
    aHit = 0;
done:
    sqlite3_finalize(pScan);
    ram_cache_query_free(q);
    sqlite3_free(aCls);
    sqlite3_free(aHit);
    return rc;
}
