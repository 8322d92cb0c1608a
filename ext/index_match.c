/*
** index_match.c — MATCH of ram_index: ranks the images for an open-set description
** from their int8 token cache with the folded scorer of core/cache_score.c,
** in batches, optionally after a CLS-cosine prefilter or among the images
** of one tag.
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include "cascade_refit.h"

#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ open-set queries */

/* CLIP embeddings (L2-normalised) of the texts with the table's model
** (texts.c, the same path and text cache as ram_score()). */
static int index_encode_texts(IndexVtab *p, const struct ram_texts *pT, float *aOut)
{
    char *zErr = 0;
    if (!p->pCtx->pEntry->info.has_text_encoder) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH needs a model with a CLIP text encoder (convert it with "
                                      "ram-convert --clip ...)");
        return SQLITE_ERROR;
    }
    int rc = ram__ctx_encode_texts(p->pCtx, "ram_index", pT, aOut, &zErr);
    if (rc == SQLITE_INTERRUPT)
        ram__vtab_set_error(&p->base, "interrupted");
    else if (rc)
        ram__vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
    sqlite3_free(zErr);
    return rc;
}

/* Label rows of a MATCH argument, read as ram_score() reads its second
** argument: a text is one description, a JSON array of strings the
** descriptions of one concept (weighed by each image's CLS, as RAM++ does).
** *paRow (sqlite3_free) receives *pnRow L2-normalised rows. */
static int index_label_embed(IndexVtab *p, sqlite3_value *pVal, float **paRow, int *pnRow)
{
    const char *z = (const char *)sqlite3_value_text(pVal);
    int n = sqlite3_value_bytes(pVal), bList = 0, rc;
    struct ram_texts list;
    char *zErr = 0;
    *paRow = 0;
    *pnRow = 0;
    memset(&list, 0, sizeof list);
    if (sqlite3_value_type(pVal) != SQLITE_TEXT || !z || !n) {
        if (sqlite3_value_type(pVal) == SQLITE_TEXT && !z) return SQLITE_NOMEM;
        ram__vtab_set_error(&p->base, "ram_index: MATCH needs a text, a JSON array of texts, or a non-empty BLOB "
                                      "(an image, an entry, a ram_embed() BLOB or a float32 vector)");
        return SQLITE_ERROR;
    }
    if (n > RAM_MAX_TEXT) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH text is too long (%d bytes; the limit is %d)", n, RAM_MAX_TEXT);
        return SQLITE_TOOBIG;
    }
    rc = ram__parse_text_list(z, n, "ram_index: MATCH", &bList, &list, &zErr);
    if (rc) {
        if (zErr) ram__vtab_set_error(&p->base, "%s", zErr);
        sqlite3_free(zErr);
        return rc;
    }
    const char *zOne = z;
    int nOne = n;
    struct ram_texts one = {&zOne, &nOne, 1};
    const struct ram_texts *pT = bList ? &list : &one;
    float *aRow = sqlite3_malloc64(sizeof(float) * (size_t)p->nDim * (size_t)pT->n);
    if (!aRow) {
        ram__texts_free(&list);
        return SQLITE_NOMEM;
    }
    rc = index_encode_texts(p, pT, aRow);
    if (rc) {
        sqlite3_free(aRow);
    } else {
        *paRow = aRow;
        *pnRow = pT->n;
    }
    ram__texts_free(&list);
    return rc;
}

/* Higher score first; ties by image id, so results are deterministic. */
static int hit_better(const IndexHit *a, const IndexHit *b)
{
    return a->score > b->score || (a->score == b->score && a->img < b->img);
}
static int hit_cmp(const void *a, const void *b)
{
    const IndexHit *x = a, *y = b;
    return hit_better(x, y) ? -1 : hit_better(y, x) ? 1 : 0;
}

/* A bounded min-heap of the best hits (cap 0: unbounded, no heap order). */
typedef struct HitSet {
    IndexHit *a;
    int n, nAlloc, cap;
} HitSet;

