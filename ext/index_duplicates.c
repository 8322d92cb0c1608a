/*
** index_duplicates.c — ram_index_duplicates, a table-valued function listing
** the groups of near-duplicate pictures of a ram_index table: resized,
** recompressed or slightly cropped copies, and files with the same bytes.
**
**     SELECT grp, path, round(similarity, 3) FROM ram_index_duplicates('photos');
**     SELECT grp, path FROM ram_index_duplicates('photos', 0.98);         -- stricter
**     SELECT grp, count(*) FROM ram_index_duplicates('photos', 0.9, 'main') GROUP BY grp;
**
** Without a schema the table is looked up as SQLite looks up an unqualified
** name (temp, main, attached databases).
**
** Columns: grp (1, 2, ... in the order of each group's first row), id (the
** row's rowid in the table), path, similarity (cosine of the row's CLS with
** the group's first row's, 1 for the same image); hidden: tbl, threshold,
** schema (the arguments; threshold reads the one in force). Only rows in a group of two or more come out,
** ordered by grp, then id. The default threshold is RAM_DUP_THRESHOLD
** (docs/INDEX.md says how it was chosen).
**
** HOW IT WORKS: two images are near-duplicates when the cosine of their CLS
** embeddings, as stored for the MATCH prefilter (photos_cls: unit vectors,
** int8 with one scale), is at or above the threshold; a group is a
** connected component of that relation (a chain of close pairs links its
** members), found by union-find. Rows sharing one image (the same bytes)
** are always in one group. Every pair is compared (core/near_dup.c: the
** n^2/2 dot products as blocked matrix products), no model needed;
** sqlite3_interrupt() stops it (between blocks of 256 rows). Rows whose
** image is stale (embedded with another model) are left out.
**
** It reads only the shadow tables of the table it is given, in the same
** database connection, and writes nothing: SQLITE_VTAB_INNOCUOUS.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include "near_dup.h"

#include <stdlib.h>

/* The default cosine threshold (see the header and docs/INDEX.md). */
#define RAM_DUP_THRESHOLD 0.91

enum { DUP_GRP = 0, DUP_ID, DUP_PATH, DUP_SIM, DUP_TBL, DUP_THRESHOLD, DUP_SCHEMA };
#define DUP_HAS_THRESHOLD 1
#define DUP_HAS_SCHEMA 2
#define DUP_HAS_TBL 4

typedef struct DupVtab {
    sqlite3_vtab base;
    sqlite3 *db; /* the connection (borrowed) */
} DupVtab;

typedef struct DupRow {
    sqlite3_int64 grp, id;
    char *zPath; /* sqlite3_free; NULL for a NULL path */
    double sim;
} DupRow;

typedef struct DupCursor {
    sqlite3_vtab_cursor base;
    DupRow *aRow; /* sqlite3_free (and each zPath) */
    int nRow, iRow;
    sqlite3_value *apArg[3]; /* tbl, threshold, schema as given (sqlite3_value_free) */
    double rThreshold;       /* the threshold in force */
} DupCursor;

static int dupConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab, char **pzErr)
{
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(grp INTEGER, id INTEGER, path TEXT, similarity REAL, "
                                      "tbl HIDDEN, threshold HIDDEN, schema HIDDEN)");
    if (rc) return rc;
    DupVtab *p = sqlite3_malloc(sizeof *p);
    if (!p) return SQLITE_NOMEM;
    memset(p, 0, sizeof *p);
    p->db = db;
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *ppVtab = &p->base;
    return SQLITE_OK;
}

static int dupDisconnect(sqlite3_vtab *pVtab)
{
    sqlite3_free(pVtab->zErrMsg);
    sqlite3_free(pVtab);
    return SQLITE_OK;
}

