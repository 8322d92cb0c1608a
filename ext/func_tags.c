/*
** func_tags.c — the closed-set tagging and embedding functions:
**
**     SELECT ram_tags(readfile('cat.jpg'));        -- 'cat | couch | living room'
**     SELECT ram_tags(readfile('cat.jpg'), 'zh');  -- Chinese names
**     UPDATE photos SET emb = ram_embed(img);      -- keep the encoder's work
**     SELECT ram_tags(emb) FROM photos;            -- no decoding, no Swin
**     SELECT ram_cls(img) FROM photos;             -- float32[embed_dim], subtype 223
**
** ram_tags gives the selected tags (probability > effective threshold, see
** thresholds.c) in class-index order, joined with ' | ' as the official
** generate_tag does; '' when none is selected.
**
** The ram_embed() layout is embed_blob.c's.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* ram_tags(image [, lang]): lang 'en' (default) or 'zh'. */
static void ramTagsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    struct ram_image img;
    const float *aThresh = 0;
    char *zErr = 0;
    int bNull = 0, lang = RAM_LANG_EN;
    if (argc > 1) {
        if (sqlite3_value_type(argv[1]) == SQLITE_NULL) return;
        const char *zLang = (const char *)sqlite3_value_text(argv[1]);
        if (sqlite3_value_type(argv[1]) != SQLITE_TEXT || !zLang ||
            (sqlite3_stricmp(zLang, "en") && sqlite3_stricmp(zLang, "zh"))) {
            sqlite3_result_error(ctx, "ram_tags(): argument 2 must be 'en' or 'zh'", -1);
            return;
        }
        lang = sqlite3_stricmp(zLang, "zh") ? RAM_LANG_EN : RAM_LANG_ZH;
    }
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
    /* Thresholds first: reading main.ram_thresholds may run SQL that uses the
    ** connection's image buffers. */
    int rc = SQLITE_OK;
    struct ram_ctx *c = 0;
    if (sqlite3_value_type(argv[0]) == SQLITE_BLOB) {
        rc = ram__conn_ctx(p, "ram_tags", &c, &zErr);
        if (rc == SQLITE_OK) rc = ram__ctx_thresholds(c, &p->th, "ram_tags", &aThresh, &zErr);
    }
    if (rc == SQLITE_OK) rc = ram__conn_image(p, "ram_tags", 1, argv[0], 1, &bNull, &img, &zErr);
    if (rc != SQLITE_OK) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    if (bNull) return;
    c = p->pCtx; /* the context that computed img */

    sqlite3_str *s = sqlite3_str_new(p->db);
    int nSel = 0;
    for (int k = 0; k < c->pEntry->info.num_class; k++) {
        if (!(img.aProb[k] > aThresh[k])) continue;
        if (nSel++) sqlite3_str_append(s, " | ", 3);
        const char *zTag = ram_model_tag(c->pEntry->pModel, k, lang);
        sqlite3_str_appendall(s, zTag ? zTag : "");
    }
    rc = sqlite3_str_errcode(s);
    char *z = sqlite3_str_finish(s);
    if (rc != SQLITE_OK) {
        sqlite3_free(z);
        if (rc == SQLITE_NOMEM)
            sqlite3_result_error_nomem(ctx);
        else
            sqlite3_result_error_toobig(ctx);
        return;
    }
    if (!z)
        sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    else
        sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* ram_embed(image): the image embeddings in the versioned layout above. */
static void ramEmbedFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    struct ram_image img;
    char *zErr = 0;
    int bNull = 0;
    int rc = ram__conn_image(p, "ram_embed", 1, argv[0], 0, &bNull, &img, &zErr);
    if (rc != SQLITE_OK) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    if (bNull) return;
    /* An embed blob passed back in keeps no record of how it was made; the
    ** flag describes this connection's setting for a fresh image. */
    const unsigned char *z = sqlite3_value_blob(argv[0]);
    uint32_t flags = p->prep.bExif ? RAM_EMBED_FLAG_EXIF : 0;
    if (ram__embed_blob_is(z, sqlite3_value_bytes(argv[0]))) flags = ram__embed_blob_flags(z);
    sqlite3_uint64 nByte = 0;
    unsigned char *a = ram__embed_blob_write(&p->pCtx->pEntry->info, img.aEmbed, flags, &nByte);
    if (!a) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_blob64(ctx, a, nByte, sqlite3_free);
}

/* ram_cls(image): row 0 of the embeddings (the CLS embedding), embed_dim
** little-endian float32 with subtype 223, which sqlite-vec's vec0 tables
** and vec_* functions read as a float32 vector. */
static void ramClsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    struct ram_image img;
    char *zErr = 0;
    int bNull = 0;
    int rc = ram__conn_image(p, "ram_cls", 1, argv[0], 0, &bNull, &img, &zErr);
    if (rc != SQLITE_OK) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    if (bNull) return;
    size_t nDim = (size_t)p->pCtx->pEntry->info.embed_dim;
    unsigned char *a = sqlite3_malloc64(nDim * sizeof(float));
    if (!a) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    ram__f32_to_le(a, img.aEmbed, nDim);
    sqlite3_result_blob64(ctx, a, nDim * sizeof(float), sqlite3_free);
    sqlite3_result_subtype(ctx, RAM_SUBTYPE_F32);
}

/* Flags, on purpose:
** - not DETERMINISTIC: the result depends on the connection's model
**   (ram_load, RAM_MODEL, the default file), on ram_set_exif and the pixel
**   limit, and for ram_tags on the thresholds (ram_set_threshold, rows of
**   main.ram_thresholds). SQLite would let a deterministic function into an
**   index expression or a generated column, which would then go stale
**   without notice; as it is, SQLite refuses those (tests/sql/flags.sql).
**   Repeated calls on one blob still cost one inference: the image cache of
**   cache.c is keyed by the blob's content, model and settings.
** - INNOCUOUS: usable from views and triggers of a database the
**   application opens. They do map a model file and may read
**   main.ram_thresholds, but the file is the one the application chose
**   (ram_load is DIRECTONLY) and the table is of the same database: a
**   schema cannot make them open a file of its choosing or write anything.
** - ram_cls sets a result subtype: SQLITE_RESULT_SUBTYPE, as SQLite 3.45+
**   requires. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_tags", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramTagsFunc},
    {"ram_tags", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramTagsFunc},
    {"ram_embed", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramEmbedFunc},
    {"ram_cls", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_RESULT_SUBTYPE, ramClsFunc},
};

int ram__register_tag_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
