/*
** index_update.c — xUpdate of ram_index: row inserts, updates and deletes, and the
** commands written to the hidden column named like the table
** (integrity-check, model=, exif=, reembed, delete-stale).
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <stdlib.h>

/* ------------------------------------------------------------------ commands */

/* *pn = the row count of shadow table NAME_zSuffix (-1 if the query gave no row). */
static int shadow_count(IndexVtab *p, const char *zSuffix, sqlite3_int64 *pn)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_%s\"", p->zDb, p->zName, zSuffix);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    *pn = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    return sqlite3_finalize(s);
}

static int cmd_integrity(IndexVtab *p)
{
    static const struct {
        const char *zSql, *zWhat;
    } aCheck[] = {
        {"SELECT count(*) FROM \"%w\".\"%w_files\" f LEFT JOIN \"%w\".\"%w_images\" i ON i.id = f.img "
         "WHERE i.id IS NULL",
         "file rows point to missing images"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE nref <> (SELECT count(*) FROM \"%w\".\"%w_files\" f "
         "WHERE f.img = i.id)",
         "images have a wrong reference count"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_cls\" c "
         "WHERE c.id = i.id)",
         "images lack a prefilter vector"},
        {"SELECT count(*) FROM \"%w\".\"%w_cls\" c WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = c.id)",
         "prefilter vectors belong to no image"},
        {"SELECT count(*) FROM \"%w\".\"%w_tokens\" t WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = t.id)",
         "token rows belong to no image"},
        {"SELECT count(*) FROM \"%w\".\"%w_blobs\" b WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = b.id)",
         "stored images belong to no image entry"},
        {"SELECT count(*) FROM \"%w\".\"%w_postings\" t WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = t.img)",
         "postings belong to no image"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_gens\" g "
         "WHERE g.id = i.gen)",
         "images name an unknown generation"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE length(key) <> 16 OR typeof(key) <> 'blob'",
         "images have a malformed key"},
    };
    int rc = SQLITE_OK;
    for (size_t k = 0; k < sizeof aCheck / sizeof aCheck[0] && rc == SQLITE_OK; k++) {
        sqlite3_stmt *s = 0;
        char *zSql = sqlite3_mprintf(aCheck[k].zSql, p->zDb, p->zName, p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        if (rc) break;
        sqlite3_int64 n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        rc = sqlite3_finalize(s);
        if (rc == SQLITE_OK && n) {
            ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld %s", n, aCheck[k].zWhat);
            return SQLITE_CORRUPT_VTAB;
        }
    }
    if (rc) return rc;
    if ((rc = ram__index_meta_integrity(p))) return rc; /* index_meta.c */
    {
        sqlite3_stmt *c = 0;
        char *zCls = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_cls\" WHERE typeof(v) <> 'blob' OR "
                                     "length(v) <> %lld",
                                     p->zDb, p->zName, (long long)ram_cache_unit_size(p->nDim));
        rc = zCls ? sqlite3_prepare_v2(p->db, zCls, -1, &c, 0) : SQLITE_NOMEM;
        sqlite3_free(zCls);
        if (rc) return rc;
        sqlite3_int64 n = sqlite3_step(c) == SQLITE_ROW ? sqlite3_column_int64(c, 0) : 0;
        rc = sqlite3_finalize(c);
        if (rc == SQLITE_OK && n) {
            ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld prefilter vectors have a wrong size",
                                n);
            return SQLITE_CORRUPT_VTAB;
        }
        if (rc) return rc;
    }
    /* Per image: tokens readable, probs blob well formed, postings equal to it. */
    sqlite3_stmt *s = 0, *t = 0;
    char *zSql = sqlite3_mprintf("SELECT i.id, i.probs, t.tokens FROM \"%w\".\"%w_images\" i "
                                 "LEFT JOIN \"%w\".\"%w_tokens\" t ON t.id = i.id",
                                 p->zDb, p->zName, p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_postings\" WHERE tag = ?1 AND img = ?2 AND score = ?3",
                           p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &t, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    sqlite3_int64 nPost = 0;
    while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        sqlite3_int64 img = sqlite3_column_int64(s, 0);
        struct ram_cache_tokens v;
        struct ram_error err;
        if (ram_cache_view(sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2), p->nTok, p->nDim, &v, &err)) {
            ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: image %lld: %s", img, err.msg);
            rc = SQLITE_CORRUPT_VTAB;
            break;
        }
        const unsigned char *a = sqlite3_column_blob(s, 1);
        int cnt = ram__probs_count(a, sqlite3_column_bytes(s, 1), p->nClass);
        if (cnt < 0) {
            ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: image %lld has a malformed probs blob",
                                img);
            rc = SQLITE_CORRUPT_VTAB;
            break;
        }
        for (int e = 0; e < cnt && rc == SQLITE_OK; e++) {
            sqlite3_bind_int(t, 1, (int)get_u16(a + 4 + 6 * e));
            sqlite3_bind_int64(t, 2, img);
            sqlite3_bind_int64(t, 3, prob_bits(get_f32(a + 4 + 6 * e + 2)));
            if (sqlite3_step(t) != SQLITE_ROW || sqlite3_column_int64(t, 0) != 1) {
                ram__vtab_set_error(&p->base,
                                    "ram_index: integrity-check failed: image %lld lacks the posting of tag %u", img,
                                    get_u16(a + 4 + 6 * e));
                rc = SQLITE_CORRUPT_VTAB;
            }
            sqlite3_reset(t);
        }
        nPost += cnt;
    }
    sqlite3_finalize(s);
    sqlite3_finalize(t);
    if (rc) return rc;
    if (p->iSchema >= 4) { /* the codes are the signs of the stored unit vectors (index_codes.c) */
        unsigned char aCode[RAM_INDEX_MAX_CODE];
        size_t nc = ram_cache_code_size(p->nDim);
        zSql = sqlite3_mprintf("SELECT c.id, c.c, v.v FROM \"%w\".\"%w_codes\" c "
                               "LEFT JOIN \"%w\".\"%w_cls\" v ON v.id = c.id",
                               p->zDb, p->zName, p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        sqlite3_int64 nCode = 0;
        while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
            struct ram_error err;
            nCode++;
            if (nc > sizeof aCode || (size_t)sqlite3_column_bytes(s, 1) != nc ||
                ram_cache_unit_code(sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2), p->nDim, aCode,
                                    &err) != RAM_OK ||
                memcmp(aCode, sqlite3_column_blob(s, 1), nc)) {
                ram__vtab_set_error(&p->base,
                                    "ram_index: integrity-check failed: image %lld has a code that is not its "
                                    "prefilter vector's",
                                    sqlite3_column_int64(s, 0));
                rc = SQLITE_CORRUPT_VTAB;
            }
        }
        sqlite3_finalize(s);
        s = 0;
        if (rc) return rc;
        sqlite3_int64 nCls = 0;
        rc = shadow_count(p, "cls", &nCls);
        if (rc == SQLITE_OK && nCls != nCode) {
            ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld codes, %lld prefilter vectors",
                                nCode, nCls);
            rc = SQLITE_CORRUPT_VTAB;
        }
        if (rc) return rc;
    }
    sqlite3_int64 nHave = 0;
    rc = shadow_count(p, "postings", &nHave);
    if (rc == SQLITE_OK && nHave != nPost) {
        ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld postings, the images record %lld", nHave,
                            nPost);
        rc = SQLITE_CORRUPT_VTAB;
    }
    if (rc == SQLITE_OK) rc = ram__index_caption_check(p);
    return rc;
}