static void heap_sift_down(IndexHit *a, int n, int i)
{
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && hit_better(&a[w], &a[l])) w = l;
        if (r < n && hit_better(&a[w], &a[r])) w = r;
        if (w == i) return;
        IndexHit t = a[i];
        a[i] = a[w], a[w] = t, i = w;
    }
}

static int hitset_add(HitSet *h, sqlite3_int64 img, float score)
{
    IndexHit x = {img, score};
    if (h->cap && h->n == h->cap) {
        if (!hit_better(&x, &h->a[0])) return SQLITE_OK; /* worse than the worst kept */
        h->a[0] = x;
        heap_sift_down(h->a, h->n, 0);
        return SQLITE_OK;
    }
    if (h->n == h->nAlloc) {
        int nNew = h->nAlloc ? 2 * h->nAlloc : 64;
        IndexHit *aNew = sqlite3_realloc64(h->a, sizeof(IndexHit) * (size_t)nNew);
        if (!aNew) return SQLITE_NOMEM;
        h->a = aNew, h->nAlloc = nNew;
    }
    int i = h->n++;
    h->a[i] = x;
    if (h->cap) /* sift up: parents are the worse ones */
        while (i > 0 && hit_better(&h->a[(i - 1) / 2], &h->a[i])) {
            IndexHit t = h->a[i];
            h->a[i] = h->a[(i - 1) / 2], h->a[(i - 1) / 2] = t, i = (i - 1) / 2;
        }
    return SQLITE_OK;
}

/* Exact scoring of a batch of token blobs (copies in aBuf); aOut, when
** not NULL, receives the n scores too. */
static int score_batch(IndexVtab *p, struct ram_cache_query *q, unsigned char *aBuf, const sqlite3_int64 *aImg, int n,
                       HitSet *h, float *aOut)
{
    struct ram_cache_tokens v[INDEX_BATCH];
    float aScore[INDEX_BATCH];
    struct ram_error err;
    size_t nb = ram_cache_packed_size(p->nTok, p->nDim);
    for (int i = 0; i < n; i++)
        if (ram_cache_view(aBuf + nb * (size_t)i, nb, p->nTok, p->nDim, &v[i], &err)) {
            ram__vtab_set_error(&p->base, "ram_index: image %lld: %s", aImg[i], err.msg);
            return SQLITE_CORRUPT_VTAB;
        }
    if (ram_cache_score(q, v, n, aScore, &err)) {
        ram__vtab_set_error(&p->base, "ram_index: %s", err.msg);
        return SQLITE_ERROR;
    }
    STAT_ADD(images_scored, n);
    if (aOut) memcpy(aOut, aScore, sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) {
        int rc = hitset_add(h, aImg[i], aScore[i]);
        if (rc) return rc;
    }
    return SQLITE_OK;
}

/* The images in which class iTag is selected (probability over thr) as
** candidates of a MATCH; with nPre > 0, only the nPre with the largest CLS
** cosine among them. */
static int tag_candidates(IndexVtab *p, struct ram_cache_query *q, int iTag, double thr, sqlite3_int64 nPre,
                          HitSet *pre)
{
    sqlite3_stmt *s = 0, *c = 0;
    char *zSql =
        sqlite3_mprintf("SELECT img FROM \"%w\".\"%w_postings\" WHERE tag = ?1 AND score >= ?2", p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_OK && nPre > 0) {
        zSql = sqlite3_mprintf("SELECT v FROM \"%w\".\"%w_cls\" WHERE id = ?1", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &c, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        pre->cap = nPre < 0x7fffffff ? (int)nPre : 0x7fffffff;
    }
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(s, 1, iTag);
        sqlite3_bind_int64(s, 2, ram__bound_bits(thr, 0));
    }
    while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        sqlite3_int64 img = sqlite3_column_int64(s, 0);
        float cos = 0;
        STAT_ADD(postings_read, 1);
        if (c) {
            sqlite3_bind_int64(c, 1, img);
            if (sqlite3_step(c) == SQLITE_ROW)
                cos = ram_cache_prefilter(q, sqlite3_column_blob(c, 0), (size_t)sqlite3_column_bytes(c, 0));
            sqlite3_reset(c);
        }
        rc = hitset_add(pre, img, cos);
    }
    int rc2 = sqlite3_finalize(s);
    sqlite3_finalize(c);
    if (rc == SQLITE_OK && rc2) ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc ? rc : rc2;
}

