/*
** ram.c — the entry point of the sqlite-ram extension: sqlite3_ram_init
** creates the connection's state and registers every SQL function and the
** ram_tag_scores module from the tables of the other ext/ files; also
** ram_version(), ram_debug(), the connection-state lifetime and the
** interruption check handed to the engine.
**
**     .load build/ram
**     SELECT ram_version();                 -- '0.1.0'
**     SELECT json_extract(ram_debug(), '$.simd');
**
** HOW IT WORKS
**
** Connection state. SQLite 3.40 has no per-connection client data
** (sqlite3_set_clientdata is 3.44), so the state struct is the pApp of every
** function and the pAux of the module, with a reference count: each
** registration takes one and its xDestroy drops it; SQLite runs the
** destructors when the connection closes (or when a second .load replaces
** the registrations), and the last one frees the struct and its model
** reference.
**
** Interruption. The engine polls an abort callback between network stages.
** sqlite3_is_interrupted() exists from SQLite 3.41; the API table handed to
** extensions grows only at its end, so when the running library is 3.41 or
** newer its entry is read from the slot after value_encoding (3.40's last
** entry), even though this file is compiled against 3.40's sqlite3ext.h. On
** 3.40 there is no public reader of the flag that sqlite3_interrupt() sets,
** but the SQL tokenizer checks that flag at every whitespace token and the
** flag is only cleared when no statement is running. Our function runs
** inside a running statement, so preparing the one-space SQL " " returns
** SQLITE_INTERRUPT exactly when the connection was interrupted (and
** prepares no statement otherwise): a public-API probe costing about a
** microsecond, polled a handful of times per image. (The engine calls the
** callback on the calling thread, between stages, never from its workers:
** the probe uses the connection, which only that thread may touch.) Either way the function
** then fails with SQLITE_INTERRUPT and the message "<function>(): interrupted".
*/
#include "ext.h"
SQLITE_EXTENSION_INIT1

#include "image.h"

#include <cblas.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ errors */

int ram__rc(ram_status s)
{
    switch (s) {
    case RAM_OK: return SQLITE_OK;
    case RAM_ERR_NOMEM: return SQLITE_NOMEM;
    case RAM_ERR_TOO_BIG: return SQLITE_TOOBIG;
    case RAM_ERR_INTERRUPTED: return SQLITE_INTERRUPT;
    default: return SQLITE_ERROR;
    }
}

void ram__result_error(sqlite3_context *ctx, int rc, char *zErr)
{
    if (rc == SQLITE_NOMEM || !zErr) {
        sqlite3_result_error_nomem(ctx);
    } else {
        sqlite3_result_error(ctx, zErr, -1);
        if (rc != SQLITE_ERROR) sqlite3_result_error_code(ctx, rc);
    }
    sqlite3_free(zErr);
}

char *ram__memdup(const char *z, int n)
{
    char *d = sqlite3_malloc64((sqlite3_uint64)(n > 0 ? n : 0) + 1);
    if (!d) return 0;
    if (n > 0) memcpy(d, z, (size_t)n);
    d[n > 0 ? n : 0] = 0;
    return d;
}

char *ram__mprintf(const char *zFmt, ...)
{
    va_list ap;
    va_start(ap, zFmt);
    char *z = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
    return z;
}

void ram__json_str(sqlite3_str *s, const char *z)
{
    sqlite3_str_appendchar(s, 1, '"');
    for (const unsigned char *p = (const unsigned char *)(z ? z : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            sqlite3_str_appendf(s, "\\%c", *p);
        } else if (*p < 0x20) {
            sqlite3_str_appendf(s, "\\u%04x", *p);
        } else {
            sqlite3_str_appendchar(s, 1, (char)*p);
        }
    }
    sqlite3_str_appendchar(s, 1, '"');
}

/* ------------------------------------------------------------------ interruption */

/* sqlite3_is_interrupted of the running library, or NULL before 3.41. Set
** at every load (always to the same value: one library per process), read
** by any thread: atomic, relaxed. */
typedef int (*is_interrupted_fn)(sqlite3 *);
static is_interrupted_fn g_is_interrupted;

