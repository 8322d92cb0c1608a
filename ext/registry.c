/*
** registry.c — the process-wide model registry: every model file is mapped
** once per process, whatever the number of connections and threads using
** it, and unmapped when the last user lets go. This registry, the caches in
** cache.c and the interruption function pointer set at load are the only
** global state of the extension (the caches are keyed by model digest and
** hold no model pointers).
**
**     SELECT ram_load('models/default.ram');   -- acquire + make current
**     -- closing the connection (or loading another model) releases it
**
** HOW IT WORKS: a linked list of entries keyed by the file's realpath and
** identity (device, inode, size, mtime of the file actually mapped), each
** with a reference count, under one pthread mutex. A file replaced by
** renaming a new one over it (make, ram-convert) has a new identity: the
** next acquire maps the new file as a new entry, while the old entry keeps
** serving its current users until its count drops to 0. Loading happens under the
** mutex too: a second thread asking for the same file waits for the first
** load instead of mapping the file twice (loads are rare; inference never
** takes this lock). Users are contexts (context.c: a connection's current
** model, a ram_index table's own) and open ram_tag_scores cursors (so a
** ram_load() in the middle of a scan cannot free the names the cursor is
** returning). Each entry also indexes the
** English tag names (open addressing on XXH3-64) for threshold overrides.
**
** Where the default model is looked for: model_path.c.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct ram_entry *g_pList; /* guarded by g_mutex */
static int g_nConn;               /* live connection structs, guarded by g_mutex */

static unsigned tag_hash(const char *z, int n) { return (unsigned)XXH3_64bits(z, (size_t)n); }

static int build_tag_index(struct ram_entry *p)
{
    int n = p->info.num_class;
    int nHash = 16;
    while (nHash < 2 * n) nHash *= 2;
    p->aHash = sqlite3_malloc64(sizeof(int) * (sqlite3_uint64)nHash);
    if (!p->aHash) return SQLITE_NOMEM;
    p->nHash = nHash;
    for (int i = 0; i < nHash; i++) p->aHash[i] = -1;
    for (int c = 0; c < n; c++) {
        const char *z = ram_model_tag(p->pModel, c, RAM_LANG_EN);
        if (!z) continue;
        unsigned h = tag_hash(z, (int)strlen(z)) & (unsigned)(nHash - 1);
        while (p->aHash[h] >= 0) {
            /* Keep the first class of a duplicated name. */
            if (!strcmp(ram_model_tag(p->pModel, p->aHash[h], RAM_LANG_EN), z)) break;
            h = (h + 1) & (unsigned)(nHash - 1);
        }
        if (p->aHash[h] < 0) p->aHash[h] = c;
    }
    return SQLITE_OK;
}

int ram__entry_tag_index(const struct ram_entry *p, const char *z, int n)
{
    if (!p->aHash) return -1;
    unsigned h = tag_hash(z, n) & (unsigned)(p->nHash - 1);
    while (p->aHash[h] >= 0) {
        const char *t = ram_model_tag(p->pModel, p->aHash[h], RAM_LANG_EN);
        if (t && (int)strlen(t) == n && !memcmp(t, z, (size_t)n)) return p->aHash[h];
        h = (h + 1) & (unsigned)(p->nHash - 1);
    }
    return -1;
}

