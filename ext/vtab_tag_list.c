/*
** vtab_tag_list.c — ram_tag_list, an eponymous table-valued function with
** one row per tag of a model: its vocabulary, without any image.
**
**     SELECT tag FROM ram_tag_list ORDER BY tag;                -- the connection's model
**     SELECT class, tag, tag_zh, threshold, model_threshold FROM ram_tag_list WHERE tag LIKE 'dog%';
**     SELECT tag FROM ram_tag_list('caption');                  -- the caption model's tags
**
** Columns: class (the class index, also the rowid), tag, tag_zh, threshold
** (the threshold in force: what ram_tags selects with), model_threshold
** (the model file's own value); hidden: model, the optional argument.
**
** Which model: no argument (or NULL) lists the connection's model, the one
** ram_tags uses, with its thresholds overridden as thresholds.c describes
** (ram_set_threshold, main.ram_thresholds). 'caption' lists the caption
** model (ram_caption_model()'s, else the connection's model when it is
** Tag2Text, else the default caption model: the rule of ram_caption,
** ram__conn_caption_ctx in conn.c); its threshold in force is the model's
** own, since ram_caption's predicted tags ignore the overrides. A Tag2Text
** model's deleted tags (the official delete_tag_index) are listed with
** threshold 1.0, which no probability exceeds. A word rather than a file
** path, so that listing a vocabulary never opens a file the connection has
** not chosen.
**
** HOW IT WORKS: xFilter resolves the model, takes a registry reference on
** it (a ram_load() during the scan cannot free the names being returned)
** and copies the thresholds in force; rows then read the names from the
** model.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

#define COL_CLASS 0
#define COL_TAG 1
#define COL_TAG_ZH 2
#define COL_THRESHOLD 3
#define COL_MODEL_THRESHOLD 4
#define COL_MODEL 5

#define IDX_MODEL 1

struct list_vtab {
    sqlite3_vtab base;
    struct ram_conn *p; /* borrowed from the module's pAux */
};

struct list_cursor {
    sqlite3_vtab_cursor base;
    struct ram_entry *pEntry; /* registry reference (ram__registry_release) or NULL */
    float *aThresh;           /* n thresholds in force (sqlite3_free) */
    sqlite3_value *pModelArg; /* the argument, echoed by the hidden column (sqlite3_value_free) or NULL */
    int n, i;
};

static void vtab_set_error(sqlite3_vtab *pVtab, char *zErr)
{
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = zErr;
}

static int listConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab, char **pzErr)
{
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(class INTEGER, tag TEXT, tag_zh TEXT, threshold REAL, "
                                      "model_threshold REAL, model HIDDEN)");
    if (rc != SQLITE_OK) {
        *pzErr = sqlite3_mprintf("ram_tag_list: %s", sqlite3_errmsg(db));
        return rc;
    }
    struct list_vtab *pNew = sqlite3_malloc64(sizeof *pNew);
    if (!pNew) return SQLITE_NOMEM;
    memset(pNew, 0, sizeof *pNew);
    pNew->p = pAux;
    /* Reads only the models the connection chose: usable from views and
    ** triggers even with trusted_schema=OFF. */
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *ppVtab = &pNew->base;
    return SQLITE_OK;
}

static int listBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo)
{
    int iModel = -1;
    for (int i = 0; i < pInfo->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
        if (c->iColumn != COL_MODEL || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        /* An argument this plan cannot supply: ask for another plan. */
        if (!c->usable) return SQLITE_CONSTRAINT;
        iModel = i;
    }
    pInfo->idxNum = 0;
    if (iModel >= 0) {
        pInfo->aConstraintUsage[iModel].argvIndex = 1;
        pInfo->aConstraintUsage[iModel].omit = 1;
        pInfo->idxNum = IDX_MODEL;
    }
    pInfo->estimatedCost = 5000.0;
    pInfo->estimatedRows = 5000;
    return SQLITE_OK;
}

static int listDisconnect(sqlite3_vtab *pVtab)
{
    sqlite3_free(pVtab);
    return SQLITE_OK;
}

static void cursor_reset(struct list_cursor *pCur)
{
    if (pCur->pEntry) ram__registry_release(pCur->pEntry);
    pCur->pEntry = 0;
    sqlite3_free(pCur->aThresh);
    pCur->aThresh = 0;
    sqlite3_value_free(pCur->pModelArg);
    pCur->pModelArg = 0;
    pCur->n = pCur->i = 0;
}

static int listOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur)
{
    struct list_cursor *pCur = sqlite3_malloc64(sizeof *pCur);
    if (!pCur) return SQLITE_NOMEM;
    memset(pCur, 0, sizeof *pCur);
    *ppCur = &pCur->base;
    return SQLITE_OK;
}

static int listClose(sqlite3_vtab_cursor *pBase)
{
    struct list_cursor *pCur = (struct list_cursor *)pBase;
    cursor_reset(pCur);
    sqlite3_free(pCur);
    return SQLITE_OK;
}

static int fail(struct list_cursor *pCur, int rc, char *zErr)
{
    if (rc != SQLITE_NOMEM && zErr)
        vtab_set_error(pCur->base.pVtab, zErr);
    else
        sqlite3_free(zErr);
    cursor_reset(pCur);
    return rc;
}

