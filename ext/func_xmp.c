/*
** func_xmp.c — ram_xmp(): the tags of an image as an XMP sidecar's keywords,
** for photo managers (Lightroom, darktable, digiKam, immich read them):
**
**     SELECT ram_xmp(readfile('a.jpg'));                          -- a new sidecar
**     SELECT writefile('a.jpg.xmp', ram_xmp(readfile('a.jpg'), readfile('a.jpg.xmp')));
**     SELECT ram_xmp(tags, readfile(path || '.xmp')) FROM photos; -- from a ram_index
**     SELECT ram_xmp(readfile('a.jpg'), NULL, 'auto|ram', 'zh');  -- root, Chinese names
**
** ram_xmp(x [, existing_xmp [, root [, lang]]]):
** - x: an image BLOB or ram_embed() BLOB (the tags ram_tags(x, lang) selects),
**   or TEXT: tags ' | '-joined (what ram_tags() and ram_index's tags column
**   hold; '' for none); NULL gives NULL;
** - existing_xmp: the current sidecar (TEXT or BLOB, as readfile() gives it;
**   NULL or blank: none), merged without losing anything the user wrote;
** - root: lr:hierarchicalSubject root (default 'auto': 'auto|dog'; '' for
**   none);
** - lang: 'en' (default) or 'zh', for an image argument.
** The merge (which keywords are automatic, how a rerun replaces only those)
** is xmp_sidecar.c's; a corrupt existing sidecar is an error, so the caller
** never overwrites it.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include "xmp_sidecar.h"

#include <string.h>

/* Largest existing sidecar accepted (bytes): real ones are a few KB. */
#define RAM_XMP_MAX_INPUT (16 << 20)

/* Splits "a | b | c" into its tags (pointers into the copy *pzBuf). */
static int split_tags(const char *z, char **pzBuf, const char ***paz, int *pn)
{
    *pzBuf = ram__mprintf("%s", z);
    if (!*pzBuf) return SQLITE_NOMEM;
    int nMax = 1;
    for (const char *c = z; *c; c++)
        if (*c == '|') nMax++;
    *paz = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)nMax);
    if (!*paz) return SQLITE_NOMEM;
    *pn = 0;
    char *zTok = *pzBuf;
    for (;;) {
        char *zBar = strchr(zTok, '|');
        if (zBar) *zBar = 0;
        while (*zTok == ' ') zTok++;
        char *zEnd = zTok + strlen(zTok);
        while (zEnd > zTok && zEnd[-1] == ' ') *--zEnd = 0;
        if (*zTok) (*paz)[(*pn)++] = zTok;
        if (!zBar) break;
        zTok = zBar + 1;
    }
    return SQLITE_OK;
}

/* 1 when z is well-formed UTF-8 (no overlong forms, surrogates or code
** points over U+10FFFF): the XMP toolkit refuses anything else, printing
** its complaint on stderr, so it is checked here first. */
static int utf8_ok(const char *z)
{
    const unsigned char *p = (const unsigned char *)z;
    while (*p) {
        unsigned c = *p++;
        if (c < 0x80) continue;
        int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
        if (n < 0 || c > 0xF4) return 0;
        unsigned cp = c & (0x3F >> n);
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (*p & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp < 0xE000))
            return 0;
    }
    return 1;
}