/* The int8 stage on the 1-bit stage's survivors: their CLS cosine, the nPre
** best into pre. Read in id order (the b-tree's). */
static int cls_stage(IndexVtab *p, struct ram_cache_query *q, const IndexHit *aCand, int nCand, sqlite3_int64 nPre,
                     HitSet *pre)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT v FROM \"%w\".\"%w_cls\" WHERE id = ?1", p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    pre->cap = nPre < 0x7fffffff ? (int)nPre : 0x7fffffff;
    for (int i = 0; i < nCand && rc == SQLITE_OK; i++) {
        sqlite3_bind_int64(s, 1, aCand[i].img);
        if (sqlite3_step(s) == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == ram_cache_unit_size(p->nDim)) {
            float c = ram_cache_prefilter(q, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
            rc = hitset_add(pre, aCand[i].img, c);
        } else {
            ram__vtab_set_error(
                &p->base, "ram_index: image %lld has a malformed prefilter vector (run integrity-check)", aCand[i].img);
            rc = SQLITE_CORRUPT_VTAB;
        }
        sqlite3_reset(s);
    }
    STAT_ADD(prefilter_scanned, nCand);
    sqlite3_finalize(s);
    return rc;
}

/* ------------------------------------------------------------------ the refit cascade */

/* What the rounds' scoring callback needs. */
typedef struct RefitScore {
    IndexVtab *p;
    struct ram_cache_query *q;
    const struct IndexRefitCache *r;
    unsigned char *aBuf;
    HitSet *res;         /* the top k (exact scores) */
    HitSet *cand;        /* with bApprox: the best by the approximate scores, rescored at the end */
    sqlite3_blob *pBlob; /* photos_tokens.tokens, moved from row to row (sqlite3_blob_reopen) */
    int bApprox, rc;
} RefitScore;

/* The packed tokens of image img into aDst (nb bytes) through one blob
** handle moved from row to row: no statement per picture (i16x measured
** these reads 2.6x cheaper than a SELECT each at 1M, ids in order). */
static int refit_read_tokens(RefitScore *x, sqlite3_int64 img, unsigned char *aDst, size_t nb)
{
    IndexVtab *p = x->p;
    int rc;
    if (x->pBlob) {
        rc = sqlite3_blob_reopen(x->pBlob, img);
    } else {
        char *zTab = sqlite3_mprintf("%s_tokens", p->zName);
        rc = zTab ? sqlite3_blob_open(p->db, p->zDb, zTab, "tokens", img, 0, &x->pBlob) : SQLITE_NOMEM;
        sqlite3_free(zTab);
    }
    if (rc == SQLITE_OK && (size_t)sqlite3_blob_bytes(x->pBlob) == nb)
        return sqlite3_blob_read(x->pBlob, aDst, (int)nb, 0);
    if (rc == SQLITE_OK) {
        rc = SQLITE_CORRUPT_VTAB; /* a wrong size */
    } else if (rc == SQLITE_ERROR) {
        /* SQLITE_ERROR is both "no such rowid" / "cannot open value of type
        ** null" (a damaged table) and any other failure (the table missing,
        ** ...): the row itself tells which, and SQLite's words are kept. */
        char *zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(p->db));
        sqlite3_stmt *pTok = 0;
        int rcRow = ram__index_stmt(p, STMT_TOKENS, &pTok);
        if (rcRow == SQLITE_OK) {
            sqlite3_bind_int64(pTok, 1, img);
            rcRow = sqlite3_step(pTok);
            int bGood = rcRow == SQLITE_ROW && sqlite3_column_type(pTok, 0) == SQLITE_BLOB &&
                        (size_t)sqlite3_column_bytes(pTok, 0) == nb;
            sqlite3_reset(pTok);
            rcRow = rcRow == SQLITE_DONE || (rcRow == SQLITE_ROW && !bGood) ? SQLITE_CORRUPT_VTAB
                    : rcRow == SQLITE_ROW                                   ? SQLITE_ERROR
                                                                            : rcRow;
        }
        rc = rcRow;
        if (rc == SQLITE_CORRUPT_VTAB)
            ram__vtab_set_error(&p->base, "ram_index: image %lld has no valid tokens", img);
        else if (rc != SQLITE_NOMEM && rc != SQLITE_INTERRUPT)
            ram__vtab_set_error(&p->base, "ram_index: %s", zMsg ? zMsg : sqlite3_errmsg(p->db));
        sqlite3_free(zMsg);
        return rc;
    }
    if (rc == SQLITE_CORRUPT_VTAB)
        ram__vtab_set_error(&p->base, "ram_index: image %lld has no valid tokens", img);
    else if (rc != SQLITE_NOMEM && rc != SQLITE_INTERRUPT)
        ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

