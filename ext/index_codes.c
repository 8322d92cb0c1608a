/*
** index_codes.c — schema 4 of ram_index: the 1-bit sign codes of the prefilter
** cascade (photos_codes) and the postings in score order, and the upgrade of
** a schema-3 table to it. Every part of this schema change lives here.
**
**     SELECT path, score FROM photos
**       WHERE photos MATCH 'a dog' AND k = 20 AND prefilter = 300;  -- the cascade
**     SELECT path, score FROM photos
**       WHERE tag = 'dog' ORDER BY score DESC LIMIT 20;            -- ~20 postings read
**     INSERT INTO photos(photos) VALUES('cascade=4000');   -- 1-bit stage survivors
**     INSERT INTO photos(photos) VALUES('upgrade');        -- a schema-3 table, now
**
** HOW IT WORKS
**
** photos_codes(id INTEGER PRIMARY KEY, c BLOB) holds per image the sign bits
** of its stored unit CLS (core/cache_score.h: ram_cache_unit_code), 64 bytes at
** 512 dimensions: derived from photos_cls.v, so it is written beside it and
** can be rebuilt from it without the model. MATCH with prefilter = N scans
** the codes (popcount of XOR with the query's codes), keeps the `cascade`
** closest (config key, at least N), computes the int8 cosine of those only
** and the exact score of the N best (index_match.c).
**
** Schema 4 also orders photos_postings by (tag, score, img) (primary key,
** WITHOUT ROWID), so that tag = ? ORDER BY score DESC reads the postings best
** first and stops with the LIMIT. A schema-3 table (made before) keeps its
** (tag, img) key and gains the index photos_postings_score(tag, score) when
** upgraded: by the 'upgrade' command, or at its first write. Until then its
** queries take the schema-3 paths (the int8 prefilter reads every image, a
** sorted tag query reads every posting of the tag); nothing else differs.
** The upgrade sets the version to 4, so that a build that does not keep the
** codes refuses the file instead of letting them fall out of step.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include "cascade_refit.h"

/* The code of one image from its unit vector, written beside it. */
int ram__index_code_put(IndexVtab *p, sqlite3_int64 img, const unsigned char *aUnit, int nUnit)
{
    unsigned char aCode[RAM_INDEX_MAX_CODE];
    struct ram_error err;
    sqlite3_stmt *s;
    p->codes.nWrites++; /* the copies in memory are out of date (even if this is rolled back) */
    if (p->iSchema < 4) return SQLITE_OK;
    if (ram_cache_code_size(p->nDim) > sizeof aCode ||
        ram_cache_unit_code(aUnit, (size_t)nUnit, p->nDim, aCode, &err) != RAM_OK) {
        ram__vtab_set_error(&p->base, "ram_index: image %lld has a malformed prefilter vector", img);
        return SQLITE_CORRUPT_VTAB;
    }
    int rc = ram__index_stmt(p, STMT_CODE_UPSERT, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    sqlite3_bind_blob(s, 2, aCode, (int)ram_cache_code_size(p->nDim), SQLITE_STATIC);
    return ram__index_step_done(p, s);
}

int ram__index_code_delete(IndexVtab *p, sqlite3_int64 img)
{
    sqlite3_stmt *s;
    p->codes.nWrites++;
    if (p->iSchema < 4) return SQLITE_OK;
    int rc = ram__index_stmt(p, STMT_CODE_DELETE, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    return ram__index_step_done(p, s);
}

/* The shadow table of the codes (schema 4, at CREATE and by the upgrade). */
int ram__index_codes_create(sqlite3 *db, const char *zDb, const char *zName, char **pzErr)
{
    return ram__index_exec(db, pzErr, "CREATE TABLE \"%w\".\"%w_codes\"(id INTEGER PRIMARY KEY, c BLOB NOT NULL)", zDb,
                           zName);
}

/* Schema 3 -> 4: the codes from the stored unit vectors, the postings index,
** the version. Runs in the caller's statement transaction, so a failure
** leaves the table at schema 3. */
int ram__index_upgrade(IndexVtab *p)
{
    sqlite3_stmt *s = 0;
    if (p->iSchema >= 4) return SQLITE_OK;
    int rc = ram__index_codes_create(p->db, p->zDb, p->zName, &p->base.zErrMsg);
    if (rc == SQLITE_OK)
        rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "CREATE INDEX \"%w\".\"%w_postings_score\" ON \"%w_postings\"(tag, score)", p->zDb,
                             p->zName, p->zName);
    if (rc) return rc;
    p->iSchema = 4;
    char *zSql = sqlite3_mprintf("SELECT id, v FROM \"%w\".\"%w_cls\"", p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        rc = ram__index_code_put(p, sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1), sqlite3_column_bytes(s, 1));
    int rc2 = sqlite3_finalize(s);
    if (rc == SQLITE_OK && rc2) {
        rc = rc2;
        ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    }
    if (rc == SQLITE_OK)
        rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "INSERT OR REPLACE INTO \"%w\".\"%w_config\"(key, value) VALUES('version', 4)", p->zDb,
                             p->zName);
    if (rc) {
        p->iSchema = 3;
        p->bReloadConfig = 1;
    }
    return rc;
}

