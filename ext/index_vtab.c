/*
** index_vtab.c — the ram_index module: xCreate/xConnect (options, shadow tables),
** xBestIndex (the idxNum bit table of docs/INDEX.md), disconnect/destroy,
** transactions and savepoints (the journal and the config reload), and
** the registration with ram_index_stats().
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <stdlib.h>

/* ram_index_stats(): the counters as a JSON object. */
static void indexStatsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char *z = sqlite3_mprintf("{\"hashed\":%lld,\"inferences\":%lld,\"reused\":%lld,\"journal_hits\":%lld,"
                              "\"postings_read\":%lld,\"images_scored\":%lld,\"prefilter_scanned\":%lld,"
                              "\"codes_scanned\":%lld,\"codes_loaded\":%lld}",
                              STAT_GET(hashed), STAT_GET(inferences), STAT_GET(reused), STAT_GET(journal_hits),
                              STAT_GET(postings_read), STAT_GET(images_scored), STAT_GET(prefilter_scanned),
                              STAT_GET(codes_scanned), STAT_GET(codes_loaded));
    if (!z) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* ------------------------------------------------------------------ create / connect */

/* Parses one "key=value" argument; the value may be quoted. */
static int parse_arg(const char *z, char **pzKey, char **pzVal)
{
    const char *eq = strchr(z, '=');
    *pzKey = *pzVal = 0;
    if (!eq) return SQLITE_ERROR;
    const char *k0 = z, *k1 = eq;
    while (*k0 == ' ') k0++;
    while (k1 > k0 && k1[-1] == ' ') k1--;
    const char *v0 = eq + 1, *v1 = z + strlen(z);
    while (*v0 == ' ') v0++;
    while (v1 > v0 && v1[-1] == ' ') v1--;
    *pzKey = sqlite3_mprintf("%.*s", (int)(k1 - k0), k0);
    if (v1 - v0 >= 2 && (*v0 == '\'' || *v0 == '"') && v1[-1] == *v0) {
        char q = *v0;
        sqlite3_str *s = sqlite3_str_new(0);
        for (const char *c = v0 + 1; c < v1 - 1; c++) {
            sqlite3_str_appendchar(s, 1, *c);
            if (*c == q && c + 1 < v1 - 1 && c[1] == q) c++;
        }
        /* an empty string finishes as NULL: '' is a value, not out of memory */
        int bNoMem = sqlite3_str_errcode(s) != SQLITE_OK;
        *pzVal = sqlite3_str_finish(s);
        if (!*pzVal && !bNoMem) *pzVal = sqlite3_mprintf("");
    } else {
        *pzVal = sqlite3_mprintf("%.*s", (int)(v1 - v0), v0);
    }
    if (!*pzKey || !*pzVal) {
        sqlite3_free(*pzKey), sqlite3_free(*pzVal);
        *pzKey = *pzVal = 0;
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static void index_free(IndexVtab *p)
{
    if (!p) return;
    for (int i = 0; i < N_STMT; i++) sqlite3_finalize(p->aStmt[i]);
    ram__index_meta_reset(p);
    ram__journal_close(p);
    ram__index_model_drop(p);
    ram__index_caption_drop(p);
    sqlite3_free(p->aEmbeds), sqlite3_free(p->aProbs), sqlite3_free(p->aTokBlob);
    sqlite3_free(p->aTxnKey);
    ram__index_codes_free(p);
    ram__index_refit_free(p);
    sqlite3_free(p->zDb), sqlite3_free(p->zName), sqlite3_free(p->zModel);
    sqlite3_free(p->zGenDigest), sqlite3_free(p->zGenPrep);
    sqlite3_free(p->base.zErrMsg);
    sqlite3_free(p);
}

static int index_declare(sqlite3 *db, const char *zName)
{
    char *zSql = sqlite3_mprintf(
        "CREATE TABLE x(path TEXT, image BLOB HIDDEN, tags TEXT, score REAL, "
        "tag HIDDEN, k HIDDEN, prefilter HIDDEN, key BLOB HIDDEN, probs BLOB HIDDEN, "
        "cls BLOB HIDDEN, tags_zh TEXT HIDDEN, stale HIDDEN, entry BLOB HIDDEN, "
        "taken TEXT HIDDEN, taken_source TEXT HIDDEN, camera_make TEXT HIDDEN, "
        "camera_model TEXT HIDDEN, latitude REAL HIDDEN, longitude REAL HIDDEN, mtime HIDDEN, caption TEXT HIDDEN, "
        "\"%w\" HIDDEN)",
        zName);
    if (!zSql) return SQLITE_NOMEM;
    int rc = sqlite3_declare_vtab(db, zSql);
    sqlite3_free(zSql);
    return rc;
}

/* Scratch sized by the model. */
static int index_alloc_scratch(IndexVtab *p)
{
    p->aEmbeds = sqlite3_malloc64(sizeof(float) * (size_t)p->nTok * (size_t)p->nDim);
    p->aProbs = sqlite3_malloc64(sizeof(float) * (size_t)p->nClass);
    p->aTokBlob = sqlite3_malloc64(ram_cache_packed_size(p->nTok, p->nDim));
    return p->aEmbeds && p->aProbs && p->aTokBlob ? SQLITE_OK : SQLITE_NOMEM;
}

static int indexInit(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab, char **pzErr,
                     int bCreate)
{
    IndexVtab *p = 0;
    char *zKey = 0, *zVal = 0, *zPrep = 0;
    int rc = SQLITE_OK;
    *ppVtab = 0;
    for (int i = 0; i < N_COL - 1; i++)
        if (!sqlite3_stricmp(argv[2], ram__index_col_names[i])) {
            *pzErr =
                sqlite3_mprintf("ram_index: a table cannot be named like its column '%s'", ram__index_col_names[i]);
            return SQLITE_ERROR;
        }
    p = sqlite3_malloc(sizeof *p);
    if (!p) return SQLITE_NOMEM;
    memset(p, 0, sizeof *p);
    p->db = db;
    p->pConn = pAux;
    p->zDb = sqlite3_mprintf("%s", argv[1]);
    p->zName = sqlite3_mprintf("%s", argv[2]);
    if (!p->zDb || !p->zName) goto nomem;
    p->rFloor = 0.01;
    p->bExif = 1;
    p->bResume = 1;
    p->nCascade = INDEX_CASCADE_DEFAULT;

    if (bCreate) {
        for (int i = 3; i < argc; i++) {
            rc = parse_arg(argv[i], &zKey, &zVal);
            if (rc == SQLITE_NOMEM) goto nomem;
            if (rc) {
                *pzErr = sqlite3_mprintf("ram_index: argument '%s' is not key=value", argv[i]);
                goto fail;
            }
            int bCaptionOpt = 0;
            rc = ram__index_caption_option(p, zKey, &zVal, &bCaptionOpt, pzErr); /* index_caption.c */
            if (rc) goto fail;
            if (bCaptionOpt) {
                sqlite3_free(zKey), sqlite3_free(zVal);
                zKey = zVal = 0;
                continue;
            }
            if (!sqlite3_stricmp(zKey, "model")) {
                if (!zVal[0]) {
                    *pzErr = sqlite3_mprintf("ram_index: model= needs the path of a model file (leave it out to "
                                             "use the connection's model)");
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                sqlite3_free(p->zModel);
                p->zModel = zVal;
                zVal = 0;
                if (ram__trust_add(p->pConn, p->zModel)) goto nomem; /* named here: may be opened */
            } else if (!sqlite3_stricmp(zKey, "floor")) {
                char *end = 0;
                double f = strtod(zVal, &end);
                if (!end || *end || !(f > 0 && f <= 1)) {
                    *pzErr = sqlite3_mprintf("ram_index: floor must be a number in (0, 1], got '%s'", zVal);
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                p->rFloor = f;
            } else if (!sqlite3_stricmp(zKey, "cascade")) {
                char *end = 0;
                long long n = strtoll(zVal, &end, 10);
                if (!zVal[0] || !end || *end || n < 0) {
                    *pzErr = sqlite3_mprintf("ram_index: cascade must be a count of images (0 or more; 0 reads the "
                                             "int8 prefilter vector of every image), got '%s'",
                                             zVal);
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                p->nCascade = n;
            } else if (!sqlite3_stricmp(zKey, "on_error")) {
                if (sqlite3_stricmp(zVal, "skip") && sqlite3_stricmp(zVal, "fail")) {
                    *pzErr = sqlite3_mprintf("ram_index: on_error must be 'fail' or 'skip', got '%s'", zVal);
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                p->bSkipErrors = !sqlite3_stricmp(zVal, "skip");
            } else if (!sqlite3_stricmp(zKey, "store_images") || !sqlite3_stricmp(zKey, "exif") ||
                       !sqlite3_stricmp(zKey, "resume")) {
                int b;
                if (ram__parse_bool(zVal, &b)) {
                    *pzErr = sqlite3_mprintf("ram_index: %s must be 0 or 1, got '%s'", zKey, zVal);
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                if (zKey[0] == 's')
                    p->bStore = b;
                else if (zKey[0] == 'e')
                    p->bExif = b;
                else
                    p->bResume = b;
            } else {
                *pzErr = sqlite3_mprintf("ram_index: unknown option '%s' (expected model, floor, store_images, "
                                         "exif, resume, on_error, captions, caption_model or cascade)",
                                         zKey);
                rc = SQLITE_ERROR;
                goto fail;
            }
            sqlite3_free(zKey), sqlite3_free(zVal);
            zKey = zVal = 0;
        }
        /* The model must be loadable now: its digest starts generation 1. */
        rc = ram__index_model(p, 0);
        if (rc) {
            *pzErr = sqlite3_mprintf("%s", p->base.zErrMsg);
            goto fail;
        }
        struct ram_model_info info = p->pCtx->pEntry->info;
        p->nTok = info.n_image_tokens;
        p->nDim = info.embed_dim;
        p->nClass = info.num_class;
        zPrep = ram__index_prep_string(p->bExif);
        if (!zPrep) goto nomem;
        rc = ram__index_exec(db, pzErr,
                             "CREATE TABLE \"%w\".\"%w_config\"(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
                             "CREATE TABLE \"%w\".\"%w_gens\"(id INTEGER PRIMARY KEY, digest TEXT NOT NULL, "
                             "  prep TEXT NOT NULL, model TEXT);"
                             "CREATE TABLE \"%w\".\"%w_images\"(id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, "
                             "  gen INTEGER NOT NULL, nref INTEGER NOT NULL, probs BLOB NOT NULL);"
                             "CREATE TABLE \"%w\".\"%w_tokens\"(id INTEGER PRIMARY KEY, tokens BLOB NOT NULL);"
                             "CREATE INDEX \"%w\".\"%w_images_gen\" ON \"%w_images\"(gen);"
                             "CREATE TABLE \"%w\".\"%w_files\"(id INTEGER PRIMARY KEY, path TEXT UNIQUE, "
                             "  img INTEGER NOT NULL);"
                             "CREATE INDEX \"%w\".\"%w_files_img\" ON \"%w_files\"(img);"
                             "CREATE TABLE \"%w\".\"%w_postings\"(tag INTEGER, img INTEGER, score INTEGER NOT NULL, "
                             "  PRIMARY KEY(tag, score, img)) WITHOUT ROWID;" /* schema 4: index_codes.c */
                             "CREATE TABLE \"%w\".\"%w_cls\"(id INTEGER PRIMARY KEY, v BLOB NOT NULL);"
                             "CREATE TABLE \"%w\".\"%w_blobs\"(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
                             "INSERT INTO \"%w\".\"%w_gens\"(id, digest, prep, model) VALUES(1, %Q, %Q, %Q);"
                             "INSERT INTO \"%w\".\"%w_config\"(key, value) VALUES('version', %d), ('model', %Q), "
                             "  ('floor', %.17g), ('store_images', %d), ('exif', %d), ('resume', %d), ('gen', 1), "
                             "  ('n_tokens', %d), ('dim', %d), ('num_class', %d), ('layout', %d), ('cascade', %lld);",
                             p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName,
                             p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zName, p->zDb, p->zName, p->zDb, p->zName,
                             p->zDb, p->zName, p->zDb, p->zName, info.digest, zPrep, info.path, p->zDb, p->zName,
                             INDEX_SCHEMA_VERSION, p->zModel, p->rFloor, p->bStore, p->bExif, p->bResume, p->nTok,
                             p->nDim, p->nClass, RAM_CACHE_LAYOUT, (long long)p->nCascade);
        if (rc == SQLITE_OK) rc = ram__index_codes_create(db, p->zDb, p->zName, pzErr); /* index_codes.c */
        if (rc == SQLITE_OK) rc = ram__index_meta_create(p);                            /* index_meta.c */
        if (rc) {
            if (p->base.zErrMsg && !*pzErr) *pzErr = sqlite3_mprintf("%s", p->base.zErrMsg);
            goto fail;
        }
        if (p->bSkipErrors) {
            /* on_error=skip: the refused images are recorded, by path */
            rc = ram__index_exec(db, pzErr,
                                 "CREATE TABLE \"%w\".\"%w_skipped\"(path TEXT PRIMARY KEY, reason TEXT NOT NULL);"
                                 "INSERT INTO \"%w\".\"%w_config\"(key, value) VALUES('on_error', 'skip');",
                                 p->zDb, p->zName, p->zDb, p->zName);
            if (rc) goto fail;
        }
        rc = ram__index_caption_create(p, pzErr);
        if (rc) goto fail;
        sqlite3_free(p->zModel);
        p->zModel = 0;
    }
    rc = ram__index_load_config(p, pzErr);
    if (rc == SQLITE_OK) rc = ram__index_caption_load(p, pzErr);
    if (rc) goto fail;
    rc = index_alloc_scratch(p);
    if (rc) goto nomem;
    rc = index_declare(db, argv[2]);
    if (rc) {
        *pzErr = sqlite3_mprintf("ram_index: %s", sqlite3_errmsg(db));
        goto fail;
    }
    /* It reads a model file and writes the resume journal beside the database. */
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    sqlite3_free(zPrep);
    *ppVtab = &p->base;
    return SQLITE_OK;
nomem:
    rc = SQLITE_NOMEM;
fail:
    sqlite3_free(zKey), sqlite3_free(zVal), sqlite3_free(zPrep);
    index_free(p);
    return rc;
}

static int indexCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab, char **pzErr)
{
    return indexInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int indexConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab, char **pzErr)
{
    return indexInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

/* ------------------------------------------------------------------ planning */

/* 1 when the WHERE clause has column = ? (usable now or not). */
static int index_has_eq(const sqlite3_index_info *pInfo, int iCol)
{
    for (int i = 0; i < pInfo->nConstraint; i++)
        if (pInfo->aConstraint[i].iColumn == iCol && pInfo->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) return 1;
    return 0;
}

static int index_has_match(const sqlite3_index_info *pInfo)
{
    for (int i = 0; i < pInfo->nConstraint; i++)
        if (pInfo->aConstraint[i].iColumn == COL_NAME && pInfo->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_MATCH)
            return 1;
    return 0;
}

/* The message for a constraint on tag or score that the table cannot
** answer, saying how to write it instead; sqlite3_malloc'd (idxStr). */
static char *index_refusal(sqlite3_vtab *pVtab, const struct sqlite3_index_constraint *c)
{
    const char *zTable = ((IndexVtab *)pVtab)->zName;
    if (c->iColumn == COL_SCORE)
        return sqlite3_mprintf("refused: ram_index: score has a value only with tag = ... or MATCH (it is the queried "
                               "tag's or text's probability): write e.g. tag = 'dog' AND score > 0.5");
    switch (c->op) {
    case SQLITE_INDEX_CONSTRAINT_NE:
    case SQLITE_INDEX_CONSTRAINT_ISNOT:
        return sqlite3_mprintf("refused: ram_index: tag != is not supported (a row has many tags); to exclude a "
                               "tag write rowid NOT IN (SELECT rowid FROM %s WHERE tag = 'blue')",
                               zTable);
    case SQLITE_INDEX_CONSTRAINT_IS:
        return sqlite3_mprintf("refused: ram_index: write tag = 'dog' instead of tag IS 'dog'");
    default:
        /* LIKE 'bl%' reaches here as a range (the LIKE optimisation) or as LIKE */
        return sqlite3_mprintf("refused: ram_index: tag takes one tag name, compared with = or IN (tag = 'dog', "
                               "tag IN ('dog', 'cat')), not a pattern or a range; to match the selected tags' "
                               "names write e.g. tags LIKE '%%bl%%'; to exclude a tag write rowid NOT IN (SELECT "
                               "rowid FROM %s WHERE tag = 'blue')",
                               zTable);
    }
}

static int indexBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo)
{
    int iMatch = -1, iTag = -1, iRowid = -1, iPath = -1, iScore = -1, iK = -1, iPre = -1, iLimit = -1;
    int bTagUnusable = 0, bMatchUnusable = 0, scoreOp = 0, iRefuse = -1;
    for (int i = 0; i < pInfo->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
        int usable = c->usable;
        if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT || c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
            if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT && usable) iLimit = i;
            continue;
        }
        /* tag only has a value in a tag query and score only in a tag or
        ** MATCH query: any other form would compare with NULL and return
        ** no rows without a word. Those are refused (in xFilter, so that
        ** only the plan that runs can fail). */
        if ((c->iColumn == COL_TAG && c->op != SQLITE_INDEX_CONSTRAINT_EQ) ||
            (c->iColumn == COL_SCORE && !index_has_eq(pInfo, COL_TAG) && !index_has_match(pInfo))) {
            if (iRefuse < 0) iRefuse = i;
            continue;
        }
        if (c->op == SQLITE_INDEX_CONSTRAINT_MATCH && c->iColumn == COL_NAME) {
            if (usable)
                iMatch = i;
            else
                bMatchUnusable = 1;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_TAG) {
            if (usable)
                iTag = i;
            else
                bTagUnusable = 1;
        } else if (!usable) {
            continue;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == -1) {
            iRowid = i;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_PATH) {
            iPath = i;
        } else if ((c->op == SQLITE_INDEX_CONSTRAINT_GT || c->op == SQLITE_INDEX_CONSTRAINT_GE) &&
                   c->iColumn == COL_SCORE && iScore < 0) {
            iScore = i;
            scoreOp = c->op == SQLITE_INDEX_CONSTRAINT_GT ? IDX_SCORE_GT : IDX_SCORE_GE;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_K) {
            iK = i;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_PREFILTER) {
            iPre = i;
        }
    }
    if (iRefuse >= 0) {
        /* The refusal is the plan: xFilter reports idxStr. */
        pInfo->idxNum = PLAN_REFUSED;
        pInfo->idxStr = index_refusal(pVtab, &pInfo->aConstraint[iRefuse]);
        if (!pInfo->idxStr) return SQLITE_NOMEM;
        pInfo->needToFreeIdxStr = 1;
        pInfo->estimatedCost = 1;
        pInfo->estimatedRows = 1;
        return SQLITE_OK;
    }
    /* A MATCH or tag constraint whose value is not available yet makes this
    ** plan unusable: the planner must find an order where it is. */
    if ((bMatchUnusable && iMatch < 0) || (bTagUnusable && iTag < 0)) return SQLITE_CONSTRAINT;

    int plan = PLAN_SCAN, nArg = 0, flags = 0;
    if (iMatch >= 0) {
        plan = PLAN_MATCH;
        pInfo->aConstraintUsage[iMatch].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iMatch].omit = 1;
        if (iK >= 0) {
            flags |= IDX_K;
            pInfo->aConstraintUsage[iK].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iK].omit = 1;
        }
        if (iPre >= 0) {
            flags |= IDX_PREFILTER;
            pInfo->aConstraintUsage[iPre].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iPre].omit = 1;
        }
        if (iLimit >= 0 && iK < 0) {
            flags |= IDX_LIMIT;
            pInfo->aConstraintUsage[iLimit].argvIndex = ++nArg;
        }
        if (iTag >= 0) {
            flags |= IDX_TAG;
            pInfo->aConstraintUsage[iTag].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iTag].omit = 1;
        }
        if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == COL_SCORE && pInfo->aOrderBy[0].desc)
            pInfo->orderByConsumed = 1;
        pInfo->estimatedCost = 1e4;
        pInfo->estimatedRows = 20;
        pInfo->idxStr = (char *)(iTag >= 0 ? "match+tag" : "match");
    } else if (iTag >= 0) {
        plan = PLAN_TAG;
        pInfo->aConstraintUsage[iTag].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iTag].omit = 1;
        if (iScore >= 0) {
            flags |= scoreOp;
            pInfo->aConstraintUsage[iScore].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iScore].omit = 1;
        }
        pInfo->estimatedCost = 100;
        pInfo->estimatedRows = 100;
        pInfo->idxStr = (char *)(iScore >= 0 ? "tag+score" : "tag");
        /* The postings are read best first (schema 4: index_codes.c), so
        ** ORDER BY score DESC costs nothing and with a LIMIT only about
        ** LIMIT postings are read. SQLite itself withdraws orderByConsumed
        ** for tag IN (...), whose values are filtered one after the other. */
        if (((IndexVtab *)pVtab)->iSchema >= 4 && pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == COL_SCORE &&
            pInfo->aOrderBy[0].desc) {
            pInfo->orderByConsumed = 1;
            flags |= IDX_SCORE_ORDER;
            pInfo->idxStr = (char *)(iScore >= 0 ? "tag+score by score" : "tag by score");
            if (iLimit >= 0) pInfo->estimatedCost = 20;
        }
    } else if (iRowid >= 0) {
        plan = PLAN_ROWID;
        pInfo->aConstraintUsage[iRowid].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iRowid].omit = 1;
        pInfo->estimatedCost = 1;
        pInfo->estimatedRows = 1;
        pInfo->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        pInfo->idxStr = (char *)("rowid");
    } else if (iPath >= 0) {
        plan = PLAN_PATH;
        pInfo->aConstraintUsage[iPath].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iPath].omit = 1;
        pInfo->estimatedCost = 2;
        pInfo->estimatedRows = 1;
        pInfo->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        pInfo->idxStr = (char *)("path");
    } else {
        pInfo->estimatedCost = 1e6;
        pInfo->estimatedRows = 100000;
        pInfo->idxStr = (char *)("scan");
        if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == -1 && !pInfo->aOrderBy[0].desc)
            pInfo->orderByConsumed = 1;
    }
    if (plan != PLAN_MATCH && (iK >= 0 || iPre >= 0)) {
        /* k and prefilter mean nothing without MATCH: pass them so that
        ** xFilter can say so instead of returning no rows. */
        if (iK >= 0) flags |= IDX_K, pInfo->aConstraintUsage[iK].argvIndex = ++nArg;
        if (iPre >= 0) flags |= IDX_PREFILTER, pInfo->aConstraintUsage[iPre].argvIndex = ++nArg;
    }
    pInfo->idxNum = plan | flags;
    (void)pVtab;
    return SQLITE_OK;
}

