/*
** cache.c — two small process-wide caches that make repeated work free:
**
**   image cache  the image embeddings (and, once asked for, the tag
**                probabilities) of the last 8 distinct image blobs, keyed by
**                XXH3-128 of the bytes + model digest + preprocessing
**                settings (EXIF flag, pixel limit). So in
**                    SELECT ram_tags(b), ram_score(b, 'a dog')
**                      FROM ram_tag_scores(b) ...
**                the blob is decoded and encoded once, and a query that
**                repeats one photo costs one inference.
**   text cache   L2-normalised CLIP embeddings of description lists, keyed
**                by XXH3-128 of (model digest, texts), least recently used
**                out, bounded by entries and bytes. Scoring 10,000 rows
**                against one description encodes the text once, even when
**                the text is not a constant of the statement.
**
** Keys are 128-bit hashes: a collision would need 2^64 distinct inputs, so
** the hash stands for the content (the model file format relies on the same
** argument for its checksum).
**
** HOW IT WORKS: fixed arrays scanned linearly (8 and 512 slots) under one
** pthread mutex each; entries are copied in and out under the lock (a few
** hundred KB at most at full size), so no caller ever holds a pointer into
** the cache and no reference counting is needed. Two threads that miss on
** the same blob both compute it; the second store replaces the first.
** Memory: sqlite3_malloc64; ram__cache_clear() (run when the last connection
** closes) frees everything.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <pthread.h>
#include <string.h>

#define IMG_SLOTS 8
#define TXT_SLOTS 512
#define TXT_MAX_BYTES ((sqlite3_uint64)64 << 20)

struct img_slot {
    int bUsed;
    struct ram_img_key key;
    sqlite3_uint64 tick; /* last use, for eviction */
    float *aEmbed;       /* sqlite3_free */
    size_t nEmbed;
    float *aProb; /* sqlite3_free; NULL until probabilities are stored */
    size_t nProb;
};

struct txt_slot {
    int bUsed;
    unsigned char key[16];
    sqlite3_uint64 tick;
    float *a; /* sqlite3_free */
    size_t n;
};

static pthread_mutex_t g_imgMutex = PTHREAD_MUTEX_INITIALIZER;
static struct img_slot g_aImg[IMG_SLOTS]; /* guarded by g_imgMutex */
static sqlite3_uint64 g_imgTick, g_imgHit, g_imgMiss;

static pthread_mutex_t g_txtMutex = PTHREAD_MUTEX_INITIALIZER;
static struct txt_slot g_aTxt[TXT_SLOTS]; /* guarded by g_txtMutex */
static sqlite3_uint64 g_txtTick, g_txtHit, g_txtMiss, g_txtBytes;

static int key_eq(const struct ram_img_key *a, const struct ram_img_key *b)
{
    return !memcmp(a->hash, b->hash, 16) && !strcmp(a->digest, b->digest) && a->exif == b->exif &&
           a->mxPixels == b->mxPixels;
}

int ram__imgcache_get(const struct ram_img_key *k, float *aEmbed, size_t nEmbed, float *aProb, size_t nProb,
                      int *pbProb)
{
    int bHit = 0;
    *pbProb = 0;
    pthread_mutex_lock(&g_imgMutex);
    for (int i = 0; i < IMG_SLOTS; i++) {
        struct img_slot *s = &g_aImg[i];
        if (!s->bUsed || !key_eq(&s->key, k) || s->nEmbed != nEmbed) continue;
        memcpy(aEmbed, s->aEmbed, nEmbed * sizeof(float));
        if (aProb && s->aProb && s->nProb == nProb) {
            memcpy(aProb, s->aProb, nProb * sizeof(float));
            *pbProb = 1;
        }
        s->tick = ++g_imgTick;
        bHit = 1;
        break;
    }
    if (bHit)
        g_imgHit++;
    else
        g_imgMiss++;
    pthread_mutex_unlock(&g_imgMutex);
    return bHit;
}

void ram__imgcache_put(const struct ram_img_key *k, const float *aEmbed, size_t nEmbed, const float *aProb,
                       size_t nProb)
{
    float *aE = 0, *aP = 0;
    pthread_mutex_lock(&g_imgMutex);
    struct img_slot *s = 0;
    for (int i = 0; i < IMG_SLOTS; i++) {
        if (g_aImg[i].bUsed && key_eq(&g_aImg[i].key, k) && g_aImg[i].nEmbed == nEmbed) {
            s = &g_aImg[i];
            break;
        }
    }
    if (s) { /* complete an existing entry with probabilities */
        if (aProb && !s->aProb && (aP = sqlite3_malloc64(nProb * sizeof(float)))) {
            memcpy(aP, aProb, nProb * sizeof(float));
            s->aProb = aP;
            s->nProb = nProb;
        }
        s->tick = ++g_imgTick;
        pthread_mutex_unlock(&g_imgMutex);
        return;
    }
    for (int i = 0; i < IMG_SLOTS; i++) {
        if (!g_aImg[i].bUsed) {
            s = &g_aImg[i];
            break;
        }
        if (!s || g_aImg[i].tick < s->tick) s = &g_aImg[i];
    }
    aE = sqlite3_malloc64(nEmbed * sizeof(float));
    if (aProb) aP = sqlite3_malloc64(nProb * sizeof(float));
    if (!aE || (aProb && !aP)) {
        sqlite3_free(aE);
        sqlite3_free(aP);
        pthread_mutex_unlock(&g_imgMutex);
        return;
    }
    sqlite3_free(s->aEmbed);
    sqlite3_free(s->aProb);
    memcpy(aE, aEmbed, nEmbed * sizeof(float));
    if (aP) memcpy(aP, aProb, nProb * sizeof(float));
    s->bUsed = 1;
    s->key = *k;
    s->aEmbed = aE;
    s->nEmbed = nEmbed;
    s->aProb = aP;
    s->nProb = aP ? nProb : 0;
    s->tick = ++g_imgTick;
    pthread_mutex_unlock(&g_imgMutex);
}

