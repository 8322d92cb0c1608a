/*
** index_cursor.c — the cursor of ram_index: xFilter runs the plan xBestIndex chose
** (scan, rowid, path, tag, MATCH; the idxNum bits are in docs/INDEX.md),
** xColumn computes tags with the current thresholds.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <math.h>
#include <stdarg.h>

/* ------------------------------------------------------------------ cursor */

int ram__indexOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur)
{
    IndexCursor *c = sqlite3_malloc(sizeof *c);
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->bEof = 1;
    *ppCur = &c->base;
    (void)pVtab;
    return SQLITE_OK;
}

static void cursor_reset(IndexCursor *c)
{
    sqlite3_finalize(c->pStmt);
    c->pStmt = 0;
    sqlite3_free(c->aHit);
    c->aHit = 0;
    c->nHit = c->iHit = 0;
    c->nOut = 0;
    c->bEof = 1;
    c->bHasK = c->bHasPrefilter = 0;
}

int ram__indexClose(sqlite3_vtab_cursor *pCur)
{
    cursor_reset((IndexCursor *)pCur);
    sqlite3_free(pCur);
    return SQLITE_OK;
}

#define ROW_COLS "f.id, f.path, i.id, %s, i.key, i.gen, i.probs"
enum { RC_FID = 0, RC_PATH, RC_IMG, RC_SCORE, RC_KEY, RC_GEN, RC_PROBS };