/* Starts a new generation for (digest, prep), reusing a matching old one. */
static int index_set_generation(IndexVtab *p, const char *zDigest, const char *zPrep, const char *zModelPath,
                                const char *zModelCfg, int bExif)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT id FROM \"%w\".\"%w_gens\" WHERE digest = ?1 AND prep = ?2", p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    sqlite3_bind_text(s, 1, zDigest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, zPrep, -1, SQLITE_STATIC);
    sqlite3_int64 gen = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    if (!gen) {
        rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "INSERT INTO \"%w\".\"%w_gens\"(digest, prep, model) VALUES(%Q, %Q, %Q)", p->zDb, p->zName,
                             zDigest, zPrep, zModelPath);
        if (rc) return rc;
        gen = sqlite3_last_insert_rowid(p->db);
    }
    rc = ram__index_exec(p->db, &p->base.zErrMsg,
                         "INSERT OR REPLACE INTO \"%w\".\"%w_config\"(key, value) VALUES('gen', %lld), ('model', %Q), "
                         "('exif', %d)",
                         p->zDb, p->zName, gen, zModelCfg, bExif);
    if (rc) return rc;
    /* zDigest may be p->zGenDigest itself: copy before freeing. */
    char *zD = sqlite3_mprintf("%s", zDigest), *zP = sqlite3_mprintf("%s", zPrep);
    if (!zD || !zP) {
        sqlite3_free(zD), sqlite3_free(zP);
        return SQLITE_NOMEM;
    }
    p->iGen = gen;
    p->bExif = bExif;
    sqlite3_free(p->zGenDigest), sqlite3_free(p->zGenPrep);
    p->zGenDigest = zD;
    p->zGenPrep = zP;
    p->bModelChecked = 0;
    return SQLITE_OK;
}

