/*
** index_images.c — image entries of ram_index: one entry per distinct image (XXH3-128
** of its bytes), embedded once (or found in the journal), written to the
** shadow tables with its postings, and reference-counted by the rows.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ------------------------------------------------------------------ image entries */

/* Runs the model on one encoded image (or finds it in the journal). */
int ram__index_embed(IndexVtab *p, const unsigned char *aKey, const void *pBlob, int nBlob, IndexEmbedding *e)
{
    if (ram__journal_get(p, aKey, e)) {
        STAT_ADD(journal_hits, 1);
        return SQLITE_OK;
    }
    struct ram_error err;
    struct ram_image_params ip = ram_image_default_params();
    ip.exif_rotate = p->bExif;
    ip.max_pixels = (uint64_t)p->pConn->prep.mxPixels;
    ram_status st = ram_tag_image(p->pCtx->pState, pBlob, (size_t)nBlob, &ip, p->aEmbeds, p->aProbs, &err);
    if (st == RAM_ERR_INTERRUPTED) {
        ram__vtab_set_error(&p->base, "interrupted");
        return SQLITE_INTERRUPT;
    }
    if (st) {
        ram__vtab_set_error(&p->base, "ram_index: %s", err.msg);
        /* the image itself is refused (not memory, not an interrupt) */
        p->bImageError = st == RAM_ERR_IMAGE || st == RAM_ERR_TOO_BIG;
        return ram__rc(st);
    }
    STAT_ADD(inferences, 1);
    int rc = ram__embedding_build(p, p->aEmbeds, p->aProbs, e);
    if (rc == SQLITE_OK) ram__journal_put(p, aKey, e);
    return rc;
}

/* Postings of an image: inserted from (or deleted along) its probs blob. */
static int index_postings(IndexVtab *p, sqlite3_int64 img, const unsigned char *aProbs, int nProbs, int bInsert)
{
    int cnt = ram__probs_count(aProbs, nProbs, p->nClass);
    if (cnt < 0 && !bInsert) {
        /* A damaged row must still be deletable: drop its postings by image
        ** (a scan of the postings, for this rare case only). */
        return ram__index_exec(p->db, &p->base.zErrMsg, "DELETE FROM \"%w\".\"%w_postings\" WHERE img = %lld", p->zDb,
                               p->zName, img);
    }
    if (cnt < 0) {
        ram__vtab_set_error(&p->base, "ram_index: image %lld has a malformed probs blob", img);
        return SQLITE_CORRUPT_VTAB;
    }
    for (int i = 0; i < cnt; i++) {
        sqlite3_stmt *s;
        int rc = ram__index_stmt(p, bInsert ? STMT_POSTING_INSERT : STMT_POSTING_DELETE, &s);
        if (rc) return rc;
        sqlite3_bind_int(s, 1, (int)get_u16(aProbs + 4 + 6 * i));
        sqlite3_bind_int64(s, 2, img);
        sqlite3_bind_int64(s, 3, prob_bits(get_f32(aProbs + 4 + 6 * i + 2))); /* delete: (tag, score, img) is the key */
        rc = ram__index_step_done(p, s);
        if (rc) return rc;
    }
    return SQLITE_OK;
}

