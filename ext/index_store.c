/*
** index_store.c — the shared floor of ram_index: statement cache and error helpers, the
** options and generation read from <table>_config, the table's model
** context (its own model=, or the connection's) and thresholds, and the
** stored form of one image's embeddings (int8 tokens, unit CLS, probs).
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <float.h>
#include <math.h>
#include <stdarg.h>

/* ------------------------------------------------------------------ stats */

/* Process-wide counters, read by ram_index_stats() (tests use them to prove
** that duplicates are embedded once and that tag queries do not scan). */
struct ram_index_stats ram__index_stats;

const char *const ram__index_col_names[N_COL] = {
    "path",         "image",    "tags",      "score", "tag",     "k",     "prefilter",    "key",
    "probs",        "cls",      "tags_zh",   "stale", "entry",   "taken", "taken_source", "camera_make",
    "camera_model", "latitude", "longitude", "mtime", "caption", 0};

/* ------------------------------------------------------------------ helpers */

void ram__vtab_set_error(sqlite3_vtab *pVtab, const char *zFmt, ...)
{
    va_list ap;
    sqlite3_free(pVtab->zErrMsg);
    va_start(ap, zFmt);
    pVtab->zErrMsg = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
}

/* Runs a formatted statement (no rows expected). */
int ram__index_exec(sqlite3 *db, char **pzErr, const char *zFmt, ...)
{
    va_list ap;
    va_start(ap, zFmt);
    char *zSql = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
    if (!zSql) return SQLITE_NOMEM;
    char *zErr = 0;
    int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
    sqlite3_free(zSql);
    if (rc && pzErr) {
        sqlite3_free(*pzErr);
        *pzErr = sqlite3_mprintf("ram_index: %s", zErr ? zErr : sqlite3_errstr(rc));
    }
    sqlite3_free(zErr);
    return rc;
}

