/*
** context.c — struct ram_ctx, one model in use: a registry entry, the
** engine state and scratch buffers to run it, and its effective thresholds.
** The connection's current model is a context (conn.c), and so is the own
** model of a ram_index table (index_store.c): images.c, texts.c and the
** thresholds below take a context, so there is one code path for both.
**
**     struct ram_ctx *c;
**     if (ram__ctx_open(db, pEntry, &c, &zErr) == SQLITE_OK) {
**         ram__ctx_thresholds(c, &conn->th, "ram_tags", &aThresh, &zErr);
**         ram__ctx_unref(c);
**     }
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

int ram__ctx_open(sqlite3 *db, struct ram_entry *pEntry, struct ram_ctx **ppCtx, char **pzErr)
{
    const struct ram_model_info *pI = &pEntry->info;
    struct ram_error err;
    *ppCtx = 0;
    *pzErr = 0;
    struct ram_ctx *c = sqlite3_malloc64(sizeof *c);
    if (!c) {
        ram__registry_release(pEntry);
        return SQLITE_NOMEM;
    }
    memset(c, 0, sizeof *c);
    c->nRef = 1;
    c->db = db;
    c->pEntry = pEntry;
    ram_status s = ram_state_init(pEntry->pModel, &c->pState, &err);
    if (s) {
        int rc = ram__rc(s);
        *pzErr = rc == SQLITE_NOMEM ? 0 : ram__mprintf("%s", err.msg);
        ram__ctx_unref(c);
        return rc;
    }
    ram_state_set_abort(c->pState, ram__interrupted, db);
    c->aChw = sqlite3_malloc64(sizeof(float) * 3 * (sqlite3_uint64)pI->image_size * pI->image_size);
    c->aEmbed = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)pI->n_image_tokens * pI->embed_dim);
    c->aProb = sqlite3_malloc64(sizeof(float) * ((sqlite3_uint64)pI->num_class + 1));
    c->aThresh = sqlite3_malloc64(sizeof(float) * ((sqlite3_uint64)pI->num_class + 1));
    if (!c->aChw || !c->aEmbed || !c->aProb || !c->aThresh) {
        ram__ctx_unref(c);
        return SQLITE_NOMEM;
    }
    *ppCtx = c;
    return SQLITE_OK;
}

void ram__ctx_ref(struct ram_ctx *c) { c->nRef++; }

void ram__ctx_unref(struct ram_ctx *c)
{
    if (!c || --c->nRef > 0) return;
    if (c->pState) ram_state_free(c->pState);
    ram__registry_release(c->pEntry);
    sqlite3_free(c->aChw);
    sqlite3_free(c->aEmbed);
    sqlite3_free(c->aProb);
    sqlite3_free(c->aThresh);
    sqlite3_free(c);
}

int ram__ctx_thresholds(struct ram_ctx *c, struct ram_thresh_src *pSrc, const char *zFunc, const float **paOut,
                        char **pzErr)
{
    int rc = ram__thresh_refresh(pSrc, c->db, zFunc, pzErr);
    if (rc) return rc;
    if (!c->bThreshOk || c->iThreshGen != pSrc->iGen) {
        const struct ram_entry *e = c->pEntry;
        for (int k = 0; k < e->info.num_class; k++) c->aThresh[k] = ram_model_threshold(e->pModel, k);
        for (int i = 0; i < pSrc->nTab; i++) {
            int k = ram__entry_tag_index(e, pSrc->aTab[i].zTag, pSrc->aTab[i].nTag);
            if (k >= 0) c->aThresh[k] = (float)pSrc->aTab[i].rVal;
        }
        for (int i = 0; i < pSrc->nOver; i++) {
            int k = ram__entry_tag_index(e, pSrc->aOver[i].zTag, pSrc->aOver[i].nTag);
            if (k >= 0) c->aThresh[k] = (float)pSrc->aOver[i].rVal;
        }
        c->bThreshOk = 1;
        c->iThreshGen = pSrc->iGen;
    }
    *paOut = c->aThresh;
    return SQLITE_OK;
}