/* Deletes the postings of image img as recorded in its current probs blob. */
static int index_postings_drop(IndexVtab *p, sqlite3_int64 img)
{
    sqlite3_stmt *s;
    int rc = ram__index_stmt(p, STMT_IMAGE_PROBS, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    if (sqlite3_step(s) != SQLITE_ROW) return sqlite3_reset(s);
    int n = sqlite3_column_bytes(s, 0);
    unsigned char *a = sqlite3_malloc(n ? n : 1);
    if (!a) return sqlite3_reset(s), SQLITE_NOMEM;
    if (n) memcpy(a, sqlite3_column_blob(s, 0), (size_t)n);
    sqlite3_reset(s);
    rc = index_postings(p, img, a, n, 0);
    sqlite3_free(a);
    return rc;
}

/* Writes e for a new image (iImg 0: INSERT, *pImg receives the id) or over a
** stale one (iImg > 0). */
int ram__index_write_image(IndexVtab *p, sqlite3_int64 iImg, const unsigned char *aKey, const IndexEmbedding *e,
                           const void *pBlob, int nBlob, sqlite3_int64 *pImg)
{
    sqlite3_stmt *s;
    int rc;
    if (iImg) {
        rc = index_postings_drop(p, iImg);
        if (rc) return rc;
        rc = ram__index_stmt(p, STMT_IMAGE_REWRITE, &s);
        if (rc) return rc;
        sqlite3_bind_int64(s, 1, iImg);
    } else {
        rc = ram__index_stmt(p, STMT_IMAGE_INSERT, &s);
        if (rc) return rc;
        sqlite3_bind_blob(s, 1, aKey, 16, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 2, p->iGen);
    sqlite3_bind_blob(s, 5, e->aProbs, e->nProbs, SQLITE_STATIC);
    rc = ram__index_step_done(p, s);
    if (rc) return rc;
    if (!iImg) iImg = sqlite3_last_insert_rowid(p->db);
    /* Tokens in their own table: a ~75 KB row keeps a ~1.2 KB part on its
    ** b-tree page, so three share a page (with the small columns beside
    ** them, one row per page and ~2 KB lost per image). */
    rc = ram__index_stmt(p, STMT_TOKENS_UPSERT, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, iImg);
    sqlite3_bind_blob(s, 2, e->aTokens, e->nTokens, SQLITE_STATIC);
    rc = ram__index_step_done(p, s);
    if (rc) return rc;
    ram__journal_note(p, aKey);
    rc = index_postings(p, iImg, e->aProbs, e->nProbs, 1);
    if (rc) return rc;
    rc = ram__index_stmt(p, STMT_CLS_UPSERT, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, iImg);
    sqlite3_bind_blob(s, 2, e->aUnit, e->nUnit, SQLITE_STATIC);
    rc = ram__index_step_done(p, s);
    if (rc == SQLITE_OK) rc = ram__index_code_put(p, iImg, e->aUnit, e->nUnit);
    if (rc) return rc;
    if (p->bStore && pBlob) {
        rc = ram__index_stmt(p, STMT_BLOB_UPSERT, &s);
        if (rc) return rc;
        sqlite3_bind_int64(s, 1, iImg);
        sqlite3_bind_blob(s, 2, pBlob, nBlob, SQLITE_STATIC);
        rc = ram__index_step_done(p, s);
        if (rc) return rc;
    }
    *pImg = iImg;
    return SQLITE_OK;
}

/* Adds delta to an image's reference count; at zero the image goes. */
int ram__index_image_ref(IndexVtab *p, sqlite3_int64 img, int delta)
{
    sqlite3_stmt *s;
    int rc = ram__index_stmt(p, STMT_IMAGE_REF, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    sqlite3_bind_int(s, 2, delta);
    sqlite3_int64 nref = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    rc = ram__index_step_done(p, s);
    if (rc) return rc;
    if (nref > 0) return SQLITE_OK;
    if (nref < 0) {
        ram__vtab_set_error(&p->base, "ram_index: a file points to missing image %lld", img);
        return SQLITE_CORRUPT_VTAB;
    }
    rc = index_postings_drop(p, img);
    if (rc == SQLITE_OK) rc = ram__index_code_delete(p, img);
    static const int aDel[] = {STMT_CLS_DELETE, STMT_BLOB_DELETE, STMT_TOKENS_DELETE, STMT_IMAGE_DELETE};
    for (int i = 0; i < 4 && rc == SQLITE_OK; i++) {
        rc = ram__index_stmt(p, aDel[i], &s);
        if (rc) break;
        sqlite3_bind_int64(s, 1, img);
        rc = ram__index_step_done(p, s);
    }
    return rc;
}

/* The image entry for these bytes: an existing current one gains a reference,
** a stale one is re-embedded in place, a new one is embedded. With pGiven
** (an entry's embeddings, taken over and cleared) nothing is embedded. */
int ram__index_acquire_image(IndexVtab *p, const unsigned char *aKey, const void *pBlob, int nBlob,
                             IndexEmbedding *pGiven, sqlite3_int64 *pImg)
{
    sqlite3_stmt *s;
    int rc = ram__index_stmt(p, STMT_IMAGE_BY_KEY, &s);
    if (rc) return rc;
    sqlite3_bind_blob(s, 1, aKey, 16, SQLITE_STATIC);
    sqlite3_int64 img = 0, gen = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        img = sqlite3_column_int64(s, 0);
        gen = sqlite3_column_int64(s, 1);
    }
    rc = sqlite3_reset(s);
    if (rc) return rc;
    if (img && gen == p->iGen) {
        STAT_ADD(reused, 1);
        *pImg = img;
        return ram__index_image_ref(p, img, 1);
    }
    IndexEmbedding e;
    if (pGiven) {
        e = *pGiven; /* a stored entry that travelled (index_entry.c): no inference */
        memset(pGiven, 0, sizeof *pGiven);
    } else {
        rc = ram__index_embed(p, aKey, pBlob, nBlob, &e);
        if (rc) return rc;
    }
    rc = ram__index_write_image(p, img, aKey, &e, pBlob, nBlob, pImg);
    ram__embedding_clear(&e);
    if (rc == SQLITE_OK && img) rc = ram__index_image_ref(p, img, 1);
    return rc;
}

void ram__index_hash(const void *pBlob, int nBlob, unsigned char aKey[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(pBlob, (size_t)nBlob));
    memcpy(aKey, c.digest, 16);
    STAT_ADD(hashed, 1);
}