static int dupBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo)
{
    int aIdx[3] = {-1, -1, -1}, nArg = 0, flags = 0;
    for (int i = 0; i < pInfo->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
        if (c->iColumn < DUP_TBL || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        if (!c->usable) return SQLITE_CONSTRAINT; /* an argument this plan cannot supply */
        aIdx[c->iColumn - DUP_TBL] = i;
    }
    static const int aFlag[3] = {DUP_HAS_TBL, DUP_HAS_THRESHOLD, DUP_HAS_SCHEMA};
    for (int a = 0; a < 3; a++)
        if (aIdx[a] >= 0) {
            flags |= aFlag[a];
            pInfo->aConstraintUsage[aIdx[a]].argvIndex = ++nArg;
            pInfo->aConstraintUsage[aIdx[a]].omit = 1;
        }
    pInfo->idxNum = flags;
    pInfo->estimatedCost = 1e6;
    pInfo->estimatedRows = 100;
    (void)pVtab;
    return SQLITE_OK;
}

static int dupOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur)
{
    DupCursor *c = sqlite3_malloc(sizeof *c);
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *ppCur = &c->base;
    return SQLITE_OK;
}

static void dup_reset(DupCursor *c)
{
    for (int i = 0; i < c->nRow; i++) sqlite3_free(c->aRow[i].zPath);
    sqlite3_free(c->aRow);
    c->aRow = 0;
    c->nRow = c->iRow = 0;
    for (int i = 0; i < 3; i++) {
        sqlite3_value_free(c->apArg[i]);
        c->apArg[i] = 0;
    }
}

static int dupClose(sqlite3_vtab_cursor *pCur)
{
    dup_reset((DupCursor *)pCur);
    sqlite3_free(pCur);
    return SQLITE_OK;
}

/* Union-find over the images, with path halving. */
static int uf_find(int *aParent, int i)
{
    while (aParent[i] != i) i = aParent[i] = aParent[aParent[i]];
    return i;
}

/* ram_unit_pairs' callbacks: join the two images; poll the interrupt. */
typedef struct DupJoin {
    int *aParent;
    sqlite3 *db;
} DupJoin;

static int dup_join(void *pArg, size_t i, size_t j)
{
    int *aParent = ((DupJoin *)pArg)->aParent;
    int a = uf_find(aParent, (int)i), b = uf_find(aParent, (int)j);
    if (a != b) aParent[a < b ? b : a] = a < b ? a : b;
    return 0;
}

static int dup_stop(void *pArg) { return ram__interrupted(((DupJoin *)pArg)->db); }

static int dup_cmp(const void *x, const void *y)
{
    const DupRow *a = x, *b = y;
    if (a->grp != b->grp) return a->grp < b->grp ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int id_cmp(const void *x, const void *y)
{
    sqlite3_int64 a = *(const sqlite3_int64 *)x, b = *(const sqlite3_int64 *)y;
    return a < b ? -1 : a > b;
}

/* One integer value of the table's _config (*pOut -1 when absent). */
static int config_int(sqlite3 *db, const char *zSchema, const char *zTbl, const char *zKey, sqlite3_int64 *pOut)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT value FROM \"%w\".\"%w_config\" WHERE key = %Q", zSchema, zTbl, zKey);
    int rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    *pOut = -1;
    if (rc) return rc;
    if (sqlite3_step(s) == SQLITE_ROW) *pOut = sqlite3_column_int64(s, 0);
    return sqlite3_finalize(s);
}

/* The schema that holds zTbl's _config (*pzOut, sqlite3_free), searched as
** SQLite resolves an unqualified name; NULL when none does. */
static int find_schema(sqlite3 *db, const char *zTbl, char **pzOut)
{
    sqlite3_stmt *s = 0;
    char *zLike = sqlite3_mprintf("%s_config", zTbl);
    int rc = zLike ? sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list ORDER BY seq != 1, seq", -1, &s, 0)
                   : SQLITE_NOMEM;
    *pzOut = 0;
    while (rc == SQLITE_OK && !*pzOut && sqlite3_step(s) == SQLITE_ROW) {
        const char *zDb = (const char *)sqlite3_column_text(s, 0);
        sqlite3_stmt *t = 0;
        char *zSql =
            zDb ? sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_schema WHERE type = 'table' AND name = ?1", zDb) : 0;
        if (!zSql) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (sqlite3_prepare_v2(db, zSql, -1, &t, 0) == SQLITE_OK) {
            sqlite3_bind_text(t, 1, zLike, -1, SQLITE_STATIC);
            if (sqlite3_step(t) == SQLITE_ROW && !(*pzOut = sqlite3_mprintf("%s", zDb))) rc = SQLITE_NOMEM;
        }
        sqlite3_finalize(t);
        sqlite3_free(zSql);
    }
    sqlite3_finalize(s);
    sqlite3_free(zLike);
    return rc;
}