/* 'cascade=N': the survivors of the 1-bit stage (0: no 1-bit stage). */
int ram__index_cmd_cascade(IndexVtab *p, const char *zVal)
{
    sqlite3_int64 n = 0;
    const char *z = zVal;
    while (*z >= '0' && *z <= '9' && n < ((sqlite3_int64)1 << 40)) n = n * 10 + (*z++ - '0');
    if (!*zVal || *z) {
        ram__vtab_set_error(&p->base,
                            "ram_index: cascade must be a count of images (0 or more; 0 reads the int8 "
                            "prefilter vector of every image), got '%s'",
                            zVal);
        return SQLITE_ERROR;
    }
    int rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "INSERT OR REPLACE INTO \"%w\".\"%w_config\"(key, value) VALUES('cascade', %lld)", p->zDb,
                             p->zName, n);
    if (rc == SQLITE_OK) p->nCascade = n;
    return rc;
}

/* ------------------------------------------------------------------ the codes in memory */

void ram__index_codes_free(IndexVtab *p)
{
    sqlite3_free(p->codes.aId), sqlite3_free(p->codes.aCode);
    p->codes.aId = 0, p->codes.aCode = 0;
    p->codes.n = 0, p->codes.bValid = 0;
}

/* The 1-bit stage reads every code: from SQLite that is a b-tree step per
** picture (about 0.26 s per million, measured), from memory a popcount. The
** copy is per table and connection, read again after any write of this
** connection to the codes (nWrites) or any commit to the file by any
** connection (SQLITE_FCNTL_DATA_VERSION). Above INDEX_CODE_CACHE_BYTES
** nothing is kept and *pn is -1: the caller reads the table. */
int ram__index_codes_get(IndexVtab *p, const sqlite3_int64 **paId, const unsigned char **paCode, sqlite3_int64 *pn)
{
    size_t nc = ram_cache_code_size(p->nDim);
    unsigned int uVersion = 0;
    sqlite3_file_control(p->db, p->zDb, SQLITE_FCNTL_DATA_VERSION, &uVersion);
    if (!(p->codes.bValid && p->codes.nWritesAt == p->codes.nWrites && p->codes.uVersion == uVersion)) {
        sqlite3_stmt *s = 0;
        sqlite3_int64 nAlloc = 0, n = 0;
        int bTooLarge = 0;
        ram__index_codes_free(p);
        char *zSql = sqlite3_mprintf("SELECT id, c FROM \"%w\".\"%w_codes\"", p->zDb, p->zName);
        int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
            const unsigned char *c = sqlite3_column_blob(s, 1);
            if ((size_t)sqlite3_column_bytes(s, 1) != nc || !c) {
                ram__vtab_set_error(&p->base, "ram_index: image %lld has a malformed code (run integrity-check)",
                                    sqlite3_column_int64(s, 0));
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            if (n == nAlloc) {
                sqlite3_int64 nNew = nAlloc ? 2 * nAlloc : 4096;
                if ((sqlite3_uint64)nNew * (nc + 8) > INDEX_CODE_CACHE_BYTES) nNew = nAlloc + 65536;
                if ((sqlite3_uint64)nNew * (nc + 8) > INDEX_CODE_CACHE_BYTES) {
                    bTooLarge = 1; /* the caller reads the table */
                    break;
                }
                sqlite3_int64 *aId = sqlite3_realloc64(p->codes.aId, sizeof(sqlite3_int64) * (sqlite3_uint64)nNew);
                if (aId) p->codes.aId = aId;
                unsigned char *aCode = aId ? sqlite3_realloc64(p->codes.aCode, nc * (sqlite3_uint64)nNew) : 0;
                if (aCode) p->codes.aCode = aCode;
                if (!aId || !aCode) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                nAlloc = nNew;
            }
            p->codes.aId[n] = sqlite3_column_int64(s, 0);
            memcpy(p->codes.aCode + nc * (size_t)n, c, nc);
            n++;
            if ((n & 4095) == 0 && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
        }
        STAT_ADD(codes_loaded, n);
        int rc2 = sqlite3_finalize(s);
        if (rc == SQLITE_OK && rc2) {
            rc = rc2;
            ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
        }
        if (rc || bTooLarge) {
            ram__index_codes_free(p);
            *pn = -1;
            return rc;
        }
        p->codes.n = n;
        p->codes.nWritesAt = p->codes.nWrites;
        p->codes.uVersion = uVersion;
        p->codes.bValid = 1;
    }
    *paId = p->codes.aId;
    *paCode = p->codes.aCode;
    *pn = p->codes.n;
    return SQLITE_OK;
}

/* ------------------------------------------------------------------ the 1-bit stage */

/* The nKeep images whose codes are closest to q's (Hamming distance, the
** least over q's nRow rows), *paHit (sqlite3_free) in id order with score
** minus the distance; ties at the cut go to the lower ids. Distances are
** small integers, so the cut comes from their histogram: one pass, no
** heap. Any query the scorer takes works (texts, a picture's CLS). */
int ram__index_code_candidates(IndexVtab *p, struct ram_cache_query *q, int nRow, sqlite3_int64 nKeep, IndexHit **paHit,
                               int *pnHit)
{
    size_t nc = ram_cache_code_size(p->nDim);
    const sqlite3_int64 *aId = 0;
    const unsigned char *aCode = 0;
    sqlite3_int64 n = 0, *aOwnId = 0;
    unsigned char *aOwnCode = 0, *aQ = 0;
    int *aDist = 0, *aHist = 0, rc;
    IndexHit *aHit = 0;
    *paHit = 0;
    *pnHit = 0;
    aQ = sqlite3_malloc64(nc * (size_t)nRow);
    if (!aQ) return SQLITE_NOMEM;
    if (ram_cache_query_codes(q, aQ, nc * (size_t)nRow) != nRow) {
        sqlite3_free(aQ);
        ram__vtab_set_error(&p->base, "ram_index: MATCH: the query has another number of rows than its texts");
        return SQLITE_ERROR;
    }
    rc = ram__index_codes_get(p, &aId, &aCode, &n);
    if (rc == SQLITE_OK && n < 0) {
        /* too many to keep: read them for this query only */
        sqlite3_stmt *s = 0;
        sqlite3_int64 nAlloc = 0;
        char *zSql = sqlite3_mprintf("SELECT id, c FROM \"%w\".\"%w_codes\"", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        n = 0;
        while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
            if ((size_t)sqlite3_column_bytes(s, 1) != nc) {
                ram__vtab_set_error(&p->base, "ram_index: image %lld has a malformed code (run integrity-check)",
                                    sqlite3_column_int64(s, 0));
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            if (n == nAlloc) {
                nAlloc = nAlloc ? 2 * nAlloc : 65536;
                sqlite3_int64 *a1 = sqlite3_realloc64(aOwnId, sizeof(sqlite3_int64) * (sqlite3_uint64)nAlloc);
                if (a1) aOwnId = a1;
                unsigned char *a2 = a1 ? sqlite3_realloc64(aOwnCode, nc * (sqlite3_uint64)nAlloc) : 0;
                if (a2) aOwnCode = a2;
                if (!a1 || !a2) {
                    rc = SQLITE_NOMEM;
                    break;
                }
            }
            aOwnId[n] = sqlite3_column_int64(s, 0);
            memcpy(aOwnCode + nc * (size_t)n, sqlite3_column_blob(s, 1), nc);
            n++;
            if ((n & 4095) == 0 && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
        }
        int rc2 = sqlite3_finalize(s);
        if (rc == SQLITE_OK && rc2) rc = rc2, ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
        STAT_ADD(codes_loaded, n);
        aId = aOwnId, aCode = aOwnCode;
    }
    if (rc) goto done;
    aDist = sqlite3_malloc64(sizeof(int) * (size_t)(n ? n : 1));
    aHist = sqlite3_malloc64(sizeof(int) * ((size_t)p->nDim + 1));
    if (!aDist || !aHist) goto nomem;
    memset(aHist, 0, sizeof(int) * ((size_t)p->nDim + 1));
    for (sqlite3_int64 i = 0; i < n; i++) {
        const unsigned char *c = aCode + nc * (size_t)i;
        int best = ram_cache_code_distance(aQ, c, nc);
        for (int r = 1; r < nRow; r++) {
            int d = ram_cache_code_distance(aQ + nc * (size_t)r, c, nc);
            best = d < best ? d : best;
        }
        aDist[i] = best;
        aHist[best]++;
    }
    STAT_ADD(codes_scanned, n);
    /* the cut: every distance under it, and the first ones at it */
    sqlite3_int64 nWant = nKeep < n ? nKeep : n, nBelow = 0;
    int cut = 0;
    while (cut < p->nDim && nBelow + aHist[cut] < nWant) nBelow += aHist[cut++];
    sqlite3_int64 nAtCut = nWant - nBelow;
    aHit = sqlite3_malloc64(sizeof(IndexHit) * (size_t)(nWant ? nWant : 1));
    if (!aHit) goto nomem;
    int nHit = 0;
    for (sqlite3_int64 i = 0; i < n && nHit < nWant; i++)
        if (aDist[i] < cut || (aDist[i] == cut && nAtCut-- > 0)) {
            aHit[nHit].img = aId[i];
            aHit[nHit++].score = -(float)aDist[i];
        }
    *paHit = aHit;
    *pnHit = nHit;
    aHit = 0;
    goto done;
nomem:
    rc = SQLITE_NOMEM;
done:
    sqlite3_free(aQ), sqlite3_free(aDist), sqlite3_free(aHist), sqlite3_free(aHit);
    sqlite3_free(aOwnId), sqlite3_free(aOwnCode);
    return rc;
}

/* ------------------------------------------------------------------ the refit cascade's copy */

/* 'refit=P': MATCH with prefilter = N runs the refit cascade on P principal
** axes (0: the cascade of the codes). */
int ram__index_cmd_refit(IndexVtab *p, const char *zVal)
{
    int n = 0;
    const char *z = zVal;
    while (*z >= '0' && *z <= '9' && n <= INDEX_REFIT_MAX_AXES) n = n * 10 + (*z++ - '0');
    if (!*zVal || *z || n > INDEX_REFIT_MAX_AXES || n > p->nDim) {
        ram__vtab_set_error(&p->base,
                            "ram_index: refit must be a count of axes from 0 (off) to %d and at most the "
                            "embedding width, got '%s'",
                            p->nDim < INDEX_REFIT_MAX_AXES ? p->nDim : INDEX_REFIT_MAX_AXES, zVal);
        return SQLITE_ERROR;
    }
    int rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "INSERT OR REPLACE INTO \"%w\".\"%w_config\"(key, value) VALUES('refit', %d)", p->zDb,
                             p->zName, n);
    if (rc == SQLITE_OK && n != p->nRefit) ram__index_refit_free(p); /* refit=0 keeps nothing alive */
    if (rc == SQLITE_OK) p->nRefit = n;
    return rc;
}

void ram__index_refit_free(IndexVtab *p)
{
    sqlite3_free(p->refit.aId), sqlite3_free(p->refit.aQ), sqlite3_free(p->refit.aScale);
    memset(&p->refit, 0, sizeof p->refit);
}

#define REFIT_SAMPLE 4096
#define REFIT_BLOCK 256

/* The axes from an even sample of the ids (REFIT_SAMPLE seeks, not a
** scan), and each axis' int8 step: its largest sampled |coordinate| x 1.25
** / 127 (a coordinate beyond is clamped). */
static int refit_axes(IndexVtab *p, struct IndexRefitCache *r)
{
    int dim = p->nDim, nAx = r->nAxes, m = 0, rc;
    sqlite3_int64 lo = 0, hi = -1, last = 0;
    sqlite3_stmt *s = 0;
    struct ram_error err;
    float *x = sqlite3_malloc64(sizeof(float) * (size_t)REFIT_SAMPLE * dim);
    if (!x) return SQLITE_NOMEM;
    char *zSql = sqlite3_mprintf("SELECT min(id), max(id) FROM \"%w\".\"%w_cls\"", p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_OK) {
        int rcStep = sqlite3_step(s);
        if (rcStep == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
            lo = sqlite3_column_int64(s, 0), hi = sqlite3_column_int64(s, 1);
        else if (rcStep != SQLITE_ROW) /* an interrupt or I/O error, not an empty table */
            rc = rcStep;
    }
    if (rc != SQLITE_OK && rc != SQLITE_NOMEM) ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    sqlite3_finalize(s);
    s = 0;
    zSql = sqlite3_mprintf("SELECT id, v FROM \"%w\".\"%w_cls\" WHERE id >= ?1 ORDER BY id LIMIT 1", p->zDb, p->zName);
    if (rc == SQLITE_OK) rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    for (int t = 0; rc == SQLITE_OK && hi >= lo && t < REFIT_SAMPLE; t++) {
        sqlite3_bind_int64(s, 1, lo + (sqlite3_int64)((double)(hi - lo + 1) * t / REFIT_SAMPLE));
        int rcStep = sqlite3_step(s);
        if (rcStep != SQLITE_ROW && rcStep != SQLITE_DONE) {
            rc = rcStep;
            ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
        } else if (rcStep == SQLITE_ROW && (m == 0 || sqlite3_column_int64(s, 0) != last)) {
            last = sqlite3_column_int64(s, 0);
            if (ram_cache_unit_floats(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), dim,
                                      x + (size_t)m * dim) == RAM_OK)
                m++;
            else {
                ram__vtab_set_error(&p->base,
                                    "ram_index: image %lld has a malformed prefilter vector (run "
                                    "integrity-check)",
                                    last);
                rc = SQLITE_CORRUPT_VTAB;
            }
        }
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    ram_status st =
        rc == SQLITE_OK && m > 0 ? ram_refit_axes(x, m, dim, nAx, r->aMean, r->aAxes, r->aScale, &err) : RAM_OK;
    if (st) {
        ram__vtab_set_error(&p->base, "ram_index: %s", err.msg);
        rc = st == RAM_ERR_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
    }
    sqlite3_free(x);
    return rc;
}

/* Every stored unit CLS on the axes, a block at a time (one product per
** block). */
static int refit_project(IndexVtab *p, struct IndexRefitCache *r, int *pbTooLarge)
{
    int dim = p->nDim, nAx = r->nAxes, nBlk = 0, rc;
    sqlite3_int64 nAlloc = 0;
    sqlite3_stmt *s = 0;
    struct ram_error err;
    float *blk = sqlite3_malloc64(sizeof(float) * (size_t)REFIT_BLOCK * dim);
    if (!blk) return SQLITE_NOMEM;
    /* ORDER BY id: aId is in id order (the rounds' positions, the sorted token reads); free on the rowid */
    char *zSql = sqlite3_mprintf("SELECT id, v FROM \"%w\".\"%w_cls\" ORDER BY id", p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    for (;;) {
        int bRow = rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW;
        if (bRow) {
            sqlite3_int64 id = sqlite3_column_int64(s, 0);
            if (r->n + nBlk == nAlloc) {
                sqlite3_int64 nNew = nAlloc ? 2 * nAlloc : 4096;
                if ((sqlite3_uint64)nNew * (nAx + 8) > INDEX_REFIT_CACHE_BYTES) nNew = nAlloc + 65536;
                if ((sqlite3_uint64)nNew * (nAx + 8) > INDEX_REFIT_CACHE_BYTES) {
                    *pbTooLarge = 1;
                    break;
                }
                sqlite3_int64 *aId = sqlite3_realloc64(r->aId, sizeof(sqlite3_int64) * (sqlite3_uint64)nNew);
                if (aId) r->aId = aId;
                int8_t *aQ = aId ? sqlite3_realloc64(r->aQ, (sqlite3_uint64)nAx * nNew) : 0;
                if (aQ) r->aQ = aQ;
                if (!aId || !aQ) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                nAlloc = nNew;
            }
            if (ram_cache_unit_floats(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), dim,
                                      blk + (size_t)nBlk * dim) != RAM_OK) {
                ram__vtab_set_error(&p->base,
                                    "ram_index: image %lld has a malformed prefilter vector (run integrity-check)", id);
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            r->aId[r->n + nBlk++] = id;
        }
        if (nBlk == REFIT_BLOCK || (!bRow && nBlk)) {
            ram_status st = ram_refit_project_q8(blk, nBlk, dim, r->aMean, r->aAxes, r->aScale, nAx,
                                                 r->aQ + (size_t)r->n * nAx, &err);
            if (st) {
                ram__vtab_set_error(&p->base, "ram_index: %s", err.msg);
                rc = st == RAM_ERR_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
                break;
            }
            r->n += nBlk;
            nBlk = 0;
            if (ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
        }
        if (!bRow || rc) break;
    }
    int rc2 = sqlite3_finalize(s);
    if (rc == SQLITE_OK && rc2 && !*pbTooLarge) {
        rc = rc2;
        ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    }
    sqlite3_free(blk);
    return rc;
}

/* Made again (axes and all) when this connection wrote a CLS or any
** connection committed to the file since: the axes follow the table's
** rows without being stored (0 bytes per picture on disk). A table found
** too large is remembered as such (bTooLarge) until the same change, so
** that its queries do not build and drop the copy each time. */
int ram__index_refit_get(IndexVtab *p, const struct IndexRefitCache **pr)
{
    unsigned int uVersion = 0;
    struct IndexRefitCache *r = &p->refit;
    *pr = 0;
    sqlite3_file_control(p->db, p->zDb, SQLITE_FCNTL_DATA_VERSION, &uVersion);
    int nAx = p->nRefit < p->nDim ? p->nRefit : p->nDim, bTooLarge = 0, rc;
    if ((r->bValid || r->bTooLarge) && r->nWritesAt == p->codes.nWrites && r->uVersion == uVersion && r->nAxes == nAx) {
        *pr = r->bValid ? r : 0;
        return SQLITE_OK;
    }
    ram__index_refit_free(p);
    if (nAx < 1) return SQLITE_OK;
    r->nAxes = nAx;
    size_t nFloat = (size_t)nAx + p->nDim + (size_t)nAx * p->nDim;
    r->aScale = sqlite3_malloc64(sizeof(float) * nFloat);
    if (!r->aScale) return SQLITE_NOMEM;
    memset(r->aScale, 0, sizeof(float) * nFloat); /* an empty sample leaves them unset: coordinates 0 */
    for (int j = 0; j < nAx; j++) r->aScale[j] = 1;
    r->aMean = r->aScale + nAx;
    r->aAxes = r->aMean + p->nDim;
    rc = refit_axes(p, r);
    if (rc == SQLITE_OK) rc = refit_project(p, r, &bTooLarge);
    if (rc || bTooLarge) {
        ram__index_refit_free(p);
        if (rc == SQLITE_OK) { /* too large: remembered, nothing kept */
            r->nAxes = nAx;
            r->nWritesAt = p->codes.nWrites;
            r->uVersion = uVersion;
            r->bTooLarge = 1;
        }
        return rc;
    }
    r->nWritesAt = p->codes.nWrites;
    r->uVersion = uVersion;
    r->bValid = 1;
    *pr = r;
    return SQLITE_OK;
}
