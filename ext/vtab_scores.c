/*
** vtab_scores.c — ram_tag_scores, an eponymous table-valued function with
** one row per tag: the score of every tag of the model for one image, or of
** an open-set vocabulary given as JSON.
**
**     SELECT tag, score FROM ram_tag_scores(readfile('x.jpg'))
**      WHERE score > 0.8 ORDER BY score DESC LIMIT 5;
**     SELECT tag, round(margin, 3) FROM ram_tag_scores(readfile('x.jpg')) WHERE selected;
**     SELECT tag, score FROM ram_tag_scores(readfile('x.jpg'),
**            '[{"tag": "red bicycle", "descriptions": ["a photo of a red bicycle."]}]');
**     SELECT p.name, s.tag FROM photos p, ram_tag_scores(p.img) s WHERE s.selected;
**
** Columns: tag, tag_zh, score, threshold, selected (score > threshold, 0/1),
** margin (score - threshold); hidden: image, vocabulary (the arguments,
** echoed so that a WHERE filter on them holds). rowid is the class
** index (or the vocabulary position). Without a vocabulary the thresholds
** are the model's, overridden as thresholds.c describes; with one they are
** 0.5 (the official open-set setting), overridable by tag name too. A NULL
** image gives no rows.
**
** HOW IT WORKS: xBestIndex accepts equality constraints on the hidden
** columns (the table-valued function arguments); a plan that cannot supply
** the image is refused with SQLITE_CONSTRAINT so that in joins the planner
** puts the photos first. xFilter computes all scores at once (a vocabulary
** in blocks of tags, see SCORE_BLOCK_DES; the image goes
** through the shared cache, so ram_tags() of the same blob in the same query
** does not decode it again) and copies them into the cursor, which also
** holds a registry reference to the model so that a ram_load() in the middle
** of a scan cannot free the tag names being returned.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

#define COL_TAG 0
#define COL_TAG_ZH 1
#define COL_SCORE 2
#define COL_THRESHOLD 3
#define COL_SELECTED 4
#define COL_MARGIN 5
#define COL_IMAGE 6
#define COL_VOCABULARY 7

#define IDX_IMAGE 1
#define IDX_VOCAB 2

/* Vocabularies can be larger than one ram_score() text (200 tags x 51
** descriptions is about 1.5 MB), so their limit is higher. */
#define RAM_MAX_VOCAB (16 * 1024 * 1024)

struct scores_vtab {
    sqlite3_vtab base;
    struct ram_conn *p; /* borrowed from the module's pAux */
};

struct scores_cursor {
    sqlite3_vtab_cursor base;
    struct ram_entry *pEntry; /* registry reference (ram__registry_release) or NULL */
    int bOpen;                /* rows come from vocab, not the model */
    struct ram_vocab vocab;   /* ram__vocab_free */
    float *aScore;            /* n (sqlite3_free) */
    float *aThresh;           /* n (sqlite3_free) */
    sqlite3_value *pImgArg;   /* the arguments, echoed by the hidden columns (sqlite3_value_free) */
    sqlite3_value *pVocabArg; /* same; NULL for the model's tags */
    int n, i;
};

static void vtab_set_error(sqlite3_vtab *pVtab, char *zErr)
{
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = zErr;
}

static int scoresConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                         char **pzErr)
{
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(tag TEXT, tag_zh TEXT, score REAL, threshold "
                                      "REAL, selected INTEGER, margin REAL, image HIDDEN, vocabulary "
                                      "HIDDEN)");
    if (rc != SQLITE_OK) {
        *pzErr = sqlite3_mprintf("ram_tag_scores: %s", sqlite3_errmsg(db));
        return rc;
    }
    struct scores_vtab *pNew = sqlite3_malloc64(sizeof *pNew);
    if (!pNew) return SQLITE_NOMEM;
    memset(pNew, 0, sizeof *pNew);
    pNew->p = pAux;
    /* A pure function of its arguments and the model: usable from views and
    ** triggers even with trusted_schema=OFF. */
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *ppVtab = &pNew->base;
    return SQLITE_OK;
}

