/*
** ram.c — the entry point of the sqlite-ram extension: sqlite3_ram_init
** creates the connection's state and registers every SQL function and
** module from the tables of the other ext/ files; also ram_version() and
** ram_debug().
**
**     .load build/ram
**     SELECT ram_version();                 -- '0.1.0'
**     SELECT json_extract(ram_debug(), '$.simd');
**
** The connection state and its reference counting are conn.c; the
** interruption check is interrupt.c. ext/ext.h lists the layers: this file
** is the top one and is called by nothing else of ext/.
*/
#include "ext.h"
#include "model_path.h"
SQLITE_EXTENSION_INIT1

#include "image.h"

#include <cblas.h>
#include <pthread.h>
#include <string.h>

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
    sqlite3_str_appendf(s,
                        ",\"build\":{\"optimize\":%s,\"ndebug\":%s,\"sanitize\":%s,"
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
    char *zFound = ram__model_search(0); /* model_path.c */
    int nPlace = 0;
    char **azPlace = ram__model_places(&nPlace);
    sqlite3_str_appendf(s, ",\"default_model\":");
    if (zFound)
        ram__json_str(s, zFound);
    else
        sqlite3_str_appendall(s, "null");
    sqlite3_str_appendf(s, ",\"model_search\":[");
    for (int i = 0; i < nPlace; i++) {
        if (i) sqlite3_str_appendchar(s, 1, ',');
        ram__json_str(s, azPlace[i]);
    }
    sqlite3_str_appendchar(s, 1, ']');
    sqlite3_free(zFound);
    ram__model_places_free(azPlace, nPlace);
    sqlite3_str_appendf(s, ",\"models\":%s,\"caches\":%s}", zReg ? zReg : "null", zCache ? zCache : "null");
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

    struct ram_conn *p = ram__conn_new(db); /* one reference: ours until the end of this function */
    if (!p) return SQLITE_NOMEM;

    int rc = ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_model_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_threshold_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_tag_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_score_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_caption_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_vtab(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_tag_list(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_index(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_thumbnail_funcs(db, p, pzErrMsg);
    if (rc == SQLITE_OK) rc = ram__register_xmp_funcs(db, p, pzErrMsg); /* func_xmp.c */
    ram__conn_unref(p);
    return rc;
}