/* Scores (exact, or with bApprox bf16 ones) of the images aImg[0..n): the
** exact ones into the top k, the approximate ones into the candidates. */
static int refit_score_ids(RefitScore *x, const sqlite3_int64 *aId, int n, float *aProb)
{
    IndexVtab *p = x->p;
    size_t nb = ram_cache_packed_size(p->nTok, p->nDim);
    sqlite3_int64 aImg[INDEX_BATCH];
    int nBatch = 0, rc = SQLITE_OK, iOut = 0;
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        rc = refit_read_tokens(x, aId[i], x->aBuf + nb * (size_t)nBatch, nb);
        if (rc == SQLITE_OK) aImg[nBatch++] = aId[i];
        if (rc == SQLITE_OK && (nBatch == INDEX_BATCH || i == n - 1)) {
            rc = score_batch(p, x->q, x->aBuf, aImg, nBatch, x->bApprox ? x->cand : x->res, aProb ? aProb + iOut : 0);
            iOut += nBatch;
            nBatch = 0;
            if (rc == SQLITE_OK && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
        }
    }
    return rc;
}

/* ram_refit_cascade's scorer: the pictures at positions aPos[0..n) of the
** copy (increasing: id order); an error (or an interrupt) is kept in rc
** and stops the rounds. */
static int refit_score(void *pArg, const int *aPos, int n, float *aProb)
{
    RefitScore *x = pArg;
    sqlite3_int64 aId[INDEX_BATCH];
    int rc = SQLITE_OK;
    for (int i0 = 0; i0 < n && rc == SQLITE_OK; i0 += INDEX_BATCH) {
        int m = n - i0 < INDEX_BATCH ? n - i0 : INDEX_BATCH;
        for (int i = 0; i < m; i++) aId[i] = x->r->aId[aPos[i0 + i]];
        rc = refit_score_ids(x, aId, m, aProb + i0);
    }
    x->rc = rc;
    return rc;
}

/* Exact rescorings after approximate rounds: the top k and a margin (i16x
** measured no exact top-20 member outside the approximate top 32 over
** 20,000 real outputs). 64-bit: 2k + 32 passes INT_MAX for k >= 2^30. */
static sqlite3_int64 refit_rescore(int k) { return 2 * (sqlite3_int64)k + 32; }

static int id_cmp(const void *a, const void *b)
{
    sqlite3_int64 x = *(const sqlite3_int64 *)a, y = *(const sqlite3_int64 *)b;
    return (x > y) - (x < y);
}