/* Is p's mapped file the one now at its path (stat sb)? */
static int entry_is_file(const struct ram_entry *p, const char *zReal, const struct stat *sb)
{
    const struct ram_model_info *pI = &p->info;
    return !strcmp(p->zPath, zReal) && pI->file_dev == (uint64_t)sb->st_dev && pI->file_ino == (uint64_t)sb->st_ino &&
           pI->file_size == (uint64_t)sb->st_size &&
           pI->file_mtime_ns == (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

static void entry_free(struct ram_entry *p)
{
    if (!p) return;
    if (p->pModel) ram_model_free(p->pModel);
    sqlite3_free(p->aHash);
    sqlite3_free(p->zPath);
    sqlite3_free(p);
}

int ram__registry_acquire(const char *zPath, int eVerify, struct ram_entry **ppEntry, char **pzErr)
{
    struct ram_entry *p = 0;
    struct ram_error err;
    struct ram_model_params prm = ram_model_default_params();
    char *zReal = 0;
    int rc = SQLITE_OK;
    *ppEntry = 0;
    *pzErr = 0;

    char *zTmp = realpath(zPath, 0); /* libc malloc */
    if (!zTmp) {
        *pzErr = ram__mprintf("cannot open model file '%s': %s", zPath, strerror(errno));
        return SQLITE_CANTOPEN;
    }
    zReal = ram__mprintf("%s", zTmp);
    free(zTmp);
    if (!zReal) return SQLITE_NOMEM;

    /* No match when stat fails: the load below reports why. The identity
    ** loaded is the mapped fd's, so a rename between this stat and the
    ** mapping only costs one more load at the next acquire. */
    struct stat sb;
    int bStat = stat(zReal, &sb) == 0;
    pthread_mutex_lock(&g_mutex);
    for (p = g_pList; p; p = p->pNext) {
        if (bStat && entry_is_file(p, zReal, &sb)) break;
    }
    if (p) {
        /* Verified under the mutex, like a load: other users keep running on
        ** the mapping meanwhile (they chose not to verify). */
        if (!p->bVerified && eVerify == RAM__VERIFY_ALWAYS) {
            ram_status s = ram_model_verify(p->pModel, &err);
            if (s) {
                rc = ram__rc(s);
                if (rc != SQLITE_NOMEM) *pzErr = ram__mprintf("%s", err.msg);
                p = 0;
                goto done;
            }
            p->bVerified = 1;
        }
        p->nRef++;
        *ppEntry = p;
        goto done;
    }
    p = sqlite3_malloc64(sizeof *p);
    if (!p) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    memset(p, 0, sizeof *p);
    prm.verify_checksum = eVerify != RAM__VERIFY_SKIP;
    ram_status s = ram_model_init_from_file(zReal, &prm, &p->pModel, &err);
    if (s) {
        rc = ram__rc(s);
        if (rc == SQLITE_ERROR && s == RAM_ERR_IO) rc = SQLITE_CANTOPEN;
        if (rc != SQLITE_NOMEM) *pzErr = ram__mprintf("%s", err.msg);
        entry_free(p);
        p = 0;
        goto done;
    }
    ram_model_get_info(p->pModel, &p->info);
    if ((rc = build_tag_index(p)) != SQLITE_OK) {
        entry_free(p);
        p = 0;
        goto done;
    }
    p->zPath = zReal;
    zReal = 0;
    p->bVerified = prm.verify_checksum;
    p->nRef = 1;
    p->pNext = g_pList;
    g_pList = p;
    *ppEntry = p;

done:
    pthread_mutex_unlock(&g_mutex);
    sqlite3_free(zReal);
    return rc;
}

int ram__registry_verified(const struct ram_entry *p)
{
    pthread_mutex_lock(&g_mutex);
    int b = p->bVerified;
    pthread_mutex_unlock(&g_mutex);
    return b;
}

void ram__registry_addref(struct ram_entry *p)
{
    pthread_mutex_lock(&g_mutex);
    p->nRef++;
    pthread_mutex_unlock(&g_mutex);
}

void ram__registry_release(struct ram_entry *p)
{
    if (!p) return;
    struct ram_entry *pFree = 0;
    pthread_mutex_lock(&g_mutex);
    if (--p->nRef == 0) {
        for (struct ram_entry **pp = &g_pList; *pp; pp = &(*pp)->pNext) {
            if (*pp == p) {
                *pp = p->pNext;
                break;
            }
        }
        pFree = p;
    }
    pthread_mutex_unlock(&g_mutex);
    entry_free(pFree); /* unmapping outside the lock */
}

void ram__conn_count_add(int delta)
{
    pthread_mutex_lock(&g_mutex);
    g_nConn += delta;
    int bClear = g_nConn == 0;
    pthread_mutex_unlock(&g_mutex);
    if (bClear) ram__cache_clear();
}

char *ram__registry_json(void)
{
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendchar(s, 1, '[');
    pthread_mutex_lock(&g_mutex);
    for (struct ram_entry *p = g_pList; p; p = p->pNext) {
        if (p != g_pList) sqlite3_str_appendchar(s, 1, ',');
        sqlite3_str_appendf(s, "{\"file\":");
        ram__json_str(s, p->zPath);
        sqlite3_str_appendf(s, ",\"digest\":\"%s\",\"kind\":\"%s\",\"dtype\":\"%s\"", p->info.digest,
                            p->info.kind == RAM_KIND_RAM_PLUS   ? "RAM++"
                            : p->info.kind == RAM_KIND_TAG2TEXT ? "Tag2Text"
                                                                : "RAM",
                            p->info.dtype);
        if (p->info.int8_path) sqlite3_str_appendf(s, ",\"int8_path\":\"%s\"", p->info.int8_path);
        sqlite3_str_appendf(s, ",\"refs\":%d,\"verified\":%s}", p->nRef, p->bVerified ? "true" : "false");
    }
    sqlite3_str_appendf(s, "],\"connections\":%d", g_nConn);
    pthread_mutex_unlock(&g_mutex);
    /* The caller embeds this as the value of "models": wrap the two parts. */
    char *zBody = sqlite3_str_finish(s);
    if (!zBody) return 0;
    char *z = ram__mprintf("{\"loaded\":%s}", zBody);
    sqlite3_free(zBody);
    return z;
}

int ram__registry_verify_arg(sqlite3_context *ctx, const char *zFunc, int argc, sqlite3_value **argv, int *peVerify)
{
    *peVerify = RAM__VERIFY_ALWAYS;
    if (argc < 2) return SQLITE_OK;
    sqlite3_int64 v = sqlite3_value_int64(argv[1]);
    if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER || (v != 0 && v != 1)) {
        char *z = sqlite3_mprintf("%s(): argument 2 (verify the checksum) must be 0 or 1", zFunc);
        if (z)
            sqlite3_result_error(ctx, z, -1);
        else
            sqlite3_result_error_nomem(ctx);
        sqlite3_free(z);
        return SQLITE_ERROR;
    }
    if (v == 0) *peVerify = RAM__VERIFY_SKIP;
    return SQLITE_OK;
}