/* 'model' / 'model=PATH': index with another model from now on. */
static int cmd_model(IndexVtab *p, const char *zPath)
{
    char *zNew = zPath && zPath[0] ? sqlite3_mprintf("%s", zPath) : 0;
    if (zPath && zPath[0] && !zNew) return SQLITE_NOMEM;
    if (zNew && ram__trust_add(p->pConn, zNew)) { /* named here: may be opened */
        sqlite3_free(zNew);
        return SQLITE_NOMEM;
    }
    ram__index_model_drop(p);
    sqlite3_free(p->zModel);
    p->zModel = zNew;
    int rc = ram__index_model(p, 0);
    struct ram_model_info info;
    if (rc == SQLITE_OK) {
        ram_model_get_info(p->pModel, &info);
        if (info.n_image_tokens != p->nTok || info.embed_dim != p->nDim || info.num_class != p->nClass) {
            ram__vtab_set_error(
                &p->base,
                "ram_index: the model '%s' has %d tokens x %d, %d classes; %s holds %d x %d, %d classes "
                "(create a new table for it)",
                info.path, info.n_image_tokens, info.embed_dim, info.num_class, p->zName, p->nTok, p->nDim, p->nClass);
            rc = SQLITE_ERROR;
        }
    }
    if (rc == SQLITE_OK) {
        char *zPrep = ram__index_prep_string(p->bExif);
        rc = zPrep ? index_set_generation(p, info.digest, zPrep, info.path, p->zModel, p->bExif) : SQLITE_NOMEM;
        sqlite3_free(zPrep);
    }
    if (rc != SQLITE_OK) {
        /* The table keeps its model: the config was not changed (or is
        ** rolled back with the statement); reread it before the next use. */
        ram__index_model_drop(p);
        p->bReloadConfig = 1;
    }
    return rc;
}

static int cmd_exif(IndexVtab *p, int bExif)
{
    int rc = ram__index_model(p, 1);
    if (rc) return rc;
    char *zPrep = ram__index_prep_string(bExif);
    if (!zPrep) return SQLITE_NOMEM;
    struct ram_model_info info;
    ram_model_get_info(p->pModel, &info);
    rc = index_set_generation(p, p->zGenDigest, zPrep, info.path, p->zModel, bExif);
    sqlite3_free(zPrep);
    return rc;
}

/* Collects the ids of stale images (gen other than the current one). */
static int stale_images(IndexVtab *p, const char *zExtra, sqlite3_int64 **paImg, int *pnImg)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT id FROM \"%w\".\"%w_images\" i WHERE (gen < ?1 OR gen > ?1) %s", p->zDb,
                                 p->zName, zExtra);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    *paImg = 0;
    *pnImg = 0;
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, p->iGen);
    int n = 0, nAlloc = 0;
    sqlite3_int64 *a = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n == nAlloc) {
            nAlloc = nAlloc ? 2 * nAlloc : 64;
            sqlite3_int64 *b = sqlite3_realloc64(a, sizeof(sqlite3_int64) * (size_t)nAlloc);
            if (!b) {
                sqlite3_free(a);
                sqlite3_finalize(s);
                return SQLITE_NOMEM;
            }
            a = b;
        }
        a[n++] = sqlite3_column_int64(s, 0);
    }
    rc = sqlite3_finalize(s);
    if (rc) {
        sqlite3_free(a);
        return rc;
    }
    *paImg = a;
    *pnImg = n;
    return SQLITE_OK;
}