static int scoresDisconnect(sqlite3_vtab *pVtab)
{
    sqlite3_free(pVtab);
    return SQLITE_OK;
}

static int scoresBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo)
{
    int iImg = -1, iVoc = -1, bUnusable = 0;
    for (int i = 0; i < pInfo->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
        if (c->iColumn != COL_IMAGE && c->iColumn != COL_VOCABULARY) continue;
        if (c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        if (!c->usable) {
            bUnusable = 1;
            continue;
        }
        if (c->iColumn == COL_IMAGE)
            iImg = i;
        else
            iVoc = i;
    }
    /* An argument that this plan cannot supply: ask for another plan. */
    if (bUnusable) return SQLITE_CONSTRAINT;
    int iArg = 1;
    pInfo->idxNum = 0;
    if (iImg >= 0) {
        pInfo->aConstraintUsage[iImg].argvIndex = iArg++;
        pInfo->aConstraintUsage[iImg].omit = 1;
        pInfo->idxNum |= IDX_IMAGE;
    }
    if (iVoc >= 0) {
        pInfo->aConstraintUsage[iVoc].argvIndex = iArg++;
        pInfo->aConstraintUsage[iVoc].omit = 1;
        pInfo->idxNum |= IDX_VOCAB;
    }
    pInfo->estimatedCost = iImg >= 0 ? 1000.0 : 1e12;
    pInfo->estimatedRows = 1000;
    return SQLITE_OK;
}

static void cursor_reset(struct scores_cursor *pCur)
{
    if (pCur->pEntry) ram__registry_release(pCur->pEntry);
    pCur->pEntry = 0;
    ram__vocab_free(&pCur->vocab);
    sqlite3_free(pCur->aScore);
    sqlite3_free(pCur->aThresh);
    sqlite3_value_free(pCur->pImgArg);
    sqlite3_value_free(pCur->pVocabArg);
    pCur->aScore = pCur->aThresh = 0;
    pCur->pImgArg = pCur->pVocabArg = 0;
    pCur->bOpen = 0;
    pCur->n = pCur->i = 0;
}

static int scoresOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur)
{
    struct scores_cursor *pCur = sqlite3_malloc64(sizeof *pCur);
    if (!pCur) return SQLITE_NOMEM;
    memset(pCur, 0, sizeof *pCur);
    *ppCur = &pCur->base;
    return SQLITE_OK;
}

static int scoresClose(sqlite3_vtab_cursor *pBase)
{
    struct scores_cursor *pCur = (struct scores_cursor *)pBase;
    cursor_reset(pCur);
    sqlite3_free(pCur);
    return SQLITE_OK;
}

static int fail(struct scores_cursor *pCur, int rc, char *zErr)
{
    if (rc != SQLITE_NOMEM && zErr)
        vtab_set_error(pCur->base.pVtab, zErr);
    else
        sqlite3_free(zErr);
    cursor_reset(pCur);
    return rc;
}