/* ------------------------------------------------------------------ disconnect / destroy */

static int indexDisconnect(sqlite3_vtab *pVtab)
{
    index_free((IndexVtab *)pVtab);
    return SQLITE_OK;
}

static int indexDestroy(sqlite3_vtab *pVtab)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    for (int i = 0; i < N_STMT; i++) {
        sqlite3_finalize(p->aStmt[i]);
        p->aStmt[i] = 0;
    }
    ram__index_meta_reset(p);
    int rc = ram__index_exec(p->db, 0,
                             "DROP TABLE IF EXISTS \"%w\".\"%w_config\"; DROP TABLE IF EXISTS \"%w\".\"%w_gens\";"
                             "DROP TABLE IF EXISTS \"%w\".\"%w_images\"; DROP TABLE IF EXISTS \"%w\".\"%w_files\";"
                             "DROP TABLE IF EXISTS \"%w\".\"%w_postings\"; DROP TABLE IF EXISTS \"%w\".\"%w_cls\";"
                             "DROP TABLE IF EXISTS \"%w\".\"%w_blobs\"; DROP TABLE IF EXISTS \"%w\".\"%w_tokens\";"
                             "DROP TABLE IF EXISTS \"%w\".\"%w_skipped\"; DROP TABLE IF EXISTS \"%w\".\"%w_meta\";"
                             "DROP TABLE IF EXISTS \"%w\".\"%w_captions\"; DROP TABLE IF EXISTS \"%w\".\"%w_codes\";",
                             p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName,
                             p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName,
                             p->zDb, p->zName, p->zDb, p->zName);
    if (rc == SQLITE_OK) {
        ram__journal_drop(p);
        index_free(p);
    }
    return rc;
}