static int dupFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr, int argc, sqlite3_value **argv)
{
    DupCursor *c = (DupCursor *)pCur;
    sqlite3_vtab *pVtab = pCur->pVtab;
    sqlite3 *db = ((DupVtab *)pVtab)->db;
    sqlite3_stmt *s = 0;
    sqlite3_int64 *aId = 0, gen = -1, dim = -1;
    unsigned char *aUnit = 0; /* n packed unit vectors, nUnit bytes each */
    int *aParent = 0, *aCount = 0, *aRep = 0;
    sqlite3_int64 *aGrp = 0; /* group number of each root */
    DupRow *aRow = 0;
    int n = 0, nAlloc = 0, nRow = 0, nRowAlloc = 0, rc = SQLITE_OK, iArg = 0;
    double thr = RAM_DUP_THRESHOLD;
    const char *zTbl = 0, *zSchema = "main";
    char *zSql = 0, *zFound = 0; /* zFound: sqlite3_free */
    dup_reset(c);
    (void)idxStr, (void)argc;

    static const int aFlag[3] = {DUP_HAS_TBL, DUP_HAS_THRESHOLD, DUP_HAS_SCHEMA};
    for (int a = 0; a < 3; a++)
        if (idxNum & aFlag[a]) {
            c->apArg[a] = sqlite3_value_dup(argv[iArg++]);
            if (!c->apArg[a]) return SQLITE_NOMEM;
        }
    if (!c->apArg[0] || sqlite3_value_type(c->apArg[0]) != SQLITE_TEXT) {
        ram__vtab_set_error(pVtab, "ram_index_duplicates(): argument 1 must be the name of a ram_index table, as in "
                                   "SELECT * FROM ram_index_duplicates('photos')");
        return SQLITE_ERROR;
    }
    zTbl = (const char *)sqlite3_value_text(c->apArg[0]);
    if (c->apArg[1] && sqlite3_value_type(c->apArg[1]) != SQLITE_NULL) {
        int t = sqlite3_value_numeric_type(c->apArg[1]);
        thr = sqlite3_value_double(c->apArg[1]);
        if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(thr > 0 && thr <= 1)) {
            ram__vtab_set_error(pVtab,
                                "ram_index_duplicates(): argument 2, the threshold, must be a cosine in (0, 1] "
                                "(default %g)",
                                RAM_DUP_THRESHOLD);
            return SQLITE_ERROR;
        }
    }
    int bSchema = c->apArg[2] && sqlite3_value_type(c->apArg[2]) != SQLITE_NULL;
    if (bSchema) zSchema = (const char *)sqlite3_value_text(c->apArg[2]);
    if (!zTbl || !zSchema) return SQLITE_NOMEM;
    c->rThreshold = thr;

    /* A ram_index table has a _config with its generation and width;
    ** without a schema, the first that has one, in SQLite's order for an
    ** unqualified name (temp, main, then the attached ones). */
    if (!bSchema) {
        rc = find_schema(db, zTbl, &zFound);
        if (rc) return rc;
        if (zFound) zSchema = zFound;
    }
    if (config_int(db, zSchema, zTbl, "gen", &gen) || config_int(db, zSchema, zTbl, "dim", &dim) || gen < 1 ||
        dim < 1 || !ram_cache_unit_size((int)dim)) {
        if (bSchema)
            ram__vtab_set_error(pVtab, "ram_index_duplicates(): no ram_index table '%s' in schema '%s'", zTbl, zSchema);
        else
            ram__vtab_set_error(pVtab, "ram_index_duplicates(): no ram_index table '%s'", zTbl);
        sqlite3_free(zFound);
        return SQLITE_ERROR;
    }
    size_t nUnit = ram_cache_unit_size((int)dim);

    /* The current generation's unit vectors, by image id. */
    zSql = sqlite3_mprintf("SELECT c.id, c.v FROM \"%w\".\"%w_cls\" c JOIN \"%w\".\"%w_images\" i ON i.id = c.id "
                           "WHERE i.gen = ?1 ORDER BY c.id",
                           zSchema, zTbl, zSchema, zTbl);
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) goto sql_error;
    sqlite3_bind_int64(s, 1, gen);
    while (sqlite3_step(s) == SQLITE_ROW) {
        if ((size_t)sqlite3_column_bytes(s, 1) != nUnit) {
            ram__vtab_set_error(pVtab,
                                "ram_index_duplicates(): image %lld of %s has a malformed prefilter vector "
                                "(run integrity-check)",
                                sqlite3_column_int64(s, 0), zTbl);
            rc = SQLITE_CORRUPT_VTAB;
            goto done;
        }
        if (n == nAlloc) {
            int nNew = nAlloc ? 2 * nAlloc : 64;
            sqlite3_int64 *a1 = sqlite3_realloc64(aId, sizeof *aId * (size_t)nNew);
            if (a1) aId = a1;
            unsigned char *a2 = sqlite3_realloc64(aUnit, nUnit * (size_t)nNew);
            if (a2) aUnit = a2;
            if (!a1 || !a2) goto nomem;
            nAlloc = nNew;
        }
        aId[n] = sqlite3_column_int64(s, 0);
        memcpy(aUnit + nUnit * (size_t)n, sqlite3_column_blob(s, 1), nUnit);
        n++;
    }
    rc = sqlite3_finalize(s);
    s = 0;
    if (rc) goto sql_error;

    /* Every pair, joined when close enough. */
    aParent = sqlite3_malloc64(sizeof(int) * (size_t)(n ? n : 1));
    aCount = sqlite3_malloc64(sizeof(int) * (size_t)(n ? n : 1));
    aRep = sqlite3_malloc64(sizeof(int) * (size_t)(n ? n : 1));
    aGrp = sqlite3_malloc64(sizeof(sqlite3_int64) * (size_t)(n ? n : 1));
    if (!aParent || !aCount || !aRep || !aGrp) goto nomem;
    for (int i = 0; i < n; i++) aParent[i] = i, aCount[i] = 0, aRep[i] = -1, aGrp[i] = 0;
    DupJoin join = {aParent, db};
    struct ram_error err;
    ram_status st = ram_unit_pairs(aUnit, (size_t)n, (int)dim, (float)thr, dup_join, dup_stop, &join, &err);
    if (st) {
        rc = ram__rc(st);
        if (st == RAM_ERR_INTERRUPTED)
            ram__vtab_set_error(pVtab, "interrupted");
        else
            ram__vtab_set_error(pVtab, "ram_index_duplicates(): %s", err.msg);
        goto done;
    }

    /* The rows, by rowid, each with its image's position. */
    zSql = sqlite3_mprintf("SELECT f.id, f.path, f.img FROM \"%w\".\"%w_files\" f JOIN \"%w\".\"%w_images\" i "
                           "ON i.id = f.img WHERE i.gen = ?1 ORDER BY f.id",
                           zSchema, zTbl, zSchema, zTbl);
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) goto sql_error;
    sqlite3_bind_int64(s, 1, gen);
    while (sqlite3_step(s) == SQLITE_ROW) {
        sqlite3_int64 img = sqlite3_column_int64(s, 2);
        sqlite3_int64 *pHit = n ? bsearch(&img, aId, (size_t)n, sizeof *aId, id_cmp) : 0;
        if (!pHit) continue; /* no prefilter vector: integrity-check reports it */
        if (nRow == nRowAlloc) {
            int nNew = nRowAlloc ? 2 * nRowAlloc : 64;
            DupRow *aNew = sqlite3_realloc64(aRow, sizeof *aRow * (size_t)nNew);
            if (!aNew) goto nomem;
            aRow = aNew, nRowAlloc = nNew;
        }
        DupRow *r = &aRow[nRow++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(s, 0);
        r->grp = (int)(pHit - aId); /* the image's position, for now */
        if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
            r->zPath = ram__memdup((const char *)sqlite3_column_text(s, 1), sqlite3_column_bytes(s, 1));
            if (!r->zPath) goto nomem;
        }
        aCount[uf_find(aParent, (int)r->grp)]++;
    }
    rc = sqlite3_finalize(s);
    s = 0;
    if (rc) goto sql_error;

    /* Groups of two rows or more, numbered in the order of their first row;
    ** the others dropped. */
    int nKeep = 0;
    sqlite3_int64 nGrp = 0;
    for (int i = 0; i < nRow; i++) {
        int pos = (int)aRow[i].grp, root = uf_find(aParent, pos);
        if (aCount[root] < 2) {
            sqlite3_free(aRow[i].zPath);
            continue;
        }
        if (aRep[root] < 0) {
            aRep[root] = pos;
            aGrp[root] = ++nGrp;
        }
        DupRow r = aRow[i];
        int rep = aRep[root];
        r.grp = aGrp[root];
        if (pos == rep) {
            r.sim = 1;
        } else {
            double d = ram_unit_cosine(aUnit + nUnit * (size_t)pos, aUnit + nUnit * (size_t)rep, (int)dim);
            r.sim = d > 1 ? 1 : d < -1 ? -1 : d; /* int8 rounding, ~1e-3 */
        }
        aRow[nKeep++] = r;
    }
    if (nKeep > 1) qsort(aRow, (size_t)nKeep, sizeof *aRow, dup_cmp);
    c->aRow = aRow;
    c->nRow = nKeep;
    aRow = 0;
    nRow = 0;
    goto done;