/* Closed set: the model's tags. */
static int filter_closed(struct scores_cursor *pCur, struct ram_conn *p, sqlite3_value *pImg)
{
    struct ram_image img;
    const float *aThresh = 0;
    char *zErr = 0;
    int bNull = 0;
    int rc = SQLITE_OK;
    if (sqlite3_value_type(pImg) == SQLITE_NULL) return SQLITE_OK;
    /* Thresholds first (see ram_tags). */
    struct ram_ctx *c = 0;
    if (sqlite3_value_type(pImg) == SQLITE_BLOB) {
        rc = ram__conn_ctx(p, "ram_tag_scores", &c, &zErr);
        if (rc == SQLITE_OK) rc = ram__ctx_thresholds(c, &p->th, "ram_tag_scores", &aThresh, &zErr);
    }
    if (rc == SQLITE_OK) rc = ram__conn_image(p, "ram_tag_scores", 1, pImg, 1, &bNull, &img, &zErr);
    if (rc != SQLITE_OK) return fail(pCur, rc, zErr);
    if (bNull) return SQLITE_OK;
    c = p->pCtx; /* the context that computed img */
    int n = c->pEntry->info.num_class;
    pCur->aScore = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)n);
    pCur->aThresh = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)n);
    if (!pCur->aScore || !pCur->aThresh) return fail(pCur, SQLITE_NOMEM, 0);
    memcpy(pCur->aScore, img.aProb, sizeof(float) * (size_t)n);
    memcpy(pCur->aThresh, aThresh, sizeof(float) * (size_t)n);
    ram__registry_addref(c->pEntry);
    pCur->pEntry = c->pEntry;
    pCur->n = n;
    return SQLITE_OK;
}

/* Tags are independent in the tagger (no self-attention), so a vocabulary
** is encoded and scored in blocks of about this many descriptions: label
** memory stays a few MB (4096 x embed_dim floats) however long it is. */
#define SCORE_BLOCK_DES 4096

/* Encodes tags t0..t0+nT-1 of the vocabulary into aLabel and scores them
** against the image into pCur->aScore + t0. */
static int score_block(struct scores_cursor *pCur, struct ram_ctx *c, const float *aEmbed, int t0, int nT,
                       float *aLabel, char **pzErr)
{
    const struct ram_vocab *v = &pCur->vocab;
    size_t nDim = (size_t)c->pEntry->info.embed_dim;
    struct ram_error err;
    for (int t = 0; t < nT; t++) {
        size_t iDes = (size_t)(t0 + t) * v->nDes;
        struct ram_texts tx = {(const char **)&v->azDes[iDes], &v->anDes[iDes], v->nDes};
        int rc = ram__ctx_encode_texts(c, "ram_tag_scores", &tx, aLabel + (size_t)t * v->nDes * nDim, pzErr);
        if (rc) return rc;
    }
    ram_status s = ram_openset_probs(c->pState, aEmbed, aLabel, nT, v->nDes, pCur->aScore + t0, &err);
    return s ? ram__core_error("ram_tag_scores", s, &err, pzErr) : SQLITE_OK;
}