/* ------------------------------------------------------------------ transactions */

static int indexBegin(sqlite3_vtab *pVtab)
{
    ((IndexVtab *)pVtab)->bInWrite = 1;
    return SQLITE_OK;
}

static int indexSync(sqlite3_vtab *pVtab)
{
    ram__journal_commit((IndexVtab *)pVtab);
    return SQLITE_OK;
}

static int indexCommit(sqlite3_vtab *pVtab)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    p->bInWrite = 0;
    ram__journal_forget(p);
    return SQLITE_OK;
}

static int indexRollback(sqlite3_vtab *pVtab)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    p->bInWrite = 0;
    p->nTxnKey = 0;
    p->bReloadConfig = 1;
    ram__index_meta_reset(p); /* photos_meta may have been created in it */
    ram__journal_commit(p);   /* keep the work: the next run resumes from it */
    return SQLITE_OK;
}

/* ALTER TABLE RENAME renames tables, not their indexes (SQLite keeps an
** index's name): NAME_images_gen, NAME_files_img and, on a table upgraded from
** schema 3, NAME_postings_score would keep the old name on the renamed shadow
** tables, and a table created (or upgraded) later under the old name would
** fail on "index ... already exists". An index cannot be dropped and made
** again here (DROP is refused while the ALTER TABLE statement runs), so they
** are renamed in sqlite_schema, the way SQLite's own ALTER TABLE rewrites it:
** the name, and the name in the CREATE INDEX text; the statement reloads the
** schema after xRename. Under SQLITE_DBCONFIG_DEFENSIVE, where sqlite_schema
** cannot be written, the indexes keep their names (the rename still works).
** Runs after the shadow tables are renamed. */
static void indexRenameIndexes(IndexVtab *p, const char *zNew)
{
    static const char *const azIndex[] = {"images_gen", "files_img", "postings_score"};
    int bWritable = 0;
    sqlite3_db_config(p->db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, -1, &bWritable);
    sqlite3_db_config(p->db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, 1, (int *)0);
    for (int i = 0; i < 3; i++) {
        /* SQLite stores CREATE INDEX "main"."x" ON ... as CREATE INDEX "x" ON ... */
        char *zOldHead = sqlite3_mprintf("CREATE INDEX \"%w_%s\"", p->zName, azIndex[i]);
        char *zNewHead = sqlite3_mprintf("CREATE INDEX \"%w_%s\"", zNew, azIndex[i]);
        char *zSql = sqlite3_mprintf(
            "UPDATE \"%w\".sqlite_schema SET name = '%q_%s', sql = ?2 || substr(sql, length(?1) + 1) WHERE type = "
            "'index' AND name = '%q_%s' AND substr(sql, 1, length(?1)) = ?1",
            p->zDb, zNew, azIndex[i], p->zName, azIndex[i]);
        sqlite3_stmt *s = 0;
        if (zOldHead && zNewHead && zSql && sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) == SQLITE_OK) {
            sqlite3_bind_text(s, 1, zOldHead, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, zNewHead, -1, SQLITE_STATIC);
            sqlite3_step(s); /* an error (a defensive connection): the name stays */
        }
        sqlite3_finalize(s);
        sqlite3_free(zSql), sqlite3_free(zOldHead), sqlite3_free(zNewHead);
    }
    sqlite3_db_config(p->db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, bWritable, (int *)0);
}

