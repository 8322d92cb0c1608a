/*
** func_model.c — model selection and the connection's image settings:
** ram_load(path), ram_model(), ram_set_max_pixels(n), ram_set_exif(0|1).
**
**     SELECT ram_load('models/default.ram');  -- JSON, as ram_model()
**     SELECT ram_load('models/big.ram', 0);   -- same, without hashing the data first
**     SELECT json_extract(ram_model(), '$.kind');          -- 'RAM++'
**     SELECT ram_set_max_pixels(20000000);   -- refuse images over 20 MP
**     SELECT ram_set_exif(0);                -- ignore EXIF orientation
**
** A connection's model is, in order: the last ram_load() on it; else the
** file named by the environment variable RAM_MODEL; else models/default.ram
** next to the directory holding ram.so. The file is mapped once per process
** (registry.c) and shared by every connection using it.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* ram_model()'s JSON for an entry (sqlite3_free), NULL on OOM. */
static char *model_json(const struct ram_entry *e)
{
    const struct ram_model_info *pI = &e->info;
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendf(s,
                        "{\"kind\":\"%s\",\"tags\":%d,\"descriptions_per_tag\":%d,"
                        "\"image_size\":%d,\"embed_dim\":%d,\"image_tokens\":%d,\"dtype\":",
                        pI->kind == RAM_KIND_RAM_PLUS   ? "RAM++"
                        : pI->kind == RAM_KIND_TAG2TEXT ? "Tag2Text"
                                                        : "RAM",
                        pI->num_class, pI->des_per_class, pI->image_size, pI->embed_dim, pI->n_image_tokens);
    ram__json_str(s, pI->dtype);
    if (pI->int8_path) {
        sqlite3_str_appendf(s, ",\"int8_path\":");
        ram__json_str(s, pI->int8_path);
    }
    if (pI->caption_decoder) {
        sqlite3_str_appendf(s, ",\"caption_decoder\":");
        ram__json_str(s, pI->caption_decoder);
    }
    sqlite3_str_appendf(s, ",\"file\":");
    ram__json_str(s, e->zPath);
    sqlite3_str_appendf(s, ",\"digest\":");
    ram__json_str(s, pI->digest);
    sqlite3_str_appendf(s, ",\"size\":%llu,\"text_encoder\":%s,\"verified\":%s}", (unsigned long long)pI->file_size,
                        pI->has_text_encoder ? "true" : "false", ram__registry_verified(e) ? "true" : "false");
    if (sqlite3_str_errcode(s)) {
        sqlite3_free(sqlite3_str_finish(s));
        return 0;
    }
    return sqlite3_str_finish(s);
}

static void result_model_json(sqlite3_context *ctx, const struct ram_entry *e)
{
    char *z = model_json(e);
    if (!z) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, z, -1, sqlite3_free);
    sqlite3_result_subtype(ctx, 'J');
}

/* ram_load(path [, verify]): loads the model file (once per process) and
** makes it the connection's model. Returns ram_model()'s JSON. verify 1
** (default) checks the stored checksum of the data, now if an earlier
** ram_load(path, 0) skipped it; 0 skips that pass over the whole file (the
** header, the tensor table and every bound are checked all the same). */
static void ramLoadFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    struct ram_entry *pEntry = 0;
    char *zMsg = 0;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_error(ctx, "ram_load(): argument 1 must be the TEXT path of a model file", -1);
        return;
    }
    int eVerify;
    if (ram__registry_verify_arg(ctx, "ram_load", argc, argv, &eVerify) != SQLITE_OK) return;
    const char *zPath = (const char *)sqlite3_value_text(argv[0]);
    if (!zPath) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int rc = ram__registry_acquire(zPath, eVerify, &pEntry, &zMsg);
    if (rc == SQLITE_OK) rc = ram__conn_set_model(p, pEntry, &zMsg);
    if (rc == SQLITE_OK) rc = ram__trust_add(p, zPath); /* tables recording it may open it */
    if (rc != SQLITE_OK) {
        int nPath = (int)strlen(zPath);
        int bPth = nPath > 4 && !sqlite3_stricmp(zPath + nPath - 4, ".pth");
        char *zErr = 0;
        if (zMsg && rc == SQLITE_CANTOPEN)
            zErr = ram__mprintf("ram_load(): %s", zMsg);
        else if (zMsg)
            zErr = ram__mprintf("ram_load(): cannot load %s: %s%s", zPath, zMsg,
                                bPth ? " (convert .pth checkpoints with ram-convert first)" : "");
        sqlite3_free(zMsg);
        ram__result_error(ctx, rc, zErr);
        return;
    }
    result_model_json(ctx, p->pCtx->pEntry);
}

/* ram_model(): JSON description of the connection's model (loading the
** default one if none was chosen yet). */
static void ramModelFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    char *zErr = 0;
    struct ram_ctx *c = 0;
    int rc = ram__conn_ctx(p, "ram_model", &c, &zErr);
    if (rc != SQLITE_OK) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    result_model_json(ctx, p->pCtx->pEntry);
}

/* ram_set_max_pixels(n): images with more than n pixels (width x height,
** read from the header before any decoding) are refused with SQLITE_TOOBIG.
** Default 100,000,000. Returns n. */
static void ramSetMaxPixelsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    sqlite3_int64 n = sqlite3_value_int64(argv[0]);
    if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER || n < 1) {
        sqlite3_result_error(ctx, "ram_set_max_pixels(): argument 1 must be a positive INTEGER", -1);
        return;
    }
    p->prep.mxPixels = n;
    sqlite3_result_int64(ctx, n);
}

/* ram_set_exif(flag): 1 (default) applies the EXIF orientation of photos
** before tagging; 0 ignores it, which is what the official code does.
** Returns flag. */
static void ramSetExifFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    sqlite3_int64 n = sqlite3_value_int64(argv[0]);
    if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER || (n != 0 && n != 1)) {
        sqlite3_result_error(ctx, "ram_set_exif(): argument 1 must be 0 or 1", -1);
        return;
    }
    p->prep.bExif = (int)n;
    sqlite3_result_int(ctx, (int)n);
}

/* Flags, on purpose (JSON results carry subtype 'J': SQLITE_RESULT_SUBTYPE):
** - ram_load reads a file named by its argument: DIRECTONLY (SQLite's
**   fileio.c rationale: a view or trigger in an untrusted database must not
**   make the application open files).
** - ram_model reveals a file path and depends on connection state:
**   DIRECTONLY, not deterministic.
** - ram_set_max_pixels / ram_set_exif change connection state (a limit that
**   protects the process among them): DIRECTONLY, so that an untrusted schema
**   cannot raise the pixel limit. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_load", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY | SQLITE_RESULT_SUBTYPE, ramLoadFunc},
    {"ram_load", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY | SQLITE_RESULT_SUBTYPE, ramLoadFunc},
    {"ram_model", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY | SQLITE_RESULT_SUBTYPE, ramModelFunc},
    {"ram_set_max_pixels", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, ramSetMaxPixelsFunc},
    {"ram_set_exif", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, ramSetExifFunc},
};

int ram__register_model_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