void ram__interrupt_init(const sqlite3_api_routines *pApi)
{
    is_interrupted_fn x = 0;
#if SQLITE_VERSION_NUMBER >= 3041000
    if (sqlite3_libversion_number() >= 3041000) x = pApi->is_interrupted;
#else
    if (sqlite3_libversion_number() >= 3041000) {
        /* The slot after value_encoding (see the header comment). All
        ** members of sqlite3_api_routines are function pointers. */
        void *const *aSlot = (void *const *)pApi;
        size_t i = offsetof(sqlite3_api_routines, value_encoding) / sizeof(void *) + 1;
        memcpy(&x, &aSlot[i], sizeof x);
    }
#endif
    __atomic_store_n(&g_is_interrupted, x, __ATOMIC_RELAXED);
}

const char *ram__interrupt_method(void)
{
    return __atomic_load_n(&g_is_interrupted, __ATOMIC_RELAXED) ? "sqlite3_is_interrupted"
                                                                 : "parser probe";
}

int ram__conn_interrupted(void *pArg)
{
    struct ram_conn *p = pArg;
    is_interrupted_fn x = __atomic_load_n(&g_is_interrupted, __ATOMIC_RELAXED);
    if (x) return x(p->db) != 0;
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(p->db, " ", 1, &pStmt, 0);
    sqlite3_finalize(pStmt);
    return rc == SQLITE_INTERRUPT;
}

/* ------------------------------------------------------------------ connection state */

void ram__conn_ref(struct ram_conn *p) { p->nRef++; }

void ram__conn_unref(void *pArg)
{
    struct ram_conn *p = pArg;
    if (!p || --p->nRef > 0) return;
    if (p->pState) ram_state_free(p->pState);
    if (p->pEntry) ram__registry_release(p->pEntry);
    sqlite3_free(p->aChw);
    sqlite3_free(p->aEmbed);
    sqlite3_free(p->aProb);
    sqlite3_free(p->aThresh);
    ram__thresholds_free(p);
    sqlite3_free(p);
    ram__conn_count_add(-1);
}

int ram__conn_set_model(struct ram_conn *p, struct ram_entry *pEntry, char **pzErr)
{
    struct ram_state *pState = 0;
    float *aChw = 0, *aEmbed = 0, *aProb = 0, *aThresh = 0;
    struct ram_error err;
    const struct ram_model_info *pI = &pEntry->info;
    int rc = SQLITE_OK;

    if (p->pEntry == pEntry) { /* same model: keep the state */
        ram__registry_release(pEntry);
        return SQLITE_OK;
    }
    ram_status s = ram_state_init(pEntry->pModel, &pState, &err);
    if (s) {
        rc = ram__rc(s);
        *pzErr = rc == SQLITE_NOMEM ? 0 : ram__mprintf("%s", err.msg);
        goto error;
    }
    ram_state_set_abort(pState, ram__conn_interrupted, p);
    aChw = sqlite3_malloc64(sizeof(float) * 3 * (sqlite3_uint64)pI->image_size * pI->image_size);
    aEmbed = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)pI->n_image_tokens * pI->embed_dim);
    aProb = sqlite3_malloc64(sizeof(float) * ((sqlite3_uint64)pI->num_class + 1));
    aThresh = sqlite3_malloc64(sizeof(float) * ((sqlite3_uint64)pI->num_class + 1));
    if (!aChw || !aEmbed || !aProb || !aThresh) {
        rc = SQLITE_NOMEM;
        *pzErr = 0;
        goto error;
    }
    /* Ownership moves to the connection. */
    if (p->pState) ram_state_free(p->pState);
    if (p->pEntry) ram__registry_release(p->pEntry);
    sqlite3_free(p->aChw);
    sqlite3_free(p->aEmbed);
    sqlite3_free(p->aProb);
    sqlite3_free(p->aThresh);
    p->pEntry = pEntry;
    p->pState = pState;
    p->aChw = aChw;
    p->aEmbed = aEmbed;
    p->aProb = aProb;
    p->aThresh = aThresh;
    p->bThreshOk = 0;
    return SQLITE_OK;