/* Open set: a JSON vocabulary scored with the CLIP text tower. */
static int filter_open(struct scores_cursor *pCur, struct ram_conn *p, sqlite3_value *pImg, sqlite3_value *pVoc)
{
    struct ram_image img;
    float *aLabel = 0;
    char *zErr = 0;
    int bNull = 0, rc;

    if (sqlite3_value_type(pVoc) != SQLITE_TEXT) {
        return fail(pCur, SQLITE_ERROR,
                    ram__mprintf("ram_tag_scores(): argument 2 must be a JSON TEXT vocabulary (or NULL "
                                 "for the model's tags)"));
    }
    if (sqlite3_value_type(pImg) == SQLITE_NULL) return SQLITE_OK;
    const char *z = (const char *)sqlite3_value_text(pVoc);
    int nz = sqlite3_value_bytes(pVoc);
    if (!z) return fail(pCur, SQLITE_NOMEM, 0);
    if (nz > RAM_MAX_VOCAB) {
        return fail(
            pCur, SQLITE_TOOBIG,
            ram__mprintf("ram_tag_scores(): argument 2 is too long (%d bytes; the limit is %d)", nz, RAM_MAX_VOCAB));
    }
    /* Image argument errors first, then the model's abilities, then the JSON. */
    if (sqlite3_value_type(pImg) != SQLITE_BLOB) {
        rc = ram__image_check(p->db, "ram_tag_scores", 1, pImg, &bNull, &zErr);
        return fail(pCur, rc, zErr);
    }
    struct ram_ctx *c = 0;
    if ((rc = ram__conn_ctx(p, "ram_tag_scores", &c, &zErr))) return fail(pCur, rc, zErr);
    if ((rc = ram__ctx_need_text(c, "ram_tag_scores", &zErr))) return fail(pCur, rc, zErr);
    if ((rc = ram__parse_vocab(z, nz, "ram_tag_scores", &pCur->vocab, &zErr))) return fail(pCur, rc, zErr);
    const struct ram_vocab *v = &pCur->vocab;
    int nBlock = v->nDes >= SCORE_BLOCK_DES ? 1 : SCORE_BLOCK_DES / v->nDes;
    if (nBlock > v->nTag) nBlock = v->nTag;
    size_t nDim = (size_t)c->pEntry->info.embed_dim;
    aLabel = sqlite3_malloc64(sizeof(float) * (size_t)nBlock * (size_t)v->nDes * nDim);
    pCur->aScore = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)v->nTag);
    pCur->aThresh = sqlite3_malloc64(sizeof(float) * (sqlite3_uint64)v->nTag);
    if (!aLabel || !pCur->aScore || !pCur->aThresh) {
        sqlite3_free(aLabel);
        return fail(pCur, SQLITE_NOMEM, 0);
    }
    /* Thresholds before the image (see ram_tags). */
    const float *aModel = 0;
    rc = ram__ctx_thresholds(c, &p->th, "ram_tag_scores", &aModel, &zErr);
    for (int t = 0; rc == SQLITE_OK && t < v->nTag; t++) {
        pCur->aThresh[t] = (float)ram__thresh_by_name(&p->th, v->azTag[t], (int)strlen(v->azTag[t]), 0.5);
    }
    /* img.aEmbed lives in the context's buffer, which encoding texts and
    ** scoring do not touch. */
    if (rc == SQLITE_OK) rc = ram__ctx_image(c, &p->prep, "ram_tag_scores", 1, pImg, 0, &bNull, &img, &zErr);
    for (int t0 = 0; rc == SQLITE_OK && t0 < v->nTag; t0 += nBlock) {
        int nT = v->nTag - t0 < nBlock ? v->nTag - t0 : nBlock;
        rc = score_block(pCur, c, img.aEmbed, t0, nT, aLabel, &zErr);
    }
    sqlite3_free(aLabel);
    if (rc) return fail(pCur, rc, zErr);
    pCur->pVocabArg = sqlite3_value_dup(pVoc);
    if (!pCur->pVocabArg) return fail(pCur, SQLITE_NOMEM, 0);
    pCur->bOpen = 1;
    pCur->n = v->nTag;
    return SQLITE_OK;
}

static int scoresFilter(sqlite3_vtab_cursor *pBase, int idxNum, const char *idxStr, int argc, sqlite3_value **argv)
{
    struct scores_cursor *pCur = (struct scores_cursor *)pBase;
    struct ram_conn *p = ((struct scores_vtab *)pBase->pVtab)->p;
    ram__conn_refresh(p);
    cursor_reset(pCur);
    if (!(idxNum & IDX_IMAGE)) {
        return fail(pCur, SQLITE_ERROR,
                    ram__mprintf("ram_tag_scores(): argument 1 (the image) is required, as in SELECT "
                                 "* FROM ram_tag_scores(readfile('photo.jpg'))"));
    }
    sqlite3_value *pImg = argv[0];
    sqlite3_value *pVoc = (idxNum & IDX_VOCAB) ? argv[1] : 0;
    int rc = pVoc && sqlite3_value_type(pVoc) != SQLITE_NULL ? filter_open(pCur, p, pImg, pVoc)
                                                             : filter_closed(pCur, p, pImg);
    if (rc != SQLITE_OK || pCur->n == 0) return rc;
    /* SQLite may re-check WHERE image = ? against the column (as for
    ** json_each and generate_series), so the column must hold the argument:
    ** a copy, since argv is only valid during xFilter. */
    pCur->pImgArg = sqlite3_value_dup(pImg);
    if (!pCur->pImgArg) return fail(pCur, SQLITE_NOMEM, 0);
    return SQLITE_OK;
}

