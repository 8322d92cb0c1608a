/*
** index_caption.c — ram_index's captions: with the option captions=1, every
** row gets a caption written by a Tag2Text model, kept in an FTS5 table
** for full-text search:
**
**     CREATE VIRTUAL TABLE photos USING ram_index(captions=1);   -- caption_model='t2t.ram' optional
**     INSERT INTO photos(path, image) VALUES('a.jpg', readfile('a.jpg'));
**     SELECT path, caption FROM photos;                           -- caption: a HIDDEN column
**     SELECT p.path, p.caption FROM photos_captions c JOIN photos p ON p.rowid = c.rowid
**       WHERE photos_captions MATCH 'red AND circle' ORDER BY rank;
**
** The schema change is this file's alone: one FTS5 table
** photos_captions(caption, img UNINDEXED) whose rowid is the photos row
** (FTS5 keeps its own photos_captions_* tables), and the config keys
** 'captions' (1) and 'caption_model' (a path or NULL). A table made without
** captions=1 (or before this option existed) has neither: its caption
** column is NULL and nothing else changes.
**
** HOW IT WORKS. The row writes of index_update.c call ram__index_caption_put
** once the row points at its image: a row already captioned for that image
** keeps its caption; else the caption of another row of the same image is
** copied (duplicates are captioned once); else the image bytes are
** captioned (an entry insert, which brings no bytes, gets none, unless a
** row of the same image has one or the INSERT gives the caption column:
** INSERT INTO photos(path, entry, caption) stores it as given). Deletes remove the row's caption; a path
** rename keeps it. All of it happens in the statement's transaction, so the
** FTS index is always in step with the rows. The caption model is the
** table's caption_model= file (opened under the same trust rule as model=)
** or else the connection's caption model (ram_caption_model(), a Tag2Text
** connection model, the default caption model: conn.c); the tags that guide
** it are the caption model's own predictions.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <stdlib.h>

int ram__index_caption_option(IndexVtab *p, const char *zKey, char **pzVal, int *pbHandled, char **pzErr)
{
    *pbHandled = 1;
    if (!sqlite3_stricmp(zKey, "captions")) {
        if (ram__parse_bool(*pzVal, &p->bCaptions)) {
            *pzErr = sqlite3_mprintf("ram_index: captions must be 0 or 1, got '%s'", *pzVal);
            return SQLITE_ERROR;
        }
        return SQLITE_OK;
    }
    if (!sqlite3_stricmp(zKey, "caption_model")) {
        if (!(*pzVal)[0]) {
            *pzErr = sqlite3_mprintf("ram_index: caption_model= needs the path of a Tag2Text model file (leave it "
                                     "out to use the connection's caption model)");
            return SQLITE_ERROR;
        }
        sqlite3_free(p->zCapModel);
        p->zCapModel = *pzVal;
        *pzVal = 0;
        return ram__trust_add(p->pConn, p->zCapModel) ? SQLITE_NOMEM : SQLITE_OK;
    }
    *pbHandled = 0;
    return SQLITE_OK;
}

int ram__index_caption_create(IndexVtab *p, char **pzErr)
{
    if (p->zCapModel && !p->bCaptions) {
        *pzErr = sqlite3_mprintf("ram_index: caption_model= needs captions=1");
        return SQLITE_ERROR;
    }
    if (!p->bCaptions) return SQLITE_OK;
    /* porter: 'circle' finds 'circles' */
    return ram__index_exec(p->db, pzErr,
                           "CREATE VIRTUAL TABLE \"%w\".\"%w_captions\" USING fts5(caption, img UNINDEXED, "
                           "  tokenize='porter unicode61');"
                           "INSERT INTO \"%w\".\"%w_config\"(key, value) VALUES('captions', 1), "
                           "  ('caption_model', %Q);",
                           p->zDb, p->zName, p->zDb, p->zName, p->zCapModel);
}

int ram__index_caption_load(IndexVtab *p, char **pzErr)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT (SELECT value FROM \"%w\".\"%w_config\" WHERE key = 'captions'), "
                                 "(SELECT value FROM \"%w\".\"%w_config\" WHERE key = 'caption_model')",
                                 p->zDb, p->zName, p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        p->bCaptions = sqlite3_column_int(s, 0) == 1;
        sqlite3_free(p->zCapModel);
        p->zCapModel = 0;
        if (sqlite3_column_type(s, 1) == SQLITE_TEXT && sqlite3_column_bytes(s, 1) > 0) {
            p->zCapModel = sqlite3_mprintf("%s", sqlite3_column_text(s, 1));
            if (!p->zCapModel) rc = SQLITE_NOMEM;
        }
    }
    int rc2 = sqlite3_finalize(s);
    if (rc == SQLITE_OK) rc = rc2;
    if (rc && rc != SQLITE_NOMEM)
        *pzErr = sqlite3_mprintf("ram_index: cannot read %s_config: %s", p->zName, sqlite3_errmsg(p->db));
    return rc;
}

