/*
** func_score.c — open-set scoring and the CLIP tokenizer in SQL:
**
**     SELECT ram_score(readfile('cat.jpg'), 'a cat asleep on a sofa');  -- 0.93
**     SELECT name FROM photos
**      WHERE ram_score(img, '["a red bicycle", "a bike leaning on a wall"]') > 0.5;
**     SELECT ram_tokenize('a photo of a cat.');   -- [49406,320,1125,539,320,2368,269,49407]
**     SELECT ram_text_embed('a red bicycle');     -- float32[embed_dim], subtype 223
**
** ram_score(image, description) is RAM++'s open-set probability that the
** concept is in the image: the description's CLIP text embedding (or, for a
** JSON array, the embeddings of several descriptions of one concept, which
** the image's CLS embedding weighs as RAM++ does) goes through the tagging
** decoder as a new class query; the result is sigmoid(logit), in [0, 1].
** Needs a model converted with its CLIP text tower (ram-convert --clip).
**
** ram_score is a pure function of its arguments and the connection's
** context: the image is always evaluated in fp32 (an image blob through the
** image cache, or a ram_embed() blob as stored), whether or not a ram_index
** table holds it; the int8-cache score is MATCH's (docs/INDEX.md).
**
** HOW IT WORKS: text embeddings come from texts.c (L2-normalised CLIP
** encode_text outputs through the process-wide text LRU); on top of that
** sqlite3_set_auxdata on argument 2 keeps them for the statement, so a
** constant description is parsed and looked up once.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* The connection's context, which must have a text encoder. */
static int text_ctx(struct ram_conn *p, const char *zFunc, struct ram_ctx **ppCtx, char **pzErr)
{
    int rc = ram__conn_ctx(p, zFunc, ppCtx, pzErr);
    return rc ? rc : ram__ctx_need_text(*ppCtx, zFunc, pzErr);
}

/* Per-statement auxdata of ram_score's argument 2: the embeddings of the
** description list for one model. */
struct score_aux {
    char zDigest[33];
    int nDes, nDim;
    float a[]; /* nDes * nDim */
};

/* ram_score(image, description): open-set probability of one concept. */
static void ramScoreFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    struct ram_ctx *c = 0;
    struct score_aux *pAux = 0, *pNew = 0;
    struct ram_texts list;
    struct ram_image img;
    struct ram_error err;
    char *zErr = 0;
    int rc = SQLITE_OK, bNull = 0, bList = 0;
    memset(&list, 0, sizeof list);

    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) return;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
        /* Same message as every image argument. */
        rc = ram__image_check(p->db, "ram_score", 1, argv[0], &bNull, &zErr);
        goto done;
    }
    if (sqlite3_value_type(argv[1]) != SQLITE_TEXT) {
        zErr = ram__mprintf("ram_score(): argument 2 must be a TEXT description or a JSON array of "
                            "descriptions");
        rc = SQLITE_ERROR;
        goto done;
    }
    const char *zText = (const char *)sqlite3_value_text(argv[1]);
    int nText = sqlite3_value_bytes(argv[1]);
    if (!zText) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    if (nText > RAM_MAX_TEXT) {
        zErr = ram__mprintf("ram_score(): argument 2 is too long (%d bytes; the limit is %d)", nText, RAM_MAX_TEXT);
        rc = SQLITE_TOOBIG;
        goto done;
    }
    if ((rc = text_ctx(p, "ram_score", &c, &zErr))) goto done;
    const struct ram_model_info *pI = &c->pEntry->info;

    pAux = sqlite3_get_auxdata(ctx, 1);
    if (!pAux || strcmp(pAux->zDigest, pI->digest)) {
        pAux = 0;
        const char *zOne = zText;
        int nOne = nText;
        struct ram_texts one = {&zOne, &nOne, 1};
        if ((rc = ram__parse_text_list(zText, nText, "ram_score(): argument 2", &bList, &list, &zErr))) goto done;
        const struct ram_texts *pT = bList ? &list : &one;
        pNew = sqlite3_malloc64(sizeof *pNew + sizeof(float) * (sqlite3_uint64)pT->n * pI->embed_dim);
        if (!pNew) {
            rc = SQLITE_NOMEM;
            goto done;
        }
        memcpy(pNew->zDigest, pI->digest, sizeof pNew->zDigest);
        pNew->zDigest[32] = 0;
        pNew->nDes = pT->n;
        pNew->nDim = pI->embed_dim;
        if ((rc = ram__ctx_encode_texts(c, "ram_score", pT, pNew->a, &zErr))) goto done;
    }
    const struct score_aux *pUse = pAux ? pAux : pNew;
    float prob = 0;
    if ((rc = ram__ctx_image(c, &p->prep, "ram_score", 1, argv[0], 0, &bNull, &img, &zErr))) goto done;
    ram_status s = ram_openset_probs(c->pState, img.aEmbed, pUse->a, 1, pUse->nDes, &prob, &err);
    if (s) {
        rc = ram__core_error("ram_score", s, &err, &zErr);
        goto done;
    }
    sqlite3_result_double(ctx, (double)prob);
    if (pNew) {
        /* May free pNew at once (a non-constant argument): not used after. */
        sqlite3_set_auxdata(ctx, 1, pNew, sqlite3_free);
        pNew = 0;
    }

done:
    ram__texts_free(&list);
    sqlite3_free(pNew);
    if (rc) ram__result_error(ctx, rc, zErr);
}

