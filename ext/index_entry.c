/*
** index_entry.c — entries that travel: the hidden `entry` column of ram_index
** reads one image's stored embeddings as an entry blob (entry_blob.c), and an
** INSERT of (path, entry) stores them in another table without running the
** model, when the entry's model digest and preprocessing are the table's.
**
**     INSERT INTO main.photos(path, entry) SELECT path, entry FROM shard.photos;
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

int ram__index_entry_column(IndexVtab *p, sqlite3_context *ctx, sqlite3_int64 img)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT i.key, g.digest, g.prep, i.probs, t.tokens, c.v FROM \"%w\".\"%w_images\" i "
                                 "JOIN \"%w\".\"%w_gens\" g ON g.id = i.gen "
                                 "LEFT JOIN \"%w\".\"%w_tokens\" t ON t.id = i.id "
                                 "LEFT JOIN \"%w\".\"%w_cls\" c ON c.id = i.id WHERE i.id = ?1",
                                 p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_OK) sqlite3_bind_int64(s, 1, img);
    if (rc) return rc;
    if (sqlite3_step(s) != SQLITE_ROW) return sqlite3_finalize(s);
    struct ram_entry_blob v;
    memset(&v, 0, sizeof v);
    const char *zDigest = (const char *)sqlite3_column_text(s, 1), *zPrep = (const char *)sqlite3_column_text(s, 2);
    if (sqlite3_column_bytes(s, 0) != 16 || !zDigest || strlen(zDigest) != 32 || !zPrep || strlen(zPrep) > 32 ||
        ram__probs_count(sqlite3_column_blob(s, 3), sqlite3_column_bytes(s, 3), p->nClass) < 0 ||
        sqlite3_column_bytes(s, 4) != (int)ram_cache_packed_size(p->nTok, p->nDim) ||
        sqlite3_column_bytes(s, 5) != (int)ram_cache_unit_size(p->nDim)) {
        sqlite3_finalize(s);
        ram__vtab_set_error(&p->base, "ram_index: image %lld is damaged (run integrity-check)", img);
        sqlite3_result_error(ctx, p->base.zErrMsg, -1);
        return SQLITE_CORRUPT_VTAB;
    }
    memcpy(v.aKey, sqlite3_column_blob(s, 0), 16);
    memcpy(v.zDigest, zDigest, 33);
    memcpy(v.zPrep, zPrep, strlen(zPrep) + 1);
    v.rFloor = (float)p->rFloor;
    v.nTok = p->nTok, v.nDim = p->nDim, v.nClass = p->nClass;
    v.aProbs = sqlite3_column_blob(s, 3), v.nProbs = sqlite3_column_bytes(s, 3);
    v.aTokens = sqlite3_column_blob(s, 4), v.nTokens = sqlite3_column_bytes(s, 4);
    v.aUnit = sqlite3_column_blob(s, 5), v.nUnit = sqlite3_column_bytes(s, 5);
    sqlite3_uint64 n;
    unsigned char *a = ram__entry_blob_write(&v, &n);
    sqlite3_finalize(s);
    if (!a) return SQLITE_NOMEM;
    sqlite3_result_blob64(ctx, a, n, sqlite3_free);
    return SQLITE_OK;
}

int ram__index_entry_arg(IndexVtab *p, sqlite3_value *pVal, unsigned char aKey[16], IndexEmbedding *e)
{
    memset(e, 0, sizeof *e);
    const unsigned char *z = sqlite3_value_blob(pVal);
    sqlite3_int64 n = sqlite3_value_bytes(pVal);
    if (sqlite3_value_type(pVal) != SQLITE_BLOB || !ram__entry_blob_is(z, n)) {
        ram__vtab_set_error(&p->base,
                            "ram_index: entry must be a BLOB read from the entry column of a ram_index "
                            "table%s",
                            ram__embed_blob_is(z, n) ? " (this is a ram_embed() BLOB, which lacks the probabilities)"
                                                     : "");
        return SQLITE_MISMATCH;
    }
    struct ram_entry_blob v;
    char *zErr = 0;
    if (ram__entry_blob_parse(z, n, &v, &zErr)) {
        ram__vtab_set_error(&p->base, "ram_index: entry: %s", zErr ? zErr : "out of memory");
        sqlite3_free(zErr);
        return SQLITE_ERROR;
    }
    /* The table's generation, not the loaded model, decides: no model file
    ** is needed to store an entry. */
    if (strcmp(v.zDigest, p->zGenDigest) || strcmp(v.zPrep, p->zGenPrep)) {
        ram__vtab_set_error(&p->base,
                            "ram_index: the entry was made with another model or preprocessing (digest %.12s..., "
                            "%s) than %s uses (digest %.12s..., %s): insert the image bytes instead, or store the "
                            "entry in a table of that model",
                            v.zDigest, v.zPrep, p->zName, p->zGenDigest, p->zGenPrep);
        return SQLITE_ERROR;
    }
    if (v.nTok != p->nTok || v.nDim != p->nDim || v.nClass != p->nClass) {
        ram__vtab_set_error(&p->base, "ram_index: the entry's sizes are not the table's");
        return SQLITE_ERROR;
    }
    if (v.rFloor > p->rFloor * (1 + 1e-6)) {
        ram__vtab_set_error(&p->base,
                            "ram_index: the entry keeps probabilities from %g, the table from %g: the ones between "
                            "are lost; insert the image bytes instead",
                            v.rFloor, p->rFloor);
        return SQLITE_ERROR;
    }
    /* Keep the probabilities at or above this table's floor. */
    int cnt = (v.nProbs - 4) / 6, nKeep = 0;
    e->aProbs = sqlite3_malloc(v.nProbs);
    e->aUnit = sqlite3_malloc(v.nUnit);
    e->pOwnTokens = sqlite3_malloc(v.nTokens);
    if (!e->aProbs || !e->aUnit || !e->pOwnTokens) {
        ram__embedding_clear(e);
        return SQLITE_NOMEM;
    }
    memcpy(e->aProbs, v.aProbs, 4);
    for (int i = 0; i < cnt; i++)
        if (get_f32(v.aProbs + 4 + 6 * i + 2) >= p->rFloor)
            memcpy(e->aProbs + 4 + 6 * nKeep++, v.aProbs + 4 + 6 * i, 6);
    e->nProbs = 4 + 6 * nKeep;
    memcpy(e->aUnit, v.aUnit, (size_t)v.nUnit);
    e->nUnit = v.nUnit;
    memcpy(e->pOwnTokens, v.aTokens, (size_t)v.nTokens);
    e->aTokens = e->pOwnTokens;
    e->nTokens = v.nTokens;
    memcpy(aKey, v.aKey, 16);
    return SQLITE_OK;
}