int ram__txtcache_get(const unsigned char key[16], float *aOut, size_t n)
{
    int bHit = 0;
    pthread_mutex_lock(&g_txtMutex);
    for (int i = 0; i < TXT_SLOTS; i++) {
        struct txt_slot *s = &g_aTxt[i];
        if (s->bUsed && s->n == n && !memcmp(s->key, key, 16)) {
            memcpy(aOut, s->a, n * sizeof(float));
            s->tick = ++g_txtTick;
            bHit = 1;
            break;
        }
    }
    if (bHit)
        g_txtHit++;
    else
        g_txtMiss++;
    pthread_mutex_unlock(&g_txtMutex);
    return bHit;
}

static void txt_evict(struct txt_slot *s)
{
    g_txtBytes -= s->n * sizeof(float);
    sqlite3_free(s->a);
    memset(s, 0, sizeof *s);
}

void ram__txtcache_put(const unsigned char key[16], const float *a, size_t n)
{
    sqlite3_uint64 nByte = n * sizeof(float);
    if (nByte > TXT_MAX_BYTES / 4) return; /* one huge vocabulary must not flush everything */
    float *aCopy = sqlite3_malloc64(nByte);
    if (!aCopy) return;
    memcpy(aCopy, a, nByte);
    pthread_mutex_lock(&g_txtMutex);
    for (int i = 0; i < TXT_SLOTS; i++) {
        if (g_aTxt[i].bUsed && g_aTxt[i].n == n && !memcmp(g_aTxt[i].key, key, 16)) {
            g_aTxt[i].tick = ++g_txtTick; /* another thread stored it meanwhile */
            pthread_mutex_unlock(&g_txtMutex);
            sqlite3_free(aCopy);
            return;
        }
    }
    /* Evict least recently used entries until a slot and the bytes are free. */
    for (;;) {
        struct txt_slot *pFree = 0, *pOld = 0;
        for (int i = 0; i < TXT_SLOTS; i++) {
            if (!g_aTxt[i].bUsed) {
                if (!pFree) pFree = &g_aTxt[i];
            } else if (!pOld || g_aTxt[i].tick < pOld->tick) {
                pOld = &g_aTxt[i];
            }
        }
        if (pFree && g_txtBytes + nByte <= TXT_MAX_BYTES) {
            pFree->bUsed = 1;
            memcpy(pFree->key, key, 16);
            pFree->a = aCopy;
            pFree->n = n;
            pFree->tick = ++g_txtTick;
            g_txtBytes += nByte;
            break;
        }
        if (!pOld) { /* cannot happen: nByte <= TXT_MAX_BYTES / 4 */
            sqlite3_free(aCopy);
            break;
        }
        txt_evict(pOld);
    }
    pthread_mutex_unlock(&g_txtMutex);
}

char *ram__cache_json(void)
{
    int nImg = 0, nTxt = 0;
    pthread_mutex_lock(&g_imgMutex);
    for (int i = 0; i < IMG_SLOTS; i++) nImg += g_aImg[i].bUsed;
    sqlite3_uint64 iHit = g_imgHit, iMiss = g_imgMiss;
    pthread_mutex_unlock(&g_imgMutex);
    pthread_mutex_lock(&g_txtMutex);
    for (int i = 0; i < TXT_SLOTS; i++) nTxt += g_aTxt[i].bUsed;
    sqlite3_uint64 tHit = g_txtHit, tMiss = g_txtMiss, tBytes = g_txtBytes;
    pthread_mutex_unlock(&g_txtMutex);
    return ram__mprintf("{\"image\":{\"slots\":%d,\"used\":%d,\"hits\":%llu,\"misses\":%llu},"
                        "\"text\":{\"slots\":%d,\"used\":%d,\"bytes\":%llu,\"max_bytes\":%llu,"
                        "\"hits\":%llu,\"misses\":%llu}}",
                        IMG_SLOTS, nImg, iHit, iMiss, TXT_SLOTS, nTxt, tBytes, TXT_MAX_BYTES, tHit, tMiss);
}

void ram__cache_clear(void)
{
    pthread_mutex_lock(&g_imgMutex);
    for (int i = 0; i < IMG_SLOTS; i++) {
        sqlite3_free(g_aImg[i].aEmbed);
        sqlite3_free(g_aImg[i].aProb);
        memset(&g_aImg[i], 0, sizeof g_aImg[i]);
    }
    pthread_mutex_unlock(&g_imgMutex);
    pthread_mutex_lock(&g_txtMutex);
    for (int i = 0; i < TXT_SLOTS; i++) {
        if (g_aTxt[i].bUsed) txt_evict(&g_aTxt[i]);
    }
    pthread_mutex_unlock(&g_txtMutex);
}