static void ramXmpFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    ram__conn_refresh(p);
    const char **azTag = 0;
    char *zBuf = 0, *zErr = 0, *zOut = 0;
    int nTag = 0, rc = SQLITE_OK, lang = RAM_LANG_EN;
    const char *zRoot = "auto";
    const char *zModel = 0;

    if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL) {
        if (sqlite3_value_type(argv[2]) != SQLITE_TEXT) {
            sqlite3_result_error(ctx, "ram_xmp(): argument 3 (root) must be TEXT", -1);
            return;
        }
        zRoot = (const char *)sqlite3_value_text(argv[2]);
        if (!zRoot) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
    if (argc > 3 && sqlite3_value_type(argv[3]) != SQLITE_NULL) {
        const char *zLang = (const char *)sqlite3_value_text(argv[3]);
        if (sqlite3_value_type(argv[3]) != SQLITE_TEXT || !zLang ||
            (sqlite3_stricmp(zLang, "en") && sqlite3_stricmp(zLang, "zh"))) {
            sqlite3_result_error(ctx, "ram_xmp(): argument 4 must be 'en' or 'zh'", -1);
            return;
        }
        lang = sqlite3_stricmp(zLang, "zh") ? RAM_LANG_EN : RAM_LANG_ZH;
    }
    int eType = sqlite3_value_type(argv[0]);
    if (eType == SQLITE_NULL) return;
    const char *zOld = 0;
    int nOld = 0;
    if (argc > 1) {
        int e = sqlite3_value_type(argv[1]);
        if (e == SQLITE_TEXT || e == SQLITE_BLOB) {
            /* text or blob first, then its length (SQLite's rule: the length
            ** of the UTF-8 form in a UTF-16 database) */
            zOld = e == SQLITE_TEXT ? (const char *)sqlite3_value_text(argv[1])
                                    : (const char *)sqlite3_value_blob(argv[1]);
            nOld = sqlite3_value_bytes(argv[1]);
            if (nOld > RAM_XMP_MAX_INPUT) {
                sqlite3_result_error(ctx, "ram_xmp(): argument 2 is over 16 MB, not an XMP sidecar", -1);
                sqlite3_result_error_code(ctx, SQLITE_TOOBIG);
                return;
            }
            if (!zOld && nOld > 0) {
                sqlite3_result_error_nomem(ctx);
                return;
            }
        } else if (e != SQLITE_NULL) {
            sqlite3_result_error(ctx, "ram_xmp(): argument 2 must be the existing sidecar (TEXT or BLOB) or NULL", -1);
            return;
        }
    }

    if (eType == SQLITE_TEXT) {
        const char *z = (const char *)sqlite3_value_text(argv[0]);
        rc = z ? split_tags(z, &zBuf, &azTag, &nTag) : SQLITE_NOMEM;
    } else if (eType == SQLITE_BLOB) {
        /* Thresholds before the image: reading main.ram_thresholds may run SQL
        ** that uses the connection's image buffers (as ram_tags). */
        const float *aThresh = 0;
        struct ram_image img;
        struct ram_ctx *c = 0;
        int bNull = 0;
        rc = ram__conn_ctx(p, "ram_xmp", &c, &zErr);
        if (rc == SQLITE_OK) rc = ram__ctx_thresholds(c, &p->th, "ram_xmp", &aThresh, &zErr);
        if (rc == SQLITE_OK) rc = ram__conn_image(p, "ram_xmp", 1, argv[0], 1, &bNull, &img, &zErr);
        if (rc == SQLITE_OK && !bNull) {
            c = p->pCtx; /* the context that computed img (as ram_tags) */
            int nClass = c->pEntry->info.num_class;
            azTag = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)(nClass > 0 ? nClass : 1));
            if (!azTag) rc = SQLITE_NOMEM;
            for (int k = 0; rc == SQLITE_OK && k < nClass; k++) {
                if (!(img.aProb[k] > aThresh[k])) continue;
                const char *zTag = ram_model_tag(c->pEntry->pModel, k, lang);
                if (zTag && zTag[0]) azTag[nTag++] = zTag;
            }
            zModel = c->pEntry->info.digest;
        }
        if (rc == SQLITE_OK && bNull) goto done;
    } else {
        sqlite3_result_error(ctx,
                             "ram_xmp(): argument 1 must be an image BLOB, a ram_embed() BLOB or TEXT tags "
                             "('a | b'); use readfile('photo.jpg')",
                             -1);
        goto done;
    }
    if (rc != SQLITE_OK) {
        ram__result_error(ctx, rc, zErr);
        zErr = 0;
        goto done;
    }
    for (int i = -1; i < nTag; i++) {
        if (!utf8_ok(i < 0 ? zRoot : azTag[i])) {
            sqlite3_result_error(ctx,
                                 i < 0                  ? "ram_xmp(): argument 3 (root) is not valid UTF-8"
                                 : eType == SQLITE_TEXT ? "ram_xmp(): argument 1 (tags) is not valid UTF-8"
                                                        : "ram_xmp(): a tag name of the model is not valid UTF-8",
                                 -1);
            goto done;
        }
    }
    rc = ram__xmp_merge(zOld, nOld, azTag, nTag, zRoot, zModel, &zOut, &zErr);
    if (rc == SQLITE_NOMEM) {
        sqlite3_result_error_nomem(ctx);
    } else if (rc != SQLITE_OK) {
        char *zMsg = ram__mprintf("ram_xmp(): argument 2 (existing sidecar): %s", zErr ? zErr : "?");
        if (zMsg)
            sqlite3_result_error(ctx, zMsg, -1);
        else
            sqlite3_result_error_nomem(ctx);
        sqlite3_free(zMsg);
    } else {
        sqlite3_result_text(ctx, zOut, -1, sqlite3_free);
        zOut = 0;
    }
done:
    sqlite3_free(zErr);
    sqlite3_free(zOut);
    sqlite3_free(azTag);
    sqlite3_free(zBuf);
}

/* Flags, on purpose: not DETERMINISTIC (the tags of an image depend on the
** connection's model and thresholds, which ram_load / ram_set_threshold
** change: in an index or generated column the result would go stale);
** INNOCUOUS: it reads no file (the existing sidecar is an argument) and no
** table but main.ram_thresholds. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_xmp", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramXmpFunc},
    {"ram_xmp", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramXmpFunc},
    {"ram_xmp", 3, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramXmpFunc},
    {"ram_xmp", 4, SQLITE_UTF8 | SQLITE_INNOCUOUS, ramXmpFunc},
};

int ram__register_xmp_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
