/*
** conn.c — the state of one database connection: its current context
** (the model in use, context.c), its image settings, its threshold sources,
** and the resolution of the default model on first use.
**
** HOW IT WORKS: SQLite 3.40 has no per-connection client data
** (sqlite3_set_clientdata is 3.44), so the state struct is the pApp of every
** function and the pAux of every module, with a reference count: each
** registration takes one and its xDestroy drops it; SQLite runs the
** destructors when the connection closes (or when a second .load replaces
** the registrations), and the last one frees the struct and its context.
** The default model is RAM_MODEL when set, else the bundled
** models/default.ram next to ram.so (registry.c).
*/
#include "ext.h"
#include "model_path.h"
SQLITE_EXTENSION_INIT3

#include <stdlib.h>
#include <string.h>

struct ram_conn *ram__conn_new(sqlite3 *db)
{
    struct ram_conn *p = sqlite3_malloc64(sizeof *p);
    if (!p) return 0;
    memset(p, 0, sizeof *p);
    p->db = db;
    p->nRef = 1;
    p->prep.mxPixels = RAM_DEFAULT_MAX_PIXELS;
    p->prep.bExif = 1;
    ram__conn_count_add(1);
    return p;
}

void ram__conn_ref(struct ram_conn *p) { p->nRef++; }

void ram__conn_unref(void *pArg)
{
    struct ram_conn *p = pArg;
    if (!p || --p->nRef > 0) return;
    ram__ctx_unref(p->pCtx);
    ram__ctx_unref(p->pCap);
    ram__thresh_free(&p->th);
    ram__trust_free(p);
    sqlite3_free(p);
    ram__conn_count_add(-1);
}

int ram__conn_set_model(struct ram_conn *p, struct ram_entry *pEntry, char **pzErr)
{
    if (p->pCtx && p->pCtx->pEntry == pEntry) { /* same model: keep the context */
        ram__registry_release(pEntry);
        return SQLITE_OK;
    }
    struct ram_ctx *c = 0;
    int rc = ram__ctx_open(p->db, pEntry, &c, pzErr);
    if (rc) return rc;
    ram__ctx_unref(p->pCtx); /* a ram_index table may still hold it */
    p->pCtx = c;
    return SQLITE_OK;
}

void ram__conn_refresh(struct ram_conn *p)
{
    struct ram_error e;
    /* Not while main.ram_thresholds is being read: the caller below holds
    ** the context's buffers, which a new model would free. */
    if (!p->pCtx || p->th.bInTab || ram_model_check_file(p->pCtx->pEntry->pModel, &e) == RAM_OK) return;
    char *zPath = ram__mprintf("%s", p->pCtx->pEntry->zPath), *zMsg = 0;
    struct ram_entry *pEntry = 0;
    /* On failure (a truncated file) the model stays: inference then fails
    ** with the engine's "changed on disk" error. */
    if (zPath && ram__registry_acquire(zPath, RAM__VERIFY_ON_MAP, &pEntry, &zMsg) == SQLITE_OK)
        ram__conn_set_model(p, pEntry, &zMsg);
    sqlite3_free(zMsg);
    sqlite3_free(zPath);
}

int ram__conn_ctx(struct ram_conn *p, const char *zFunc, struct ram_ctx **ppCtx, char **pzErr)
{
    *ppCtx = p->pCtx;
    if (p->pCtx) return SQLITE_OK;
    const char *zEnv = getenv("RAM_MODEL");
    char *zDefault = 0;
    struct ram_entry *pEntry = 0;
    char *zMsg = 0;
    int rc;
    if (zEnv && zEnv[0]) {
        rc = ram__registry_acquire(zEnv, RAM__VERIFY_ON_MAP, &pEntry, &zMsg);
        if (rc) {
            *pzErr = zMsg ? ram__mprintf("%s(): cannot load the model named by RAM_MODEL: %s", zFunc, zMsg) : 0;
            sqlite3_free(zMsg);
            return rc;
        }
    } else {
        char *zTried = 0;
        zDefault = ram__model_search(&zTried); /* model_path.c */
        if (!zDefault) {
            *pzErr = ram__mprintf("%s(): no model loaded: call ram_load('path/to/model.ram') or set RAM_MODEL; "
                                  "no default model at %s (make builds models/default.ram, make install "
                                  "copies it to PREFIX/share/sqlite-ram)",
                                  zFunc, zTried ? zTried : "?");
            sqlite3_free(zTried);
            return SQLITE_ERROR;
        }
        sqlite3_free(zTried);
        rc = ram__registry_acquire(zDefault, RAM__VERIFY_ON_MAP, &pEntry, &zMsg);
        if (rc) {
            *pzErr = zMsg ? ram__mprintf("%s(): cannot load the default model %s: %s", zFunc, zDefault, zMsg) : 0;
            sqlite3_free(zMsg);
            sqlite3_free(zDefault);
            return rc;
        }
        sqlite3_free(zDefault);
    }
    rc = ram__conn_set_model(p, pEntry, &zMsg);
    if (rc) {
        *pzErr = zMsg ? ram__mprintf("%s(): %s", zFunc, zMsg) : 0;
        sqlite3_free(zMsg);
        return rc;
    }
    *ppCtx = p->pCtx;
    return SQLITE_OK;
}

