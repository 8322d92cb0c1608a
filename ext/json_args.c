/*
** json_args.c — reading the JSON arguments of the open-set functions: the
** description list of ram_score() and the vocabulary of ram_tag_scores().
** Parsing is core/json.c's bounded, non-recursive parser; this file only
** checks the shapes and copies the strings out.
**
**     ram_score(img, 'a cat')                         one description
**     ram_score(img, '["a cat", "a kitten on a sofa"]')   one concept, 2 descriptions
**
**     ram_tag_scores(img, '["cat", "dog"]')           tag = its one description
**     ram_tag_scores(img, '[{"tag": "cat", "descriptions": ["a cat", "a kitten"]},
**                           {"tag": "dog", "tag_zh": "狗", "descriptions": ["a dog", "a puppy"]}]')
**     ram_tag_scores(img, '[{"cat": ["a cat", "a kitten"]}, {"dog": ["a dog", "a puppy"]}]')
**     ram_tag_scores(img, '{"cat": ["a cat", "a kitten"], "dog": ["a dog", "a puppy"]}')
**
** The third form is the official LLM tag-description files' format
** (openimages_rare_200_llm_tag_descriptions.json). Every tag must have the
** same number of descriptions: the official code reshapes the description
** embeddings to (tags, descriptions) and the image's CLS embedding weighs
** each tag's descriptions (RAM++'s reweighting).
**
** A ram_score() text is a list when it is a valid JSON array (after leading
** white space); any other text, '[draft] a cat' included, is one
** description. To score a text that happens to be a JSON array, pass
** json_array(text).
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include "internal.h"
#include "json.h"

#include <string.h>

#define JSON_DEPTH 4

/* Most descriptions in one vocabulary or ram_score() list. Each one is a
** CLIP forward pass and an embed_dim row of label memory, so an unbounded
** list lets one innocuous call (a view can make it) take gigabytes and
** minutes. 2^18 keeps the official use, 4,585 tags x 51 descriptions =
** 233,835, inside. Checked before anything per description is allocated. */
#define RAM_MAX_DESCRIPTIONS 262144

/* Copies string node k into sqlite3_malloc memory. */
static int copy_str(const struct ram_json *j, int k, char **pz, int *pn)
{
    char *zTmp = 0;
    size_t n = 0;
    struct ram_error err;
    ram_status s = ram_json_strdup(j, k, &zTmp, &n, &err);
    if (s) return s == RAM_ERR_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
    *pz = ram__memdup(zTmp, (int)n);
    if (pn) *pn = (int)n;
    ram_free(zTmp);
    return *pz ? SQLITE_OK : SQLITE_NOMEM;
}

static int is_string(const struct ram_json *j, int k) { return k >= 0 && j->nodes[k].type == RAM_JSON_STRING; }

int ram__parse_text_list(const char *z, int n, const char *zWhere, int *pbList, struct ram_texts *pOut, char **pzErr)
{
    struct ram_json j;
    struct ram_error err;
    int i = 0, rc = SQLITE_OK;
    *pbList = 0;
    memset(pOut, 0, sizeof *pOut);
    while (i < n && (z[i] == ' ' || z[i] == '\t' || z[i] == '\n' || z[i] == '\r')) i++;
    if (i == n || z[i] != '[') return SQLITE_OK;
    ram_status s = ram_json_parse(z, (size_t)n, JSON_DEPTH, &j, &err);
    if (s == RAM_ERR_NOMEM) return SQLITE_NOMEM;
    if (s) return SQLITE_OK; /* not JSON: a plain text */
    if (j.nodes[0].type != RAM_JSON_ARRAY) {
        ram_json_free(&j);
        return SQLITE_OK;
    }
    *pbList = 1;
    int nItem = j.nodes[0].count;
    if (nItem == 0) {
        *pzErr = ram__mprintf("%s is an empty JSON array (give at least one description)", zWhere);
        rc = SQLITE_ERROR;
        goto done;
    }
    if (nItem > RAM_MAX_DESCRIPTIONS) {
        *pzErr = ram__mprintf("%s has %d descriptions; the limit is %d", zWhere, nItem, RAM_MAX_DESCRIPTIONS);
        rc = SQLITE_TOOBIG;
        goto done;
    }
    pOut->az = sqlite3_malloc64((sizeof(char *) + sizeof(int)) * (sqlite3_uint64)nItem);
    if (!pOut->az) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    memset(pOut->az, 0, (sizeof(char *) + sizeof(int)) * (size_t)nItem);
    pOut->an = (int *)(pOut->az + nItem);
    int idx = 0;
    for (int k = ram_json_first(&j, 0); k >= 0; k = ram_json_next(&j, 0, k), idx++) {
        if (!is_string(&j, k)) {
            *pzErr = ram__mprintf("%s: item %d of the JSON array is not a string", zWhere, idx + 1);
            rc = SQLITE_ERROR;
            goto done;
        }
        char *zItem = 0;
        rc = copy_str(&j, k, &zItem, &pOut->an[idx]);
        if (rc) {
            if (rc != SQLITE_NOMEM) *pzErr = ram__mprintf("%s: item %d is not valid text", zWhere, idx + 1);
            goto done;
        }
        pOut->az[idx] = zItem;
        pOut->n = idx + 1;
    }
done:
    ram_json_free(&j);
    if (rc) ram__texts_free(pOut);
    return rc;
}

