/*
** entry_blob.c — the BLOB of one stored ram_index entry (the hidden `entry`
** column): everything a table stores for an image, so that another table
** can store it without running the model, and ram_score()/ram_tags() can
** read it. Recognising, checking and writing it, in one place.
**
** Layout (version 1; integers little-endian u32):
**     0   'RAMX'          magic
**     4   1               layout version
**     8   128             header size
**     12  0               reserved
**     16  n_tokens        image tokens (CLS first)
**     20  embed_dim
**     24  num_class
**     28  floor           float32: probabilities under it are not kept
**     32  digest          32 ASCII hex digits of the model's digest
**     64  key             16 bytes: XXH3-128 of the image bytes, big-endian
**     80  prep            the preprocessing ("prep1 exif=1"), NUL padded to 32
**     112 n_probs, n_tok_bytes, n_unit, 0
**     128 probs           n_probs bytes: version byte 1, 3 zero bytes, then
**                         (u16 class, f32 probability) ascending by class
**     ... tokens          n_tok_bytes: core/cache_score.h's int8 token blob
**     ... unit            n_unit: the prefilter's unit CLS (cache_score.h)
**
** An entry is tied to its model and preprocessing: a table of another
** refuses it, and ram_score()/ram_tags() refuse it with another model.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include "cache_score.h"

#include <string.h>

int ram__entry_blob_is(const unsigned char *z, sqlite3_int64 n)
{
    return z && n >= 4 && !memcmp(z, RAM_ENTRY_MAGIC, 4);
}

static float get_f32le(const unsigned char *a)
{
    uint32_t u = ram__get_u32le(a);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int ram__entry_blob_parse(const unsigned char *z, sqlite3_int64 n, struct ram_entry_blob *v, char **pzErr)
{
    memset(v, 0, sizeof *v);
    if (!ram__entry_blob_is(z, n) || n < RAM_ENTRY_HEADER || ram__get_u32le(z + 8) != RAM_ENTRY_HEADER) {
        *pzErr = ram__mprintf("not a ram_index entry BLOB (bad header)");
        return SQLITE_ERROR;
    }
    uint32_t version = ram__get_u32le(z + 4);
    if (version != RAM_ENTRY_VERSION) {
        *pzErr = ram__mprintf("a ram_index entry of layout version %u; this build reads version %d", version,
                              RAM_ENTRY_VERSION);
        return SQLITE_ERROR;
    }
    v->nTok = (int)ram__get_u32le(z + 16);
    v->nDim = (int)ram__get_u32le(z + 20);
    v->nClass = (int)ram__get_u32le(z + 24);
    v->rFloor = get_f32le(z + 28);
    memcpy(v->zDigest, z + 32, 32);
    memcpy(v->aKey, z + 64, 16);
    memcpy(v->zPrep, z + 80, 32);
    v->zPrep[32] = 0;
    uint32_t nProbs = ram__get_u32le(z + 112), nTokB = ram__get_u32le(z + 116), nUnit = ram__get_u32le(z + 120);
    for (int i = 0; i < 32; i++) {
        char c = v->zDigest[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            *pzErr = ram__mprintf("not a valid ram_index entry BLOB (bad model digest)");
            return SQLITE_ERROR;
        }
    }
    if (v->nTok <= 0 || v->nDim <= 0 || v->nClass <= 0 || v->nClass > 65536 || !(v->rFloor > 0 && v->rFloor <= 1) ||
        (sqlite3_int64)RAM_ENTRY_HEADER + nProbs + nTokB + nUnit != n ||
        nTokB != ram_cache_packed_size(v->nTok, v->nDim) || nUnit != ram_cache_unit_size(v->nDim) || nProbs < 4 ||
        (nProbs - 4) % 6 || z[RAM_ENTRY_HEADER] != 1) {
        *pzErr = ram__mprintf("not a valid ram_index entry BLOB (sizes do not add up)");
        return SQLITE_ERROR;
    }
    v->aProbs = z + RAM_ENTRY_HEADER;
    v->nProbs = (int)nProbs;
    v->aTokens = v->aProbs + nProbs;
    v->nTokens = (int)nTokB;
    v->aUnit = v->aTokens + nTokB;
    v->nUnit = (int)nUnit;
    int prev = -1;
    for (int i = 0; i < (v->nProbs - 4) / 6; i++) {
        const unsigned char *e = v->aProbs + 4 + 6 * i;
        int c = e[0] | e[1] << 8;
        float p = get_f32le(e + 2);
        if (c <= prev || c >= v->nClass || !(p >= 0 && p <= 1)) {
            *pzErr = ram__mprintf("not a valid ram_index entry BLOB (bad probabilities)");
            return SQLITE_ERROR;
        }
        prev = c;
    }
    struct ram_cache_tokens t;
    struct ram_error err;
    if (ram_cache_view(v->aTokens, (size_t)v->nTokens, v->nTok, v->nDim, &t, &err)) {
        *pzErr = ram__mprintf("not a valid ram_index entry BLOB (%s)", err.msg);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

int ram__entry_blob_check_model(const struct ram_entry_blob *v, const struct ram_model_info *pI, char **pzErr)
{
    if (memcmp(v->zDigest, pI->digest, 32)) {
        *pzErr = ram__mprintf("a ram_index entry of another model (digest %.12s..., the current model is %.12s...)",
                              v->zDigest, pI->digest);
        return SQLITE_ERROR;
    }
    if (v->nTok != pI->n_image_tokens || v->nDim != pI->embed_dim || v->nClass != pI->num_class) {
        *pzErr = ram__mprintf("a ram_index entry of other sizes than the model's");
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

void ram__entry_blob_probs(const struct ram_entry_blob *v, float *aProb)
{
    memset(aProb, 0, sizeof(float) * (size_t)v->nClass);
    for (int i = 0; i < (v->nProbs - 4) / 6; i++) {
        const unsigned char *e = v->aProbs + 4 + 6 * i;
        aProb[e[0] | e[1] << 8] = get_f32le(e + 2);
    }
}

unsigned char *ram__entry_blob_write(const struct ram_entry_blob *v, sqlite3_uint64 *pnByte)
{
    sqlite3_uint64 n = RAM_ENTRY_HEADER + (sqlite3_uint64)v->nProbs + v->nTokens + v->nUnit;
    unsigned char *a = sqlite3_malloc64(n);
    if (!a) return 0;
    memset(a, 0, RAM_ENTRY_HEADER);
    memcpy(a, RAM_ENTRY_MAGIC, 4);
    ram__put_u32le(a + 4, RAM_ENTRY_VERSION);
    ram__put_u32le(a + 8, RAM_ENTRY_HEADER);
    ram__put_u32le(a + 16, (uint32_t)v->nTok);
    ram__put_u32le(a + 20, (uint32_t)v->nDim);
    ram__put_u32le(a + 24, (uint32_t)v->nClass);
    uint32_t u;
    memcpy(&u, &v->rFloor, 4);
    ram__put_u32le(a + 28, u);
    memcpy(a + 32, v->zDigest, 32);
    memcpy(a + 64, v->aKey, 16);
    size_t nPrep = strlen(v->zPrep);
    memcpy(a + 80, v->zPrep, nPrep < 32 ? nPrep : 32);
    ram__put_u32le(a + 112, (uint32_t)v->nProbs);
    ram__put_u32le(a + 116, (uint32_t)v->nTokens);
    ram__put_u32le(a + 120, (uint32_t)v->nUnit);
    unsigned char *q = a + RAM_ENTRY_HEADER;
    memcpy(q, v->aProbs, (size_t)v->nProbs);
    memcpy(q + v->nProbs, v->aTokens, (size_t)v->nTokens);
    memcpy(q + v->nProbs + v->nTokens, v->aUnit, (size_t)v->nUnit);
    *pnByte = n;
    return a;
}