/* Argument 1 of zFunc as TEXT of *pn bytes, or NULL with the result set:
** SQL NULL for a NULL argument, else an error (not TEXT: "must be TEXT"
** followed by zWhat; over RAM_MAX_TEXT bytes; out of memory). */
static const char *text_arg(sqlite3_context *ctx, sqlite3_value *v, const char *zFunc, const char *zWhat, int *pn)
{
    if (sqlite3_value_type(v) == SQLITE_NULL) return 0;
    if (sqlite3_value_type(v) != SQLITE_TEXT) {
        ram__result_error(ctx, SQLITE_ERROR, ram__mprintf("%s(): argument 1 must be TEXT%s", zFunc, zWhat));
        return 0;
    }
    const char *z = (const char *)sqlite3_value_text(v);
    int n = sqlite3_value_bytes(v);
    if (!z) {
        sqlite3_result_error_nomem(ctx);
        return 0;
    }
    if (n > RAM_MAX_TEXT) {
        ram__result_error(
            ctx, SQLITE_TOOBIG,
            ram__mprintf("%s(): argument 1 is too long (%d bytes; the limit is %d)", zFunc, n, RAM_MAX_TEXT));
        return 0;
    }
    *pn = n;
    return z;
}

/* ram_tokenize(text): clip.tokenize(text, truncate=True) ids without the
** zero padding, as a JSON array (start 49406 and end 49407 included). */
static void ramTokenizeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    char *zErr = 0;
    int n = 0;
    const char *z = text_arg(ctx, argv[0], "ram_tokenize", "", &n);
    if (!z) return;
    struct ram_ctx *c = 0;
    int rc = text_ctx(p, "ram_tokenize", &c, &zErr);
    if (rc) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    int32_t aId[RAM_CLIP_CONTEXT];
    int nId = 0;
    struct ram_error err;
    ram_status s = ram_tokenize(c->pEntry->pModel, z, (size_t)n, aId, &nId, &err);
    if (s) {
        rc = ram__core_error("ram_tokenize", s, &err, &zErr);
        ram__result_error(ctx, rc, zErr);
        return;
    }
    sqlite3_str *str = sqlite3_str_new(p->db);
    sqlite3_str_appendchar(str, 1, '[');
    for (int i = 0; i < nId; i++) sqlite3_str_appendf(str, i ? ",%d" : "%d", (int)aId[i]);
    sqlite3_str_appendchar(str, 1, ']');
    if (sqlite3_str_errcode(str)) {
        sqlite3_free(sqlite3_str_finish(str));
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, sqlite3_str_finish(str), -1, sqlite3_free);
    sqlite3_result_subtype(ctx, 'J');
}

/* ram_text_embed(text): the description's CLIP text embedding, L2-normalised:
** the row MATCH and ram_score() use for it (texts.c), in the space of the
** image CLS embeddings (ram_cls(), the cls column of ram_index). embed_dim
** little-endian float32 with subtype 223, as ram_cls(), so that sqlite-vec
** (vec0, vec_distance_cosine) runs text-to-image KNN over stored ram_cls()
** vectors. The text is one description as given (no JSON list form: a list
** has no single vector). */
static void ramTextEmbedFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    char *zErr = 0;
    int n = 0;
    const char *z = text_arg(ctx, argv[0], "ram_text_embed", " (a description)", &n);
    if (!z) return;
    if (n == 0) {
        sqlite3_result_error(ctx, "ram_text_embed(): argument 1 is empty (a description is needed)", -1);
        return;
    }
    struct ram_ctx *c = 0;
    int rc = text_ctx(p, "ram_text_embed", &c, &zErr);
    if (rc) {
        ram__result_error(ctx, rc, zErr);
        return;
    }
    size_t nDim = (size_t)c->pEntry->info.embed_dim;
    float *a = sqlite3_malloc64(nDim * sizeof(float));
    unsigned char *out = sqlite3_malloc64(nDim * sizeof(float));
    if (!a || !out) {
        sqlite3_free(a), sqlite3_free(out);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    const char *zOne = z;
    int nOne = n;
    struct ram_texts one = {&zOne, &nOne, 1};
    rc = ram__ctx_encode_texts(c, "ram_text_embed", &one, a, &zErr);
    if (rc) {
        sqlite3_free(a), sqlite3_free(out);
        ram__result_error(ctx, rc, zErr);
        return;
    }
    ram__f32_to_le(out, a, nDim);
    sqlite3_free(a);
    sqlite3_result_blob64(ctx, out, nDim * sizeof(float), sqlite3_free);
    sqlite3_result_subtype(ctx, RAM_SUBTYPE_F32);
}

/* Flags, on purpose:
** - not DETERMINISTIC: the result depends on the connection's model (and,
**   for ram_score, on its image settings), which ram_load() changes; SQLite
**   then refuses them in index expressions and generated columns, which
**   would go stale (tests/sql/flags.sql). The auxdata on argument 2 and the
**   caches keep repeated calls cheap.
** - INNOCUOUS: they read only their arguments and the model the
**   application chose (see func_tags.c); no file named by SQL, no writes.
** - ram_tokenize returns JSON with subtype 'J' so json functions take it as
**   JSON, ram_text_embed a vector with subtype 223 as ram_cls():
**   SQLITE_RESULT_SUBTYPE. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_score", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramScoreFunc},
    {"ram_tokenize", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_RESULT_SUBTYPE, ramTokenizeFunc},
    {"ram_text_embed", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_RESULT_SUBTYPE, ramTextEmbedFunc},
};

int ram__register_score_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