/* 'reembed': recomputes every stale image from its stored bytes. */
static int cmd_reembed(IndexVtab *p)
{
    int rc = ram__index_model(p, 1);
    if (rc) return rc;
    sqlite3_int64 *a = 0;
    int n = 0;
    char *zExtra =
        sqlite3_mprintf("AND NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_blobs\" b WHERE b.id = i.id)", p->zDb, p->zName);
    if (!zExtra) return SQLITE_NOMEM;
    rc = stale_images(p, zExtra, &a, &n);
    sqlite3_free(zExtra);
    sqlite3_free(a);
    if (rc) return rc;
    if (n) {
        ram__vtab_set_error(
            &p->base,
            "ram_index: reembed: %d stale image%s no stored bytes (store_images=0); re-insert %s files, "
            "or run INSERT INTO %s(%s) VALUES('delete-stale')",
            n, n == 1 ? " has" : "s have", n == 1 ? "its" : "their", p->zName, p->zName);
        return SQLITE_ERROR;
    }
    rc = stale_images(p, "", &a, &n);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_stmt *s = 0, *k = 0;
        char *zSql = sqlite3_mprintf("SELECT b.data, i.key FROM \"%w\".\"%w_blobs\" b JOIN \"%w\".\"%w_images\" i "
                                     "ON i.id = b.id WHERE b.id = ?1",
                                     p->zDb, p->zName, p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        if (rc) break;
        sqlite3_bind_int64(s, 1, a[i]);
        if (sqlite3_step(s) == SQLITE_ROW) {
            int nBlob = sqlite3_column_bytes(s, 0);
            void *pBlob = sqlite3_malloc(nBlob ? nBlob : 1);
            unsigned char aKey[16] = {0};
            if (!pBlob)
                rc = SQLITE_NOMEM;
            else {
                memcpy(pBlob, sqlite3_column_blob(s, 0), (size_t)nBlob);
                if (sqlite3_column_bytes(s, 1) == 16) memcpy(aKey, sqlite3_column_blob(s, 1), 16);
            }
            sqlite3_finalize(s);
            s = 0;
            if (rc == SQLITE_OK) {
                IndexEmbedding e;
                sqlite3_int64 img;
                rc = ram__index_embed(p, aKey, pBlob, nBlob, &e);
                if (rc == SQLITE_OK) rc = ram__index_write_image(p, a[i], aKey, &e, 0, 0, &img);
                ram__embedding_clear(&e);
            }
            sqlite3_free(pBlob);
        }
        sqlite3_finalize(s);
        (void)k;
    }
    sqlite3_free(a);
    return rc;
}

/* 'delete-stale': removes the files whose image is stale. */
static int cmd_delete_stale(IndexVtab *p)
{
    sqlite3_int64 *a = 0;
    int n = 0;
    int rc = stale_images(p, "", &a, &n);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        rc = ram__index_exec(p->db, &p->base.zErrMsg, "DELETE FROM \"%w\".\"%w_files\" WHERE img = %lld", p->zDb,
                             p->zName, a[i]);
        if (rc == SQLITE_OK) {
            /* Drop the image entry whatever its count: its files are gone. */
            rc = ram__index_exec(p->db, &p->base.zErrMsg, "UPDATE \"%w\".\"%w_images\" SET nref = 1 WHERE id = %lld",
                                 p->zDb, p->zName, a[i]);
            if (rc == SQLITE_OK) rc = ram__index_image_ref(p, a[i], -1);
        }
    }
    sqlite3_free(a);
    if (rc == SQLITE_OK && n > 0) rc = ram__index_meta_delete(p, -1); /* their photos_meta rows */
    return rc;
}

