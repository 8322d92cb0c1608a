/*
** func_caption.c — captions with a Tag2Text model:
**
**     SELECT ram_caption(readfile('cat.jpg'));                 -- guided by the predicted tags
**     SELECT ram_caption(readfile('cat.jpg'), 'cat, sofa');    -- guided by these tags
**     SELECT ram_caption_model('models/tag2text.ram');         -- a caption model beside the tagging one
**
** The caption model of a connection is the one set by ram_caption_model()
** on it if any, else the connection's own model when that is a Tag2Text
** model (ram_load('models/tag2text.ram')), else RAM_CAPTION_MODEL's file,
** else the default caption model
** (default_caption.ram in the default model's places, model_path.c; make
** builds models/default_caption.ram, the bundled one trained on the demo's
** kind of pictures). So one connection can tag and score with RAM++
** (ram_load) and caption with Tag2Text (ram_caption_model) at the same
** time; the image cache keeps their work apart (its key holds the model's
** digest). ram_caption_model(NULL) forgets the caption model (the next
** caption resolves it again as above).
**
** tags: NULL, '', 'none' and 'None' mean the model's own predicted tags (the
** official thresholds and deleted tags: ram_set_threshold does not apply;
** pass the tags to choose them), else ',' or ' | ' separated tags as the
** official inference script takes them. Decoding (the official beam
** search) is interruptible between decoder steps. Messages are prefixed
** "ram_caption(): " / "ram_caption_model(): ".
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* Per connection, shared by the registrations below. The caption model
** itself is the connection's (p->pCap, conn.c), so that ram_tag_list can
** list its tags too. */
struct ram_caption_conn {
    int nRef;           /* registrations pointing here */
    struct ram_conn *p; /* the connection's state: one reference (ram__conn_unref) */
};

static void caption_conn_unref(void *pArg)
{
    struct ram_caption_conn *q = pArg;
    if (!q || --q->nRef > 0) return;
    ram__conn_unref(q->p);
    sqlite3_free(q);
}

/* ram_caption(image [, tags]). */
static void ramCaptionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_caption_conn *q = sqlite3_user_data(ctx);
    ram__conn_refresh(q->p);
    const char *zTags = 0;
    int nTags = 0;
    if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
        if (sqlite3_value_type(argv[1]) != SQLITE_TEXT) {
            sqlite3_result_error(ctx, "ram_caption(): argument 2 must be TEXT tags ('dog, grass') or NULL", -1);
            return;
        }
        zTags = (const char *)sqlite3_value_text(argv[1]);
        nTags = sqlite3_value_bytes(argv[1]);
        if (!zTags) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
    char *zErr = 0;
    int bNull = 0;
    struct ram_ctx *c = 0;
    int rc = ram__image_check(q->p->db, "ram_caption", 1, argv[0], &bNull, &zErr);
    if (rc == SQLITE_OK && !bNull) rc = ram__conn_caption_ctx(q->p, "ram_caption", &c, &zErr);
    struct ram_image img;
    if (rc == SQLITE_OK && !bNull)
        rc = ram__ctx_image(c, &q->p->prep, "ram_caption", 1, argv[0], zTags == 0, &bNull, &img, &zErr);
    if (rc != SQLITE_OK) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    if (bNull) return;
    struct ram_error err;
    char *zCap = 0;
    ram_status s = ram_caption_embeds(c->pState, img.aEmbed, img.aProb, zTags, (size_t)nTags, &zCap, 0, &err);
    if (s) {
        rc = ram__core_error("ram_caption", s, &err, &zErr);
        ram__result_error(ctx, rc, zErr);
        return;
    }
    sqlite3_result_text(ctx, zCap, -1, SQLITE_TRANSIENT);
    ram_string_free(zCap);
}

/* ram_caption_model(path [, verify]): the connection's caption model (a
** Tag2Text model file, mapped once per process like ram_load's); NULL
** forgets it. Returns the path, or NULL. */
static void ramCaptionModelFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_caption_conn *q = sqlite3_user_data(ctx);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        ram__ctx_unref(q->p->pCap);
        q->p->pCap = 0;
        return;
    }
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_error(ctx, "ram_caption_model(): argument 1 must be the TEXT path of a Tag2Text model file", -1);
        return;
    }
    int eVerify;
    if (ram__registry_verify_arg(ctx, "ram_caption_model", argc, argv, &eVerify) != SQLITE_OK) return;
    const char *zPath = (const char *)sqlite3_value_text(argv[0]);
    if (!zPath) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    struct ram_entry *pEntry = 0;
    struct ram_ctx *c = 0;
    char *zMsg = 0, *zErr = 0;
    int rc = ram__registry_acquire(zPath, eVerify, &pEntry, &zMsg);
    if (rc == SQLITE_OK && pEntry->info.kind != RAM_KIND_TAG2TEXT) {
        ram__registry_release(pEntry);
        zErr = ram__mprintf("ram_caption_model(): %s is not a Tag2Text model", zPath);
        ram__result_error(ctx, SQLITE_ERROR, zErr);
        return;
    }
    if (rc == SQLITE_OK) rc = ram__ctx_open(q->p->db, pEntry, &c, &zMsg);
    if (rc != SQLITE_OK) {
        if (zMsg && rc == SQLITE_CANTOPEN)
            zErr = ram__mprintf("ram_caption_model(): %s", zMsg);
        else if (zMsg)
            zErr = ram__mprintf("ram_caption_model(): cannot load %s: %s", zPath, zMsg);
        sqlite3_free(zMsg);
        ram__result_error(ctx, rc, zErr);
        return;
    }
    ram__ctx_unref(q->p->pCap);
    q->p->pCap = c;
    sqlite3_result_text(ctx, zPath, -1, SQLITE_TRANSIENT);
}

/* Flags, on purpose:
** - ram_caption: not DETERMINISTIC (it depends on the connection's models
**   and image settings: SQLite then keeps it out of index expressions and
**   generated columns, which would go stale); INNOCUOUS as ram_tags: it
**   maps only a model file the application chose.
** - ram_caption_model: DIRECTONLY, it opens the file it is given (as
**   ram_load). */
int ram__register_caption_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    static const struct {
        const char *zName;
        int nArg, flags;
        void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
    } a[] = {
        {"ram_caption", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramCaptionFunc},
        {"ram_caption", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramCaptionFunc},
        {"ram_caption_model", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, ramCaptionModelFunc},
        {"ram_caption_model", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY, ramCaptionModelFunc},
    };
    struct ram_caption_conn *q = sqlite3_malloc64(sizeof *q);
    if (!q) return SQLITE_NOMEM;
    memset(q, 0, sizeof *q);
    q->p = p;
    ram__conn_ref(p);
    q->nRef = 1; /* ours until the end of this function */
    int rc = SQLITE_OK;
    for (size_t i = 0; i < sizeof a / sizeof a[0] && rc == SQLITE_OK; i++) {
        q->nRef++;
        rc = sqlite3_create_function_v2(db, a[i].zName, a[i].nArg, a[i].flags, q, a[i].xFunc, 0, 0, caption_conn_unref);
        /* On failure SQLite has already called the destructor for this registration. */
        if (rc != SQLITE_OK && pzErrMsg)
            *pzErrMsg = sqlite3_mprintf("ram: cannot register %s: %s", a[i].zName, sqlite3_errmsg(db));
    }
    caption_conn_unref(q);
    return rc;
}
