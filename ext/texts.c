/*
** texts.c — descriptions to CLIP text embeddings with a context: the one
** text path of ram_score(), ram_tag_scores and ram_index's MATCH, whatever
** model (the connection's or a table's own) the context holds.
**
** HOW IT WORKS: text embeddings are L2-normalised CLIP encode_text outputs,
** the rows of the official build_openset_llm_label_embedding, cached in the
** process-wide LRU of cache.c keyed by XXH3-128 of (model digest, texts):
** scoring 10,000 rows against one description encodes it once. The text
** tower takes no abort callback; one pass is short, but a list can hold
** 262,144 descriptions, so sqlite3_interrupt() is polled between them.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <string.h>

int ram__ctx_need_text(struct ram_ctx *c, const char *zFunc, char **pzErr)
{
    if (c->pEntry->info.has_text_encoder) return SQLITE_OK;
    *pzErr = ram__mprintf("%s(): the current model has no text encoder (convert it with "
                          "ram-convert --clip ...)",
                          zFunc);
    return SQLITE_ERROR;
}

int ram__ctx_encode_texts(struct ram_ctx *c, const char *zFunc, const struct ram_texts *pT, float *aOut, char **pzErr)
{
    int rc = ram__ctx_need_text(c, zFunc, pzErr);
    if (rc) return rc;
    const struct ram_model_info *pI = &c->pEntry->info;
    size_t nDim = (size_t)pI->embed_dim;

    /* Key: digest, then each text as (u64 length, bytes). */
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, pI->digest, strlen(pI->digest));
    for (int i = 0; i < pT->n; i++) {
        uint64_t n = (uint64_t)pT->an[i];
        XXH3_128bits_update(&st, &n, sizeof n);
        XXH3_128bits_update(&st, pT->az[i], (size_t)pT->an[i]);
    }
    XXH128_canonical_t h;
    XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&st));
    if (ram__txtcache_get(h.digest, aOut, (size_t)pT->n * nDim)) return SQLITE_OK;

    for (int i = 0; i < pT->n; i++) {
        int32_t aId[RAM_CLIP_CONTEXT];
        int nId = 0;
        struct ram_error err;
        if (ram__interrupted(c->db)) {
            *pzErr = ram__mprintf("%s(): interrupted", zFunc);
            return SQLITE_INTERRUPT;
        }
        ram_status s = ram_tokenize(c->pEntry->pModel, pT->az[i], (size_t)pT->an[i], aId, &nId, &err);
        if (!s) s = ram_encode_text(c->pState, aId, nId, aOut + (size_t)i * nDim, &err);
        if (s) return ram__core_error(zFunc, s, &err, pzErr);
        ram_l2_normalize(aOut + (size_t)i * nDim, (int)nDim);
    }
    ram__txtcache_put(h.digest, aOut, (size_t)pT->n * nDim);
    return SQLITE_OK;
}