static int index_command(IndexVtab *p, sqlite3_value *pCmd)
{
    const char *z = (const char *)sqlite3_value_text(pCmd);
    if (!z) return SQLITE_NOMEM;
    if (!strcmp(z, "integrity-check")) return cmd_integrity(p);
    if (!strcmp(z, "reembed")) return cmd_reembed(p);
    if (!strcmp(z, "delete-stale")) return cmd_delete_stale(p);
    if (!strcmp(z, "upgrade")) return ram__index_upgrade(p); /* index_codes.c */
    if (!strncmp(z, "cascade=", 8)) return ram__index_cmd_cascade(p, z + 8);
    if (!strncmp(z, "refit=", 6)) return ram__index_cmd_refit(p, z + 6); /* index_codes.c */
    if (!strcmp(z, "model")) return cmd_model(p, 0);
    if (!strncmp(z, "model=", 6)) return cmd_model(p, z + 6);
    if (!strncmp(z, "exif=", 5)) {
        int b;
        if (ram__parse_bool(z + 5, &b) == SQLITE_OK) return cmd_exif(p, b);
    }
    ram__vtab_set_error(&p->base,
                        "ram_index: unknown command '%s' (expected integrity-check, reembed, delete-stale, model, "
                        "model=PATH, exif=0|1, cascade=N, refit=P or upgrade)",
                        z);
    return SQLITE_ERROR;
}

/* ------------------------------------------------------------------ writes */

/* The image value of an INSERT or UPDATE, checked. */
static int index_image_arg(IndexVtab *p, sqlite3_value *v, const void **ppBlob, int *pnBlob)
{
    int t = sqlite3_value_type(v);
    if (t != SQLITE_BLOB) {
        ram__vtab_set_error(&p->base, "ram_index: image must be a BLOB of encoded image bytes, got %s",
                            t == SQLITE_NULL   ? "NULL"
                            : t == SQLITE_TEXT ? "TEXT"
                                               : "a number");
        return SQLITE_MISMATCH;
    }
    *pnBlob = sqlite3_value_bytes(v);
    *ppBlob = sqlite3_value_blob(v);
    if (!*ppBlob) *ppBlob = "";
    /* Stored embeddings are not image bytes: say what to do, before a
    ** decoder says "not in a known format". */
    if (ram__embed_blob_is(*ppBlob, *pnBlob) || ram__entry_blob_is(*ppBlob, *pnBlob)) {
        ram__vtab_set_error(&p->base,
                            "ram_index: image is a %s BLOB, not image bytes; to store a row without running the "
                            "model, insert the entry column of another ram_index table: INSERT INTO %s(path, entry) "
                            "SELECT path, entry FROM other.%s",
                            ram__embed_blob_is(*ppBlob, *pnBlob) ? "ram_embed()" : "ram_index entry", p->zName,
                            p->zName);
        return SQLITE_MISMATCH;
    }
    return SQLITE_OK;
}

/* The row write of an INSERT once the key is known (pGiven: an entry's
** embeddings, else the image bytes are embedded when new). */
static int index_insert_keyed(IndexVtab *p, sqlite3_value **argv, const unsigned char *aKey, const void *pBlob,
                              int nBlob, IndexEmbedding *pGiven, sqlite_int64 *pRowid)
{
    sqlite3_value *pPath = argv[2 + COL_PATH];
    int rc;
    sqlite3_int64 fid = 0, oldImg = 0, newImg = 0;
    if (sqlite3_value_type(pPath) != SQLITE_NULL) {
        sqlite3_stmt *s;
        rc = ram__index_stmt(p, STMT_FILE_BY_PATH, &s);
        if (rc) return rc;
        sqlite3_bind_value(s, 1, pPath);
        if (sqlite3_step(s) == SQLITE_ROW) {
            fid = sqlite3_column_int64(s, 0);
            oldImg = sqlite3_column_int64(s, 1);
            int same = sqlite3_column_bytes(s, 2) == 16 && !memcmp(sqlite3_column_blob(s, 2), aKey, 16) &&
                       sqlite3_column_int64(s, 3) == p->iGen;
            if (same) {
                /* The same file again: nothing to do (resumable INSERT ... SELECT). */
                sqlite3_reset(s);
                STAT_ADD(reused, 1);
                *pRowid = fid;
                p->bSameFile = 1;
                return SQLITE_OK;
            }
        }
        rc = sqlite3_reset(s);
        if (rc) return rc;
    }
    if (fid && sqlite3_value_type(argv[1]) != SQLITE_NULL && sqlite3_value_int64(argv[1]) != fid) {
        ram__vtab_set_error(&p->base, "ram_index: path '%s' already has rowid %lld", sqlite3_value_text(pPath), fid);
        return SQLITE_CONSTRAINT;
    }
    rc = ram__index_acquire_image(p, aKey, pBlob, nBlob, pGiven, &newImg);
    if (rc) return rc;
    sqlite3_stmt *s;
    if (fid) {
        /* The path exists with other bytes: the file changed, point it at them. */
        rc = ram__index_stmt(p, STMT_FILE_SET_IMG, &s);
        if (rc) return rc;
        sqlite3_bind_int64(s, 1, fid);
        sqlite3_bind_int64(s, 2, newImg);
        rc = ram__index_step_done(p, s);
        if (rc == SQLITE_OK) rc = ram__index_image_ref(p, oldImg, -1);
        *pRowid = fid;
        return rc;
    }
    rc = ram__index_stmt(p, STMT_FILE_INSERT, &s);
    if (rc) return rc;
    sqlite3_bind_value(s, 1, argv[1]);
    sqlite3_bind_value(s, 2, pPath);
    sqlite3_bind_int64(s, 3, newImg);
    rc = ram__index_step_done(p, s);
    if (rc) return rc;
    *pRowid = sqlite3_last_insert_rowid(p->db);
    return SQLITE_OK;
}