void ram__index_caption_drop(IndexVtab *p)
{
    ram__ctx_unref(p->pCapCtx);
    p->pCapCtx = 0;
    sqlite3_free(p->zCapModel);
    p->zCapModel = 0;
}

/* The caption model: the table's caption_model= (trust-checked, opened
** once), else the connection's caption model. Borrowed. */
static int caption_ctx(IndexVtab *p, struct ram_ctx **ppCtx)
{
    char *zErr = 0;
    int rc;
    *ppCtx = 0;
    if (!p->zCapModel) {
        rc = ram__conn_caption_ctx(p->pConn, "ram_index", ppCtx, &zErr);
    } else if (p->pCapCtx) {
        *ppCtx = p->pCapCtx;
        return SQLITE_OK;
    } else {
        struct ram_entry *pEntry = 0;
        rc = ram__trust_check(p->pConn, p->zName, p->zCapModel, &zErr); /* model_trust.c */
        if (rc == SQLITE_OK) rc = ram__registry_acquire(p->zCapModel, RAM__VERIFY_ON_MAP, &pEntry, &zErr);
        if (rc == SQLITE_OK && pEntry->info.kind != RAM_KIND_TAG2TEXT) {
            ram__registry_release(pEntry);
            zErr = sqlite3_mprintf("ram_index: caption_model '%s' is not a Tag2Text model", p->zCapModel);
            rc = SQLITE_ERROR;
        }
        if (rc == SQLITE_OK) rc = ram__ctx_open(p->db, pEntry, &p->pCapCtx, &zErr);
        *ppCtx = p->pCapCtx;
    }
    if (rc) {
        ram__vtab_set_error(&p->base, "%s%s", zErr && !strncmp(zErr, "ram_index", 9) ? "" : "ram_index: ",
                            zErr ? zErr : sqlite3_errstr(rc));
        sqlite3_free(zErr);
    }
    return rc;
}

/* Runs one statement on (a, b) with an optional text c; *pzOut receives the
** first column of the first row (sqlite3_free) when not NULL. */
static int caption_sql(IndexVtab *p, const char *zFmt, sqlite3_int64 a, sqlite3_int64 b, const char *zText,
                       char **pzOut)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf(zFmt, p->zDb, p->zName, p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) {
        if (rc != SQLITE_NOMEM) ram__vtab_set_error(&p->base, "ram_index: captions: %s", sqlite3_errmsg(p->db));
        return rc;
    }
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_int64(s, 2, b);
    if (zText) sqlite3_bind_text(s, 3, zText, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && pzOut && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *pzOut = sqlite3_mprintf("%s", sqlite3_column_text(s, 0));
        if (!*pzOut) rc = SQLITE_NOMEM;
    }
    int rc2 = sqlite3_finalize(s);
    if (rc == SQLITE_OK && rc2) {
        rc = rc2;
        ram__vtab_set_error(&p->base, "ram_index: captions: %s", sqlite3_errmsg(p->db));
    }
    return rc;
}

/* The caption of encoded image pImage with the caption model (sqlite3_free). */
static int caption_image(IndexVtab *p, sqlite3_value *pImage, char **pzCap)
{
    struct ram_ctx *c = 0;
    int rc = caption_ctx(p, &c);
    if (rc) return rc;
    struct ram_prep prep = p->pConn->prep;
    prep.bExif = p->bExif; /* the table's preprocessing, as for its tags */
    struct ram_image img;
    int bNull = 0;
    char *zErr = 0;
    rc = ram__ctx_image(c, &prep, "ram_index", 2, pImage, 1, &bNull, &img, &zErr);
    if (rc == SQLITE_OK && !bNull) {
        struct ram_error err;
        char *zCap = 0;
        ram_status st = ram_caption_embeds(c->pState, img.aEmbed, img.aProb, 0, 0, &zCap, 0, &err);
        if (st)
            rc = ram__core_error("ram_index: caption", st, &err, &zErr);
        else {
            *pzCap = sqlite3_mprintf("%s", zCap);
            ram_string_free(zCap);
            if (!*pzCap) rc = SQLITE_NOMEM;
        }
    }
    if (rc) {
        if (zErr) ram__vtab_set_error(&p->base, "%s", zErr);
        sqlite3_free(zErr);
    }
    return rc;
}