static int indexRename(sqlite3_vtab *pVtab, const char *zNew)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    static const char *const azSuffix[] = {"config", "gens", "images", "tokens", "files", "postings", "cls", "blobs"};
    for (int i = 0; i < N_STMT; i++) {
        sqlite3_finalize(p->aStmt[i]);
        p->aStmt[i] = 0;
    }
    int rc = SQLITE_OK;
    for (int i = 0; i < 8 && rc == SQLITE_OK; i++)
        rc = ram__index_exec(p->db, &p->base.zErrMsg, "ALTER TABLE \"%w\".\"%w_%s\" RENAME TO \"%w_%s\"", p->zDb,
                             p->zName, azSuffix[i], zNew, azSuffix[i]);
    if (rc == SQLITE_OK && p->bSkipErrors)
        rc = ram__index_exec(p->db, &p->base.zErrMsg, "ALTER TABLE \"%w\".\"%w_skipped\" RENAME TO \"%w_skipped\"",
                             p->zDb, p->zName, zNew);
    if (rc == SQLITE_OK && p->iSchema >= 4)
        rc = ram__index_exec(p->db, &p->base.zErrMsg, "ALTER TABLE \"%w\".\"%w_codes\" RENAME TO \"%w_codes\"", p->zDb,
                             p->zName, zNew);
    ram__index_meta_reset(p);
    if (rc == SQLITE_OK && ram__index_meta_exists(p))
        rc = ram__index_exec(p->db, &p->base.zErrMsg, "ALTER TABLE \"%w\".\"%w_meta\" RENAME TO \"%w_meta\"", p->zDb,
                             p->zName, zNew);
    ram__index_meta_reset(p);
    if (rc == SQLITE_OK) rc = ram__index_caption_rename(p, zNew);
    if (rc == SQLITE_OK) indexRenameIndexes(p, zNew);
    if (rc == SQLITE_OK) {
        char *z = sqlite3_mprintf("%s", zNew);
        if (!z) return SQLITE_NOMEM;
        sqlite3_free(p->zName);
        p->zName = z;
    }
    return rc;
}