/* on_error=skip: an image refused by the decoder or the pixel limit is
** recorded in photos_skipped (path, reason) and the INSERT goes on without
** a row; a path inserted fine leaves that table. */
static int index_note_skip(IndexVtab *p, sqlite3_value *pPath, int rcInsert, sqlite_int64 *pRowid)
{
    char *zSql = sqlite3_mprintf(rcInsert == SQLITE_OK
                                     ? "DELETE FROM \"%w\".\"%w_skipped\" WHERE path = ?1"
                                     : "INSERT OR REPLACE INTO \"%w\".\"%w_skipped\"(path, reason) VALUES(?1, ?2)",
                                 p->zDb, p->zName);
    sqlite3_stmt *s = 0;
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_OK) {
        sqlite3_bind_value(s, 1, pPath);
        if (rcInsert != SQLITE_OK)
            sqlite3_bind_text(s, 2, p->base.zErrMsg ? p->base.zErrMsg : "?", -1, SQLITE_TRANSIENT);
        sqlite3_step(s);
        rc = sqlite3_finalize(s);
    }
    if (rc) {
        ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
        return rc;
    }
    if (rcInsert != SQLITE_OK) {
        sqlite3_free(p->base.zErrMsg);
        p->base.zErrMsg = 0;
        *pRowid = 0; /* no row: the statement goes on */
    }
    return SQLITE_OK;
}

static int index_insert(IndexVtab *p, sqlite3_value **argv, sqlite_int64 *pRowid)
{
    const void *pBlob = 0;
    int nBlob = 0, rc;
    unsigned char aKey[16];
    IndexEmbedding given, *pGiven = 0;
    if ((rc = ram__index_meta_check(p, argv, 0))) return rc; /* before any write */
    if (sqlite3_value_type(argv[2 + COL_ENTRY]) != SQLITE_NULL) {
        /* An entry read from a table: stored as is, no model needed. */
        if (sqlite3_value_type(argv[2 + COL_IMAGE]) != SQLITE_NULL) {
            ram__vtab_set_error(&p->base, "ram_index: give image or entry, not both");
            return SQLITE_MISUSE;
        }
        rc = ram__index_entry_arg(p, argv[2 + COL_ENTRY], aKey, &given);
        if (rc) return rc;
        pGiven = &given;
    } else {
        rc = index_image_arg(p, argv[2 + COL_IMAGE], &pBlob, &nBlob);
        if (rc) return rc;
        rc = ram__index_model(p, 1);
        if (rc) return rc;
        ram__index_hash(pBlob, nBlob, aKey);
    }
    p->bImageError = 0;
    p->bSameFile = 0;
    rc = index_insert_keyed(p, argv, aKey, pBlob, nBlob, pGiven, pRowid);
    if (pGiven) ram__embedding_clear(pGiven);
    if (rc == SQLITE_OK) rc = ram__index_meta_write(p, *pRowid, argv, pBlob, nBlob, 0); /* index_meta.c */
    if (rc == SQLITE_OK && *pRowid)
        rc = ram__index_caption_put(p, *pRowid, pGiven ? 0 : argv[2 + COL_IMAGE], argv[2 + COL_CAPTION]);
    if (p->bSkipErrors && (rc == SQLITE_OK || (p->bImageError && rc != SQLITE_INTERRUPT)))
        rc = index_note_skip(p, argv[2 + COL_PATH], rc, pRowid);
    return rc;
}