/* The cheap cosine half of the anchors is chosen by: aC (nAxes) receives
** the coefficients that give each picture's coordinates' dot product with
** the query's mean description, in the stored vectors' space
** (ram_cache_pack_unit rotates as the stored vectors are). */
static int refit_query_axes(IndexVtab *p, const struct IndexRefitCache *r, const float *aRow, int nRow, float *aC)
{
    size_t nu = ram_cache_unit_size(p->nDim);
    unsigned char *aUnit = sqlite3_malloc64(nu);
    float *t = sqlite3_malloc64(sizeof(float) * 2 * (size_t)p->nDim), *u = 0;
    struct ram_error err;
    int rc = aUnit && t ? SQLITE_OK : SQLITE_NOMEM;
    if (t) memset(t, 0, sizeof(float) * (size_t)p->nDim), u = t + p->nDim;
    for (int i = 0; i < nRow && rc == SQLITE_OK; i++) {
        if (ram_cache_pack_unit(aRow + (size_t)i * p->nDim, p->nDim, aUnit, nu, &err)) {
            ram__vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
            rc = SQLITE_ERROR;
            break;
        }
        ram_cache_unit_floats(aUnit, nu, p->nDim, u); /* cannot fail: its size, a finite scale */
        for (int d = 0; d < p->nDim; d++) t[d] += u[d];
    }
    if (rc == SQLITE_OK) ram_refit_query_coef(t, p->nDim, r->aAxes, r->aScale, r->nAxes, aC);
    sqlite3_free(aUnit), sqlite3_free(t);
    return rc;
}

/* The refit cascade (docs/INDEX.md; the rounds in core/cascade_refit.c):
** nBudget exact scores in all, the top k of them into res. *pbRan is 0
** when the table's copy is too large to keep (the caller takes the
** cascade of the codes). */
static int refit_cascade(IndexVtab *p, struct ram_cache_query *q, const float *aRow, int nRow, sqlite3_int64 nBudget,
                         unsigned char *aBuf, HitSet *res, int *pbRan)
{
    const struct IndexRefitCache *r = 0;
    struct ram_error err;
    *pbRan = 0;
    int rc = ram__index_refit_get(p, &r); /* index_codes.c */
    if (rc || !r) return rc;
    *pbRan = 1;
    int budget = (int)(nBudget < r->n ? nBudget : r->n), nScored = 0;
    if (budget < 1) return SQLITE_OK;
    int *aPos = sqlite3_malloc64(sizeof(int) * (size_t)budget);
    float *aProb = sqlite3_malloc64(sizeof(float) * (size_t)budget);
    float *aC = sqlite3_malloc64(sizeof(float) * (size_t)r->nAxes);
    HitSet cand = {0};
    RefitScore x = {p, q, r, aBuf, res, &cand, 0, 0, SQLITE_OK};
    struct ram_refit_table t = {r->aQ, r->aScale, r->n, r->nAxes};
    /* With a k, the rounds may run on bf16 scores (ram_cache_query_approx)
    ** when the exact rescoring of the best refit_rescore(k) is a small part
    ** of the budget: the fits only rank, the answer's scores stay exact. */
    if (res->cap > 0 && refit_rescore(res->cap) <= budget / 4) {
        x.bApprox = ram_cache_query_approx(q, 1);
        cand.cap = (int)refit_rescore(res->cap); /* <= budget / 4 */
    }
    rc = aPos && aProb && aC ? refit_query_axes(p, r, aRow, nRow, aC) : SQLITE_NOMEM;
    if (rc == SQLITE_OK) {
        ram_status st = ram_refit_cascade(&t, aC, budget, refit_score, &x, aPos, aProb, &nScored, &err);
        if (st == RAM_ERR_INTERRUPTED && x.rc) {
            rc = x.rc; /* the scorer's own error, its message set */
        } else if (st) {
            ram__vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
            rc = st == RAM_ERR_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
        }
    }
    if (rc == SQLITE_OK && x.bApprox) { /* the candidates' exact scores, in id order */
        sqlite3_int64 *aId = sqlite3_malloc64(sizeof(sqlite3_int64) * (size_t)(cand.n ? cand.n : 1));
        rc = aId ? SQLITE_OK : SQLITE_NOMEM;
        for (int i = 0; aId && i < cand.n; i++) aId[i] = cand.a[i].img;
        if (aId && cand.n > 1) qsort(aId, (size_t)cand.n, sizeof *aId, id_cmp);
        ram_cache_query_approx(q, 0);
        x.bApprox = 0;
        if (rc == SQLITE_OK) rc = refit_score_ids(&x, aId, cand.n, 0);
        sqlite3_free(aId);
    }
    ram_cache_query_approx(q, 0);
    sqlite3_blob_close(x.pBlob);
    STAT_ADD(prefilter_scanned, r->n);
    sqlite3_free(aPos), sqlite3_free(aProb), sqlite3_free(aC), sqlite3_free(cand.a);
    return rc;
}