static int cursor_prepare(IndexCursor *c, const char *zFmt, ...)
{
    IndexVtab *p = (IndexVtab *)c->base.pVtab;
    va_list ap;
    va_start(ap, zFmt);
    char *zSql = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
    if (!zSql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(p->db, zSql, -1, &c->pStmt, 0);
    sqlite3_free(zSql);
    if (rc) ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

static int cursor_step(IndexCursor *c)
{
    IndexVtab *p = (IndexVtab *)c->base.pVtab;
    int rc = sqlite3_step(c->pStmt);
    if (rc == SQLITE_ROW) {
        c->bEof = 0;
        if (c->plan == PLAN_TAG) STAT_ADD(postings_read, 1);
        return SQLITE_OK;
    }
    c->bEof = 1;
    rc = sqlite3_reset(c->pStmt);
    if (rc) ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

/* MATCH: the next row of the current hit, moving along the hits. */
static int cursor_match_next(IndexCursor *c)
{
    for (;;) {
        if (c->bHasK && c->nOut >= c->k) {
            c->bEof = 1;
            return SQLITE_OK;
        }
        if (c->iHit >= 0 && c->iHit < c->nHit) {
            if (sqlite3_step(c->pStmt) == SQLITE_ROW) {
                c->bEof = 0;
                c->nOut++;
                return SQLITE_OK;
            }
            int rc = sqlite3_reset(c->pStmt);
            if (rc) return rc;
            c->iHit++;
        } else if (c->iHit < 0) {
            c->iHit = 0;
        }
        if (c->iHit >= c->nHit) {
            c->bEof = 1;
            return SQLITE_OK;
        }
        sqlite3_bind_int64(c->pStmt, 1, c->aHit[c->iHit].img);
        sqlite3_bind_double(c->pStmt, 2, (double)c->aHit[c->iHit].score);
    }
}

/* Class index of a tag value: an integer, or an English or Chinese name
** (ASCII case ignored); -1 if unknown. */
static int index_find_tag(IndexVtab *p, sqlite3_value *v)
{
    if (sqlite3_value_type(v) == SQLITE_INTEGER) {
        sqlite3_int64 c = sqlite3_value_int64(v);
        return c >= 0 && c < p->nClass ? (int)c : -1;
    }
    const char *z = (const char *)sqlite3_value_text(v);
    if (!z) return -1;
    for (int lang = RAM_LANG_EN; lang <= RAM_LANG_ZH; lang++)
        for (int c = 0; c < p->nClass; c++) {
            const char *t = ram_model_tag(p->pModel, c, lang);
            if (t && !sqlite3_stricmp(t, z)) return c;
        }
    return -1;
}

int ram__indexFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr, int argc, sqlite3_value **argv)
{
    IndexCursor *c = (IndexCursor *)pCur;
    IndexVtab *p = (IndexVtab *)pCur->pVtab;
    int rc, iArg = 0;
    cursor_reset(c);
    if ((idxNum & 0xf) == PLAN_REFUSED) {
        ram__vtab_set_error(pCur->pVtab, "%s", idxStr + strlen("refused: "));
        return SQLITE_ERROR;
    }
    if ((rc = ram__index_sync_config(p)) != SQLITE_OK) return rc;
    c->plan = idxNum & 0xf;
    c->iTag = -1;
    sqlite3_value *pMain = c->plan != PLAN_SCAN ? argv[iArg++] : 0, *pScore = 0;
    if (idxNum & (IDX_SCORE_GT | IDX_SCORE_GE)) pScore = argv[iArg++];
    if (idxNum & IDX_K) {
        c->bHasK = 1;
        c->k = sqlite3_value_int64(argv[iArg]);
        if (sqlite3_value_type(argv[iArg]) != SQLITE_INTEGER || c->k < 1) {
            ram__vtab_set_error(pCur->pVtab, "ram_index: k must be a positive integer");
            return SQLITE_ERROR;
        }
        iArg++;
    }
    if (idxNum & IDX_PREFILTER) {
        c->bHasPrefilter = 1;
        c->nPrefilter = sqlite3_value_int64(argv[iArg]);
        if (sqlite3_value_type(argv[iArg]) != SQLITE_INTEGER || c->nPrefilter < 1) {
            ram__vtab_set_error(pCur->pVtab, "ram_index: prefilter must be a positive integer (candidates kept)");
            return SQLITE_ERROR;
        }
        iArg++;
    }
    if (idxNum & IDX_LIMIT) {
        if (!c->bHasK && sqlite3_value_type(argv[iArg]) == SQLITE_INTEGER && sqlite3_value_int64(argv[iArg]) >= 0) {
            c->bHasK = 1;
            c->k = sqlite3_value_int64(argv[iArg]);
        }
        iArg++;
    }
    sqlite3_value *pTagVal = idxNum & IDX_TAG ? argv[iArg++] : 0;
    if (c->plan != PLAN_MATCH && (idxNum & (IDX_K | IDX_PREFILTER))) {
        ram__vtab_set_error(pCur->pVtab, "ram_index: k and prefilter need a MATCH constraint");
        return SQLITE_ERROR;
    }
    (void)idxStr;
    (void)argc;

    switch (c->plan) {
    case PLAN_SCAN:
    case PLAN_ROWID:
    case PLAN_PATH:
        rc = cursor_prepare(c,
                            "SELECT " ROW_COLS " FROM \"%w\".\"%w_files\" f LEFT JOIN \"%w\".\"%w_images\" i "
                            "ON i.id = f.img %s ORDER BY f.id",
                            "NULL", p->zDb, p->zName, p->zDb, p->zName,
                            c->plan == PLAN_ROWID  ? "WHERE f.id = ?1"
                            : c->plan == PLAN_PATH ? "WHERE f.path = ?1"
                                                   : "");
        if (rc) return rc;
        if (pMain) sqlite3_bind_value(c->pStmt, 1, pMain);
        return cursor_step(c);
    case PLAN_TAG: {
        if (sqlite3_value_type(pMain) == SQLITE_NULL) return SQLITE_OK; /* tag = NULL: no rows */
        rc = ram__index_model(p, 1);
        if (rc == SQLITE_OK) rc = ram__index_check_stale(p);
        if (rc) return rc;
        c->iTag = index_find_tag(p, pMain);
        if (c->iTag < 0) {
            ram__vtab_set_error(pCur->pVtab,
                                "ram_index: no tag '%s' in the model's vocabulary (use MATCH for free text)",
                                sqlite3_value_text(pMain));
            return SQLITE_ERROR;
        }
        const float *aThr;
        rc = ram__index_thresholds(p, &aThr);
        if (rc) return rc;
        double thr = aThr[c->iTag];
        int ge = 0;
        if (pScore) {
            if (sqlite3_value_numeric_type(pScore) == SQLITE_NULL) return SQLITE_OK;
            thr = sqlite3_value_double(pScore);
            ge = (idxNum & IDX_SCORE_GE) != 0;
            if (ge ? thr < p->rFloor : thr < p->rFloor && nextafter(thr, 2) < p->rFloor) {
                ram__vtab_set_error(pCur->pVtab,
                                    "ram_index: score %s %g is below the index floor %g (probabilities under the "
                                    "floor are not kept; see the floor option)",
                                    ge ? ">=" : ">", thr, p->rFloor);
                return SQLITE_ERROR;
            }
        }
        rc = cursor_prepare(c,
                            "SELECT " ROW_COLS " FROM \"%w\".\"%w_postings\" p JOIN \"%w\".\"%w_images\" i "
                            "ON i.id = p.img JOIN \"%w\".\"%w_files\" f ON f.img = p.img "
                            "WHERE p.tag = ?1 AND p.score >= ?2",
                            "p.score", p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName);
        if (rc) return rc;
        sqlite3_bind_int(c->pStmt, 1, c->iTag);
        sqlite3_bind_int64(c->pStmt, 2, ram__bound_bits(thr, ge));
        return cursor_step(c);
    }
    case PLAN_MATCH: {
        if (sqlite3_value_type(pMain) == SQLITE_NULL) return SQLITE_OK;
        double thr = 0;
        if (pTagVal) {
            const float *aThr;
            if (sqlite3_value_type(pTagVal) == SQLITE_NULL) return SQLITE_OK;
            rc = ram__index_model(p, 1);
            if (rc == SQLITE_OK) rc = ram__index_thresholds(p, &aThr);
            if (rc) return rc;
            c->iTag = index_find_tag(p, pTagVal);
            if (c->iTag < 0) {
                ram__vtab_set_error(pCur->pVtab,
                                    "ram_index: no tag '%s' in the model's vocabulary (use MATCH for free text)",
                                    sqlite3_value_text(pTagVal));
                return SQLITE_ERROR;
            }
            thr = aThr[c->iTag];
        }
        rc = ram__index_match(p, pMain, c->bHasK ? c->k : 0, c->bHasPrefilter ? c->nPrefilter : 0, c->iTag, thr,
                              &c->aHit, &c->nHit);
        if (rc) return rc;
        rc = cursor_prepare(c,
                            "SELECT " ROW_COLS " FROM \"%w\".\"%w_files\" f JOIN \"%w\".\"%w_images\" i "
                            "ON i.id = f.img WHERE f.img = ?1 ORDER BY f.id",
                            "?2", p->zDb, p->zName, p->zDb, p->zName);
        if (rc) return rc;
        c->iHit = -1;
        return cursor_match_next(c);
    }
    }
    return SQLITE_OK;
}

int ram__indexNext(sqlite3_vtab_cursor *pCur)
{
    IndexCursor *c = (IndexCursor *)pCur;
    if (c->plan == PLAN_MATCH) return cursor_match_next(c);
    return cursor_step(c);
}

int ram__indexEof(sqlite3_vtab_cursor *pCur) { return ((IndexCursor *)pCur)->bEof; }

/* A stored blob column of image img through a one-off statement. */
static int column_lookup(IndexVtab *p, sqlite3_context *ctx, const char *zFmt, sqlite3_int64 img)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf(zFmt, p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    if (sqlite3_step(s) == SQLITE_ROW) sqlite3_result_value(ctx, sqlite3_column_value(s, 0));
    return sqlite3_finalize(s);
}

/* The tags of the current row: its stored probabilities over the current
** thresholds, in class order, ' | ' joined (ram_tags' output); NULL for a
** stale row, whose classes belong to another model. */
static int column_tags(IndexVtab *p, sqlite3_context *ctx, sqlite3_stmt *s, int lang)
{
    if (sqlite3_column_type(s, RC_GEN) == SQLITE_NULL || sqlite3_column_int64(s, RC_GEN) != p->iGen) return SQLITE_OK;
    const float *aThr;
    int rc = ram__index_model(p, 1);
    if (rc == SQLITE_OK) rc = ram__index_thresholds(p, &aThr);
    if (rc) {
        sqlite3_result_error(ctx, p->base.zErrMsg ? p->base.zErrMsg : sqlite3_errstr(rc), -1);
        return rc;
    }
    const unsigned char *a = sqlite3_column_blob(s, RC_PROBS);
    int cnt = ram__probs_count(a, sqlite3_column_bytes(s, RC_PROBS), p->nClass), n = 0;
    if (cnt < 0) return SQLITE_OK;
    sqlite3_str *str = sqlite3_str_new(p->db);
    for (int e = 0; e < cnt; e++) {
        int c = (int)get_u16(a + 4 + 6 * e);
        if (get_f32(a + 4 + 6 * e + 2) > aThr[c]) {
            const char *t = ram_model_tag(p->pModel, c, lang);
            sqlite3_str_appendf(str, "%s%s", n++ ? " | " : "", t ? t : "");
        }
    }
    if (sqlite3_str_errcode(str)) {
        sqlite3_free(sqlite3_str_finish(str));
        return SQLITE_NOMEM;
    }
    char *z = sqlite3_str_finish(str);
    sqlite3_result_text(ctx, z ? z : "", -1, z ? sqlite3_free : SQLITE_STATIC);
    return SQLITE_OK;
}

int ram__indexColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i)
{
    IndexCursor *c = (IndexCursor *)pCur;
    IndexVtab *p = (IndexVtab *)pCur->pVtab;
    sqlite3_stmt *s = c->pStmt;
    /* UPDATE asks for unchanged columns: report "no change" for the costly ones. */
    if (sqlite3_vtab_nochange(ctx) && i != COL_PATH) return SQLITE_OK;
    sqlite3_int64 img = sqlite3_column_int64(s, RC_IMG);
    switch (i) {
    case COL_PATH: sqlite3_result_value(ctx, sqlite3_column_value(s, RC_PATH)); break;
    case COL_IMAGE: return column_lookup(p, ctx, "SELECT data FROM \"%w\".\"%w_blobs\" WHERE id = ?1", img);
    case COL_TAGS: return column_tags(p, ctx, s, RAM_LANG_EN);
    case COL_SCORE:
        if (c->plan == PLAN_TAG)
            sqlite3_result_double(ctx, bits_prob(sqlite3_column_int64(s, RC_SCORE)));
        else
            sqlite3_result_value(ctx, sqlite3_column_value(s, RC_SCORE));
        break;
    case COL_TAG:
        if (c->iTag >= 0 && p->pModel) {
            sqlite3_result_text(ctx, ram_model_tag(p->pModel, c->iTag, RAM_LANG_EN), -1, SQLITE_TRANSIENT);
            break;
        }
        /* Outside a tag query a row has many tags, not one: a NULL here
        ** would make NOT tag = 'x' (which xBestIndex never sees) silently
        ** match nothing. */
        ram__vtab_set_error(pCur->pVtab,
                            "ram_index: tag has a value only in a tag query (tag = 'dog' or tag IN "
                            "(...)); to exclude a tag write rowid NOT IN (SELECT rowid FROM %s WHERE "
                            "tag = 'blue')",
                            p->zName);
        sqlite3_result_error(ctx, p->base.zErrMsg, -1);
        return SQLITE_ERROR;
    case COL_K:
        if (c->bHasK) sqlite3_result_int64(ctx, c->k);
        break;
    case COL_PREFILTER:
        if (c->bHasPrefilter) sqlite3_result_int64(ctx, c->nPrefilter);
        break;
    case COL_KEY: sqlite3_result_value(ctx, sqlite3_column_value(s, RC_KEY)); break;
    case COL_CAPTION: return ram__index_caption_column(p, ctx, sqlite3_column_int64(s, RC_FID));
    case COL_PROBS: {
        const unsigned char *a = sqlite3_column_blob(s, RC_PROBS);
        int n = sqlite3_column_bytes(s, RC_PROBS), cnt = ram__probs_count(a, n, p->nClass);
        if (cnt < 0) break;
        unsigned char *out = sqlite3_malloc64((size_t)p->nClass * 4);
        if (!out) return SQLITE_NOMEM;
        memset(out, 0, (size_t)p->nClass * 4);
        for (int e = 0; e < cnt; e++) memcpy(out + 4 * get_u16(a + 4 + 6 * e), a + 4 + 6 * e + 2, 4);
        sqlite3_result_blob64(ctx, out, (sqlite3_uint64)p->nClass * 4, sqlite3_free);
        break;
    }
    case COL_CLS: {
        sqlite3_stmt *t;
        int rc = ram__index_stmt(p, STMT_TOKENS, &t);
        if (rc) return rc;
        sqlite3_bind_int64(t, 1, img);
        struct ram_cache_tokens v;
        struct ram_error err;
        if (sqlite3_step(t) == SQLITE_ROW &&
            ram_cache_view(sqlite3_column_blob(t, 0), (size_t)sqlite3_column_bytes(t, 0), p->nTok, p->nDim, &v, &err) ==
                RAM_OK) {
            float *out = sqlite3_malloc64(sizeof(float) * (size_t)p->nDim);
            if (!out) return sqlite3_reset(t), SQLITE_NOMEM;
            ram_cache_cls(&v, out);
            sqlite3_result_blob64(ctx, out, sizeof(float) * (sqlite3_uint64)p->nDim, sqlite3_free);
        }
        sqlite3_reset(t);
        break;
    }
    case COL_TAGS_ZH: return column_tags(p, ctx, s, RAM_LANG_ZH);
    case COL_ENTRY:
        if (sqlite3_column_type(s, RC_IMG) == SQLITE_NULL) break;
        return ram__index_entry_column(p, ctx, img);
    case COL_TAKEN:
    case COL_TAKEN_SOURCE:
    case COL_CAMERA_MAKE:
    case COL_CAMERA_MODEL:
    case COL_LATITUDE:
    case COL_LONGITUDE:
    case COL_MTIME: return ram__index_meta_column(p, ctx, sqlite3_column_int64(s, RC_FID), i);
    case COL_STALE:
        if (sqlite3_column_type(s, RC_GEN) != SQLITE_NULL)
            sqlite3_result_int(ctx, sqlite3_column_int64(s, RC_GEN) != p->iGen);
        break;
    default: break;
    }
    return SQLITE_OK;
}

int ram__indexRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid)
{
    *pRowid = sqlite3_column_int64(((IndexCursor *)pCur)->pStmt, RC_FID);
    return SQLITE_OK;
}