static int listFilter(sqlite3_vtab_cursor *pBase, int idxNum, const char *idxStr, int argc, sqlite3_value **argv)
{
    struct list_cursor *pCur = (struct list_cursor *)pBase;
    struct ram_conn *p = ((struct list_vtab *)pBase->pVtab)->p;
    ram__conn_refresh(p);
    cursor_reset(pCur);
    sqlite3_value *pArg = (idxNum & IDX_MODEL) ? argv[0] : 0;
    int bCaption = 0;
    if (pArg && sqlite3_value_type(pArg) != SQLITE_NULL) {
        const char *z = (const char *)sqlite3_value_text(pArg);
        if (sqlite3_value_type(pArg) != SQLITE_TEXT || !z || strcmp(z, "caption") != 0) {
            if (sqlite3_value_type(pArg) == SQLITE_TEXT && !z) return fail(pCur, SQLITE_NOMEM, 0);
            return fail(pCur, SQLITE_ERROR,
                        ram__mprintf("ram_tag_list(): argument 1 must be NULL (the connection's model) or "
                                     "'caption' (the caption model)"));
        }
        bCaption = 1;
    }
    struct ram_ctx *c = 0;
    const float *aThresh = 0;
    char *zErr = 0;
    int rc =
        bCaption ? ram__conn_caption_ctx(p, "ram_tag_list", &c, &zErr) : ram__conn_ctx(p, "ram_tag_list", &c, &zErr);
    if (rc == SQLITE_OK && !bCaption) rc = ram__ctx_thresholds(c, &p->th, "ram_tag_list", &aThresh, &zErr);
    if (rc != SQLITE_OK) return fail(pCur, rc, zErr);
    int n = c->pEntry->info.num_class;
    pCur->aThresh = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)(n > 0 ? n : 1));
    if (!pCur->aThresh) return fail(pCur, SQLITE_NOMEM, 0);
    for (int i = 0; i < n; i++) pCur->aThresh[i] = aThresh ? aThresh[i] : ram_model_threshold(c->pEntry->pModel, i);
    if (pArg) {
        pCur->pModelArg = sqlite3_value_dup(pArg);
        if (!pCur->pModelArg) return fail(pCur, SQLITE_NOMEM, 0);
    }
    ram__registry_addref(c->pEntry);
    pCur->pEntry = c->pEntry;
    pCur->n = n;
    return SQLITE_OK;
}

static int listNext(sqlite3_vtab_cursor *pBase)
{
    ((struct list_cursor *)pBase)->i++;
    return SQLITE_OK;
}

static int listEof(sqlite3_vtab_cursor *pBase)
{
    struct list_cursor *pCur = (struct list_cursor *)pBase;
    return pCur->i >= pCur->n;
}

static int listColumn(sqlite3_vtab_cursor *pBase, sqlite3_context *ctx, int iCol)
{
    struct list_cursor *pCur = (struct list_cursor *)pBase;
    int i = pCur->i;
    const struct ram_model *pModel = pCur->pEntry->pModel;
    switch (iCol) {
    case COL_CLASS: sqlite3_result_int(ctx, i); break;
    case COL_TAG:
    case COL_TAG_ZH: {
        const char *z = ram_model_tag(pModel, i, iCol == COL_TAG ? RAM_LANG_EN : RAM_LANG_ZH);
        sqlite3_result_text(ctx, z ? z : "", -1, SQLITE_TRANSIENT);
        break;
    }
    case COL_THRESHOLD: sqlite3_result_double(ctx, ram__float_display(pCur->aThresh[i])); break;
    case COL_MODEL_THRESHOLD: sqlite3_result_double(ctx, ram__float_display(ram_model_threshold(pModel, i))); break;
    case COL_MODEL:
        if (pCur->pModelArg) sqlite3_result_value(ctx, pCur->pModelArg);
        break;
    default: break;
    }
    return SQLITE_OK;
}

static int listRowid(sqlite3_vtab_cursor *pBase, sqlite_int64 *pRowid)
{
    *pRowid = ((struct list_cursor *)pBase)->i;
    return SQLITE_OK;
}

/* Eponymous-only (no xCreate): the module's name is the table. Methods
** above in the order of sqlite3_module. */
static const sqlite3_module g_listModule = {
    .iVersion = 0,
    .xConnect = listConnect,
    .xBestIndex = listBestIndex,
    .xDisconnect = listDisconnect,
    .xOpen = listOpen,
    .xClose = listClose,
    .xFilter = listFilter,
    .xNext = listNext,
    .xEof = listEof,
    .xColumn = listColumn,
    .xRowid = listRowid,
};

int ram__register_tag_list(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    ram__conn_ref(p); /* dropped by the module destructor, also on failure */
    int rc = sqlite3_create_module_v2(db, "ram_tag_list", &g_listModule, p, ram__conn_unref);
    if (rc != SQLITE_OK) *pzErrMsg = sqlite3_mprintf("ram: cannot register ram_tag_list: %s", sqlite3_errmsg(db));
    return rc;
}