static int index_delete(IndexVtab *p, sqlite3_int64 fid)
{
    sqlite3_stmt *s;
    int rc = ram__index_stmt(p, STMT_FILE_GET, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    if (sqlite3_step(s) != SQLITE_ROW) return sqlite3_reset(s);
    sqlite3_int64 img = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    rc = ram__index_stmt(p, STMT_FILE_DELETE, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    rc = ram__index_step_done(p, s);
    if (rc == SQLITE_OK) rc = ram__index_meta_delete(p, fid);
    if (rc == SQLITE_OK) rc = ram__index_caption_delete(p, fid);
    if (rc) return rc;
    return ram__index_image_ref(p, img, -1);
}

static int index_update(IndexVtab *p, sqlite3_value **argv)
{
    sqlite3_int64 fid = sqlite3_value_int64(argv[0]);
    static const int aReadOnly[] = {COL_TAGS,    COL_SCORE, COL_KEY,   COL_PROBS,  COL_CLS,
                                    COL_TAGS_ZH, COL_STALE, COL_ENTRY, COL_CAPTION};
    for (size_t i = 0; i < sizeof aReadOnly / sizeof aReadOnly[0]; i++) {
        sqlite3_value *v = argv[2 + aReadOnly[i]];
        if (!sqlite3_value_nochange(v) && sqlite3_value_type(v) != SQLITE_NULL) {
            ram__vtab_set_error(&p->base, "ram_index: column %s is read-only", ram__index_col_names[aReadOnly[i]]);
            return SQLITE_READONLY;
        }
    }
    if (sqlite3_value_int64(argv[1]) != fid) {
        ram__vtab_set_error(&p->base, "ram_index: the rowid cannot change");
        return SQLITE_READONLY;
    }
    int rc = ram__index_meta_check(p, argv, 1); /* before any write */
    if (rc) return rc;
    sqlite3_stmt *s;
    rc = ram__index_stmt(p, STMT_FILE_SET_PATH, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_value(s, 2, argv[2 + COL_PATH]);
    rc = ram__index_step_done(p, s);
    if (rc) return rc;
    sqlite3_value *pImage = argv[2 + COL_IMAGE];
    if (sqlite3_value_nochange(pImage)) return ram__index_meta_write(p, fid, argv, 0, 0, 1);
    const void *pBlob;
    int nBlob;
    unsigned char aKey[16];
    rc = index_image_arg(p, pImage, &pBlob, &nBlob);
    if (rc == SQLITE_OK) rc = ram__index_model(p, 1);
    if (rc) return rc;
    ram__index_hash(pBlob, nBlob, aKey);
    rc = ram__index_meta_write(p, fid, argv, pBlob, nBlob, 1);
    if (rc) return rc;
    rc = ram__index_stmt(p, STMT_FILE_GET, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_int64 oldImg = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_int64 newImg = 0;
    rc = ram__index_acquire_image(p, aKey, pBlob, nBlob, 0, &newImg);
    if (rc || newImg == oldImg) return rc ? rc : ram__index_image_ref(p, newImg, -1);
    rc = ram__index_stmt(p, STMT_FILE_SET_IMG, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_int64(s, 2, newImg);
    rc = ram__index_step_done(p, s);
    if (rc == SQLITE_OK && oldImg) rc = ram__index_image_ref(p, oldImg, -1);
    if (rc == SQLITE_OK) rc = ram__index_caption_put(p, fid, pImage, 0);
    return rc;
}

int ram__indexUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    int rc = ram__index_sync_config(p);
    if (rc == SQLITE_OK && p->iSchema < 4) rc = ram__index_upgrade(p); /* a schema-3 table's first write */
    if (rc != SQLITE_OK) return rc;
    if (argc == 1) return index_delete(p, sqlite3_value_int64(argv[0]));
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        if (sqlite3_value_type(argv[2 + COL_NAME]) != SQLITE_NULL) return index_command(p, argv[2 + COL_NAME]);
        return index_insert(p, argv, pRowid);
    }
    return index_update(p, argv);
}