void ram__texts_free(struct ram_texts *p)
{
    if (!p->az) return;
    for (int i = 0; i < p->n; i++) sqlite3_free((char *)p->az[i]);
    sqlite3_free(p->az);
    memset(p, 0, sizeof *p);
}

void ram__vocab_free(struct ram_vocab *p)
{
    for (int i = 0; i < p->nTag; i++) {
        if (p->azTag) sqlite3_free(p->azTag[i]);
        if (p->azTagZh) sqlite3_free(p->azTagZh[i]);
    }
    if (p->azDes) {
        for (int i = 0; i < p->nTag * p->nDes; i++) sqlite3_free(p->azDes[i]);
    }
    sqlite3_free(p->azTag);
    sqlite3_free(p->azTagZh);
    sqlite3_free(p->azDes);
    sqlite3_free(p->anDes);
    memset(p, 0, sizeof *p);
}

/* One vocabulary item: the tag name node, its Chinese name node (or -1) and
** its descriptions node (an array, a string, or -1 for "the tag itself"). */
struct item {
    int kTag, kZh, kDes;
};

#define VERR(...)                           \
    do {                                    \
        *pzErr = ram__mprintf(__VA_ARGS__); \
        rc = SQLITE_ERROR;                  \
        goto done;                          \
    } while (0)