static const char *const azStmtSql[N_STMT] = {
    [STMT_FILE_BY_PATH] = "SELECT f.id, f.img, i.key, i.gen FROM \"%w\".\"%w_files\" f "
                          "LEFT JOIN \"%w\".\"%w_images\" i ON i.id = f.img WHERE f.path = ?1",
    [STMT_IMAGE_BY_KEY] = "SELECT id, gen FROM \"%w\".\"%w_images\" WHERE key = ?1",
    [STMT_IMAGE_REF] = "UPDATE \"%w\".\"%w_images\" SET nref = nref + ?2 WHERE id = ?1 RETURNING nref",
    [STMT_IMAGE_INSERT] = "INSERT INTO \"%w\".\"%w_images\"(key, gen, nref, probs) VALUES(?1, ?2, 1, ?5)",
    [STMT_IMAGE_REWRITE] = "UPDATE \"%w\".\"%w_images\" SET gen = ?2, probs = ?5 WHERE id = ?1",
    [STMT_TOKENS_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_tokens\"(id, tokens) VALUES(?1, ?2)",
    [STMT_TOKENS_DELETE] = "DELETE FROM \"%w\".\"%w_tokens\" WHERE id = ?1",
    [STMT_IMAGE_PROBS] = "SELECT probs FROM \"%w\".\"%w_images\" WHERE id = ?1",
    [STMT_IMAGE_DELETE] = "DELETE FROM \"%w\".\"%w_images\" WHERE id = ?1",
    [STMT_POSTING_INSERT] = "INSERT INTO \"%w\".\"%w_postings\"(tag, img, score) VALUES(?1, ?2, ?3)",
    [STMT_POSTING_DELETE] = "DELETE FROM \"%w\".\"%w_postings\" WHERE tag = ?1 AND img = ?2 AND score = ?3",
    [STMT_CLS_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_cls\"(id, v) VALUES(?1, ?2)",
    [STMT_CLS_DELETE] = "DELETE FROM \"%w\".\"%w_cls\" WHERE id = ?1",
    [STMT_BLOB_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_blobs\"(id, data) VALUES(?1, ?2)",
    [STMT_BLOB_DELETE] = "DELETE FROM \"%w\".\"%w_blobs\" WHERE id = ?1",
    [STMT_FILE_INSERT] = "INSERT INTO \"%w\".\"%w_files\"(id, path, img) VALUES(?1, ?2, ?3)",
    [STMT_FILE_SET_IMG] = "UPDATE \"%w\".\"%w_files\" SET img = ?2 WHERE id = ?1",
    [STMT_FILE_SET_PATH] = "UPDATE \"%w\".\"%w_files\" SET path = ?2 WHERE id = ?1",
    [STMT_FILE_GET] = "SELECT img, path FROM \"%w\".\"%w_files\" WHERE id = ?1",
    [STMT_FILE_DELETE] = "DELETE FROM \"%w\".\"%w_files\" WHERE id = ?1",
    [STMT_STALE_COUNT] = "SELECT count(*) FROM \"%w\".\"%w_images\" WHERE gen < ?1 OR gen > ?1",
    [STMT_TOKENS] = "SELECT tokens FROM \"%w\".\"%w_tokens\" WHERE id = ?1",
    [STMT_CODE_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_codes\"(id, c) VALUES(?1, ?2)",
    [STMT_CODE_DELETE] = "DELETE FROM \"%w\".\"%w_codes\" WHERE id = ?1",
};

/* The cached statement i, reset and unbound, prepared on first use. */
int ram__index_stmt(IndexVtab *p, int i, sqlite3_stmt **ppStmt)
{
    if (!p->aStmt[i]) {
        char *zSql = sqlite3_mprintf(azStmtSql[i], p->zDb, p->zName, p->zDb, p->zName);
        if (!zSql) return SQLITE_NOMEM;
        int rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p->aStmt[i], 0);
        sqlite3_free(zSql);
        if (rc) {
            ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
            return rc;
        }
    }
    sqlite3_reset(p->aStmt[i]);
    sqlite3_clear_bindings(p->aStmt[i]);
    *ppStmt = p->aStmt[i];
    return SQLITE_OK;
}

/* Steps a write statement to completion; the error goes to the vtab. */
int ram__index_step_done(IndexVtab *p, sqlite3_stmt *pStmt)
{
    int rc = sqlite3_step(pStmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        if (rc == SQLITE_ROW)
            while (sqlite3_step(pStmt) == SQLITE_ROW) {}
        rc = sqlite3_reset(pStmt);
    } else {
        rc = sqlite3_reset(pStmt);
        if (rc == SQLITE_OK) rc = SQLITE_ERROR;
    }
    if (rc) ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

/* 1 when sqlite3_interrupt() was called on the connection (ext/ram.c). */
int ram__index_interrupted(IndexVtab *p) { return ram__interrupted(p->db); }

int ram__parse_bool(const char *z, int *pOut)
{
    if (!sqlite3_stricmp(z, "1") || !sqlite3_stricmp(z, "on") || !sqlite3_stricmp(z, "true") ||
        !sqlite3_stricmp(z, "yes"))
        return *pOut = 1, SQLITE_OK;
    if (!sqlite3_stricmp(z, "0") || !sqlite3_stricmp(z, "off") || !sqlite3_stricmp(z, "false") ||
        !sqlite3_stricmp(z, "no"))
        return *pOut = 0, SQLITE_OK;
    return SQLITE_ERROR;
}

/* ------------------------------------------------------------------ config */

static int config_get(sqlite3 *db, const char *zDb, const char *zName, const char *zKey, sqlite3_value **ppOut)
{
    sqlite3_stmt *pStmt = 0;
    char *zSql = sqlite3_mprintf("SELECT value FROM \"%w\".\"%w_config\" WHERE key = ?1", zDb, zName);
    if (!zSql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
    sqlite3_free(zSql);
    *ppOut = 0;
    if (rc) return rc;
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) == SQLITE_ROW) {
        *ppOut = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
        if (!*ppOut) rc = SQLITE_NOMEM;
    }
    int rc2 = sqlite3_finalize(pStmt);
    return rc ? rc : rc2;
}

/* Loads options and the current generation from photos_config/photos_gens. */
int ram__index_load_config(IndexVtab *p, char **pzErr)
{
    static const char *const azKey[] = {"model", "floor",    "store_images", "exif",      "resume",
                                        "gen",   "n_tokens", "dim",          "num_class", "version"};
    sqlite3_value *aVal[10] = {0};
    int rc = SQLITE_OK;
    for (int i = 0; i < 10 && rc == SQLITE_OK; i++) rc = config_get(p->db, p->zDb, p->zName, azKey[i], &aVal[i]);
    if (rc) {
        *pzErr = sqlite3_mprintf("ram_index: cannot read %s_config: %s", p->zName, sqlite3_errmsg(p->db));
        goto done;
    }
    p->iSchema = aVal[9] ? sqlite3_value_int(aVal[9]) : 0;
    if (p->iSchema != INDEX_SCHEMA_VERSION && p->iSchema != 3) { /* 3: upgraded by index_codes.c */
        *pzErr =
            sqlite3_mprintf("ram_index: %s was made by an unknown version (schema %s, this build reads %d)", p->zName,
                            aVal[9] ? (const char *)sqlite3_value_text(aVal[9]) : "none", INDEX_SCHEMA_VERSION);
        rc = SQLITE_ERROR;
        goto done;
    }
    sqlite3_free(p->zModel);
    p->zModel = 0;
    if (aVal[0] && sqlite3_value_type(aVal[0]) == SQLITE_TEXT && sqlite3_value_bytes(aVal[0]) > 0) {
        p->zModel = sqlite3_mprintf("%s", sqlite3_value_text(aVal[0]));
        if (!p->zModel) rc = SQLITE_NOMEM;
    }
    p->rFloor = aVal[1] ? sqlite3_value_double(aVal[1]) : 0.01;
    p->bStore = aVal[2] ? sqlite3_value_int(aVal[2]) : 0;
    p->bExif = aVal[3] ? sqlite3_value_int(aVal[3]) : 1;
    p->bResume = aVal[4] ? sqlite3_value_int(aVal[4]) : 1;
    if (rc == SQLITE_OK) {
        sqlite3_value *pCascade = 0;
        rc = config_get(p->db, p->zDb, p->zName, "cascade", &pCascade);
        p->nCascade = pCascade ? sqlite3_value_int64(pCascade) : INDEX_CASCADE_DEFAULT;
        sqlite3_value_free(pCascade);
    }
    if (rc == SQLITE_OK) { /* the refit cascade's axes (index_codes.c) */
        sqlite3_value *pRefit = 0;
        rc = config_get(p->db, p->zDb, p->zName, "refit", &pRefit);
        sqlite3_int64 n = pRefit ? sqlite3_value_int64(pRefit) : INDEX_REFIT_DEFAULT;
        p->nRefit = n > 0 && n <= INDEX_REFIT_MAX_AXES ? (int)n : 0;
        sqlite3_value_free(pRefit);
    }
    if (rc == SQLITE_OK) {
        sqlite3_value *pOnError = 0;
        rc = config_get(p->db, p->zDb, p->zName, "on_error", &pOnError);
        p->bSkipErrors = pOnError && sqlite3_value_type(pOnError) == SQLITE_TEXT &&
                         !strcmp((const char *)sqlite3_value_text(pOnError), "skip");
        sqlite3_value_free(pOnError);
    }
    p->iGen = aVal[5] ? sqlite3_value_int64(aVal[5]) : 0;
    p->nTok = aVal[6] ? sqlite3_value_int(aVal[6]) : 0;
    p->nDim = aVal[7] ? sqlite3_value_int(aVal[7]) : 0;
    p->nClass = aVal[8] ? sqlite3_value_int(aVal[8]) : 0;
    if (rc == SQLITE_OK) {
        sqlite3_stmt *pStmt = 0;
        char *zSql =
            sqlite3_mprintf("SELECT digest, prep FROM \"%w\".\"%w_gens\" WHERE id = %lld", p->zDb, p->zName, p->iGen);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        if (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
            sqlite3_free(p->zGenDigest), sqlite3_free(p->zGenPrep);
            p->zGenDigest = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
            p->zGenPrep = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 1));
            if (!p->zGenDigest || !p->zGenPrep) rc = SQLITE_NOMEM;
        } else if (rc == SQLITE_OK) {
            *pzErr = sqlite3_mprintf("ram_index: %s_config names generation %lld, which %s_gens lacks", p->zName,
                                     p->iGen, p->zName);
            rc = SQLITE_CORRUPT_VTAB;
        }
        sqlite3_finalize(pStmt);
    }
    if (rc == SQLITE_OK && (p->nTok < 1 || p->nDim < 1 || p->nClass < 1)) {
        *pzErr = sqlite3_mprintf("ram_index: %s_config lacks the model sizes", p->zName);
        rc = SQLITE_CORRUPT_VTAB;
    }
    /* Bounds far above any model (RAM++: 145 x 512, 4585 classes), so that
    ** a tampered config is a corrupt table, not an allocation of gigabytes. */
    if (rc == SQLITE_OK && (p->nTok > 65536 || p->nDim > 65536 || p->nClass > 1000000 ||
                            (sqlite3_int64)p->nTok * p->nDim > ((sqlite3_int64)1 << 26))) {
        *pzErr = sqlite3_mprintf("ram_index: %s_config holds impossible sizes (%d tokens x %d, %d classes)", p->zName,
                                 p->nTok, p->nDim, p->nClass);
        rc = SQLITE_CORRUPT_VTAB;
    }
done:
    for (int i = 0; i < 10; i++) sqlite3_value_free(aVal[i]);
    return rc;
}

/* After a rollback (of the transaction, a savepoint or a failed statement)
** the commands it undid (model=, exif=) must be undone in memory too, or
** later rows would be written under a generation the table no longer has:
** the options and generation are read again, lazily, as FTS5 rereads its
** structure. SQLite calls xRollback/xRollbackTo after undoing the shadow
** tables, but running statements there is not safe, hence the flag. */
int ram__index_sync_config(IndexVtab *p)
{
    if (!p->bReloadConfig) return SQLITE_OK;
    char *zOld = p->zModel ? sqlite3_mprintf("%s", p->zModel) : 0;
    if (p->zModel && !zOld) return SQLITE_NOMEM;
    char *zErr = 0;
    int rc = ram__index_load_config(p, &zErr);
    if (rc == SQLITE_OK) {
        if ((zOld == 0) != (p->zModel == 0) || (zOld && strcmp(zOld, p->zModel))) ram__index_model_drop(p);
        p->bModelChecked = 0;
        p->bReloadConfig = 0;
    } else {
        ram__vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
    }
    sqlite3_free(zErr);
    sqlite3_free(zOld);
    return rc;
}

char *ram__index_prep_string(int bExif) { return sqlite3_mprintf("prep%d exif=%d", INDEX_PREP_VERSION, bExif); }

/* ------------------------------------------------------------------ the model */

void ram__index_model_drop(IndexVtab *p)
{
    ram__ctx_unref(p->pCtx);
    p->pCtx = 0;
    p->pModel = 0;
    p->bModelChecked = 0;
}

/* Acquires the table's model (the configured path through the registry, or
** the connection's current model) and a state for it. With bCheck, also
** requires that it is the model of the current generation: a different
** model file is refused rather than mixed. */
int ram__index_model(IndexVtab *p, int bCheck)
{
    char *zErr = 0;
    int rc;
    if (!p->zModel) {
        struct ram_ctx *c = 0;
        ram__conn_refresh(p->pConn);
        rc = ram__conn_ctx(p->pConn, "ram_index", &c, &zErr);
        if (rc) {
            ram__vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            return rc;
        }
        if (p->pCtx != c) { /* ram_load() changed it */
            ram__index_model_drop(p);
            ram__ctx_ref(c);
            p->pCtx = c;
            p->pModel = c->pEntry->pModel;
        }
    } else {
        /* The table's own model file changed on disk (rewritten in place):
        ** map it again rather than fail every statement until reconnect. */
        struct ram_error e;
        if (p->pCtx && ram_model_check_file(p->pModel, &e) != RAM_OK) ram__index_model_drop(p);
    }
    if (p->zModel && !p->pCtx) {
        struct ram_entry *pEntry = 0;
        if ((rc = ram__trust_check(p->pConn, p->zName, p->zModel, &zErr))) { /* model_trust.c */
            ram__vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            return rc;
        }
        rc = ram__registry_acquire(p->zModel, RAM__VERIFY_ON_MAP, &pEntry, &zErr);
        if (rc) {
            ram__vtab_set_error(&p->base, "ram_index: cannot load the model '%s': %s", p->zModel,
                                zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            return rc;
        }
        struct ram_ctx *pConnCtx = p->pConn->pCtx;
        if (pConnCtx && pConnCtx->pEntry == pEntry) { /* the connection's model: no second arena */
            ram__registry_release(pEntry);
            ram__ctx_ref(pConnCtx);
            p->pCtx = pConnCtx;
        } else if ((rc = ram__ctx_open(p->db, pEntry, &p->pCtx, &zErr))) {
            ram__vtab_set_error(&p->base, "ram_index: %s", zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            return rc;
        }
        p->pModel = p->pCtx->pEntry->pModel;
    }
    if (bCheck && !p->bModelChecked) {
        const struct ram_model_info *pI = &p->pCtx->pEntry->info;
        if (strcmp(pI->digest, p->zGenDigest)) {
            if (p->zModel)
                ram__vtab_set_error(&p->base,
                                    "ram_index: the model file '%s' (digest %s) is not the one %s was built with "
                                    "(digest %s); to switch, run INSERT INTO %s(%s) VALUES('model=%s')",
                                    p->zModel, pI->digest, p->zName, p->zGenDigest, p->zName, p->zName, p->zModel);
            else
                ram__vtab_set_error(&p->base,
                                    "ram_index: the connection's model '%s' (digest %s) is not the one %s was built "
                                    "with (digest %s); load that one, or run INSERT INTO %s(%s) VALUES('model') to "
                                    "switch",
                                    pI->path, pI->digest, p->zName, p->zGenDigest, p->zName, p->zName);
            return SQLITE_ERROR;
        }
        if (pI->n_image_tokens != p->nTok || pI->embed_dim != p->nDim || pI->num_class != p->nClass) {
            ram__vtab_set_error(&p->base, "ram_index: the model's sizes do not match %s_config", p->zName);
            return SQLITE_CORRUPT_VTAB;
        }
        p->bModelChecked = 1;
    }
    return SQLITE_OK;
}

/* Refuses queries while images of another generation remain. */
int ram__index_check_stale(IndexVtab *p)
{
    sqlite3_stmt *pStmt;
    int rc = ram__index_stmt(p, STMT_STALE_COUNT, &pStmt);
    if (rc) return rc;
    sqlite3_bind_int64(pStmt, 1, p->iGen);
    sqlite3_int64 n = sqlite3_step(pStmt) == SQLITE_ROW ? sqlite3_column_int64(pStmt, 0) : 0;
    rc = sqlite3_reset(pStmt);
    if (rc) return rc;
    if (n > 0) {
        ram__vtab_set_error(&p->base,
                            "ram_index: %lld image%s in %s %s embedded with another model or preprocessing; "
                            "re-insert %s, or run INSERT INTO %s(%s) VALUES('reembed') or VALUES('delete-stale')",
                            n, n == 1 ? "" : "s", p->zName, n == 1 ? "was" : "were", n == 1 ? "it" : "them", p->zName,
                            p->zName);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* The thresholds that select tags, as ram_tags() applies them: the table's
** model's, overridden by main.ram_thresholds rows and ram_set_threshold()
** (context.c). Call after ram__index_model(). */
int ram__index_thresholds(IndexVtab *p, const float **paOut)
{
    char *zErr = 0;
    int rc = ram__ctx_thresholds(p->pCtx, &p->pConn->th, "ram_index", paOut, &zErr);
    if (rc) ram__vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
    sqlite3_free(zErr);
    return rc;
}

/* ------------------------------------------------------------------ embeddings */

void ram__embedding_clear(IndexEmbedding *e)
{
    sqlite3_free(e->aUnit), sqlite3_free(e->aProbs);
    sqlite3_free(e->pOwnTokens);
    memset(e, 0, sizeof *e);
}

/* The least pattern b with: p > x (bGE: p >= x) <=> bits(p) >= b, for
** every float p >= 0. */
sqlite3_int64 ram__bound_bits(double x, int bGE)
{
    if (isnan(x) || x > FLT_MAX) return INT64_MAX; /* nothing qualifies */
    if (x < 0 || (bGE && x == 0)) return 0;        /* everything */
    float f = (float)x;
    if (bGE) {
        if ((double)f < x) f = nextafterf(f, INFINITY); /* the least float >= x */
        return prob_bits(f);
    }
    if ((double)f > x) f = nextafterf(f, -INFINITY); /* the largest float <= x */
    return prob_bits(f) + 1;
}

/* Checks a stored probs blob; returns its entry count or -1. */
int ram__probs_count(const unsigned char *a, int n, int nClass)
{
    if (!a || n < 4 || a[0] != INDEX_PROBS_VERSION || (n - 4) % 6) return -1;
    int cnt = (n - 4) / 6, prev = -1;
    for (int i = 0; i < cnt; i++) {
        int c = (int)get_u16(a + 4 + 6 * i);
        if (c <= prev || c >= nClass) return -1;
        prev = c;
    }
    return cnt;
}

/* Builds the stored form from fp32 image embeddings and probabilities. */
int ram__embedding_build(IndexVtab *p, const float *aEmb, const float *aProb, IndexEmbedding *e)
{
    struct ram_error err;
    memset(e, 0, sizeof *e);
    size_t nTok = ram_cache_packed_size(p->nTok, p->nDim);
    if (ram_cache_pack(aEmb, p->nTok, p->nDim, p->aTokBlob, nTok, &err)) {
        ram__vtab_set_error(&p->base, "ram_index: %s", err.msg);
        return SQLITE_ERROR;
    }
    e->aTokens = p->aTokBlob;
    e->nTokens = (int)nTok;
    e->nUnit = (int)ram_cache_unit_size(p->nDim);
    e->aUnit = sqlite3_malloc(e->nUnit);
    int nKeep = 0;
    for (int c = 0; c < p->nClass; c++) nKeep += aProb[c] >= p->rFloor;
    e->nProbs = 4 + 6 * nKeep;
    e->aProbs = sqlite3_malloc(e->nProbs);
    if (!e->aUnit || !e->aProbs) goto nomem;
    ram_cache_pack_unit(aEmb, p->nDim, e->aUnit, (size_t)e->nUnit, &err);
    memset(e->aProbs, 0, 4);
    e->aProbs[0] = INDEX_PROBS_VERSION;
    for (int c = 0, i = 0; c < p->nClass; c++)
        if (aProb[c] >= p->rFloor) {
            put_u16(e->aProbs + 4 + 6 * i, (unsigned)c);
            put_f32(e->aProbs + 4 + 6 * i + 2, aProb[c]);
            i++;
        }
    return SQLITE_OK;
nomem:
    ram__embedding_clear(e);
    return SQLITE_NOMEM;
}