int ram__conn_caption_ctx(struct ram_conn *p, const char *zFunc, struct ram_ctx **ppCtx, char **pzErr)
{
    *ppCtx = p->pCap;
    if (p->pCap) return SQLITE_OK;
    /* The connection's own model when it is Tag2Text (it is resolved first:
    ** RAM_MODEL or a ram_load of a Tag2Text file caption too). A failure to
    ** find a tagging model is not this function's error: the caption model
    ** may still be found below. */
    struct ram_ctx *c = 0;
    char *zIgnored = 0;
    if (ram__conn_ctx(p, zFunc, &c, &zIgnored) == SQLITE_OK && c->pEntry->info.kind == RAM_KIND_TAG2TEXT) {
        *ppCtx = c;
        return SQLITE_OK;
    }
    sqlite3_free(zIgnored);
    char *zTried = 0, *zMsg = 0;
    const char *zEnv = getenv("RAM_CAPTION_MODEL"); /* as RAM_MODEL for the tagging model */
    char *zPath = zEnv && zEnv[0] ? ram__mprintf("%s", zEnv)
                                  : ram__model_search_of(RAM_CAPTION_MODEL_FILE, &zTried); /* model_path.c */
    if (zEnv && zEnv[0] && !zPath) return SQLITE_NOMEM;
    if (!zPath) {
        *pzErr = ram__mprintf(
            "%s(): no caption model: the connection's model is not Tag2Text and there is no "
            "default caption model at %s; ram_caption_model('models/tag2text.ram') adds one (or ram_load it; "
            "make builds models/" RAM_CAPTION_MODEL_FILE ")",
            zFunc, zTried ? zTried : "?");
        sqlite3_free(zTried);
        return SQLITE_ERROR;
    }
    sqlite3_free(zTried);
    struct ram_entry *pEntry = 0;
    int rc = ram__registry_acquire(zPath, RAM__VERIFY_ON_MAP, &pEntry, &zMsg);
    if (rc == SQLITE_OK && pEntry->info.kind != RAM_KIND_TAG2TEXT) {
        ram__registry_release(pEntry);
        *pzErr =
            ram__mprintf("%s(): the %s %s is not a Tag2Text model", zFunc,
                         zEnv && zEnv[0] ? "caption model named by RAM_CAPTION_MODEL" : "default caption model", zPath);
        sqlite3_free(zPath);
        return SQLITE_ERROR;
    }
    if (rc == SQLITE_OK) rc = ram__ctx_open(p->db, pEntry, &c, &zMsg);
    if (rc != SQLITE_OK) {
        *pzErr =
            zMsg ? ram__mprintf("%s(): cannot load the %s %s: %s", zFunc,
                                zEnv && zEnv[0] ? "caption model named by RAM_CAPTION_MODEL" : "default caption model",
                                zPath, zMsg)
                 : 0;
        sqlite3_free(zMsg);
        sqlite3_free(zPath);
        return rc;
    }
    sqlite3_free(zPath);
    p->pCap = c;
    *ppCtx = c;
    return SQLITE_OK;
}

int ram__conn_image(struct ram_conn *p, const char *zFunc, int iArg, sqlite3_value *pVal, int bProbs, int *pbNull,
                    struct ram_image *pOut, char **pzErr)
{
    struct ram_ctx *c = 0;
    memset(pOut, 0, sizeof *pOut);
    int rc = ram__image_check(p->db, zFunc, iArg, pVal, pbNull, pzErr);
    if (rc || *pbNull) return rc;
    if ((rc = ram__conn_ctx(p, zFunc, &c, pzErr))) return rc;
    return ram__ctx_image(c, &p->prep, zFunc, iArg, pVal, bProbs, pbNull, pOut, pzErr);
}

int ram__register_funcs(sqlite3 *db, struct ram_conn *p, const struct ram_func_def *a, int n, char **pzErrMsg)
{
    for (int i = 0; i < n; i++) {
        ram__conn_ref(p); /* dropped by xDestroy, also when registration fails */
        int rc =
            sqlite3_create_function_v2(db, a[i].zName, a[i].nArg, a[i].flags, p, a[i].xFunc, 0, 0, ram__conn_unref);
        if (rc != SQLITE_OK) {
            *pzErrMsg = sqlite3_mprintf("ram: cannot register %s: %s", a[i].zName, sqlite3_errmsg(db));
            return rc;
        }
    }
    return SQLITE_OK;
}