/* Ranks the images for a MATCH: *paHit (sqlite3_free) best first. iTag >= 0
** restricts it to the images where that tag is selected (thr). */
int ram__index_match(IndexVtab *p, sqlite3_value *pMatch, sqlite3_int64 k, sqlite3_int64 nPre, int iTag, double thr,
                     IndexHit **paHit, int *pnHit)
{
    float *aRow = 0;
    int nRow = 0, rc;
    struct ram_cache_query *q = 0;
    struct ram_error err;
    sqlite3_stmt *pScan = 0;
    unsigned char *aBuf = 0;
    sqlite3_int64 *aCand = 0;
    HitSet pre = {0}, res = {0};
    *paHit = 0;
    *pnHit = 0;
    if (sqlite3_value_type(pMatch) == SQLITE_BLOB) /* search by example: index_similar.c */
        return ram__index_similar(p, pMatch, k, nPre, iTag, thr, paHit, pnHit);

    rc = ram__index_model(p, 1);
    if (rc) return rc;
    rc = ram__index_check_stale(p);
    if (rc) return rc;
    rc = index_label_embed(p, pMatch, &aRow, &nRow);
    if (rc) return rc;
    if (ram_cache_query_init(p->pModel, aRow, 1, nRow, INDEX_BATCH, &q, &err)) {
        ram__vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
        rc = SQLITE_ERROR;
        goto done;
    }
    size_t nb = ram_cache_packed_size(p->nTok, p->nDim);
    aBuf = sqlite3_malloc64(nb * INDEX_BATCH);
    if (!aBuf) goto nomem;
    res.cap = k > 0 && k < 0x7fffffff ? (int)k : 0;
    sqlite3_int64 aImg[INDEX_BATCH];
    int nBatch = 0;

    int bRefit = 0;
    if (p->nRefit <= 0) ram__index_refit_free(p); /* another connection's refit=0: keep nothing alive */
    if (iTag < 0 && nPre > 0 && p->nRefit > 0) rc = refit_cascade(p, q, aRow, nRow, nPre, aBuf, &res, &bRefit);
    if (rc || bRefit) {
        /* the refit cascade ran (res: the top k of its exact scores), or failed */
    } else if (iTag >= 0) {
        rc = tag_candidates(p, q, iTag, thr, nPre, &pre);
        if (rc) goto done;
    } else if (nPre > 0 && p->iSchema >= 4 && p->nCascade > 0) {
        /* The cascade: 1-bit codes of every image, the int8 cosine of the
        ** closest max(cascade, N), the exact score of the N best below. */
        IndexHit *aSurv = 0; /* index_codes.c */
        int nSurv = 0;
        rc = ram__index_code_candidates(p, q, nRow, p->nCascade > nPre ? p->nCascade : nPre, &aSurv, &nSurv);
        if (rc == SQLITE_OK) rc = cls_stage(p, q, aSurv, nSurv, nPre, &pre);
        sqlite3_free(aSurv);
        if (rc) goto done;
    } else if (nPre > 0) {
        /* Cosine prefilter over the compact photos_cls table. */
        pre.cap = nPre < 0x7fffffff ? (int)nPre : 0x7fffffff;
        char *zSql = sqlite3_mprintf("SELECT id, v FROM \"%w\".\"%w_cls\"", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pScan, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        sqlite3_int64 nScan = 0;
        while (rc == SQLITE_OK && sqlite3_step(pScan) == SQLITE_ROW) {
            if ((size_t)sqlite3_column_bytes(pScan, 1) != ram_cache_unit_size(p->nDim)) {
                /* a damaged row must not silently drop out of the results */
                ram__vtab_set_error(&p->base,
                                    "ram_index: image %lld has a malformed prefilter vector (run "
                                    "integrity-check)",
                                    sqlite3_column_int64(pScan, 0));
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            float c = ram_cache_prefilter(q, sqlite3_column_blob(pScan, 1), (size_t)sqlite3_column_bytes(pScan, 1));
            rc = hitset_add(&pre, sqlite3_column_int64(pScan, 0), c);
            if ((++nScan & 4095) == 0 && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
        }
        STAT_ADD(prefilter_scanned, nScan);
        if (rc == SQLITE_OK)
            rc = sqlite3_finalize(pScan);
        else
            sqlite3_finalize(pScan);
        pScan = 0;
        if (rc) goto done;
    }
    if (rc || bRefit) {
    } else if (iTag >= 0 || nPre > 0) {
        sqlite3_stmt *pTok;
        for (int i = 0; i < pre.n && rc == SQLITE_OK; i++) {
            rc = ram__index_stmt(p, STMT_TOKENS, &pTok);
            if (rc) break;
            sqlite3_bind_int64(pTok, 1, pre.a[i].img);
            if (sqlite3_step(pTok) == SQLITE_ROW && (size_t)sqlite3_column_bytes(pTok, 0) == nb) {
                memcpy(aBuf + nb * (size_t)nBatch, sqlite3_column_blob(pTok, 0), nb);
                aImg[nBatch++] = pre.a[i].img;
            } else {
                ram__vtab_set_error(&p->base, "ram_index: image %lld has no valid tokens", pre.a[i].img);
                rc = SQLITE_CORRUPT_VTAB;
            }
            sqlite3_reset(pTok);
            if (rc == SQLITE_OK && nBatch == INDEX_BATCH) {
                rc = score_batch(p, q, aBuf, aImg, nBatch, &res, 0);
                nBatch = 0;
                if (rc == SQLITE_OK && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
            }
        }
    } else {
        char *zSql = sqlite3_mprintf("SELECT id, tokens FROM \"%w\".\"%w_tokens\"", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pScan, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        while (rc == SQLITE_OK && sqlite3_step(pScan) == SQLITE_ROW) {
            sqlite3_int64 img = sqlite3_column_int64(pScan, 0);
            if ((size_t)sqlite3_column_bytes(pScan, 1) != nb) {
                ram__vtab_set_error(&p->base, "ram_index: image %lld has no valid tokens", img);
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            memcpy(aBuf + nb * (size_t)nBatch, sqlite3_column_blob(pScan, 1), nb);
            aImg[nBatch++] = img;
            if (nBatch == INDEX_BATCH) {
                rc = score_batch(p, q, aBuf, aImg, nBatch, &res, 0);
                nBatch = 0;
                if (rc == SQLITE_OK && ram__index_interrupted(p)) rc = SQLITE_INTERRUPT;
            }
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_finalize(pScan);
        else
            sqlite3_finalize(pScan);
        pScan = 0;
    }
    if (rc == SQLITE_OK && nBatch) rc = score_batch(p, q, aBuf, aImg, nBatch, &res, 0);
    if (rc == SQLITE_INTERRUPT) ram__vtab_set_error(&p->base, "interrupted");
    if (rc) goto done;
    /* res.a is NULL when no image matched (an empty table): qsort(NULL, 0) is UB. */
    if (res.n > 1) qsort(res.a, (size_t)res.n, sizeof(IndexHit), hit_cmp);
    *paHit = res.a;
    *pnHit = res.n;
    res.a = 0;
    goto done;
nomem:
    rc = SQLITE_NOMEM;
done:
    sqlite3_finalize(pScan);
    ram_cache_query_free(q);
    sqlite3_free(aRow);
    sqlite3_free(aBuf);
    sqlite3_free(aCand);
    sqlite3_free(pre.a);
    sqlite3_free(res.a);
    return rc;
}