static int indexSavepoint(sqlite3_vtab *pVtab, int iSavepoint)
{
    (void)pVtab, (void)iSavepoint;
    return SQLITE_OK;
}

static int indexRelease(sqlite3_vtab *pVtab, int iSavepoint)
{
    (void)pVtab, (void)iSavepoint;
    return SQLITE_OK;
}

static int indexRollbackTo(sqlite3_vtab *pVtab, int iSavepoint)
{
    (void)iSavepoint;
    ((IndexVtab *)pVtab)->bReloadConfig = 1;
    ram__index_meta_reset((IndexVtab *)pVtab);
    return SQLITE_OK;
}

static int indexShadowName(const char *zName)
{
    static const char *const azShadow[] = {"config", "gens",  "images",  "tokens", "files", "postings",
                                           "cls",    "blobs", "skipped", "meta",   "codes"};
    for (size_t i = 0; i < sizeof azShadow / sizeof azShadow[0]; i++)
        if (!sqlite3_stricmp(zName, azShadow[i])) return 1;
    return 0;
}

static const sqlite3_module g_indexModule = {
    /* iVersion    */ 3,
    /* xCreate     */ indexCreate,
    /* xConnect    */ indexConnect,
    /* xBestIndex  */ indexBestIndex,
    /* xDisconnect */ indexDisconnect,
    /* xDestroy    */ indexDestroy,
    /* xOpen       */ ram__indexOpen,
    /* xClose      */ ram__indexClose,
    /* xFilter     */ ram__indexFilter,
    /* xNext       */ ram__indexNext,
    /* xEof        */ ram__indexEof,
    /* xColumn     */ ram__indexColumn,
    /* xRowid      */ ram__indexRowid,
    /* xUpdate     */ ram__indexUpdate,
    /* xBegin      */ indexBegin,
    /* xSync       */ indexSync,
    /* xCommit     */ indexCommit,
    /* xRollback   */ indexRollback,
    /* xFindFunction */ 0,
    /* xRename     */ indexRename,
    /* xSavepoint  */ indexSavepoint,
    /* xRelease    */ indexRelease,
    /* xRollbackTo */ indexRollbackTo,
    /* xShadowName */ indexShadowName,
};

/* Flags, on purpose: ram_index_stats reports process state, so it is neither
** deterministic nor innocuous; DIRECTONLY as ram_debug(). */
static const struct ram_func_def g_aFunc[] = {
    {"ram_index_stats", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, indexStatsFunc},
};

int ram__register_index(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    ram__conn_ref(p); /* dropped by the module destructor, also on failure */
    int rc = sqlite3_create_module_v2(db, "ram_index", &g_indexModule, p, ram__conn_unref);
    if (rc != SQLITE_OK) {
        *pzErrMsg = sqlite3_mprintf("ram: cannot register ram_index: %s", sqlite3_errmsg(db));
        return rc;
    }
    rc = ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
    return rc ? rc : ram__register_index_duplicates(db, pzErrMsg);
}