static int scoresNext(sqlite3_vtab_cursor *pBase)
{
    ((struct scores_cursor *)pBase)->i++;
    return SQLITE_OK;
}

static int scoresEof(sqlite3_vtab_cursor *pBase)
{
    struct scores_cursor *pCur = (struct scores_cursor *)pBase;
    return pCur->i >= pCur->n;
}

static int scoresColumn(sqlite3_vtab_cursor *pBase, sqlite3_context *ctx, int iCol)
{
    struct scores_cursor *pCur = (struct scores_cursor *)pBase;
    int i = pCur->i;
    switch (iCol) {
    case COL_TAG:
    case COL_TAG_ZH: {
        const char *z;
        if (pCur->bOpen) {
            z = pCur->vocab.azTag[i];
            if (iCol == COL_TAG_ZH && pCur->vocab.azTagZh[i]) z = pCur->vocab.azTagZh[i];
        } else {
            z = ram_model_tag(pCur->pEntry->pModel, i, iCol == COL_TAG ? RAM_LANG_EN : RAM_LANG_ZH);
        }
        sqlite3_result_text(ctx, z ? z : "", -1, SQLITE_TRANSIENT);
        break;
    }
    case COL_SCORE: sqlite3_result_double(ctx, (double)pCur->aScore[i]); break;
    case COL_THRESHOLD: sqlite3_result_double(ctx, ram__float_display(pCur->aThresh[i])); break;
    case COL_SELECTED: sqlite3_result_int(ctx, pCur->aScore[i] > pCur->aThresh[i]); break;
    case COL_MARGIN: sqlite3_result_double(ctx, (double)pCur->aScore[i] - ram__float_display(pCur->aThresh[i])); break;
    case COL_IMAGE:
        if (pCur->pImgArg) sqlite3_result_value(ctx, pCur->pImgArg);
        break;
    case COL_VOCABULARY:
        if (pCur->pVocabArg) sqlite3_result_value(ctx, pCur->pVocabArg);
        break;
    default: break;
    }
    return SQLITE_OK;
}

static int scoresRowid(sqlite3_vtab_cursor *pBase, sqlite_int64 *pRowid)
{
    *pRowid = ((struct scores_cursor *)pBase)->i;
    return SQLITE_OK;
}

/* Eponymous-only (no xCreate): the module's name is the table. */
static const sqlite3_module g_scoresModule = {
    .iVersion = 0,
    .xConnect = scoresConnect,
    .xBestIndex = scoresBestIndex,
    .xDisconnect = scoresDisconnect,
    .xOpen = scoresOpen,
    .xClose = scoresClose,
    .xFilter = scoresFilter,
    .xNext = scoresNext,
    .xEof = scoresEof,
    .xColumn = scoresColumn,
    .xRowid = scoresRowid,
};

/* Registration table of the modules (one today). */
static const struct {
    const char *zName;
    const sqlite3_module *pModule;
} g_aModule[] = {
    {"ram_tag_scores", &g_scoresModule},
};

int ram__register_vtab(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    for (size_t i = 0; i < sizeof g_aModule / sizeof g_aModule[0]; i++) {
        ram__conn_ref(p); /* dropped by the module destructor, also on failure */
        int rc = sqlite3_create_module_v2(db, g_aModule[i].zName, g_aModule[i].pModule, p, ram__conn_unref);
        if (rc != SQLITE_OK) {
            *pzErrMsg = sqlite3_mprintf("ram: cannot register %s: %s", g_aModule[i].zName, sqlite3_errmsg(db));
            return rc;
        }
    }
    return SQLITE_OK;
}