int ram__parse_vocab(const char *z, int n, const char *zFunc, struct ram_vocab *pOut, char **pzErr)
{
    struct ram_json j;
    struct ram_error err;
    struct item *aItem = 0;
    int rc = SQLITE_OK, nItem = 0, nDes = -1;
    memset(pOut, 0, sizeof *pOut);
    memset(&j, 0, sizeof j);

    ram_status s = ram_json_parse(z, (size_t)n, JSON_DEPTH, &j, &err);
    if (s == RAM_ERR_NOMEM) return SQLITE_NOMEM;
    if (s) {
        *pzErr = ram__mprintf("%s(): the vocabulary is not valid JSON: %s", zFunc, err.msg);
        return SQLITE_ERROR;
    }
    int root = 0;
    int rootType = j.nodes[0].type;
    if (rootType != RAM_JSON_ARRAY && rootType != RAM_JSON_OBJECT)
        VERR("%s(): the vocabulary must be a JSON array of tags (strings or {\"tag\": ..., "
             "\"descriptions\": [...]} objects)",
             zFunc);
    nItem = j.nodes[0].count;
    if (nItem == 0) VERR("%s(): the vocabulary is empty", zFunc);
    aItem = sqlite3_malloc64(sizeof *aItem * (sqlite3_uint64)nItem);
    if (!aItem) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    int idx = 0;
    for (int k = ram_json_first(&j, root); k >= 0; k = ram_json_next(&j, root, k), idx++) {
        struct item *it = &aItem[idx];
        it->kTag = it->kZh = it->kDes = -1;
        if (rootType == RAM_JSON_OBJECT) { /* {"tag": descriptions, ...} */
            it->kTag = k;
            it->kDes = k + 1;
        } else if (j.nodes[k].type == RAM_JSON_STRING) {
            it->kTag = k;
        } else if (j.nodes[k].type == RAM_JSON_OBJECT) {
            int kT = ram_json_find(&j, k, "tag");
            if (kT >= 0) {
                if (!is_string(&j, kT)) VERR("%s(): vocabulary item %d: \"tag\" must be a string", zFunc, idx + 1);
                it->kTag = kT;
                it->kZh = ram_json_find(&j, k, "tag_zh");
                if (it->kZh >= 0 && !is_string(&j, it->kZh))
                    VERR("%s(): vocabulary item %d: \"tag_zh\" must be a string", zFunc, idx + 1);
                it->kDes = ram_json_find(&j, k, "descriptions");
                for (int kk = ram_json_first(&j, k); kk >= 0; kk = ram_json_next(&j, k, kk)) {
                    if (!ram_json_streq(&j, kk, "tag") && !ram_json_streq(&j, kk, "tag_zh") &&
                        !ram_json_streq(&j, kk, "descriptions"))
                        VERR("%s(): vocabulary item %d: unknown key (expected \"tag\", \"tag_zh\", "
                             "\"descriptions\")",
                             zFunc, idx + 1);
                }
            } else if (j.nodes[k].count == 1) { /* {"tag": [descriptions]} */
                it->kTag = k + 1;
                it->kDes = k + 2;
            } else {
                VERR("%s(): vocabulary item %d: an object needs a \"tag\" key (or exactly one key, "
                     "the tag, whose value lists its descriptions)",
                     zFunc, idx + 1);
            }
        } else {
            VERR("%s(): vocabulary item %d is not a string or a tag object", zFunc, idx + 1);
        }
        int nThis = 1;
        if (it->kDes >= 0) {
            int t = j.nodes[it->kDes].type;
            if (t == RAM_JSON_ARRAY) {
                nThis = j.nodes[it->kDes].count;
                int bOk = nThis > 0;
                for (int kk = ram_json_first(&j, it->kDes); bOk && kk >= 0; kk = ram_json_next(&j, it->kDes, kk))
                    bOk = is_string(&j, kk);
                if (!bOk)
                    VERR("%s(): vocabulary item %d: the descriptions must be a non-empty array of "
                         "strings",
                         zFunc, idx + 1);
            } else if (t != RAM_JSON_STRING) {
                VERR("%s(): vocabulary item %d: the descriptions must be a non-empty array of strings", zFunc, idx + 1);
            }
        }
        if (nDes < 0) nDes = nThis;
        if (nThis != nDes)
            VERR("%s(): every vocabulary tag must have the same number of descriptions (item 1 has "
                 "%d, item %d has %d)",
                 zFunc, nDes, idx + 1, nThis);
    }

    if ((sqlite3_int64)nItem * nDes > RAM_MAX_DESCRIPTIONS) {
        *pzErr = ram__mprintf("%s(): the vocabulary has %lld descriptions; the limit is %d", zFunc,
                              (sqlite3_int64)nItem * nDes, RAM_MAX_DESCRIPTIONS);
        rc = SQLITE_TOOBIG;
        goto done;
    }
    pOut->nDes = nDes;
    pOut->azTag = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)nItem);
    pOut->azTagZh = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)nItem);
    pOut->azDes = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)nItem * (sqlite3_uint64)nDes);
    pOut->anDes = sqlite3_malloc64(sizeof(int) * (sqlite3_uint64)nItem * (sqlite3_uint64)nDes);
    if (!pOut->azTag || !pOut->azTagZh || !pOut->azDes || !pOut->anDes) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    memset(pOut->azTag, 0, sizeof(char *) * (size_t)nItem);
    memset(pOut->azTagZh, 0, sizeof(char *) * (size_t)nItem);
    memset(pOut->azDes, 0, sizeof(char *) * (size_t)nItem * (size_t)nDes);
    pOut->nTag = nItem;
    for (int i = 0; i < nItem; i++) {
        struct item *it = &aItem[i];
        int nTag = 0;
        if ((rc = copy_str(&j, it->kTag, &pOut->azTag[i], &nTag))) goto bad_text;
        if (it->kZh >= 0 && (rc = copy_str(&j, it->kZh, &pOut->azTagZh[i], 0))) goto bad_text;
        char **az = &pOut->azDes[(size_t)i * nDes];
        int *an = &pOut->anDes[(size_t)i * nDes];
        if (it->kDes < 0) {
            az[0] = ram__mprintf("%s", pOut->azTag[i]);
            an[0] = nTag;
            if (!az[0]) {
                rc = SQLITE_NOMEM;
                goto done;
            }
        } else if (j.nodes[it->kDes].type == RAM_JSON_STRING) {
            if ((rc = copy_str(&j, it->kDes, &az[0], &an[0]))) goto bad_text;
        } else {
            int d = 0;
            for (int kk = ram_json_first(&j, it->kDes); kk >= 0; kk = ram_json_next(&j, it->kDes, kk), d++)
                if ((rc = copy_str(&j, kk, &az[d], &an[d]))) goto bad_text;
        }
        continue;
    bad_text:
        if (rc != SQLITE_NOMEM) VERR("%s(): vocabulary item %d holds invalid text", zFunc, i + 1);
        goto done;
    }

done:
    sqlite3_free(aItem);
    ram_json_free(&j);
    if (rc) ram__vocab_free(pOut);
    return rc;
}