error:
    sqlite3_free(aThresh);
    sqlite3_free(aProb);
    sqlite3_free(aEmbed);
    sqlite3_free(aChw);
    if (pState) ram_state_free(pState);
    ram__registry_release(pEntry);
    return rc;
}

void ram__conn_refresh(struct ram_conn *p)
{
    struct ram_error e;
    /* Not while main.ram_thresholds is being read: the caller below holds
    ** the connection's buffers, which a new model would free. */
    if (!p->pEntry || p->bInTab || ram_model_check_file(p->pEntry->pModel, &e) == RAM_OK) return;
    char *zPath = ram__mprintf("%s", p->pEntry->zPath), *zMsg = 0;
    struct ram_entry *pEntry = 0;
    /* On failure (a truncated file) the model stays: inference then fails
    ** with the engine's "changed on disk" error. */
    if (zPath && ram__registry_acquire(zPath, RAM__VERIFY_ON_MAP, &pEntry, &zMsg) == SQLITE_OK)
        ram__conn_set_model(p, pEntry, &zMsg);
    sqlite3_free(zMsg);
    sqlite3_free(zPath);
}

int ram__conn_model(struct ram_conn *p, const char *zFunc, char **pzErr)
{
    if (p->pEntry) return SQLITE_OK;
    const char *zEnv = getenv("RAM_MODEL");
    char *zDefault = 0;
    struct ram_entry *pEntry = 0;
    char *zMsg = 0;
    int rc;
    if (zEnv && zEnv[0]) {
        rc = ram__registry_acquire(zEnv, RAM__VERIFY_ON_MAP, &pEntry, &zMsg);
        if (rc) {
            *pzErr = zMsg ? ram__mprintf("%s(): cannot load the model named by RAM_MODEL: %s", zFunc, zMsg)
                          : 0;
            sqlite3_free(zMsg);
            return rc;
        }
    } else {
        zDefault = ram__default_model_path();
        if (!zDefault) {
            *pzErr = ram__mprintf("%s(): no model loaded: call ram_load('path/to/model.ram'), set "
                                  "RAM_MODEL, or build the default model models/default.ram (make)",
                                  zFunc);
            return SQLITE_ERROR;
        }
        rc = ram__registry_acquire(zDefault, RAM__VERIFY_ON_MAP, &pEntry, &zMsg);
        if (rc) {
            *pzErr = zMsg ? ram__mprintf("%s(): cannot load the default model %s: %s", zFunc, zDefault,
                                         zMsg)
                          : 0;
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
    }
    return rc;
}

int ram__register_funcs(sqlite3 *db, struct ram_conn *p, const struct ram_func_def *a, int n,
                        char **pzErrMsg)
{
    for (int i = 0; i < n; i++) {
        ram__conn_ref(p); /* dropped by xDestroy, also when registration fails */
        int rc = sqlite3_create_function_v2(db, a[i].zName, a[i].nArg, a[i].flags, p, a[i].xFunc, 0, 0,
                                            ram__conn_unref);
        if (rc != SQLITE_OK) {
            *pzErrMsg = sqlite3_mprintf("ram: cannot register %s: %s", a[i].zName, sqlite3_errmsg(db));
            return rc;
        }
    }
    return SQLITE_OK;
}

/* ------------------------------------------------------------------ ram_version, ram_debug */

/* ram_version(): the engine version, e.g. '0.1.0'. */
static void ramVersionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite3_result_text(ctx, ram_version(), -1, SQLITE_STATIC);
}

static const char *simd_level(void)
{
#if defined(__AVX512F__)
    return "avx512f";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2+fma";
#elif defined(__AVX2__)
    return "avx2";
#elif defined(__AVX__)
    return "avx";
#elif defined(__SSE2__)
    return "sse2";
#elif defined(__ARM_NEON)
    return "neon";
#else
    return "none";
#endif
}