nomem:
    rc = SQLITE_NOMEM;
    goto done;
sql_error:
    ram__vtab_set_error(pVtab, "ram_index_duplicates(): %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(s);
    for (int i = 0; i < nRow; i++) sqlite3_free(aRow[i].zPath);
    sqlite3_free(aRow);
    sqlite3_free(aId), sqlite3_free(aUnit);
    sqlite3_free(aParent), sqlite3_free(aCount), sqlite3_free(aRep), sqlite3_free(aGrp);
    sqlite3_free(zFound);
    return rc;
}

static int dupNext(sqlite3_vtab_cursor *pCur)
{
    ((DupCursor *)pCur)->iRow++;
    return SQLITE_OK;
}

static int dupEof(sqlite3_vtab_cursor *pCur)
{
    DupCursor *c = (DupCursor *)pCur;
    return c->iRow >= c->nRow;
}

static int dupColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i)
{
    DupCursor *c = (DupCursor *)pCur;
    const DupRow *r = &c->aRow[c->iRow];
    switch (i) {
    case DUP_GRP: sqlite3_result_int64(ctx, r->grp); break;
    case DUP_ID: sqlite3_result_int64(ctx, r->id); break;
    case DUP_PATH:
        if (r->zPath) sqlite3_result_text(ctx, r->zPath, -1, SQLITE_TRANSIENT);
        break;
    case DUP_SIM: sqlite3_result_double(ctx, r->sim); break;
    case DUP_THRESHOLD: sqlite3_result_double(ctx, c->rThreshold); break; /* the one in force */
    default: /* the arguments, echoed so that the WHERE terms on them hold */
        if (c->apArg[i - DUP_TBL]) sqlite3_result_value(ctx, c->apArg[i - DUP_TBL]);
        break;
    }
    return SQLITE_OK;
}

static int dupRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid)
{
    *pRowid = ((DupCursor *)pCur)->iRow + 1;
    return SQLITE_OK;
}

/* Eponymous-only (no xCreate): the module's name is the table. */
static const sqlite3_module g_dupModule = {
    .iVersion = 0,
    .xConnect = dupConnect,
    .xBestIndex = dupBestIndex,
    .xDisconnect = dupDisconnect,
    .xOpen = dupOpen,
    .xClose = dupClose,
    .xFilter = dupFilter,
    .xNext = dupNext,
    .xEof = dupEof,
    .xColumn = dupColumn,
    .xRowid = dupRowid,
};

int ram__register_index_duplicates(sqlite3 *db, char **pzErrMsg)
{
    int rc = sqlite3_create_module_v2(db, "ram_index_duplicates", &g_dupModule, 0, 0);
    if (rc != SQLITE_OK)
        *pzErrMsg = sqlite3_mprintf("ram: cannot register ram_index_duplicates: %s", sqlite3_errmsg(db));
    return rc;
}