int ram__index_caption_put(IndexVtab *p, sqlite3_int64 fid, sqlite3_value *pImage, sqlite3_value *pGiven)
{
    if (!p->bCaptions) return SQLITE_OK;
    if (pGiven && sqlite3_value_type(pGiven) != SQLITE_NULL) {
        /* A caption given with the row (e.g. computed in a staging table with
        ** its entry, as ram-index does): stored as given, no model run. */
        if (sqlite3_value_type(pGiven) != SQLITE_TEXT) {
            ram__vtab_set_error(&p->base, "ram_index: caption must be TEXT or NULL");
            return SQLITE_MISMATCH;
        }
        char *zImg = 0;
        int rc = caption_sql(p, "SELECT img FROM \"%w\".\"%w_files\" WHERE id = ?1", fid, 0, 0, &zImg);
        if (rc == SQLITE_OK) rc = caption_sql(p, "DELETE FROM \"%w\".\"%w_captions\" WHERE rowid = ?1", fid, 0, 0, 0);
        if (rc == SQLITE_OK && zImg)
            rc = caption_sql(p, "INSERT INTO \"%w\".\"%w_captions\"(rowid, img, caption) VALUES(?1, ?2, ?3)", fid,
                             strtoll(zImg, 0, 10), (const char *)sqlite3_value_text(pGiven), 0);
        sqlite3_free(zImg);
        return rc;
    }
    char *zImg = 0, *zCap = 0;
    int rc = caption_sql(p, "SELECT img FROM \"%w\".\"%w_files\" WHERE id = ?1", fid, 0, 0, &zImg);
    if (rc || !zImg) return rc;
    sqlite3_int64 img = strtoll(zImg, 0, 10);
    sqlite3_free(zImg);
    /* Already captioned for this image (the same file inserted again). */
    rc = caption_sql(p, "SELECT caption FROM \"%w\".\"%w_captions\" WHERE rowid = ?1 AND img = ?2", fid, img, 0, &zCap);
    if (rc || zCap) {
        sqlite3_free(zCap);
        return rc;
    }
    rc = caption_sql(p, "DELETE FROM \"%w\".\"%w_captions\" WHERE rowid = ?1", fid, 0, 0, 0);
    /* Another row of the same image: its caption, without running the model. */
    if (rc == SQLITE_OK)
        rc = caption_sql(p,
                         "SELECT caption FROM \"%w\".\"%w_captions\" WHERE img = ?2 AND rowid IN "
                         "(SELECT id FROM \"%w\".\"%w_files\" WHERE img = ?2) LIMIT 1",
                         fid, img, 0, &zCap);
    if (rc == SQLITE_OK && !zCap && pImage && sqlite3_value_type(pImage) == SQLITE_BLOB)
        rc = caption_image(p, pImage, &zCap);
    if (rc == SQLITE_OK && zCap)
        rc = caption_sql(p, "INSERT INTO \"%w\".\"%w_captions\"(rowid, img, caption) VALUES(?1, ?2, ?3)", fid, img,
                         zCap, 0);
    sqlite3_free(zCap);
    return rc;
}

int ram__index_caption_delete(IndexVtab *p, sqlite3_int64 fid)
{
    if (!p->bCaptions) return SQLITE_OK;
    return caption_sql(p, "DELETE FROM \"%w\".\"%w_captions\" WHERE rowid = ?1", fid, 0, 0, 0);
}

int ram__index_caption_column(IndexVtab *p, sqlite3_context *ctx, sqlite3_int64 fid)
{
    if (!p->bCaptions) return SQLITE_OK;
    char *zCap = 0;
    int rc = caption_sql(p, "SELECT caption FROM \"%w\".\"%w_captions\" WHERE rowid = ?1", fid, 0, 0, &zCap);
    if (rc) {
        sqlite3_result_error(ctx, p->base.zErrMsg ? p->base.zErrMsg : sqlite3_errstr(rc), -1);
        return rc;
    }
    if (zCap) sqlite3_result_text(ctx, zCap, -1, sqlite3_free);
    return SQLITE_OK;
}

int ram__index_caption_check(IndexVtab *p)
{
    if (!p->bCaptions) return SQLITE_OK;
    char *zN = 0;
    int rc = caption_sql(p,
                         "SELECT count(*) FROM \"%w\".\"%w_captions\" c WHERE NOT EXISTS (SELECT 1 FROM "
                         "\"%w\".\"%w_files\" f WHERE f.id = c.rowid AND f.img = c.img)",
                         0, 0, 0, &zN);
    if (rc == SQLITE_OK && zN && strtoll(zN, 0, 10)) {
        ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: %s captions belong to no row of their image",
                            zN);
        rc = SQLITE_CORRUPT_VTAB;
    }
    sqlite3_free(zN);
    if (rc == SQLITE_OK) /* FTS5's own check of its index against its content */
        rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "INSERT INTO \"%w\".\"%w_captions\"(\"%w_captions\") VALUES('integrity-check')", p->zDb,
                             p->zName, p->zName);
    return rc;
}

int ram__index_caption_rename(IndexVtab *p, const char *zNew)
{
    if (!p->bCaptions) return SQLITE_OK;
    return ram__index_exec(p->db, &p->base.zErrMsg, "ALTER TABLE \"%w\".\"%w_captions\" RENAME TO \"%w_captions\"",
                           p->zDb, p->zName, zNew);
}