/* ram_debug(): a JSON object describing the build and the process: versions,
** compile-time SIMD level, OpenBLAS configuration and threads, libvips and
** its image formats, the model registry and the caches. */
static void ramDebugFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite3_str *s = sqlite3_str_new(sqlite3_context_db_handle(ctx));
    char *zReg = ram__registry_json();
    char *zCache = ram__cache_json();
    sqlite3_str_appendf(s, "{\"version\":");
    ram__json_str(s, ram_version());
    sqlite3_str_appendf(s, ",\"sqlite_compiled\":\"%s\",\"sqlite_runtime\":", SQLITE_VERSION);
    ram__json_str(s, sqlite3_libversion());
    sqlite3_str_appendf(s, ",\"compiler\":");
#ifdef __VERSION__
    ram__json_str(s, __VERSION__);
#else
    ram__json_str(s, "unknown");
#endif
    sqlite3_str_appendf(s, ",\"build\":{\"optimize\":%s,\"ndebug\":%s,\"sanitize\":%s,"
                           "\"test\":%s}",
#ifdef __OPTIMIZE__
                        "true",
#else
                        "false",
#endif
#ifdef NDEBUG
                        "true",
#else
                        "false",
#endif
#if defined(__SANITIZE_ADDRESS__)
                        "\"address\"",
#else
                        "null",
#endif
#ifdef RAM_TEST
                        "true"
#else
                        "false"
#endif
    );
    sqlite3_str_appendf(s, ",\"kernels\":\"%s\"", ram_kernels()); /* run-time choice (core/cpu.h) */
    sqlite3_str_appendf(s, ",\"simd\":\"%s\",\"openblas\":{\"config\":", simd_level());
    ram__json_str(s, openblas_get_config());
    sqlite3_str_appendf(s, ",\"core\":");
    ram__json_str(s, openblas_get_corename());
    sqlite3_str_appendf(s, ",\"threads\":%d},\"threads\":%d,\"libvips\":", openblas_get_num_threads(),
                        ram_get_threads());
    ram__json_str(s, ram_image_vips_version());
    sqlite3_str_appendf(s, ",\"image_formats\":");
    ram__json_str(s, ram_image_formats());
    sqlite3_str_appendf(s, ",\"interrupt\":");
    ram__json_str(s, ram__interrupt_method());
    sqlite3_str_appendf(s, ",\"models\":%s,\"caches\":%s}", zReg ? zReg : "null",
                        zCache ? zCache : "null");
    sqlite3_free(zReg);
    sqlite3_free(zCache);
    int rc = sqlite3_str_errcode(s);
    char *z = sqlite3_str_finish(s);
    if (rc || !z || !zReg || !zCache) {
        sqlite3_free(z);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, z, -1, sqlite3_free);
    sqlite3_result_subtype(ctx, 'J');
}

/* Flags, on purpose (JSON results carry subtype 'J': SQLITE_RESULT_SUBTYPE):
** - ram_version: a constant of the build: DETERMINISTIC and INNOCUOUS.
** - ram_debug: reports process state (file paths of loaded models, thread
**   counts): neither deterministic nor innocuous; DIRECTONLY so a schema
**   (view, trigger) cannot reveal paths. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_version", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, ramVersionFunc},
    {"ram_debug", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY | SQLITE_RESULT_SUBTYPE, ramDebugFunc},
};

#if defined(_WIN32)
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
int sqlite3_ram_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

int sqlite3_ram_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi)
{
    /* Every load passes the same pApi: the global is written once, under a
    ** mutex, never again while other threads' connections read it (TSan). */
    static pthread_mutex_t api_mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&api_mutex);
    if (sqlite3_api != pApi) {
        SQLITE_EXTENSION_INIT2(pApi);
    }
    pthread_mutex_unlock(&api_mutex);
    ram__interrupt_init(pApi);

    struct ram_conn *p = sqlite3_malloc64(sizeof *p);
    if (!p) return SQLITE_NOMEM;
    memset(p, 0, sizeof *p);
    p->db = db;
    p->nRef = 1; /* ours until the end of this function */
    p->mxPixels = RAM_DEFAULT_MAX_PIXELS;
    p->bExif = 1;
    ram__conn_count_add(1);

    int rc = ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_model_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_threshold_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_tag_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_score_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_vtab(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_index(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_thumbnail_funcs(db, p, pzErrMsg);
    ram__conn_unref(p);
    return rc;
}
